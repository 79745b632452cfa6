"""AWS Secrets Manager with boto3 and the AWS CLI: secrets, versions and
their staging labels, idempotent tokens, scheduled and forced deletion with
restore, listing with filters, sorting and pages, tags, random passwords,
AWS's error types and messages, and secrets kept across a restart."""
import base64
import re
import string
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, Server, aws_cli, error_of, unique

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def srv():
    s = Server().start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture(scope="module")
def sm(srv):
    return srv.client("secretsmanager")


def arn_re(name):
    return re.compile(rf"^arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{re.escape(name)}-[A-Za-z0-9]{{6}}$")


def test_create_get_and_versions(sm):
    name = unique("db/creds")
    token = "a" * 32
    out = sm.create_secret(Name=name, SecretString='{"username": "u", "password": "p"}', Description="Main DB", ClientRequestToken=token)
    assert arn_re(name).match(out["ARN"]), out["ARN"]
    assert (out["Name"], out["VersionId"]) == (name, token)
    got = sm.get_secret_value(SecretId=name)
    assert {k: got[k] for k in ("ARN", "Name", "VersionId", "SecretString", "VersionStages")} == {
        "ARN": out["ARN"],
        "Name": name,
        "VersionId": token,
        "SecretString": '{"username": "u", "password": "p"}',
        "VersionStages": ["AWSCURRENT"],
    }
    assert "SecretBinary" not in got
    # Full ARN and partial ARN (without the random suffix) find it too.
    assert sm.get_secret_value(SecretId=out["ARN"])["VersionId"] == token
    assert sm.get_secret_value(SecretId=out["ARN"][:-7])["VersionId"] == token

    # A new value: AWSCURRENT moves, the old version becomes AWSPREVIOUS.
    put = sm.put_secret_value(SecretId=name, SecretString="second", ClientRequestToken="b" * 32)
    assert (put["VersionId"], put["VersionStages"]) == ("b" * 32, ["AWSCURRENT"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "second"
    prev = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert (prev["VersionId"], prev["SecretString"], prev["VersionStages"]) == (token, '{"username": "u", "password": "p"}', ["AWSPREVIOUS"])
    assert sm.get_secret_value(SecretId=name, VersionId=token)["VersionStages"] == ["AWSPREVIOUS"]

    # The same token and value again changes nothing; another value is refused.
    again = sm.put_secret_value(SecretId=name, SecretString="second", ClientRequestToken="b" * 32)
    assert again["VersionId"] == "b" * 32
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=name, SecretString="other", ClientRequestToken="b" * 32)
    assert error_of(e) == ("ResourceExistsException", "You can't modify an existing version, you can only create a new version.", 400)

    # A third version: the first one loses its labels (deprecated).
    sm.update_secret(SecretId=name, SecretString="third", ClientRequestToken="c" * 32)
    d = sm.describe_secret(SecretId=name)
    assert d["VersionIdsToStages"] == {"b" * 32: ["AWSPREVIOUS"], "c" * 32: ["AWSCURRENT"]}
    assert d["Description"] == "Main DB"
    assert d["RotationEnabled"] is False
    versions = sm.list_secret_version_ids(SecretId=name)
    assert [(v["VersionId"], v["VersionStages"]) for v in versions["Versions"]] == [("c" * 32, ["AWSCURRENT"]), ("b" * 32, ["AWSPREVIOUS"])]
    everything = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert [v["VersionId"] for v in everything] == ["c" * 32, "b" * 32, token]
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    assert error_of(e) == ("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: AWSPENDING", 400)
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name, VersionId="d" * 32)
    assert error_of(e) == ("ResourceNotFoundException", f"Secrets Manager can't find the specified secret value for VersionId: {'d' * 32}", 400)


def test_binary_secrets_and_custom_labels(sm):
    name = unique("bin")
    blob = bytes(range(256))
    sm.create_secret(Name=name, SecretBinary=blob)
    got = sm.get_secret_value(SecretId=name)
    assert got["SecretBinary"] == blob and "SecretString" not in got
    # A custom label leaves AWSCURRENT where it was.
    v = sm.put_secret_value(SecretId=name, SecretString="pending", VersionStages=["AWSPENDING"])
    assert v["VersionStages"] == ["AWSPENDING"]
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == blob
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")["SecretString"] == "pending"
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=unique("both"), SecretString="a", SecretBinary=b"b")
    assert error_of(e) == ("InvalidParameterException", "You can't specify both a binary secret value and a string secret value in the same secret.", 400)


def test_a_secret_without_a_value(sm):
    name = unique("empty")
    out = sm.create_secret(Name=name)
    assert "VersionId" not in out
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name)
    assert error_of(e) == ("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT", 400)
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=name)
    assert error_of(e) == ("InvalidRequestException", "You must provide either SecretString or SecretBinary.", 400)
    assert "VersionIdsToStages" not in sm.describe_secret(SecretId=name)


def test_errors(sm):
    name = unique("dup")
    sm.create_secret(Name=name, SecretString="x")
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=name, SecretString="y")
    assert error_of(e) == ("ResourceExistsException", f"The operation failed because the secret {name} already exists.", 400)
    for call in (
        lambda: sm.get_secret_value(SecretId="no-such-secret"),
        lambda: sm.describe_secret(SecretId="no-such-secret"),
        lambda: sm.delete_secret(SecretId=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:no-such-secret-AbCdEf"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("ResourceNotFoundException", "Secrets Manager can't find the specified secret.", 400)
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name="bad name!", SecretString="x")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name="x" * 513, SecretString="x")
    code, message, status = error_of(e)
    assert (code, status) == ("ValidationException", 400)
    assert "Member must have length less than or equal to 512" in message
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=unique("tags"), SecretString="x", Tags=[{"Key": "aws:x", "Value": "y"}])
    assert error_of(e)[0] == "InvalidParameterException"


def test_delete_restore_and_purge(srv, sm):
    name = unique("doomed")
    arn = sm.create_secret(Name=name, SecretString="bye")["ARN"]
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=3)
    assert error_of(e) == ("InvalidParameterException", "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).", 400)
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    assert error_of(e) == ("InvalidParameterException", "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.", 400)

    d = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert (d["ARN"], d["Name"]) == (arn, name)
    desc = sm.describe_secret(SecretId=name)
    assert round((d["DeletionDate"] - desc["DeletedDate"]).total_seconds()) == 7 * 86400
    marked = ("InvalidRequestException", "You tried to perform the operation on a secret that's currently marked deleted.", 400)
    for call in (lambda: sm.get_secret_value(SecretId=name), lambda: sm.put_secret_value(SecretId=name, SecretString="x"), lambda: sm.delete_secret(SecretId=name)):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == marked
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=name, SecretString="again")
    assert error_of(e)[0] == "InvalidRequestException"
    listed = lambda **kw: [s["Name"] for s in sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}], **kw)["SecretList"]]
    assert listed() == []
    assert listed(IncludePlannedDeletion=True) == [name]

    restored = sm.restore_secret(SecretId=name)
    assert (restored["ARN"], restored["Name"]) == (arn, name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "bye"
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)

    # Seven days after a new deletion, the secret is gone and its name free.
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    srv.advance_clock(7 * DAY_MS - 1000)
    assert sm.describe_secret(SecretId=name)["Name"] == name
    srv.advance_clock(2000)
    with pytest.raises(ClientError) as e:
        sm.describe_secret(SecretId=name)
    assert error_of(e)[0] == "ResourceNotFoundException"
    assert sm.create_secret(Name=name, SecretString="reborn")["ARN"] != arn

    # Forced: gone at once.
    forced = unique("forced")
    sm.create_secret(Name=forced, SecretString="x")
    sm.delete_secret(SecretId=forced, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=forced)
    assert error_of(e)[0] == "ResourceNotFoundException"
    sm.create_secret(Name=forced, SecretString="y")


def test_list_filters_sorting_and_pages(sm):
    prefix = unique("list")
    names = [f"{prefix}/{i}" for i in range(5)]
    for i, n in enumerate(names):
        sm.create_secret(Name=n, SecretString=str(i), Description=f"Item {i}", Tags=[{"Key": "group", "Value": "odd" if i % 2 else "even"}])
    mine = [{"Key": "name", "Values": [prefix]}]
    pages, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        out = sm.list_secrets(Filters=mine, MaxResults=2, **kw)
        pages.append([s["Name"] for s in out["SecretList"]])
        token = out.get("NextToken")
        if not token:
            break
    assert pages == [names[0:2], names[2:4], names[4:]]
    assert [s["Name"] for s in sm.list_secrets(Filters=mine, SortOrder="desc")["SecretList"]] == names[::-1]
    odd = sm.list_secrets(Filters=mine + [{"Key": "tag-value", "Values": ["odd"]}])["SecretList"]
    assert [s["Name"] for s in odd] == [names[1], names[3]]
    assert odd[0]["Tags"] == [{"Key": "group", "Value": "odd"}]
    assert list(odd[0]["SecretVersionsToStages"].values()) == [["AWSCURRENT"]]
    not_odd = sm.list_secrets(Filters=mine + [{"Key": "tag-value", "Values": ["!odd"]}])["SecretList"]
    assert [s["Name"] for s in not_odd] == [names[0], names[2], names[4]]
    described = sm.list_secrets(Filters=mine + [{"Key": "description", "Values": ["item 3"]}])["SecretList"]
    assert [s["Name"] for s in described] == [names[3]]
    with pytest.raises(ClientError) as e:
        sm.list_secrets(NextToken="not-a-token")
    assert error_of(e) == ("InvalidNextTokenException", "The NextToken value is invalid.", 400)
    # BatchGetSecretValue by ids (one missing) and by filters.
    batch = sm.batch_get_secret_value(SecretIdList=[names[0], "no-such-secret"])
    assert [(v["Name"], v["SecretString"]) for v in batch["SecretValues"]] == [(names[0], "0")]
    assert [(e["SecretId"], e["ErrorCode"]) for e in batch["Errors"]] == [("no-such-secret", "ResourceNotFoundException")]
    batch = sm.batch_get_secret_value(Filters=mine, MaxResults=3)
    assert [v["SecretString"] for v in batch["SecretValues"]] == ["0", "1", "2"]
    assert "NextToken" in batch


def test_tags(sm):
    name = unique("tagged")
    sm.create_secret(Name=name, SecretString="x", Tags=[{"Key": "a", "Value": "1"}])
    sm.tag_resource(SecretId=name, Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}]
    sm.untag_resource(SecretId=name, TagKeys=["a"])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as e:
        sm.tag_resource(SecretId=name, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert error_of(e)[0] == "InvalidParameterException"
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "b", "Value": "2"}]


def test_random_password(sm):
    p = sm.get_random_password()["RandomPassword"]
    assert len(p) == 32
    for chars in (string.ascii_lowercase, string.ascii_uppercase, string.digits, string.punctuation):
        assert any(c in chars for c in p), p
    p = sm.get_random_password(PasswordLength=20, ExcludePunctuation=True, ExcludeCharacters="abcABC012", IncludeSpace=True)["RandomPassword"]
    assert len(p) == 20 and " " in p
    assert not set(p) & set("abcABC012" + string.punctuation)
    with pytest.raises(ClientError) as e:
        sm.get_random_password(ExcludeLowercase=True, ExcludeUppercase=True, ExcludeNumbers=True, ExcludePunctuation=True)
    assert error_of(e)[0] == "InvalidParameterException"


def test_aws_cli_and_restart(srv, sm):
    name = unique("cli")
    made = aws_cli(srv.endpoint, "secretsmanager", "create-secret", "--name", name, "--secret-string", '{"api_key": "k-1"}')
    assert made["Name"] == name
    got = aws_cli(srv.endpoint, "secretsmanager", "get-secret-value", "--secret-id", name)
    assert got["SecretString"] == '{"api_key": "k-1"}'
    before = sm.describe_secret(SecretId=name)
    srv.stop()
    srv.restart()
    after = sm.describe_secret(SecretId=name)
    for k in ("ARN", "Name", "VersionIdsToStages", "CreatedDate", "LastChangedDate"):
        assert after[k] == before[k], k
    assert sm.get_secret_value(SecretId=name)["SecretString"] == '{"api_key": "k-1"}'
    assert sm.get_resource_policy(SecretId=name)["ARN"] == before["ARN"]
