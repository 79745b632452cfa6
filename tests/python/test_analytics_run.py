"""Kinesis Data Analytics applications running: boto3 creates and starts
an application, records put to its input stream flow through its SQL, and
the rows arrive, byte for byte, in a Data Streams output, in a Firehose
delivery stream's S3 objects, and in error_stream; a restart of the server
and LAST_STOPPED_POINT resume the input where it was left."""
import json
import time

import pytest

from conftest import ACCOUNT, REGION, Server, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/analytics"

SCHEMA = {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordEncoding": "UTF-8",
    "RecordColumns": [
        {"Name": "TICKER", "Mapping": "$.ticker", "SqlType": "VARCHAR(8)"},
        {"Name": "SECTOR", "Mapping": "$.sector", "SqlType": "VARCHAR(16)"},
        {"Name": "PRICE", "Mapping": "$.price", "SqlType": "DOUBLE"},
    ],
}

FILTER = """
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker VARCHAR(8), price DOUBLE, doubled DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM ticker, price, price * 2
  FROM "SOURCE_SQL_STREAM_001"
  WHERE sector = 'TECH';
"""


@pytest.fixture(scope="module")
def srv():
    s = Server("--status-delay-ms", "0").start()
    yield s
    s.stop()
    s.cleanup()


def stream(kinesis, name):
    kinesis.create_stream(StreamName=name, ShardCount=1)
    deadline = time.time() + 10
    while kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        assert time.time() < deadline
        time.sleep(0.05)
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def delivery_stream(srv, name, bucket, interval=None):
    """A DirectPut delivery stream to a new embedded-S3 bucket, once ACTIVE;
    its ARN."""
    fh = srv.client("firehose")
    srv.client("s3").create_bucket(Bucket=bucket)
    dest = {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}"}
    if interval is not None:
        dest["BufferingHints"] = {"SizeInMBs": 1, "IntervalInSeconds": interval}
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=dest)
    deadline = time.time() + 10
    while fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        assert time.time() < deadline
        time.sleep(0.05)
    return f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{name}"


def put(kinesis, name, records):
    out = kinesis.put_records(
        StreamName=name,
        Records=[{"Data": r if isinstance(r, bytes) else json.dumps(r).encode(), "PartitionKey": "k"} for r in records],
    )
    assert out["FailedRecordCount"] == 0


def read_all(kinesis, name, n, timeout=30):
    """The first `n` records of a one-shard stream, waiting for them."""
    it = kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = []
    deadline = time.time() + timeout
    while len(got) < n:
        assert time.time() < deadline, f"{len(got)} of {n} records: {got}"
        out = kinesis.get_records(ShardIterator=it)
        got.extend(r["Data"] for r in out["Records"])
        it = out["NextShardIterator"]
        if len(got) < n:
            time.sleep(0.1)
    return got


def wait_status(ka, name, status, timeout=15):
    deadline = time.time() + timeout
    while True:
        d = ka.describe_application(ApplicationName=name)["ApplicationDetail"]
        if d["ApplicationStatus"] == status:
            return d
        assert time.time() < deadline, d["ApplicationStatus"]
        time.sleep(0.05)


def start(ka, name, position="TRIM_HORIZON"):
    d = ka.describe_application(ApplicationName=name)["ApplicationDetail"]
    ka.start_application(
        ApplicationName=name,
        InputConfigurations=[
            {"Id": d["InputDescriptions"][0]["InputId"], "InputStartingPositionConfiguration": {"InputStartingPosition": position}}
        ],
    )
    wait_status(ka, name, "RUNNING")


def app(ka, code, input_arn, outputs, name=None):
    name = name or unique("app")
    ka.create_application(
        ApplicationName=name,
        ApplicationCode=code,
        Inputs=[{"NamePrefix": "SOURCE_SQL_STREAM", "KinesisStreamsInput": {"ResourceARN": input_arn, "RoleARN": ROLE}, "InputSchema": SCHEMA}],
        Outputs=outputs,
    )
    return name


def kinesis_output(arn, fmt="JSON", stream_name="DESTINATION_SQL_STREAM"):
    return {"Name": stream_name, "KinesisStreamsOutput": {"ResourceARN": arn, "RoleARN": ROLE}, "DestinationSchema": {"RecordFormatType": fmt}}


TICKS = [
    {"ticker": "AMZN", "sector": "TECH", "price": 10.5},
    {"ticker": "XOM", "sector": "ENERGY", "price": 80.0},
    {"ticker": "MSFT", "sector": "TECH", "price": 20.25},
]


def test_a_filter_pump_reads_a_stream_and_writes_a_stream(srv):
    kinesis, ka = srv.client(), srv.client("kinesisanalytics")
    src, dst = unique("in"), unique("out")
    name = app(ka, FILTER, stream(kinesis, src), [kinesis_output(stream(kinesis, dst))])
    put(kinesis, src, TICKS)
    start(ka, name)
    put(kinesis, src, [{"ticker": "NFLX", "sector": "TECH", "price": 1}])
    got = read_all(kinesis, dst, 3)
    assert [json.loads(g) for g in got] == [
        {"TICKER": "AMZN", "PRICE": 10.5, "DOUBLED": 21.0},
        {"TICKER": "MSFT", "PRICE": 20.25, "DOUBLED": 40.5},
        {"TICKER": "NFLX", "PRICE": 1.0, "DOUBLED": 2.0},
    ]
    ka.stop_application(ApplicationName=name)
    wait_status(ka, name, "READY")


def test_a_tumbling_window_closes_on_time_without_input(srv):
    kinesis, ka = srv.client(), srv.client("kinesisanalytics")
    src, dst = unique("in"), unique("out")
    code = """
    CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker VARCHAR(8), n INTEGER, total DOUBLE);
    CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
      SELECT STREAM ticker, COUNT(*), SUM(price)
      FROM "SOURCE_SQL_STREAM_001"
      GROUP BY ticker, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '1' HOUR);
    """
    name = app(ka, code, stream(kinesis, src), [kinesis_output(stream(kinesis, dst), "CSV")])
    start(ka, name)
    put(kinesis, src, TICKS + TICKS[:1])
    time.sleep(2)
    # The hour ends only when the server's clock passes it.
    srv.advance_clock(3_600_000)
    got = read_all(kinesis, dst, 3)
    totals = {}
    for line in got:
        ticker, n, total = line.decode().rstrip("\n").split(",")
        t = totals.setdefault(ticker, [0, 0.0])
        t[0] += int(n)
        t[1] += float(total)
    assert totals == {"AMZN": [2, 21.0], "XOM": [1, 80.0], "MSFT": [1, 20.25]}
    assert all(line.decode().endswith("\n") for line in got)
    ka.stop_application(ApplicationName=name)


def test_rows_reach_s3_through_a_firehose_output(srv):
    kinesis, ka, s3 = srv.client(), srv.client("kinesisanalytics"), srv.client("s3")
    src, bucket, ds = unique("in"), unique("bucket"), unique("ds")
    ds_arn = delivery_stream(srv, ds, bucket, 0)
    output = {
        "Name": "DESTINATION_SQL_STREAM",
        "KinesisFirehoseOutput": {"ResourceARN": ds_arn, "RoleARN": ROLE},
        "DestinationSchema": {"RecordFormatType": "CSV"},
    }
    name = app(ka, FILTER, stream(kinesis, src), [output])
    start(ka, name)
    put(kinesis, src, TICKS)
    body = b""
    deadline = time.time() + 30
    while body.count(b"\n") < 2:
        assert time.time() < deadline, body
        time.sleep(0.2)
        body = b"".join(
            s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in sorted(s3.list_objects_v2(Bucket=bucket).get("Contents", []), key=lambda o: o["Key"])
        )
    assert body == b"AMZN,10.5,21.0\nMSFT,20.25,40.5\n"
    ka.stop_application(ApplicationName=name)


def test_bad_records_and_failed_rows_go_to_error_stream(srv):
    kinesis, ka = srv.client(), srv.client("kinesisanalytics")
    src, dst, errs = unique("in"), unique("out"), unique("err")
    code = """
    CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker VARCHAR(8), ratio INTEGER);
    CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
      SELECT STREAM ticker, CAST(sector AS INTEGER) FROM "SOURCE_SQL_STREAM_001";
    """
    name = app(
        ka,
        code,
        stream(kinesis, src),
        [kinesis_output(stream(kinesis, dst)), kinesis_output(stream(kinesis, errs), "JSON", "error_stream")],
    )
    start(ka, name)
    put(kinesis, src, [{"ticker": "A", "sector": "12", "price": 1}, b"{not json", {"ticker": "B", "sector": "x", "price": 1}])
    assert [json.loads(g) for g in read_all(kinesis, dst, 1)] == [{"TICKER": "A", "RATIO": 12}]
    errors = [json.loads(g) for g in read_all(kinesis, errs, 2)]
    assert [(e["ERROR_LEVEL"], e["ERROR_NAME"], e["PUMP_NAME"]) for e in errors] == [
        ("ERROR", "Mapping_Error", None),
        ("ERROR", "SQL_Error", "P"),
    ]
    assert errors[1]["MESSAGE"] == "Cannot cast VARCHAR value 'x' to INTEGER"
    assert errors[0]["DATA_ROW"] == b"{not json".hex()
    ka.stop_application(ApplicationName=name)


def test_a_running_application_resumes_after_a_restart_and_from_its_last_stopped_point(start_server):
    s = start_server("--status-delay-ms", "0")
    kinesis, ka = s.client(), s.client("kinesisanalytics")
    src, dst = unique("in"), unique("out")
    name = app(ka, FILTER, stream(kinesis, src), [kinesis_output(stream(kinesis, dst))])
    start(ka, name, "NOW")
    time.sleep(1.5)  # the task starts reading at NOW
    put(kinesis, src, [{"ticker": "A1", "sector": "TECH", "price": 1}])
    assert len(read_all(kinesis, dst, 1)) == 1
    time.sleep(1.5)  # the checkpoint is saved within a second
    s.stop()
    s.restart()
    kinesis, ka = s.client(), s.client("kinesisanalytics")
    assert ka.describe_application(ApplicationName=name)["ApplicationDetail"]["ApplicationStatus"] == "RUNNING"
    put(kinesis, src, [{"ticker": "A2", "sector": "TECH", "price": 2}])
    got = [json.loads(g)["TICKER"] for g in read_all(kinesis, dst, 2)]
    assert got == ["A1", "A2"]
    ka.stop_application(ApplicationName=name)
    wait_status(ka, name, "READY")
    time.sleep(0.5)
    put(kinesis, src, [{"ticker": "A3", "sector": "TECH", "price": 3}])
    start(ka, name, "LAST_STOPPED_POINT")
    got = [json.loads(g)["TICKER"] for g in read_all(kinesis, dst, 3)]
    assert got == ["A1", "A2", "A3"]
    time.sleep(1)
    assert len(read_all(kinesis, dst, 3)) == 3


def test_a_firehose_delivery_stream_is_an_input(srv):
    kinesis, ka, fh = srv.client(), srv.client("kinesisanalytics"), srv.client("firehose")
    bucket, ds, dst = unique("bucket"), unique("clicks"), unique("out")
    ds_arn = delivery_stream(srv, ds, bucket, 60)
    code = """
    CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker VARCHAR(8), arrived BOOLEAN);
    CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
      SELECT STREAM ticker, APPROXIMATE_ARRIVAL_TIME <= ROWTIME FROM "SOURCE_SQL_STREAM_001";
    """
    name = unique("app")
    ka.create_application(
        ApplicationName=name,
        ApplicationCode=code,
        Inputs=[
            {
                "NamePrefix": "SOURCE_SQL_STREAM",
                "KinesisFirehoseInput": {"ResourceARN": ds_arn, "RoleARN": ROLE},
                "InputSchema": SCHEMA,
            }
        ],
        Outputs=[kinesis_output(stream(kinesis, dst))],
    )
    start(ka, name, "NOW")
    time.sleep(1.5)  # the task starts reading at NOW
    fh.put_record_batch(DeliveryStreamName=ds, Records=[{"Data": json.dumps(t).encode()} for t in TICKS])
    assert [json.loads(g) for g in read_all(kinesis, dst, 3)] == [
        {"TICKER": "AMZN", "ARRIVED": True},
        {"TICKER": "XOM", "ARRIVED": True},
        {"TICKER": "MSFT", "ARRIVED": True},
    ]
    ka.stop_application(ApplicationName=name)


def test_discover_input_schema_samples_a_firehose_delivery_stream(srv):
    import threading

    ka = srv.client("kinesisanalytics")
    bucket, ds = unique("bucket"), unique("clicks")
    ds_arn = delivery_stream(srv, ds, bucket)
    # Records put while the discovery waits are its sample.
    timer = threading.Timer(0.5, lambda: srv.client("firehose").put_record_batch(
        DeliveryStreamName=ds, Records=[{"Data": json.dumps(t).encode()} for t in TICKS]))
    timer.start()
    out = ka.discover_input_schema(
        ResourceARN=ds_arn,
        RoleARN=ROLE,
        InputStartingPositionConfiguration={"InputStartingPosition": "NOW"},
    )
    timer.join()
    cols = [(c["Name"], c["Mapping"], c["SqlType"]) for c in out["InputSchema"]["RecordColumns"]]
    assert cols == [("ticker", "$.ticker", "VARCHAR(4)"), ("sector", "$.sector", "VARCHAR(8)"), ("price", "$.price", "DOUBLE")]
    assert out["RawInputRecords"] == [json.dumps(t) for t in TICKS]


def test_an_open_window_is_rebuilt_after_a_restart(start_server):
    # The input position saved while a window is open is before the
    # window's first row: after a restart the window holds every row.
    s = start_server("--status-delay-ms", "0")
    kinesis, ka = s.client(), s.client("kinesisanalytics")
    src, dst = unique("in"), unique("out")
    code = """
    CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker VARCHAR(8), n INTEGER);
    CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
      SELECT STREAM ticker, COUNT(*) FROM "SOURCE_SQL_STREAM_001"
      GROUP BY ticker, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '1' HOUR);
    """
    name = app(ka, code, stream(kinesis, src), [kinesis_output(stream(kinesis, dst), "CSV")])
    start(ka, name)
    put(kinesis, src, TICKS[:2])
    time.sleep(2)  # read, and the position saved
    s.stop()
    s.restart()
    kinesis = s.client()
    put(kinesis, src, TICKS[:1])
    time.sleep(2)
    s.advance_clock(3_600_000)
    got = read_all(kinesis, dst, 2)
    totals = {}
    for line in got:
        ticker, n = line.decode().rstrip("\n").split(",")
        totals[ticker] = totals.get(ticker, 0) + int(n)
    assert totals == {"AMZN": 2, "XOM": 1}
