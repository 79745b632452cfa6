"""Stream lifecycle: CreateStream, DeleteStream, DescribeStream(Summary),
ListStreams, StreamARN addressing and the AWS CLI."""
import datetime
import time

import pytest

from conftest import ACCOUNT, REGION, aws_cli, error_of, unique, wait_active

MAX = 2**128


def arn(name):
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def even_ranges(n):
    """AWS's even split of the hash space over n shards (docs/aws-behaviour.md §4.1)."""
    step = MAX // n
    return [
        {"StartingHashKey": str(i * step), "EndingHashKey": str(MAX - 1 if i == n - 1 else (i + 1) * step - 1)}
        for i in range(n)
    ]


def sid(i):
    return f"shardId-{i:012d}"


def shape_of(shards):
    """Shard ids, parents and hash ranges; sequence numbers are checked elsewhere."""
    return [
        {k: v for k, v in s.items() if k != "SequenceNumberRange"}
        for s in shards
    ]


def assert_recent(ts, slack=30):
    assert isinstance(ts, datetime.datetime) and ts.tzinfo is not None
    assert ts.microsecond == 0
    assert abs(ts.timestamp() - time.time()) < slack


def wait_gone(client, name, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            client.describe_stream_summary(StreamName=name)
        except client.exceptions.ResourceNotFoundException:
            return
        time.sleep(0.05)
    raise AssertionError(f"stream {name} was not deleted")


# ---------------------------------------------------------------- CreateStream


def test_create_provisioned_stream_describes_fully(kinesis, stream):
    name = stream(2)
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert_recent(d.pop("StreamCreationTimestamp"))
    shards = d.pop("Shards")
    assert d == {
        "StreamName": name,
        "StreamARN": arn(name),
        "StreamStatus": "ACTIVE",
        "StreamModeDetails": {"StreamMode": "PROVISIONED"},
        "HasMoreShards": False,
        "RetentionPeriodHours": 24,
        "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
        "EncryptionType": "NONE",
    }
    assert shape_of(shards) == [
        {"ShardId": sid(i), "HashKeyRange": r} for i, r in enumerate(even_ranges(2))
    ]
    starts = [int(s["SequenceNumberRange"]["StartingSequenceNumber"]) for s in shards]
    assert all(len(s["SequenceNumberRange"]["StartingSequenceNumber"]) == 56 for s in shards)
    assert [list(s["SequenceNumberRange"]) for s in shards] == [["StartingSequenceNumber"]] * 2
    # Shards created together differ by 2^144 + 16 (docs/aws-behaviour.md §5.1).
    assert starts[1] - starts[0] == 2**144 + 16


def test_create_on_demand_stream_has_four_shards(kinesis):
    name = unique()
    kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    wait_active(kinesis, name)
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert shape_of(d["Shards"]) == [{"ShardId": sid(i), "HashKeyRange": r} for i, r in enumerate(even_ranges(4))]
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert (s["StreamModeDetails"], s["OpenShardCount"]) == ({"StreamMode": "ON_DEMAND"}, 4)
    kinesis.delete_stream(StreamName=name)


def test_create_without_shard_count_defaults_to_on_demand(kinesis):
    name = unique()
    kinesis.create_stream(StreamName=name)
    wait_active(kinesis, name)
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert (s["StreamModeDetails"], s["OpenShardCount"]) == ({"StreamMode": "ON_DEMAND"}, 4)
    kinesis.delete_stream(StreamName=name)


def test_create_duplicate_name_is_resource_in_use(kinesis, stream):
    name = stream(1)
    with pytest.raises(kinesis.exceptions.ResourceInUseException) as e:
        kinesis.create_stream(StreamName=name, ShardCount=1)
    assert error_of(e) == ("ResourceInUseException", f"Stream {name} under account {ACCOUNT} already exists.", 400)


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"StreamName": "", "ShardCount": 0},
            "3 validation errors detected: "
            "Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1; "
            "Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "
            "Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ),
        (
            {"ShardCount": 1},
            "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null",
        ),
        (
            {"StreamName": "a" * 129, "ShardCount": 1},
            f"1 validation error detected: Value '{'a' * 129}' at 'streamName' failed to satisfy constraint: "
            "Member must have length less than or equal to 128",
        ),
        (
            {"StreamName": "has space", "ShardCount": -1},
            "2 validation errors detected: "
            "Value '-1' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1; "
            "Value 'has space' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ),
    ],
)
def test_create_validation_messages(server, params, message):
    raw = server.client(parameter_validation=False)
    with pytest.raises(raw.exceptions.ClientError) as e:
        raw.create_stream(**params)
    assert error_of(e) == ("ValidationException", message, 400)


def test_create_is_creating_then_active(start_server):
    # A long CREATING phase, so a busy machine still sees it.
    kinesis = start_server("--status-delay-ms", "3000").client()
    name = unique()
    kinesis.create_stream(StreamName=name, ShardCount=1)
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert (d["StreamStatus"], d["Shards"], d["HasMoreShards"]) == ("CREATING", [], False)
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "CREATING"
    wait_active(kinesis, name)
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert (d["StreamStatus"], [s["ShardId"] for s in d["Shards"]]) == ("ACTIVE", [sid(0)])
    kinesis.delete_stream(StreamName=name)


def test_stream_exists_waiter(kinesis):
    name = unique()
    kinesis.create_stream(StreamName=name, ShardCount=1)
    started = time.time()
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    assert time.time() - started < 5
    assert kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamStatus"] == "ACTIVE"
    kinesis.delete_stream(StreamName=name)


# ---------------------------------------------------------------- DeleteStream


def test_delete_stream_is_deleting_then_gone(kinesis):
    name = unique()
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_active(kinesis, name)
    assert kinesis.delete_stream(StreamName=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "DELETING"
    wait_gone(kinesis, name)
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
        kinesis.describe_stream(StreamName=name)
    assert error_of(e) == ("ResourceNotFoundException", f"Stream {name} under account {ACCOUNT} not found.", 400)
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
        kinesis.delete_stream(StreamName=name)
    assert error_of(e) == ("ResourceNotFoundException", f"Stream {name} under account {ACCOUNT} not found.", 400)


def test_delete_stream_with_consumers_needs_enforce(kinesis, stream):
    name = stream(1)
    kinesis.register_stream_consumer(StreamARN=arn(name), ConsumerName="c1")
    with pytest.raises(kinesis.exceptions.ResourceInUseException) as e:
        kinesis.delete_stream(StreamName=name)
    # AWS's wording is not captured in docs/aws-behaviour.md (§7); this is Riffle's text.
    assert error_of(e) == (
        "ResourceInUseException",
        f"Stream {name} under account {ACCOUNT} has registered consumers. Deregister them or set EnforceConsumerDeletion to true.",
        400,
    )
    with pytest.raises(kinesis.exceptions.ResourceInUseException):
        kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=False)
    kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "DELETING"
    wait_gone(kinesis, name)


# -------------------------------------------------------------- DescribeStream


def test_describe_three_shard_hash_ranges(kinesis, stream):
    name = stream(3)
    shards = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    assert [s["HashKeyRange"] for s in shards] == [
        {"StartingHashKey": "0", "EndingHashKey": "113427455640312821154458202477256070484"},
        {"StartingHashKey": "113427455640312821154458202477256070485", "EndingHashKey": "226854911280625642308916404954512140969"},
        {"StartingHashKey": "226854911280625642308916404954512140970", "EndingHashKey": "340282366920938463463374607431768211455"},
    ]


def test_describe_stream_paging(kinesis, stream):
    name = stream(3)
    first = kinesis.describe_stream(StreamName=name, Limit=2)["StreamDescription"]
    assert ([s["ShardId"] for s in first["Shards"]], first["HasMoreShards"]) == ([sid(0), sid(1)], True)
    rest = kinesis.describe_stream(StreamName=name, Limit=2, ExclusiveStartShardId=sid(1))["StreamDescription"]
    assert ([s["ShardId"] for s in rest["Shards"]], rest["HasMoreShards"]) == ([sid(2)], False)
    last = kinesis.describe_stream(StreamName=name, ExclusiveStartShardId=sid(2))["StreamDescription"]
    assert (last["Shards"], last["HasMoreShards"]) == ([], False)
    # The botocore paginator walks the same pages.
    pages = list(kinesis.get_paginator("describe_stream").paginate(StreamName=name, PaginationConfig={"PageSize": 1}))
    assert [[s["ShardId"] for s in p["StreamDescription"]["Shards"]] for p in pages] == [[sid(0)], [sid(1)], [sid(2)]]


def test_describe_stream_summary_all_fields(kinesis, stream):
    name = stream(2)
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    created = s.pop("StreamCreationTimestamp")
    assert_recent(created)
    assert created == kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamCreationTimestamp"]
    assert s == {
        "StreamName": name,
        "StreamARN": arn(name),
        "StreamStatus": "ACTIVE",
        "StreamModeDetails": {"StreamMode": "PROVISIONED"},
        "RetentionPeriodHours": 24,
        "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
        "EncryptionType": "NONE",
        "OpenShardCount": 2,
        "ConsumerCount": 0,
        "MaxRecordSizeInKiB": 1024,
    }


# ----------------------------------------------------------------- ListStreams


def make_streams(client, names):
    for n in names:
        client.create_stream(StreamName=n, ShardCount=1)


def test_list_streams_sorted_limit_and_exclusive_start(start_server):
    srv = start_server()
    c = srv.client()
    empty = c.list_streams()
    del empty["ResponseMetadata"]
    assert empty == {"StreamNames": [], "HasMoreStreams": False, "StreamSummaries": []}
    names = ["delta", "alpha", "Charlie", "bravo", "echo-1", "echo.0"]
    make_streams(c, names)
    out = c.list_streams()
    assert out["StreamNames"] == sorted(names) == ["Charlie", "alpha", "bravo", "delta", "echo-1", "echo.0"]
    assert out["HasMoreStreams"] is False and "NextToken" not in out
    page = c.list_streams(Limit=2)
    assert (page["StreamNames"], page["HasMoreStreams"]) == (["Charlie", "alpha"], True)
    assert page["NextToken"]
    page = c.list_streams(Limit=2, ExclusiveStartStreamName="alpha")
    assert (page["StreamNames"], page["HasMoreStreams"]) == (["bravo", "delta"], True)
    # The start name need not exist.
    page = c.list_streams(ExclusiveStartStreamName="c")
    assert (page["StreamNames"], page["HasMoreStreams"]) == (["delta", "echo-1", "echo.0"], False)


def test_list_streams_next_token_and_paginator(start_server):
    srv = start_server()
    c = srv.client()
    names = [f"p{i}" for i in range(5)]
    make_streams(c, names)
    first = c.list_streams(Limit=2)
    second = c.list_streams(NextToken=first["NextToken"], Limit=2)
    assert (second["StreamNames"], second["HasMoreStreams"]) == (["p2", "p3"], True)
    third = c.list_streams(NextToken=second["NextToken"], Limit=2)
    assert (third["StreamNames"], third["HasMoreStreams"], "NextToken" in third) == (["p4"], False, False)
    pages = list(c.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 2}))
    assert [p["StreamNames"] for p in pages] == [["p0", "p1"], ["p2", "p3"], ["p4"]]
    full = c.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 2}).build_full_result()
    assert full["StreamNames"] == names
    assert [s["StreamName"] for s in full["StreamSummaries"]] == names


def test_list_streams_summaries(start_server):
    srv = start_server("--status-delay-ms", "3000")
    c = srv.client()
    c.create_stream(StreamName="b-prov", ShardCount=1)
    c.create_stream(StreamName="a-ondemand", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    summaries = c.list_streams()["StreamSummaries"]
    for s in summaries:
        assert_recent(s.pop("StreamCreationTimestamp"))
    assert summaries == [
        {"StreamName": "a-ondemand", "StreamARN": arn("a-ondemand"), "StreamStatus": "CREATING", "StreamModeDetails": {"StreamMode": "ON_DEMAND"}},
        {"StreamName": "b-prov", "StreamARN": arn("b-prov"), "StreamStatus": "CREATING", "StreamModeDetails": {"StreamMode": "PROVISIONED"}},
    ]
    wait_active(c, "a-ondemand")
    wait_active(c, "b-prov")
    assert [s["StreamStatus"] for s in c.list_streams()["StreamSummaries"]] == ["ACTIVE", "ACTIVE"]


# ------------------------------------------------------------ StreamARN access


def test_stream_arn_addressing(kinesis, stream):
    name = stream(1)
    d = kinesis.describe_stream(StreamARN=arn(name))["StreamDescription"]
    assert (d["StreamName"], d["StreamARN"]) == (name, arn(name))
    s = kinesis.describe_stream_summary(StreamARN=arn(name))["StreamDescriptionSummary"]
    assert (s["StreamName"], s["OpenShardCount"]) == (name, 1)
    put = kinesis.put_record(StreamARN=arn(name), Data=b"by-arn", PartitionKey="k")
    assert put["ShardId"] == sid(0)
    it = kinesis.get_shard_iterator(StreamARN=arn(name), ShardId=sid(0), ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = kinesis.get_records(ShardIterator=it, StreamARN=arn(name))
    assert [(r["Data"], r["SequenceNumber"]) for r in got["Records"]] == [(b"by-arn", put["SequenceNumber"])]
    batch = kinesis.put_records(StreamARN=arn(name), Records=[{"Data": b"x", "PartitionKey": "k"}])
    assert [r["ShardId"] for r in batch["Records"]] == [sid(0)]
    missing = arn("no-such-stream-" + unique())
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
        kinesis.describe_stream(StreamARN=missing)
    assert error_of(e) == ("ResourceNotFoundException", f"Stream {missing.rsplit('/', 1)[1]} under account {ACCOUNT} not found.", 400)


# --------------------------------------------------------------------- AWS CLI


def test_cli_create_list_describe(start_server):
    srv = start_server()
    assert aws_cli(srv.endpoint, "kinesis", "create-stream", "--stream-name", "cli-b", "--shard-count", "3") == ""
    assert aws_cli(srv.endpoint, "kinesis", "create-stream", "--stream-name", "cli-a", "--shard-count", "1") == ""
    wait_active(srv.client(), "cli-a")
    wait_active(srv.client(), "cli-b")
    listed = aws_cli(srv.endpoint, "kinesis", "list-streams")
    # The CLI pages through NextToken itself and prints the merged result.
    assert listed["StreamNames"] == ["cli-a", "cli-b"]
    assert [x["StreamName"] for x in listed["StreamSummaries"]] == ["cli-a", "cli-b"]
    paged = aws_cli(srv.endpoint, "kinesis", "list-streams", "--page-size", "1")
    assert paged["StreamNames"] == ["cli-a", "cli-b"]
    d = aws_cli(srv.endpoint, "kinesis", "describe-stream", "--stream-name", "cli-b")["StreamDescription"]
    assert (d["StreamName"], d["StreamARN"], d["StreamStatus"]) == ("cli-b", arn("cli-b"), "ACTIVE")
    assert [s["HashKeyRange"] for s in d["Shards"]] == even_ranges(3)
    bad = aws_cli(srv.endpoint, "kinesis", "describe-stream", "--stream-name", "nope", check=False)
    assert bad.returncode == 255
    assert "ResourceNotFoundException" in bad.stderr and f"Stream nope under account {ACCOUNT} not found." in bad.stderr
