"""Firehose's Redshift destination with boto3, against a real PostgreSQL
standing in for the cluster: the server this module starts itself (initdb on
a temporary directory, a free loopback port, password authentication).

Checked: rows land with exact values (JSON 'auto', CSV with DELIMITER, GZIP
staging, epoch times); the staged objects and manifests sit in the embedded
S3 under AWS's key layout; with PostgreSQL down the failure is described and
retried, and once it is back every acknowledged record is loaded exactly
once, even across a SIGKILL of riffle during the outage; a missing table or a wrong password give AWS's error codes, and a batch
given up on leaves its manifest under errors/manifests; 127.0.0.1, localhost
and `--redshift-endpoint` for unmodified cluster URLs; DescribeDeliveryStream
round-trips; the S3 backup and the Redshift metrics."""
import glob
import gzip
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ACCOUNT, REGION, Server, error_of, free_port, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"
USER = "firehose"
PASSWORD = "s3cret-Pw"
DB = "dev"


def pg_bin_dir():
    """The directory of initdb, pg_ctl, postgres and psql: on PATH, or
    Debian's /usr/lib/postgresql/<version>/bin (newest first)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl", path=os.path.dirname(os.path.realpath(found))):
        return os.path.dirname(os.path.realpath(found))
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(re.sub(r"\D", "", d.split("/")[-2]) or 0), reverse=True)
    for d in dirs:
        if all(os.path.exists(os.path.join(d, b)) for b in ("initdb", "pg_ctl", "postgres", "psql")):
            return d
    pytest.fail("PostgreSQL is not installed (scripts/test installs Debian's postgresql package)")


class Postgres:
    """A throwaway PostgreSQL cluster on a free loopback port. As root it runs
    as the `postgres` user (initdb refuses root)."""

    def __init__(self):
        self.bin = pg_bin_dir()
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="riffle-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres" if _user_exists("postgres") else "nobody"
            os.chmod(self.dir, 0o755)
            shutil.chown(self.dir, user=self.user)
        pwfile = os.path.join(self.dir, "pw")
        Path(pwfile).write_text(PASSWORD + "\n")
        if self.user:
            shutil.chown(pwfile, user=self.user)
        self._run("initdb", "-D", self.data, "-U", USER, f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        self.start()
        self.sql(f"CREATE DATABASE {DB}", db="postgres")

    def _run(self, tool, *args, check=True):
        out = subprocess.run([os.path.join(self.bin, tool), *args], capture_output=True, text=True, user=self.user, cwd=self.dir, timeout=120)
        if check and out.returncode != 0:
            raise AssertionError(f"{tool} failed: {out.stdout}\n{out.stderr}")
        return out

    def start(self):
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        self._run("pg_ctl", "-D", self.data, "-o", opts, "-l", self.log, "-w", "-t", "60", "start")

    def stop(self):
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", check=False)

    def sql(self, statement, db=DB):
        """Runs SQL over the Unix socket; returns rows as lists of strings
        (None for NULL)."""
        out = self._run("psql", "-h", self.dir, "-p", str(self.port), "-U", USER, "-d", db, "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-F", "\x1f", "-P", "null=<NULL>", "-c", statement)
        rows = []
        for line in out.stdout.split("\n"):
            if line:
                rows.append([None if v == "<NULL>" else v for v in line.split("\x1f")])
        return rows

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def pg():
    p = Postgres()
    yield p
    p.close()


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
def s3(srv):
    return srv.client("s3")


def jdbc(pg, host="127.0.0.1", scheme="redshift"):
    return f"jdbc:{scheme}://{host}:{pg.port}/{DB}"


def create(fh, url, table, bucket, copy_options="", columns=None, retry=3600, password=PASSWORD, s3_extra=None, user=USER, **extra):
    name = unique("rs")
    copy = {"DataTableName": table, "CopyOptions": copy_options}
    if columns is not None:
        copy["DataTableColumns"] = columns
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        RedshiftDestinationConfiguration={
            "RoleARN": ROLE,
            "ClusterJDBCURL": url,
            "CopyCommand": copy,
            **({"Username": user} if user is not None else {}),
            **({"Password": password} if password is not None else {}),
            "RetryOptions": {"DurationInSeconds": retry},
            "S3Configuration": {
                "RoleARN": ROLE,
                "BucketARN": f"arn:aws:s3:::{bucket}",
                "Prefix": "stage/",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
                **(s3_extra or {}),
            },
            **extra,
        },
    )
    deadline = time.time() + 5
    while fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        assert time.time() < deadline
        time.sleep(0.05)
    return name


def bucket(s3):
    b = unique("stage").lower()
    s3.create_bucket(Bucket=b)
    return b


def wait_for(what, fn, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def keys(s3, b, prefix=""):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix=prefix).get("Contents", []))


def failure(fh, name):
    return fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"].get("FailureDescription")


def hour_path():
    return r"\d{4}/\d{2}/\d{2}/\d{2}/"


def test_json_auto_rows_land_with_exact_values_and_s3_layout(fh, s3, pg, srv):
    table = unique("events").replace("-", "_")
    pg.sql(f"CREATE TABLE {table} (id integer NOT NULL, name varchar(20), price numeric(10,2), seen timestamp, ok boolean, meta text, loaded timestamptz DEFAULT now())")
    b = bucket(s3)
    name = create(fh, jdbc(pg), table, b, "JSON 'auto' TIMEFORMAT 'epochmillisecs'", columns="id,name,price,seen,ok,meta")
    records = [
        {"id": 1, "name": "alpha", "price": 12.5, "seen": 1700000000123, "ok": True, "meta": {"k": [1, 2]}, "extra": "ignored"},
        {"id": 2, "name": "tab\there", "price": None, "seen": None, "ok": False},
        {"id": 3, "name": "", "price": "7", "seen": 0, "meta": "quote ' and \\ backslash"},
    ]
    data = [json.dumps(r).encode() for r in records]
    resp = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in data])
    assert resp["FailedPutCount"] == 0
    rows = wait_for("rows", lambda: pg.sql(f"SELECT id, name, price, to_char(seen, 'YYYY-MM-DD HH24:MI:SS.MS'), ok, meta FROM {table} ORDER BY id"))
    assert rows == [
        ["1", "alpha", "12.50", "2023-11-14 22:13:20.123", "t", '{"k":[1,2]}'],
        ["2", "tab\there", None, None, "f", None],
        ["3", "", "7.00", "1970-01-01 00:00:00.000", None, "quote ' and \\ backslash"],
    ]
    # The staged object, then its manifest, under AWS's layout.
    all_keys = wait_for("manifest", lambda: keys(s3, b) if len(keys(s3, b)) == 2 else None)
    manifest_key = [k for k in all_keys if k.startswith("stage/manifests/")]
    data_key = [k for k in all_keys if not k.startswith("stage/manifests/")]
    assert len(manifest_key) == 1 and len(data_key) == 1, all_keys
    assert re.fullmatch(rf"stage/{hour_path()}{name}-1-\d{{4}}-\d{{2}}-\d{{2}}-\d{{2}}-\d{{2}}-\d{{2}}-[0-9a-f-]{{36}}", data_key[0]), data_key
    assert re.fullmatch(rf"stage/manifests/{hour_path()}{name}-1-[0-9-]{{19}}-[0-9a-f-]{{36}}", manifest_key[0]), manifest_key
    assert s3.get_object(Bucket=b, Key=data_key[0])["Body"].read() == b"".join(data)
    manifest = json.loads(s3.get_object(Bucket=b, Key=manifest_key[0])["Body"].read())
    assert manifest == {"entries": [{"url": f"s3://{b}/{data_key[0]}", "mandatory": True}]}
    assert failure(fh, name) is None
    # Metrics: one staged object and one COPY.
    text = urllib.request.urlopen(srv.endpoint + "/metrics", timeout=5).read().decode()

    def value(metric):
        m = re.search(rf'^{metric}\{{delivery_stream="{name}",region="{REGION}"\}} (\S+)$', text, re.M)
        return None if m is None else float(m.group(1))

    nbytes = sum(len(d) for d in data)
    assert value("riffle_firehose_delivery_to_redshift_success_total") == 1
    assert value("riffle_firehose_delivery_to_redshift_records_total") == 3
    assert value("riffle_firehose_delivery_to_redshift_bytes_total") == nbytes
    assert value("riffle_firehose_delivery_to_s3_success_total") == 1
    assert value("riffle_firehose_delivery_to_s3_records_total") == 3
    assert value("riffle_firehose_delivery_to_s3_bytes_total") == nbytes


def test_csv_with_delimiter_header_and_nulls(fh, s3, pg):
    table = unique("csv").replace("-", "_")
    # Without DataTableColumns, an identity column is left to its
    # generator (EXPLICIT_IDS not given), as Redshift does.
    pg.sql(f"CREATE TABLE {table} (rid integer GENERATED ALWAYS AS IDENTITY, a integer, b text, c varchar(10))")
    b = bucket(s3)
    name = create(fh, jdbc(pg, scheme="postgresql"), table, b, "CSV DELIMITER ';' IGNOREHEADER 1 EMPTYASNULL")
    fh.put_record_batch(
        DeliveryStreamName=name,
        Records=[{"Data": b"a;b;c\n"}, {"Data": b'1;"x;""quoted""";plain\n'}, {"Data": b"2;;\\N\n"}, {"Data": b'3;"multi\nline";\n'}],
    )
    rows = wait_for("rows", lambda: pg.sql(f"SELECT rid, a, replace(b, chr(10), '|'), c FROM {table} ORDER BY a"))
    assert rows == [["1", "1", 'x;"quoted"', "plain"], ["2", "2", None, None], ["3", "3", "multi|line", None]]


def test_gzip_staging(fh, s3, pg):
    table = unique("gz").replace("-", "_")
    pg.sql(f"CREATE TABLE {table} (n bigint, s text)")
    b = bucket(s3)
    name = create(fh, jdbc(pg, host="localhost"), table, b, "json 'auto' gzip", s3_extra={"CompressionFormat": "GZIP"})
    data = [json.dumps({"n": i, "s": "x" * i}).encode() + b"\n" for i in range(50)]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in data])
    rows = wait_for("rows", lambda: (r := pg.sql(f"SELECT n, s FROM {table} ORDER BY n")) and len(r) == 50 and r)
    assert rows == [[str(i), "x" * i] for i in range(50)]
    (data_key,) = [k for k in keys(s3, b) if not k.startswith("stage/manifests/")]
    assert data_key.endswith(".gz")
    assert gzip.decompress(s3.get_object(Bucket=b, Key=data_key)["Body"].read()) == b"".join(data)


def test_postgres_down_then_up_delivers_every_record_once(fh, s3, pg):
    table = unique("outage").replace("-", "_")
    pg.sql(f"CREATE TABLE {table} (id integer PRIMARY KEY, v text)")
    b = bucket(s3)
    name = create(fh, jdbc(pg), table, b, "JSON 'auto'")
    pg.stop()
    try:
        first = [{"Data": json.dumps({"id": i, "v": f"a{i}"}).encode()} for i in range(5)]
        assert fh.put_record_batch(DeliveryStreamName=name, Records=first)["FailedPutCount"] == 0
        text = wait_for("the failure", lambda: failure(fh, name))
        assert text["Type"] == "UNKNOWN_ERROR"
        assert text["Details"].startswith("Redshift.ConnectionFailed: The connection to the specified Amazon Redshift cluster failed."), text
        # Retried: the attempt count grows, and the staged object is kept.
        wait_for("a retry", lambda: re.search(r"\((\d+) attempts so far\)", failure(fh, name)["Details"] or ""))
        second = [{"Data": json.dumps({"id": i, "v": f"b{i}"}).encode()} for i in range(5, 8)]
        assert fh.put_record_batch(DeliveryStreamName=name, Records=second)["FailedPutCount"] == 0
        staged = [k for k in keys(s3, b) if not k.startswith("stage/manifests/")]
        assert len(staged) == 1, staged
    finally:
        pg.start()
    rows = wait_for("all rows", lambda: (r := pg.sql(f"SELECT id, v FROM {table} ORDER BY id")) and len(r) == 8 and r, timeout=90)
    assert rows == [[str(i), f"a{i}"] for i in range(5)] + [[str(i), f"b{i}"] for i in range(5, 8)]
    wait_for("the failure to clear", lambda: failure(fh, name) is None)
    time.sleep(1)
    assert pg.sql(f"SELECT count(*) FROM {table}") == [["8"]]


def test_sigkill_during_an_outage_loses_no_acknowledged_record(pg):
    """Records acknowledged while PostgreSQL is down survive riffle being
    killed: after the restart they are staged again and loaded once."""
    server = Server("--status-delay-ms", "0").start()
    try:
        fh, s3 = server.client("firehose"), server.client("s3")
        table = unique("crash").replace("-", "_")
        pg.sql(f"CREATE TABLE {table} (id integer PRIMARY KEY)")
        b = bucket(s3)
        name = create(fh, jdbc(pg), table, b, "JSON 'auto'")
        pg.stop()
        try:
            for i in range(0, 30, 10):
                batch = [{"Data": json.dumps({"id": n}).encode()} for n in range(i, i + 10)]
                assert fh.put_record_batch(DeliveryStreamName=name, Records=batch)["FailedPutCount"] == 0
            wait_for("the failure", lambda: failure(fh, name))
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait()
            server.log.close()
            server.proc = None
            server.start()
        finally:
            pg.start()
        rows = wait_for("all rows", lambda: (r := pg.sql(f"SELECT id FROM {table} ORDER BY id")) and len(r) == 30 and r, timeout=90)
        assert rows == [[str(i)] for i in range(30)]
        time.sleep(1)
        assert pg.sql(f"SELECT count(*) FROM {table}") == [["30"]]
    finally:
        server.stop()
        server.cleanup()


def test_missing_table_is_described_then_given_up_into_errors_manifests(fh, s3, pg, srv):
    b = bucket(s3)
    name = create(fh, jdbc(pg), "no_such_table", b, "JSON 'auto'", retry=60)
    fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"id": 1}'})
    f = wait_for("the failure", lambda: failure(fh, name))
    assert f["Details"].startswith(
        "Redshift.TableNotFound: The table to which to load data was not found. Ensure that the specified table exists."
    ), f
    assert keys(s3, b, "stage/errors/") == []
    # Past RetryOptions.DurationInSeconds the batch is skipped: its manifest
    # goes to errors/manifests and delivery moves on.
    srv.advance_clock(61_000)
    err_keys = wait_for("the error manifest", lambda: keys(s3, b, "stage/errors/manifests/"))
    assert len(err_keys) == 1
    assert re.fullmatch(rf"stage/errors/manifests/{hour_path()}{name}-1-[0-9-]{{19}}-[0-9a-f-]{{36}}", err_keys[0]), err_keys
    (data_key,) = [k for k in keys(s3, b) if not k.startswith(("stage/manifests/", "stage/errors/"))]
    manifest = json.loads(s3.get_object(Bucket=b, Key=err_keys[0])["Body"].read())
    assert manifest == {"entries": [{"url": f"s3://{b}/{data_key}", "mandatory": True}]}
    wait_for("the failure to clear", lambda: failure(fh, name) is None)


def test_no_retry_and_wrong_password(fh, s3, pg):
    b = bucket(s3)
    table = unique("auth").replace("-", "_")
    pg.sql(f"CREATE TABLE {table} (id integer)")
    name = create(fh, jdbc(pg), table, b, "JSON 'auto'", password="wrong-password")
    fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"id": 1}'})
    f = wait_for("the failure", lambda: failure(fh, name))
    assert f["Details"].startswith("Redshift.AuthenticationFailed: The provided user name and password failed authentication."), f
    assert "28P01" in f["Details"]
    # DurationInSeconds 0: the first failure gives the batch up.
    name = create(fh, jdbc(pg), "missing_" + table, b, "JSON 'auto'", retry=0)
    fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"id": 2}'})
    wait_for("the error manifest", lambda: [k for k in keys(s3, b, "stage/errors/manifests/") if f"/{name}-1-" in k])
    assert pg.sql(f"SELECT count(*) FROM {table}") == [["0"]]


def test_credentials_from_secrets_manager(srv, fh, s3, pg):
    sm = srv.client("secretsmanager")
    b = bucket(s3)
    table = unique("secret").replace("-", "_")
    pg.sql(f"CREATE TABLE {table} (id integer)")
    arn = sm.create_secret(Name=unique("rs/creds"), SecretString=json.dumps({"username": USER, "password": "wrong"}))["ARN"]
    secret_cfg = {"SecretARN": arn, "RoleARN": ROLE, "Enabled": True}
    name = create(fh, jdbc(pg), table, b, "JSON 'auto'", user=None, password=None, SecretsManagerConfiguration=secret_cfg)
    desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert desc["Destinations"][0]["RedshiftDestinationDescription"]["SecretsManagerConfiguration"] == secret_cfg
    fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"id": 7}'})
    f = wait_for("the failure", lambda: failure(fh, name))
    assert f["Details"].startswith("Redshift.AuthenticationFailed:"), f
    # The right password, set in the secret alone, is read at the next attempt.
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": USER, "password": PASSWORD}))
    wait_for("the row", lambda: pg.sql(f"SELECT id FROM {table}") == [["7"]], timeout=60)
    # A secret that disappears is described as such.
    sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"id": 8}'})
    f = wait_for("the secret failure", lambda: (failure(fh, name) or {}).get("Details", "").startswith("SecretsManager.SecretNotFound") and failure(fh, name))
    assert arn in f["Details"], f


def test_bad_copy_options_and_columns(fh, s3, pg):
    b = bucket(s3)
    table = unique("opts").replace("-", "_")
    pg.sql(f"CREATE TABLE {table} (id integer NOT NULL, v text)")
    name = create(fh, jdbc(pg), table, b, "CSV ESCAPE")
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"1,x\n"})
    f = wait_for("the failure", lambda: failure(fh, name))
    assert f["Details"].startswith("Redshift.IncorrectCopyOptions: "), f
    name = create(fh, jdbc(pg), table, b, "JSON 'auto'", columns="v")
    fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"v": "x"}'})
    f = wait_for("the failure", lambda: failure(fh, name))
    assert f["Details"].startswith("Redshift.MissingColumn: "), f
    name = create(fh, jdbc(pg), table, b, "JSON 'auto'", columns="id,nope")
    fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"id": 1}'})
    f = wait_for("the failure", lambda: failure(fh, name))
    assert f["Details"].startswith("Redshift.ColumnNotFound: "), f
    # A row PostgreSQL refuses fails the whole batch: nothing is loaded.
    name = create(fh, jdbc(pg), table, b, "JSON 'auto'")
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b'{"id": 1, "v": "ok"}'}, {"Data": b'{"id": "not a number"}'}])
    f = wait_for("the failure", lambda: failure(fh, name))
    assert f["Details"].startswith("Redshift.DataLoadFailed: "), f
    assert "22P02" in f["Details"], f
    assert pg.sql(f"SELECT count(*) FROM {table}") == [["0"]]
    # Options Riffle does not carry out keep the records buffered, and say so.
    name = create(fh, jdbc(pg), table, b, "FIXEDWIDTH 'id:3,v:5'")
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"  1hello\n"})
    f = wait_for("the failure", lambda: failure(fh, name))
    assert f["Details"] == "The COPY option FIXEDWIDTH is not supported by Riffle yet; records stay buffered.", f


def test_cluster_urls_endpoint_override_backup_and_describe(start_server, pg):
    server = start_server("--status-delay-ms", "0", "--redshift-endpoint", f"127.0.0.1:{pg.port}")
    fh, s3 = server.client("firehose"), server.client("s3")
    table = unique("override").replace("-", "_")
    pg.sql(f"CREATE TABLE {table} (id integer, label text)")
    b, bk = bucket(s3), bucket(s3)
    url = "jdbc:redshift://examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com:5439/" + DB
    name = create(
        fh, url, table, b, "DELIMITER '|'",
        S3BackupMode="Enabled",
        S3BackupConfiguration={"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bk}", "Prefix": "source/"},
    )
    records = [b"1|one\n", b"2|two\n"]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in records])
    rows = wait_for("rows", lambda: (r := pg.sql(f"SELECT id, label FROM {table} ORDER BY id")) and len(r) == 2 and r)
    assert rows == [["1", "one"], ["2", "two"]]
    (backup_key,) = wait_for("the backup", lambda: keys(s3, bk))
    assert re.fullmatch(rf"source/{hour_path()}{name}-1-.*", backup_key)
    assert s3.get_object(Bucket=bk, Key=backup_key)["Body"].read() == b"".join(records)
    # DescribeDeliveryStream shows the configuration (the URL as given, no
    # password) with AWS's defaults.
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    desc = d["Destinations"][0]["RedshiftDestinationDescription"]
    assert desc["ClusterJDBCURL"] == url
    assert desc["CopyCommand"] == {"DataTableName": table, "CopyOptions": "DELIMITER '|'"}
    assert desc["Username"] == USER and "Password" not in desc
    assert desc["RetryOptions"] == {"DurationInSeconds": 3600}
    assert desc["S3BackupMode"] == "Enabled"
    assert desc["S3DestinationDescription"]["BucketARN"] == f"arn:aws:s3:::{b}"
    assert desc["S3DestinationDescription"]["CompressionFormat"] == "UNCOMPRESSED"
    assert desc["S3BackupDescription"]["Prefix"] == "source/"
    # An update that does not repeat the password keeps it.
    fh.update_destination(
        DeliveryStreamName=name,
        CurrentDeliveryStreamVersionId=d["VersionId"],
        DestinationId=d["Destinations"][0]["DestinationId"],
        RedshiftDestinationUpdate={"CopyCommand": {"DataTableName": table, "CopyOptions": "DELIMITER ','"}},
    )
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"3,three\n"})
    wait_for("the row after the update", lambda: pg.sql(f"SELECT label FROM {table} WHERE id = 3") == [["three"]])


def test_cluster_url_validation(fh):
    s3c = {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::b"}
    for url in ["jdbc:redshift://127.0.0.1:5439/dev", "jdbc:postgresql://localhost:5432/dev", "jdbc:redshift://[::1]:5439/dev"]:
        name = unique("url")
        fh.create_delivery_stream(
            DeliveryStreamName=name,
            RedshiftDestinationConfiguration={"RoleARN": ROLE, "ClusterJDBCURL": url, "CopyCommand": {"DataTableName": "t"}, "Username": "u", "Password": "password", "S3Configuration": s3c},
        )
        d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        assert d["Destinations"][0]["RedshiftDestinationDescription"]["ClusterJDBCURL"] == url
        fh.delete_delivery_stream(DeliveryStreamName=name)
    with pytest.raises(fh.exceptions.ClientError) as e:
        fh.create_delivery_stream(
            DeliveryStreamName=unique("url"),
            RedshiftDestinationConfiguration={"RoleARN": ROLE, "ClusterJDBCURL": "jdbc:mysql://localhost:3306/dev", "CopyCommand": {"DataTableName": "t"}, "Username": "u", "Password": "password", "S3Configuration": s3c},
        )
    code, message, status = error_of(e)
    assert (code, status) == ("ValidationException", 400)
    assert "Member must satisfy regular expression pattern: jdbc:(redshift|postgresql)://((?!-)[A-Za-z0-9-]{1,63}(?<!-)\\.)+(redshift(-serverless)?)" in message


def test_staging_compression_must_be_readable_by_copy(fh):
    """COPY reads uncompressed or GZIP staging: Snappy, HADOOP_SNAPPY and
    ZIP are refused when the delivery stream is created."""
    for fmt in ["Snappy", "HADOOP_SNAPPY", "ZIP"]:
        with pytest.raises(fh.exceptions.ClientError) as e:
            fh.create_delivery_stream(
                DeliveryStreamName=unique("cmp"),
                RedshiftDestinationConfiguration={
                    "RoleARN": ROLE, "ClusterJDBCURL": "jdbc:redshift://127.0.0.1:5439/dev",
                    "CopyCommand": {"DataTableName": "t"}, "Username": "u", "Password": "password",
                    "S3Configuration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::b", "CompressionFormat": fmt},
                },
            )
        code, message, status = error_of(e)
        assert (code, status) == ("InvalidArgumentException", 400), (fmt, message)
        assert message == "Compression formats SNAPPY, HADOOP_SNAPPY and ZIP are not supported for the Redshift destination's S3 configuration."


def test_lambda_processor_before_the_copy_and_processing_failed_records_in_the_stage_bucket(start_server, pg):
    from test_firehose_processing import Lambda, error_lines, function_arn, lambda_processor

    lam = Lambda()
    try:
        srv = start_server("--status-delay-ms", "0", "--lambda-endpoint", lam.url)
        fh, s3 = srv.client("firehose"), srv.client("s3")
        table = unique("lam").replace("-", "_")
        pg.sql(f"CREATE TABLE {table} (id integer, name text)")
        b = bucket(s3)
        arn = function_arn("upper")
        name = create(
            fh,
            jdbc(pg),
            table,
            b,
            "CSV",
            ProcessingConfiguration={"Enabled": True, "Processors": [lambda_processor(arn), {"Type": "AppendDelimiterToRecord"}]},
        )
        records = [b"1,alpha", b"drop", b"2,beta", b"fail"]
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in records])
        rows = wait_for("rows", lambda: pg.sql(f"SELECT id, name FROM {table} ORDER BY id"))
        assert rows == [["1", "ALPHA"], ["2", "BETA"]]
        (call,) = [c for c in lam.calls if arn in c["path"].replace("%3A", ":")]
        assert len(call["event"]["records"]) == 4
        failed = wait_for("error object", lambda: keys(s3, b, "stage/processing-failed/"))
        assert len(failed) == 1
        assert re.fullmatch(rf"stage/processing-failed/{hour_path()}{name}-1-[0-9-]{{19}}-[0-9a-f-]{{36}}", failed[0]), failed
        docs = error_lines(s3.get_object(Bucket=b, Key=failed[0])["Body"].read())
        assert [d["rawData"] for d in docs] == ["ZmFpbA=="]
        assert docs[0]["errorCode"] == "Lambda.ProcessingFailedStatus"
        assert docs[0]["lambdaArn"] == arn
        staged = [k for k in keys(s3, b, "stage/") if not k.startswith(("stage/manifests/", "stage/processing-failed/"))]
        assert [s3.get_object(Bucket=b, Key=k)["Body"].read() for k in staged] == [b"1,ALPHA\n2,BETA\n"]
        assert failure(fh, name) is None
    finally:
        lam.close()
