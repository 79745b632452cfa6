"""Enhanced fan-out: Register/Describe/List/DeregisterStreamConsumer and
SubscribeToShard through boto3's event-stream support (HTTP/1.1)."""
import time

import pytest

from conftest import ACCOUNT, REGION, error_of

MAX = 2**128


def sid(i):
    return f"shardId-{i:012d}"


def arn(name):
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def wait_consumer(client, consumer_arn, status="ACTIVE", timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if client.describe_stream_consumer(ConsumerARN=consumer_arn)["ConsumerDescription"]["ConsumerStatus"] == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"consumer {consumer_arn} not {status}")


def active_consumer(client, stream_name, name="fan"):
    c = client.register_stream_consumer(StreamARN=arn(stream_name), ConsumerName=name)["Consumer"]
    wait_consumer(client, c["ConsumerARN"])
    return c["ConsumerARN"]


# ------------------------------------------------------------------ consumers


def test_register_describe_consumer(slow_kinesis, slow_kinesis_stream):
    kinesis = slow_kinesis
    stream = slow_kinesis_stream
    name = stream(1)
    before = int(time.time())
    c = kinesis.register_stream_consumer(StreamARN=arn(name), ConsumerName="app-1")["Consumer"]
    created = c.pop("ConsumerCreationTimestamp")
    secs = int(created.timestamp())
    assert before - 2 <= secs <= time.time() + 2 and created.microsecond == 0
    assert c == {"ConsumerName": "app-1", "ConsumerARN": f"{arn(name)}/consumer/app-1:{secs}", "ConsumerStatus": "CREATING"}
    d = kinesis.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])["ConsumerDescription"]
    assert d == {**c, "ConsumerStatus": "CREATING", "ConsumerCreationTimestamp": created, "StreamARN": arn(name)}
    wait_consumer(kinesis, c["ConsumerARN"])
    by_name = kinesis.describe_stream_consumer(StreamARN=arn(name), ConsumerName="app-1")["ConsumerDescription"]
    assert by_name == {**d, "ConsumerStatus": "ACTIVE"}
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["ConsumerCount"] == 1


def test_register_duplicate_consumer(kinesis, stream):
    name = stream(1)
    kinesis.register_stream_consumer(StreamARN=arn(name), ConsumerName="dup")
    with pytest.raises(kinesis.exceptions.ResourceInUseException) as e:
        kinesis.register_stream_consumer(StreamARN=arn(name), ConsumerName="dup")
    # AWS wording not captured (docs/aws-behaviour.md §7); this is Riffle's text.
    assert error_of(e) == ("ResourceInUseException", f"Consumer dup under stream {name} already exists for account {ACCOUNT}.", 400)


def test_list_consumers_with_paging(kinesis, stream):
    name = stream(1)
    made = [kinesis.register_stream_consumer(StreamARN=arn(name), ConsumerName=f"c{i}")["Consumer"] for i in range(3)]
    listed = kinesis.list_stream_consumers(StreamARN=arn(name))
    assert listed["Consumers"] == made and "NextToken" not in listed
    first = kinesis.list_stream_consumers(StreamARN=arn(name), MaxResults=2)
    assert [c["ConsumerName"] for c in first["Consumers"]] == ["c0", "c1"]
    rest = kinesis.list_stream_consumers(StreamARN=arn(name), MaxResults=2, NextToken=first["NextToken"])
    assert ([c["ConsumerName"] for c in rest["Consumers"]], "NextToken" in rest) == (["c2"], False)
    pages = kinesis.get_paginator("list_stream_consumers").paginate(StreamARN=arn(name), PaginationConfig={"PageSize": 1})
    assert [c["ConsumerARN"] for c in pages.build_full_result()["Consumers"]] == [c["ConsumerARN"] for c in made]


def test_deregister_consumer(kinesis, stream):
    name = stream(1)
    a = active_consumer(kinesis, name, "gone-by-arn")
    b = active_consumer(kinesis, name, "gone-by-name")
    kinesis.deregister_stream_consumer(ConsumerARN=a)
    kinesis.deregister_stream_consumer(StreamARN=arn(name), ConsumerName="gone-by-name")
    assert kinesis.describe_stream_consumer(ConsumerARN=a)["ConsumerDescription"]["ConsumerStatus"] == "DELETING"
    deadline = time.time() + 10
    while kinesis.list_stream_consumers(StreamARN=arn(name))["Consumers"] and time.time() < deadline:
        time.sleep(0.05)
    assert kinesis.list_stream_consumers(StreamARN=arn(name))["Consumers"] == []
    for consumer_arn in (a, b):
        with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
            kinesis.describe_stream_consumer(ConsumerARN=consumer_arn)
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["ConsumerCount"] == 0


# ----------------------------------------------------------- SubscribeToShard


def subscribe(client, consumer_arn, **position):
    out = client.subscribe_to_shard(ConsumerARN=consumer_arn, ShardId=sid(0), StartingPosition=position)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    return out["EventStream"]


def collect(events, want, timeout=10):
    """Reads SubscribeToShardEvents until `want` records arrived."""
    got, seen = [], []
    deadline = time.time() + timeout
    for ev in events:
        assert list(ev) == ["SubscribeToShardEvent"]
        e = ev["SubscribeToShardEvent"]
        seen.append(e)
        got += e["Records"]
        if len(got) >= want or time.time() > deadline:
            break
    return got, seen


def test_subscribe_trim_horizon_then_live_records(server, stream):
    client = server.client(read_timeout=15)
    name = stream(1)
    r0 = client.put_record(StreamName=name, Data=b"before", PartitionKey="k")["SequenceNumber"]
    consumer = active_consumer(client, name)
    events = subscribe(client, consumer, Type="TRIM_HORIZON")
    # botocore consumed the initial-response event; the first event carries records.
    got, seen = collect(events, 1)
    assert [(r["Data"], r["PartitionKey"], r["SequenceNumber"]) for r in got] == [(b"before", "k", r0)]
    assert sorted(got[0]) == ["ApproximateArrivalTimestamp", "Data", "PartitionKey", "SequenceNumber"]
    assert seen[-1]["ContinuationSequenceNumber"] == r0
    assert seen[-1]["MillisBehindLatest"] == 0
    r1 = client.put_record(StreamName=name, Data=b"\x00live-1", PartitionKey="k")["SequenceNumber"]
    r2 = client.put_record(StreamName=name, Data=b"live-2", PartitionKey="k")["SequenceNumber"]
    got, seen = collect(events, 2)
    assert [(r["Data"], r["SequenceNumber"]) for r in got] == [(b"\x00live-1", r1), (b"live-2", r2)]
    assert seen[-1]["ContinuationSequenceNumber"] == r2
    events.close()


def test_subscribe_latest_and_continuation(server, stream):
    client = server.client(read_timeout=15)
    name = stream(1)
    client.put_record(StreamName=name, Data=b"old", PartitionKey="k")
    consumer = active_consumer(client, name)
    events = subscribe(client, consumer, Type="LATEST")
    first = next(iter(events))["SubscribeToShardEvent"]
    assert first["Records"] == []
    assert len(first["ContinuationSequenceNumber"]) == 56
    seq = client.put_record(StreamName=name, Data=b"new", PartitionKey="k")["SequenceNumber"]
    got, seen = collect(events, 1)
    assert [(r["Data"], r["SequenceNumber"]) for r in got] == [(b"new", seq)]
    assert seen[-1]["ContinuationSequenceNumber"] == seq
    events.close()
    # Resuming after the continuation sequence number skips what was seen.
    tail = client.put_record(StreamName=name, Data=b"after", PartitionKey="k")["SequenceNumber"]
    # A closed subscription releases its claim at once; AWS allows one call
    # per second per consumer and shard.
    time.sleep(1.1)
    events = subscribe(client, consumer, Type="AFTER_SEQUENCE_NUMBER", SequenceNumber=seq)
    got, _ = collect(events, 1)
    assert [(r["Data"], r["SequenceNumber"]) for r in got] == [(b"after", tail)]
    events.close()


def test_subscribe_consumer_not_active(slow_kinesis, slow_kinesis_stream):
    kinesis = slow_kinesis
    stream = slow_kinesis_stream
    name = stream(1)
    c = kinesis.register_stream_consumer(StreamARN=arn(name), ConsumerName="early")["Consumer"]
    secs = int(c["ConsumerCreationTimestamp"].timestamp())
    with pytest.raises(kinesis.exceptions.ResourceInUseException) as e:
        kinesis.subscribe_to_shard(ConsumerARN=c["ConsumerARN"], ShardId=sid(0), StartingPosition={"Type": "LATEST"})
    assert error_of(e) == (
        "ResourceInUseException",
        f"Consumer early with creation timestamp {secs} under stream {name} and account {ACCOUNT} is not in ACTIVE status.",
        400,
    )


def test_second_subscription_is_resource_in_use(server, stream):
    client = server.client(read_timeout=15)
    name = stream(1)
    consumer = active_consumer(client, name)
    events = subscribe(client, consumer, Type="LATEST")
    assert next(iter(events))["SubscribeToShardEvent"]["Records"] == []
    time.sleep(1)  # one call per second per consumer and shard
    with pytest.raises(client.exceptions.ResourceInUseException) as e:
        subscribe(client, consumer, Type="LATEST")
    # docs/aws-behaviour.md §4.16: a second subscription while one is active is ResourceInUse;
    # AWS's text is not captured, this is Riffle's.
    assert error_of(e) == (
        "ResourceInUseException",
        f"Another active subscription exists for consumer {consumer} on shard {sid(0)}.",
        400,
    )
    events.close()


def test_one_call_per_second_per_consumer_and_shard(server, stream):
    client = server.client(read_timeout=15)
    name = stream(1)
    consumer = active_consumer(client, name)
    events = subscribe(client, consumer, Type="LATEST")
    assert next(iter(events))["SubscribeToShardEvent"]["Records"] == []
    events.close()
    with pytest.raises(client.exceptions.LimitExceededException) as e:
        subscribe(client, consumer, Type="LATEST")
    assert error_of(e) == ("LimitExceededException", f"Rate exceeded for consumer {consumer} and shard {sid(0)}.", 400)
    time.sleep(1.1)
    events = subscribe(client, consumer, Type="LATEST")
    assert next(iter(events))["SubscribeToShardEvent"]["Records"] == []
    events.close()


def test_a_call_five_seconds_later_takes_over(start_server):
    s = start_server("--status-delay-ms", "0")
    client = s.client(read_timeout=15)
    client.create_stream(StreamName="takeover", ShardCount=1)
    consumer = active_consumer(client, "takeover")
    first = subscribe(client, consumer, Type="LATEST")
    it = iter(first)
    assert next(it)["SubscribeToShardEvent"]["Records"] == []
    s.advance_clock(5_000)
    second = subscribe(client, consumer, Type="LATEST")
    assert next(iter(second))["SubscribeToShardEvent"]["Records"] == []
    # The first subscription ends with ResourceInUseException.
    with pytest.raises(Exception) as e:
        for _ in range(10):
            next(it)
    err = e.value.response["Error"] if hasattr(e.value, "response") else None
    assert err == {
        "Code": "ResourceInUseException",
        "Message": f"Another subscription for consumer {consumer} on shard {sid(0)} took over this one.",
    }
    second.close()


def test_deregistering_a_consumer_ends_its_subscriptions(start_server):
    s = start_server("--status-delay-ms", "0")
    client = s.client(read_timeout=15)
    client.create_stream(StreamName="dereg", ShardCount=1)
    consumer = active_consumer(client, "dereg")
    events = subscribe(client, consumer, Type="LATEST")
    it = iter(events)
    assert next(it)["SubscribeToShardEvent"]["Records"] == []
    client.deregister_stream_consumer(ConsumerARN=consumer)
    started = time.time()
    with pytest.raises(Exception) as e:
        for _ in range(10):
            next(it)
    assert time.time() - started < 5
    assert e.value.response["Error"] == {
        "Code": "ResourceNotFoundException",
        "Message": f"Consumer fan under stream dereg under account {ACCOUNT} not found.",
    }


def test_subscribe_to_shard_from_a_browser_exposes_what_the_sdk_reads(kinesis, stream):
    # docs/aws-behaviour.md §2.2 step 3: an event-stream response carries the same CORS headers as any other.
    # Its Content-Type is CORS-safelisted (readable without exposure); :event-type and :message-type are
    # headers inside each binary event message, not HTTP headers, so nothing more needs exposing.
    name = stream(1)
    consumer_arn = active_consumer(kinesis, name, "browser")

    def add_origin(request, **_):
        request.headers["Origin"] = "http://example.com"

    kinesis.meta.events.register("before-sign.kinesis.SubscribeToShard", add_origin)
    try:
        out = kinesis.subscribe_to_shard(ConsumerARN=consumer_arn, ShardId=sid(0), StartingPosition={"Type": "LATEST"})
    finally:
        kinesis.meta.events.unregister("before-sign.kinesis.SubscribeToShard", add_origin)
    out["EventStream"].close()
    headers = out["ResponseMetadata"]["HTTPHeaders"]
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert headers["access-control-allow-origin"] == "*"
    exposed = headers["access-control-expose-headers"].split(",")
    assert exposed == ["x-amzn-RequestId", "x-amzn-ErrorType", "x-amz-request-id", "x-amz-id-2", "x-amzn-ErrorMessage", "Date"]
    assert headers["content-type"] == "application/vnd.amazon.eventstream"
    assert headers["x-amzn-requestid"] == out["ResponseMetadata"]["RequestId"]
    assert headers["x-amz-id-2"]
