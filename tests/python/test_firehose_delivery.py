"""Firehose delivery to S3 destinations with boto3, through
`riffle serve --firehose-local-output DIR` (objects as files under
DIR/<bucket>/<key>): AWS's key layout, contents, compression and
FailureDescription while the bucket is missing."""
import datetime
import gzip
import re
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ACCOUNT, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def out_dir():
    d = Path(tempfile.mkdtemp(prefix="riffle-firehose-out-"))
    (d / "bucket").mkdir()
    return d


@pytest.fixture(scope="module")
def fh(out_dir):
    from conftest import Server

    s = Server("--firehose-local-output", str(out_dir), "--status-delay-ms", "0").start()
    yield s.client("firehose")
    s.stop()
    s.cleanup()


def objects(root):
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def wait_objects(root, n, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = objects(root)
        if len(found) >= n:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {n} objects under {root}, found {objects(root)}")


def create(fh, bucket="bucket", **s3):
    name = unique("dlv")
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            **s3,
        },
    )
    deadline = time.time() + 5
    while fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        assert time.time() < deadline
        time.sleep(0.05)
    return name


def test_object_key_layout_and_content(fh, out_dir):
    name = create(fh, Prefix=f"{unique('p')}/")
    prefix = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["Destinations"][0][
        "ExtendedS3DestinationDescription"
    ]["Prefix"]
    before = datetime.datetime.now(datetime.timezone.utc)
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"one\n"}, {"Data": b"two\n"}])
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"three\n"})
    root = out_dir / "bucket" / prefix
    (path,) = wait_objects(root, 1, timeout=6)
    key = path.relative_to(out_dir / "bucket").as_posix()
    m = re.fullmatch(
        re.escape(prefix)
        + r"(\d{4})/(\d{2})/(\d{2})/(\d{2})/"
        + re.escape(name)
        + r"-1-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-"
        + UUID,
        key,
    )
    assert m, key
    # The folder is the hour of the suffix's timestamp, in UTC.
    assert m.group(1, 2, 3, 4) == m.group(5, 6, 7, 8)
    stamp = datetime.datetime(*map(int, m.group(5, 6, 7, 8, 9, 10)), tzinfo=datetime.timezone.utc)
    assert abs((stamp - before).total_seconds()) < 5
    assert path.read_bytes() == b"one\ntwo\nthree\n"
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert "FailureDescription" not in d


def test_gzip_objects_read_back(fh, out_dir):
    sub = unique("gz")
    name = create(fh, Prefix=f"{sub}/", CompressionFormat="GZIP")
    records = [f'{{"n":{i}}}\n'.encode() for i in range(50)]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
    (path,) = wait_objects(out_dir / "bucket" / sub, 1, timeout=6)
    assert path.name.endswith(".gz")
    assert gzip.decompress(path.read_bytes()) == b"".join(records)


def test_missing_bucket_shows_failure_then_delivers(fh, out_dir):
    bucket = unique("later").lower()
    name = create(fh, bucket=bucket)
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"waiting"})
    deadline = time.time() + 6
    while True:
        d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        if "FailureDescription" in d:
            break
        assert time.time() < deadline, d
        time.sleep(0.1)
    f = d["FailureDescription"]
    assert f["Type"] == "UNKNOWN_ERROR"
    assert f["Details"].startswith(f"S3.NoSuchBucket: The specified bucket does not exist: {bucket}."), f
    (out_dir / bucket).mkdir()
    (path,) = wait_objects(out_dir / bucket, 1, timeout=10)
    assert path.read_bytes() == b"waiting"


def test_invalid_prefix_refused(fh):
    with pytest.raises(fh.exceptions.InvalidArgumentException) as e:
        create(fh, Prefix="!{timestamp:yyyy}/")
    assert e.value.response["Error"]["Message"] == (
        "Ths supplied prefix(es) do not satisfy the following constraint: "
        "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions"
    )
