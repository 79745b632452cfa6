"""`riffle put`, `riffle tail` and `riffle streams` against a real `riffle
serve`, checked with boto3: records put from stdin come back from tail
byte-exact and in order per partition key, tail follows a split parent
before its children, starts at a timestamp, prints hex, text and raw,
stops cleanly on SIGINT and on a closed pipe; put retries what a
throttling server refuses and loses nothing; streams prints a stable
table; errors name AWS's error and message."""
import base64
import json
import os
import random
import re
import signal
import subprocess
import time
import urllib.request
from datetime import datetime, timezone

import pytest

from conftest import Server, riffle_bin, unique, wait_active

SUMMARY = re.compile(r"^put (\d+) records \((\d+) bytes\) to (\S+) in (\d+) PutRecords calls, \d+\.\d\d s$")
RETRIED = re.compile(r"^retried (\d+) refused records and (\d+) failed calls$")
ARRIVAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def riffle(*args, input=b"", timeout=120):
    return subprocess.run([riffle_bin(), *args], input=input, capture_output=True, timeout=timeout,
                          env={"PATH": "/usr/bin:/bin", "RUST_BACKTRACE": "0"})


@pytest.fixture(scope="module")
def srv():
    s = Server("--status-delay-ms", "0").start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture(scope="module")
def kinesis(srv):
    return srv.client()


def make_stream(kinesis, shards=1, **kw):
    name = unique("cli")
    kinesis.create_stream(StreamName=name, ShardCount=shards, **kw)
    wait_active(kinesis, name)
    return name


def put(srv, stream, lines, *flags):
    """Runs `riffle put` on `lines` (bytes without newlines); returns the
    summary's lines after checking the exit status."""
    r = riffle("put", stream, "--endpoint", srv.endpoint, *flags, input=b"".join(l + b"\n" for l in lines))
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b""
    return r.stdout.decode().splitlines()


def tail(srv, stream, *flags, timeout=120):
    r = riffle("tail", stream, "--endpoint", srv.endpoint, *flags, timeout=timeout)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def tail_json(srv, stream, *flags):
    return [json.loads(l) for l in tail(srv, stream, "--format", "json", *flags).decode().splitlines()]


def data_of(rec):
    if rec["encoding"] == "utf-8":
        return rec["data"].encode()
    assert rec["encoding"] == "base64"
    return base64.b64decode(rec["data"])


def test_put_lines_then_tail_them_back_exactly(srv, kinesis):
    stream = make_stream(kinesis, 4)
    rng = random.Random(7)
    users = [f"user-{i}" for i in range(25)]
    lines, keys = [], []
    for i in range(2000):
        kind = i % 4
        if kind in (0, 1):
            user = rng.choice(users)
            lines.append(json.dumps({"user": user, "n": i, "text": "café ☕"}, ensure_ascii=False).encode())
            keys.append(user)
        elif kind == 2:
            lines.append(f"plain line {i}\twith a tab".encode())
            keys.append(None)
        else:
            # Not UTF-8: JSON output carries it in base64.
            lines.append(b"\xff\xfe" + i.to_bytes(4, "big").replace(b"\n", b"N") + b" bin")
            keys.append(None)
    out = put(srv, stream, lines, "--key-field", "user")
    m = SUMMARY.match(out[0])
    assert m, out
    assert (int(m[1]), int(m[2]), m[3], int(m[4])) == (2000, sum(map(len, lines)), stream, 4)
    assert out[1:] == ["retried 0 refused records and 0 failed calls",
                       "1000 lines had no field user: random partition keys"]

    recs = tail_json(srv, stream, "--from", "trim-horizon", "--limit", "2000")
    assert len(recs) == 2000
    assert sorted(data_of(r) for r in recs) == sorted(lines)
    index = {l: i for i, l in enumerate(lines)}
    assert len(index) == 2000
    by_key = {}
    for r in recs:
        assert set(r) == {"shard", "sequence_number", "partition_key", "arrival_time", "data", "encoding"}
        assert ARRIVAL.match(r["arrival_time"]), r
        i = index[data_of(r)]
        if keys[i] is not None:
            assert r["partition_key"] == keys[i]
        else:
            assert re.fullmatch(r"[0-9a-f]{32}", r["partition_key"]), r
        by_key.setdefault(r["partition_key"], []).append(i)
    for key, order in by_key.items():
        assert order == sorted(order), key
    assert len({r["partition_key"] for r in recs if index[data_of(r)] % 4 >= 2}) == 1000
    # Binary lines came out as base64, the others as text.
    assert {r["encoding"] for r in recs if index[data_of(r)] % 4 == 3} == {"base64"}
    assert {r["encoding"] for r in recs if index[data_of(r)] % 4 != 3} == {"utf-8"}

    # What tail printed is what the stream holds, shard by shard.
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        held = kinesis.get_records(ShardIterator=it, Limit=10000)["Records"]
        printed = [r for r in recs if r["shard"] == shard["ShardId"]]
        assert [(r["sequence_number"], r["partition_key"], data_of(r)) for r in printed] == \
            [(h["SequenceNumber"], h["PartitionKey"], h["Data"]) for h in held]
        for r, h in zip(printed, held):
            t = datetime.strptime(r["arrival_time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
            assert abs(t.timestamp() - h["ApproximateArrivalTimestamp"].timestamp()) < 0.001


def test_tail_reads_a_split_parent_before_its_children(srv, kinesis):
    stream = make_stream(kinesis, 1)
    before = [f"k-{i}".encode() for i in range(150)]
    put(srv, stream, before, "--partition-key", "k")
    put(srv, stream, [f"r-{i}".encode() for i in range(50)])
    kinesis.split_shard(StreamName=stream, ShardToSplit="shardId-000000000000",
                        NewStartingHashKey=str(2 ** 127))
    wait_active(kinesis, stream)
    after = [f"k-{i}".encode() for i in range(150, 300)]
    put(srv, stream, after, "--partition-key", "k")
    put(srv, stream, [f"s-{i}".encode() for i in range(100)])

    recs = tail_json(srv, stream, "--from", "trim-horizon", "--limit", "450")
    shards = [r["shard"] for r in recs]
    assert shards[:200] == ["shardId-000000000000"] * 200
    assert set(shards[200:]) == {"shardId-000000000001", "shardId-000000000002"}
    assert [data_of(r) for r in recs if r["partition_key"] == "k"] == before + after
    assert sorted(data_of(r) for r in recs[200:] if r["partition_key"] != "k") == \
        sorted(f"s-{i}".encode() for i in range(100))


def test_tail_follows_records_put_while_it_runs_and_new_children(srv, kinesis):
    stream = make_stream(kinesis, 1)
    proc = subprocess.Popen([riffle_bin(), "tail", stream, "--endpoint", srv.endpoint, "--limit", "40"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)  # tail starts at LATEST: only what is put from now.
        put(srv, stream, [f"a{i}".encode() for i in range(20)], "--partition-key", "k")
        kinesis.split_shard(StreamName=stream, ShardToSplit="shardId-000000000000",
                            NewStartingHashKey=str(2 ** 127))
        wait_active(kinesis, stream)
        put(srv, stream, [f"b{i}".encode() for i in range(20)], "--partition-key", "k")
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.decode().splitlines() == [f"a{i}" for i in range(20)] + [f"b{i}" for i in range(20)]


def test_tail_from_a_timestamp(srv, kinesis):
    stream = make_stream(kinesis, 2)
    put(srv, stream, [f"old-{i}".encode() for i in range(50)])
    time.sleep(1.2)
    cut = time.time()
    time.sleep(1.2)
    new = [f"new-{i}".encode() for i in range(50)]
    put(srv, stream, new)
    rfc3339 = datetime.fromtimestamp(cut, timezone.utc).isoformat().replace("+00:00", "Z")
    for ts in (rfc3339, f"{cut:.3f}"):
        recs = tail_json(srv, stream, "--from", "timestamp", "--timestamp", ts, "--limit", "50")
        assert sorted(data_of(r) for r in recs) == sorted(new), ts
    r = riffle("tail", stream, "--endpoint", srv.endpoint, "--from", "timestamp", "--timestamp", "yesterday")
    assert r.returncode == 1
    assert r.stderr.decode() == ("Error: --timestamp yesterday is neither RFC 3339 (2026-01-02T15:04:05Z) "
                                 "nor seconds since the Unix epoch\n")
    r = riffle("tail", stream, "--endpoint", srv.endpoint, "--from", "timestamp")
    assert r.returncode == 2
    assert "--timestamp <TIMESTAMP>" in r.stderr.decode()


def test_tail_formats(srv, kinesis):
    stream = make_stream(kinesis, 1)
    lines = [b"hello", b"caf\xc3\xa9", b"\x00\xff\x10", b"{\"a\": 1}"]
    put(srv, stream, lines, "--partition-key", "k")
    assert tail(srv, stream, "--from", "trim-horizon", "--limit", "4", "--format", "hex") == \
        b"68656c6c6f\n636166c3a9\n00ff10\n7b2261223a20317d\n"
    assert tail(srv, stream, "--from", "trim-horizon", "--limit", "4", "--format", "raw") == b"".join(lines)
    assert tail(srv, stream, "--from", "trim-horizon", "--limit", "4") == \
        "hello\ncafé\n\x00\ufffd\x10\n{\"a\": 1}\n".encode()
    assert tail(srv, stream, "--from", "trim-horizon", "--limit", "2", "--format", "hex") == \
        b"68656c6c6f\n636166c3a9\n"


def test_tail_ends_cleanly_on_sigint_and_on_a_closed_pipe(srv, kinesis):
    stream = make_stream(kinesis, 1)
    put(srv, stream, [b"first"])
    proc = subprocess.Popen([riffle_bin(), "tail", stream, "--endpoint", srv.endpoint, "--from", "trim-horizon"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"first\n"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    assert proc.stderr.read() == b""

    proc = subprocess.Popen([riffle_bin(), "tail", stream, "--endpoint", srv.endpoint, "--from", "trim-horizon"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"first\n"
    proc.stdout.close()
    put(srv, stream, [b"second"])
    assert proc.wait(timeout=10) == 0
    assert proc.stderr.read() == b""


def test_put_retries_what_a_throttled_stream_refuses(start_server):
    s = start_server("--status-delay-ms", "0", "--throttle")
    kinesis = s.client()
    stream = make_stream(kinesis, 1)
    lines = [f"{i:05d}".encode() + b"x" * 200 for i in range(3000)]
    out = put(s, stream, lines, "--partition-key", "k")
    m = SUMMARY.match(out[0])
    assert m and (int(m[1]), int(m[2])) == (3000, sum(map(len, lines))), out
    refused = int(RETRIED.match(out[1])[1])
    assert refused > 0, out
    # More calls than the six full batches: the refused records went again.
    assert int(m[4]) > 6
    assert out[2:] == []
    recs = tail_json(s, stream, "--from", "trim-horizon", "--limit", "3000")
    assert [data_of(r) for r in recs] == lines


def test_put_retries_batches_refused_whole(start_server):
    # LocalStack's KINESIS_ERROR_PROBABILITY: a PutRecords call refuses all
    # its records (ProvisionedThroughputExceededException) half the time.
    s = start_server("--status-delay-ms", "0", "--kinesis-error-probability", "0.5", "--fault-seed", "3")
    kinesis = s.client()
    stream = make_stream(kinesis, 2)
    lines = [f"line {i}".encode() for i in range(1200)]
    out = put(s, stream, lines, "--partition-key", "one")
    m = SUMMARY.match(out[0])
    assert m and int(m[1]) == 1200, out
    refused = int(RETRIED.match(out[1])[1])
    # Whole batches (500, 500, 200) were refused and sent again.
    assert refused > 0 and int(m[4]) > 3, out
    recs = tail_json(s, stream, "--from", "trim-horizon", "--limit", "1200")
    assert [data_of(r) for r in recs] == lines


def test_put_at_a_rate(srv, kinesis):
    stream = make_stream(kinesis, 1)
    started = time.time()
    out = put(srv, stream, [f"{i}".encode() for i in range(30)], "--rate", "20")
    elapsed = time.time() - started
    m = SUMMARY.match(out[0])
    # Four records a call, five calls a second: 30 records take 1.4 s or more.
    assert m and (int(m[1]), int(m[4])) == (30, 8), out
    assert 1.4 <= elapsed < 20


def test_streams_table_on_a_pipe(start_server):
    s = start_server("--status-delay-ms", "0")
    kinesis = s.client()
    kinesis.create_stream(StreamName="orders", ShardCount=3)
    kinesis.create_stream(StreamName="clicks", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    wait_active(kinesis, "orders")
    wait_active(kinesis, "clicks")
    kinesis.increase_stream_retention_period(StreamName="orders", RetentionPeriodHours=48)
    wait_active(kinesis, "orders")
    # Records in and out of orders; the rates are over the last minute of
    # the server's once-a-second samples.
    kinesis.put_records(StreamName="orders", Records=[
        {"Data": b"x", "PartitionKey": str(i)} for i in range(300)])
    shard = kinesis.list_shards(StreamName="orders")["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName="orders", ShardId=shard,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = len(kinesis.get_records(ShardIterator=it)["Records"])
    time.sleep(2.5)
    r = riffle("streams", "--endpoint", s.endpoint)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "MODE", "SHARDS", "RETENTION", "IN/S", "OUT/S"]
    clicks = lines[1].split()
    orders = lines[2].split()
    assert clicks == ["clicks", "ACTIVE", "ON_DEMAND", "4", "24h", "0.0", "0.0"]
    assert orders[:5] == ["orders", "ACTIVE", "PROVISIONED", "3", "48h"]
    # 300 in and `got` out over the few seconds the stream has existed.
    assert 300 / 10 < float(orders[5]) <= 300
    assert got / 10 < float(orders[6]) <= got
    text = urllib.request.urlopen(s.endpoint + "/metrics", timeout=5).read().decode()
    assert 'riffle_stream_incoming_records_total{region="us-east-1",stream="orders"} 300' in text
    assert f'riffle_stream_outgoing_records_total{{region="us-east-1",stream="orders"}} {got}' in text
    # Another region has none of them.
    r = riffle("streams", "--endpoint", s.endpoint, "--region", "eu-west-1")
    assert r.stdout.decode() == "NAME  STATUS  MODE  SHARDS  RETENTION  IN/S  OUT/S\n"


def test_errors_name_the_aws_error(srv, kinesis):
    r = riffle("put", "no-such-stream", "--endpoint", srv.endpoint, input=b"a\nb\n")
    assert r.returncode == 1
    assert r.stdout == b""
    assert r.stderr.decode() == (
        "Error: putting lines 1 to 2 to no-such-stream; 0 records before them were put\n\n"
        "Caused by:\n"
        "    PutRecords failed: ResourceNotFoundException (HTTP 400): "
        "Stream no-such-stream under account 000000000000 not found.\n")
    r = riffle("tail", "no-such-stream", "--endpoint", srv.endpoint)
    assert r.returncode == 1
    assert r.stderr.decode() == (
        "Error: ListShards failed: ResourceNotFoundException (HTTP 400): "
        "Stream no-such-stream under account 000000000000 not found.\n")
    long_key = "k" * 257
    r = riffle("put", "no-such-stream", "--endpoint", srv.endpoint, "--partition-key", long_key, input=b"a\n")
    assert r.returncode == 1
    assert r.stderr.decode() == \
        "Error: --partition-key: the partition key has 257 characters (Kinesis takes at most 256)\n"
    stream = make_stream(kinesis)
    r = riffle("put", stream, "--endpoint", srv.endpoint, "--key-field", "u",
               input=b'{"u": "a"}\n{"u": ""}\n{"u": "b"}\n')
    assert r.returncode == 1
    assert r.stderr.decode() == (f"Error: line 2: the partition key is empty (Kinesis needs 1 to 256 characters); "
                                 f"1 records before it were put to {stream}\n")
    assert tail(srv, stream, "--from", "trim-horizon", "--limit", "1") == b'{"u": "a"}\n'
    directory = os.open("/", os.O_RDONLY)
    try:
        r = subprocess.run([riffle_bin(), "put", stream, "--endpoint", srv.endpoint], stdin=directory,
                           capture_output=True, timeout=60, env={"PATH": "/usr/bin:/bin", "RUST_BACKTRACE": "0"})
    finally:
        os.close(directory)
    assert r.returncode == 1
    assert r.stderr.decode() == f"Error: reading stdin after line 0: Is a directory (os error 21); 0 records were put to {stream}\n"
    closed = Server()
    r = riffle("streams", "--endpoint", closed.endpoint)
    assert r.returncode == 1
    assert r.stderr.decode().startswith(f"Error: connecting to 127.0.0.1:{closed.port}")
