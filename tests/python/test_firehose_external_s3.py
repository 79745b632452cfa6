"""Firehose delivery to buckets on an external S3-compatible endpoint:
moto's S3 server stands in for it. `--s3-endpoint URL` sends every bucket
there, `--s3-bucket-endpoint BUCKET=URL` (or RIFFLE_S3_BUCKET_ENDPOINTS)
only the buckets named; objects are read back from moto with boto3."""
import datetime
import json
import re
import subprocess
import sys
import time
import urllib.request

import boto3
import botocore.config
import pytest

from conftest import ACCOUNT, REGION, Server, free_port, riffle_bin, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
CREDS = {"AWS_ACCESS_KEY_ID": "AKIDMOTO", "AWS_SECRET_ACCESS_KEY": "moto-secret"}


@pytest.fixture(scope="module")
def moto():
    """moto's S3 server on a free loopback port: (endpoint, boto3 S3 client)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).read()
            break
        except OSError:
            assert proc.poll() is None, "moto_server exited"
            assert time.time() < deadline, "moto_server did not start"
            time.sleep(0.1)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="AKIDMOTO",
        aws_secret_access_key="moto-secret",
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )
    yield endpoint, client
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def global_server(moto):
    s = Server("--s3-endpoint", moto[0], "--status-delay-ms", "0", env=CREDS).start()
    yield s
    s.stop()
    s.cleanup()


def create(fh, bucket, **s3):
    name = unique("ext")
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


def keys(s3, bucket, prefix=""):
    try:
        return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))
    except s3.exceptions.NoSuchBucket:
        return []


def wait_keys(s3, bucket, n, prefix="", timeout=15):
    deadline = time.time() + timeout
    while True:
        found = keys(s3, bucket, prefix)
        if len(found) >= n:
            return found
        assert time.time() < deadline, f"expected {n} objects in {bucket}/{prefix}, found {found}"
        time.sleep(0.1)


def test_delivers_to_the_external_endpoint_with_aws_key_layout(global_server, moto):
    _, s3 = moto
    bucket = unique("ext").lower()
    s3.create_bucket(Bucket=bucket)
    fh = global_server.client("firehose")
    name = create(fh, bucket, Prefix="in/")
    before = datetime.datetime.now(datetime.timezone.utc)
    records = [b"one\n", bytes(range(256)), b"", b"\x00last"]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
    (key,) = wait_keys(s3, bucket, 1)
    m = re.fullmatch(
        r"in/(\d{4})/(\d{2})/(\d{2})/(\d{2})/" + re.escape(name) + r"-1-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-" + UUID,
        key,
    )
    assert m, key
    assert m.group(1, 2, 3, 4) == m.group(5, 6, 7, 8)
    stamp = datetime.datetime(*map(int, m.group(5, 6, 7, 8, 9, 10)), tzinfo=datetime.timezone.utc)
    assert abs((stamp - before).total_seconds()) < 5
    obj = s3.get_object(Bucket=bucket, Key=key)
    assert obj["Body"].read() == b"".join(records)
    assert obj["ContentType"] == "application/octet-stream"
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert "FailureDescription" not in d
    # Nothing went to the embedded S3.
    assert global_server.client("s3").list_buckets()["Buckets"] == []


def test_missing_external_bucket_fails_then_delivers(global_server, moto):
    _, s3 = moto
    bucket = unique("later").lower()
    fh = global_server.client("firehose")
    name = create(fh, bucket)
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"waiting"})
    deadline = time.time() + 10
    while True:
        d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        if "FailureDescription" in d:
            break
        assert time.time() < deadline, d
        time.sleep(0.1)
    f = d["FailureDescription"]
    assert f["Type"] == "UNKNOWN_ERROR"
    assert re.fullmatch(
        re.escape(f"S3.NoSuchBucket: The specified bucket does not exist: {bucket}. Create the bucket; delivery is retried until then (up to 24 hours).")
        + r" \(\d+ attempts? so far\)",
        f["Details"],
    ), f
    s3.create_bucket(Bucket=bucket)
    (key,) = wait_keys(s3, bucket, 1, timeout=20)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"waiting"
    deadline = time.time() + 5
    while "FailureDescription" in fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]:
        assert time.time() < deadline
        time.sleep(0.1)


@pytest.mark.parametrize("via_env", [False, True])
def test_per_bucket_endpoint_next_to_the_embedded_s3(moto, via_env):
    endpoint, moto_s3 = moto
    external, other, embedded = unique("far").lower(), unique("far2").lower(), unique("near").lower()
    moto_s3.create_bucket(Bucket=external)
    moto_s3.create_bucket(Bucket=other)
    if via_env:
        flags = ()
        env = dict(CREDS, RIFFLE_S3_BUCKET_ENDPOINTS=f"{external}={endpoint},{other}={endpoint}")
    else:
        flags = ("--s3-bucket-endpoint", f"{external}={endpoint}", "--s3-bucket-endpoint", f"{other}={endpoint}")
        env = CREDS
    s = Server(*flags, "--status-delay-ms", "0", env=env).start()
    try:
        fh, local_s3 = s.client("firehose"), s.client("s3")
        local_s3.create_bucket(Bucket=embedded)
        far = create(fh, external, Prefix="far/")
        near = create(fh, embedded, Prefix="near/")
        fh.put_record(DeliveryStreamName=far, Record={"Data": b"to moto"})
        fh.put_record(DeliveryStreamName=near, Record={"Data": b"kept here"})
        (fk,) = wait_keys(moto_s3, external, 1)
        (nk,) = wait_keys(local_s3, embedded, 1)
        assert fk.startswith("far/") and nk.startswith("near/")
        assert moto_s3.get_object(Bucket=external, Key=fk)["Body"].read() == b"to moto"
        assert local_s3.get_object(Bucket=embedded, Key=nk)["Body"].read() == b"kept here"
        # Each object is only where its bucket lives.
        assert [b["Name"] for b in local_s3.list_buckets()["Buckets"]] == [embedded]
        assert embedded not in [b["Name"] for b in moto_s3.list_buckets()["Buckets"]]
        # A bucket not mapped and not on the embedded S3 is missing there.
        lost = unique("nowhere").lower()
        moto_s3.create_bucket(Bucket=lost)
        name = create(fh, lost)
        fh.put_record(DeliveryStreamName=name, Record={"Data": b"x"})
        deadline = time.time() + 10
        while "FailureDescription" not in (d := fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]):
            assert time.time() < deadline
            time.sleep(0.1)
        assert d["FailureDescription"]["Details"].startswith(f"S3.NoSuchBucket: The specified bucket does not exist: {lost}.")
        assert keys(moto_s3, lost) == []
    finally:
        s.stop()
        s.cleanup()


@pytest.mark.parametrize(
    "flags,env,message",
    [
        (["--s3-bucket-endpoint", "no-url"], CREDS, "--s3-bucket-endpoint no-url: a bucket endpoint is BUCKET=URL"),
        (["--s3-endpoint", "ftp://s3.example.com"], CREDS, "--s3-endpoint ftp://s3.example.com: an S3 endpoint is an http:// or https:// URL"),
        (["--s3-endpoint", "http://s3.example.com/?x=1"], CREDS, "--s3-endpoint http://s3.example.com/?x=1: an S3 endpoint has no query or fragment"),
        (["--s3-endpoint", "http://127.0.0.1:9"], {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, "external S3 endpoints need credentials"),
    ],
)
def test_bad_settings_stop_the_server(flags, env, message, tmp_path):
    import os

    e = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    e.update({k: v for k, v in env.items() if v})
    out = subprocess.run(
        [riffle_bin(), "serve", "--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path), *flags],
        env=e,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode != 0
    assert message in out.stderr, out.stderr


def test_source_record_backup_to_an_external_bucket(moto):
    endpoint, moto_s3 = moto
    main, backup = unique("main").lower(), unique("bkp").lower()
    moto_s3.create_bucket(Bucket=backup)
    s = Server("--s3-bucket-endpoint", f"{backup}={endpoint}", "--status-delay-ms", "0", env=CREDS).start()
    try:
        fh, local_s3 = s.client("firehose"), s.client("s3")
        local_s3.create_bucket(Bucket=main)
        name = create(
            fh,
            main,
            ProcessingConfiguration={
                "Enabled": True,
                "Processors": [{"Type": "AppendDelimiterToRecord", "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "|"}]}],
            },
            S3BackupMode="Enabled",
            S3BackupConfiguration={"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{backup}", "Prefix": "raw/"},
        )
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"a"}, {"Data": b"b"}])
        (mk,) = wait_keys(local_s3, main, 1)
        (bk,) = wait_keys(moto_s3, backup, 1)
        assert local_s3.get_object(Bucket=main, Key=mk)["Body"].read() == b"a|b|"
        assert re.fullmatch(r"raw/\d{4}/\d{2}/\d{2}/\d{2}/" + re.escape(name) + r"-1-\d{4}(-\d{2}){5}-" + UUID, bk), bk
        assert moto_s3.get_object(Bucket=backup, Key=bk)["Body"].read() == b"ab"
    finally:
        s.stop()
        s.cleanup()


def moto_auth(endpoint, count):
    """Turns moto's IAM checks on after `count` more requests ("inf": off)."""
    req = urllib.request.Request(
        endpoint + "/moto-api/reset-auth", data=str(count).encode(), method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(req, timeout=5).read()


def wait_failure(fh, name, timeout=10):
    deadline = time.time() + timeout
    while "FailureDescription" not in (d := fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]):
        assert time.time() < deadline, d
        time.sleep(0.1)
    return d["FailureDescription"]


def test_signed_requests_pass_moto_iam_and_access_denied_is_reported(moto):
    """With moto checking signatures and IAM policies: delivery signed with
    an IAM user's keys succeeds where the policy allows PutObject, fails
    with S3.AccessDenied where it does not, and with a wrong secret."""
    endpoint, moto_s3 = moto
    allowed, locked = unique("open").lower(), unique("locked").lower()
    moto_s3.create_bucket(Bucket=allowed)
    moto_s3.create_bucket(Bucket=locked)
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="AKIDMOTO", aws_secret_access_key="moto-secret")
    user = unique("firehose")
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="deliver",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    # HeadBucket: AWS checks s3:ListBucket, moto s3:HeadBucket.
                    {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:HeadBucket"], "Resource": [f"arn:aws:s3:::{allowed}", f"arn:aws:s3:::{locked}"]},
                    {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{allowed}/*"},
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    good = Server("--s3-endpoint", endpoint, "--s3-access-key-id", key["AccessKeyId"], "--s3-secret-access-key", key["SecretAccessKey"], "--status-delay-ms", "0").start()
    bad = Server("--s3-endpoint", endpoint, "--s3-access-key-id", key["AccessKeyId"], "--s3-secret-access-key", "not-the-secret", "--status-delay-ms", "0").start()
    try:
        fh, fh_bad = good.client("firehose"), bad.client("firehose")
        ok_stream, locked_stream = create(fh, allowed), create(fh, locked)
        bad_stream = create(fh_bad, allowed, Prefix="bad/")
        moto_auth(endpoint, 0)
        try:
            fh.put_record(DeliveryStreamName=ok_stream, Record={"Data": b"signed"})
            fh.put_record(DeliveryStreamName=locked_stream, Record={"Data": b"refused"})
            fh_bad.put_record(DeliveryStreamName=bad_stream, Record={"Data": b"forged"})
            f = wait_failure(fh, locked_stream)
            assert f["Type"] == "UNKNOWN_ERROR"
            assert re.fullmatch(
                re.escape(f"S3.AccessDenied: Access Denied: the S3 endpoint {endpoint} refused access to bucket {locked}")
                + r" \(\d+ attempts? so far\)",
                f["Details"],
            ), f
            # HeadBucket answers a bad signature with a bare 403, read as
            # access denied.
            f = wait_failure(fh_bad, bad_stream)
            assert re.fullmatch(
                re.escape(f"S3.AccessDenied: Access Denied: the S3 endpoint {endpoint} refused access to bucket {allowed}")
                + r" \(\d+ attempts? so far\)",
                f["Details"],
            ), f
            deadline = time.time() + 15
            while "FailureDescription" in fh.describe_delivery_stream(DeliveryStreamName=ok_stream)["DeliveryStreamDescription"] or not _delivered(fh, ok_stream):
                assert time.time() < deadline, fh.describe_delivery_stream(DeliveryStreamName=ok_stream)["DeliveryStreamDescription"].get("FailureDescription")
                time.sleep(0.1)
        finally:
            moto_auth(endpoint, "inf")
        (k,) = keys(moto_s3, allowed)
        assert moto_s3.get_object(Bucket=allowed, Key=k)["Body"].read() == b"signed"
        assert keys(moto_s3, locked) == []
    finally:
        for s in (good, bad):
            s.stop()
            s.cleanup()


def _delivered(fh, name):
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    return "FailureDescription" not in d
