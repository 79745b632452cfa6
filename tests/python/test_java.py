"""The Java stack against Riffle: the AWS SDK for Java v2 (sync client, CBOR;
async Netty client, HTTP/2, SubscribeToShard) and a Kinesis Client Library 3
application (the MultiLangDaemon with a Python record processor) in polling
and enhanced fan-out mode across a reshard.

The jars come from the PyPI wheel kclpy-ext (tests/python/requirements.txt);
tests/java/RiffleJava.java is compiled with javac once per session. DynamoDB,
which KCL needs for leases, is moto_server on a loopback port."""
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

from conftest import REGION, ROOT, free_port, unique, wait_active

JAVA = shutil.which("java")
JAVAC = shutil.which("javac")
KEYTOOL = shutil.which("keytool")

pytestmark = pytest.mark.skipif(
    not (JAVA and JAVAC and KEYTOOL), reason="no JDK: java, javac and keytool must be on PATH for the Java client tests"
)

CBOR = "application/x-amz-cbor-1.1"
SDK_VERSION = "2.33.0"
KCL_VERSION = "3.1.3"
HALF = 2**127


def jar_dir():
    import amazon_kclpy

    return Path(amazon_kclpy.__file__).parent / "jars"


@pytest.fixture(scope="session")
def java_classpath(tmp_path_factory):
    """Compiles tests/java/RiffleJava.java against the wheel's jars; returns
    the classpath to run it with."""
    out = tmp_path_factory.mktemp("java-classes")
    jars = jar_dir()
    assert (jars / f"amazon-kinesis-client-{KCL_VERSION}.jar").exists(), sorted(p.name for p in jars.iterdir())
    cp = f"{jars}/*"
    done = subprocess.run(
        [JAVAC, "-d", str(out), "-cp", cp, str(ROOT / "tests" / "java" / "RiffleJava.java")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return f"{out}:{cp}"


def run_java(classpath, *args, timeout=90):
    """Runs RiffleJava; returns its JSON lines as {event: [objects]}."""
    done = subprocess.run(
        [JAVA, "-cp", classpath, "RiffleJava", *args], capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, AWS_EC2_METADATA_DISABLED="true"),
    )
    assert done.returncode == 0, f"java exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    events = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            obj = json.loads(line)
            events.setdefault(obj.pop("event"), []).append(obj)
    assert "end" in events, f"no end line:\n{done.stdout}\n{done.stderr}"
    assert events["start"][0]["sdk"] == SDK_VERSION
    return events


def payload(i):
    """The bytes RiffleJava puts as record i."""
    return bytes(range(256)) + bytes([0xFF, 0x00, i & 0xFF, (i >> 8) & 0xFF])


def shard_of(partition_key, shards=2):
    """Shard index of a key in a stream of evenly split shards (MD5 routing)."""
    h = int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")
    return h * shards // 2**128


def b64(data):
    return base64.b64encode(data).decode()


def position(seq):
    """A version-2 sequence number without its arrival-second field: shard
    creation, shard index and counter (docs: crates/riffle-core/src/seqnum.rs)."""
    h = f"{int(seq):047x}"
    return h[:29] + h[38:]


def metric(endpoint, operation):
    """riffle_requests_total for one operation, all outcomes."""
    text = urllib.request.urlopen(endpoint + "/metrics", timeout=5).read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("riffle_requests_total{") and f'operation="{operation}"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


# ------------------------------------------------------------------ SDK v2


def test_sdk_v2_sync_client_speaks_cbor(server, kinesis, java_classpath):
    name = unique("java")
    try:
        ev = run_java(java_classpath, "sync", server.endpoint, name)
        assert ev["active"] == [{"status": "ACTIVE", "shards": 2}]

        keys = [f"key-{i}" for i in range(8)]
        (put,) = ev["put"]
        assert put["failed"] == 0
        assert [(r["partition_key"], r["data"], r["shard_id"]) for r in put["records"]] == [
            (k, b64(payload(i)), f"shardId-00000000000{shard_of(k)}") for i, k in enumerate(keys)
        ]

        (shards,) = ev["shards"]
        assert [{k: v for k, v in s.items() if k != "starting_sequence_number"} for s in shards["shards"]] == [
            {"shard_id": "shardId-000000000000", "starting_hash_key": "0", "ending_hash_key": str(HALF - 1)},
            {"shard_id": "shardId-000000000001", "starting_hash_key": str(HALF), "ending_hash_key": str(2**128 - 1)},
        ]

        # GetRecords through CBOR: every byte, sequence number and key as put, in order.
        for got in ev["records"]:
            expected = [
                {"partition_key": r["partition_key"], "data": r["data"], "sequence_number": r["sequence_number"]}
                for r in put["records"] if r["shard_id"] == got["shard_id"]
            ]
            assert [{k: v for k, v in r.items() if k != "arrival_ms"} for r in got["records"]] == expected
            assert all(abs(r["arrival_ms"] / 1000 - time.time()) < 120 for r in got["records"])
            assert (got["millis_behind_latest"], got["has_next_iterator"]) == (0, True)
        assert sorted(g["shard_id"] for g in ev["records"]) == ["shardId-000000000000", "shardId-000000000001"]

        # The same records read back over JSON by boto3.
        for shard in ("shardId-000000000000", "shardId-000000000001"):
            it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            recs = kinesis.get_records(ShardIterator=it)["Records"]
            assert [(r["PartitionKey"], r["Data"], r["SequenceNumber"]) for r in recs] == [
                (r["partition_key"], base64.b64decode(r["data"]), r["sequence_number"])
                for r in put["records"] if r["shard_id"] == shard
            ]

        # The SDK sent CBOR for every operation and Riffle answered in CBOR.
        (wire,) = ev["wire"]
        assert wire["operations"] == {
            op: [CBOR, CBOR]
            for op in ("CreateStream", "DescribeStream", "GetRecords", "GetShardIterator", "ListShards", "PutRecord", "PutRecords")
        }
    finally:
        try:
            kinesis.delete_stream(StreamName=name)
        except kinesis.exceptions.ResourceNotFoundException:
            pass


def truststore(cert, directory):
    """A PKCS#12 trust store holding Riffle's self-signed certificate."""
    path = Path(directory) / "riffle-trust.p12"
    done = subprocess.run(
        [KEYTOOL, "-importcert", "-noprompt", "-alias", "riffle", "-file", str(cert), "-keystore", str(path),
         "-storetype", "PKCS12", "-storepass", "changeit"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return path


@pytest.mark.parametrize("transport", ["h2c", "tls"])
def test_sdk_v2_async_netty_subscribe_to_shard(transport, start_server, java_classpath, tmp_path):
    if transport == "tls":
        port = free_port()
        s = start_server("--tls-listen", f"127.0.0.1:{port}")
        endpoint = f"https://localhost:{port}"
        trust = str(truststore(Path(s.data_dir) / "tls" / "cert.pem", tmp_path))
    else:
        s = start_server()
        endpoint, trust = s.endpoint, "-"
    k = s.client()
    name = unique("efo")
    k.create_stream(StreamName=name, ShardCount=1)
    wait_active(k, name)

    ev = run_java(java_classpath, "efo", endpoint, name, trust, "5")
    assert "subscription_error" not in ev and "error" not in ev, ev
    (consumer,) = ev["consumer"]
    assert consumer["status"] == "ACTIVE"
    assert re.fullmatch(rf"arn:aws:kinesis:{REGION}:\d{{12}}:stream/{name}/consumer/java-efo:\d+", consumer["consumer_arn"])
    assert ev["subscribed"] == [{"shard_id": "shardId-000000000000"}]

    (put,) = ev["put"]
    sent = [
        {"partition_key": f"pk-{i}", "data": b64(f"efo-{i}-\u00e9\u0000\u00ff".encode()), "sequence_number": r["sequence_number"]}
        for i, r in enumerate(put["records"])
    ]
    assert [r["shard_id"] for r in put["records"]] == ["shardId-000000000000"] * 5
    (received,) = ev["received"]
    # Records put after subscribing, each delivered once, in order, byte for byte.
    assert received["complete"] is True
    assert received["records"] == sent
    events = received["events"]
    assert sum(e["records"] for e in events) == 5
    assert all(e["millis_behind_latest"] == 0 for e in events)
    assert position(events[-1]["continuation_sequence_number"]) == position(sent[-1]["sequence_number"])
    # An event with records continues after its last one; an idle event after
    # that, at the same position (shard and counter; its number may carry a
    # later arrival second).
    delivered = 0
    for e in events:
        delivered += e["records"]
        if e["records"]:
            assert e["continuation_sequence_number"] == sent[delivered - 1]["sequence_number"], events
        elif delivered:
            assert position(e["continuation_sequence_number"]) == position(sent[delivered - 1]["sequence_number"]), events

    (wire,) = ev["wire"]
    ops = wire["operations"]
    # The SDK sends SubscribeToShard as JSON and reads an event stream back;
    # everything else is CBOR.
    assert ops.pop("SubscribeToShard") == ["application/x-amz-json-1.1", "application/vnd.amazon.eventstream"]
    assert ops == {op: [CBOR, CBOR] for op in ("DescribeStreamConsumer", "DescribeStreamSummary", "ListShards", "PutRecord", "RegisterStreamConsumer")}
    assert metric(s.endpoint, "SubscribeToShard") == 1
    # Over TLS, one handshake, ALPN h2: the subscription and the PutRecords
    # beside it were multiplexed on one HTTP/2 connection. h2c is HTTP/2
    # with prior knowledge (no TLS).
    assert ev["tls"] == [{"alpn": ["h2"] if transport == "tls" else []}]


# --------------------------------------------------------------------- KCL 3


class Moto:
    """moto_server on a free loopback port: DynamoDB (and CloudWatch) for KCL."""

    def __init__(self, directory):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(directory) / "moto.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while True:
            assert self.proc.poll() is None, (Path(directory) / "moto.log").read_text()
            try:
                self.dynamodb().list_tables()
                return
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def dynamodb(self):
        return boto3.client("dynamodb", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="AKIDTEST", aws_secret_access_key="secret")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def moto(tmp_path):
    m = Moto(tmp_path)
    yield m
    m.stop()


LOGBACK = """<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>{log}</file>
    <encoder><pattern>%d{{HH:mm:ss.SSS}} [%thread] %-5level %logger{{36}} [%mdc{{ShardId:-NONE}}] - %msg%n</pattern></encoder>
  </appender>
  <logger name="software.amazon.kinesis" level="INFO"/>
  <root level="WARN"><appender-ref ref="FILE"/></root>
</configuration>
"""


class Kcl:
    """A MultiLangDaemon running kcl_record_processor.py, in its own process
    group, so that it and its record processors can all be ended."""

    def __init__(self, directory, stream, app, kinesis_endpoint, dynamodb_endpoint, mode):
        d = Path(directory)
        self.out = d / "processed.jsonl"
        self.log_path = d / "kcl.log"
        props = {
            "executableName": f"{sys.executable} {ROOT / 'tests' / 'python' / 'kcl_record_processor.py'}",
            "streamName": stream,
            "applicationName": app,
            "AWSCredentialsProvider": "DefaultCredentialsProvider",
            "processingLanguage": f"python/{sys.version_info[0]}.{sys.version_info[1]}",
            "initialPositionInStream": "TRIM_HORIZON",
            "regionName": REGION,
            "kinesisEndpoint": kinesis_endpoint,
            "dynamoDBEndpoint": dynamodb_endpoint,
            "cloudWatchClient.endpointOverride": dynamodb_endpoint,
            "metricsLevel": "NONE",
            "retrievalMode": mode,
            # KCL's defaults are tuned for AWS (tens of seconds); a test wants seconds.
            "failoverTimeMillis": 6000,
            "leaseAssignmentIntervalMillis": 1000,
            "shardSyncIntervalMillis": 2000,
            "parentShardPollIntervalMillis": 500,
            "idleTimeBetweenReadsInMillis": 250,
            "taskBackoffTimeMillis": 500,
            "schedulerInitializationBackoffTimeMillis": 500,
            "listShardsBackoffTimeInMillis": 500,
            "workerMetricsReporterFreqInMillis": 1000,
            "maxRecords": 1000,
            "cleanupLeasesUponShardCompletion": "false",
        }
        self.props_path = d / "kcl.properties"
        self.props_path.write_text("".join(f"{k} = {v}\n" for k, v in props.items()))
        logback = d / "logback.xml"
        logback.write_text(LOGBACK.format(log=self.log_path))
        env = dict(
            os.environ,
            AWS_ACCESS_KEY_ID="AKIDTEST",
            AWS_SECRET_ACCESS_KEY="secret",
            AWS_REGION=REGION,
            AWS_EC2_METADATA_DISABLED="true",
            RIFFLE_KCL_OUT=str(self.out),
            PYTHONPATH=str(ROOT / "tests" / "python"),
        )
        self.stdio = open(d / "kcl.stdout", "wb")
        self.proc = subprocess.Popen(
            [JAVA, f"-Dlogback.configurationFile={logback}", "-cp", f"{jar_dir()}/*",
             "software.amazon.kinesis.multilang.MultiLangDaemon",
             "--properties-file", str(self.props_path)],
            cwd=d, env=env, stdout=self.stdio, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def events(self):
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.endswith("}")]

    def records(self):
        return [e for e in self.events() if e["event"] == "record"]

    def diagnostics(self):
        tail = self.log_path.read_text()[-6000:] if self.log_path.exists() else ""
        return f"KCL log tail ({self.log_path}):\n{tail}"

    def wait_for(self, what, check, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"MultiLangDaemon exited {self.proc.returncode}\n{self.diagnostics()}"
            if check():
                return
            time.sleep(0.25)
        raise AssertionError(f"KCL: {what} not within {timeout} s\n{self.diagnostics()}")

    def stop(self):
        """Ends the JVM and its record processors (one process group)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.stdio.close()


KEYS = [f"user-{i}" for i in range(8)]


def put_round(k, name, round_no):
    """Puts 2 records per key in one PutRecords; returns them as
    {partition_key, data, shard_id, sequence_number}."""
    entries = [
        {"PartitionKey": key, "Data": f"{key}/{round_no}/{n}".encode() + bytes([0, 0xFF, round_no, n])}
        for n in range(2) for key in KEYS
    ]
    res = k.put_records(StreamName=name, Records=entries)
    assert res["FailedRecordCount"] == 0
    return [
        {"partition_key": e["PartitionKey"], "data": b64(e["Data"]), "shard_id": r["ShardId"], "sequence_number": r["SequenceNumber"]}
        for e, r in zip(entries, res["Records"])
    ]


def leases(dynamodb, table):
    items = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return {i["leaseKey"]["S"]: i for i in items}


def run_kcl_across_reshard(mode, start_server, moto, tmp_path):
    """2 shards and records; KCL starts from TRIM_HORIZON; once it is
    reading, UpdateShardCount to 4 (splits) and more records, then back to 2
    (merges: children of two parents) and more records. Every record must be
    processed, per key in put order, every parent shard drained before its
    children start, and the checkpoints must reach DynamoDB."""
    s = start_server()
    k = s.client()
    name, app = unique("kcl"), unique("app")
    k.create_stream(StreamName=name, ShardCount=2)
    wait_active(k, name)
    put = put_round(k, name, 0)

    kcl = Kcl(tmp_path, name, app, s.endpoint, moto.endpoint, mode)
    try:
        # KCL 3 waits a random 1-30 s for another worker to fill an empty lease table first.
        kcl.wait_for("a first record processed", lambda: kcl.records(), 75)
        for round_no, target in ((1, 4), (2, 2)):
            k.update_shard_count(StreamName=name, TargetShardCount=target, ScalingType="UNIFORM_SCALING")
            wait_active(k, name)
            put += put_round(k, name, round_no)
        shards = k.list_shards(StreamName=name)["Shards"]
        parents = {sh["ShardId"]: [p for p in (sh.get("ParentShardId"), sh.get("AdjacentParentShardId")) if p] for sh in shards}
        sid = "shardId-{:012d}".format
        assert parents == {
            sid(0): [], sid(1): [], sid(2): [sid(0)], sid(3): [sid(0)], sid(4): [sid(1)], sid(5): [sid(1)],
            sid(6): [sid(2), sid(3)], sid(7): [sid(4), sid(5)],
        }
        assert [{r["shard_id"] for r in put[n * 2 * len(KEYS):(n + 1) * 2 * len(KEYS)]} for n in range(3)] == [
            {sid(0), sid(1)}, {sid(2), sid(3), sid(4), sid(5)}, {sid(6), sid(7)}
        ]
        want = {r["sequence_number"] for r in put}
        kcl.wait_for(f"all {len(want)} records processed", lambda: want <= {r["sequence_number"] for r in kcl.records()}, 90)

        # Checkpoints reach DynamoDB: SHARD_END for the closed parents, the
        # last record's sequence number for the open children.
        dynamodb = moto.dynamodb()
        last = {}
        for r in put:
            last[r["shard_id"]] = r["sequence_number"]
        closed = {sh["ShardId"] for sh in shards if "EndingSequenceNumber" in sh["SequenceNumberRange"]}
        assert closed == {sid(n) for n in range(6)}
        expected = {shard: "SHARD_END" if shard in closed else last[shard] for shard in parents}
        kcl.wait_for(
            "checkpoints in DynamoDB",
            lambda: {shard: l.get("checkpoint", {}).get("S") for shard, l in leases(dynamodb, app).items()} == expected,
            30,
        )
        events = kcl.events()
        tables = set(dynamodb.list_tables()["TableNames"])
    finally:
        kcl.stop()

    got = [e for e in events if e["event"] == "record"]
    # Exactly what was put, each record at least once, on the shard it was acknowledged on.
    by_seq = {r["sequence_number"]: r for r in put}
    assert {e["sequence_number"] for e in got} == set(by_seq)
    for e in got:
        assert {f: e[f] for f in ("partition_key", "data", "shard_id", "sequence_number")} == by_seq[e["sequence_number"]]
    # Per key, records are first processed in put order, across the reshard.
    for key in KEYS:
        firsts = list(dict.fromkeys(e["sequence_number"] for e in got if e["partition_key"] == key))
        assert firsts == [r["sequence_number"] for r in put if r["partition_key"] == key], key
    # A child shard's processor starts only after its parents ended.
    first_at = {}
    for n, e in enumerate(events):
        first_at.setdefault((e["event"], e["shard_id"]), n)
    for child, ps in parents.items():
        for p in ps:
            assert first_at[("shard_ended", p)] < first_at[("initialize", child)], (child, p)
    assert not [e for e in events if e["event"] == "checkpoint_error"]
    assert {app, f"{app}-CoordinatorState", f"{app}-WorkerMetricStats"} <= tables, tables
    return s, k, name, app


def test_kcl3_polling_across_reshard(start_server, moto, tmp_path):
    s, k, name, app = run_kcl_across_reshard("POLLING", start_server, moto, tmp_path)
    assert metric(s.endpoint, "GetRecords") > 0
    assert metric(s.endpoint, "SubscribeToShard") == 0
    assert k.list_stream_consumers(StreamARN=k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"])["Consumers"] == []


def test_kcl3_enhanced_fan_out_across_reshard(start_server, moto, tmp_path):
    s, k, name, app = run_kcl_across_reshard("FANOUT", start_server, moto, tmp_path)
    assert metric(s.endpoint, "SubscribeToShard") >= 8
    assert metric(s.endpoint, "GetRecords") == 0
    arn = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    assert [(c["ConsumerName"], c["ConsumerStatus"]) for c in k.list_stream_consumers(StreamARN=arn)["Consumers"]] == [(app, "ACTIVE")]
