"""Per delivery stream metrics on /metrics, named after CloudWatch's
Firehose metrics: records put through boto3, delivered to the embedded S3,
and the exact counter values checked."""
import re
import time
import urllib.request

import pytest

from conftest import ACCOUNT, REGION, Server, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"


@pytest.fixture(scope="module")
def srv():
    s = Server("--status-delay-ms", "0").start()
    yield s
    s.stop()
    s.cleanup()


def metrics(srv):
    return urllib.request.urlopen(srv.endpoint + "/metrics", timeout=5).read().decode()


def value(text, name, stream):
    pat = re.compile(
        rf'^{name}\{{delivery_stream="{re.escape(stream)}",region="{REGION}"\}} (\S+)$', re.M
    )
    m = pat.search(text)
    return None if m is None else float(m.group(1))


def create(fh, bucket):
    name = unique("met")
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        },
    )
    deadline = time.time() + 5
    while fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        assert time.time() < deadline
        time.sleep(0.05)
    return name


def test_counters_after_delivery_to_embedded_s3(srv):
    fh, s3 = srv.client("firehose"), srv.client("s3")
    bucket = unique("mb")
    s3.create_bucket(Bucket=bucket)
    name = create(fh, bucket)
    other = create(fh, bucket)
    text = metrics(srv)
    assert "# TYPE riffle_firehose_incoming_records_total counter" in text
    assert "# TYPE riffle_firehose_delivery_to_s3_data_freshness_seconds gauge" in text
    assert value(text, "riffle_firehose_incoming_records_total", name) == 0

    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"a" * 10}, {"Data": b"b" * 20}, {"Data": b"c" * 30}])
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"d" * 40})
    text = metrics(srv)
    assert value(text, "riffle_firehose_incoming_records_total", name) == 4
    assert value(text, "riffle_firehose_incoming_bytes_total", name) == 100

    deadline = time.time() + 10
    while True:
        objs = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        text = metrics(srv)
        if objs and value(text, "riffle_firehose_delivery_to_s3_records_total", name) == 4:
            break
        assert time.time() < deadline, text
        time.sleep(0.1)
    body = b"".join(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in objs)
    assert sorted(body) == sorted(b"a" * 10 + b"b" * 20 + b"c" * 30 + b"d" * 40)
    assert value(text, "riffle_firehose_delivery_to_s3_success_total", name) == len(objs)
    assert value(text, "riffle_firehose_delivery_to_s3_bytes_total", name) == 100
    assert value(text, "riffle_firehose_delivery_to_s3_data_freshness_seconds", name) == 0
    assert value(text, "riffle_firehose_throttled_records_total", name) == 0
    # The other stream's series are there and untouched.
    for m in ("incoming_records_total", "incoming_bytes_total", "delivery_to_s3_success_total", "delivery_to_s3_records_total"):
        assert value(text, f"riffle_firehose_{m}", other) == 0

    # Series go away with the stream; unknown names never get one.
    fh.delete_delivery_stream(DeliveryStreamName=other)
    with pytest.raises(fh.exceptions.ResourceNotFoundException):
        fh.put_record(DeliveryStreamName="no-such-stream", Record={"Data": b"x"})
    deadline = time.time() + 5
    while value(metrics(srv), "riffle_firehose_incoming_records_total", other) is not None:
        assert time.time() < deadline
        time.sleep(0.1)
    assert "no-such-stream" not in metrics(srv)


def test_freshness_counts_while_records_wait(srv):
    fh = srv.client("firehose")
    # No bucket: delivery fails and retries, so the record stays undelivered.
    name = create(fh, unique("missing"))
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"waiting"})
    deadline = time.time() + 10
    while (value(metrics(srv), "riffle_firehose_delivery_to_s3_data_freshness_seconds", name) or 0) < 1.5:
        assert time.time() < deadline
        time.sleep(0.2)
    text = metrics(srv)
    assert value(text, "riffle_firehose_incoming_records_total", name) == 1
    assert value(text, "riffle_firehose_delivery_to_s3_success_total", name) == 0
    assert value(text, "riffle_firehose_delivery_to_s3_records_total", name) == 0
