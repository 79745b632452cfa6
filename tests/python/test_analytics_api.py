"""Kinesis Data Analytics (SQL applications) control plane with boto3's
`kinesisanalytics` client: every operation, the descriptions AWS returns,
version checks, the status machine and its errors, and persistence across
a restart."""
import time

import botocore.exceptions
import pytest

from conftest import ACCOUNT, REGION, Server, aws_cli, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/analytics"
STREAM = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks"
FIREHOSE = f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/out"
LOGS = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:app:log-stream:s"
CODE = 'CREATE OR REPLACE STREAM "DEST" (ticker VARCHAR(4), price DOUBLE);'

SCHEMA = {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordEncoding": "UTF-8",
    "RecordColumns": [
        {"Name": "ticker", "Mapping": "$.ticker", "SqlType": "VARCHAR(4)"},
        {"Name": "price", "Mapping": "$.price", "SqlType": "DOUBLE"},
    ],
}
INPUT = {
    "NamePrefix": "SOURCE_SQL_STREAM",
    "KinesisStreamsInput": {"ResourceARN": STREAM, "RoleARN": ROLE},
    "InputParallelism": {"Count": 2},
    "InputSchema": SCHEMA,
}
OUTPUT = {
    "Name": "DEST",
    "KinesisFirehoseOutput": {"ResourceARN": FIREHOSE, "RoleARN": ROLE},
    "DestinationSchema": {"RecordFormatType": "CSV"},
}


@pytest.fixture(scope="module")
def srv():
    s = Server("--status-delay-ms", "0").start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture(scope="module")
def ka(srv):
    return srv.client("kinesisanalytics")


def err(call, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kw)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def detail(ka, name):
    return ka.describe_application(ApplicationName=name)["ApplicationDetail"]


def test_create_and_describe(ka):
    name = unique("app")
    out = ka.create_application(
        ApplicationName=name,
        ApplicationDescription="clicks per ticker",
        Inputs=[INPUT],
        Outputs=[OUTPUT],
        CloudWatchLoggingOptions=[{"LogStreamARN": LOGS, "RoleARN": ROLE}],
        ApplicationCode=CODE,
        Tags=[{"Key": "team", "Value": "data"}],
    )
    arn = f"arn:aws:kinesisanalytics:{REGION}:{ACCOUNT}:application/{name}"
    assert out["ApplicationSummary"] == {"ApplicationName": name, "ApplicationARN": arn, "ApplicationStatus": "READY"}
    d = detail(ka, name)
    created = d.pop("CreateTimestamp")
    updated = d.pop("LastUpdateTimestamp")
    assert abs(created.timestamp() - time.time()) < 60 and updated == created
    assert d == {
        "ApplicationName": name,
        "ApplicationDescription": "clicks per ticker",
        "ApplicationARN": arn,
        "ApplicationStatus": "READY",
        "InputDescriptions": [{
            "InputId": "1.1",
            "NamePrefix": "SOURCE_SQL_STREAM",
            "InAppStreamNames": ["SOURCE_SQL_STREAM_001", "SOURCE_SQL_STREAM_002"],
            "KinesisStreamsInputDescription": {"ResourceARN": STREAM, "RoleARN": ROLE},
            "InputSchema": SCHEMA,
            "InputParallelism": {"Count": 2},
            "InputStartingPositionConfiguration": {},
        }],
        "OutputDescriptions": [{
            "OutputId": "1.1",
            "Name": "DEST",
            "KinesisFirehoseOutputDescription": {"ResourceARN": FIREHOSE, "RoleARN": ROLE},
            "DestinationSchema": {"RecordFormatType": "CSV"},
        }],
        "ReferenceDataSourceDescriptions": [],
        "CloudWatchLoggingOptionDescriptions": [{"CloudWatchLoggingOptionId": "1.1", "LogStreamARN": LOGS, "RoleARN": ROLE}],
        "ApplicationCode": CODE,
        "ApplicationVersionId": 1,
    }
    assert ka.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "data"}]
    assert err(ka.create_application, ApplicationName=name)[0] == "ResourceInUseException"


def test_bad_requests(ka):
    assert err(ka.describe_application, ApplicationName="nope")[0] == "ResourceNotFoundException"
    code, msg = err(ka.create_application, ApplicationName="bad name!")
    assert code == "ValidationException" and "applicationName" in msg, msg
    both = dict(INPUT, KinesisFirehoseInput={"ResourceARN": FIREHOSE, "RoleARN": ROLE})
    assert err(ka.create_application, ApplicationName=unique("app"), Inputs=[both])[0] == "InvalidArgumentException"
    assert err(ka.create_application, ApplicationName=unique("app"), Inputs=[INPUT, INPUT])[0] == "InvalidArgumentException"
    code, msg = err(ka.create_application, ApplicationName=unique("app"), ApplicationCode="CREATE OR REPLACE STREAM s (a INT);\nSELEC 1")
    assert code == "CodeValidationException"
    assert msg.startswith("SQL error at line 2, column 1: Expected CREATE OR REPLACE STREAM or CREATE OR REPLACE PUMP"), msg
    code, msg = err(ka.create_application, ApplicationName=unique("app"),
                    ApplicationCode='CREATE OR REPLACE PUMP p AS INSERT INTO "D" SELECT STREAM a FROM "S" WHERE')
    assert code == "CodeValidationException" and msg.startswith("SQL error at line 1, column "), msg


def test_list_pagination(ka, srv):
    other = srv.client("kinesisanalytics", region_name="eu-west-1")
    names = sorted(unique("lst") for _ in range(3))
    for n in names:
        other.create_application(ApplicationName=n)
    page = other.list_applications(Limit=2)
    assert [s["ApplicationName"] for s in page["ApplicationSummaries"]] == names[:2]
    assert page["HasMoreApplications"] is True
    rest = other.list_applications(ExclusiveStartApplicationName=names[1])
    assert rest == {"ApplicationSummaries": [{"ApplicationName": names[2], "ApplicationARN": f"arn:aws:kinesisanalytics:eu-west-1:{ACCOUNT}:application/{names[2]}", "ApplicationStatus": "READY"}],
                    "HasMoreApplications": False, "ResponseMetadata": rest["ResponseMetadata"]}
    assert all(s["ApplicationName"] not in names for s in ka.list_applications()["ApplicationSummaries"])


def test_pieces_and_versions(ka):
    name = unique("app")
    ka.create_application(ApplicationName=name)
    # Every change needs the current version and makes a new one.
    code, msg = err(ka.add_application_input, ApplicationName=name, CurrentApplicationVersionId=7, Input=INPUT)
    assert code == "ConcurrentModificationException", msg
    ka.add_application_input(ApplicationName=name, CurrentApplicationVersionId=1, Input=INPUT)
    ka.add_application_output(ApplicationName=name, CurrentApplicationVersionId=2, Output=OUTPUT)
    second = dict(OUTPUT, Name="ERRORS", KinesisFirehoseOutput=None, LambdaOutput={"ResourceARN": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f", "RoleARN": ROLE})
    del second["KinesisFirehoseOutput"]
    ka.add_application_output(ApplicationName=name, CurrentApplicationVersionId=3, Output=second)
    assert err(ka.add_application_output, ApplicationName=name, CurrentApplicationVersionId=4, Output=OUTPUT)[0] == "InvalidArgumentException"
    ref = {
        "TableName": "COMPANY",
        "S3ReferenceDataSource": {"BucketARN": "arn:aws:s3:::refs", "FileKey": "companies.csv", "ReferenceRoleARN": ROLE},
        "ReferenceSchema": {"RecordFormat": {"RecordFormatType": "CSV", "MappingParameters": {"CSVMappingParameters": {"RecordRowDelimiter": "\n", "RecordColumnDelimiter": ","}}},
                            "RecordColumns": [{"Name": "ticker", "SqlType": "VARCHAR(4)"}, {"Name": "name", "SqlType": "VARCHAR(64)"}]},
    }
    ka.add_application_reference_data_source(ApplicationName=name, CurrentApplicationVersionId=4, ReferenceDataSource=ref)
    lam = {"InputLambdaProcessor": {"ResourceARN": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:pre", "RoleARN": ROLE}}
    ka.add_application_input_processing_configuration(ApplicationName=name, CurrentApplicationVersionId=5, InputId="1.1", InputProcessingConfiguration=lam)
    assert err(ka.add_application_input_processing_configuration, ApplicationName=name, CurrentApplicationVersionId=6,
               InputId="9.1", InputProcessingConfiguration=lam)[0] == "ResourceNotFoundException"
    ka.add_application_cloud_watch_logging_option(ApplicationName=name, CurrentApplicationVersionId=6,
                                                  CloudWatchLoggingOption={"LogStreamARN": LOGS, "RoleARN": ROLE})
    d = detail(ka, name)
    assert d["ApplicationVersionId"] == 7
    assert [o["OutputId"] for o in d["OutputDescriptions"]] == ["1.1", "2.1"]
    assert d["OutputDescriptions"][1]["LambdaOutputDescription"]["RoleARN"] == ROLE
    assert d["ReferenceDataSourceDescriptions"] == [{
        "ReferenceId": "1.1",
        "TableName": "COMPANY",
        "S3ReferenceDataSourceDescription": {"BucketARN": "arn:aws:s3:::refs", "FileKey": "companies.csv", "ReferenceRoleARN": ROLE},
        "ReferenceSchema": ref["ReferenceSchema"],
    }]
    assert d["InputDescriptions"][0]["InputProcessingConfigurationDescription"] == {
        "InputLambdaProcessorDescription": {"ResourceARN": lam["InputLambdaProcessor"]["ResourceARN"], "RoleARN": ROLE}}

    # UpdateApplication merges member by member and can switch the source.
    ka.update_application(ApplicationName=name, CurrentApplicationVersionId=7, ApplicationUpdate={
        "ApplicationCodeUpdate": CODE,
        "InputUpdates": [{"InputId": "1.1", "NamePrefixUpdate": "IN",
                          "KinesisFirehoseInputUpdate": {"ResourceARNUpdate": FIREHOSE, "RoleARNUpdate": ROLE},
                          "InputParallelismUpdate": {"CountUpdate": 1}}],
        "OutputUpdates": [{"OutputId": "1.1", "NameUpdate": "DEST2", "DestinationSchemaUpdate": {"RecordFormatType": "JSON"}}],
        "ReferenceDataSourceUpdates": [{"ReferenceId": "1.1", "TableNameUpdate": "COMPANIES",
                                        "S3ReferenceDataSourceUpdate": {"FileKeyUpdate": "v2.csv"}}],
    })
    d = detail(ka, name)
    assert d["ApplicationVersionId"] == 8 and d["ApplicationCode"] == CODE
    i = d["InputDescriptions"][0]
    assert i["NamePrefix"] == "IN" and i["InAppStreamNames"] == ["IN_001"]
    assert "KinesisStreamsInputDescription" not in i
    assert i["KinesisFirehoseInputDescription"] == {"ResourceARN": FIREHOSE, "RoleARN": ROLE}
    assert i["InputSchema"] == SCHEMA
    assert d["OutputDescriptions"][0]["Name"] == "DEST2"
    assert d["OutputDescriptions"][0]["DestinationSchema"] == {"RecordFormatType": "JSON"}
    r = d["ReferenceDataSourceDescriptions"][0]
    assert r["TableName"] == "COMPANIES"
    assert r["S3ReferenceDataSourceDescription"] == {"BucketARN": "arn:aws:s3:::refs", "FileKey": "v2.csv", "ReferenceRoleARN": ROLE}
    assert err(ka.update_application, ApplicationName=name, CurrentApplicationVersionId=8,
               ApplicationUpdate={"OutputUpdates": [{"OutputId": "7.1", "NameUpdate": "X"}]})[0] == "ResourceNotFoundException"

    # Deletions by id.
    ka.delete_application_output(ApplicationName=name, CurrentApplicationVersionId=8, OutputId="2.1")
    ka.delete_application_reference_data_source(ApplicationName=name, CurrentApplicationVersionId=9, ReferenceId="1.1")
    ka.delete_application_input_processing_configuration(ApplicationName=name, CurrentApplicationVersionId=10, InputId="1.1")
    ka.delete_application_cloud_watch_logging_option(ApplicationName=name, CurrentApplicationVersionId=11, CloudWatchLoggingOptionId="1.1")
    d = detail(ka, name)
    assert d["ApplicationVersionId"] == 12
    assert [o["OutputId"] for o in d["OutputDescriptions"]] == ["1.1"]
    assert d["ReferenceDataSourceDescriptions"] == [] and d["CloudWatchLoggingOptionDescriptions"] == []
    assert "InputProcessingConfigurationDescription" not in d["InputDescriptions"][0]
    # Ids are never reused.
    ka.add_application_output(ApplicationName=name, CurrentApplicationVersionId=12, Output=second)
    assert [o["OutputId"] for o in detail(ka, name)["OutputDescriptions"]] == ["1.1", "3.1"]


def test_start_stop_delete(ka):
    name = unique("app")
    assert err(ka.start_application, ApplicationName=name,
               InputConfigurations=[{"Id": "1.1", "InputStartingPositionConfiguration": {"InputStartingPosition": "NOW"}}])[0] == "ResourceNotFoundException"
    ka.create_application(ApplicationName=name, ApplicationCode=CODE)
    assert err(ka.start_application, ApplicationName=name,
               InputConfigurations=[{"Id": "1.1", "InputStartingPositionConfiguration": {}}])[0] == "InvalidApplicationConfigurationException"
    ka.add_application_input(ApplicationName=name, CurrentApplicationVersionId=1, Input=INPUT)
    assert err(ka.start_application, ApplicationName=name,
               InputConfigurations=[{"Id": "2.1", "InputStartingPositionConfiguration": {}}])[0] == "InvalidArgumentException"
    ka.start_application(ApplicationName=name, InputConfigurations=[
        {"Id": "1.1", "InputStartingPositionConfiguration": {"InputStartingPosition": "TRIM_HORIZON"}}])
    d = detail(ka, name)
    assert d["ApplicationStatus"] == "RUNNING"
    assert d["InputDescriptions"][0]["InputStartingPositionConfiguration"] == {"InputStartingPosition": "TRIM_HORIZON"}
    assert d["ApplicationVersionId"] == 2
    assert err(ka.start_application, ApplicationName=name,
               InputConfigurations=[{"Id": "1.1", "InputStartingPositionConfiguration": {}}])[0] == "ResourceInUseException"
    assert err(ka.update_application, ApplicationName=name, CurrentApplicationVersionId=2,
               ApplicationUpdate={"ApplicationCodeUpdate": "CREATE PUMP"})[0] == "CodeValidationException"
    # Configuration changes are allowed while running.
    ka.update_application(ApplicationName=name, CurrentApplicationVersionId=2, ApplicationUpdate={"ApplicationCodeUpdate": CODE + "\n"})
    ka.stop_application(ApplicationName=name)
    assert detail(ka, name)["ApplicationStatus"] == "READY"
    ka.stop_application(ApplicationName=name)

    created = detail(ka, name)["CreateTimestamp"]
    from datetime import timedelta
    assert err(ka.delete_application, ApplicationName=name, CreateTimestamp=created + timedelta(seconds=5))[0] == "ResourceNotFoundException"
    ka.delete_application(ApplicationName=name, CreateTimestamp=created)
    assert err(ka.describe_application, ApplicationName=name)[0] == "ResourceNotFoundException"


def test_tags(ka):
    name = unique("app")
    arn = ka.create_application(ApplicationName=name)["ApplicationSummary"]["ApplicationARN"]
    ka.tag_resource(ResourceARN=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    ka.untag_resource(ResourceARN=arn, TagKeys=["a", "zz"])
    assert ka.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    assert err(ka.tag_resource, ResourceARN=arn, Tags=many)[0] == "TooManyTagsException"
    missing = arn.replace(name, "missing")
    assert err(ka.list_tags_for_resource, ResourceARN=missing)[0] == "ResourceNotFoundException"


def test_applications_survive_a_restart(start_server):
    s = start_server("--status-delay-ms", "0")
    ka = s.client("kinesisanalytics")
    ka.create_application(ApplicationName="kept", Inputs=[INPUT], Outputs=[OUTPUT], ApplicationCode=CODE)
    ka.start_application(ApplicationName="kept", InputConfigurations=[
        {"Id": "1.1", "InputStartingPositionConfiguration": {"InputStartingPosition": "NOW"}}])
    before = detail(ka, "kept")
    s.stop()
    again = Server("--status-delay-ms", "0")
    again.data_dir = s.data_dir
    again.start()
    try:
        assert detail(again.client("kinesisanalytics"), "kept") == before
    finally:
        again.stop()


def test_quickstart_with_the_cli(srv):
    """The README's quickstart, with the AWS CLI."""
    name = unique("cli")
    out = aws_cli(srv.endpoint, "kinesisanalytics", "create-application", "--application-name", name,
                  "--application-code", 'CREATE OR REPLACE STREAM "DEST" (page VARCHAR(64));')
    assert out["ApplicationSummary"]["ApplicationStatus"] == "READY"
    d = aws_cli(srv.endpoint, "kinesisanalytics", "describe-application", "--application-name", name)["ApplicationDetail"]
    assert d["ApplicationCode"] == 'CREATE OR REPLACE STREAM "DEST" (page VARCHAR(64));'
    assert d["ApplicationVersionId"] == 1
    bad = aws_cli(srv.endpoint, "kinesisanalytics", "create-application", "--application-name", unique("cli"),
                  "--application-code", "CREATE PUMP", check=False)
    assert bad.returncode != 0 and "CodeValidationException" in bad.stderr


def test_discover_input_schema(ka, srv):
    import json
    import threading
    s3 = srv.client("s3")
    kinesis = srv.client("kinesis")
    bucket = unique("disc").lower()
    s3.create_bucket(Bucket=bucket)
    lines = [{"ticker": "QXZ", "price": 12.5, "n": 3, "user": {"id": 7}},
             {"ticker": "AMZNX", "price": 4, "n": 5000000000, "user": {"id": 8}, "ok": True}]
    s3.put_object(Bucket=bucket, Key="sample.json", Body="\n".join(json.dumps(x) for x in lines).encode())
    out = ka.discover_input_schema(S3Configuration={"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", "FileKey": "sample.json"})
    assert out["InputSchema"] == {
        "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
        "RecordEncoding": "UTF-8",
        # Columns in the order the records name them.
        "RecordColumns": [
            {"Name": "ticker", "Mapping": "$.ticker", "SqlType": "VARCHAR(8)"},
            {"Name": "price", "Mapping": "$.price", "SqlType": "DOUBLE"},
            {"Name": "n", "Mapping": "$.n", "SqlType": "BIGINT"},
            {"Name": "user_id", "Mapping": "$.user.id", "SqlType": "INTEGER"},
            {"Name": "ok", "Mapping": "$.ok", "SqlType": "BOOLEAN"},
        ],
    }
    assert out["ParsedInputRecords"] == [["QXZ", "12.5", "3", "7", ""], ["AMZNX", "4", "5000000000", "8", "true"]]
    assert out["RawInputRecords"] == [json.dumps(x) for x in lines]

    s3.put_object(Bucket=bucket, Key="sample.csv", Body=b"a|1|2.5\nbcd|2|3\n")
    out = ka.discover_input_schema(S3Configuration={"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", "FileKey": "sample.csv"})
    assert out["InputSchema"]["RecordFormat"] == {"RecordFormatType": "CSV", "MappingParameters": {
        "CSVMappingParameters": {"RecordRowDelimiter": "\n", "RecordColumnDelimiter": "|"}}}
    assert [(c["Name"], c["SqlType"]) for c in out["InputSchema"]["RecordColumns"]] == [("COL1", "VARCHAR(4)"), ("COL2", "INTEGER"), ("COL3", "DOUBLE")]
    code, _ = err(ka.discover_input_schema, S3Configuration={"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", "FileKey": "missing"})
    assert code == "ResourceNotFoundException"

    # A stream: TRIM_HORIZON reads what is there; NOW waits for new records.
    name = unique("disc")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    srv.advance_clock(1000)
    arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"
    code, msg = err(ka.discover_input_schema, ResourceARN=arn, RoleARN=ROLE,
                    InputStartingPositionConfiguration={"InputStartingPosition": "TRIM_HORIZON"})
    assert code == "UnableToDetectSchemaException", msg
    for x in lines:
        kinesis.put_record(StreamName=name, Data=json.dumps(x).encode(), PartitionKey="k")
    out = ka.discover_input_schema(ResourceARN=arn, RoleARN=ROLE, InputStartingPositionConfiguration={"InputStartingPosition": "TRIM_HORIZON"})
    assert [c["Name"] for c in out["InputSchema"]["RecordColumns"]] == ["ticker", "price", "n", "user_id", "ok"]
    later = threading.Timer(0.5, lambda: kinesis.put_record(StreamName=name, Data=b'{"fresh": 1}', PartitionKey="k"))
    later.start()
    out = ka.discover_input_schema(ResourceARN=arn, RoleARN=ROLE, InputStartingPositionConfiguration={"InputStartingPosition": "NOW"})
    later.join()
    assert out["InputSchema"]["RecordColumns"] == [{"Name": "fresh", "Mapping": "$.fresh", "SqlType": "INTEGER"}]
    assert out["RawInputRecords"] == ['{"fresh": 1}']
    assert err(ka.discover_input_schema, ResourceARN=f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/nope", RoleARN=ROLE,
               InputStartingPositionConfiguration={"InputStartingPosition": "NOW"})[0] == "ResourceNotFoundException"
    assert err(ka.discover_input_schema, ResourceARN=f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/x", RoleARN=ROLE,
               InputStartingPositionConfiguration={"InputStartingPosition": "NOW"})[0] == "ResourceNotFoundException"
