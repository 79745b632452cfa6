"""Raw HTTP: routing, framing and serialization errors, request ids, and
SigV4 authentication."""
import base64
import hashlib
import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import botocore
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import REGION, error_of, wait_active

JSON_CT = "application/x-amz-json-1.1"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ACCESS_DENIED = b"<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n"


def raw(endpoint, body=b"", headers=None, method="POST", path="/"):
    """One HTTP request; returns (status, headers as a lower-cased dict, body bytes)."""
    u = urllib.parse.urlparse(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def call(endpoint, target, body, content_type=JSON_CT, sign=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": content_type}
    if target is not None:
        headers["X-Amz-Target"] = target
    if sign:
        req = AWSRequest(method="POST", url=endpoint + "/", data=data, headers=headers)
        SigV4Auth(Credentials(*sign), "kinesis", REGION).add_auth(req)
        headers = dict(req.headers.items())
    return raw(endpoint, data, headers)


def op(name):
    return f"Kinesis_20131202.{name}"


def assert_json_error(resp, status, payload):
    code, headers, data = resp
    assert (code, json.loads(data)) == (status, payload)
    assert headers["content-type"] == JSON_CT
    assert UUID.match(headers["x-amzn-requestid"])


# --------------------------------------------------------------------- routing


@pytest.mark.parametrize("target", [None, "", "Kinesis_20131202.NoSuchOperation", "Kinesis_20131201.ListStreams", "ListStreams", "Kinesis_20131202."])
def test_unknown_operation(server, target):
    assert_json_error(call(server.endpoint, target, {}), 400, {"__type": "UnknownOperationException"})


def test_empty_body(server):
    assert_json_error(call(server.endpoint, op("ListStreams"), b""), 400, {"__type": "SerializationException"})
    # An unknown operation wins over the empty body.
    assert_json_error(call(server.endpoint, op("Nope"), b""), 400, {"__type": "UnknownOperationException"})


@pytest.mark.parametrize("payload", [b"hello", b"true", b"null", b"[]", b"23", b'"str"', b"{"])
def test_body_not_a_json_object(server, payload):
    assert_json_error(call(server.endpoint, op("ListStreams"), payload), 400, {"__type": "SerializationException"})


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_non_post_is_access_denied_xml(server, method):
    status, headers, data = raw(server.endpoint, method=method, headers={"X-Amz-Target": op("ListStreams"), "Content-Type": JSON_CT})
    assert (status, data) == (403, ACCESS_DENIED)
    assert UUID.match(headers["x-amzn-requestid"])


def test_invalid_content_type(server):
    # docs/aws-behaviour.md §2.2 step 7: no usable target -> 403 AccessDenied XML; valid target -> 404.
    assert raw(server.endpoint, b"{}", {"Content-Type": "application/x-amz-json-1.0"})[::2] == (403, ACCESS_DENIED)
    status, _, data = raw(server.endpoint, b"{}", {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": op("ListStreams")})
    assert (status, data) == (404, b"<UnknownOperationException/>\n")
    status, _, data = raw(server.endpoint, b"{}", {"Content-Type": "text/plain", "X-Amz-Target": op("ListStreams")})
    assert (status, data) == (404, b"<UnknownOperationException/>\n")


def test_plain_application_json_is_unknown_operation(server):
    # docs/aws-behaviour.md §2.2 step 9: Content-Type application/json with a JSON object -> 404 Coral envelope.
    status, _, data = raw(server.endpoint, b"{}", {"Content-Type": "application/json", "X-Amz-Target": op("ListStreams")})
    assert (status, json.loads(data)) == (404, {"Output": {"__type": "com.amazon.coral.service#UnknownOperationException"}, "Version": "1.0"})


def test_body_over_16_mib_is_413(server):
    # AWS answers an oversized request with 413 and no body (docs/aws-behaviour.md §2.2; botocore reports code "413").
    status, headers, data = raw(server.endpoint, b"x" * (16 * 1024 * 1024 + 1), {"Content-Type": JSON_CT, "X-Amz-Target": op("PutRecord")})
    assert (status, data, headers["content-length"]) == (413, b"", "0")
    assert UUID.match(headers["x-amzn-requestid"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.client().put_record(StreamName="s", PartitionKey="k", Data=b"x" * (12 * 1024 * 1024 + 1))
    assert error_of(e) == ("413", "", 413)


def test_largest_valid_requests_fit_the_body_cap(server, stream):
    kinesis = server.client()
    name = stream(1)
    # 500 records of 5 MiB of data and keys in all; each key 256 'é's, which
    # botocore escapes to 1,536 JSON bytes: a body of about 7.5 MB.
    key = "é" * 256
    data = b"\xab" * ((5 * 1024 * 1024 - 500 * len(key.encode())) // 500)
    records = [{"Data": data, "PartitionKey": key, "ExplicitHashKey": str(2**128 - 1 - i)} for i in range(500)]
    out = kinesis.put_records(StreamName=name, Records=records)
    assert (out["FailedRecordCount"], len(out["Records"])) == (0, 500)
    # A 10 MiB record (stream maximum raised): about 14 MB of base64.
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    kinesis.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=10240)
    big = kinesis.put_record(StreamName=name, PartitionKey="k", Data=b"\xcd" * (10 * 1024 * 1024 - 1))
    assert big["ShardId"] == "shardId-000000000000"


# ------------------------------------------------------- SerializationException

NUMBER = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber"


@pytest.mark.parametrize(
    "operation, body, message",
    [
        ("DescribeStream", {"StreamName": 23}, f"{NUMBER} can not be converted to an String"),
        ("DescribeStream", {"StreamName": -2147483648}, f"{NUMBER} can not be converted to an String"),
        ("DescribeStream", {"StreamName": 34.56}, f"{NUMBER} can not be converted to an String"),
        ("DescribeStream", {"StreamName": True}, "class java.lang.Boolean can not be converted to an String"),
        ("DescribeStream", {"StreamName": []}, "Start of list found where not expected"),
        ("DescribeStream", {"StreamName": {}}, "Start of structure or map found where not expected."),
        ("DescribeStream", {"StreamName": "s", "Limit": "23"}, "class java.lang.String can not be converted to an Integer"),
        ("DescribeStream", {"StreamName": "s", "Limit": True}, "class java.lang.Boolean can not be converted to an Integer"),
        ("CreateStream", {"StreamName": "s", "ShardCount": "1"}, "class java.lang.String can not be converted to an Integer"),
        ("DeleteStream", {"StreamName": "s", "EnforceConsumerDeletion": "23"}, "'23' can not be converted to an Boolean"),
        ("DeleteStream", {"StreamName": "s", "EnforceConsumerDeletion": 23}, f"{NUMBER} can not be converted to an Boolean"),
        ("PutRecord", {"StreamName": "s", "PartitionKey": "k", "Data": True}, "class java.lang.Boolean can not be converted to a Blob"),
        ("PutRecord", {"StreamName": "s", "PartitionKey": "k", "Data": 12}, f"{NUMBER} can not be converted to a Blob"),
        ("PutRecord", {"StreamName": "s", "PartitionKey": "k", "Data": "23456"},
         "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5"),
        ("PutRecord", {"StreamName": "s", "PartitionKey": "k", "Data": "=+/="}, "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='"),
        ("PutRecord", {"StreamName": "s", "PartitionKey": "k", "Data": "+/+="},
         "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"),
        ("GetShardIterator", {"StreamName": "s", "ShardId": "0", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": "23"},
         "class java.lang.String can not be converted to milliseconds since epoch"),
        ("GetShardIterator", {"StreamName": "s", "ShardId": "0", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": True},
         "class java.lang.Boolean can not be converted to milliseconds since epoch"),
        ("AddTagsToStream", {"StreamName": "s", "Tags": "x"}, "Expected map or null"),
        ("AddTagsToStream", {"StreamName": "s", "Tags": []}, "Start of list found where not expected"),
        ("RemoveTagsFromStream", {"StreamName": "s", "TagKeys": "x"}, "Expected list or null"),
        ("RemoveTagsFromStream", {"StreamName": "s", "TagKeys": {}}, "Start of structure or map found where not expected."),
        ("PutRecords", {"StreamName": "s", "Records": [{"PartitionKey": 1, "Data": ""}]}, f"{NUMBER} can not be converted to an String"),
        ("ListShards", {"StreamName": "s", "ShardFilter": "x"}, "Expected null"),
        ("ListShards", {"StreamName": "s", "ShardFilter": []}, "Start of list found where not expected"),
    ],
)
def test_serialization_type_mismatch(server, operation, body, message):
    assert_json_error(call(server.endpoint, op(operation), body), 400, {"__type": "SerializationException", "Message": message})


def test_unknown_members_are_ignored_and_nulls_absent(server, stream):
    name = stream(1)
    status, _, data = call(server.endpoint, op("DescribeStreamSummary"), {"StreamName": name, "Bogus": [1, {"x": 2}], "StreamARN": None})
    assert (status, json.loads(data)["StreamDescriptionSummary"]["StreamName"]) == (200, name)


def test_success_without_output_is_empty_body(server):
    from conftest import unique

    status, headers, data = call(server.endpoint, op("CreateStream"), {"StreamName": unique(), "ShardCount": 1})
    assert (status, data, headers["content-type"]) == (200, b"", JSON_CT)


# ------------------------------------------------------------------ request id


def test_request_id_on_every_response(server):
    responses = [
        call(server.endpoint, op("ListStreams"), {}),  # success
        call(server.endpoint, op("DescribeStream"), {"StreamName": "nope"}),  # semantic error
        call(server.endpoint, op("DescribeStream"), {"StreamName": ""}),  # validation error
        call(server.endpoint, op("DescribeStream"), {"StreamName": 1}),  # serialization error
        call(server.endpoint, "Nope", {}),  # unknown operation
        raw(server.endpoint, method="GET"),  # 403 XML
        raw(server.endpoint, b"{}", {"Content-Type": "text/plain", "X-Amz-Target": op("ListStreams")}),  # 404 XML
    ]
    ids = [headers.get("x-amzn-requestid", "") for _, headers, _ in responses]
    assert [bool(UUID.match(i)) for i in ids] == [True] * len(responses), ids
    assert len(set(ids)) == len(ids)
    assert [s for s, _, _ in responses] == [200, 400, 400, 400, 400, 403, 404]
    # x-amz-id-2: 72 random bytes in base64, as AWS sends it.
    id2 = [base64.b64decode(headers.get("x-amz-id-2", "")) for _, headers, _ in responses]
    assert [len(b) for b in id2] == [72] * len(responses)


# ------------------------------------------------------------------------ CORS

EXPOSED = "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date"


def test_cors_exposes_aws_headers(server):
    # docs/aws-behaviour.md §2.2 step 3: browsers may read the request id, error type and date.
    def via_urllib(body, target, method="POST"):
        req = urllib.request.Request(server.endpoint + "/", data=body, method=method,
                                     headers={"Content-Type": JSON_CT, "X-Amz-Target": target, "Origin": "http://example.com"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers
        except urllib.error.HTTPError as e:
            return e.code, e.headers

    for body, target, status in [(b"{}", op("ListStreams"), 200), (b'{"StreamName":"nope"}', op("DescribeStream"), 400), (b"{}", "Nope", 400)]:
        got, headers = via_urllib(body, target)
        assert (got, headers["Access-Control-Allow-Origin"], headers["Access-Control-Expose-Headers"]) == (status, "*", EXPOSED)
        assert headers["Date"] and headers["x-amzn-RequestId"]
    # A preflight answers with what may be sent, not what may be read.
    status, headers, _ = raw(server.endpoint, method="OPTIONS", headers={
        "Origin": "http://example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-amz-target,content-type"})
    assert (status, headers["access-control-allow-origin"], headers["access-control-allow-headers"], headers["access-control-allow-methods"],
            headers["access-control-max-age"], "access-control-expose-headers" in headers) == (200, "*", "x-amz-target,content-type", "POST", "172800", False)


# ------------------------------------------------------------------------ auth


@pytest.fixture
def auth_server(start_server):
    return start_server("--credential-pairs", "AKIDTEST:secret")


def test_auth_right_secret_accepted(auth_server):
    c = auth_server.client()
    c.create_stream(StreamName="signed", ShardCount=1)
    assert c.list_streams()["StreamNames"] == ["signed"]
    status, _, data = call(auth_server.endpoint, op("ListStreams"), {}, sign=("AKIDTEST", "secret"))
    assert (status, json.loads(data)["StreamNames"]) == (200, ["signed"])


def test_auth_wrong_secret(auth_server):
    c = auth_server.client(aws_secret_access_key="not-the-secret")
    with pytest.raises(c.exceptions.ClientError) as e:
        c.list_streams()
    assert error_of(e) == (
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. "
        "Consult the service documentation for details.",
        400,
    )


def test_auth_unknown_access_key(auth_server):
    c = auth_server.client(aws_access_key_id="AKIDUNKNOWN")
    with pytest.raises(c.exceptions.ClientError) as e:
        c.list_streams()
    assert error_of(e) == ("UnrecognizedClientException", "The security token included in the request is invalid.", 400)


def test_auth_unsigned(auth_server):
    c = auth_server.client(signature_version=botocore.UNSIGNED)
    with pytest.raises(c.exceptions.ClientError) as e:
        c.list_streams()
    assert error_of(e) == ("MissingAuthenticationTokenException", "Missing Authentication Token", 400)
    assert_json_error(call(auth_server.endpoint, op("ListStreams"), {}), 400,
                      {"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"})


def test_auth_incomplete_signature(auth_server):
    status, _, data = raw(auth_server.endpoint, b"{}", {"Content-Type": JSON_CT, "X-Amz-Target": op("ListStreams"), "Authorization": "X"})
    assert (status, json.loads(data)) == (400, {
        "__type": "IncompleteSignatureException",
        "message": "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' "
        "or a 'Date' header. Authorization=X",
    })


def test_auth_checked_after_framing(auth_server):
    # docs/aws-behaviour.md §3: empty bodies and unknown operations are answered before auth.
    assert_json_error(call(auth_server.endpoint, op("ListStreams"), b""), 400, {"__type": "SerializationException"})
    assert_json_error(call(auth_server.endpoint, op("Nope"), {}), 400, {"__type": "UnknownOperationException"})


def test_auth_tampered_body_is_refused(auth_server):
    # A PutRecord signed by botocore with X-Amz-Content-SHA256 naming its body.
    c = auth_server.client()
    c.create_stream(StreamName="replayed", ShardCount=1)
    wait_active(c, "replayed")
    signed = json.dumps({"StreamName": "replayed", "Data": "aGk=", "PartitionKey": "k"}).encode()
    headers = {"Content-Type": JSON_CT, "X-Amz-Target": op("PutRecord"), "X-Amz-Content-SHA256": hashlib.sha256(signed).hexdigest()}
    req = AWSRequest(method="POST", url=auth_server.endpoint + "/", data=signed, headers=headers)
    SigV4Auth(Credentials("AKIDTEST", "secret"), "kinesis", REGION).add_auth(req)
    headers = dict(req.headers.items())
    mismatch = {
        "__type": "InvalidSignatureException",
        "message": "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key "
        "and signing method. Consult the service documentation for details.",
    }
    # The same signature and headers over another body: refused, nothing written.
    tampered = json.dumps({"StreamName": "replayed", "Data": "ZXZpbA==", "PartitionKey": "k"}).encode()
    assert_json_error(raw(auth_server.endpoint, tampered, headers), 400, mismatch)
    it = c.get_shard_iterator(StreamName="replayed", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert c.get_records(ShardIterator=it)["Records"] == []
    # The body it was signed for is accepted.
    status, _, data = raw(auth_server.endpoint, signed, headers)
    assert (status, sorted(json.loads(data))) == (200, ["EncryptionType", "SequenceNumber", "ShardId"])
    # UNSIGNED-PAYLOAD is S3's: for Kinesis the body is always hashed.
    headers = {"Content-Type": JSON_CT, "X-Amz-Target": op("ListStreams"), "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    req = AWSRequest(method="POST", url=auth_server.endpoint + "/", data=b"{}", headers=headers)
    SigV4Auth(Credentials("AKIDTEST", "secret"), "kinesis", REGION).add_auth(req)
    assert_json_error(raw(auth_server.endpoint, b"{}", dict(req.headers.items())), 400, mismatch)
