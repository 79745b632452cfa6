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
