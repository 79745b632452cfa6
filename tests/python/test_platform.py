"""The service platform: services other than Data Streams on the same port,
and the routing that tells them apart."""
import urllib.request

from conftest import ACCOUNT, aws_cli, error_of

import botocore.exceptions
import pytest


def test_sts_get_caller_identity_with_boto3(server):
    sts = server.client("sts")
    got = sts.get_caller_identity()
    del got["ResponseMetadata"]
    assert got == {"UserId": ACCOUNT, "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root"}


def test_sts_get_caller_identity_with_the_cli(server):
    got = aws_cli(server.endpoint, "sts", "get-caller-identity")
    assert got == {"UserId": ACCOUNT, "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root"}


def test_sts_as_a_query_string_get(server):
    with urllib.request.urlopen(server.endpoint + "/?Action=GetCallerIdentity&Version=2011-06-15", timeout=5) as r:
        assert r.status == 200
        assert r.headers["content-type"] == "text/xml"
        body = r.read().decode()
    assert f"<Account>{ACCOUNT}</Account>" in body
    assert body.startswith('<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">')


def test_sts_checks_signatures_when_credentials_are_configured(start_server):
    s = start_server("--credential-pairs", "AKIDGOOD:goodsecret")
    good = s.client("sts", aws_access_key_id="AKIDGOOD", aws_secret_access_key="goodsecret")
    assert good.get_caller_identity()["Account"] == ACCOUNT
    bad = s.client("sts", aws_access_key_id="AKIDGOOD", aws_secret_access_key="wrong")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.get_caller_identity()
    code, _, status = error_of(e)
    assert (code, status) == ("SignatureDoesNotMatch", 403)


def test_sts_requests_are_counted_in_metrics(server):
    server.client("sts").get_caller_identity()
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=5) as r:
        text = r.read().decode()
    assert 'riffle_requests_total{operation="GetCallerIdentity",outcome="ok"}' in text


def _hold_request_open(port):
    """A request whose body never finishes arriving: it stays in flight."""
    import socket

    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
        b"X-Amz-Target: Kinesis_20131202.ListStreams\r\nContent-Length: 100\r\n\r\n{"
    )
    return s


def test_requests_over_the_cap_are_throttled(start_server):
    import time

    s = start_server("--max-requests", "1", "--status-delay-ms", "0")
    k = s.client()
    k.create_stream(StreamName="capped", ShardCount=1)
    held = _hold_request_open(s.port)
    try:
        # Wait until the server is handling the held request.
        deadline = time.time() + 10
        while "riffle_requests_in_flight 1\n" not in urllib.request.urlopen(s.endpoint + "/metrics", timeout=5).read().decode():
            assert time.time() < deadline, "the held request never reached the server"
            time.sleep(0.02)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            k.list_streams()
        assert error_of(e) == ("LimitExceededException", f"Rate exceeded for account {ACCOUNT}.", 400)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            k.put_record(StreamName="capped", PartitionKey="k", Data=b"x")
        assert error_of(e) == ("ProvisionedThroughputExceededException", f"Rate exceeded for account {ACCOUNT}.", 400)
    finally:
        held.close()
    # The held request's slot comes back once the server sees it closed.
    refused = 1
    deadline = time.time() + 5
    while True:
        try:
            assert k.list_streams()["StreamNames"] == ["capped"]
            break
        except botocore.exceptions.ClientError:
            if time.time() > deadline:
                raise
            refused += 1
            time.sleep(0.05)
    with urllib.request.urlopen(s.endpoint + "/metrics", timeout=5) as r:
        text = r.read().decode()
    assert f'riffle_requests_total{{operation="ListStreams",outcome="LimitExceededException"}} {refused}\n' in text


def test_connections_over_the_cap_wait_for_a_free_slot(start_server):
    import socket

    s = start_server("--max-connections", "2")
    open_ = []
    for _ in range(2):
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"GET /_riffle/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert c.recv(4096).startswith(b"HTTP/1.1 200 OK")
        open_.append(c)
    with pytest.raises(OSError):
        urllib.request.urlopen(s.endpoint + "/_riffle/health", timeout=1).read()
    open_.pop().close()
    with urllib.request.urlopen(s.endpoint + "/_riffle/health", timeout=10) as r:
        assert r.read() == b"ok\n"
    for c in open_:
        c.close()
