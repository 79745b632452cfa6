"""Resharding end to end (SplitShard, MergeShards, UpdateShardCount) and
ListShards."""
import pytest

from conftest import ACCOUNT, error_of, unique, wait_active

MAX = 2**128
HALF = 2**127


def sid(i):
    return f"shardId-{i:012d}"


def rng(lo, hi):
    return {"StartingHashKey": str(lo), "EndingHashKey": str(hi)}


def even(n):
    step = MAX // n
    return [rng(i * step, MAX - 1 if i == n - 1 else (i + 1) * step - 1) for i in range(n)]


def shape_of(shards):
    """Ids, parents, ranges, and whether each shard is closed."""
    return [
        {**{k: v for k, v in s.items() if k != "SequenceNumberRange"}, "Closed": "EndingSequenceNumber" in s["SequenceNumberRange"]}
        for s in shards
    ]


def drain(client, name, shard):
    """Reads a shard from TRIM_HORIZON until NextShardIterator disappears;
    returns (datas, last response)."""
    it = client.get_shard_iterator(StreamName=name, ShardId=sid(shard), ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = []
    for _ in range(20):
        page = client.get_records(ShardIterator=it)
        got += [r["Data"] for r in page["Records"]]
        if "NextShardIterator" not in page:
            return got, page
        it = page["NextShardIterator"]
    raise AssertionError(f"shard {shard} never ended")


def read(client, name, shard):
    it = client.get_shard_iterator(StreamName=name, ShardId=sid(shard), ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = client.get_records(ShardIterator=it)
    return [r["Data"] for r in page["Records"]]


def ids(shards):
    return [s["ShardId"] for s in shards]


# ------------------------------------------------------------------- SplitShard


def test_split_shard_end_to_end(kinesis, stream):
    name = stream(1)
    for d in [b"p0", b"p1"]:
        kinesis.put_record(StreamName=name, Data=d, PartitionKey="k")
    kinesis.split_shard(StreamName=name, ShardToSplit=sid(0), NewStartingHashKey=str(HALF))
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "UPDATING"
    wait_active(kinesis, name)
    assert shape_of(kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]) == [
        {"ShardId": sid(0), "HashKeyRange": rng(0, MAX - 1), "Closed": True},
        {"ShardId": sid(1), "ParentShardId": sid(0), "HashKeyRange": rng(0, HALF - 1), "Closed": False},
        {"ShardId": sid(2), "ParentShardId": sid(0), "HashKeyRange": rng(HALF, MAX - 1), "Closed": False},
    ]
    assert kinesis.put_record(StreamName=name, Data=b"low", PartitionKey="k", ExplicitHashKey="0")["ShardId"] == sid(1)
    assert kinesis.put_record(StreamName=name, Data=b"high", PartitionKey="k", ExplicitHashKey=str(HALF))["ShardId"] == sid(2)
    got, last = drain(kinesis, name, 0)
    assert got == [b"p0", b"p1"]
    assert last["ChildShards"] == [
        {"ShardId": sid(1), "ParentShards": [sid(0)], "HashKeyRange": rng(0, HALF - 1)},
        {"ShardId": sid(2), "ParentShards": [sid(0)], "HashKeyRange": rng(HALF, MAX - 1)},
    ]
    assert "NextShardIterator" not in last
    children = {c["ShardId"]: read(kinesis, name, int(c["ShardId"][-12:])) for c in last["ChildShards"]}
    assert children == {sid(1): [b"low"], sid(2): [b"high"]}
    # The open children still end in an iterator.
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=sid(1), ShardIteratorType="LATEST")["ShardIterator"]
    page = kinesis.get_records(ShardIterator=it)
    assert (page["Records"], "ChildShards" in page, bool(page["NextShardIterator"])) == ([], False, True)


def test_split_shard_errors(kinesis, stream):
    name = stream(1)
    with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
        kinesis.split_shard(StreamName=name, ShardToSplit=sid(0), NewStartingHashKey="1")
    assert error_of(e) == (
        "InvalidArgumentException",
        f"NewStartingHashKey 1 used in SplitShard() on shard {sid(0)} in stream {name} under account {ACCOUNT} is not both greater than "
        f"one plus the shard's StartingHashKey 0 and less than the shard's EndingHashKey {MAX - 1}.",
        400,
    )
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
        kinesis.split_shard(StreamName=name, ShardToSplit=sid(9), NewStartingHashKey=str(HALF))
    assert error_of(e) == ("ResourceNotFoundException", f"Could not find shard {sid(9)} in stream {name} under account {ACCOUNT}.", 400)
    kinesis.split_shard(StreamName=name, ShardToSplit=sid(0), NewStartingHashKey=str(HALF))
    with pytest.raises(kinesis.exceptions.ResourceInUseException) as e:
        kinesis.split_shard(StreamName=name, ShardToSplit=sid(1), NewStartingHashKey="100")
    assert error_of(e) == ("ResourceInUseException", f"Stream {name} under account {ACCOUNT} not ACTIVE, instead in state UPDATING", 400)
    wait_active(kinesis, name)
    with pytest.raises(kinesis.exceptions.ResourceInUseException) as e:
        kinesis.split_shard(StreamName=name, ShardToSplit=sid(0), NewStartingHashKey="100")
    assert error_of(e) == (
        "ResourceInUseException",
        f"Shard {sid(0)} in stream {name} under account {ACCOUNT} has already been merged or split, and thus is not eligible for merging or splitting.",
        400,
    )


# ------------------------------------------------------------------ MergeShards


def test_merge_shards_end_to_end(kinesis, stream):
    name = stream(2)
    kinesis.put_record(StreamName=name, Data=b"left", PartitionKey="k", ExplicitHashKey="5")
    kinesis.put_record(StreamName=name, Data=b"right", PartitionKey="k", ExplicitHashKey=str(MAX - 5))
    kinesis.merge_shards(StreamName=name, ShardToMerge=sid(0), AdjacentShardToMerge=sid(1))
    wait_active(kinesis, name)
    assert shape_of(kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]) == [
        {"ShardId": sid(0), "HashKeyRange": even(2)[0], "Closed": True},
        {"ShardId": sid(1), "HashKeyRange": even(2)[1], "Closed": True},
        {"ShardId": sid(2), "ParentShardId": sid(0), "AdjacentParentShardId": sid(1), "HashKeyRange": rng(0, MAX - 1), "Closed": False},
    ]
    child = [{"ShardId": sid(2), "ParentShards": [sid(0), sid(1)], "HashKeyRange": rng(0, MAX - 1)}]
    for shard, data in [(0, [b"left"]), (1, [b"right"])]:
        got, last = drain(kinesis, name, shard)
        assert (got, last["ChildShards"]) == (data, child)
    assert kinesis.put_record(StreamName=name, Data=b"merged", PartitionKey="anything")["ShardId"] == sid(2)
    assert read(kinesis, name, 2) == [b"merged"]


def test_merge_shards_not_adjacent(kinesis, stream):
    name = stream(3)
    for a, b in [(0, 2), (1, 0)]:
        with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
            kinesis.merge_shards(StreamName=name, ShardToMerge=sid(a), AdjacentShardToMerge=sid(b))
        assert error_of(e) == (
            "InvalidArgumentException",
            f"Shards {sid(a)} and {sid(b)} in stream {name} under account {ACCOUNT} are not an adjacent pair of shards eligible for merging",
            400,
        )


# ------------------------------------------------------------- UpdateShardCount


def open_shards(client, name):
    return client.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]


def test_update_shard_count_double_then_halve(kinesis, stream):
    name = stream(2)
    out = kinesis.update_shard_count(StreamName=name, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    del out["ResponseMetadata"]
    assert out == {"StreamName": name, "CurrentShardCount": 2, "TargetShardCount": 4, "StreamARN": f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{name}"}
    wait_active(kinesis, name)
    now_open = open_shards(kinesis, name)
    assert [s["HashKeyRange"] for s in now_open] == even(4)
    assert [s["ParentShardId"] for s in now_open] == [sid(0), sid(0), sid(1), sid(1)]
    assert ids(now_open) == [sid(i) for i in range(2, 6)]
    # Writes land on the new shards; the old ones ended with children.
    assert kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey=str(MAX - 1))["ShardId"] == sid(5)
    _, last = drain(kinesis, name, 0)
    assert [c["ShardId"] for c in last["ChildShards"]] == [sid(2), sid(3)]
    out = kinesis.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    assert (out["CurrentShardCount"], out["TargetShardCount"]) == (4, 2)
    wait_active(kinesis, name)
    halved = open_shards(kinesis, name)
    assert [(s["ShardId"], s["ParentShardId"], s["AdjacentParentShardId"], s["HashKeyRange"]) for s in halved] == [
        (sid(6), sid(2), sid(3), even(2)[0]),
        (sid(7), sid(4), sid(5), even(2)[1]),
    ]
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 2


@pytest.mark.parametrize("initial, target, total", [(2, 4, 6), (4, 5, 15), (10, 13, 37), (4, 2, 6), (5, 3, 7), (3, 2, 4), (1, 2, 3)])
def test_update_shard_count_builds_intermediate_shards(kinesis, stream, initial, target, total):
    # Shard totals AWS reports after UpdateShardCount (moto's suite records them as verified against AWS).
    name = stream(initial)
    kinesis.update_shard_count(StreamName=name, TargetShardCount=target, ScalingType="UNIFORM_SCALING")
    wait_active(kinesis, name)
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    assert len(shards) == total
    assert ids(shards) == [sid(i) for i in range(total)]
    closed = {s["ShardId"]: s for s in shards if "EndingSequenceNumber" in s["SequenceNumberRange"]}
    now_open = sorted((s for s in shards if s["ShardId"] not in closed), key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))
    assert sorted(now_open, key=lambda s: s["ShardId"]) == open_shards(kinesis, name) and len(now_open) == target
    span = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in now_open]
    # The open shards cover the key space once, in order, with no gaps.
    assert span[0][0] == 0 and span[-1][1] == MAX - 1
    assert all(hi + 1 == lo for (_, hi), (lo, _) in zip(span, span[1:]))
    # Evenly: every open shard is one or two halves of an original shard (scaling up),
    # or one or two original shards (scaling down).
    unit = MAX // (2 * initial if target > initial else initial)
    assert {round((hi - lo + 1) / unit) for lo, hi in span} <= {1, 2}
    # Lineage: a split child has one parent and lies in it; a merge has a parent and an
    # adjacent parent and is exactly their union; no shard has more.
    by_id = {s["ShardId"]: s for s in shards}

    def rng_of(s):
        return int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])

    for s in shards:
        if "ParentShardId" not in s:
            assert ("AdjacentParentShardId" not in s) and int(s["ShardId"][-12:]) < initial
            continue
        p = rng_of(by_id[s["ParentShardId"]])
        if "AdjacentParentShardId" in s:
            a = rng_of(by_id[s["AdjacentParentShardId"]])
            assert p[1] + 1 == a[0] and rng_of(s) == (p[0], a[1])
        else:
            assert p[0] <= rng_of(s)[0] <= rng_of(s)[1] <= p[1]
    # Every closed shard's children, as GetRecords reports them once it is drained,
    # are the shards naming it as a parent, and they cover its range exactly.
    for shard_id, parent in closed.items():
        _, last = drain(kinesis, name, int(shard_id[-12:]))
        children = [s for s in shards if shard_id in (s.get("ParentShardId"), s.get("AdjacentParentShardId"))]
        assert last["ChildShards"] == [
            {"ShardId": c["ShardId"], "ParentShards": [c["ParentShardId"]] + ([c["AdjacentParentShardId"]] if "AdjacentParentShardId" in c else []),
             "HashKeyRange": c["HashKeyRange"]}
            for c in children
        ]
        lo, hi = rng_of(parent)
        if len(children) == 2:  # split in two
            assert (rng_of(children[0])[0], rng_of(children[0])[1] + 1, rng_of(children[1])[1]) == (lo, rng_of(children[1])[0], hi)
        else:  # merged with its neighbour
            assert len(children) == 1 and rng_of(children[0])[0] <= lo <= hi <= rng_of(children[0])[1]
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == target


def test_update_shard_count_limits(kinesis, stream):
    one = stream(1)
    with pytest.raises(kinesis.exceptions.LimitExceededException) as e:
        kinesis.update_shard_count(StreamName=one, TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    # Real AWS wording (docs/aws-behaviour.md §4.14, CDK doc quote): no comma before "Target".
    assert error_of(e) == (
        "LimitExceededException",
        "UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: 1 Target shard count: 3",
        400,
    )
    four = stream(4)
    with pytest.raises(kinesis.exceptions.LimitExceededException) as e:
        kinesis.update_shard_count(StreamName=four, TargetShardCount=1, ScalingType="UNIFORM_SCALING")
    assert error_of(e) == (
        "LimitExceededException",
        "UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: 4 Target shard count: 1",
        400,
    )
    ten = stream(10)
    with pytest.raises(kinesis.exceptions.LimitExceededException) as e:
        kinesis.update_shard_count(StreamName=ten, TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    assert error_of(e) == (
        "LimitExceededException",
        "UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: 10 Target shard count: 3",
        400,
    )
    assert len(kinesis.list_shards(StreamName=ten)["Shards"]) == 10


def test_on_demand_stream_refuses_resharding(kinesis):
    name = unique()
    kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    wait_active(kinesis, name)
    msg = ("ValidationException", f"Request is invalid. Stream {name} under account {ACCOUNT} is in On-Demand mode.", 400)
    calls = [
        lambda: kinesis.split_shard(StreamName=name, ShardToSplit=sid(0), NewStartingHashKey=str(2**120)),
        lambda: kinesis.merge_shards(StreamName=name, ShardToMerge=sid(0), AdjacentShardToMerge=sid(1)),
        lambda: kinesis.update_shard_count(StreamName=name, TargetShardCount=8, ScalingType="UNIFORM_SCALING"),
    ]
    for call in calls:
        with pytest.raises(kinesis.exceptions.ClientError) as e:
            call()
        assert error_of(e) == msg
    assert ids(kinesis.list_shards(StreamName=name)["Shards"]) == [sid(i) for i in range(4)]
    kinesis.delete_stream(StreamName=name)


# ------------------------------------------------------------------- ListShards


def test_list_shards_matches_describe_stream(kinesis, stream):
    name = stream(3)
    listed = kinesis.list_shards(StreamName=name)
    assert list(listed) == ["Shards", "ResponseMetadata"]
    assert listed["Shards"] == kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    assert ids(kinesis.list_shards(StreamName=name, ExclusiveStartShardId=sid(0))["Shards"]) == [sid(1), sid(2)]


def test_list_shards_filters(start_server):
    srv = start_server()
    c = srv.client()
    name = unique()
    c.create_stream(StreamName=name, ShardCount=1)
    srv.advance_clock(1000)
    wait_active(c, name)
    srv.advance_clock(10_000)
    before_split = srv.advance_clock(0)["now_ms"] / 1000
    srv.advance_clock(10_000)
    c.split_shard(StreamName=name, ShardToSplit=sid(0), NewStartingHashKey=str(HALF))
    srv.advance_clock(1000)
    wait_active(c, name)
    srv.advance_clock(10_000)
    after_split = srv.advance_clock(0)["now_ms"] / 1000

    def listed(**f):
        return ids(c.list_shards(StreamName=name, ShardFilter=f)["Shards"])

    assert listed(Type="AT_LATEST") == [sid(1), sid(2)]
    assert listed(Type="AT_TRIM_HORIZON") == [sid(0)]
    assert listed(Type="FROM_TRIM_HORIZON") == [sid(0), sid(1), sid(2)]
    assert listed(Type="AFTER_SHARD_ID", ShardId=sid(0)) == [sid(1), sid(2)]
    assert listed(Type="AFTER_SHARD_ID", ShardId=sid(1)) == [sid(2)]
    assert listed(Type="AT_TIMESTAMP", Timestamp=before_split) == [sid(0)]
    assert listed(Type="AT_TIMESTAMP", Timestamp=after_split) == [sid(1), sid(2)]
    assert listed(Type="FROM_TIMESTAMP", Timestamp=before_split) == [sid(0), sid(1), sid(2)]
    assert listed(Type="FROM_TIMESTAMP", Timestamp=after_split) == [sid(1), sid(2)]


def test_expired_closed_shards_leave_describe_stream_and_list_shards(start_server):
    srv = start_server()
    c = srv.client()
    name = unique()
    c.create_stream(StreamName=name, ShardCount=1)
    srv.advance_clock(1000)
    wait_active(c, name)
    c.split_shard(StreamName=name, ShardToSplit=sid(0), NewStartingHashKey=str(HALF))
    srv.advance_clock(1000)
    wait_active(c, name)

    def both():
        described = c.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
        assert c.list_shards(StreamName=name)["Shards"] == described
        return ids(described)

    srv.advance_clock(24 * 3600 * 1000 - 60_000)  # shard 0 closed 23 h 59 min ago
    assert both() == [sid(0), sid(1), sid(2)]
    srv.advance_clock(120_000)  # past the 24-hour retention: its records have all expired
    assert both() == [sid(1), sid(2)]
    assert ids(c.describe_stream(StreamName=name, ExclusiveStartShardId=sid(1))["StreamDescription"]["Shards"]) == [sid(2)]
    page = c.describe_stream(StreamName=name, Limit=1)["StreamDescription"]
    assert (ids(page["Shards"]), page["HasMoreShards"]) == ([sid(1)], True)


def test_list_shards_paging(kinesis, stream):
    name = stream(5)
    first = kinesis.list_shards(StreamName=name, MaxResults=2)
    assert ids(first["Shards"]) == [sid(0), sid(1)]
    second = kinesis.list_shards(NextToken=first["NextToken"], MaxResults=2)
    assert ids(second["Shards"]) == [sid(2), sid(3)]
    third = kinesis.list_shards(NextToken=second["NextToken"], MaxResults=2)
    assert (ids(third["Shards"]), "NextToken" in third) == ([sid(4)], False)
    # MaxResults may change between pages.
    again = kinesis.list_shards(NextToken=first["NextToken"], MaxResults=10)
    assert (ids(again["Shards"]), "NextToken" in again) == ([sid(2), sid(3), sid(4)], False)
    # (botocore's list_shards paginator resends StreamName with NextToken, which
    # AWS refuses with the error tested below, so it is not used here.)


def test_list_shards_filter_applies_to_every_page(kinesis, stream):
    name = stream(3)
    kinesis.split_shard(StreamName=name, ShardToSplit=sid(1), NewStartingHashKey=str(HALF))
    wait_active(kinesis, name)

    def pages(first, **later):
        out, page = [], kinesis.list_shards(StreamName=name, MaxResults=1, **first)
        while True:
            out.append(ids(page["Shards"]))
            if "NextToken" not in page:
                return out
            page = kinesis.list_shards(NextToken=page["NextToken"], MaxResults=1, **later)

    # Open shards are 0, 2, 3 and 4; the closed shard 1 never shows up on later pages.
    assert pages({"ShardFilter": {"Type": "AT_LATEST"}}) == [[sid(0)], [sid(2)], [sid(3)], [sid(4)]]
    assert pages({"ShardFilter": {"Type": "AFTER_SHARD_ID", "ShardId": sid(2)}}) == [[sid(3)], [sid(4)]]
    assert pages({"ShardFilter": {"Type": "AT_TRIM_HORIZON"}}) == [[sid(0)], [sid(1)], [sid(2)]]
    # The API reference forbids StreamName, StreamCreationTimestamp and
    # ExclusiveStartShardId with NextToken, not ShardFilter: sending it again is fine.
    assert pages({"ShardFilter": {"Type": "AT_LATEST"}}, ShardFilter={"Type": "AT_LATEST"}) == [[sid(0)], [sid(2)], [sid(3)], [sid(4)]]
    assert pages({}) == [[sid(i)] for i in range(5)]


@pytest.mark.parametrize("bad", ["ABKLFD8", "2.14E4", "2147483648", "shardId-002147483648", "shardId-"])
def test_unparsable_shard_ids_are_not_shard_zero(kinesis, stream, bad):
    # docs/aws-behaviour.md, "Shard-id resolution": an id that does not resolve is "Could not find shard", with the raw id.
    name = stream(2)
    missing = ("ResourceNotFoundException", f"Could not find shard {bad} in stream {name} under account {ACCOUNT}.", 400)
    calls = [
        lambda: kinesis.list_shards(StreamName=name, ExclusiveStartShardId=bad),
        lambda: kinesis.list_shards(StreamName=name, ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": bad}),
        lambda: kinesis.describe_stream(StreamName=name, ExclusiveStartShardId=bad),
        lambda: kinesis.get_shard_iterator(StreamName=name, ShardId=bad, ShardIteratorType="TRIM_HORIZON"),
        lambda: kinesis.split_shard(StreamName=name, ShardToSplit=bad, NewStartingHashKey="100"),
        lambda: kinesis.merge_shards(StreamName=name, ShardToMerge=bad, AdjacentShardToMerge=sid(1)),
    ]
    for call in calls:
        with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
            call()
        assert error_of(e) == missing
    # The lenient forms AWS accepts still resolve.
    assert ids(kinesis.list_shards(StreamName=name, ExclusiveStartShardId="0")["Shards"]) == [sid(1)]
    assert ids(kinesis.list_shards(StreamName=name, ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": "anything-0"})["Shards"]) == [sid(1)]


def test_list_shards_argument_errors(kinesis, stream):
    name = stream(2)
    with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
        kinesis.list_shards()
    assert error_of(e) == ("InvalidArgumentException", "Either NextToken or StreamName should be provided.", 400)
    token = kinesis.list_shards(StreamName=name, MaxResults=1)["NextToken"]
    with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
        kinesis.list_shards(StreamName=name, NextToken=token)
    assert error_of(e) == ("InvalidArgumentException", "NextToken and StreamName cannot be provided together.", 400)
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
        kinesis.list_shards(StreamName="missing-ls")
    assert error_of(e) == ("ResourceNotFoundException", f"Stream missing-ls under account {ACCOUNT} not found.", 400)


def test_reshard_while_creating(slow_kinesis):
    kinesis = slow_kinesis
    name = unique()
    kinesis.create_stream(StreamName=name, ShardCount=2)
    busy = ("ResourceInUseException", f"Stream {name} under account {ACCOUNT} not ACTIVE, instead in state CREATING", 400)
    with pytest.raises(kinesis.exceptions.ResourceInUseException) as e:
        kinesis.split_shard(StreamName=name, ShardToSplit=sid(0), NewStartingHashKey="100")
    assert error_of(e) == busy
    with pytest.raises(kinesis.exceptions.ResourceInUseException) as e:
        kinesis.merge_shards(StreamName=name, ShardToMerge=sid(0), AdjacentShardToMerge=sid(1))
    assert error_of(e) == busy
    wait_active(kinesis, name)
    kinesis.delete_stream(StreamName=name)
