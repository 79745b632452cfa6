"""The Glue Data Catalog operations Riffle serves (databases, tables and
table versions) with boto3's `glue` client: whole responses and AWS's
error types."""
import datetime

import pytest

from conftest import ACCOUNT, error_of, unique


@pytest.fixture(scope="module")
def glue(server):
    return server.client("glue")


COLUMNS = [{"Name": "id", "Type": "int"}, {"Name": "Name", "Type": "string"}]


def table_input(name, columns=COLUMNS, **kw):
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet"},
        "StorageDescriptor": {
            "Columns": columns,
            "Location": "s3://bucket/data/",
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        },
        **kw,
    }


def recent(t):
    now = datetime.datetime.now(datetime.timezone.utc)
    return abs((now - t).total_seconds()) < 60


def test_database_lifecycle(glue):
    name = unique("db").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": name.upper(), "Description": "events", "Parameters": {"k": "v"}})
    db = glue.get_database(Name=name)["Database"]
    assert recent(db.pop("CreateTime"))
    assert db == {
        "Name": name,
        "Description": "events",
        "Parameters": {"k": "v"},
        "CreateTableDefaultPermissions": [
            {"Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}, "Permissions": ["ALL"]}
        ],
        "CatalogId": ACCOUNT,
    }
    names = [d["Name"] for d in glue.get_databases()["DatabaseList"]]
    assert name in names
    with pytest.raises(glue.exceptions.AlreadyExistsException) as e:
        glue.create_database(DatabaseInput={"Name": name})
    assert error_of(e) == ("AlreadyExistsException", "Database already exists.", 400)
    glue.delete_database(Name=name)
    with pytest.raises(glue.exceptions.EntityNotFoundException) as e:
        glue.get_database(Name=name)
    assert error_of(e) == ("EntityNotFoundException", f"Database {name} not found.", 400)
    with pytest.raises(glue.exceptions.EntityNotFoundException) as e:
        glue.delete_database(Name=name)
    assert error_of(e) == ("EntityNotFoundException", f"Database {name} not found.", 400)


def test_get_databases_pages(glue):
    made = sorted(unique("pg").replace("-", "_") for _ in range(3))
    for n in made:
        glue.create_database(DatabaseInput={"Name": n})
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = glue.get_databases(MaxResults=1, **kw)
        assert len(page["DatabaseList"]) <= 1
        seen += [d["Name"] for d in page["DatabaseList"]]
        token = page.get("NextToken")
        if not token:
            break
    assert [n for n in seen if n in made] == made
    assert len(seen) == len(set(seen))
    for n in made:
        glue.delete_database(Name=n)


def test_table_lifecycle_and_versions(glue):
    db = unique("db").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": db})
    glue.create_table(DatabaseName=db, TableInput=table_input("Events", Description="v0"))
    t = glue.get_table(DatabaseName=db, Name="events")["Table"]
    assert recent(t.pop("CreateTime")) and recent(t.pop("UpdateTime"))
    assert t == {
        "Name": "events",
        "DatabaseName": db,
        "Description": "v0",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet"},
        "StorageDescriptor": {
            "Columns": [{"Name": "id", "Type": "int"}, {"Name": "name", "Type": "string"}],
            "Location": "s3://bucket/data/",
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        },
        "CreatedBy": f"arn:aws:iam::{ACCOUNT}:root",
        "IsRegisteredWithLakeFormation": False,
        "CatalogId": ACCOUNT,
        "VersionId": "0",
    }
    with pytest.raises(glue.exceptions.AlreadyExistsException) as e:
        glue.create_table(DatabaseName=db, TableInput=table_input("events"))
    assert error_of(e) == ("AlreadyExistsException", "Table already exists.", 400)

    glue.update_table(DatabaseName=db, TableInput=table_input("events", Description="v1"))
    glue.update_table(DatabaseName=db, TableInput=table_input("events", Description="v2"))
    assert glue.get_table(DatabaseName=db, Name="events")["Table"]["VersionId"] == "2"
    v1 = glue.get_table_version(DatabaseName=db, TableName="events", VersionId="1")["TableVersion"]
    assert (v1["VersionId"], v1["Table"]["Description"], v1["Table"]["VersionId"]) == ("1", "v1", "1")
    latest = glue.get_table_version(DatabaseName=db, TableName="events")["TableVersion"]
    assert latest["VersionId"] == "2"
    versions = glue.get_table_versions(DatabaseName=db, TableName="events")["TableVersions"]
    assert [(v["VersionId"], v["Table"]["Description"]) for v in versions] == [("2", "v2"), ("1", "v1"), ("0", "v0")]
    with pytest.raises(glue.exceptions.EntityNotFoundException) as e:
        glue.get_table_version(DatabaseName=db, TableName="events", VersionId="7")
    assert error_of(e) == ("EntityNotFoundException", "Version 7 of table events not found.", 400)
    with pytest.raises(glue.exceptions.InvalidInputException) as e:
        glue.get_table_version(DatabaseName=db, TableName="events", VersionId="x")
    assert error_of(e) == ("InvalidInputException", "Invalid version id: x", 400)
    with pytest.raises(glue.exceptions.ConcurrentModificationException) as e:
        glue.update_table(DatabaseName=db, TableInput=table_input("events"), VersionId="0")
    assert error_of(e)[0] == "ConcurrentModificationException"

    glue.create_table(DatabaseName=db, TableInput=table_input("clicks"))
    glue.create_table(DatabaseName=db, TableInput=table_input("other"))
    assert [t["Name"] for t in glue.get_tables(DatabaseName=db)["TableList"]] == ["clicks", "events", "other"]
    assert [t["Name"] for t in glue.get_tables(DatabaseName=db, Expression="e*")["TableList"]] == ["events"]
    assert [t["Name"] for t in glue.get_tables(DatabaseName=db, Expression="clicks|other")["TableList"]] == ["clicks", "other"]

    glue.delete_table(DatabaseName=db, Name="events")
    with pytest.raises(glue.exceptions.EntityNotFoundException) as e:
        glue.get_table(DatabaseName=db, Name="events")
    assert error_of(e) == ("EntityNotFoundException", "Table events not found.", 400)
    with pytest.raises(glue.exceptions.EntityNotFoundException) as e:
        glue.delete_table(DatabaseName=db, Name="events")
    assert error_of(e) == ("EntityNotFoundException", "Table events not found.", 400)
    with pytest.raises(glue.exceptions.EntityNotFoundException) as e:
        glue.update_table(DatabaseName=db, TableInput=table_input("events"))
    assert error_of(e) == ("EntityNotFoundException", "Table events not found.", 400)
    with pytest.raises(glue.exceptions.EntityNotFoundException) as e:
        glue.get_table_versions(DatabaseName=db, TableName="events")
    assert error_of(e) == ("EntityNotFoundException", "Table events not found.", 400)

    # Deleting the database deletes its tables.
    glue.delete_database(Name=db)
    glue.create_database(DatabaseInput={"Name": db})
    assert glue.get_tables(DatabaseName=db)["TableList"] == []
    glue.delete_database(Name=db)


def test_tables_of_a_missing_database(glue):
    db = unique("nodb").replace("-", "_")
    for call in (
        lambda: glue.create_table(DatabaseName=db, TableInput=table_input("t")),
        lambda: glue.get_table(DatabaseName=db, Name="t"),
        lambda: glue.get_tables(DatabaseName=db),
        lambda: glue.get_table_version(DatabaseName=db, TableName="t"),
        lambda: glue.get_table_versions(DatabaseName=db, TableName="t"),
        lambda: glue.update_table(DatabaseName=db, TableInput=table_input("t")),
        lambda: glue.delete_table(DatabaseName=db, Name="t"),
    ):
        with pytest.raises(glue.exceptions.EntityNotFoundException) as e:
            call()
        assert error_of(e) == ("EntityNotFoundException", f"Database {db} not found.", 400)


def test_model_validation(glue):
    with pytest.raises(glue.exceptions.ClientError) as e:
        glue.get_database(Name="x" * 300)
    code, message, status = error_of(e)
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        f"1 validation error detected: Value '{'x' * 300}' at 'name' failed to satisfy constraint: "
        "Member must have length less than or equal to 255"
    )


def test_tables_survive_a_restart(start_server):
    srv = start_server()
    glue = srv.client("glue")
    glue.create_database(DatabaseInput={"Name": "kept"})
    glue.create_table(DatabaseName="kept", TableInput=table_input("t"))
    glue.update_table(DatabaseName="kept", TableInput=table_input("t", Description="second"))
    before = glue.get_table(DatabaseName="kept", Name="t")["Table"]
    srv.stop()
    srv.start()
    glue = srv.client("glue")
    assert glue.get_table(DatabaseName="kept", Name="t")["Table"] == before
    assert [v["VersionId"] for v in glue.get_table_versions(DatabaseName="kept", TableName="t")["TableVersions"]] == ["1", "0"]


def test_tags_and_partition_indexes(glue):
    db = unique("db").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": db}, Tags={"team": "data"})
    glue.create_table(DatabaseName=db, TableInput=table_input("t"))
    db_arn = f"arn:aws:glue:us-east-1:{ACCOUNT}:database/{db}"
    table_arn = f"arn:aws:glue:us-east-1:{ACCOUNT}:table/{db}/t"
    assert glue.get_tags(ResourceArn=db_arn)["Tags"] == {"team": "data"}
    glue.tag_resource(ResourceArn=db_arn, TagsToAdd={"env": "dev"})
    glue.untag_resource(ResourceArn=db_arn, TagsToRemove=["team"])
    assert glue.get_tags(ResourceArn=db_arn)["Tags"] == {"env": "dev"}
    assert glue.get_tags(ResourceArn=table_arn)["Tags"] == {}
    glue.tag_resource(ResourceArn=table_arn, TagsToAdd={"k": "v"})
    assert glue.get_tags(ResourceArn=table_arn)["Tags"] == {"k": "v"}
    assert glue.get_partition_indexes(DatabaseName=db, TableName="t")["PartitionIndexDescriptorList"] == []
    with pytest.raises(glue.exceptions.EntityNotFoundException) as e:
        glue.get_tags(ResourceArn=f"arn:aws:glue:us-east-1:{ACCOUNT}:table/{db}/nope")
    assert error_of(e) == ("EntityNotFoundException", "Table nope not found.", 400)
    with pytest.raises(glue.exceptions.EntityNotFoundException) as e:
        glue.get_partition_indexes(DatabaseName=db, TableName="nope")
    assert error_of(e) == ("EntityNotFoundException", "Table nope not found.", 400)
    glue.delete_database(Name=db)
