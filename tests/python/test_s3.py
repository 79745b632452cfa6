"""S3 on Riffle's port, with boto3 and the AWS CLI: buckets, objects,
ranges, conditions, listings, multipart uploads, path and virtual-host
addressing, aws-chunked bodies, signatures, and durability across SIGKILL."""
import base64
import hashlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import zlib
from datetime import datetime, timedelta, timezone

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import REGION, Server, aws_cli, error_of, unique

MiB = 1024 * 1024


def s3_client(server, **kw):
    return server.client("s3", **kw)


@pytest.fixture(scope="module")
def s3(server):
    return s3_client(server)


@pytest.fixture
def bucket(s3):
    name = unique("b")
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=o["Key"])
    for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
    s3.delete_bucket(Bucket=name)


def md5(b):
    return hashlib.md5(b).hexdigest()


def raw(server, method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


# ------------------------------------------------------------------ buckets


def test_bucket_lifecycle(s3):
    name = unique("b")
    s3.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    # Creating it again in us-east-1 succeeds, as AWS's legacy behaviour there.
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert error_of(e)[::2] == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert error_of(e) == ("NoSuchBucket", "The specified bucket does not exist", 404)
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert error_of(e)[::2] == ("404", 404)


def test_bucket_in_another_region(server):
    s3 = s3_client(server, region_name="eu-west-1")
    name = unique("b")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
    with pytest.raises(s3.exceptions.BucketAlreadyOwnedByYou) as e:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert error_of(e)[::2] == ("BucketAlreadyOwnedByYou", 409)
    s3.delete_bucket(Bucket=name)


def test_invalid_bucket_names(s3):
    # boto3 refuses names with characters outside its pattern itself.
    for bad in ["ab", "-dash-start", "192.168.1.1", "a" * 64]:
        with pytest.raises(s3.exceptions.ClientError) as e:
            s3.create_bucket(Bucket=bad)
        assert error_of(e) == ("InvalidBucketName", "The specified bucket is not valid.", 400), bad


def test_location_constraint_us_east_1_is_invalid(s3):
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.create_bucket(Bucket=unique("b"), CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert error_of(e)[::2] == ("InvalidLocationConstraint", 400)


# ------------------------------------------------------------------ objects


def test_put_get_head_round_trip(s3, bucket):
    body = os.urandom(100_000)
    put = s3.put_object(
        Bucket=bucket, Key="dir/obj.bin", Body=body, ContentType="application/x-test",
        Metadata={"color": "blue", "Mixed-Case": "Value"}, CacheControl="max-age=60",
        ContentDisposition="attachment",
    )
    assert put["ETag"] == f'"{md5(body)}"'
    got = s3.get_object(Bucket=bucket, Key="dir/obj.bin")
    assert got["Body"].read() == body
    assert got["ETag"] == f'"{md5(body)}"'
    assert got["ContentType"] == "application/x-test"
    assert got["ContentLength"] == len(body)
    assert got["Metadata"] == {"color": "blue", "mixed-case": "Value"}
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentDisposition"] == "attachment"
    assert abs(got["LastModified"] - datetime.now(timezone.utc)) < timedelta(minutes=1)
    head = s3.head_object(Bucket=bucket, Key="dir/obj.bin")
    assert (head["ContentLength"], head["ETag"], head["Metadata"]) == (len(body), put["ETag"], got["Metadata"])
    assert head["LastModified"] == got["LastModified"]


def test_default_content_type_and_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert (got["Body"].read(), got["ContentType"], got["ETag"]) == (b"", "binary/octet-stream", f'"{md5(b"")}"')


def test_large_object_streams_both_ways(s3, bucket):
    body = os.urandom(12 * MiB + 17)
    s3.put_object(Bucket=bucket, Key="big", Body=body)
    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["ContentLength"] == len(body)
    assert hashlib.md5(got["Body"].read()).hexdigest() == md5(body)


def test_keys_with_odd_characters(s3, bucket):
    keys = ["a b/c+d", "ü/ñ.txt", "x?y=z&w", "100%", "trailing/", "//double"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for k in keys:
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode())


def test_missing_objects_and_buckets(s3, bucket):
    with pytest.raises(s3.exceptions.NoSuchKey) as e:
        s3.get_object(Bucket=bucket, Key="nope")
    assert error_of(e) == ("NoSuchKey", "The specified key does not exist.", 404)
    assert e.value.response["Error"]["Key"] == "nope"
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.head_object(Bucket=bucket, Key="nope")
    assert error_of(e)[::2] == ("404", 404)
    with pytest.raises(s3.exceptions.NoSuchBucket) as e:
        s3.put_object(Bucket=unique("missing"), Key="k", Body=b"x")
    assert error_of(e)[::2] == ("NoSuchBucket", 404)
    # Deleting a key that is not there succeeds, as on AWS.
    assert s3.delete_object(Bucket=bucket, Key="nope")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_ranges(s3, bucket):
    body = bytes(range(256)) * 4
    s3.put_object(Bucket=bucket, Key="r", Body=body)

    def get(r):
        g = s3.get_object(Bucket=bucket, Key="r", Range=r)
        return g["ResponseMetadata"]["HTTPStatusCode"], g.get("ContentRange"), g["Body"].read()

    assert get("bytes=0-9") == (206, "bytes 0-9/1024", body[:10])
    assert get("bytes=1000-") == (206, "bytes 1000-1023/1024", body[1000:])
    assert get("bytes=-24") == (206, "bytes 1000-1023/1024", body[-24:])
    assert get("bytes=1020-5000") == (206, "bytes 1020-1023/1024", body[1020:])
    assert get("bytes=10-5") == (200, None, body)  # invalid: ignored
    with pytest.raises(s3.exceptions.ClientError) as e:
        get("bytes=1024-")
    assert error_of(e) == ("InvalidRange", "The requested range is not satisfiable", 416)
    assert e.value.response["Error"]["ActualObjectSize"] == "1024"


def test_conditional_get(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"v1")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"v1"
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert error_of(e)[::2] == ("PreconditionFailed", 412)
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=past)["Body"].read() == b"v1"
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert error_of(e)[::2] == ("PreconditionFailed", 412)


def test_conditional_put_creates_only_once(s3, bucket):
    s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert error_of(e) == ("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412)
    assert e.value.response["Error"]["Condition"] == "If-None-Match"
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"


def test_content_md5(s3, bucket):
    good = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    s3.put_object(Bucket=bucket, Key="m", Body=b"data", ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m", Body=b"data2", ContentMD5=bad)
    assert error_of(e) == ("BadDigest", "The Content-MD5 you specified did not match what we received.", 400)
    assert s3.get_object(Bucket=bucket, Key="m")["Body"].read() == b"data"


def test_delete_objects(s3, bucket):
    for k in ["a", "b", "c"]:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "zz"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["a", "b", "zz"]
    assert "Errors" not in r
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    assert "Deleted" not in r
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_copy_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", ContentType="text/plain", Metadata={"a": "1"})
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == f'"{md5(b"copy me")}"'
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (b"copy me", "text/plain", {"a": "1"})
    s3.copy_object(Bucket=bucket, Key="dst2", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                   ContentType="application/json", Metadata={"b": "2"})
    got = s3.get_object(Bucket=bucket, Key="dst2")
    assert (got["ContentType"], got["Metadata"]) == ("application/json", {"b": "2"})
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert error_of(e)[::2] == ("InvalidRequest", 400)
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "missing"})
    assert error_of(e)[::2] == ("NoSuchKey", 404)


# ------------------------------------------------------------------ listings


def test_list_objects_v2_prefix_delimiter_pages(s3, bucket):
    keys = ["a/1", "a/2", "a/b/3", "b/1", "c", "d"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["c", "d"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "b/"]
    assert (r["KeyCount"], r["IsTruncated"]) == (4, False)
    r = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/b/"]
    r = s3.list_objects_v2(Bucket=bucket, StartAfter="a/b/3")
    assert [o["Key"] for o in r["Contents"]] == ["b/1", "c", "d"]
    assert r["StartAfter"] == "a/b/3"
    o = r["Contents"][0]
    assert (o["Size"], o["ETag"], o["StorageClass"]) == (1, f'"{md5(b"x")}"', "STANDARD")

    # Pages of two with a delimiter: a common prefix counts once.
    seen, pages, token = [], 0, None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=bucket, Delimiter="/", MaxKeys=2, **kw)
        pages += 1
        assert r["KeyCount"] == len(r.get("Contents", [])) + len(r.get("CommonPrefixes", []))
        seen += [p["Prefix"] for p in r.get("CommonPrefixes", [])] + [o["Key"] for o in r.get("Contents", [])]
        if not r["IsTruncated"]:
            assert "NextContinuationToken" not in r
            break
        token = r["NextContinuationToken"]
    assert (sorted(seen), pages) == (["a/", "b/", "c", "d"], 2)
    # The paginator walks every key.
    listed = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 1}) for o in p.get("Contents", [])]
    assert listed == keys
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="not-a-token!")
    assert error_of(e)[::2] == ("InvalidArgument", 400)
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.list_objects_v2(Bucket=unique("missing"))


def test_list_objects_v1(s3, bucket):
    for k in ["a/1", "a/2", "b", "c"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    r = s3.list_objects(Bucket=bucket, MaxKeys=2, Delimiter="/")
    assert ([p["Prefix"] for p in r["CommonPrefixes"]], [o["Key"] for o in r["Contents"]], r["IsTruncated"]) == (["a/"], ["b"], True)
    assert r["NextMarker"] == "b"
    r = s3.list_objects(Bucket=bucket, Marker="b")
    assert [o["Key"] for o in r["Contents"]] == ["c"]
    assert r["IsTruncated"] is False


# ------------------------------------------------------------------ multipart


def test_multipart_upload(s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(5 * MiB)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="video/mp4", Metadata={"k": "v"})
    uid = up["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    etags = []
    for i, p in enumerate(parts, 1):
        etags.append(s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=i, Body=p)["ETag"])
    assert etags == [f'"{md5(p)}"' for p in parts]
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [(i, e, 5 * MiB) for i, e in enumerate(etags, 1)]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": i, "ETag": e} for i, e in enumerate(etags, 1)]},
    )
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    assert done["ETag"] == f'"{expected}"'
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert (got["ETag"], got["ContentType"], got["Metadata"], got["ContentLength"]) == (f'"{expected}"', "video/mp4", {"k": "v"}, 15 * MiB)
    assert got["Body"].read() == b"".join(parts)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(s3.exceptions.NoSuchUpload) as e:
        s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert error_of(e)[::2] == ("NoSuchUpload", 404)


def test_multipart_part_rules(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="rules")["UploadId"]
    small = s3.upload_part(Bucket=bucket, Key="rules", UploadId=uid, PartNumber=1, Body=b"tiny")["ETag"]
    last = s3.upload_part(Bucket=bucket, Key="rules", UploadId=uid, PartNumber=2, Body=b"end")["ETag"]

    def complete(parts):
        with pytest.raises(s3.exceptions.ClientError) as e:
            s3.complete_multipart_upload(Bucket=bucket, Key="rules", UploadId=uid, MultipartUpload={"Parts": parts})
        return error_of(e)

    assert complete([{"PartNumber": 1, "ETag": small}, {"PartNumber": 2, "ETag": last}])[::2] == ("EntityTooSmall", 400)
    assert complete([{"PartNumber": 2, "ETag": last}, {"PartNumber": 1, "ETag": small}])[::2] == ("InvalidPartOrder", 400)
    assert complete([{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}])[::2] == ("InvalidPart", 400)
    assert complete([{"PartNumber": 3, "ETag": small}])[::2] == ("InvalidPart", 400)
    # A single small part is a valid (last) part.
    s3.complete_multipart_upload(Bucket=bucket, Key="rules", UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": last}]})
    assert s3.get_object(Bucket=bucket, Key="rules")["Body"].read() == b"end"


def test_upload_part_copy(s3, bucket):
    src = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    first = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=1,
                                CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    assert first["CopyPartResult"]["ETag"] == f'"{md5(src[:5 * MiB])}"'
    second = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=2,
                                 CopySource=f"{bucket}/src", CopySourceRange=f"bytes={5 * MiB}-{6 * MiB - 1}")
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=3,
                            CopySource=f"{bucket}/src", CopySourceRange=f"bytes=0-{6 * MiB}")
    assert error_of(e)[::2] == ("InvalidArgument", 400)
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]},
    ]})
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == src


def test_errors_are_counted_in_metrics(server, s3, bucket):
    import urllib.request
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="not-there")
    s3.put_object(Bucket=bucket, Key="there", Body=b"x")
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=5) as r:
        text = r.read().decode()
    assert 'riffle_requests_total{operation="GetObject",outcome="NoSuchKey"}' in text
    assert 'riffle_requests_total{operation="PutObject",outcome="ok"}' in text
    assert "riffle_s3_buckets " in text and "riffle_s3_objects " in text


def test_multipart_abort(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="ab")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="ab", UploadId=uid, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=uid)
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.upload_part(Bucket=bucket, Key="ab", UploadId=uid, PartNumber=2, Body=b"y")
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=uid)
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="ab")
    assert error_of(e)[0] == "NoSuchKey"


# ------------------------------------------------------------------ addressing


@pytest.fixture
def localhost_subdomains(monkeypatch):
    """`*.localhost` resolves to loopback in browsers and systemd-resolved,
    not in this machine's resolver: resolve it in-process."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *a, **kw):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_virtual_host_addressing(server, localhost_subdomains):
    s3 = boto3.client(
        "s3", endpoint_url=f"http://s3.localhost:{server.port}", region_name=REGION,
        aws_access_key_id="AKIDTEST", aws_secret_access_key="secret",
        config=botocore.config.Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 0}),
    )
    name = unique("vh")
    s3.create_bucket(Bucket=name)
    put = s3.put_object(Bucket=name, Key="dir/k.txt", Body=b"virtual")
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object(Bucket=name, Key="dir/k.txt")["Body"].read() == b"virtual"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == ["dir/k.txt"]
    # The same object by path, on the plain endpoint.
    assert s3_client(server).get_object(Bucket=name, Key="dir/k.txt")["Body"].read() == b"virtual"
    s3.delete_object(Bucket=name, Key="dir/k.txt")
    s3.delete_bucket(Bucket=name)


def test_unsigned_virtual_host_request(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="pub", Body=b"public")
    status, headers, body = raw(server, "GET", "/pub", headers={"Host": f"{bucket}.s3.localhost:{server.port}"})
    assert (status, body, headers["etag"]) == (200, b"public", f'"{md5(b"public")}"')
    status, _, body = raw(server, "GET", "/nope", headers={"Host": f"{bucket}.s3.localhost"})
    assert status == 404 and b"<Code>NoSuchKey</Code>" in body


def test_unsigned_get_root_is_still_kinesis(server):
    # Only signed or virtual-host requests are S3's: a bare GET / keeps
    # Kinesis's answer.
    status, _, body = raw(server, "GET", "/")
    assert status == 403 and b"AccessDeniedException" in body


# ------------------------------------------------------------------ bodies and signatures


def chunked(pieces, trailer=None):
    out = b""
    for p in pieces:
        out += f"{len(p):x}\r\n".encode() + p + b"\r\n"
    out += b"0\r\n"
    if trailer:
        out += f"{trailer[0]}:{trailer[1]}\r\n".encode()
    return out + b"\r\n"


class Streaming(S3SigV4Auth):
    """SigV4 for S3 with a `STREAMING-*` payload marker, as the SDKs sign
    aws-chunked uploads (botocore signs its own hash otherwise)."""

    def __init__(self, marker, credentials=("AKIDTEST", "secret")):
        super().__init__(Credentials(*credentials), "s3", REGION)
        self.marker = marker

    def payload(self, request):
        return self.marker


def test_unsigned_payload_trailer_with_crc32(server, s3, bucket):
    data = os.urandom(70_000)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    body = chunked([data[:65536], data[65536:]], ("x-amz-checksum-crc32", crc))

    def put(key, body):
        req = AWSRequest(method="PUT", url=f"{server.endpoint}/{bucket}/{key}", data=body, headers={
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32",
        })
        Streaming("STREAMING-UNSIGNED-PAYLOAD-TRAILER").add_auth(req)
        return raw(server, "PUT", f"/{bucket}/{key}", body, dict(req.headers.items()))

    status, headers, _ = put("trailer", body)
    assert (status, headers["etag"]) == (200, f'"{md5(data)}"')
    assert s3.get_object(Bucket=bucket, Key="trailer")["Body"].read() == data
    bad = chunked([data], ("x-amz-checksum-crc32", "AAAAAA=="))
    status, _, resp = put("bad", bad)
    assert status == 400 and b"<Code>BadDigest</Code>" in resp


@pytest.fixture(scope="module")
def auth_server():
    s = Server("--credential-pairs", "AKIDTEST:secret").start()
    yield s
    s.stop()
    s.cleanup()


def signed_chunks(data, chunk, seed, amz_date, scope, key):
    """aws-chunked with STREAMING-AWS4-HMAC-SHA256-PAYLOAD chunk signatures."""
    import hmac
    empty = hashlib.sha256(b"").hexdigest()
    out, prev = b"", seed
    for p in [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, empty, hashlib.sha256(p).hexdigest()])
        prev = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out += f"{len(p):x};chunk-signature={prev}\r\n".encode() + p + b"\r\n"
    return out


def test_signatures_checked_with_credentials(auth_server):
    good = s3_client(auth_server)
    name = unique("auth")
    good.create_bucket(Bucket=name)
    good.put_object(Bucket=name, Key="k", Body=b"signed")
    assert good.get_object(Bucket=name, Key="k")["Body"].read() == b"signed"
    with pytest.raises(good.exceptions.ClientError) as e:
        s3_client(auth_server, aws_secret_access_key="wrong").get_object(Bucket=name, Key="k")
    assert error_of(e)[::2] == ("SignatureDoesNotMatch", 403)
    with pytest.raises(good.exceptions.ClientError) as e:
        s3_client(auth_server, aws_access_key_id="AKIDUNKNOWN").list_buckets()
    assert error_of(e) == ("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", 403)
    # A presigned URL (SigV4; boto3 presigns SigV2 unless told) works
    # without headers.
    url = s3_client(auth_server, signature_version="s3v4").generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k"}, ExpiresIn=60)
    conn = http.client.HTTPConnection("127.0.0.1", auth_server.port, timeout=10)
    conn.request("GET", url.split(str(auth_server.port), 1)[1])
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"signed")
    # A body that differs from the signed hash is refused.
    req = AWSRequest(method="PUT", url=f"{auth_server.endpoint}/{name}/h", data=b"original")
    S3SigV4Auth(Credentials("AKIDTEST", "secret"), "s3", REGION).add_auth(req)
    headers = dict(req.headers.items())
    status, _, body = raw(auth_server, "PUT", f"/{name}/h", b"tampered", headers)
    assert status == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in body


def fetch(server, url):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", url.split(str(server.port), 1)[1])
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_signature_version_2(server, auth_server):
    """boto3 presigns S3 URLs with SigV2 unless told otherwise; older tools
    sign with it too."""
    for srv in [server, auth_server]:
        name = unique("v2")
        s3_client(srv).create_bucket(Bucket=name)
        v2 = s3_client(srv, signature_version="s3")
        v2.put_object(Bucket=name, Key="dir/a b", Body=b"sigv2", Metadata={"m": "1"})
        assert v2.get_object(Bucket=name, Key="dir/a b")["Body"].read() == b"sigv2"
        url = s3_client(srv).generate_presigned_url("get_object", Params={"Bucket": name, "Key": "dir/a b"}, ExpiresIn=60)
        assert "AWSAccessKeyId=" in url
        assert fetch(srv, url) == (200, b"sigv2")
    with pytest.raises(ClientError) as e:
        s3_client(auth_server, signature_version="s3", aws_secret_access_key="wrong").get_object(Bucket=name, Key="dir/a b")
    assert error_of(e)[::2] == ("SignatureDoesNotMatch", 403)
    expired = s3_client(auth_server).generate_presigned_url("get_object", Params={"Bucket": name, "Key": "dir/a b"}, ExpiresIn=-10)
    status, body = fetch(auth_server, expired)
    assert status == 403 and b"<Message>Request has expired</Message>" in body


def test_signed_chunked_upload(auth_server):
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD as the SDKs send it: every chunk
    signed, chained on the request's signature."""
    import hmac
    good = s3_client(auth_server)
    name = unique("chunk")
    good.create_bucket(Bucket=name)
    data = os.urandom(200_000)

    def upload(tamper):
        req = AWSRequest(method="PUT", url=f"{auth_server.endpoint}/{name}/c", headers={
            "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
        })
        Streaming("STREAMING-AWS4-HMAC-SHA256-PAYLOAD").add_auth(req)
        headers = dict(req.headers.items())
        seed = headers["Authorization"].rsplit("Signature=", 1)[1]
        amz_date = headers["X-Amz-Date"]
        scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"

        def h(k, m):
            return hmac.new(k, m.encode(), hashlib.sha256).digest()
        key = h(h(h(h(b"AWS4secret", amz_date[:8]), REGION), "s3"), "aws4_request")
        body = signed_chunks(data, 65536, seed, amz_date, scope, key)
        if tamper:
            body = body[:200] + bytes([body[200] ^ 1]) + body[201:]
        headers["Content-Length"] = str(len(body))
        return raw(auth_server, "PUT", f"/{name}/c", body, headers)

    status, headers, _ = upload(False)
    assert (status, headers["etag"]) == (200, f'"{md5(data)}"')
    assert good.get_object(Bucket=name, Key="c")["Body"].read() == data
    status, _, body = upload(True)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    assert good.get_object(Bucket=name, Key="c")["Body"].read() == data


# ------------------------------------------------------------------ the AWS CLI


def cli(server, *args):
    """Runs an AWS CLI command against riffle; returns its standard output."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDTEST", AWS_SECRET_ACCESS_KEY="secret", AWS_DEFAULT_REGION=REGION, AWS_PAGER="")
    out = subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", server.endpoint, *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"aws {' '.join(args)} failed: {out.stderr}"
    return out.stdout


def test_aws_cli(server):
    name = unique("cli")
    assert cli(server, "s3", "mb", f"s3://{name}").strip() == f"make_bucket: {name}"
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "big.bin")
        data = os.urandom(20 * MiB)
        with open(src, "wb") as f:
            f.write(data)
        cli(server, "s3", "cp", src, f"s3://{name}/dir/big.bin")
        assert cli(server, "s3", "ls", f"s3://{name}/dir/").rstrip().endswith(f"{len(data)} big.bin")
        out = aws_cli(server.endpoint, "s3api", "list-objects-v2", "--bucket", name)
        [obj] = out["Contents"]
        assert (obj["Key"], obj["Size"]) == ("dir/big.bin", len(data))
        # The CLI uploads 20 MiB in 8 MiB parts: a multipart ETag.
        assert obj["ETag"].strip('"').endswith("-3")
        # A copy of more than 8 MiB is a multipart copy (UploadPartCopy).
        cli(server, "s3", "cp", f"s3://{name}/dir/big.bin", f"s3://{name}/dir/copy.bin")
        copy = s3_client(server).head_object(Bucket=name, Key="dir/copy.bin")
        assert (copy["ContentLength"], copy["ETag"].strip('"')[-2:]) == (len(data), "-3")
        cli(server, "s3", "rm", f"s3://{name}/dir/copy.bin")
        back = os.path.join(d, "back.bin")
        cli(server, "s3", "cp", f"s3://{name}/dir/big.bin", back)
        with open(back, "rb") as f:
            assert hashlib.md5(f.read()).hexdigest() == md5(data)
    assert cli(server, "s3", "rm", f"s3://{name}/dir/big.bin").strip() == f"delete: s3://{name}/dir/big.bin"
    assert "Contents" not in aws_cli(server.endpoint, "s3api", "list-objects-v2", "--bucket", name)
    cli(server, "s3", "rb", f"s3://{name}")


def test_aws_cli_ls_lists_buckets_and_objects(server):
    name = unique("cli")
    cli(server, "s3", "mb", f"s3://{name}")
    s3_client(server).put_object(Bucket=name, Key="x/y.txt", Body=b"12345")
    assert name in cli(server, "s3", "ls")
    assert "PRE x/" in cli(server, "s3", "ls", f"s3://{name}")
    assert cli(server, "s3", "ls", "--recursive", f"s3://{name}").rstrip().endswith("5 x/y.txt")
    cli(server, "s3", "rm", "--recursive", f"s3://{name}")
    cli(server, "s3", "rb", f"s3://{name}")


# ------------------------------------------------------------------ Firehose


def test_firehose_delivers_into_the_embedded_s3(server, s3, bucket):
    """Firehose's S3 destinations deliver to the embedded S3 in process; the
    objects are read back with the S3 API, AWS's key layout and all."""
    import re
    import time
    fh = server.client("firehose")
    name = unique("fh")
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration={
        "RoleARN": "arn:aws:iam::000000000000:role/firehose",
        "BucketARN": f"arn:aws:s3:::{bucket}",
        "Prefix": "events/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "CompressionFormat": "GZIP",
    })
    deadline = time.time() + 10
    while fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        assert time.time() < deadline
        time.sleep(0.05)
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"one\n"}, {"Data": b"two\n"}])
    deadline = time.time() + 15
    while not s3.list_objects_v2(Bucket=bucket, Prefix="events/").get("Contents"):
        assert time.time() < deadline, "nothing delivered"
        time.sleep(0.1)
    [obj] = s3.list_objects_v2(Bucket=bucket, Prefix="events/")["Contents"]
    assert re.fullmatch(rf"events/\d{{4}}/\d\d/\d\d/\d\d/{name}-1-\d{{4}}(-\d\d){{5}}-[0-9a-f-]{{36}}\.gz", obj["Key"]), obj["Key"]
    got = s3.get_object(Bucket=bucket, Key=obj["Key"])
    import gzip
    assert gzip.decompress(got["Body"].read()) == b"one\ntwo\n"
    fh.delete_delivery_stream(DeliveryStreamName=name)


# ------------------------------------------------------------------ durability


def test_acknowledged_put_survives_sigkill():
    server = Server().start()
    try:
        s3 = s3_client(server)
        name = unique("crash")
        s3.create_bucket(Bucket=name)
        bodies = {f"k{i}": os.urandom(100_000 + i) for i in range(5)}
        for k, b in bodies.items():
            s3.put_object(Bucket=name, Key=k, Body=b)
        uid = s3.create_multipart_upload(Bucket=name, Key="mp")["UploadId"]
        part = os.urandom(5 * MiB)
        etag = s3.upload_part(Bucket=name, Key="mp", UploadId=uid, PartNumber=1, Body=part)["ETag"]
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        server.log.close()
        server.proc = None
        server.start()
        s3 = s3_client(server)
        for k, b in bodies.items():
            assert s3.get_object(Bucket=name, Key=k)["Body"].read() == b
        # The upload in progress survives too, and completes.
        assert [p["ETag"] for p in s3.list_parts(Bucket=name, Key="mp", UploadId=uid)["Parts"]] == [etag]
        s3.complete_multipart_upload(Bucket=name, Key="mp", UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        assert s3.get_object(Bucket=name, Key="mp")["Body"].read() == part
        # Nothing is left in the staging directory, and no orphan data file.
        assert os.listdir(os.path.join(server.data_dir, "s3", "tmp")) == []
        assert len(os.listdir(os.path.join(server.data_dir, "s3", "objects"))) == len(bodies) + 1
    finally:
        server.stop()
        server.cleanup()
