"""Firehose's API with boto3 and the AWS CLI: every operation, whole
responses, AWS's errors, versions, pagination, tags, a Kinesis source,
PutRecordBatch limits and what survives a restart."""
import datetime
import signal
import time

import pytest

from conftest import ACCOUNT, REGION, aws_cli, error_of, unique, wait_active

ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"
S3 = {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::bucket"}
S3_DESCRIPTION = {
    "RoleARN": ROLE,
    "BucketARN": "arn:aws:s3:::bucket",
    "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300},
    "CompressionFormat": "UNCOMPRESSED",
    "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
    "CloudWatchLoggingOptions": {"Enabled": False},
}


@pytest.fixture(scope="module")
def fh(server):
    return server.client("firehose")


def wait_status(fh, name, status="ACTIVE", timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        if d["DeliveryStreamStatus"] == status:
            return d
        time.sleep(0.05)
    raise AssertionError(f"{name} did not become {status}")


def make(fh, **kw):
    name = unique("fh")
    kw.setdefault("ExtendedS3DestinationConfiguration", S3)
    fh.create_delivery_stream(DeliveryStreamName=name, **kw)
    wait_status(fh, name)
    return name


def test_create_describe_whole_response(fh):
    name = unique("fh")
    out = fh.create_delivery_stream(DeliveryStreamName=name, S3DestinationConfiguration=S3)
    arn = f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{name}"
    assert out["DeliveryStreamARN"] == arn
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["DeliveryStreamStatus"] in ("CREATING", "ACTIVE")
    d = wait_status(fh, name)
    created = d.pop("CreateTimestamp")
    assert isinstance(created, datetime.datetime)
    assert d == {
        "DeliveryStreamName": name,
        "DeliveryStreamARN": arn,
        "DeliveryStreamStatus": "ACTIVE",
        "DeliveryStreamEncryptionConfiguration": {"Status": "DISABLED"},
        "DeliveryStreamType": "DirectPut",
        "VersionId": "1",
        "Source": {"DirectPutSourceDescription": {}},
        "Destinations": [
            {
                "DestinationId": "destinationId-000000000001",
                "S3DestinationDescription": S3_DESCRIPTION,
                "ExtendedS3DestinationDescription": dict(S3_DESCRIPTION, S3BackupMode="Disabled"),
            }
        ],
        "HasMoreDestinations": False,
    }


def test_errors(fh):
    name = make(fh)
    with pytest.raises(fh.exceptions.ResourceInUseException) as e:
        fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=S3)
    assert error_of(e) == ("ResourceInUseException", f"Firehose {name} under accountId {ACCOUNT} already exists", 400)
    with pytest.raises(fh.exceptions.ResourceNotFoundException) as e:
        fh.describe_delivery_stream(DeliveryStreamName="missing")
    assert error_of(e) == ("ResourceNotFoundException", f"Firehose missing not found under account {ACCOUNT}.", 400)
    with pytest.raises(fh.exceptions.InvalidArgumentException) as e:
        fh.create_delivery_stream(DeliveryStreamName=unique("fh"))
    assert error_of(e)[0] == "InvalidArgumentException"
    with pytest.raises(fh.exceptions.ClientError) as e:
        fh.create_delivery_stream(DeliveryStreamName="bad name!", ExtendedS3DestinationConfiguration=S3)
    assert error_of(e) == (
        "ValidationException",
        "1 validation error detected: Value 'bad name!' at 'deliveryStreamName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        400,
    )


def test_every_destination_type_is_stored_and_described(fh):
    s3c = {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::b"}
    configs = {
        "RedshiftDestinationConfiguration": {
            "RoleARN": ROLE,
            "ClusterJDBCURL": "jdbc:redshift://c.abc.us-east-1.redshift.amazonaws.com:5439/dev",
            "CopyCommand": {"DataTableName": "t"},
            "Username": "u",
            "Password": "secret-password",
            "S3Configuration": s3c,
        },
        "HttpEndpointDestinationConfiguration": {
            "EndpointConfiguration": {"Url": "https://example.com/ingest", "Name": "e", "AccessKey": "k"},
            "S3Configuration": s3c,
        },
        "AmazonopensearchserviceDestinationConfiguration": {"RoleARN": ROLE, "IndexName": "i", "DomainARN": "arn:aws:es:us-east-1:000000000000:domain/dom", "S3Configuration": s3c},
        "ElasticsearchDestinationConfiguration": {"RoleARN": ROLE, "IndexName": "i", "DomainARN": "arn:aws:es:us-east-1:000000000000:domain/dom", "S3Configuration": s3c},
        "SplunkDestinationConfiguration": {"HECEndpoint": "https://splunk:8088", "HECEndpointType": "Raw", "HECToken": "t", "S3Configuration": s3c},
        "AmazonOpenSearchServerlessDestinationConfiguration": {"RoleARN": ROLE, "IndexName": "i", "CollectionEndpoint": "https://c.aoss.amazonaws.com", "S3Configuration": s3c},
        "SnowflakeDestinationConfiguration": {"AccountUrl": "https://acct.snowflakecomputing.com", "Database": "d", "Schema": "s", "Table": "t", "RoleARN": ROLE, "S3Configuration": s3c, "User": "u", "PrivateKey": "A" * 256},
        "IcebergDestinationConfiguration": {"RoleARN": ROLE, "CatalogConfiguration": {"CatalogARN": f"arn:aws:glue:us-east-1:{ACCOUNT}:catalog"}, "S3Configuration": s3c},
    }
    for member, config in configs.items():
        name = unique("fh")
        fh.create_delivery_stream(DeliveryStreamName=name, **{member: config})
        d = wait_status(fh, name)
        dest = d["Destinations"][0]
        kind = member.replace("Configuration", "Description")
        assert set(dest) == {"DestinationId", kind}, member
        desc = dest[kind]
        assert desc["S3DestinationDescription"]["BucketARN"] == "arn:aws:s3:::b"
        assert "Password" not in desc and "PrivateKey" not in desc
        if "EndpointConfiguration" in desc:
            assert desc["EndpointConfiguration"] == {"Url": "https://example.com/ingest", "Name": "e"}
        fh.delete_delivery_stream(DeliveryStreamName=name)


def test_update_destination_versions_and_merge(fh):
    name = make(fh)
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    dest = d["Destinations"][0]["DestinationId"]
    with pytest.raises(fh.exceptions.ConcurrentModificationException) as e:
        fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="5", DestinationId=dest,
                              ExtendedS3DestinationUpdate={"Prefix": "x/"})
    assert error_of(e)[0] == "ConcurrentModificationException"
    fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1", DestinationId=dest,
                          ExtendedS3DestinationUpdate={"Prefix": "x/", "BufferingHints": {"IntervalInSeconds": 60}, "CompressionFormat": "GZIP"})
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["VersionId"] == "2"
    assert "LastUpdateTimestamp" in d
    e3 = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert e3["Prefix"] == "x/"
    assert e3["BufferingHints"] == {"SizeInMBs": 5, "IntervalInSeconds": 60}
    assert e3["CompressionFormat"] == "GZIP"
    assert e3["BucketARN"] == "arn:aws:s3:::bucket"
    # Another type replaces the destination.
    fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="2", DestinationId=dest,
                          HttpEndpointDestinationUpdate={"EndpointConfiguration": {"Url": "https://h.example.com"},
                                                         "S3Update": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::other"}})
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["VersionId"] == "3"
    assert list(d["Destinations"][0]) == ["DestinationId", "HttpEndpointDestinationDescription"]


def test_list_pagination_and_type_filter(server):
    fh = server.client("firehose", region_name="eu-west-3")
    names = sorted(unique("ls") for _ in range(5))
    for n in names:
        fh.create_delivery_stream(DeliveryStreamName=n, ExtendedS3DestinationConfiguration=S3)
    out = fh.list_delivery_streams(Limit=2)
    assert out == {"DeliveryStreamNames": names[:2], "HasMoreDeliveryStreams": True, "ResponseMetadata": out["ResponseMetadata"]}
    out = fh.list_delivery_streams(Limit=2, ExclusiveStartDeliveryStreamName=names[1])
    assert out["DeliveryStreamNames"] == names[2:4] and out["HasMoreDeliveryStreams"]
    out = fh.list_delivery_streams(ExclusiveStartDeliveryStreamName=names[3])
    assert out["DeliveryStreamNames"] == names[4:] and not out["HasMoreDeliveryStreams"]
    assert fh.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource")["DeliveryStreamNames"] == []
    assert fh.list_delivery_streams(DeliveryStreamType="DirectPut")["DeliveryStreamNames"] == names


def test_tags(fh):
    name = make(fh, Tags=[{"Key": "team", "Value": "data"}])
    fh.tag_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": f"k{i:02}", "Value": str(i)} for i in range(49)])
    out = fh.list_tags_for_delivery_stream(DeliveryStreamName=name, Limit=3)
    assert out["Tags"] == [{"Key": "k00", "Value": "0"}, {"Key": "k01", "Value": "1"}, {"Key": "k02", "Value": "2"}]
    assert out["HasMoreTags"] is True
    out = fh.list_tags_for_delivery_stream(DeliveryStreamName=name, ExclusiveStartTagKey="k48")
    assert out["Tags"] == [{"Key": "team", "Value": "data"}] and out["HasMoreTags"] is False
    with pytest.raises(fh.exceptions.LimitExceededException):
        fh.tag_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": "one-more", "Value": "x"}])
    with pytest.raises(fh.exceptions.ClientError) as e:
        fh.tag_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": "aws:x", "Value": "x"}])
    assert error_of(e)[0] == "ValidationException"
    fh.untag_delivery_stream(DeliveryStreamName=name, TagKeys=["team", "absent"])
    assert len(fh.list_tags_for_delivery_stream(DeliveryStreamName=name)["Tags"]) == 49


def test_encryption_transitions(server, fh):
    name = make(fh)
    fh.start_delivery_stream_encryption(DeliveryStreamName=name, DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"})
    enc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]
    assert enc in ({"KeyType": "AWS_OWNED_CMK", "Status": "ENABLING"}, {"KeyType": "AWS_OWNED_CMK", "Status": "ENABLED"})
    server.advance_clock(1000)
    enc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]
    assert enc == {"KeyType": "AWS_OWNED_CMK", "Status": "ENABLED"}
    assert fh.put_record(DeliveryStreamName=name, Record={"Data": b"x"})["Encrypted"] is True
    fh.stop_delivery_stream_encryption(DeliveryStreamName=name)
    server.advance_clock(1000)
    enc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]
    assert enc["Status"] == "DISABLED"
    with pytest.raises(fh.exceptions.InvalidArgumentException):
        fh.start_delivery_stream_encryption(DeliveryStreamName=name, DeliveryStreamEncryptionConfigurationInput={"KeyType": "CUSTOMER_MANAGED_CMK"})


def test_put_record_and_batch_limits(fh):
    name = make(fh)
    out = fh.put_record(DeliveryStreamName=name, Record={"Data": b"hello\n"})
    assert len(out["RecordId"]) >= 56 and out["Encrypted"] is False
    out = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"r%d" % i} for i in range(500)])
    assert out["FailedPutCount"] == 0 and out["Encrypted"] is False
    assert len(out["RequestResponses"]) == 500 and len({r["RecordId"] for r in out["RequestResponses"]}) == 500
    with pytest.raises(fh.exceptions.ClientError) as e:
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"x"}] * 501)
    assert error_of(e)[0] == "ValidationException"
    assert "Member must have length less than or equal to 500" in error_of(e)[1]
    with pytest.raises(fh.exceptions.ClientError) as e:
        fh.put_record(DeliveryStreamName=name, Record={"Data": b"x" * 1_024_001})
    assert error_of(e)[0] == "ValidationException"
    assert "Member must have length less than or equal to 1024000" in error_of(e)[1]
    with pytest.raises(fh.exceptions.InvalidArgumentException) as e:
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"x" * 1_024_000}] * 5)
    assert error_of(e) == ("InvalidArgumentException", "Records size exceeds 4 MB limit", 400)
    with pytest.raises(fh.exceptions.ResourceNotFoundException):
        fh.put_record(DeliveryStreamName="missing", Record={"Data": b"x"})


def test_kinesis_stream_as_source(server, fh, stream):
    kinesis = server.client()
    sname = stream(1)
    sarn = kinesis.describe_stream_summary(StreamName=sname)["StreamDescriptionSummary"]["StreamARN"]
    name = unique("fh")
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
                              KinesisStreamSourceConfiguration={"KinesisStreamARN": sarn, "RoleARN": ROLE},
                              ExtendedS3DestinationConfiguration=S3)
    d = wait_status(fh, name)
    assert d["DeliveryStreamType"] == "KinesisStreamAsSource"
    src = d["Source"]["KinesisStreamSourceDescription"]
    assert src["KinesisStreamARN"] == sarn and src["RoleARN"] == ROLE
    assert isinstance(src["DeliveryStartTimestamp"], datetime.datetime)
    msg = "This operation is not permitted on KinesisStreamAsSource delivery stream type."
    with pytest.raises(fh.exceptions.InvalidArgumentException) as e:
        fh.put_record(DeliveryStreamName=name, Record={"Data": b"x"})
    assert error_of(e) == ("InvalidArgumentException", msg, 400)
    with pytest.raises(fh.exceptions.InvalidArgumentException) as e:
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"x"}])
    assert error_of(e) == ("InvalidArgumentException", msg, 400)
    assert fh.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource")["DeliveryStreamNames"] == [name]
    missing = sarn.rsplit("/", 1)[0] + "/no-such-stream"
    with pytest.raises(fh.exceptions.InvalidArgumentException):
        fh.create_delivery_stream(DeliveryStreamName=unique("fh"), DeliveryStreamType="KinesisStreamAsSource",
                                  KinesisStreamSourceConfiguration={"KinesisStreamARN": missing, "RoleARN": ROLE},
                                  ExtendedS3DestinationConfiguration=S3)
    fh.delete_delivery_stream(DeliveryStreamName=name)


def test_delete(server, fh):
    name = make(fh)
    assert fh.delete_delivery_stream(DeliveryStreamName=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["DeliveryStreamStatus"] in ("DELETING",)
    server.advance_clock(1000)
    with pytest.raises(fh.exceptions.ResourceNotFoundException):
        fh.describe_delivery_stream(DeliveryStreamName=name)


def test_restart_keeps_streams_and_buffered_records(start_server):
    s = start_server()
    fh = s.client("firehose")
    name = make(fh, Tags=[{"Key": "a", "Value": "b"}])
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"r%d" % i} for i in range(100)])
    before = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    s.stop(signal.SIGKILL)
    s.start()
    fh = s.client("firehose")
    after = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    # The destination bucket does not exist in the embedded S3: delivery
    # says so (once its delivery task has tried) and keeps the records
    # buffered.
    for d in (before, after):
        f = d.pop("FailureDescription", None)
        assert f is None or (f["Type"] == "UNKNOWN_ERROR" and "S3.NoSuchBucket" in f["Details"]), f
    assert after == before
    assert fh.list_tags_for_delivery_stream(DeliveryStreamName=name)["Tags"] == [{"Key": "a", "Value": "b"}]
    # The acknowledged records are in the buffer log: 100 frames' worth of data on disk.
    import pathlib
    data = b"".join(p.read_bytes() for p in pathlib.Path(s.data_dir, "firehose").rglob("*") if p.is_file())
    assert all((b"r%d" % i) in data for i in range(100))


def test_quickstart_with_the_cli(server):
    name = unique("cli")
    out = aws_cli(server.endpoint, "firehose", "create-delivery-stream", "--delivery-stream-name", name,
                  "--extended-s3-destination-configuration", f"RoleARN={ROLE},BucketARN=arn:aws:s3:::bucket")
    assert out["DeliveryStreamARN"].endswith(f"deliverystream/{name}")
    server.advance_clock(1000)
    out = aws_cli(server.endpoint, "firehose", "put-record", "--delivery-stream-name", name, "--record", "Data=aGVsbG8K")
    assert len(out["RecordId"]) >= 56
    out = aws_cli(server.endpoint, "firehose", "describe-delivery-stream", "--delivery-stream-name", name)
    assert out["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE"
    assert name in aws_cli(server.endpoint, "firehose", "list-delivery-streams")["DeliveryStreamNames"]
