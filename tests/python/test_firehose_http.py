"""Firehose delivery to HTTP endpoints with boto3, against a Python
`http.server` receiver on a free loopback port: AWS's request contract
(headers, JSON body, base64 records, GZIP), retries with the same request
id, and records given up on written to the embedded S3 backup bucket."""
import base64
import gzip
import json
import re
import ssl
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ACCOUNT, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"


class Receiver:
    """Records every request; answers with `statuses` in turn (the last one
    from then on), echoing the request id."""

    def __init__(self, statuses=(200,), tls=None):
        self.statuses = list(statuses)
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers.items()), "raw": raw})
                n = len(receiver.requests)
                status = receiver.statuses[min(n, len(receiver.statuses)) - 1]
                rid = self.headers.get("X-Amz-Firehose-Request-Id", "")
                out = json.dumps({"requestId": rid, "timestamp": int(time.time() * 1000)}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{port}/ingest?src=riffle"
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            self.url = f"https://localhost:{port}/ingest?src=riffle"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self, n, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.requests) >= n:
                return self.requests
            time.sleep(0.05)
        raise AssertionError(f"expected {n} requests, got {len(self.requests)}")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def srv():
    from conftest import Server

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


@pytest.fixture
def receiver():
    made = []

    def make(statuses=(200,)):
        r = Receiver(statuses)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def header(req, name):
    return {k.lower(): v for k, v in req["headers"].items()}.get(name.lower())


def create(fh, url, bucket="backup", retry=0, access_key="my-access-key", **http):
    name = unique("http")
    endpoint = {"Url": url, "Name": "receiver"}
    if access_key is not None:
        endpoint["AccessKey"] = access_key
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        HttpEndpointDestinationConfiguration={
            "EndpointConfiguration": endpoint,
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "RetryOptions": {"DurationInSeconds": retry},
            "RoleARN": ROLE,
            "S3Configuration": {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", "Prefix": "bk/"},
            **http,
        },
    )
    deadline = time.time() + 5
    while fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        assert time.time() < deadline
        time.sleep(0.05)
    return name


def decoded(req):
    raw = req["raw"]
    if header(req, "Content-Encoding") == "gzip":
        raw = gzip.decompress(raw)
    return json.loads(raw)


RECORDS = [b"hello\n", bytes(range(256)), b"", b'{"k": "v"}']


@pytest.mark.parametrize("encoding", ["NONE", "GZIP"])
def test_delivery_contract(fh, receiver, encoding):
    r = receiver()
    name = create(
        fh,
        r.url,
        RequestConfiguration={
            "ContentEncoding": encoding,
            "CommonAttributes": [{"AttributeName": "env", "AttributeValue": "ci"}, {"AttributeName": "team", "AttributeValue": "data"}],
        },
    )
    desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    http = desc["Destinations"][0]["HttpEndpointDestinationDescription"]
    assert http["EndpointConfiguration"] == {"Url": r.url, "Name": "receiver"}  # no AccessKey
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in RECORDS])
    (req,) = r.wait(1)
    assert req["path"] == "/ingest?src=riffle"
    assert header(req, "Content-Type") == "application/json"
    assert header(req, "X-Amz-Firehose-Protocol-Version") == "1.0"
    assert header(req, "X-Amz-Firehose-Access-Key") == "my-access-key"
    assert json.loads(header(req, "X-Amz-Firehose-Common-Attributes")) == {"commonAttributes": {"env": "ci", "team": "data"}}
    assert header(req, "X-Amz-Firehose-Source-Arn") == desc["DeliveryStreamARN"]
    assert header(req, "User-Agent").startswith("Amazon Kinesis Data Firehose Agent/1.0")
    assert header(req, "Content-Encoding") == ("gzip" if encoding == "GZIP" else None)
    body = decoded(req)
    assert set(body) == {"requestId", "timestamp", "records"}
    assert body["requestId"] == header(req, "X-Amz-Firehose-Request-Id")
    assert abs(body["timestamp"] - time.time() * 1000) < 60_000
    assert [base64.b64decode(x["data"]) for x in body["records"]] == RECORDS
    assert all(set(x) == {"data"} for x in body["records"])
    time.sleep(0.3)
    assert len(r.requests) == 1


def test_retries_keep_the_request_id(fh, receiver):
    r = receiver([500, 200])
    name = create(fh, r.url, retry=60)
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"again"})
    first, second = r.wait(2)
    assert header(first, "X-Amz-Firehose-Request-Id") == header(second, "X-Amz-Firehose-Request-Id")
    assert decoded(first) == decoded(second)
    assert [base64.b64decode(x["data"]) for x in decoded(second)["records"]] == [b"again"]
    time.sleep(1.5)
    assert len(r.requests) == 2


def test_failed_records_go_to_the_s3_backup(fh, s3, receiver):
    bucket = unique("backup").lower()
    s3.create_bucket(Bucket=bucket)
    r = receiver([500])
    name = create(fh, r.url, bucket=bucket, retry=0)
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"lost-1"}, {"Data": b"\x00\x01"}])
    r.wait(1)
    deadline = time.time() + 15
    keys = []
    while time.time() < deadline:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        if keys:
            break
        time.sleep(0.1)
    assert len(keys) == 1, keys
    assert keys[0].startswith("bk/http-endpoint-failed/")
    assert keys[0].split("/")[-1].startswith(f"{name}-1-")
    text = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read().decode()
    docs = [json.loads(line) for line in text.splitlines()]
    assert [base64.b64decode(d["rawData"]) for d in docs] == [b"lost-1", b"\x00\x01"]
    for d in docs:
        assert d["errorCode"] == "HttpEndpoint.DestinationException"
        assert "500" in d["errorMessage"]
        assert d["attemptsMade"] >= 1
        assert d["attemptEndingTimestamp"] >= d["arrivalTimestamp"]
    # Given up on: the stream is healthy again and sends nothing more.
    n = len(r.requests)
    time.sleep(1.0)
    assert len(r.requests) == n
    desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert "FailureDescription" not in desc


def test_update_keeps_the_access_key(fh, receiver):
    a, b = receiver(), receiver()
    name = create(fh, a.url)
    desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    fh.update_destination(
        DeliveryStreamName=name,
        CurrentDeliveryStreamVersionId=desc["VersionId"],
        DestinationId=desc["Destinations"][0]["DestinationId"],
        HttpEndpointDestinationUpdate={"EndpointConfiguration": {"Url": b.url}},
    )
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"moved"})
    (req,) = b.wait(1)
    assert header(req, "X-Amz-Firehose-Access-Key") == "my-access-key"
    assert a.requests == []


def test_access_key_from_secrets_manager(srv, fh, s3, receiver):
    sm = srv.client("secretsmanager")
    arn = sm.create_secret(Name=unique("http/key"), SecretString=json.dumps({"api_key": "from-secret-1"}))["ARN"]
    r = receiver()
    secret_cfg = {"SecretARN": arn, "RoleARN": ROLE, "Enabled": True}
    name = create(fh, r.url, retry=0, access_key=None, SecretsManagerConfiguration=secret_cfg)
    desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert desc["Destinations"][0]["HttpEndpointDestinationDescription"]["SecretsManagerConfiguration"] == secret_cfg
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"one"})
    (first,) = r.wait(1)
    assert header(first, "X-Amz-Firehose-Access-Key") == "from-secret-1"
    # A new value takes effect at the next request, without UpdateDestination.
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"api_key": "from-secret-2"}))
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"two"})
    second = r.wait(2)[1]
    assert header(second, "X-Amz-Firehose-Access-Key") == "from-secret-2"
    assert [base64.b64decode(x["data"]) for x in decoded(second)["records"]] == [b"two"]


@pytest.mark.parametrize("value", [None, "not json", json.dumps({"apikey": "x"})])
def test_unreadable_secret_sends_nothing_and_backs_up(srv, fh, s3, receiver, value):
    sm = srv.client("secretsmanager")
    secret = unique("http/bad")
    if value is None:
        arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{secret}-AbCdEf"
        code = "SecretsManager.SecretNotFound"
    else:
        arn = sm.create_secret(Name=secret, SecretString=value)["ARN"]
        code = "SecretsManager.InvalidSecretFormat"
    bucket = unique("backup").lower()
    s3.create_bucket(Bucket=bucket)
    r = receiver()
    name = create(fh, r.url, bucket=bucket, retry=0, access_key=None, SecretsManagerConfiguration={"SecretARN": arn, "RoleARN": ROLE, "Enabled": True})
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"kept"})
    deadline = time.time() + 15
    keys = []
    while time.time() < deadline and not keys:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        time.sleep(0.1)
    assert len(keys) == 1 and keys[0].startswith("bk/http-endpoint-failed/"), keys
    (doc,) = [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read().decode().splitlines()]
    assert (doc["errorCode"], base64.b64decode(doc["rawData"])) == (code, b"kept")
    assert arn in doc["errorMessage"]
    assert r.requests == []


def make_ca_and_leaf(d):
    """A CA and a certificate for `localhost` it signed, made with openssl."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Riffle Test CA",
        "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", f"{d}/leaf.key", "-out", f"{d}/leaf.csr")
    run("x509", "-req", "-in", f"{d}/leaf.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", f"{d}/ext.cnf", "-out", f"{d}/leaf.pem")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{d}/leaf.pem", f"{d}/leaf.key")
    return d / "ca.pem", ctx


def test_https_endpoint_trusted_through_ssl_cert_file(tmp_path, start_server):
    """An https:// endpoint whose certificate a private CA signed: Riffle
    trusts it when SSL_CERT_FILE names the CA; when it does not, the TLS
    handshake fails and the records go to the S3 backup as
    HttpEndpoint.ConnectionFailed, never to the endpoint, and while it
    retries DescribeDeliveryStream's FailureDescription says why."""
    ca, tls = make_ca_and_leaf(tmp_path)
    r = Receiver(tls=tls)
    untrusting = Receiver(tls=tls)
    try:
        s = start_server("--status-delay-ms", "0", env={"SSL_CERT_FILE": str(ca)})
        fh = s.client("firehose")
        name = create(fh, r.url)
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in RECORDS])
        (req,) = r.wait(1)
        assert req["path"] == "/ingest?src=riffle"
        assert header(req, "Host") == r.url.split("/")[2]
        assert [base64.b64decode(x["data"]) for x in decoded(req)["records"]] == RECORDS

        other = start_server("--status-delay-ms", "0", env={"SSL_CERT_FILE": str(tmp_path / "none.pem")})
        fh2, s3 = other.client("firehose"), other.client("s3")
        s3.create_bucket(Bucket="backup")
        name2 = create(fh2, untrusting.url, retry=0)
        fh2.put_record(DeliveryStreamName=name2, Record={"Data": b"x"})
        deadline = time.time() + 15
        keys = []
        while not keys:
            assert time.time() < deadline
            time.sleep(0.1)
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="backup").get("Contents", [])]
        (doc,) = [json.loads(line) for line in s3.get_object(Bucket="backup", Key=keys[0])["Body"].read().splitlines()]
        assert doc["errorCode"] == "HttpEndpoint.ConnectionFailed"
        assert doc["errorMessage"].startswith(f"Could not connect to the endpoint {untrusting.url}: TLS handshake failed"), doc
        assert base64.b64decode(doc["rawData"]) == b"x"

        # While retrying, DescribeDeliveryStream says why.
        name3 = create(fh2, untrusting.url, retry=300)
        fh2.put_record(DeliveryStreamName=name3, Record={"Data": b"y"})
        deadline = time.time() + 15
        while True:
            d = fh2.describe_delivery_stream(DeliveryStreamName=name3)["DeliveryStreamDescription"]
            if "FailureDescription" in d:
                break
            assert time.time() < deadline, d
            time.sleep(0.1)
        f = d["FailureDescription"]
        assert f["Type"] == "UNKNOWN_ERROR"
        assert f["Details"].startswith(f"HttpEndpoint.ConnectionFailed: Could not connect to the endpoint {untrusting.url}: TLS handshake failed"), f
        assert f["Details"].endswith("attempt so far)") or f["Details"].endswith("attempts so far)"), f
        assert untrusting.requests == []
    finally:
        r.close()
        untrusting.close()


def test_lambda_processor_before_delivery_and_processing_failed_records_in_the_backup(start_server, receiver):
    from test_firehose_processing import Lambda, error_lines, function_arn, lambda_processor

    lam = Lambda()
    try:
        srv = start_server("--status-delay-ms", "0", "--lambda-endpoint", lam.url)
        fh, s3 = srv.client("firehose"), srv.client("s3")
        bucket = unique("backup").lower()
        s3.create_bucket(Bucket=bucket)
        r = receiver()
        arn = function_arn("upper")
        name = create(
            fh,
            r.url,
            bucket=bucket,
            ProcessingConfiguration={"Enabled": True, "Processors": [lambda_processor(arn)]},
        )
        fh.put_record_batch(
            DeliveryStreamName=name,
            Records=[{"Data": d} for d in [b"abc", b"drop me", b"fail me", b"xyz"]],
        )
        (req,) = r.wait(1)
        assert [base64.b64decode(x["data"]) for x in decoded(req)["records"]] == [b"ABC", b"XYZ"]
        (call,) = [c for c in lam.calls if arn in urllib.parse.unquote(c["path"])]
        assert [base64.b64decode(x["data"]) for x in call["event"]["records"]] == [b"abc", b"drop me", b"fail me", b"xyz"]
        deadline = time.time() + 15
        keys = []
        while not keys and time.time() < deadline:
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
            time.sleep(0.1)
        assert len(keys) == 1, keys
        assert re.fullmatch(rf"bk/processing-failed/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/{name}-1-[0-9-]{{19}}-[0-9a-f-]{{36}}", keys[0]), keys
        docs = error_lines(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read())
        assert [base64.b64decode(d["rawData"]) for d in docs] == [b"fail me"]
        assert docs[0]["errorCode"] == "Lambda.ProcessingFailedStatus"
        assert docs[0]["errorMessage"] == "ProcessingFailed status set for record"
        assert docs[0]["lambdaArn"] == arn
        time.sleep(0.5)
        assert len(r.requests) == 1
        assert fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"].get("FailureDescription") is None
    finally:
        lam.close()


def test_invalid_processor_parameters_are_refused(fh):
    with pytest.raises(fh.exceptions.InvalidArgumentException) as e:
        create(
            fh,
            "http://127.0.0.1:9/x",
            ProcessingConfiguration={
                "Enabled": True,
                "Processors": [{"Type": "Lambda", "Parameters": [
                    {"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:000000000000:function:f"},
                    {"ParameterName": "BufferSizeInMBs", "ParameterValue": "5"},
                ]}],
            },
        )
    assert e.value.response["Error"]["Message"] == "BufferSizeInMBs of the Lambda processor must be between 0.2 and 3, not 5."
