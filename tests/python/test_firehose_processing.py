"""Firehose data processing for S3 destinations with boto3, delivering to
the embedded S3: Lambda transformation against a Python `http.server`
implementing the Lambda Invoke API (`riffle serve --lambda-endpoint`),
processing-failed error objects, invocation retries, dynamic partitioning
with jq (MetadataExtraction) and Lambda partition keys, KPL
deaggregation, and CloudWatch Logs decompression with message
extraction."""
import base64
import gzip
import hashlib
import json
import re
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ACCOUNT, REGION, Server, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
TIME = r"\d{4}/\d{2}/\d{2}/\d{2}/"


class Lambda:
    """A Lambda Invoke API. Functions (by name, the last part of the ARN):

    - `upper-*`: uppercases records; `drop*` records are Dropped, `fail*`
      records ProcessingFailed; each Ok record gets the partition key
      `kind` (its first 3 bytes, lowercase).
    - `flaky-*`: answers 500 to the first `failures` calls, then as upper.
    - `broken-*`: 500 always.
    - `lossy-*`: leaves the last record out of its answer.
    """

    def __init__(self, failures=0):
        self.failures = failures
        self.calls = []
        lam = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                lam.calls.append({"path": self.path, "headers": dict(self.headers.items()), "event": json.loads(raw)})
                m = re.fullmatch(r"/2015-03-31/functions/([^/]+)/invocations", self.path)
                fn = urllib.parse.unquote(m.group(1)).split(":")[-1] if m else ""
                event = lam.calls[-1]["event"]
                status, out = 200, None
                if fn.startswith("broken-") or (fn.startswith("flaky-") and len(lam.calls) <= lam.failures):
                    status, out = 500, {"Type": "Service", "message": "try again"}
                else:
                    recs = []
                    for r in event["records"]:
                        data = base64.b64decode(r["data"])
                        if data.startswith(b"drop"):
                            recs.append({"recordId": r["recordId"], "result": "Dropped"})
                        elif data.startswith(b"fail"):
                            recs.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
                        else:
                            recs.append(
                                {
                                    "recordId": r["recordId"],
                                    "result": "Ok",
                                    "data": base64.b64encode(data.upper()).decode(),
                                    "metadata": {"partitionKeys": {"kind": data[:3].decode().lower()}},
                                }
                            )
                    if fn.startswith("lossy-"):
                        recs = recs[:-1]
                    out = {"records": recs}
                body = json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def lam():
    server = Lambda()
    yield server
    server.close()


@pytest.fixture(scope="module")
def srv(lam):
    s = Server("--status-delay-ms", "0", "--lambda-endpoint", lam.url).start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture(scope="module")
def fh(srv):
    return srv.client("firehose")


@pytest.fixture(scope="module")
def s3(srv):
    return srv.client("s3")


def function_arn(kind):
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{kind}-{uuid.uuid4().hex[:8]}"


def lambda_processor(arn, retries=None, interval="0", size=None):
    """A Lambda processor; its own buffer interval is 0 seconds unless
    given (invocations as soon as records are there)."""
    params = [{"ParameterName": "LambdaArn", "ParameterValue": arn}]
    if interval is not None:
        params.append({"ParameterName": "BufferIntervalInSeconds", "ParameterValue": interval})
    if size is not None:
        params.append({"ParameterName": "BufferSizeInMBs", "ParameterValue": size})
    if retries is not None:
        params.append({"ParameterName": "NumberOfRetries", "ParameterValue": str(retries)})
    return {"Type": "Lambda", "Parameters": params}


def create(fh, bucket, processors, dynamic=False, **s3):
    name = unique("proc")
    cfg = {
        "RoleARN": ROLE,
        "BucketARN": f"arn:aws:s3:::{bucket}",
        "BufferingHints": {"SizeInMBs": 64 if dynamic else 1, "IntervalInSeconds": 1},
        "ProcessingConfiguration": {"Enabled": True, "Processors": processors},
        **s3,
    }
    if dynamic:
        cfg["DynamicPartitioningConfiguration"] = {"Enabled": True}
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=cfg)
    deadline = time.time() + 5
    while fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        assert time.time() < deadline
        time.sleep(0.05)
    return name


def new_bucket(s3):
    bucket = unique("proc").lower()
    s3.create_bucket(Bucket=bucket)
    return bucket


def wait_keys(s3, bucket, n, timeout=15, settle=0.5):
    """The bucket's keys once there are at least n (and no more arrive
    for `settle` seconds)."""
    deadline = time.time() + timeout
    while True:
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
        if len(keys) >= n:
            time.sleep(settle)
            return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
        assert time.time() < deadline, f"expected {n} objects in {bucket}, found {keys}"
        time.sleep(0.1)


def body(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def key_re(prefix_re, name):
    """A whole object key: a prefix (a regex), then AWS's file name."""
    return prefix_re + re.escape(name) + r"-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-" + UUID


def error_lines(raw):
    """The error records, checked to be AWS's exact field order and
    compact JSON, line by line."""
    out = []
    for line in raw.decode().splitlines():
        doc = json.loads(line)
        assert line == json.dumps(doc, separators=(",", ":")), line
        out.append(doc)
    return out


def test_lambda_transforms_drops_and_fails(fh, s3, lam):
    bucket = new_bucket(s3)
    arn = function_arn("upper")
    name = create(
        fh,
        bucket,
        [lambda_processor(arn), {"Type": "AppendDelimiterToRecord"}],
        Prefix="out/",
        ErrorOutputPrefix="err/!{firehose:error-output-type}/",
    )
    before = int(time.time() * 1000)
    n_calls = len(lam.calls)
    fh.put_record_batch(
        DeliveryStreamName=name,
        Records=[{"Data": b"alpha"}, {"Data": b"drop-me"}, {"Data": b"fail-me"}, {"Data": b"omega\x00"}],
    )
    keys = wait_keys(s3, bucket, 2)
    assert len(keys) == 2, keys
    out_key, err_key = sorted(keys, key=lambda k: not k.startswith("out/"))
    assert re.fullmatch(key_re("out/" + TIME, name), out_key), out_key
    assert re.fullmatch(key_re("err/processing-failed/" + TIME, name), err_key), err_key
    assert body(s3, bucket, out_key) == b"ALPHA\nOMEGA\x00\n"
    (err,) = error_lines(body(s3, bucket, err_key))
    assert list(err) == [
        "attemptsMade",
        "arrivalTimestamp",
        "errorCode",
        "errorMessage",
        "attemptEndingTimestamp",
        "rawData",
        "lambdaArn",
    ]
    assert err["attemptsMade"] == 1
    assert err["errorCode"] == "Lambda.ProcessingFailedStatus"
    assert err["errorMessage"] == "ProcessingFailed status set for record"
    assert base64.b64decode(err["rawData"]) == b"fail-me"
    assert err["lambdaArn"] == arn
    assert before - 5000 <= err["arrivalTimestamp"] <= err["attemptEndingTimestamp"]

    # One invocation, with AWS's event.
    calls = lam.calls[n_calls:]
    assert len(calls) == 1
    call = calls[0]
    assert call["path"] == "/2015-03-31/functions/" + urllib.parse.quote(arn, safe="") + "/invocations"
    event = call["event"]
    assert list(event) == ["invocationId", "deliveryStreamArn", "region", "records"]
    assert re.fullmatch(UUID, event["invocationId"])
    assert event["deliveryStreamArn"] == f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{name}"
    assert event["region"] == REGION
    assert [base64.b64decode(r["data"]) for r in event["records"]] == [b"alpha", b"drop-me", b"fail-me", b"omega\x00"]
    assert len({r["recordId"] for r in event["records"]}) == 4
    for r in event["records"]:
        assert list(r) == ["recordId", "approximateArrivalTimestamp", "data"]
        assert r["approximateArrivalTimestamp"] == err["arrivalTimestamp"]
    desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert "FailureDescription" not in desc


def test_lambda_retries_until_the_function_recovers(fh, s3, lam):
    # The next two calls fail.
    lam.failures = len(lam.calls) + 2
    bucket = new_bucket(s3)
    arn = function_arn("flaky")
    name = create(fh, bucket, [lambda_processor(arn, retries=3)], Prefix="ok/")
    n_calls = len(lam.calls)
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"patience"})
    # While the invocation is retried, FailureDescription says why.
    seen = None
    deadline = time.time() + 10
    while seen is None and time.time() < deadline:
        d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        seen = d.get("FailureDescription")
        time.sleep(0.05)
    assert seen is not None
    assert seen["Details"].startswith("Lambda.ServiceException: The Lambda Invoke call failed with status 500"), seen
    (key,) = wait_keys(s3, bucket, 1)
    assert key.startswith("ok/")
    assert body(s3, bucket, key) == b"PATIENCE"
    calls = lam.calls[n_calls:]
    assert len(calls) == 3
    # Retries send the same invocation.
    assert calls[0]["event"] == calls[1]["event"] == calls[2]["event"]
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert "FailureDescription" not in d


def test_lambda_gives_up_after_the_retries(fh, s3, lam):
    bucket = new_bucket(s3)
    arn = function_arn("broken")
    name = create(fh, bucket, [lambda_processor(arn, retries=1)], Prefix="never/")
    n_calls = len(lam.calls)
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"one"}, {"Data": b"two"}])
    (key,) = wait_keys(s3, bucket, 1)
    # Without ErrorOutputPrefix: <Prefix><error type>/<time>.
    assert re.fullmatch(key_re("never/processing-failed/" + TIME, name), key), key
    docs = error_lines(body(s3, bucket, key))
    assert [base64.b64decode(d["rawData"]) for d in docs] == [b"one", b"two"]
    for d in docs:
        assert d["attemptsMade"] == 2
        assert d["errorCode"] == "Lambda.ServiceException"
        assert d["errorMessage"].startswith("The Lambda Invoke call failed with status 500")
        assert d["lambdaArn"] == arn
    assert len(lam.calls) - n_calls == 2
    time.sleep(1.0)
    assert len(lam.calls) - n_calls == 2
    desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert "FailureDescription" not in desc


def test_lambda_answer_missing_a_record_fails_the_invocation(fh, s3, lam):
    bucket = new_bucket(s3)
    arn = function_arn("lossy")
    name = create(
        fh,
        bucket,
        [lambda_processor(arn, retries=0)],
        Prefix="x/",
        ErrorOutputPrefix="bad/!{firehose:error-output-type}/",
    )
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"kept"}, {"Data": b"lost"}])
    (key,) = wait_keys(s3, bucket, 1)
    assert key.startswith("bad/processing-failed/")
    docs = error_lines(body(s3, bucket, key))
    assert [base64.b64decode(d["rawData"]) for d in docs] == [b"kept", b"lost"]
    assert {d["errorCode"] for d in docs} == {"Lambda.MissingRecordId"}
    assert {d["attemptsMade"] for d in docs} == {1}


def test_dynamic_partitioning_with_jq_and_delimiter(fh, s3):
    bucket = new_bucket(s3)
    name = create(
        fh,
        bucket,
        [
            {
                "Type": "MetadataExtraction",
                "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer: .customer, year: .ts[0:4]}"},
                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
                ],
            },
            {"Type": "AppendDelimiterToRecord", "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "\\n"}]},
        ],
        dynamic=True,
        Prefix="dp/customer=!{partitionKeyFromQuery:customer}/year=!{partitionKeyFromQuery:year}/",
        ErrorOutputPrefix="dperr/!{firehose:error-output-type}/",
    )
    records = [
        b'{"customer":"a","ts":"2024-01-02","n":1}',
        b'{"customer":"b","ts":"2023-05-06","n":2}',
        b"not json",
        b'{"customer":"a","ts":"2024-03-04","n":3}',
        b'{"ts":"2024-03-04","n":4}',
        b'{"customer":"a","ts":"2023-07-08","n":5}',
    ]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
    keys = wait_keys(s3, bucket, 4)
    assert len(keys) == 4, keys
    by_prefix = {}
    for k in keys:
        m = re.fullmatch(key_re("(.*/)", name), k)
        assert m, k
        by_prefix[m.group(1)] = body(s3, bucket, k)
    err_prefix = next(p for p in by_prefix if p.startswith("dperr/"))
    assert re.fullmatch(r"dperr/partitioning-failed/" + TIME, err_prefix), err_prefix
    errors = error_lines(by_prefix.pop(err_prefix))
    assert by_prefix == {
        "dp/customer=a/year=2024/": records[0] + b"\n" + records[3] + b"\n",
        "dp/customer=b/year=2023/": records[1] + b"\n",
        "dp/customer=a/year=2023/": records[5] + b"\n",
    }
    assert [base64.b64decode(d["rawData"]) for d in errors] == [b"not json", records[4]]
    assert {d["errorCode"] for d in errors} == {"DynamicPartitioning.MetadataExtractionFailed"}
    assert errors[0]["errorMessage"] == "Non JSON record provided"
    assert "customer" in errors[1]["errorMessage"]
    assert all("lambdaArn" not in d for d in errors)


def test_dynamic_partitioning_with_lambda_keys(fh, s3):
    bucket = new_bucket(s3)
    arn = function_arn("upper")
    name = create(
        fh,
        bucket,
        [lambda_processor(arn)],
        dynamic=True,
        Prefix="lp/!{partitionKeyFromLambda:kind}/!{timestamp:yyyy}/",
        ErrorOutputPrefix="lperr/!{firehose:error-output-type}/",
    )
    fh.put_record_batch(
        DeliveryStreamName=name,
        Records=[{"Data": b"cat-1;"}, {"Data": b"dog-1;"}, {"Data": b"cat-2;"}, {"Data": b"drop"}],
    )
    keys = wait_keys(s3, bucket, 2)
    year = time.strftime("%Y", time.gmtime())
    got = {k.rsplit("/", 1)[0]: body(s3, bucket, k) for k in keys}
    assert got == {f"lp/cat/{year}": b"CAT-1;CAT-2;", f"lp/dog/{year}": b"DOG-1;"}


def test_invalid_jq_query_is_refused(fh, s3):
    with pytest.raises(fh.exceptions.InvalidArgumentException) as e:
        create(
            fh,
            "any",
            [{"Type": "MetadataExtraction", "Parameters": [{"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{a: .a"}]}],
            dynamic=True,
            Prefix="!{partitionKeyFromQuery:a}/",
            ErrorOutputPrefix="e/!{firehose:error-output-type}/",
        )
    assert e.value.response["Error"]["Message"].startswith("Invalid MetadataExtractionQuery {a: .a: ")


def cloudwatch_payload(message_type, messages):
    doc = {
        "messageType": message_type,
        "owner": ACCOUNT,
        "logGroup": "/app/web",
        "logStream": "i-0123",
        "subscriptionFilters": ["to-firehose"],
        "logEvents": [{"id": str(i), "timestamp": 1700000000000 + i, "message": m} for i, m in enumerate(messages)],
    }
    return gzip.compress(json.dumps(doc).encode())


def test_cloudwatch_logs_decompression_and_message_extraction(fh, s3):
    bucket = new_bucket(s3)
    name = create(
        fh,
        bucket,
        [
            {"Type": "Decompression", "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]},
            {"Type": "CloudWatchLogProcessing", "Parameters": [{"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]},
            {"Type": "AppendDelimiterToRecord"},
        ],
        Prefix="logs/",
    )
    fh.put_record_batch(
        DeliveryStreamName=name,
        Records=[
            {"Data": cloudwatch_payload("CONTROL_MESSAGE", ["CWL CONTROL MESSAGE: Checking health of destination Firehose."])},
            {"Data": cloudwatch_payload("DATA_MESSAGE", ["GET /index.html 200", "GET /missing 404"])},
            {"Data": cloudwatch_payload("DATA_MESSAGE", ['{"level":"error","msg":"boom"}'])},
            {"Data": b"not gzip"},
        ],
    )
    keys = wait_keys(s3, bucket, 2)
    (out_key,) = [k for k in keys if not k.startswith("logs/processing-failed/")]
    (err_key,) = [k for k in keys if k.startswith("logs/processing-failed/")]
    assert re.fullmatch(key_re("logs/" + TIME, name), out_key), out_key
    assert body(s3, bucket, out_key) == b'GET /index.html 200\nGET /missing 404\n{"level":"error","msg":"boom"}\n'
    (err,) = error_lines(body(s3, bucket, err_key))
    assert base64.b64decode(err["rawData"]) == b"not gzip"
    assert err["errorCode"] == "Decompression.Failed"
    assert "lambdaArn" not in err


def kpl_aggregate(keys, records):
    """A KPL aggregated record: magic, protobuf AggregatedRecord, MD5."""

    def varint(v):
        out = bytearray()
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
        return bytes(out)

    def field(num, data):
        return varint(num << 3 | 2) + varint(len(data)) + data

    body = b"".join(field(1, k.encode()) for k in keys)
    for index, data in records:
        body += field(3, varint(1 << 3) + varint(index) + field(3, data))
    return b"\xf3\x89\x9a\xc2" + body + hashlib.md5(body).digest()


def test_kpl_deaggregation(fh, s3):
    bucket = new_bucket(s3)
    name = create(
        fh,
        bucket,
        [
            {
                "Type": "RecordDeAggregation",
                "Parameters": [{"ParameterName": "SubRecordType", "ParameterValue": "KINESIS_PRODUCER_LIBRARY"}],
            },
            {"Type": "AppendDelimiterToRecord", "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "|"}]},
        ],
        Prefix="kpl/",
    )
    good = kpl_aggregate(["pk1", "pk2"], [(0, b"first"), (1, b"second"), (0, b"third")])
    corrupt = bytearray(kpl_aggregate(["pk"], [(0, b"bad")]))
    corrupt[-1] ^= 0xFF
    fh.put_record_batch(
        DeliveryStreamName=name,
        Records=[{"Data": good}, {"Data": b"plain"}, {"Data": bytes(corrupt)}],
    )
    keys = wait_keys(s3, bucket, 2)
    (out_key,) = [k for k in keys if "processing-failed" not in k]
    (err_key,) = [k for k in keys if "processing-failed" in k]
    assert body(s3, bucket, out_key) == b"first|second|third|plain|"
    (err,) = error_lines(body(s3, bucket, err_key))
    assert base64.b64decode(err["rawData"]) == bytes(corrupt)
    assert err["errorCode"] == "RecordDeAggregation.Failed"
    assert "MD5" in err["errorMessage"]


def test_without_lambda_endpoint_records_stay_buffered(start_server):
    srv = start_server("--status-delay-ms", "0")
    fh, s3 = srv.client("firehose"), srv.client("s3")
    bucket = new_bucket(s3)
    name = create(fh, bucket, [lambda_processor(function_arn("upper"))], Prefix="p/")
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"waiting"})
    deadline = time.time() + 6
    while True:
        d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        if "FailureDescription" in d:
            break
        assert time.time() < deadline, d
        time.sleep(0.1)
    assert d["FailureDescription"]["Details"] == (
        "The Lambda processor needs a Lambda endpoint, which this server does not have "
        "(start it with --lambda-endpoint URL); records stay buffered."
    )
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_kinesis_source_records_reach_lambda_deaggregated_with_metadata(srv, fh, s3, lam):
    kinesis = srv.client()
    sname = unique("src")
    kinesis.create_stream(StreamName=sname, ShardCount=1)
    deadline = time.time() + 10
    while kinesis.describe_stream_summary(StreamName=sname)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        assert time.time() < deadline
        time.sleep(0.05)
    sarn = kinesis.describe_stream_summary(StreamName=sname)["StreamDescriptionSummary"]["StreamARN"]
    bucket = new_bucket(s3)
    arn = function_arn("upper")
    name = unique("proc")
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": sarn, "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "ks/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            "ProcessingConfiguration": {"Enabled": True, "Processors": [lambda_processor(arn)]},
        },
    )
    deadline = time.time() + 5
    while fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        assert time.time() < deadline
        time.sleep(0.05)
    n_calls = len(lam.calls)
    seq1 = kinesis.put_record(StreamName=sname, PartitionKey="pk", Data=kpl_aggregate(["u1", "u2"], [(0, b"one;"), (1, b"two;")]))["SequenceNumber"]
    seq2 = kinesis.put_record(StreamName=sname, PartitionKey="pk", Data=b"three;")["SequenceNumber"]
    keys = wait_keys(s3, bucket, 1)
    assert b"".join(body(s3, bucket, k) for k in keys) == b"ONE;TWO;THREE;"
    events = [c["event"] for c in lam.calls[n_calls:] if c["event"]["deliveryStreamArn"].endswith("/" + name)]
    assert events and all(e["sourceKinesisStreamArn"] == sarn for e in events)
    records = [r for e in events for r in e["records"]]
    assert [base64.b64decode(r["data"]) for r in records] == [b"one;", b"two;", b"three;"]
    meta = [r["kinesisRecordMetadata"] for r in records]
    assert [(m["shardId"], m["partitionKey"], m["sequenceNumber"], m["subsequenceNumber"]) for m in meta] == [
        ("shardId-000000000000", "u1", seq1, 0),
        ("shardId-000000000000", "u2", seq1, 1),
        ("shardId-000000000000", "pk", seq2, 0),
    ]
    assert all(m["approximateArrivalTimestamp"] == r["approximateArrivalTimestamp"] for m, r in zip(meta, records))


# Buffering per dynamic partition, the active partition limit, and the
# Lambda processor's own buffering.

MIB64 = 64 * 1024 * 1024
JQ_P = {
    "Type": "MetadataExtraction",
    "Parameters": [
        {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{p: .p}"},
        {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
    ],
}


def sized(p, i, size):
    """A JSON record of partition p, exactly `size` bytes."""
    base = len(json.dumps({"p": p, "i": i, "pad": ""}, separators=(",", ":")))
    return json.dumps({"p": p, "i": i, "pad": "x" * (size - base)}, separators=(",", ":")).encode()


def put_all(fh, name, records, per_call=4):
    for i in range(0, len(records), per_call):
        resp = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records[i : i + per_call]])
        assert resp["FailedPutCount"] == 0


def objects_under(s3, bucket, prefix):
    """(key, body) of the objects under prefix, oldest name first."""
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))
    return [(k, body(s3, bucket, k)) for k in keys]


def wait_for(fn, timeout=30):
    deadline = time.time() + timeout
    while True:
        got = fn()
        if got:
            return got
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def dp_stream(fh, bucket, interval=60, **extra):
    return create(
        fh,
        bucket,
        [JQ_P],
        dynamic=True,
        Prefix="p=!{partitionKeyFromQuery:p}/",
        ErrorOutputPrefix="err/!{firehose:error-output-type}/",
        BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": interval},
        **extra,
    )


def test_partitions_flush_independently_on_size_and_their_own_interval(fh, s3, srv):
    bucket = new_bucket(s3)
    name = dp_stream(fh, bucket)
    quiet = json.dumps({"p": "quiet", "i": 0}).encode()
    put_all(fh, name, [quiet])
    srv.advance_clock(30_000)
    # 70 records of 1,000,000 bytes: the 68th brings the busy partition's
    # buffer past 64 MiB (67 MB < 64 MiB <= 68 MB).
    busy = [sized("busy", i, 1_000_000) for i in range(70)]
    put_all(fh, name, busy)
    first = wait_for(lambda: objects_under(s3, bucket, "p=busy/"), timeout=60)
    assert len(first) == 1
    assert first[0][1] == b"".join(busy[:68])
    assert re.fullmatch(key_re("p=busy/", name), first[0][0])
    time.sleep(1)
    assert objects_under(s3, bucket, "p=quiet/") == []
    # The quiet partition's interval ends 60 s after its record; the rest
    # of the busy one's starts 30 s later.
    srv.advance_clock(31_000)
    got = wait_for(lambda: objects_under(s3, bucket, "p=quiet/"))
    assert [b for _, b in got] == [quiet]
    time.sleep(1.5)
    assert len(objects_under(s3, bucket, "p=busy/")) == 1
    srv.advance_clock(30_000)
    got = wait_for(lambda: (lambda o: o if len(o) == 2 else None)(objects_under(s3, bucket, "p=busy/")))
    assert [b for _, b in got] == [b"".join(busy[:68]), b"".join(busy[68:])]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="err/").get("KeyCount") == 0


def test_records_over_500_active_partitions_go_to_the_error_output(fh, s3, srv):
    bucket = new_bucket(s3)
    name = dp_stream(fh, bucket)
    first = [json.dumps({"p": f"k{i:03}"}).encode() for i in range(500)]
    put_all(fh, name, first, per_call=500)
    # A 501st partition while 500 are open; a record of an open one still
    # joins it.
    late = [json.dumps({"p": "k500"}).encode(), json.dumps({"p": "k000", "again": True}).encode()]
    put_all(fh, name, late)
    errs = wait_for(lambda: objects_under(s3, bucket, "err/"))
    assert len(errs) == 1
    assert re.fullmatch(key_re(r"err/activePartitionExceeded/" + TIME, name), errs[0][0]), errs[0][0]
    docs = error_lines(errs[0][1])
    assert [base64.b64decode(d["rawData"]) for d in docs] == [late[0]]
    assert docs[0]["errorCode"] == "DynamicPartitioning.ActivePartitionsLimitExceeded"
    assert docs[0]["errorMessage"] == "The number of active partitions reached this delivery stream's limit of 500."
    assert docs[0]["attemptsMade"] == 1
    assert objects_under(s3, bucket, "p=") == []
    # PartitionCount and PartitionCountExceeded, named after CloudWatch's.
    assert wait_for(lambda: partition_metrics(srv, name) == (500, 1, 502) or None)
    srv.advance_clock(61_000)

    def all_partitions():
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="p=").get("Contents", [])]
        return keys if len(keys) == 500 else None

    keys = wait_for(all_partitions, timeout=60)
    assert sorted(k.split("/")[0] for k in keys) == [f"p=k{i:03}" for i in range(500)]
    k000 = next(k for k in keys if k.startswith("p=k000/"))
    assert body(s3, bucket, k000) == first[0] + late[1]
    # Records of a new partition within the limit reset the flag.
    put_all(fh, name, [json.dumps({"p": "fresh"}).encode()])
    assert wait_for(lambda: partition_metrics(srv, name) == (1, 0, 503) or None)


def partition_metrics(srv, name):
    """(PartitionCount, PartitionCountExceeded, records queried) of `name` on /metrics."""
    text = urllib.request.urlopen(srv.endpoint + "/metrics", timeout=5).read().decode()

    def value(metric):
        m = re.search(rf'^{metric}{{delivery_stream="{re.escape(name)}",region="[^"]+"}} (\S+)$', text, re.M)
        return m and float(m.group(1))

    return (
        value("riffle_firehose_partition_count"),
        value("riffle_firehose_partition_count_exceeded"),
        value("riffle_firehose_jq_processed_records_total"),
    )


def test_dynamic_partitioning_needs_64_mb_buffers(fh, s3):
    cfg = {
        "RoleARN": ROLE,
        "BucketARN": "arn:aws:s3:::any",
        "Prefix": "!{partitionKeyFromQuery:p}/",
        "ErrorOutputPrefix": "e/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 63, "IntervalInSeconds": 60},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [JQ_P]},
        "DynamicPartitioningConfiguration": {"Enabled": True},
    }
    with pytest.raises(fh.exceptions.InvalidArgumentException) as e:
        fh.create_delivery_stream(DeliveryStreamName=unique("dp"), ExtendedS3DestinationConfiguration=cfg)
    assert e.value.response["Error"]["Message"] == "BufferingHints.SizeInMBs must be at least 64 when Dynamic Partitioning is enabled."
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # 64 is accepted; without dynamic partitioning 1 is too.
    cfg["BufferingHints"]["SizeInMBs"] = 64
    fh.create_delivery_stream(DeliveryStreamName=unique("dp"), ExtendedS3DestinationConfiguration=cfg)
    del cfg["DynamicPartitioningConfiguration"]
    cfg["Prefix"] = "x/"
    cfg["BufferingHints"]["SizeInMBs"] = 1
    fh.create_delivery_stream(DeliveryStreamName=unique("dp"), ExtendedS3DestinationConfiguration=cfg)


def calls_of(lam, arn):
    return [c for c in lam.calls if urllib.parse.unquote(c["path"]).split("/")[3] == arn]


def test_lambda_invocations_follow_the_processors_own_buffering_hints(fh, s3, lam, srv):
    bucket = new_bucket(s3)
    arn = function_arn("upper")
    name = create(
        fh,
        bucket,
        [lambda_processor(arn, interval="60", size="0.2"), {"Type": "AppendDelimiterToRecord"}],
        Prefix="lb/",
        BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0},
    )
    # Records of 100,000 bytes: two fit in 0.2 MB (209,715 bytes), three
    # do not.
    records = [f"r{i}:".encode() + b"a" * (100_000 - 3) for i in range(5)]
    put_all(fh, name, records, per_call=5)
    wait_for(lambda: len(calls_of(lam, arn)) >= 2)
    time.sleep(2)
    calls = calls_of(lam, arn)
    assert [len(c["event"]["records"]) for c in calls] == [2, 2]
    assert [[base64.b64decode(r["data"]) for r in c["event"]["records"]] for c in calls] == [records[0:2], records[2:4]]
    # The fifth waits for the processor's 60-second interval, not the
    # destination's zero buffering.
    srv.advance_clock(61_000)
    wait_for(lambda: len(calls_of(lam, arn)) >= 3)
    calls = calls_of(lam, arn)
    assert [len(c["event"]["records"]) for c in calls] == [2, 2, 1]
    assert base64.b64decode(calls[2]["event"]["records"][0]["data"]) == records[4]

    def delivered():
        lines = [l for _, b in objects_under(s3, bucket, "lb/") for l in b.split(b"\n") if l]
        return lines if len(lines) == 5 else None

    assert sorted(wait_for(delivered)) == sorted(r.upper() for r in records)


def test_sigkill_mid_partition_buffering_loses_no_acknowledged_record(start_server):
    srv = start_server("--status-delay-ms", "0")
    fh, s3 = srv.client("firehose"), srv.client("s3")
    bucket = new_bucket(s3)
    name = dp_stream(fh, bucket)
    # b1 first in the buffer log; then a's 68 records fill its partition
    # and are delivered while b1's partition still waits: the checkpoint
    # must stay before b1.
    b1 = json.dumps({"p": "b", "i": 1}).encode()
    put_all(fh, name, [b1])
    a = [sized("a", i, 1_000_000) for i in range(68)]
    put_all(fh, name, a)
    first = wait_for(lambda: objects_under(s3, bucket, "p=a/"), timeout=60)
    assert [b for _, b in first] == [b"".join(a)]
    later = [json.dumps({"p": "a", "i": 68}).encode(), json.dumps({"p": "b", "i": 2}).encode()]
    put_all(fh, name, later)
    srv.kill()
    srv.restart()
    fh, s3 = srv.client("firehose"), srv.client("s3")
    srv.advance_clock(61_000)

    def delivered():
        out = {}
        for k, b in objects_under(s3, bucket, "p="):
            out.setdefault(k.split("/")[0], []).append(b)
        done = b"".join(out.get("p=b", [])) == b1 + later[1] and later[0] in b"".join(out.get("p=a", []))
        return out if done else None

    got = wait_for(delivered, timeout=60)
    # Every acknowledged record at least once: b's records once each (in
    # one object, or two when b1's interval ended while the restarted task
    # was still reading a's records back); a's 68 again, read again from
    # the checkpoint that stayed before b1, and a's later record.
    assert b"".join(got["p=b"]) == b1 + later[1]
    assert got["p=a"][0] == b"".join(a) or got["p=a"][1] == b"".join(a)
    again = b"".join(o for o in got["p=a"] if o != b"".join(a) or got["p=a"].count(o) > 1)
    for r in a + [later[0]]:
        assert r in again
    a_all = b"".join(got["p=a"])
    for r in a + [later[0]]:
        assert r in a_all
    assert s3.list_objects_v2(Bucket=bucket, Prefix="err/").get("KeyCount") == 0
