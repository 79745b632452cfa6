"""Firehose record format conversion with boto3: a Glue table made with
the `glue` client, delivery streams converting JSON to Parquet (SNAPPY,
GZIP) and ORC (NONE, ZLIB, SNAPPY; every Hive type, nested), objects read
back from the embedded S3 with pyarrow and compared row by row, ORC row
indexes, statistics and bloom filters put to use by pyorc (Apache ORC's
C++ reader) seeking and skipping row groups; records that do not convert
land under `format-conversion-failed` as AWS's error records."""
import base64
import datetime
import decimal
import io
import json
import re
import time

import pyarrow.orc
import pyorc
import pyarrow.parquet
import pytest

from conftest import ACCOUNT, REGION, Server, error_of, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
UTC = datetime.timezone.utc


@pytest.fixture(scope="module")
def srv():
    s = Server("--status-delay-ms", "0").start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture(scope="module")
def fh(srv):
    return srv.client("firehose")


@pytest.fixture(scope="module")
def glue(srv):
    return srv.client("glue")


@pytest.fixture(scope="module")
def s3(srv):
    return srv.client("s3")


NESTED = [
    {"Name": "id", "Type": "bigint"},
    {"Name": "name", "Type": "string"},
    {"Name": "score", "Type": "double"},
    {"Name": "ok", "Type": "boolean"},
    {"Name": "price", "Type": "decimal(10,2)"},
    {"Name": "at", "Type": "timestamp"},
    {"Name": "day", "Type": "date"},
    {"Name": "tags", "Type": "array<string>"},
    {"Name": "attrs", "Type": "map<string,int>"},
    {"Name": "user", "Type": "struct<uid:int,email:string>"},
]

FLAT = [
    {"Name": "id", "Type": "bigint"},
    {"Name": "small", "Type": "smallint"},
    {"Name": "tiny", "Type": "tinyint"},
    {"Name": "n", "Type": "int"},
    {"Name": "name", "Type": "string"},
    {"Name": "ratio", "Type": "float"},
    {"Name": "ok", "Type": "boolean"},
    {"Name": "at", "Type": "timestamp"},
    {"Name": "day", "Type": "date"},
]


def make_table(glue, columns):
    db = unique("db").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": db})
    glue.create_table(
        DatabaseName=db,
        TableInput={"Name": "events", "StorageDescriptor": {"Columns": columns}},
    )
    return db


def conversion(db, serializer, deserializer=None, table="events"):
    return {
        "Enabled": True,
        "SchemaConfiguration": {"RoleARN": ROLE, "DatabaseName": db, "TableName": table, "Region": REGION},
        "InputFormatConfiguration": {"Deserializer": deserializer or {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": serializer},
    }


def create(fh, s3, conv, size=64, interval=0, **extra):
    name = unique("conv")
    bucket = unique("bkt")
    s3.create_bucket(Bucket=bucket)
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "data/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": size, "IntervalInSeconds": interval},
            "DataFormatConversionConfiguration": conv,
            **extra,
        },
    )
    deadline = time.time() + 5
    while fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        assert time.time() < deadline
        time.sleep(0.05)
    return name, bucket


def wait_keys(s3, bucket, prefix, n=1, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))
        if len(keys) >= n:
            return keys
        time.sleep(0.1)
    raise AssertionError(f"expected {n} objects under {bucket}/{prefix}")


def body(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def put(fh, name, docs):
    fh.put_record_batch(
        DeliveryStreamName=name,
        Records=[{"Data": d if isinstance(d, bytes) else json.dumps(d).encode()} for d in docs],
    )


NESTED_RECORDS = [
    {
        "ID": 1,
        "Name": "alice",
        "score": 1.5,
        "ok": True,
        "price": 12.34,
        "at": "2024-03-01 12:30:45.123",
        "day": "2024-03-01",
        "tags": ["a", "b"],
        "attrs": {"x": 1, "y": 2},
        "user": {"UID": 7, "email": "a@example.com"},
        "ignored": "extra keys are dropped",
    },
    {
        "id": 2,
        "name": None,
        "score": "2.25",
        "ok": "false",
        "price": "0.5",
        "at": "2024-03-01T12:30:45Z",
        "tags": [],
        "attrs": {},
        "user": {"uid": None},
    },
    {"id": 3, "at": 1709296245},
]

NESTED_ROWS = [
    {
        "id": 1,
        "name": "alice",
        "score": 1.5,
        "ok": True,
        "price": decimal.Decimal("12.34"),
        "at": datetime.datetime(2024, 3, 1, 12, 30, 45, 123000),
        "day": datetime.date(2024, 3, 1),
        "tags": ["a", "b"],
        "attrs": [("x", 1), ("y", 2)],
        "user": {"uid": 7, "email": "a@example.com"},
    },
    {
        "id": 2,
        "name": None,
        "score": 2.25,
        "ok": False,
        "price": decimal.Decimal("0.50"),
        "at": datetime.datetime(2024, 3, 1, 12, 30, 45),
        "day": None,
        "tags": [],
        "attrs": [],
        "user": {"uid": None, "email": None},
    },
    {
        "id": 3,
        "name": None,
        "score": None,
        "ok": None,
        "price": None,
        "at": datetime.datetime(2024, 3, 1, 12, 30, 45),
        "day": None,
        "tags": None,
        "attrs": None,
        "user": None,
    },
]


@pytest.mark.parametrize("compression,codec", [("SNAPPY", "SNAPPY"), ("GZIP", "GZIP")])
def test_json_to_parquet(fh, glue, s3, compression, codec):
    db = make_table(glue, NESTED)
    name, bucket = create(fh, s3, conversion(db, {"ParquetSerDe": {"Compression": compression}}))
    put(fh, name, NESTED_RECORDS)
    (key,) = wait_keys(s3, bucket, "data/")
    assert re.fullmatch(rf"data/\d{{4}}/\d\d/\d\d/\d\d/{name}-1-\d{{4}}-\d\d-\d\d-\d\d-\d\d-\d\d-{UUID}\.parquet", key), key
    f = pyarrow.parquet.ParquetFile(io.BytesIO(body(s3, bucket, key)))
    assert f.metadata.row_group(0).column(0).compression == codec
    table = f.read()
    assert table.column_names == [c["Name"] for c in NESTED]
    assert str(table.schema.field("price").type) == "decimal128(10, 2)"
    attrs = table.schema.field("attrs").type
    assert (str(attrs.key_type), str(attrs.item_type)) == ("string", "int32")
    assert table.to_pylist() == NESTED_ROWS
    desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert "FailureDescription" not in desc


def test_json_to_orc(fh, glue, s3):
    db = make_table(glue, FLAT)
    name, bucket = create(fh, s3, conversion(db, {"OrcSerDe": {"Compression": "ZLIB"}}))
    put(
        fh,
        name,
        [
            {"id": 10, "small": -300, "tiny": 7, "n": 123456, "name": "x", "ratio": 0.5, "ok": True, "at": "2024-01-02 03:04:05", "day": "2024-01-02"},
            {"id": 11},
        ],
    )
    (key,) = wait_keys(s3, bucket, "data/")
    assert key.endswith(".orc"), key
    f = pyarrow.orc.ORCFile(io.BytesIO(body(s3, bucket, key)))
    assert f.compression == "ZLIB"
    assert f.read().to_pylist() == [
        {"id": 10, "small": -300, "tiny": 7, "n": 123456, "name": "x", "ratio": 0.5, "ok": True,
         "at": datetime.datetime(2024, 1, 2, 3, 4, 5), "day": datetime.date(2024, 1, 2)},
        {"id": 11, "small": None, "tiny": None, "n": None, "name": None, "ratio": None, "ok": None, "at": None, "day": None},
    ]


def test_bad_records_go_to_format_conversion_failed(srv, fh, glue, s3):
    db = make_table(glue, FLAT)
    name, bucket = create(fh, s3, conversion(db, {"ParquetSerDe": {}}))
    bad = [b"not json", b"[1,2]", json.dumps({"id": "seven"}).encode(), json.dumps({"tiny": 300}).encode()]
    before = int(time.time() * 1000)
    put(fh, name, [{"id": 1}] + bad)
    (key,) = wait_keys(s3, bucket, "data/")
    assert pyarrow.parquet.read_table(io.BytesIO(body(s3, bucket, key)))["id"].to_pylist() == [1]
    (err_key,) = wait_keys(s3, bucket, "errors/")
    assert re.fullmatch(rf"errors/format-conversion-failed/\d{{4}}/\d\d/\d\d/\d\d/{name}-1-\d{{4}}-\d\d-\d\d-\d\d-\d\d-\d\d-{UUID}", err_key), err_key
    lines = [json.loads(line) for line in body(s3, bucket, err_key).decode().splitlines()]
    assert [base64.b64decode(d["rawData"]) for d in lines] == bad
    version = glue.get_table(DatabaseName=db, Name="events")["Table"]["VersionId"]
    messages = [
        "The record is not valid JSON: expected ident at line 1 column 2",
        "The record is not a JSON object.",
        'Column \'id\': cannot read "seven" as BigInt',
        "Column 'tiny': 300 is out of range for TinyInt",
    ]
    for d, message in zip(lines, messages):
        assert before - 5000 <= d.pop("arrivalTimestamp") <= d.pop("attemptEndingTimestamp") <= int(time.time() * 1000) + 5000
        d.pop("rawData")
        assert d == {
            "attemptsMade": 1,
            "ErrorCode": "DataFormatConversion.MalformedData",
            "ErrorMessage": message,
            "dataCatalogTable": {
                "catalogId": ACCOUNT,
                "databaseName": db,
                "tableName": "events",
                "region": REGION,
                "versionId": version,
                "catalogArn": f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog",
            },
        }


def test_missing_table_keeps_records_until_it_exists(fh, glue, s3):
    db = unique("db").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": db})
    name, bucket = create(fh, s3, conversion(db, {"ParquetSerDe": {}}, table="later"))
    put(fh, name, [{"id": 5}])
    deadline = time.time() + 10
    while True:
        desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        failure = desc["Destinations"][0]["ExtendedS3DestinationDescription"].get("FailureDescription") or desc.get("FailureDescription")
        if failure:
            break
        assert time.time() < deadline, desc
        time.sleep(0.1)
    assert failure["Details"].startswith(
        "DataFormatConversion.EntityNotFound: The specified table/database could not be found. "
        "Ensure that the table/database exists and that the values provided in the schema configuration "
        "are correct, especially with regards to casing. (Table later not found.)"
    ), failure
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    glue.create_table(DatabaseName=db, TableInput={"Name": "later", "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "int"}]}})
    (key,) = wait_keys(s3, bucket, "data/", timeout=90)
    assert pyarrow.parquet.read_table(io.BytesIO(body(s3, bucket, key))).to_pylist() == [{"id": 5}]


def test_openx_options(fh, glue, s3):
    db = make_table(glue, [{"Name": "user_id", "Type": "int"}, {"Name": "ts", "Type": "string"}, {"Name": "Name", "Type": "string"}])
    serde = {"OpenXJsonSerDe": {"ConvertDotsInJsonKeysToUnderscores": True, "CaseInsensitive": False, "ColumnToJsonKeyMappings": {"ts": "@timestamp"}}}
    name, bucket = create(fh, s3, conversion(db, {"ParquetSerDe": {}}, serde))
    put(fh, name, [{"user.id": 4, "@timestamp": "t1", "name": "lower"}, {"user.id": 5, "Name": "Upper"}])
    (key,) = wait_keys(s3, bucket, "data/")
    # Column names are lower case in Glue, so a case-sensitive match only
    # takes lower-case keys.
    assert pyarrow.parquet.read_table(io.BytesIO(body(s3, bucket, key))).to_pylist() == [
        {"user_id": 4, "ts": "t1", "name": "lower"},
        {"user_id": 5, "ts": None, "name": None},
    ]


def test_hive_timestamp_formats(fh, glue, s3):
    db = make_table(glue, [{"Name": "id", "Type": "int"}, {"Name": "at", "Type": "timestamp"}])
    serde = {"HiveJsonSerDe": {"TimestampFormats": ["millis", "dd/MM/yyyy HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ssZ"]}}
    name, bucket = create(fh, s3, conversion(db, {"ParquetSerDe": {"WriterVersion": "V2", "EnableDictionaryCompression": True}}, serde))
    put(fh, name, [
        {"id": 1, "at": 1709296245123},
        {"id": 2, "at": "01/03/2024 12:30:45"},
        {"id": 3, "at": "2024-03-01T14:30:45+0200"},
        {"id": 4, "at": "2024-03-01 12:30:45.5"},
    ])
    (key,) = wait_keys(s3, bucket, "data/")
    rows = pyarrow.parquet.read_table(io.BytesIO(body(s3, bucket, key))).to_pylist()
    assert rows == [
        {"id": 1, "at": datetime.datetime(2024, 3, 1, 12, 30, 45, 123000)},
        {"id": 2, "at": datetime.datetime(2024, 3, 1, 12, 30, 45)},
        {"id": 3, "at": datetime.datetime(2024, 3, 1, 12, 30, 45)},
        {"id": 4, "at": datetime.datetime(2024, 3, 1, 12, 30, 45, 500000)},
    ]


def test_compression_must_be_uncompressed(fh, glue, s3):
    db = make_table(glue, FLAT)
    with pytest.raises(fh.exceptions.InvalidArgumentException) as e:
        create(fh, s3, conversion(db, {"ParquetSerDe": {}}), CompressionFormat="GZIP")
    assert error_of(e) == (
        "InvalidArgumentException",
        "When data format conversion is enabled, CompressionFormat must be UNCOMPRESSED. The serializer's own compression applies instead.",
        400,
    )


@pytest.mark.parametrize("compression", ["NONE", "ZLIB", "SNAPPY"])
def test_json_to_orc_with_decimal_array_map_and_struct_columns(fh, glue, s3, compression):
    db = make_table(glue, NESTED)
    name, bucket = create(fh, s3, conversion(db, {"OrcSerDe": {"Compression": compression}}))
    put(fh, name, NESTED_RECORDS)
    (key,) = wait_keys(s3, bucket, "data/")
    assert re.fullmatch(rf"data/\d{{4}}/\d\d/\d\d/\d\d/{name}-1-\d{{4}}-\d\d-\d\d-\d\d-\d\d-\d\d-{UUID}\.orc", key), key
    f = pyarrow.orc.ORCFile(io.BytesIO(body(s3, bucket, key)))
    assert f.compression == ("UNCOMPRESSED" if compression == "NONE" else compression)
    assert (f.nrows, f.nstripes) == (3, 1)
    assert str(f.schema) == str(pyarrow.schema([
        ("id", pyarrow.int64()),
        ("name", pyarrow.string()),
        ("score", pyarrow.float64()),
        ("ok", pyarrow.bool_()),
        ("price", pyarrow.decimal128(10, 2)),
        ("at", pyarrow.timestamp("ns")),
        ("day", pyarrow.date32()),
        ("tags", pyarrow.list_(pyarrow.string())),
        ("attrs", pyarrow.map_(pyarrow.string(), pyarrow.int32())),
        ("user", pyarrow.struct([("uid", pyarrow.int32()), ("email", pyarrow.string())])),
    ]))
    assert f.read().to_pylist() == NESTED_ROWS
    desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert "FailureDescription" not in desc


DEEP = [
    {"Name": "tiny", "Type": "tinyint"},
    {"Name": "small", "Type": "smallint"},
    {"Name": "n", "Type": "int"},
    {"Name": "ratio", "Type": "float"},
    {"Name": "code", "Type": "char(3)"},
    {"Name": "label", "Type": "varchar(20)"},
    {"Name": "raw", "Type": "binary"},
    {"Name": "big", "Type": "decimal(38,6)"},
    {"Name": "at", "Type": "timestamp"},
    {"Name": "orders", "Type": "array<struct<sku:string,qty:int,price:decimal(8,2),tags:array<string>>>"},
    {"Name": "index", "Type": "map<string,array<bigint>>"},
    {"Name": "meta", "Type": "struct<inner:struct<flag:boolean,day:date>,scores:map<int,double>>"},
]

DEEP_RECORDS = [
    {
        "tiny": -128, "small": 32767, "n": -2147483648, "ratio": 0.25, "code": "abc", "label": "héllo wörld",
        "raw": "bytes\u0000here", "big": "-12345678901234567890123456789012.123456", "at": "1969-12-30 23:59:58.5",
        "orders": [
            {"sku": "a-1", "qty": 2, "price": "9.99", "tags": ["x", None, "y"]},
            None,
            {"sku": None, "qty": None, "price": None, "tags": []},
        ],
        "index": {"k1": [1, None, 9223372036854775807], "k2": [], "k3": None},
        "meta": {"inner": {"flag": True, "day": "1900-01-01"}, "scores": {"1": 1.5, "2": None}},
    },
    {"tiny": 127, "orders": [], "index": {}, "meta": {"inner": None, "scores": {}}, "at": "2262-04-11 23:47:16.854"},
    {"meta": {"inner": {"flag": None}}},
]

DEEP_ROWS = [
    {
        "tiny": -128, "small": 32767, "n": -2147483648, "ratio": 0.25, "code": "abc", "label": "héllo wörld",
        "raw": b"bytes\x00here", "big": decimal.Decimal("-12345678901234567890123456789012.123456"),
        "at": datetime.datetime(1969, 12, 30, 23, 59, 58, 500000),
        "orders": [
            {"sku": "a-1", "qty": 2, "price": decimal.Decimal("9.99"), "tags": ["x", None, "y"]},
            None,
            {"sku": None, "qty": None, "price": None, "tags": []},
        ],
        "index": [("k1", [1, None, 9223372036854775807]), ("k2", []), ("k3", None)],
        "meta": {"inner": {"flag": True, "day": datetime.date(1900, 1, 1)}, "scores": [(1, 1.5), (2, None)]},
    },
    {
        "tiny": 127, "small": None, "n": None, "ratio": None, "code": None, "label": None, "raw": None, "big": None,
        "at": datetime.datetime(2262, 4, 11, 23, 47, 16, 854000),
        "orders": [], "index": [], "meta": {"inner": None, "scores": []},
    },
    {
        "tiny": None, "small": None, "n": None, "ratio": None, "code": None, "label": None, "raw": None, "big": None,
        "at": None, "orders": None, "index": None, "meta": {"inner": {"flag": None, "day": None}, "scores": None},
    },
]


@pytest.mark.parametrize("compression", ["NONE", "ZLIB", "SNAPPY"])
def test_json_to_orc_of_deeply_nested_columns_with_nulls_at_every_level(fh, glue, s3, compression):
    db = make_table(glue, DEEP)
    name, bucket = create(fh, s3, conversion(db, {"OrcSerDe": {"Compression": compression, "FormatVersion": "V0_11"}}))
    put(fh, name, DEEP_RECORDS)
    (key,) = wait_keys(s3, bucket, "data/")
    f = pyarrow.orc.ORCFile(io.BytesIO(body(s3, bucket, key)))
    assert f.file_version == "0.11"
    assert str(f.schema.field("orders").type) == (
        "list<item: struct<sku: string, qty: int32, price: decimal128(8, 2), tags: list<item: string>>>"
    )
    assert f.read().to_pylist() == DEEP_ROWS


def deep_record(i):
    """A DEEP row with nulls here and there at every level."""
    return {
        "tiny": (i % 256) - 128 if i % 7 else None,
        "small": i if i % 5 else None,
        "n": i * 7919 % 100003 - 50000,
        "ratio": i / 8 if i % 3 else None,
        "code": "abc"[: i % 4] or None,
        "label": f"label-{i}-" * (i % 30) if i % 11 else None,
        "raw": "x" * (i % 13),
        "big": f"{i}.{i % 1000000:06d}" if i % 4 else None,
        "at": f"20{10 + i % 20}-01-02 03:04:{i % 60:02d}.{i % 1000:03d}" if i % 6 else None,
        "orders": [
            {"sku": f"s{j}", "qty": j if j % 2 else None, "price": f"{j}.5", "tags": ["t"] * (j % 3)} for j in range(i % 4)
        ] if i % 10 else None,
        "index": {f"k{j}": [j, None] for j in range(i % 3)} if i % 8 else None,
        "meta": {
            "inner": {"flag": i % 2 == 0, "day": "2024-01-01"} if i % 5 else None,
            "scores": {str(j): j / 2 for j in range(i % 3)},
        } if i % 9 else None,
    }


@pytest.mark.parametrize("compression", ["NONE", "ZLIB", "SNAPPY"])
def test_orc_row_index_lets_a_reader_seek(fh, glue, s3, compression):
    """Apache ORC's C++ reader (pyorc) seeks through the row index: rows
    read after a seek match the rows read from the start."""
    db = make_table(glue, DEEP)
    conv = conversion(db, {"OrcSerDe": {"Compression": compression, "RowIndexStride": 1000}})
    name, bucket = create(fh, s3, conv, interval=3)
    records = [deep_record(i) for i in range(5500)]
    for at in range(0, len(records), 500):
        put(fh, name, records[at:at + 500])
    deadline = time.time() + 30
    total = 0
    while total < len(records):
        assert time.time() < deadline, total
        keys = wait_keys(s3, bucket, "data/")
        bodies = [body(s3, bucket, k) for k in keys]
        total = sum(len(pyorc.Reader(io.BytesIO(b))) for b in bodies)
        time.sleep(0.2)
    assert total == len(records)
    for data in bodies:
        r = pyorc.Reader(io.BytesIO(data))
        assert r.row_index_stride == 1000
        rows = list(r)
        # Row group starts, and rows far enough into a group that the rows
        # skipped hold string bytes (the C++ reader fails to skip zero
        # string bytes right after a seek, in files of its own writer too).
        targets = sorted({0, 37, 999, 1000, 1037, 2345, 3000, 4999, len(rows) - 1} & set(range(len(rows))))
        for t in targets:
            assert r.seek(t) == t
            assert r.read(1200) == rows[t:t + 1200], t
    # Row group statistics: a predicate on `small` (the record's index,
    # rising) keeps only the row group that can hold the value.
    small = pyorc.predicates.PredicateColumn(pyorc.TypeKind.SHORT, "small")
    found = 0
    for data in bodies:
        rows = list(pyorc.Reader(io.BytesIO(data)))
        hit = [row for row in rows if row[1] == 2346]
        if hit:
            kept = list(pyorc.Reader(io.BytesIO(data), predicate=small == 2346))
            assert hit[0] in kept
            assert len(kept) == 1000 < len(rows)
            found += 1
            # Decimals: `big` rises with the index too.
            big = pyorc.predicates.PredicateColumn(pyorc.TypeKind.DECIMAL, "big", precision=38, scale=6)
            kept = list(pyorc.Reader(io.BytesIO(data), predicate=big == decimal.Decimal("2346.002346")))
            assert hit[0] in kept
            assert len(kept) == 1000
            # Timestamps: every row is from 2010 to 2029.
            at = pyorc.predicates.PredicateColumn(pyorc.TypeKind.TIMESTAMP, "at")
            early = datetime.datetime(2010, 1, 2, 3, 3, tzinfo=UTC)
            assert list(pyorc.Reader(io.BytesIO(data), predicate=at < early)) == []
            assert len(list(pyorc.Reader(io.BytesIO(data), predicate=at <= early.replace(year=2011)))) == len(rows)
    assert found == 1
    # The file statistics of an int column, as the C++ reader reads them.
    stats = pyorc.Reader(io.BytesIO(bodies[0]))[3].statistics
    ns = [row[2] for row in pyorc.Reader(io.BytesIO(bodies[0]))]
    assert (stats["number_of_values"], stats["minimum"], stats["maximum"], stats["sum"]) == (
        len(ns), min(ns), max(ns), sum(ns)
    )


@pytest.mark.parametrize("compression", ["NONE", "SNAPPY"])
def test_orc_bloom_filters_let_a_reader_skip_row_groups(fh, glue, s3, compression):
    """BloomFilterColumns: Apache ORC's C++ reader (pyorc) drops every row
    group whose bloom filter rules a value out, though its minimum and
    maximum admit it, and keeps the group that holds it."""
    db = make_table(glue, DEEP)
    serde = {
        "Compression": compression,
        "RowIndexStride": 1000,
        "BloomFilterColumns": ["N", "label", "ratio", "raw", "tiny"],
        "BloomFilterFalsePositiveProbability": 0.0001,
    }
    name, bucket = create(fh, s3, conversion(db, {"OrcSerDe": serde}), interval=3)
    records = [deep_record(i) for i in range(5500)]
    for at in range(0, len(records), 500):
        put(fh, name, records[at:at + 500])
    deadline = time.time() + 30
    while True:
        bodies = [body(s3, bucket, k) for k in wait_keys(s3, bucket, "data/")]
        if sum(len(pyorc.Reader(io.BytesIO(b))) for b in bodies) == len(records):
            break
        assert time.time() < deadline
        time.sleep(0.2)
    P, T = pyorc.predicates.PredicateColumn, pyorc.TypeKind
    checks = [(P(T.INT, "n"), 2), (P(T.STRING, "label"), 5), (P(T.FLOAT, "ratio"), 3), (P(T.BYTE, "tiny"), 0)]
    for data in bodies:
        rows = list(pyorc.Reader(io.BytesIO(data)))
        for column, index in checks:
            present = rows[len(rows) // 2][index]
            if present is None:
                continue
            kept = list(pyorc.Reader(io.BytesIO(data), predicate=column == present))
            assert rows[len(rows) // 2] in kept
            # tinyint values recur in every group.
            assert len(kept) == len(rows) if index == 0 else len(kept) <= 1000 < len(rows)
        # Values between each group's minimum and maximum that no row holds.
        values = {row[2] for row in rows}
        absent = next(v for v in range(-1000, 1000) if v not in values)
        assert list(pyorc.Reader(io.BytesIO(data), predicate=P(T.INT, "n") == absent)) == []
        labels = {row[5] for row in rows}
        assert "label-1000-" not in labels
        assert list(pyorc.Reader(io.BytesIO(data), predicate=P(T.STRING, "label") == "label-1000-")) == []
        # 250.0625 is inside the third group's range only.
        assert list(pyorc.Reader(io.BytesIO(data), predicate=P(T.FLOAT, "ratio") == 250.0625)) == []


def test_orc_stripes_follow_stripe_size_bytes(fh, glue, s3):
    db = make_table(glue, NESTED)
    # The buffer fills at 12 MB: one object of more than one 8 MiB stripe.
    name, bucket = create(fh, s3, conversion(db, {"OrcSerDe": {"StripeSizeBytes": 8388608}}), size=12, interval=900)
    records = [
        {"id": i, "name": "n" * 1000, "tags": [str(i)] * 3, "attrs": {"k": i}, "user": {"uid": i}, "price": i / 100}
        for i in range(14000)
    ]
    for at in range(0, len(records), 500):
        put(fh, name, records[at:at + 500])
    (key,) = wait_keys(s3, bucket, "data/", timeout=60)
    f = pyarrow.orc.ORCFile(io.BytesIO(body(s3, bucket, key)))
    assert 11000 < f.nrows < 14000, f.nrows
    assert f.nstripes == 2
    table = f.read()
    assert table["id"].to_pylist() == list(range(f.nrows))
    assert table["user"].to_pylist()[10999] == {"uid": 10999, "email": None}
    assert table["tags"].to_pylist()[10999] == ["10999"] * 3
    assert table["attrs"].to_pylist()[10999] == [("k", 10999)]
    assert table["price"].to_pylist()[10999] == decimal.Decimal("109.99")


def test_update_destination_turns_conversion_on(fh, glue, s3):
    db = make_table(glue, [{"Name": "id", "Type": "int"}])
    name, bucket = unique("conv"), unique("bkt")
    s3.create_bucket(Bucket=bucket)
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "data/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 0},
        },
    )
    desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    fh.update_destination(
        DeliveryStreamName=name,
        CurrentDeliveryStreamVersionId=desc["VersionId"],
        DestinationId=desc["Destinations"][0]["DestinationId"],
        ExtendedS3DestinationUpdate={"DataFormatConversionConfiguration": conversion(db, {"ParquetSerDe": {"Compression": "UNCOMPRESSED"}})},
    )
    put(fh, name, [{"id": 9}])
    (key,) = wait_keys(s3, bucket, "data/")
    assert re.search(rf"/{name}-2-.*\.parquet$", key), key
    assert pyarrow.parquet.read_table(io.BytesIO(body(s3, bucket, key))).to_pylist() == [{"id": 9}]
