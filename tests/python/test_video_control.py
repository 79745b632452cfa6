"""Kinesis Video Streams control plane beyond streams, with boto3's
`kinesisvideo` client and the AWS CLI: signaling channels (create,
describe, list, update, delete, endpoints, tags), media storage and mapped
resources, image generation, notification, edge and stream storage
configurations: whole responses, versions, status machines, the errors and
their HTTP statuses, and persistence across a restart."""
import re
import time

import botocore.exceptions
import pytest

from conftest import ACCOUNT, REGION, Server, aws_cli, unique

CHANNEL_NOT_FOUND = ("ResourceNotFoundException", "The requested channel is not found or not active.", 404)
STREAM_NOT_FOUND = ("ResourceNotFoundException", "The requested stream is not found or not active.", 404)
HUB = f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/hub-1"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:camera-1"


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


def channel(kv, name):
    i = kv.describe_signaling_channel(ChannelName=name)["ChannelInfo"]
    i.pop("CreationTime")
    return i


def stream(kv, retention=24, **kw):
    name = unique("cam")
    arn = kv.create_stream(StreamName=name, DataRetentionInHours=retention, **kw)["StreamARN"]
    return name, arn


def version_of(kv, name):
    return kv.describe_stream(StreamName=name)["StreamInfo"]["Version"]


def edge_config(hub=HUB):
    return {
        "HubDeviceArn": hub,
        "RecorderConfig": {
            "MediaSourceConfig": {"MediaUriSecretArn": SECRET, "MediaUriType": "RTSP_URI"},
            "ScheduleConfig": {"ScheduleExpression": "0 0/5 * * * ?", "DurationInSeconds": 120},
        },
        "UploaderConfig": {"ScheduleConfig": {"ScheduleExpression": "0 0 * * * ?", "DurationInSeconds": 600}},
        "DeletionConfig": {
            "EdgeRetentionInHours": 48,
            "LocalSizeConfig": {"MaxLocalMediaSizeInMB": 1024, "StrategyOnFullSize": "DELETE_OLDEST_MEDIA"},
            "DeleteAfterUpload": False,
        },
    }


def without_metadata(r):
    r.pop("ResponseMetadata")
    return r


# ---------------------------------------------------------------------
# Signaling channels

def test_create_and_describe_whole_channel_info(kv):
    name = unique("ch")
    before = time.time()
    arn = kv.create_signaling_channel(ChannelName=name, ChannelType="SINGLE_MASTER",
                                      SingleMasterConfiguration={"MessageTtlSeconds": 30},
                                      Tags=[{"Key": "team", "Value": "video"}])["ChannelARN"]
    m = re.fullmatch(rf"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/{name}/(\d+)", arn)
    assert m, arn
    created_ms = int(m.group(1))
    assert before * 1000 - 1000 <= created_ms <= time.time() * 1000 + 1000
    i = kv.describe_signaling_channel(ChannelName=name)["ChannelInfo"]
    assert re.fullmatch(r"[A-Za-z0-9]{20}", i["Version"])
    assert abs(i.pop("CreationTime").timestamp() * 1000 - created_ms) < 1
    assert i == {
        "ChannelName": name,
        "ChannelARN": arn,
        "ChannelType": "SINGLE_MASTER",
        "ChannelStatus": "ACTIVE",
        "SingleMasterConfiguration": {"MessageTtlSeconds": 30},
        "Version": i["Version"],
    }
    by_arn = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
    by_arn.pop("CreationTime")
    assert by_arn == i
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"team": "video"}


def test_channel_defaults_and_errors(kv):
    name = unique("ch")
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    assert channel(kv, name) == {
        "ChannelName": name, "ChannelARN": arn, "ChannelType": "SINGLE_MASTER", "ChannelStatus": "ACTIVE",
        "SingleMasterConfiguration": {"MessageTtlSeconds": 60}, "Version": channel(kv, name)["Version"]}
    assert err(kv.create_signaling_channel, ChannelName=name) == (
        "ResourceInUseException", f"The signaling channel {name} already exists.", 400)
    assert err(kv.create_signaling_channel, ChannelName=unique("ch"), ChannelType="FULL_MESH") == (
        "InvalidArgumentException",
        "ChannelType FULL_MESH is not supported; SINGLE_MASTER is the only supported channel type.", 400)
    assert err(kv.create_signaling_channel, ChannelName="bad name") == (
        "InvalidArgumentException",
        "1 validation error detected: Value 'bad name' at 'channelName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+", 400)
    assert err(kv.describe_signaling_channel, ChannelName=unique("none")) == CHANNEL_NOT_FOUND
    assert err(kv.describe_signaling_channel,
               ChannelARN=f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/none/1") == CHANNEL_NOT_FOUND
    # An ARN of another creation time, or of a stream, names no channel.
    assert err(kv.describe_signaling_channel, ChannelARN=arn.rsplit("/", 1)[0] + "/1") == CHANNEL_NOT_FOUND
    _, sarn = stream(kv)
    assert err(kv.describe_signaling_channel, ChannelARN=sarn) == CHANNEL_NOT_FOUND
    assert err(kv.describe_signaling_channel) == (
        "InvalidArgumentException", "Either ChannelName or ChannelARN must be specified.", 400)
    assert err(kv.describe_signaling_channel, ChannelName="other", ChannelARN=arn) == (
        "InvalidArgumentException", f"ChannelName other and ChannelARN {arn} name different channels.", 400)


def test_update_channel_and_versions(kv):
    name = unique("ch")
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    v1 = channel(kv, name)["Version"]
    assert err(kv.update_signaling_channel, ChannelARN=arn, CurrentVersion="nope",
               SingleMasterConfiguration={"MessageTtlSeconds": 90}) == (
        "VersionMismatchException",
        f"The channel version nope does not match the current version of signaling channel {name}.", 400)
    assert without_metadata(kv.update_signaling_channel(
        ChannelARN=arn, CurrentVersion=v1, SingleMasterConfiguration={"MessageTtlSeconds": 90})) == {}
    i = channel(kv, name)
    assert i["Version"] != v1 and re.fullmatch(r"[A-Za-z0-9]{20}", i["Version"])
    assert (i["ChannelStatus"], i["SingleMasterConfiguration"]) == ("ACTIVE", {"MessageTtlSeconds": 90})
    # Without a configuration the TTL stays; the version still moves.
    kv.update_signaling_channel(ChannelARN=arn, CurrentVersion=i["Version"])
    j = channel(kv, name)
    assert j["SingleMasterConfiguration"] == {"MessageTtlSeconds": 90} and j["Version"] != i["Version"]
    assert err(kv.update_signaling_channel, ChannelARN=arn, CurrentVersion=v1) == (
        "VersionMismatchException",
        f"The channel version {v1} does not match the current version of signaling channel {name}.", 400)
    assert err(kv.update_signaling_channel, ChannelARN=f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/x/1",
               CurrentVersion=v1) == CHANNEL_NOT_FOUND


def test_delete_channel(kv):
    name = unique("ch")
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    assert err(kv.delete_signaling_channel, ChannelARN=arn, CurrentVersion="old") == (
        "VersionMismatchException",
        f"The channel version old does not match the current version of signaling channel {name}.", 400)
    assert without_metadata(kv.delete_signaling_channel(ChannelARN=arn, CurrentVersion=channel(kv, name)["Version"])) == {}
    assert err(kv.describe_signaling_channel, ChannelName=name) == CHANNEL_NOT_FOUND
    assert err(kv.delete_signaling_channel, ChannelARN=arn) == CHANNEL_NOT_FOUND
    other = unique("ch")
    kv.delete_signaling_channel(ChannelARN=kv.create_signaling_channel(ChannelName=other)["ChannelARN"])
    assert err(kv.describe_signaling_channel, ChannelName=other) == CHANNEL_NOT_FOUND
    # The name is free again: a new channel with a new ARN; the old ARN
    # names nothing.
    time.sleep(0.005)
    again = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    assert again.startswith(f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/{name}/") and again != arn
    assert err(kv.list_tags_for_resource, ResourceARN=arn) == CHANNEL_NOT_FOUND


def test_channel_status_machine_with_a_delay():
    s = Server("--status-delay-ms", "60000").start()
    try:
        kv = s.client("kinesisvideo")
        name = unique("ch")
        arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
        v = channel(kv, name)["Version"]
        assert channel(kv, name)["ChannelStatus"] == "CREATING"
        assert err(kv.update_signaling_channel, ChannelARN=arn, CurrentVersion=v) == (
            "ResourceInUseException",
            f"The signaling channel {name} is CREATING; it can be changed when it is ACTIVE.", 400)
        assert err(kv.get_signaling_channel_endpoint, ChannelARN=arn) == (
            "ResourceInUseException",
            f"The signaling channel {name} is CREATING; its endpoints are available when it is ACTIVE.", 400)
        s.advance_clock(60_000)
        assert channel(kv, name)["ChannelStatus"] == "ACTIVE"
        kv.update_signaling_channel(ChannelARN=arn, CurrentVersion=v, SingleMasterConfiguration={"MessageTtlSeconds": 5})
        i = channel(kv, name)
        assert (i["ChannelStatus"], i["SingleMasterConfiguration"]) == ("UPDATING", {"MessageTtlSeconds": 5})
        # Endpoints are served while UPDATING.
        assert len(kv.get_signaling_channel_endpoint(ChannelARN=arn)["ResourceEndpointList"]) == 2
        s.advance_clock(60_000)
        assert channel(kv, name)["ChannelStatus"] == "ACTIVE"
        kv.delete_signaling_channel(ChannelARN=arn)
        assert channel(kv, name)["ChannelStatus"] == "DELETING"
        assert [c["ChannelStatus"] for c in kv.list_signaling_channels()["ChannelInfoList"]] == ["DELETING"]
        assert err(kv.delete_signaling_channel, ChannelARN=arn) == CHANNEL_NOT_FOUND
        s.advance_clock(60_000)
        assert err(kv.describe_signaling_channel, ChannelName=name) == CHANNEL_NOT_FOUND
        assert kv.list_signaling_channels()["ChannelInfoList"] == []

        # An edge configuration syncs for the status delay.
        sname = unique("cam")
        kv.create_stream(StreamName=sname, DataRetentionInHours=1)
        s.advance_clock(60_000)
        out = kv.start_edge_configuration_update(StreamName=sname, EdgeConfig=edge_config())
        assert out["SyncStatus"] == "SYNCING"
        assert err(kv.start_edge_configuration_update, StreamName=sname, EdgeConfig=edge_config()) == (
            "ResourceInUseException",
            f"The edge configuration of stream {sname} is SYNCING; it can be updated when the sync has finished.", 400)
        s.advance_clock(60_000)
        assert kv.describe_edge_configuration(StreamName=sname)["SyncStatus"] == "IN_SYNC"
        kv.delete_edge_configuration(StreamName=sname)
        assert kv.describe_edge_configuration(StreamName=sname)["SyncStatus"] == "DELETING"
        assert err(kv.start_edge_configuration_update, StreamName=sname, EdgeConfig=edge_config()) == (
            "ResourceInUseException",
            f"The edge configuration of stream {sname} is DELETING; it can be updated when the sync has finished.", 400)
        s.advance_clock(60_000)
        assert err(kv.describe_edge_configuration, StreamName=sname) == (
            "StreamEdgeConfigurationNotFoundException", f"The stream {sname} has no edge configuration.", 404)
    finally:
        s.stop()
        s.cleanup()


def test_list_channels_pagination_and_prefix(srv):
    kv = srv.client("kinesisvideo", region_name="ap-south-1")
    prefix = unique("pg")
    names = sorted(f"{prefix}-{i}" for i in range(5))
    for n in reversed(names):
        kv.create_signaling_channel(ChannelName=n)
    kv.create_signaling_channel(ChannelName=unique("other"))
    cond = {"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": prefix}
    page = kv.list_signaling_channels(MaxResults=2, ChannelNameCondition=cond)
    assert [c["ChannelName"] for c in page["ChannelInfoList"]] == names[:2]
    seen = [c["ChannelName"] for c in page["ChannelInfoList"]]
    while "NextToken" in page:
        page = kv.list_signaling_channels(MaxResults=2, ChannelNameCondition=cond, NextToken=page["NextToken"])
        seen += [c["ChannelName"] for c in page["ChannelInfoList"]]
    assert seen == names
    full = kv.list_signaling_channels(ChannelNameCondition=cond)
    assert "NextToken" not in full
    assert [c["ChannelName"] for c in full["ChannelInfoList"]] == names
    first = full["ChannelInfoList"][0]
    first.pop("CreationTime")
    assert first == channel(kv, names[0])
    # The paginator walks the same pages; channels are per region.
    pages = kv.get_paginator("list_signaling_channels").paginate(
        ChannelNameCondition=cond, PaginationConfig={"PageSize": 3})
    assert [c["ChannelName"] for p in pages for c in p["ChannelInfoList"]] == names
    assert srv.client("kinesisvideo").list_signaling_channels(ChannelNameCondition=cond)["ChannelInfoList"] == []
    assert err(kv.list_signaling_channels, NextToken="zz") == (
        "InvalidArgumentException", "NextToken zz is not valid.", 400)


def test_signaling_channel_endpoints(srv, kv):
    name = unique("ch")
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    ws = srv.endpoint.replace("http://", "ws://")
    assert kv.get_signaling_channel_endpoint(ChannelARN=arn)["ResourceEndpointList"] == [
        {"Protocol": "WSS", "ResourceEndpoint": ws},
        {"Protocol": "HTTPS", "ResourceEndpoint": srv.endpoint},
    ]
    out = kv.get_signaling_channel_endpoint(
        ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["HTTPS"], "Role": "VIEWER"})
    assert out["ResourceEndpointList"] == [{"Protocol": "HTTPS", "ResourceEndpoint": srv.endpoint}]
    assert err(kv.get_signaling_channel_endpoint, ChannelARN=arn,
               SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS", "WEBRTC"], "Role": "MASTER"}) == (
        "InvalidArgumentException",
        f"The signaling channel {name} is not configured for ingestion: the WEBRTC protocol needs its media "
        "storage configuration ENABLED.", 400)
    assert err(kv.get_signaling_channel_endpoint,
               ChannelARN=f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/{unique('none')}/1") == CHANNEL_NOT_FOUND
    assert err(kv.get_signaling_channel_endpoint, ChannelARN=arn,
               SingleMasterChannelEndpointConfiguration={"Protocols": ["FTP"]}) == (
        "InvalidArgumentException",
        "1 validation error detected: Value '[FTP]' at 'singleMasterChannelEndpointConfiguration.protocols' "
        "failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: "
        "[WSS, HTTPS, WEBRTC]]", 400)


def test_channel_tags(kv):
    name = unique("ch")
    arn = kv.create_signaling_channel(ChannelName=name, Tags=[{"Key": "a", "Value": "1"}])["ChannelARN"]
    kv.tag_resource(ResourceARN=arn, Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "9"}])
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"a": "9", "b": "2"}
    kv.untag_resource(ResourceARN=arn, TagKeyList=["a", "missing"])
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"b": "2"}
    assert err(kv.tag_resource, ResourceARN=arn,
               Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)]) == (
        "TagsPerResourceExceededLimitException", "A resource can have at most 50 tags.", 400)
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"b": "2"}
    missing = f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/{unique('none')}/1"
    assert err(kv.tag_resource, ResourceARN=missing, Tags=[{"Key": "x", "Value": "y"}]) == CHANNEL_NOT_FOUND
    assert err(kv.list_tags_for_resource, ResourceARN=missing) == CHANNEL_NOT_FOUND
    assert err(kv.untag_resource, ResourceARN=missing, TagKeyList=["x"]) == CHANNEL_NOT_FOUND
    # Stream tags stay apart from channel tags.
    sname, sarn = stream(kv)
    kv.tag_resource(ResourceARN=sarn, Tags=[{"Key": "s", "Value": "1"}])
    assert kv.list_tags_for_stream(StreamName=sname)["Tags"] == {"s": "1"}
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"b": "2"}


# ---------------------------------------------------------------------
# Media storage and mapped resources

def test_media_storage_and_mapped_resources(srv, kv):
    name = unique("ch")
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    sname, sarn = stream(kv)
    assert without_metadata(kv.describe_media_storage_configuration(ChannelName=name)) == {
        "MediaStorageConfiguration": {"Status": "DISABLED"}}
    assert without_metadata(kv.describe_mapped_resource_configuration(StreamName=sname)) == {
        "MappedResourceConfigurationList": []}
    assert err(kv.update_media_storage_configuration, ChannelARN=arn,
               MediaStorageConfiguration={"Status": "ENABLED"}) == (
        "InvalidArgumentException", "StreamARN must be specified when the media storage Status is ENABLED.", 400)
    empty_name, empty_arn = stream(kv, retention=0)
    assert err(kv.update_media_storage_configuration, ChannelARN=arn,
               MediaStorageConfiguration={"Status": "ENABLED", "StreamARN": empty_arn}) == (
        "NoDataRetentionException",
        f"The stream {empty_name} has no data retention; media storage needs a stream that keeps its data.", 400)
    assert err(kv.update_media_storage_configuration, ChannelARN=arn,
               MediaStorageConfiguration={"Status": "ENABLED",
                                          "StreamARN": f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:stream/x/1"}) == (
        STREAM_NOT_FOUND)
    kv.update_media_storage_configuration(ChannelARN=arn,
                                          MediaStorageConfiguration={"Status": "ENABLED", "StreamARN": sarn})
    assert without_metadata(kv.describe_media_storage_configuration(ChannelARN=arn)) == {
        "MediaStorageConfiguration": {"Status": "ENABLED", "StreamARN": sarn}}
    assert without_metadata(kv.describe_mapped_resource_configuration(StreamARN=sarn, MaxResults=1)) == {
        "MappedResourceConfigurationList": [{"Type": "SIGNALING_CHANNEL", "ARN": arn}]}
    # WEBRTC is served once the channel stores its media.
    out = kv.get_signaling_channel_endpoint(
        ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WEBRTC"], "Role": "MASTER"})
    assert out["ResourceEndpointList"] == [{"Protocol": "WEBRTC", "ResourceEndpoint": srv.endpoint}]
    # A stream stores the media of one channel.
    other = kv.create_signaling_channel(ChannelName=unique("ch"))["ChannelARN"]
    assert err(kv.update_media_storage_configuration, ChannelARN=other,
               MediaStorageConfiguration={"Status": "ENABLED", "StreamARN": sarn}) == (
        "ResourceInUseException", f"The stream {sname} is already mapped to the signaling channel {arn}.", 400)
    kv.update_media_storage_configuration(ChannelARN=arn, MediaStorageConfiguration={"Status": "DISABLED"})
    assert without_metadata(kv.describe_media_storage_configuration(ChannelARN=arn)) == {
        "MediaStorageConfiguration": {"Status": "DISABLED"}}
    assert kv.describe_mapped_resource_configuration(StreamName=sname)["MappedResourceConfigurationList"] == []
    kv.update_media_storage_configuration(ChannelARN=other,
                                          MediaStorageConfiguration={"Status": "ENABLED", "StreamARN": sarn})
    assert kv.describe_mapped_resource_configuration(StreamName=sname)["MappedResourceConfigurationList"] == [
        {"Type": "SIGNALING_CHANNEL", "ARN": other}]
    assert err(kv.describe_media_storage_configuration, ChannelName=unique("none")) == CHANNEL_NOT_FOUND
    assert err(kv.describe_mapped_resource_configuration, StreamName=unique("none")) == STREAM_NOT_FOUND
    assert err(kv.update_media_storage_configuration,
               ChannelARN=f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/none/1",
               MediaStorageConfiguration={"Status": "DISABLED"}) == CHANNEL_NOT_FOUND


# ---------------------------------------------------------------------
# Image generation and notification

IMAGES = {
    "Status": "ENABLED",
    "ImageSelectorType": "PRODUCER_TIMESTAMP",
    "DestinationConfig": {"Uri": "s3://frames-bucket/door", "DestinationRegion": REGION},
    "SamplingInterval": 3000,
    "Format": "JPEG",
    "FormatConfig": {"JPEGQuality": "80"},
    "WidthPixels": 640,
    "HeightPixels": 480,
}


def test_image_generation_configuration(kv):
    name, arn = stream(kv)
    assert without_metadata(kv.describe_image_generation_configuration(StreamName=name)) == {}
    assert without_metadata(kv.update_image_generation_configuration(
        StreamName=name, ImageGenerationConfiguration=IMAGES)) == {}
    assert without_metadata(kv.describe_image_generation_configuration(StreamARN=arn)) == {
        "ImageGenerationConfiguration": IMAGES}
    png = {"Status": "DISABLED", "ImageSelectorType": "SERVER_TIMESTAMP",
           "DestinationConfig": {"Uri": "s3://b/p", "DestinationRegion": REGION}, "SamplingInterval": 200,
           "Format": "PNG"}
    kv.update_image_generation_configuration(StreamARN=arn, ImageGenerationConfiguration=png)
    assert kv.describe_image_generation_configuration(StreamName=name)["ImageGenerationConfiguration"] == png
    for bad, message in [
        (dict(IMAGES, SamplingInterval=100), "SamplingInterval must be between 200 and 20000 milliseconds."),
        (dict(IMAGES, DestinationConfig={"Uri": "s3://b/p", "DestinationRegion": "eu-west-1"}),
         f"DestinationRegion eu-west-1 must be the stream's Region {REGION}."),
        (dict(IMAGES, Format="PNG"), "FormatConfig applies to the JPEG Format only."),
        (dict(IMAGES, FormatConfig={"JPEGQuality": "101"}), "JPEGQuality 101 must be an integer between 1 and 100."),
    ]:
        assert err(kv.update_image_generation_configuration, StreamName=name,
                   ImageGenerationConfiguration=bad) == ("InvalidArgumentException", message, 400)
    assert kv.describe_image_generation_configuration(StreamName=name)["ImageGenerationConfiguration"] == png
    # Without a configuration: removed.
    kv.update_image_generation_configuration(StreamName=name)
    assert without_metadata(kv.describe_image_generation_configuration(StreamName=name)) == {}
    empty, _ = stream(kv, retention=0)
    assert err(kv.update_image_generation_configuration, StreamName=empty, ImageGenerationConfiguration=IMAGES) == (
        "NoDataRetentionException", f"The stream {empty} has no data retention (DataRetentionInHours is 0).", 400)
    assert err(kv.describe_image_generation_configuration, StreamName=unique("none")) == STREAM_NOT_FOUND
    assert err(kv.update_image_generation_configuration, StreamName=unique("none"),
               ImageGenerationConfiguration=IMAGES) == STREAM_NOT_FOUND


def test_notification_configuration(kv):
    name, arn = stream(kv)
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:fragments"
    conf = {"Status": "ENABLED", "DestinationConfig": {"Uri": topic}}
    assert without_metadata(kv.describe_notification_configuration(StreamName=name)) == {}
    assert without_metadata(kv.update_notification_configuration(StreamARN=arn, NotificationConfiguration=conf)) == {}
    assert without_metadata(kv.describe_notification_configuration(StreamName=name)) == {
        "NotificationConfiguration": conf}
    off = {"Status": "DISABLED", "DestinationConfig": {"Uri": topic}}
    kv.update_notification_configuration(StreamName=name, NotificationConfiguration=off)
    assert kv.describe_notification_configuration(StreamARN=arn)["NotificationConfiguration"] == off
    kv.update_notification_configuration(StreamName=name)
    assert without_metadata(kv.describe_notification_configuration(StreamName=name)) == {}
    empty, _ = stream(kv, retention=0)
    assert err(kv.update_notification_configuration, StreamName=empty, NotificationConfiguration=conf) == (
        "NoDataRetentionException", f"The stream {empty} has no data retention (DataRetentionInHours is 0).", 400)
    # DISABLED needs no retention.
    kv.update_notification_configuration(StreamName=empty, NotificationConfiguration=off)
    assert err(kv.update_notification_configuration, StreamName=name,
               NotificationConfiguration={"Status": "ENABLED", "DestinationConfig": {"Uri": "no uri"}})[0] == (
        "InvalidArgumentException")
    assert err(kv.describe_notification_configuration, StreamName=unique("none")) == STREAM_NOT_FOUND


# ---------------------------------------------------------------------
# Edge configuration

def test_edge_configuration(kv):
    name, arn = stream(kv)
    no_edge = ("StreamEdgeConfigurationNotFoundException", f"The stream {name} has no edge configuration.", 404)
    assert err(kv.describe_edge_configuration, StreamName=name) == no_edge
    assert err(kv.delete_edge_configuration, StreamARN=arn) == no_edge
    before = time.time()
    out = without_metadata(kv.start_edge_configuration_update(StreamName=name, EdgeConfig=edge_config()))
    created = out.pop("CreationTime")
    updated = out.pop("LastUpdatedTime")
    assert created == updated and before - 1 <= created.timestamp() <= time.time() + 1
    assert out == {"StreamName": name, "StreamARN": arn, "SyncStatus": "SYNCING", "EdgeConfig": edge_config()}
    # With no status delay the sync completes at once.
    d = without_metadata(kv.describe_edge_configuration(StreamARN=arn))
    assert (d.pop("CreationTime"), d.pop("LastUpdatedTime")) == (created, updated)
    assert d == {"StreamName": name, "StreamARN": arn, "SyncStatus": "IN_SYNC", "EdgeConfig": edge_config()}
    # An update keeps the creation time.
    minimal = {"HubDeviceArn": HUB, "RecorderConfig": {
        "MediaSourceConfig": {"MediaUriSecretArn": SECRET, "MediaUriType": "FILE_URI"}}}
    time.sleep(0.01)
    again = kv.start_edge_configuration_update(StreamName=name, EdgeConfig=minimal)
    assert again["CreationTime"] == created and again["LastUpdatedTime"] > updated
    assert kv.describe_edge_configuration(StreamName=name)["EdgeConfig"] == minimal
    assert without_metadata(kv.delete_edge_configuration(StreamName=name)) == {}
    assert err(kv.describe_edge_configuration, StreamName=name) == no_edge
    empty, _ = stream(kv, retention=0)
    assert err(kv.start_edge_configuration_update, StreamName=empty, EdgeConfig=edge_config()) == (
        "NoDataRetentionException", f"The stream {empty} has no data retention (DataRetentionInHours is 0).", 400)
    assert err(kv.describe_edge_configuration, StreamName=unique("none")) == STREAM_NOT_FOUND
    assert err(kv.start_edge_configuration_update, StreamName=name,
               EdgeConfig=dict(edge_config(), HubDeviceArn="arn:aws:iot:us-east-1:1:thing/bad name")) == (
        "InvalidArgumentException",
        "1 validation error detected: Value 'arn:aws:iot:us-east-1:1:thing/bad name' at 'edgeConfig.hubDeviceArn' "
        "failed to satisfy constraint: Member must satisfy regular expression pattern: "
        "arn:[a-z\\d-]+:iot:[a-z0-9-]+:[0-9]+:thing/[a-zA-Z0-9_.-]+", 400)


def test_list_edge_agent_configurations(srv):
    kv = srv.client("kinesisvideo", region_name="sa-east-1")
    hub = f"arn:aws:iot:sa-east-1:{ACCOUNT}:thing/{unique('hub')}"
    prefix = unique("edge")
    names = sorted(f"{prefix}-{i}" for i in range(7))
    for n in names:
        kv.create_stream(StreamName=n, DataRetentionInHours=2)
        kv.start_edge_configuration_update(StreamName=n, EdgeConfig=edge_config(hub))
    elsewhere = f"{prefix}-x"
    kv.create_stream(StreamName=elsewhere, DataRetentionInHours=2)
    kv.start_edge_configuration_update(StreamName=elsewhere, EdgeConfig=edge_config(hub + "-other"))
    page = kv.list_edge_agent_configurations(HubDeviceArn=hub)
    assert [c["StreamName"] for c in page["EdgeConfigs"]] == names[:5]
    first = page["EdgeConfigs"][0]
    first.pop("CreationTime")
    first.pop("LastUpdatedTime")
    assert first == {"StreamName": names[0], "StreamARN": kv.describe_stream(StreamName=names[0])["StreamInfo"]["StreamARN"],
                     "SyncStatus": "IN_SYNC", "EdgeConfig": edge_config(hub)}
    rest = kv.list_edge_agent_configurations(HubDeviceArn=hub, NextToken=page["NextToken"], MaxResults=10)
    assert [c["StreamName"] for c in rest["EdgeConfigs"]] == names[5:]
    assert "NextToken" not in rest
    pages = kv.get_paginator("list_edge_agent_configurations").paginate(
        HubDeviceArn=hub, PaginationConfig={"PageSize": 3})
    assert [c["StreamName"] for p in pages for c in p["EdgeConfigs"]] == names
    kv.delete_edge_configuration(StreamName=names[0])
    assert [c["StreamName"] for c in kv.list_edge_agent_configurations(HubDeviceArn=hub, MaxResults=10)["EdgeConfigs"]] == names[1:]
    assert kv.list_edge_agent_configurations(HubDeviceArn=HUB.replace("hub-1", "nobody"))["EdgeConfigs"] == []


# ---------------------------------------------------------------------
# Stream storage

def test_stream_storage_configuration(kv):
    name, arn = stream(kv)
    assert without_metadata(kv.describe_stream_storage_configuration(StreamName=name)) == {
        "StreamName": name, "StreamARN": arn, "StreamStorageConfiguration": {"DefaultStorageTier": "HOT"}}
    v = version_of(kv, name)
    assert err(kv.update_stream_storage_configuration, StreamName=name, CurrentVersion="stale",
               StreamStorageConfiguration={"DefaultStorageTier": "WARM"}) == (
        "VersionMismatchException",
        f"The stream version stale does not match the current version of stream {name}.", 400)
    assert without_metadata(kv.update_stream_storage_configuration(
        StreamARN=arn, CurrentVersion=v, StreamStorageConfiguration={"DefaultStorageTier": "WARM"})) == {}
    assert version_of(kv, name) != v
    assert kv.describe_stream_storage_configuration(StreamARN=arn)["StreamStorageConfiguration"] == {
        "DefaultStorageTier": "WARM"}
    warm, warm_arn = stream(kv, StreamStorageConfiguration={"DefaultStorageTier": "WARM"})
    assert without_metadata(kv.describe_stream_storage_configuration(StreamARN=warm_arn)) == {
        "StreamName": warm, "StreamARN": warm_arn, "StreamStorageConfiguration": {"DefaultStorageTier": "WARM"}}
    assert err(kv.describe_stream_storage_configuration, StreamName=unique("none")) == STREAM_NOT_FOUND
    assert err(kv.update_stream_storage_configuration, StreamName=name, CurrentVersion=v,
               StreamStorageConfiguration={"DefaultStorageTier": "COLD"})[0] == "InvalidArgumentException"


# ---------------------------------------------------------------------
# AWS CLI, wire shape, restart

def test_aws_cli(srv):
    name = unique("cli")
    arn = aws_cli(srv.endpoint, "kinesisvideo", "create-signaling-channel", "--channel-name", name,
                  "--single-master-configuration", "MessageTtlSeconds=45")["ChannelARN"]
    assert arn.startswith(f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/{name}/")
    i = aws_cli(srv.endpoint, "kinesisvideo", "describe-signaling-channel", "--channel-arn", arn)["ChannelInfo"]
    assert (i["ChannelName"], i["ChannelARN"], i["ChannelStatus"], i["SingleMasterConfiguration"]) == (
        name, arn, "ACTIVE", {"MessageTtlSeconds": 45})
    out = aws_cli(srv.endpoint, "kinesisvideo", "get-signaling-channel-endpoint", "--channel-arn", arn,
                  "--single-master-channel-endpoint-configuration", "Protocols=WSS,Role=MASTER")
    assert out == {"ResourceEndpointList": [{"Protocol": "WSS",
                                             "ResourceEndpoint": srv.endpoint.replace("http://", "ws://")}]}
    sname = unique("cli")
    aws_cli(srv.endpoint, "kinesisvideo", "create-stream", "--stream-name", sname)
    assert aws_cli(srv.endpoint, "kinesisvideo", "describe-stream-storage-configuration",
                   "--stream-name", sname)["StreamStorageConfiguration"] == {"DefaultStorageTier": "HOT"}


def test_not_found_wire_shape(srv):
    import json
    import urllib.request
    req = urllib.request.Request(srv.endpoint + "/describeSignalingChannel", data=b'{"ChannelName": "nothing-here"}',
                                 method="POST", headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 404
    assert e.value.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert json.loads(e.value.read()) == {"__type": "ResourceNotFoundException",
                                          "message": "The requested channel is not found or not active."}


def test_channels_and_configurations_survive_a_restart():
    s = Server("--status-delay-ms", "0").start()
    try:
        kv = s.client("kinesisvideo")
        name = unique("ch")
        arn = kv.create_signaling_channel(ChannelName=name, SingleMasterConfiguration={"MessageTtlSeconds": 100},
                                          Tags=[{"Key": "t", "Value": "v"}])["ChannelARN"]
        kv.update_signaling_channel(ChannelARN=arn, CurrentVersion=channel(kv, name)["Version"],
                                    SingleMasterConfiguration={"MessageTtlSeconds": 110})
        gone = unique("ch")
        kv.delete_signaling_channel(ChannelARN=kv.create_signaling_channel(ChannelName=gone)["ChannelARN"])
        sname, sarn = stream(kv)
        kv.update_media_storage_configuration(ChannelARN=arn,
                                              MediaStorageConfiguration={"Status": "ENABLED", "StreamARN": sarn})
        kv.update_image_generation_configuration(StreamName=sname, ImageGenerationConfiguration=IMAGES)
        topic = {"Status": "ENABLED", "DestinationConfig": {"Uri": f"arn:aws:sns:{REGION}:{ACCOUNT}:t"}}
        kv.update_notification_configuration(StreamName=sname, NotificationConfiguration=topic)
        kv.start_edge_configuration_update(StreamName=sname, EdgeConfig=edge_config())
        kv.update_stream_storage_configuration(StreamName=sname, CurrentVersion=version_of(kv, sname),
                                               StreamStorageConfiguration={"DefaultStorageTier": "WARM"})
        before = kv.describe_signaling_channel(ChannelName=name)["ChannelInfo"]
        edge_before = without_metadata(kv.describe_edge_configuration(StreamName=sname))
        stream_before = kv.describe_stream(StreamName=sname)["StreamInfo"]
        s.stop()
        s.restart()
        kv = s.client("kinesisvideo")
        assert kv.describe_signaling_channel(ChannelName=name)["ChannelInfo"] == before
        assert before["SingleMasterConfiguration"] == {"MessageTtlSeconds": 110}
        assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"t": "v"}
        assert err(kv.describe_signaling_channel, ChannelName=gone) == CHANNEL_NOT_FOUND
        assert kv.describe_media_storage_configuration(ChannelARN=arn)["MediaStorageConfiguration"] == {
            "Status": "ENABLED", "StreamARN": sarn}
        assert kv.describe_mapped_resource_configuration(StreamARN=sarn)["MappedResourceConfigurationList"] == [
            {"Type": "SIGNALING_CHANNEL", "ARN": arn}]
        assert kv.describe_image_generation_configuration(StreamName=sname)["ImageGenerationConfiguration"] == IMAGES
        assert kv.describe_notification_configuration(StreamName=sname)["NotificationConfiguration"] == topic
        assert without_metadata(kv.describe_edge_configuration(StreamName=sname)) == edge_before
        assert edge_before["SyncStatus"] == "IN_SYNC"
        assert kv.describe_stream(StreamName=sname)["StreamInfo"] == stream_before
        assert kv.describe_stream_storage_configuration(StreamName=sname)["StreamStorageConfiguration"] == {
            "DefaultStorageTier": "WARM"}
    finally:
        s.stop()
        s.cleanup()
