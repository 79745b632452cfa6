"""Kinesis Video Streams control plane with boto3's `kinesisvideo` client
(REST-JSON): every stream operation, the StreamInfo AWS returns, version
checks, pagination, tags, the errors and their HTTP statuses, and
persistence across a restart. Channels and the other configurations are in
test_video_control.py."""
import re
import time

import botocore.exceptions
import pytest

from conftest import ACCOUNT, REGION, Server, aws_cli, unique

KMS_DEFAULT = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/kinesisvideo"
NOT_FOUND = ("ResourceNotFoundException", "The requested stream is not found or not active.", 404)


@pytest.fixture(scope="module")
def srv():
    s = Server("--status-delay-ms", "0").start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture(scope="module")
def kv(srv):
    return srv.client("kinesisvideo")


def err(call, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["Error"]["Code"], r["Error"]["Message"], r["ResponseMetadata"]["HTTPStatusCode"]


def arn_of(name, created):
    return f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:stream/{name}/{created}"


def info(kv, name):
    return kv.describe_stream(StreamName=name)["StreamInfo"]


def test_create_and_describe_whole_stream_info(kv):
    name = unique("cam")
    before = time.time()
    arn = kv.create_stream(StreamName=name, DeviceName="dev-1", MediaType="video/h264",
                           DataRetentionInHours=24, Tags={"team": "video"})["StreamARN"]
    m = re.fullmatch(rf"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:stream/{name}/(\d+)", arn)
    assert m, arn
    created_ms = int(m.group(1))
    assert before * 1000 - 1000 <= created_ms <= time.time() * 1000 + 1000
    i = info(kv, name)
    assert re.fullmatch(r"[A-Za-z0-9]{20}", i["Version"])
    assert abs(i.pop("CreationTime").timestamp() * 1000 - created_ms) < 1
    assert i == {
        "DeviceName": "dev-1",
        "StreamName": name,
        "StreamARN": arn,
        "MediaType": "video/h264",
        "KmsKeyId": KMS_DEFAULT,
        "Version": i["Version"],
        "Status": "ACTIVE",
        "DataRetentionInHours": 24,
    }
    # By ARN: the same description.
    by_arn = kv.describe_stream(StreamARN=arn)["StreamInfo"]
    by_arn.pop("CreationTime")
    assert by_arn == i


def test_defaults_and_own_kms_key(kv):
    name = unique("cam")
    arn = kv.create_stream(StreamName=name, KmsKeyId="my-key")["StreamARN"]
    i = info(kv, name)
    i.pop("CreationTime")
    assert i == {"StreamName": name, "StreamARN": arn, "KmsKeyId": "my-key", "Version": i["Version"],
                 "Status": "ACTIVE", "DataRetentionInHours": 0}


def test_create_errors(kv):
    name = unique("cam")
    kv.create_stream(StreamName=name)
    assert err(kv.create_stream, StreamName=name) == (
        "ResourceInUseException", f"The stream {name} already exists.", 400)
    assert err(kv.create_stream, StreamName="bad name") == (
        "InvalidArgumentException",
        "1 validation error detected: Value 'bad name' at 'streamName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+", 400)
    assert err(kv.create_stream, StreamName=unique("cam"), DataRetentionInHours=87601) == (
        "InvalidArgumentException", "DataRetentionInHours must be at most 87600.", 400)
    assert err(kv.create_stream, StreamName=unique("cam"), MediaType="h264") == (
        "InvalidArgumentException",
        "1 validation error detected: Value 'h264' at 'mediaType' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: "
        r"[\w\-\.\+]+/[\w\-\.\+]+(,[\w\-\.\+]+/[\w\-\.\+]+)*", 400)


def test_describe_errors(kv):
    assert err(kv.describe_stream, StreamName=unique("none")) == NOT_FOUND
    assert err(kv.describe_stream, StreamARN=arn_of("none", 1)) == NOT_FOUND
    assert err(kv.describe_stream) == (
        "InvalidArgumentException", "Either StreamName or StreamARN must be specified.", 400)
    name = unique("cam")
    arn = kv.create_stream(StreamName=name)["StreamARN"]
    # An ARN with another creation time names an earlier incarnation.
    assert err(kv.describe_stream, StreamARN=arn.rsplit("/", 1)[0] + "/1") == NOT_FOUND
    assert err(kv.describe_stream, StreamName="other", StreamARN=arn) == (
        "InvalidArgumentException", f"StreamName other and StreamARN {arn} name different streams.", 400)


def test_status_machine_with_a_delay():
    s = Server("--status-delay-ms", "60000").start()
    try:
        kv = s.client("kinesisvideo")
        name = unique("cam")
        arn = kv.create_stream(StreamName=name)["StreamARN"]
        v = info(kv, name)["Version"]
        assert info(kv, name)["Status"] == "CREATING"
        assert err(kv.update_stream, StreamName=name, CurrentVersion=v, MediaType="video/h265") == (
            "ResourceInUseException", f"The stream {name} is CREATING; it can be changed when it is ACTIVE.", 400)
        s.advance_clock(60_000)
        assert info(kv, name)["Status"] == "ACTIVE"
        kv.update_stream(StreamName=name, CurrentVersion=v, MediaType="video/h265")
        i = info(kv, name)
        assert (i["Status"], i["MediaType"]) == ("UPDATING", "video/h265")
        s.advance_clock(60_000)
        assert info(kv, name)["Status"] == "ACTIVE"
        kv.delete_stream(StreamARN=arn)
        assert info(kv, name)["Status"] == "DELETING"
        assert [x["Status"] for x in kv.list_streams()["StreamInfoList"]] == ["DELETING"]
        assert err(kv.delete_stream, StreamARN=arn) == NOT_FOUND
        s.advance_clock(60_000)
        assert err(kv.describe_stream, StreamName=name) == NOT_FOUND
        assert kv.list_streams()["StreamInfoList"] == []
    finally:
        s.stop()
        s.cleanup()


def test_update_stream_and_versions(kv):
    name = unique("cam")
    kv.create_stream(StreamName=name, DeviceName="d1")
    v1 = info(kv, name)["Version"]
    assert err(kv.update_stream, StreamName=name, CurrentVersion="stale", DeviceName="d2") == (
        "VersionMismatchException", f"The stream version stale does not match the current version of stream {name}.", 400)
    kv.update_stream(StreamName=name, CurrentVersion=v1, DeviceName="d2", MediaType="audio/aac")
    i = info(kv, name)
    assert (i["DeviceName"], i["MediaType"], i["Status"]) == ("d2", "audio/aac", "ACTIVE")
    assert i["Version"] != v1 and re.fullmatch(r"[A-Za-z0-9]{20}", i["Version"])
    # The old version is stale now.
    assert err(kv.update_stream, StreamName=name, CurrentVersion=v1)[0] == "VersionMismatchException"
    assert err(kv.update_stream, StreamName=unique("none"), CurrentVersion=v1) == NOT_FOUND


def test_update_data_retention(kv):
    name = unique("cam")
    kv.create_stream(StreamName=name, DataRetentionInHours=10)
    v = info(kv, name)["Version"]
    kv.update_data_retention(StreamName=name, CurrentVersion=v, Operation="INCREASE_DATA_RETENTION",
                             DataRetentionChangeInHours=5)
    i = info(kv, name)
    assert i["DataRetentionInHours"] == 15 and i["Version"] != v
    v = i["Version"]
    assert err(kv.update_data_retention, StreamName=name, CurrentVersion=v, Operation="DECREASE_DATA_RETENTION",
               DataRetentionChangeInHours=16) == (
        "InvalidArgumentException",
        f"The data retention of stream {name} is 15 hours; it cannot be decreased by 16.", 400)
    assert err(kv.update_data_retention, StreamName=name, CurrentVersion=v, Operation="INCREASE_DATA_RETENTION",
               DataRetentionChangeInHours=87600) == (
        "InvalidArgumentException", "The data retention of a stream can be at most 87600 hours.", 400)
    assert err(kv.update_data_retention, StreamName=name, CurrentVersion="old", Operation="DECREASE_DATA_RETENTION",
               DataRetentionChangeInHours=1)[0] == "VersionMismatchException"
    assert err(kv.update_data_retention, StreamName=name, CurrentVersion=v, Operation="SHRINK",
               DataRetentionChangeInHours=1) == (
        "InvalidArgumentException",
        "1 validation error detected: Value 'SHRINK' at 'operation' failed to satisfy constraint: "
        "Member must satisfy enum value set: [INCREASE_DATA_RETENTION, DECREASE_DATA_RETENTION]", 400)
    kv.update_data_retention(StreamARN=i["StreamARN"], CurrentVersion=v, Operation="DECREASE_DATA_RETENTION",
                             DataRetentionChangeInHours=15)
    assert info(kv, name)["DataRetentionInHours"] == 0


def test_delete_stream(kv):
    name = unique("cam")
    arn = kv.create_stream(StreamName=name)["StreamARN"]
    assert err(kv.delete_stream, StreamARN=arn, CurrentVersion="nope") == (
        "VersionMismatchException", f"The stream version nope does not match the current version of stream {name}.", 400)
    kv.delete_stream(StreamARN=arn, CurrentVersion=info(kv, name)["Version"])
    assert err(kv.describe_stream, StreamName=name) == NOT_FOUND
    # The name is free again; the new stream has a new ARN.
    time.sleep(0.01)
    arn2 = kv.create_stream(StreamName=name)["StreamARN"]
    assert arn2 != arn
    assert err(kv.describe_stream, StreamARN=arn) == NOT_FOUND
    assert err(kv.delete_stream, StreamARN=arn_of(unique("none"), 5)) == NOT_FOUND


def test_list_streams_pagination_and_prefix(srv):
    kv = srv.client("kinesisvideo", region_name="eu-west-3")
    names = sorted(f"page-{i:02d}" for i in range(5)) + ["other"]
    for n in names:
        kv.create_stream(StreamName=n)
    everything = kv.list_streams()
    assert "NextToken" not in everything
    assert [s["StreamName"] for s in everything["StreamInfoList"]] == sorted(names)
    first = kv.list_streams(MaxResults=2, StreamNameCondition={"ComparisonOperator": "BEGINS_WITH",
                                                               "ComparisonValue": "page-"})
    assert [s["StreamName"] for s in first["StreamInfoList"]] == ["page-00", "page-01"]
    seen = [s["StreamName"] for s in first["StreamInfoList"]]
    token = first["NextToken"]
    while token:
        page = kv.list_streams(MaxResults=2, NextToken=token,
                               StreamNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": "page-"})
        seen += [s["StreamName"] for s in page["StreamInfoList"]]
        token = page.get("NextToken")
    assert seen == [f"page-{i:02d}" for i in range(5)]
    paged = [s["StreamName"] for p in kv.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 4})
             for s in p["StreamInfoList"]]
    assert paged == sorted(names)
    assert err(kv.list_streams, NextToken="zz") == ("InvalidArgumentException", "NextToken zz is not valid.", 400)
    raw = srv.client("kinesisvideo", region_name="eu-west-3", parameter_validation=False)
    assert err(raw.list_streams, MaxResults=0) == (
        "InvalidArgumentException",
        "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1", 400)
    # Streams of another region are not listed.
    assert all(not s["StreamName"].startswith("page-")
               for s in srv.client("kinesisvideo", region_name="ap-south-1").list_streams()["StreamInfoList"])


def test_get_data_endpoint(srv, kv):
    name = unique("cam")
    arn = kv.create_stream(StreamName=name)["StreamARN"]
    for api in ["PUT_MEDIA", "GET_MEDIA", "LIST_FRAGMENTS", "GET_MEDIA_FOR_FRAGMENT_LIST",
                "GET_HLS_STREAMING_SESSION_URL", "GET_DASH_STREAMING_SESSION_URL", "GET_CLIP", "GET_IMAGES"]:
        assert kv.get_data_endpoint(StreamName=name, APIName=api)["DataEndpoint"] == srv.endpoint
    assert kv.get_data_endpoint(StreamARN=arn, APIName="GET_MEDIA")["DataEndpoint"] == srv.endpoint
    assert err(kv.get_data_endpoint, StreamName=unique("none"), APIName="GET_MEDIA") == NOT_FOUND
    assert err(kv.get_data_endpoint, StreamName=name, APIName="PLAY")[0:2] == (
        "InvalidArgumentException",
        "1 validation error detected: Value 'PLAY' at 'aPIName' failed to satisfy constraint: "
        "Member must satisfy enum value set: [PUT_MEDIA, GET_MEDIA, LIST_FRAGMENTS, GET_MEDIA_FOR_FRAGMENT_LIST, "
        "GET_HLS_STREAMING_SESSION_URL, GET_DASH_STREAMING_SESSION_URL, GET_CLIP, GET_IMAGES]")


def test_stream_tags(kv):
    name = unique("cam")
    arn = kv.create_stream(StreamName=name, Tags={"a": "1"})["StreamARN"]
    kv.tag_stream(StreamName=name, Tags={"b": "2", "a": "9"})
    assert kv.list_tags_for_stream(StreamName=name)["Tags"] == {"a": "9", "b": "2"}
    kv.untag_stream(StreamARN=arn, TagKeyList=["a", "missing"])
    assert kv.list_tags_for_stream(StreamARN=arn)["Tags"] == {"b": "2"}
    assert err(kv.tag_stream, StreamName=name, Tags={f"k{i}": "v" for i in range(50)}) == (
        "TagsPerResourceExceededLimitException", "A resource can have at most 50 tags.", 400)
    assert kv.list_tags_for_stream(StreamName=name)["Tags"] == {"b": "2"}
    assert err(kv.list_tags_for_stream, StreamName=unique("none")) == NOT_FOUND
    assert err(kv.tag_stream, StreamName=unique("none"), Tags={"x": "y"}) == NOT_FOUND


def test_resource_tags(kv):
    name = unique("cam")
    arn = kv.create_stream(StreamName=name)["StreamARN"]
    kv.tag_resource(ResourceARN=arn, Tags=[{"Key": "env", "Value": "dev"}, {"Key": "k", "Value": ""}])
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"env": "dev", "k": ""}
    kv.untag_resource(ResourceARN=arn, TagKeyList=["k"])
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"env": "dev"}
    assert kv.list_tags_for_stream(StreamName=name)["Tags"] == {"env": "dev"}
    assert err(kv.list_tags_for_resource, ResourceARN=arn_of(unique("none"), 3)) == NOT_FOUND
    assert err(kv.list_tags_for_resource, ResourceARN="arn:aws:kinesis:us-east-1:1:stream/x") == (
        "InvalidArgumentException",
        "1 validation error detected: Value 'arn:aws:kinesis:us-east-1:1:stream/x' at 'resourceARN' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: "
        "arn:[a-z\\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+", 400)


def test_error_wire_shape(srv):
    import json
    import urllib.request
    req = urllib.request.Request(srv.endpoint + "/describeStream", data=b'{"StreamName": "nothing-here"}',
                                 method="POST", headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 404
    assert e.value.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert json.loads(e.value.read()) == {"__type": "ResourceNotFoundException",
                                          "message": "The requested stream is not found or not active."}
    req = urllib.request.Request(srv.endpoint + "/listStreams", data=b"[1]", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 400
    assert json.loads(e.value.read()) == {"__type": "SerializationException",
                                          "message": "The request body is not a JSON object."}


def test_aws_cli(srv):
    name = unique("cli")
    out = aws_cli(srv.endpoint, "kinesisvideo", "create-stream", "--stream-name", name,
                  "--data-retention-in-hours", "1")
    assert out["StreamARN"].startswith(f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:stream/{name}/")
    i = aws_cli(srv.endpoint, "kinesisvideo", "describe-stream", "--stream-name", name)["StreamInfo"]
    assert (i["StreamName"], i["StreamARN"], i["Status"], i["DataRetentionInHours"]) == (
        name, out["StreamARN"], "ACTIVE", 1)


def test_streams_survive_a_restart():
    s = Server("--status-delay-ms", "0").start()
    try:
        kv = s.client("kinesisvideo")
        name = unique("cam")
        arn = kv.create_stream(StreamName=name, MediaType="video/h264", Tags={"t": "v"})["StreamARN"]
        v = info(kv, name)["Version"]
        kv.update_data_retention(StreamName=name, CurrentVersion=v, Operation="INCREASE_DATA_RETENTION",
                                 DataRetentionChangeInHours=3)
        gone = unique("cam")
        kv.delete_stream(StreamARN=kv.create_stream(StreamName=gone)["StreamARN"])
        before = info(kv, name)
        s.stop()
        s.restart()
        kv = s.client("kinesisvideo")
        assert info(kv, name) == before
        assert before["StreamARN"] == arn and before["DataRetentionInHours"] == 3
        assert kv.list_tags_for_stream(StreamName=name)["Tags"] == {"t": "v"}
        assert err(kv.describe_stream, StreamName=gone) == NOT_FOUND
    finally:
        s.stop()
        s.cleanup()
