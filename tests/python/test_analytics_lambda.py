"""AWS Lambda in Kinesis Data Analytics applications, with boto3, against
a Python `http.server` implementing the Lambda Invoke API (`riffle serve
--lambda-endpoint`): an input's InputLambdaProcessor transforms, drops
and fails records before schema mapping (failed ones and batches the
function cannot answer land in error_stream), and a LambdaOutput gets
an output stream's rows in the documented event, records it does not
acknowledge being sent again with a growing retryHint."""
import base64
import json
import re
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ACCOUNT, REGION, Server, unique
from test_analytics_run import SCHEMA, delivery_stream, kinesis_output, put, read_all, start, stream

ROLE = f"arn:aws:iam::{ACCOUNT}:role/analytics"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


class Lambda:
    """A Lambda Invoke API. Functions (by name, the last part of the ARN):

    - `pre-*` (preprocessing): upper-cases each record's `ticker`;
      tickers starting `drop` are Dropped, `fail` ProcessingFailed.
    - `lossy-*` (preprocessing): as `pre-*`, but leaves records whose
      ticker starts `lose` out of its answer.
    - `out-*` (output): acknowledges every record Ok, except that a
      record holding MSFT is DeliveryFailed the first time it comes.
    - `flaky-*` (output): answers something that is not JSON to its
      first call, then acknowledges every record Ok.
    """

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        lam = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                m = re.fullmatch(r"/2015-03-31/functions/([^/]+)/invocations", self.path)
                fn = urllib.parse.unquote(m.group(1)).split(":")[-1] if m else ""
                event = json.loads(raw)
                with lam.lock:
                    earlier = [c for c in lam.calls if c["function"] == fn]
                    lam.calls.append({"function": fn, "headers": {k.lower(): v for k, v in self.headers.items()}, "event": event})
                body = json.dumps(lam.answer(fn, event, earlier)).encode()
                if fn.startswith("flaky-") and not earlier:
                    body = b"<html>not a function answer</html>"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @staticmethod
    def answer(fn, event, earlier):
        recs = []
        if fn.startswith(("pre-", "lossy-")):
            for r in event["records"]:
                doc = json.loads(base64.b64decode(r["data"]))
                ticker = doc["ticker"]
                if ticker.startswith("lose") and fn.startswith("lossy-"):
                    continue
                if ticker.startswith("drop"):
                    recs.append({"recordId": r["recordId"], "result": "Dropped"})
                elif ticker.startswith("fail"):
                    recs.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
                else:
                    doc["ticker"] = ticker.upper()
                    recs.append({"recordId": r["recordId"], "result": "Ok", "data": base64.b64encode(json.dumps(doc).encode()).decode()})
        else:
            seen = [base64.b64decode(r["data"]) for c in earlier for r in c["event"]["records"]]
            for r in event["records"]:
                data = base64.b64decode(r["data"])
                failed = fn.startswith("out-") and b"MSFT" in data and data not in seen
                recs.append({"recordId": r["recordId"], "result": "DeliveryFailed" if failed else "Ok"})
        return {"records": recs}

    def of(self, arn):
        fn = arn.split(":")[-1]
        with self.lock:
            return [c for c in self.calls if c["function"] == fn]

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


def function_arn(kind):
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{kind}-{uuid.uuid4().hex[:8]}"


PASS = """
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker VARCHAR(8), price DOUBLE);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM ticker, price FROM "SOURCE_SQL_STREAM_001";
"""

FILTER = """
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker VARCHAR(8), price DOUBLE, doubled DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM ticker, price, price * 2
  FROM "SOURCE_SQL_STREAM_001"
  WHERE sector = 'TECH';
"""


def preprocessed_app(ka, input_arn, function, outputs):
    name = unique("app")
    ka.create_application(
        ApplicationName=name,
        ApplicationCode=PASS,
        Inputs=[
            {
                "NamePrefix": "SOURCE_SQL_STREAM",
                "KinesisStreamsInput": {"ResourceARN": input_arn, "RoleARN": ROLE},
                "InputProcessingConfiguration": {"InputLambdaProcessor": {"ResourceARN": function, "RoleARN": ROLE}},
                "InputSchema": SCHEMA,
            }
        ],
        Outputs=outputs,
    )
    return name


def app_arn(name):
    return f"arn:aws:kinesisanalytics:{REGION}:{ACCOUNT}:application/{name}"


def test_a_preprocessing_function_transforms_drops_and_fails_records(srv, lam):
    kinesis, ka = srv.client(), srv.client("kinesisanalytics")
    src, dst, errs = unique("in"), unique("out"), unique("err")
    src_arn = stream(kinesis, src)
    fn = function_arn("pre")
    name = preprocessed_app(
        ka,
        src_arn,
        fn,
        [kinesis_output(stream(kinesis, dst)), kinesis_output(stream(kinesis, errs), "JSON", "error_stream")],
    )
    records = [
        {"ticker": "amzn", "sector": "TECH", "price": 10.5},
        {"ticker": "drop-me", "sector": "TECH", "price": 1},
        {"ticker": "fail-me", "sector": "TECH", "price": 2},
        {"ticker": "msft", "sector": "TECH", "price": 20.25},
    ]
    put(kinesis, src, records)
    start(ka, name)
    assert [json.loads(g) for g in read_all(kinesis, dst, 2)] == [
        {"TICKER": "AMZN", "PRICE": 10.5},
        {"TICKER": "MSFT", "PRICE": 20.25},
    ]
    errors = [json.loads(g) for g in read_all(kinesis, errs, 1)]
    assert [(e["ERROR_LEVEL"], e["ERROR_NAME"], e["MESSAGE"], e["DATA_ROW"], e["PUMP_NAME"]) for e in errors] == [
        (
            "ERROR",
            "Mapping_Error",
            f"Lambda preprocessing: the function {fn} set ProcessingFailed for the record",
            json.dumps(records[2]).encode().hex(),
            None,
        )
    ]
    time.sleep(1)
    assert len(read_all(kinesis, dst, 2)) == 2
    assert len(read_all(kinesis, errs, 1)) == 1

    # The event: one invocation for the batch, in the documented shape.
    calls = lam.of(fn)
    assert len(calls) == 1
    call = calls[0]
    assert call["headers"]["x-amz-invocation-type"] == "RequestResponse"
    event = call["event"]
    assert sorted(event) == ["applicationArn", "invocationId", "records", "streamArn"]
    assert re.fullmatch(UUID, event["invocationId"])
    assert event["applicationArn"] == app_arn(name)
    assert event["streamArn"] == src_arn
    got = event["records"]
    assert [base64.b64decode(r["data"]) for r in got] == [json.dumps(r).encode() for r in records]
    described = kinesis.describe_stream(StreamName=src)["StreamDescription"]["Shards"][0]["ShardId"]
    for r in got:
        assert sorted(r) == ["data", "kinesisStreamRecordMetadata", "recordId"]
        meta = r["kinesisStreamRecordMetadata"]
        assert sorted(meta) == ["approximateArrivalTimestamp", "partitionKey", "sequenceNumber", "shardId"]
        assert (meta["shardId"], meta["partitionKey"]) == (described, "k")
        assert r["recordId"] == meta["sequenceNumber"]
        assert abs(meta["approximateArrivalTimestamp"] - time.time() * 1000) < 120_000
    assert len({r["recordId"] for r in got}) == 4
    ka.stop_application(ApplicationName=name)


def test_a_batch_the_function_cannot_answer_is_retried_then_goes_to_error_stream(srv, lam):
    kinesis, ka = srv.client(), srv.client("kinesisanalytics")
    src, dst, errs = unique("in"), unique("out"), unique("err")
    fn = function_arn("lossy")
    name = preprocessed_app(
        ka,
        stream(kinesis, src),
        fn,
        [kinesis_output(stream(kinesis, dst)), kinesis_output(stream(kinesis, errs), "JSON", "error_stream")],
    )
    lost = {"ticker": "lose-me", "sector": "TECH", "price": 3}
    put(kinesis, src, [lost])
    start(ka, name)
    errors = [json.loads(g) for g in read_all(kinesis, errs, 1)]
    assert [(e["ERROR_NAME"], e["MESSAGE"], e["DATA_ROW"]) for e in errors] == [
        (
            "Mapping_Error",
            "Lambda preprocessing failed after 4 attempts: 1 of the 1 record ids sent were not returned",
            json.dumps(lost).encode().hex(),
        )
    ]
    # The first invocation and three retries, all of the same records.
    calls = lam.of(fn)
    assert len(calls) == 4
    assert len({c["event"]["invocationId"] for c in calls}) == 1
    assert all(c["event"]["records"] == calls[0]["event"]["records"] for c in calls)
    # The application reads on.
    put(kinesis, src, [{"ticker": "next", "sector": "TECH", "price": 4}])
    assert [json.loads(g) for g in read_all(kinesis, dst, 1)] == [{"TICKER": "NEXT", "PRICE": 4.0}]
    assert len(lam.of(fn)) == 5
    ka.stop_application(ApplicationName=name)


def test_records_of_a_firehose_input_go_to_the_function_with_their_arrival_time(srv, lam):
    kinesis, ka, fh = srv.client(), srv.client("kinesisanalytics"), srv.client("firehose")
    bucket, ds, dst = unique("bucket"), unique("clicks"), unique("out")
    ds_arn = delivery_stream(srv, ds, bucket, 60)
    fn = function_arn("pre")
    name = unique("app")
    ka.create_application(
        ApplicationName=name,
        ApplicationCode=PASS,
        Inputs=[
            {
                "NamePrefix": "SOURCE_SQL_STREAM",
                "KinesisFirehoseInput": {"ResourceARN": ds_arn, "RoleARN": ROLE},
                "InputProcessingConfiguration": {"InputLambdaProcessor": {"ResourceARN": fn, "RoleARN": ROLE}},
                "InputSchema": SCHEMA,
            }
        ],
        Outputs=[kinesis_output(stream(kinesis, dst))],
    )
    start(ka, name, "NOW")
    time.sleep(1.5)  # the task starts reading at NOW
    records = [{"ticker": "amzn", "sector": "TECH", "price": 1}, {"ticker": "drop", "sector": "TECH", "price": 2}]
    fh.put_record_batch(DeliveryStreamName=ds, Records=[{"Data": json.dumps(r).encode()} for r in records])
    assert [json.loads(g) for g in read_all(kinesis, dst, 1)] == [{"TICKER": "AMZN", "PRICE": 1.0}]
    got = [r for c in lam.of(fn) for r in c["event"]["records"]]
    assert all(c["event"]["streamArn"] == ds_arn for c in lam.of(fn))
    assert [base64.b64decode(r["data"]) for r in got] == [json.dumps(r).encode() for r in records]
    for r in got:
        assert sorted(r) == ["data", "kinesisFirehoseRecordMetadata", "recordId"]
        assert sorted(r["kinesisFirehoseRecordMetadata"]) == ["approximateArrivalTimestamp"]
        assert abs(r["kinesisFirehoseRecordMetadata"]["approximateArrivalTimestamp"] - time.time() * 1000) < 120_000
        assert re.fullmatch(UUID, r["recordId"])
    ka.stop_application(ApplicationName=name)


def lambda_output_app(ka, kinesis, fn):
    src = unique("in")
    name = unique("app")
    ka.create_application(
        ApplicationName=name,
        ApplicationCode=FILTER,
        Inputs=[{"NamePrefix": "SOURCE_SQL_STREAM", "KinesisStreamsInput": {"ResourceARN": stream(kinesis, src), "RoleARN": ROLE}, "InputSchema": SCHEMA}],
        Outputs=[
            {
                "Name": "DESTINATION_SQL_STREAM",
                "LambdaOutput": {"ResourceARN": fn, "RoleARN": ROLE},
                "DestinationSchema": {"RecordFormatType": "JSON"},
            }
        ],
    )
    return name, src


TICKS = [
    {"ticker": "AMZN", "sector": "TECH", "price": 10.5},
    {"ticker": "XOM", "sector": "ENERGY", "price": 80.0},
    {"ticker": "MSFT", "sector": "TECH", "price": 20.25},
]
AMZN = b'{"TICKER":"AMZN","PRICE":10.5,"DOUBLED":21.0}'
MSFT = b'{"TICKER":"MSFT","PRICE":20.25,"DOUBLED":40.5}'


def wait_calls(lam, fn, done, timeout=20):
    deadline = time.time() + timeout
    while True:
        calls = lam.of(fn)
        if done(calls):
            return calls
        assert time.time() < deadline, calls
        time.sleep(0.1)


def received(calls):
    """(data, retryHint) of every record sent, in order."""
    return [
        (base64.b64decode(r["data"]), r["lambdaDeliveryRecordMetadata"]["retryHint"])
        for c in calls
        for r in c["event"]["records"]
    ]


def test_a_lambda_output_gets_the_rows_and_records_it_fails_are_sent_again(srv, lam):
    kinesis, ka = srv.client(), srv.client("kinesisanalytics")
    fn = function_arn("out")
    name, src = lambda_output_app(ka, kinesis, fn)
    start(ka, name)
    put(kinesis, src, TICKS)
    calls = wait_calls(lam, fn, lambda cs: any(d == MSFT and h == 1 for d, h in received(cs)))
    time.sleep(1)
    calls = lam.of(fn)
    # AMZN is acknowledged at once; MSFT fails once and is delivered on
    # its retry, with retryHint 1; nothing more is sent.
    assert received(calls) == [(AMZN, 0), (MSFT, 0), (MSFT, 1)]
    for c in calls:
        event = c["event"]
        assert sorted(event) == ["applicationArn", "invocationId", "records"]
        assert event["applicationArn"] == app_arn(name)
        assert re.fullmatch(UUID, event["invocationId"])
        for r in event["records"]:
            assert sorted(r) == ["data", "lambdaDeliveryRecordMetadata", "recordId"]
            assert sorted(r["lambdaDeliveryRecordMetadata"]) == ["retryHint"]
            assert re.fullmatch(UUID, r["recordId"])
    assert len({c["event"]["invocationId"] for c in calls}) == len(calls)
    # The application goes on delivering.
    put(kinesis, src, [{"ticker": "NFLX", "sector": "TECH", "price": 1}])
    calls = wait_calls(lam, fn, lambda cs: len(received(cs)) == 4)
    assert received(calls)[3] == (b'{"TICKER":"NFLX","PRICE":1.0,"DOUBLED":2.0}', 0)
    ka.stop_application(ApplicationName=name)


def test_a_lambda_output_answering_garbage_is_invoked_again(srv, lam):
    kinesis, ka = srv.client(), srv.client("kinesisanalytics")
    fn = function_arn("flaky")
    name, src = lambda_output_app(ka, kinesis, fn)
    start(ka, name)
    put(kinesis, src, TICKS[:1])
    wait_calls(lam, fn, lambda cs: len(cs) >= 2)
    time.sleep(1)
    assert received(lam.of(fn)) == [(AMZN, 0), (AMZN, 1)]
    ka.stop_application(ApplicationName=name)


def test_discover_input_schema_samples_what_the_preprocessing_function_returns(srv, lam):
    kinesis, ka = srv.client(), srv.client("kinesisanalytics")
    src = unique("in")
    arn = stream(kinesis, src)
    put(kinesis, src, [{"ticker": "amzn", "n": 1}, {"ticker": "drop-me", "n": 2}, {"ticker": "msft", "n": 3}])
    fn = function_arn("pre")
    out = ka.discover_input_schema(
        ResourceARN=arn,
        RoleARN=ROLE,
        InputStartingPositionConfiguration={"InputStartingPosition": "TRIM_HORIZON"},
        InputProcessingConfiguration={"InputLambdaProcessor": {"ResourceARN": fn, "RoleARN": ROLE}},
    )
    assert out["RawInputRecords"] == [
        json.dumps({"ticker": "amzn", "n": 1}),
        json.dumps({"ticker": "drop-me", "n": 2}),
        json.dumps({"ticker": "msft", "n": 3}),
    ]
    assert out["ProcessedInputRecords"] == [json.dumps({"ticker": "AMZN", "n": 1}), json.dumps({"ticker": "MSFT", "n": 3})]
    assert [(c["Name"], c["SqlType"]) for c in out["InputSchema"]["RecordColumns"]] == [("ticker", "VARCHAR(4)"), ("n", "INTEGER")]
    assert out["ParsedInputRecords"] == [["AMZN", "1"], ["MSFT", "3"]]
    (call,) = lam.of(fn)
    assert [base64.b64decode(r["data"]) for r in call["event"]["records"]] == [r.encode() for r in out["RawInputRecords"]]
