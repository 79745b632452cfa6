"""Iterator age on /metrics, named after CloudWatch's Data Streams metrics
(`GetRecords.IteratorAgeMilliseconds` per stream, the enhanced shard-level
`IteratorAgeMilliseconds` per shard): a boto3 consumer reads behind the
tip, and the metrics carry exactly the MillisBehindLatest its responses did."""
import re
import urllib.request

from conftest import REGION, unique, wait_active

STREAM = "riffle_streams_get_records_iterator_age_milliseconds"
SHARD = "riffle_streams_shard_iterator_age_milliseconds"
HOUR_MS = 3_600_000
# Hash keys that land in the first and second of two shards.
FIRST, SECOND = "0", str(2**127)


def metrics(srv):
    return urllib.request.urlopen(srv.endpoint + "/metrics", timeout=5).read().decode()


def samples(text, name):
    """{labels: value} of every sample of `name`."""
    out = {}
    for m in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


def stream_age(text, stream):
    return samples(text, STREAM).get(f'region="{REGION}",stream="{stream}"')


def shard_age(text, stream, shard):
    return samples(text, SHARD).get(f'region="{REGION}",shard="{shard}",stream="{stream}"')


def iterator(kinesis, name, shard):
    return kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]


def test_iterator_age_is_what_get_records_reported(start_server):
    # Its own server: the test moves the service clock forward.
    srv = start_server("--status-delay-ms", "0")
    kinesis = srv.client()
    name, idle = unique("age"), unique("idle")
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.create_stream(StreamName=idle, ShardCount=1)
    wait_active(kinesis, name)
    wait_active(kinesis, idle)
    shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=name)["Shards"]]
    assert shards == ["shardId-000000000000", "shardId-000000000001"]

    # Nothing read yet: every open shard reports 0, and so does the stream.
    text = metrics(srv)
    assert stream_age(text, name) == 0
    assert [shard_age(text, name, s) for s in shards] == [0, 0]
    assert stream_age(text, idle) == 0
    assert shard_age(text, idle, "shardId-000000000000") == 0

    for i in range(3):
        kinesis.put_record(StreamName=name, Data=b"old-%d" % i, PartitionKey="k", ExplicitHashKey=FIRST)
    # The records are an hour old by the time the consumer reads them.
    srv.advance_clock(HOUR_MS)
    kinesis.put_record(StreamName=name, Data=b"new", PartitionKey="k", ExplicitHashKey=FIRST)

    # A consumer reading two at a time from the start is an hour behind.
    first = kinesis.get_records(ShardIterator=iterator(kinesis, name, shards[0]), Limit=2)
    assert [r["Data"] for r in first["Records"]] == [b"old-0", b"old-1"]
    behind = first["MillisBehindLatest"]
    assert HOUR_MS <= behind < HOUR_MS + 30_000
    # The other shard is empty: its reader is at the tip.
    empty = kinesis.get_records(ShardIterator=iterator(kinesis, name, shards[1]), Limit=2)
    assert (empty["Records"], empty["MillisBehindLatest"]) == ([], 0)

    text = metrics(srv)
    assert shard_age(text, name, shards[0]) == behind
    assert shard_age(text, name, shards[1]) == 0
    assert stream_age(text, name) == behind
    # Another stream's figures are its own.
    assert stream_age(text, idle) == 0

    # Catching up: the latest read reports 0 and replaces the hour.
    rest = kinesis.get_records(ShardIterator=first["NextShardIterator"], Limit=10)
    assert [r["Data"] for r in rest["Records"]] == [b"old-2", b"new"]
    assert rest["MillisBehindLatest"] == 0
    text = metrics(srv)
    assert shard_age(text, name, shards[0]) == 0
    assert stream_age(text, name) == 0

    # Every sample of both families is a gauge with help text.
    assert f"# TYPE {STREAM} gauge" in text
    assert f"# TYPE {SHARD} gauge" in text


def test_deleted_stream_leaves_the_metrics(start_server):
    srv = start_server("--status-delay-ms", "0")
    kinesis = srv.client()
    name = unique("gone")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_active(kinesis, name)
    kinesis.get_records(ShardIterator=iterator(kinesis, name, "shardId-000000000000"))
    assert stream_age(metrics(srv), name) == 0
    kinesis.delete_stream(StreamName=name)
    text = metrics(srv)
    assert stream_age(text, name) is None
    assert shard_age(text, name, "shardId-000000000000") is None
