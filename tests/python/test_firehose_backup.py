"""Source record backup of the extended S3 destination (S3BackupMode
Enabled) with boto3 against the embedded S3: the records as they arrived,
under the backup configuration's prefix and compression, next to the
processed object; UpdateDestination turns backup on but never off."""
import gzip
import re
import time

import pytest

from conftest import ACCOUNT, Server, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
STAMP = r"(\d{4})/(\d{2})/(\d{2})/(\d{2})/"
DELIMIT = {
    "Enabled": True,
    "Processors": [{"Type": "AppendDelimiterToRecord", "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "\\n"}]}],
}


@pytest.fixture(scope="module")
def srv():
    s = Server("--status-delay-ms", "0").start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture(scope="module")
def fh(srv):
    return srv.client("firehose")


@pytest.fixture(scope="module")
def s3(srv):
    return srv.client("s3")


def create(fh, bucket, **extra):
    name = unique("bkp")
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "out/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            "ProcessingConfiguration": DELIMIT,
            **extra,
        },
    )
    return name


def objects(s3, bucket, n, timeout=15):
    deadline = time.time() + timeout
    while True:
        found = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
        if len(found) >= n:
            assert len(found) == n, found
            return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in found}
        assert time.time() < deadline, f"expected {n} objects in {bucket}, found {found}"
        time.sleep(0.1)


def describe(fh, name):
    return fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]


def test_source_records_backed_up_as_they_arrived(fh, s3):
    main, backup = unique("main").lower(), unique("backup").lower()
    s3.create_bucket(Bucket=main)
    s3.create_bucket(Bucket=backup)
    name = create(
        fh,
        main,
        S3BackupMode="Enabled",
        S3BackupConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{backup}",
            "Prefix": "source/",
            "CompressionFormat": "GZIP",
        },
    )
    d = describe(fh, name)["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert d["S3BackupMode"] == "Enabled"
    assert d["S3BackupDescription"] == {
        "RoleARN": ROLE,
        "BucketARN": f"arn:aws:s3:::{backup}",
        "Prefix": "source/",
        "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300},
        "CompressionFormat": "GZIP",
        "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
        "CloudWatchLoggingOptions": {"Enabled": False},
    }
    records = [b'{"a":1}', b"\x00\xff", b'{"a":3}']
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
    ((mk, mb),) = objects(s3, main, 1).items()
    ((bk, bb),) = objects(s3, backup, 1).items()
    assert re.fullmatch("out/" + STAMP + re.escape(name) + r"-1-\d{4}(-\d{2}){5}-" + UUID, mk), mk
    m = re.fullmatch("source/" + STAMP + re.escape(name) + r"-1-(\d{4})-(\d{2})-(\d{2})-(\d{2})-\d{2}-\d{2}-" + UUID + r"\.gz", bk)
    assert m, bk
    assert m.group(1, 2, 3, 4) == m.group(5, 6, 7, 8)
    # The destination gets the processed records; the backup the sources.
    assert mb == b"".join(r + b"\n" for r in records)
    assert gzip.decompress(bb) == b"".join(records)
    assert "FailureDescription" not in describe(fh, name)


def test_missing_backup_bucket_then_created(fh, s3):
    main, backup = unique("main").lower(), unique("later").lower()
    s3.create_bucket(Bucket=main)
    name = create(
        fh,
        main,
        S3BackupMode="Enabled",
        S3BackupConfiguration={"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{backup}"},
    )
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"kept"})
    deadline = time.time() + 10
    while "FailureDescription" not in (d := describe(fh, name)):
        assert time.time() < deadline, d
        time.sleep(0.1)
    assert re.fullmatch(
        re.escape(f"S3.NoSuchBucket: The specified backup bucket does not exist: {backup}. Create the bucket; delivery is retried until then.")
        + r" \(\d+ attempts? so far\)",
        d["FailureDescription"]["Details"],
    ), d["FailureDescription"]
    s3.create_bucket(Bucket=backup)
    assert list(objects(s3, backup, 1, timeout=20).values()) == [b"kept"]
    # The destination object was written once, retries or not.
    assert list(objects(s3, main, 1).values()) == [b"kept\n"]


def test_update_enables_backup_and_refuses_to_disable_it(fh, s3):
    main, backup = unique("main").lower(), unique("backup").lower()
    s3.create_bucket(Bucket=main)
    s3.create_bucket(Bucket=backup)
    name = create(fh, main)
    d = describe(fh, name)
    assert d["Destinations"][0]["ExtendedS3DestinationDescription"]["S3BackupMode"] == "Disabled"
    dest = d["Destinations"][0]["DestinationId"]
    fh.update_destination(
        DeliveryStreamName=name,
        CurrentDeliveryStreamVersionId=d["VersionId"],
        DestinationId=dest,
        ExtendedS3DestinationUpdate={
            "S3BackupMode": "Enabled",
            "S3BackupUpdate": {"BucketARN": f"arn:aws:s3:::{backup}", "Prefix": "src/"},
        },
    )
    d = describe(fh, name)
    assert d["VersionId"] == "2"
    desc = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert desc["S3BackupMode"] == "Enabled"
    assert desc["S3BackupDescription"]["BucketARN"] == f"arn:aws:s3:::{backup}"
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"after"})
    ((key, body),) = objects(s3, backup, 1).items()
    assert re.fullmatch("src/" + STAMP + re.escape(name) + r"-2-\d{4}(-\d{2}){5}-" + UUID, key), key
    assert body == b"after"
    with pytest.raises(fh.exceptions.InvalidArgumentException) as e:
        fh.update_destination(
            DeliveryStreamName=name,
            CurrentDeliveryStreamVersionId="2",
            DestinationId=dest,
            ExtendedS3DestinationUpdate={"S3BackupMode": "Disabled"},
        )
    assert e.value.response["Error"]["Message"] == "Disabling S3 backup is not currently supported."
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    d = describe(fh, name)
    assert d["VersionId"] == "2"
    assert d["Destinations"][0]["ExtendedS3DestinationDescription"]["S3BackupMode"] == "Enabled"
