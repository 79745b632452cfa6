"""Writing and reading records: PutRecord(s), GetShardIterator, GetRecords,
iterator expiry, retention, and the CBOR wire format."""
import datetime
import hashlib
import re
import time
import urllib.error
import urllib.request

import cbor2
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCOUNT, REGION, error_of, unique, wait_active

MAX = 2**128
SEQ = re.compile(r"^\d{56}$")


def sid(i):
    return f"shardId-{i:012d}"


def ranges(n):
    step = MAX // n
    return [(i * step, MAX - 1 if i == n - 1 else (i + 1) * step - 1) for i in range(n)]


def expected_shard(key, n):
    """The shard AWS routes partition key `key` to: MD5 as a big-endian int."""
    h = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")
    return next(sid(i) for i, (lo, hi) in enumerate(ranges(n)) if lo <= h <= hi)


def iterator(client, name, shard=0, kind="TRIM_HORIZON", **kw):
    return client.get_shard_iterator(StreamName=name, ShardId=sid(shard), ShardIteratorType=kind, **kw)["ShardIterator"]


def read_all(client, it, limit=None):
    """Follows NextShardIterator until an empty page; returns all records."""
    out = []
    while True:
        page = client.get_records(ShardIterator=it, **({"Limit": limit} if limit else {}))
        out += page["Records"]
        if not page["Records"] or "NextShardIterator" not in page:
            return out
        it = page["NextShardIterator"]


def datas(records):
    return [r["Data"] for r in records]


def dedicated(start_server, shards=1):
    """A private server (for tests that move its clock) with one ACTIVE stream."""
    srv = start_server()
    c = srv.client()
    name = unique()
    c.create_stream(StreamName=name, ShardCount=shards)
    srv.advance_clock(1000)  # past the CREATING delay
    wait_active(c, name)
    return srv, c, name


def server_now_ms(srv):
    return srv.advance_clock(0)["now_ms"]


# ------------------------------------------------------------------ PutRecord


def test_put_record_outputs_name_the_encryption_type(server, kinesis, stream):
    name = stream(1)
    out = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    del out["ResponseMetadata"]
    assert out == {"ShardId": sid(0), "SequenceNumber": out["SequenceNumber"], "EncryptionType": "NONE"}
    # PutRecords as boto3 sends it (the fast path) and as CBOR (the generic path).
    batch = kinesis.put_records(StreamName=name, Records=[{"Data": b"a", "PartitionKey": "k"}, {"Data": b"b", "PartitionKey": "k"}])
    del batch["ResponseMetadata"]
    assert batch == {"FailedRecordCount": 0, "EncryptionType": "NONE",
                     "Records": [{"SequenceNumber": r["SequenceNumber"], "ShardId": sid(0)} for r in batch["Records"]]}
    cbor = cbor_call(server.endpoint, "PutRecords", {"StreamName": name, "Records": [{"Data": b"c", "PartitionKey": "k"}]})
    assert cbor == {"FailedRecordCount": 0, "EncryptionType": "NONE", "Records": [{"SequenceNumber": cbor["Records"][0]["SequenceNumber"], "ShardId": sid(0)}]}


def test_put_record_routes_by_md5(kinesis, stream):
    name = stream(4)
    keys = ["a", "b", "c", "alpha", "user-42", "order#17", "ünïcödé", "x" * 256, "0", "zz"]
    got = [kinesis.put_record(StreamName=name, Data=k.encode(), PartitionKey=k)["ShardId"] for k in keys]
    assert got == [expected_shard(k, 4) for k in keys]
    # The sample spreads over several shards, so routing is really exercised.
    assert len(set(got)) >= 3
    # Each record is in the shard PutRecord named, with its partition key.
    for shard in sorted(set(got)):
        recs = read_all(kinesis, iterator(kinesis, name, int(shard[-12:])))
        assert [(r["PartitionKey"], r["Data"]) for r in recs] == [(k, k.encode()) for k, s in zip(keys, got) if s == shard]


def test_put_record_explicit_hash_key_routing(kinesis, stream):
    name = stream(4)
    r = ranges(4)
    cases = [("0", sid(0)), (str(r[0][1]), sid(0)), (str(r[1][0]), sid(1)), (str(r[2][1]), sid(2)), (str(r[3][0]), sid(3)), (str(MAX - 1), sid(3))]
    for ehk, shard in cases:
        # The partition key alone would go to shard 0 or elsewhere; ExplicitHashKey wins.
        out = kinesis.put_record(StreamName=name, Data=b"e", PartitionKey="a", ExplicitHashKey=ehk)
        assert out["ShardId"] == shard, ehk


def test_put_record_explicit_hash_key_out_of_range(kinesis, stream):
    name = stream(1)
    with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
        kinesis.put_record(StreamName=name, Data=b"e", PartitionKey="a", ExplicitHashKey=str(MAX))
    assert error_of(e) == (
        "InvalidArgumentException",
        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was 340282366920938463463374607431768211456",
        400,
    )
    with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
        kinesis.put_records(StreamName=name, Records=[{"Data": b"ok", "PartitionKey": "a"}, {"Data": b"e", "PartitionKey": "a", "ExplicitHashKey": str(MAX)}])
    assert error_of(e)[0] == "InvalidArgumentException"
    # Nothing from the failed PutRecords was written.
    assert read_all(kinesis, iterator(kinesis, name)) == []


def test_put_record_sequence_number_for_ordering(kinesis, stream):
    name = stream(1)
    first = kinesis.put_record(StreamName=name, Data=b"1", PartitionKey="k")["SequenceNumber"]
    second = kinesis.put_record(StreamName=name, Data=b"2", PartitionKey="k", SequenceNumberForOrdering=first)["SequenceNumber"]
    third = kinesis.put_record(StreamName=name, Data=b"3", PartitionKey="other", SequenceNumberForOrdering=second)["SequenceNumber"]
    assert int(first) < int(second) < int(third)
    assert [r["SequenceNumber"] for r in read_all(kinesis, iterator(kinesis, name))] == [first, second, third]


def test_sequence_numbers_increase_per_shard(kinesis, stream):
    name = stream(2)
    per_shard = {}
    for i in range(30):
        out = kinesis.put_record(StreamName=name, Data=b"%d" % i, PartitionKey=f"key-{i}")
        assert SEQ.match(out["SequenceNumber"]), out["SequenceNumber"]
        per_shard.setdefault(out["ShardId"], []).append(int(out["SequenceNumber"]))
    assert sorted(per_shard) == [sid(0), sid(1)]
    for seqs in per_shard.values():
        assert all(a < b for a, b in zip(seqs, seqs[1:]))


def test_put_record_missing_stream(kinesis):
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
        kinesis.put_record(StreamName="missing-put", Data=b"x", PartitionKey="k")
    assert error_of(e) == ("ResourceNotFoundException", f"Stream missing-put under account {ACCOUNT} not found.", 400)


# ----------------------------------------------------------------- PutRecords


def test_put_records_500_in_order_and_routed(kinesis, stream):
    name = stream(3)
    records = [{"Data": f"record-{i}".encode(), "PartitionKey": f"pk-{i}"} for i in range(500)]
    out = kinesis.put_records(StreamName=name, Records=records)
    assert (out["FailedRecordCount"], out["EncryptionType"]) == (0, "NONE")
    assert len(out["Records"]) == 500
    assert [sorted(r) for r in out["Records"]] == [["SequenceNumber", "ShardId"]] * 500
    assert [r["ShardId"] for r in out["Records"]] == [expected_shard(f"pk-{i}", 3) for i in range(500)]
    for shard in range(3):
        got = read_all(kinesis, iterator(kinesis, name, shard))
        mine = [(rec, res) for rec, res in zip(records, out["Records"]) if res["ShardId"] == sid(shard)]
        assert [(r["Data"], r["PartitionKey"], r["SequenceNumber"]) for r in got] == [
            (rec["Data"], rec["PartitionKey"], res["SequenceNumber"]) for rec, res in mine
        ]
        seqs = [int(res["SequenceNumber"]) for _, res in mine]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_put_records_501_is_validation_error(server, stream):
    name = stream(1)
    raw = server.client(parameter_validation=False)
    with pytest.raises(raw.exceptions.ClientError) as e:
        raw.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}] * 501)
    code, message, status = error_of(e)
    assert (code, status) == ("ValidationException", 400)
    # docs/aws-behaviour.md §1.3: a list of structures is rendered with Java's toString.
    entry = r"com\.amazonaws\.kinesis\.v20131202\.PutRecordsRequestEntry@[0-9a-f]+"
    assert re.fullmatch(
        rf"1 validation error detected: Value '\[{entry}(, {entry}){{500}}\]' at 'records' failed to satisfy constraint: "
        r"Member must have length less than or equal to 500",
        message,
    ), message[:300]


def test_put_records_over_5_mib_is_refused(kinesis, stream):
    name = stream(1)
    mib = b"\xab" * (1024 * 1024)
    records = [{"Data": mib, "PartitionKey": k} for k in "abcde"]  # 5 MiB of data + 5 bytes of keys
    with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
        kinesis.put_records(StreamName=name, Records=records)
    # AWS's text, as SDK users quote it (docs/aws-behaviour.md §4.7).
    assert error_of(e) == ("InvalidArgumentException", "Records size exceeds 5 MB limit", 400)
    # Exactly 5 MiB including partition keys (each record exactly 1 MiB with its key) is accepted.
    records = [{"Data": mib[:-1], "PartitionKey": k} for k in "abcde"]
    out = kinesis.put_records(StreamName=name, Records=records)
    assert out["FailedRecordCount"] == 0


def test_record_size_includes_the_partition_key(server, kinesis, stream):
    name = stream(1)
    mib = 1024 * 1024
    refused = ("InvalidArgumentException",
               f"Record size exceeds the stream's maximum record size of {mib} bytes. Record size (data and partition key): {mib + 3} bytes.", 400)
    # 1 MiB of data fits the data constraint, but not with its 3-byte key.
    with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
        kinesis.put_record(StreamName=name, Data=b"d" * mib, PartitionKey="abc")
    assert error_of(e) == refused
    # PutRecords as boto3 sends it (the fast path) and in CBOR (the generic path).
    with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
        kinesis.put_records(StreamName=name, Records=[{"Data": b"ok", "PartitionKey": "k"}, {"Data": b"d" * mib, "PartitionKey": "abc"}])
    assert error_of(e) == refused
    status, payload = cbor_call_raw(server.endpoint, "PutRecords", {"StreamName": name, "Records": [{"Data": b"d" * mib, "PartitionKey": "abc"}]})
    assert (status, payload) == (400, {"__type": "InvalidArgumentException", "message": refused[1]})
    assert read_all(kinesis, iterator(kinesis, name)) == []
    # Exactly 1 MiB with the key is accepted.
    assert kinesis.put_record(StreamName=name, Data=b"d" * (mib - 3), PartitionKey="abc")["ShardId"] == sid(0)
    assert kinesis.put_records(StreamName=name, Records=[{"Data": b"e" * (mib - 3), "PartitionKey": "abc"}])["FailedRecordCount"] == 0
    assert [len(r["Data"]) + len(r["PartitionKey"]) for r in read_all(kinesis, iterator(kinesis, name))] == [mib, mib]


# ------------------------------------------------------------- GetShardIterator


def test_shard_iterator_types(start_server):
    srv, c, name = dedicated(start_server)
    r0 = c.put_record(StreamName=name, Data=b"r0", PartitionKey="k")["SequenceNumber"]
    srv.advance_clock(10_000)
    r1 = c.put_record(StreamName=name, Data=b"r1", PartitionKey="k")["SequenceNumber"]
    r2 = c.put_record(StreamName=name, Data=b"r2", PartitionKey="k")["SequenceNumber"]
    latest = iterator(c, name, kind="LATEST")
    assert datas(read_all(c, iterator(c, name))) == [b"r0", b"r1", b"r2"]
    assert datas(read_all(c, iterator(c, name, kind="AT_SEQUENCE_NUMBER", StartingSequenceNumber=r1))) == [b"r1", b"r2"]
    assert datas(read_all(c, iterator(c, name, kind="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=r1))) == [b"r2"]
    assert datas(read_all(c, iterator(c, name, kind="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=r2))) == []
    assert datas(read_all(c, iterator(c, name, kind="AT_SEQUENCE_NUMBER", StartingSequenceNumber=r0))) == [b"r0", b"r1", b"r2"]
    arrivals = [r["ApproximateArrivalTimestamp"] for r in read_all(c, iterator(c, name))]
    assert (arrivals[1] - arrivals[0]).total_seconds() >= 10
    at = lambda ts: datas(read_all(c, iterator(c, name, kind="AT_TIMESTAMP", Timestamp=ts)))
    assert at(arrivals[1]) == [b"r1", b"r2"]
    assert at(arrivals[0] - datetime.timedelta(seconds=1)) == [b"r0", b"r1", b"r2"]
    assert at(arrivals[0] + datetime.timedelta(seconds=1)) == [b"r1", b"r2"]
    # The LATEST iterator was taken after r2, so it sees only newer records.
    assert read_all(c, latest) == []
    c.put_record(StreamName=name, Data=b"r3", PartitionKey="k")
    assert datas(read_all(c, latest)) == [b"r3"]


def test_at_timestamp_in_the_future(start_server):
    srv, c, name = dedicated(start_server)
    now = server_now_ms(srv)
    future_s = now // 1000 + 3600
    with pytest.raises(c.exceptions.InvalidArgumentException) as e:
        iterator(c, name, kind="AT_TIMESTAMP", Timestamp=future_s)
    code, message, status = error_of(e)
    m = re.fullmatch(
        r"The timestampInMillis parameter cannot be greater than the currentTimestampInMillis\. "
        r"timestampInMillis: (\d+), currentTimestampInMillis: (\d+)",
        message,
    )
    assert (code, status, bool(m)) == ("InvalidArgumentException", 400, True), message
    assert int(m.group(1)) == future_s * 1000
    assert 0 <= int(m.group(2)) - now < 5000


def test_at_timestamp_without_timestamp(kinesis, stream):
    name = stream(1)
    with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
        iterator(kinesis, name, kind="AT_TIMESTAMP")
    assert error_of(e) == (
        "InvalidArgumentException",
        "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.",
        400,
    )


MUST_EITHER = (
    "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber "
    "or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {}."
)


def test_must_either_specify_messages(kinesis, stream):
    name = stream(1)
    seq = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")["SequenceNumber"]
    for kind in ["TRIM_HORIZON", "LATEST"]:
        with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
            iterator(kinesis, name, kind=kind, StartingSequenceNumber=seq)
        assert error_of(e) == ("InvalidArgumentException", MUST_EITHER.format(f"{kind} and also a StartingSequenceNumber"), 400)
    for kind in ["AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"]:
        with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
            iterator(kinesis, name, kind=kind)
        assert error_of(e) == ("InvalidArgumentException", MUST_EITHER.format(f"{kind} and no StartingSequenceNumber"), 400)


def test_sequence_number_of_another_shard(kinesis, stream):
    name = stream(2)
    out = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="x", ExplicitHashKey=str(MAX - 1))
    assert out["ShardId"] == sid(1)
    with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
        iterator(kinesis, name, 0, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=out["SequenceNumber"])
    assert error_of(e) == (
        "InvalidArgumentException",
        "Invalid StartingSequenceNumber. It encodes shardId-000000000001, while it was used in a call to a shard with shardId-000000000000",
        400,
    )


def test_shard_iterator_missing_stream_or_shard(kinesis, stream):
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
        kinesis.get_shard_iterator(StreamName="missing-gsi", ShardId=sid(0), ShardIteratorType="LATEST")
    assert error_of(e) == ("ResourceNotFoundException", f"Shard {sid(0)} in stream missing-gsi under account {ACCOUNT} does not exist", 400)
    name = stream(1)
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
        kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-5", ShardIteratorType="LATEST")
    assert error_of(e) == ("ResourceNotFoundException", f"Shard {sid(5)} in stream {name} under account {ACCOUNT} does not exist", 400)
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
        kinesis.get_shard_iterator(StreamName=name, ShardId="ABKLFD8", ShardIteratorType="LATEST")
    assert error_of(e) == ("ResourceNotFoundException", f"Could not find shard ABKLFD8 in stream {name} under account {ACCOUNT}.", 400)


# ------------------------------------------------------------------ GetRecords


def test_get_records_limit_and_chaining(kinesis, stream):
    name = stream(1)
    for i in range(5):
        kinesis.put_record(StreamName=name, Data=b"%d" % i, PartitionKey="k")
    it = iterator(kinesis, name)
    pages = []
    for _ in range(4):
        page = kinesis.get_records(ShardIterator=it, Limit=2)
        pages.append(datas(page["Records"]))
        it = page["NextShardIterator"]
    assert pages == [[b"0", b"1"], [b"2", b"3"], [b"4"], []]
    assert page["MillisBehindLatest"] == 0
    # An empty read hands back an iterator that still sees later records.
    kinesis.put_record(StreamName=name, Data=b"5", PartitionKey="k")
    assert datas(kinesis.get_records(ShardIterator=it)["Records"]) == [b"5"]


def test_get_records_data_is_byte_exact(kinesis, stream):
    name = stream(1)
    # The last is the largest record with a 1-byte key: 1 MiB together.
    payloads = [bytes(range(256)), b"\x00", b"\xff" * 3, b" ", "ünïcödé ✓".encode(), (bytes(range(256)) * 4096)[:-1]]
    for p in payloads:
        kinesis.put_record(StreamName=name, Data=p, PartitionKey="k")
    recs = read_all(kinesis, iterator(kinesis, name))
    assert datas(recs) == payloads
    assert [r["PartitionKey"] for r in recs] == ["k"] * len(payloads)
    assert sorted(recs[0]) == ["ApproximateArrivalTimestamp", "Data", "PartitionKey", "SequenceNumber"]


def test_get_records_empty_data(server, stream):
    name = stream(1)
    raw = server.client(parameter_validation=False)
    raw.put_record(StreamName=name, Data=b"", PartitionKey="k")
    raw.put_records(StreamName=name, Records=[{"Data": b"", "PartitionKey": "k"}, {"Data": b"z", "PartitionKey": "k"}])
    assert datas(read_all(raw, iterator(raw, name))) == [b"", b"", b"z"]


def test_millis_behind_latest_zero_when_caught_up(kinesis, stream):
    name = stream(1)
    kinesis.put_record(StreamName=name, Data=b"a", PartitionKey="k")
    page = kinesis.get_records(ShardIterator=iterator(kinesis, name))
    assert (datas(page["Records"]), page["MillisBehindLatest"]) == ([b"a"], 0)
    page = kinesis.get_records(ShardIterator=page["NextShardIterator"])
    assert (page["Records"], page["MillisBehindLatest"]) == ([], 0)


def test_invalid_shard_iterator(kinesis):
    for bad in ["garbage", "AAAAAAAAAAE" + "A" * 200]:
        with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
            kinesis.get_records(ShardIterator=bad)
        assert error_of(e) == ("InvalidArgumentException", "Invalid ShardIterator.", 400)


JAVA_DATE = r"((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{2} \d{2}:\d{2}:\d{2} UTC \d{4})"


def test_expired_iterator(start_server):
    srv, c, name = dedicated(start_server)
    c.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    it = iterator(c, name)
    srv.advance_clock(301_000)
    with pytest.raises(c.exceptions.ExpiredIteratorException) as e:
        c.get_records(ShardIterator=it)
    code, message, status = error_of(e)
    m = re.fullmatch(
        rf"Iterator expired\. The iterator was created at time {JAVA_DATE} while right now it is {JAVA_DATE} "
        r"which is further in the future than the tolerated delay of 300000 milliseconds\.",
        message,
    )
    assert (code, status, bool(m)) == ("ExpiredIteratorException", 400, True), message
    created, now = (datetime.datetime.strptime(g, "%a %b %d %H:%M:%S UTC %Y") for g in m.groups())
    assert 300 < (now - created).total_seconds() < 305
    # A fresh iterator still reads.
    assert datas(read_all(c, iterator(c, name))) == [b"x"]


def test_records_expire_after_retention(start_server):
    srv, c, name = dedicated(start_server)
    c.put_record(StreamName=name, Data=b"old", PartitionKey="k")
    srv.advance_clock(23 * 3600 * 1000)
    c.put_record(StreamName=name, Data=b"newer", PartitionKey="k")
    assert datas(read_all(c, iterator(c, name))) == [b"old", b"newer"]
    srv.advance_clock(2 * 3600 * 1000)  # "old" is 25 h old, "newer" 2 h
    assert datas(read_all(c, iterator(c, name))) == [b"newer"]
    srv.advance_clock(23 * 3600 * 1000)
    assert read_all(c, iterator(c, name)) == []
    c.put_record(StreamName=name, Data=b"fresh", PartitionKey="k")
    assert datas(read_all(c, iterator(c, name))) == [b"fresh"]


# ------------------------------------------------------------------------ CBOR


def cbor_call(endpoint, op, body):
    payload = cbor2.dumps(body)
    headers = {"Content-Type": "application/x-amz-cbor-1.1", "X-Amz-Target": f"Kinesis_20131202.{op}"}
    req = AWSRequest(method="POST", url=endpoint + "/", data=payload, headers=headers)
    SigV4Auth(Credentials("AKIDTEST", "secret"), "kinesis", REGION).add_auth(req)
    r = urllib.request.urlopen(urllib.request.Request(endpoint + "/", data=payload, headers=dict(req.headers.items()), method="POST"), timeout=10)
    assert r.headers["Content-Type"] == "application/x-amz-cbor-1.1"
    raw = r.read()
    # Keep tag 1 (epoch timestamp) visible instead of letting cbor2 turn it into a datetime.
    return cbor2.loads(raw, semantic_decoders={1: lambda value, _immutable: cbor2.CBORTag(1, value)})


def cbor_call_raw(endpoint, op, body):
    """(status, decoded body) of a CBOR call, errors included."""
    payload = cbor2.dumps(body)
    headers = {"Content-Type": "application/x-amz-cbor-1.1", "X-Amz-Target": f"Kinesis_20131202.{op}"}
    try:
        r = urllib.request.urlopen(urllib.request.Request(endpoint + "/", data=payload, headers=headers, method="POST"), timeout=10)
    except urllib.error.HTTPError as e:
        return e.code, cbor2.loads(e.read())
    return r.status, cbor2.loads(r.read())


def test_cbor_put_and_get_records(server, kinesis, stream):
    name = stream(1)
    data = b"\x00\x01\x02binary\xff"
    put = cbor_call(server.endpoint, "PutRecord", {"StreamName": name, "Data": data, "PartitionKey": "k"})
    assert put == {"ShardId": sid(0), "SequenceNumber": put["SequenceNumber"], "EncryptionType": "NONE"}
    assert SEQ.match(put["SequenceNumber"])
    it = cbor_call(server.endpoint, "GetShardIterator", {"StreamName": name, "ShardId": sid(0), "ShardIteratorType": "TRIM_HORIZON"})["ShardIterator"]
    got = cbor_call(server.endpoint, "GetRecords", {"ShardIterator": it})
    assert sorted(got) == ["MillisBehindLatest", "NextShardIterator", "Records"]
    [rec] = got["Records"]
    ts = rec.pop("ApproximateArrivalTimestamp")
    assert rec == {"SequenceNumber": put["SequenceNumber"], "Data": data, "PartitionKey": "k"}
    assert isinstance(rec["Data"], bytes)
    assert isinstance(ts, cbor2.CBORTag) and ts.tag == 1 and isinstance(ts.value, int)
    # Integer epoch milliseconds, the same instant JSON reports in seconds.
    json_rec = kinesis.get_records(ShardIterator=iterator(kinesis, name))["Records"][0]
    assert ts.value == round(json_rec["ApproximateArrivalTimestamp"].timestamp() * 1000)
    assert got["MillisBehindLatest"] == 0


# ------------------------------------------------- validation and stream state


def test_get_shard_iterator_validation_messages(server):
    raw = server.client(parameter_validation=False)
    with pytest.raises(raw.exceptions.ClientError) as e:
        raw.get_shard_iterator(StreamName="", ShardIteratorType="", ShardId="", StartingSequenceNumber="")
    # docs/aws-behaviour.md §1.6 (captured): field order shardId, shardIteratorType, startingSequenceNumber,
    # streamName; the enum in AWS's own order.
    assert error_of(e) == (
        "ValidationException",
        "6 validation errors detected: "
        "Value '' at 'shardId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "
        "Value '' at 'shardId' failed to satisfy constraint: Member must have length greater than or equal to 1; "
        "Value '' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: "
        "[AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]; "
        "Value '' at 'startingSequenceNumber' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(0|([1-9]\\d{0,128}))$; "
        "Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "
        "Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1",
        400,
    )


def test_put_records_validation_errors_capped_at_ten(server):
    raw = server.client(parameter_validation=False)
    with pytest.raises(raw.exceptions.ClientError) as e:
        raw.put_records(StreamName="s", Records=[{"Data": b"", "PartitionKey": ""}] * 501)
    code, message, status = error_of(e)
    assert (code, status) == ("ValidationException", 400)
    # docs/aws-behaviour.md §1.1 (captured): the records length error plus records.1..9 partition keys.
    parts = message.split("; ")
    assert parts[0].startswith("10 validation errors detected: Value '[")
    assert parts[0].endswith("' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500")
    assert parts[1:] == [
        f"Value '' at 'records.{i}.member.partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1"
        for i in range(1, 10)
    ]


def test_creating_stream_refuses_records(slow_kinesis):
    kinesis = slow_kinesis
    name = unique()
    kinesis.create_stream(StreamName=name, ShardCount=1)
    # docs/aws-behaviour.md §4.0: while CREATING, writes see no stream and iterators no shard.
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    assert error_of(e) == ("ResourceNotFoundException", f"Stream {name} under account {ACCOUNT} not found.", 400)
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
        kinesis.get_shard_iterator(StreamName=name, ShardId=sid(0), ShardIteratorType="LATEST")
    assert error_of(e) == ("ResourceNotFoundException", f"Shard {sid(0)} in stream {name} under account {ACCOUNT} does not exist", 400)
    wait_active(kinesis, name)
    kinesis.delete_stream(StreamName=name)


def test_get_records_after_stream_deleted(kinesis):
    name = unique()
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_active(kinesis, name)
    it = iterator(kinesis, name)
    kinesis.delete_stream(StreamName=name)
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=10)
    while datetime.datetime.now() < deadline:
        try:
            kinesis.describe_stream_summary(StreamName=name)
        except kinesis.exceptions.ResourceNotFoundException:
            break
        time.sleep(0.05)
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
        kinesis.get_records(ShardIterator=it)
    assert error_of(e) == ("ResourceNotFoundException", f"Shard {sid(0)} in stream {name} under account {ACCOUNT} does not exist", 400)


def test_cbor_subscribe_to_shard_event_stream(server, kinesis, stream):
    """SubscribeToShard as the Java SDK speaks it: CBOR request, event-stream
    frames whose payloads are CBOR, timestamps as tag 1 epoch milliseconds."""
    from botocore.eventstream import EventStreamBuffer

    name = stream(1)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="java")["Consumer"]["ConsumerARN"]
    deadline = time.time() + 10
    while kinesis.describe_stream_consumer(ConsumerARN=consumer)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.time() < deadline
        time.sleep(0.05)
    put = kinesis.put_record(StreamName=name, Data=b"\x00cbor\xff", PartitionKey="k")
    body = cbor2.dumps({"ConsumerARN": consumer, "ShardId": sid(0), "StartingPosition": {"Type": "TRIM_HORIZON"}})
    headers = {"Content-Type": "application/x-amz-cbor-1.1", "X-Amz-Target": "Kinesis_20131202.SubscribeToShard"}
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers=headers)
    SigV4Auth(Credentials("AKIDTEST", "secret"), "kinesis", REGION).add_auth(req)
    r = urllib.request.urlopen(urllib.request.Request(server.endpoint + "/", data=body, headers=dict(req.headers.items()), method="POST"), timeout=10)
    assert r.headers["Content-Type"] == "application/vnd.amazon.eventstream"
    buf = EventStreamBuffer()
    messages = []
    while len(messages) < 2:
        chunk = r.read1(65536)
        assert chunk, "stream ended early"
        buf.add_data(chunk)
        messages += list(buf)
    r.close()
    first, second = messages[0], messages[1]
    assert (first.headers[":event-type"], first.headers[":content-type"], cbor2.loads(first.payload)) == (
        "initial-response",
        "application/x-amz-cbor-1.1",
        {},
    )
    assert second.headers[":event-type"] == "SubscribeToShardEvent"
    event = cbor2.loads(second.payload, semantic_decoders={1: lambda value, _immutable: cbor2.CBORTag(1, value)})
    [rec] = event["Records"]
    ts = rec.pop("ApproximateArrivalTimestamp")
    assert rec == {"SequenceNumber": put["SequenceNumber"], "Data": b"\x00cbor\xff", "PartitionKey": "k"}
    assert isinstance(ts, cbor2.CBORTag) and ts.tag == 1 and isinstance(ts.value, int)
    assert event["ContinuationSequenceNumber"] == put["SequenceNumber"]
    assert event["MillisBehindLatest"] == 0
