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
    assert events[-1]["continuation_sequence_number"] == sent[-1]["sequence_number"]
    # After records arrive, each event's continuation is the last record delivered so far.
    delivered = 0
    for e in events:
        delivered += e["records"]
        if delivered:
            assert e["continuation_sequence_number"] == sent[delivered - 1]["sequence_number"], events

    (wire,) = ev["wire"]
    ops = wire["operations"]
    # The SDK sends SubscribeToShard as JSON and reads an event stream back;
    # everything else is CBOR.
    assert ops.pop("SubscribeToShard") == ["application/x-amz-json-1.1", "application/vnd.amazon.eventstream"]
    assert ops == {op: [CBOR, CBOR] for op in ("DescribeStreamConsumer", "DescribeStreamSummary", "ListShards", "PutRecord", "RegisterStreamConsumer")}
    assert metric(s.endpoint, "SubscribeToShard") == 1
