"""SIGKILL under Firehose load, through the real server and boto3: writers
run PutRecordBatch and PutRecord against a DirectPut delivery stream whose
S3 destinations deliver to a bucket of the embedded S3 (zero buffering and
a 1 s interval, AppendDelimiterToRecord), the server is killed with SIGKILL at random
moments and restarted on the same data directory, and at the end every
acknowledged record must be in the delivered objects, read back through
the embedded S3 with boto3.

Delivery is at-least-once: a record is delivered twice only when the
process died between storing an object and persisting its checkpoint, so
each kill can cause one object's records per delivery stream to be
delivered again, no more.
The same ground with power loss (on a simulated file system) is covered in
`crates/riffle-firehose/tests/power.rs`."""
import hashlib
import random
import threading
import time

import botocore.exceptions

from conftest import ACCOUNT, Server, unique

ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"
KILLS = 5


def payload(i):
    """Record i's exact bytes: no delimiter inside, lengths vary."""
    digest = hashlib.sha256(b"%d" % i).hexdigest()
    return b"rec-%d-" % i + digest[: (i * 7) % 64].encode()


def record_id(data):
    return int(data.split(b"-")[1])


class Writers:
    """Threads sending uniquely numbered records and noting each one
    acknowledged."""

    def __init__(self, server, names, threads=3):
        self.server, self.names = server, names
        self.acked = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.next = 0
        self.errors = 0
        self.rng = random.Random(11)
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def ids(self, n):
        with self.lock:
            first = self.next
            self.next += n
        return range(first, first + n)

    def run(self):
        client = None
        while not self.stop.is_set():
            try:
                client = client or self.server.client("firehose", connect_timeout=1, read_timeout=5)
                with self.lock:
                    n = self.rng.randint(1, 60)
                    name = self.rng.choice(self.names)
                ids = self.ids(n)
                if n == 1:
                    client.put_record(DeliveryStreamName=name, Record={"Data": payload(ids[0])})
                    done = list(ids)
                else:
                    resp = client.put_record_batch(DeliveryStreamName=name, Records=[{"Data": payload(i)} for i in ids])
                    done = [i for i, r in zip(ids, resp["RequestResponses"]) if "RecordId" in r and "ErrorCode" not in r]
                with self.lock:
                    self.acked.update(done)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, ConnectionError):
                self.errors += 1
                client = None
                time.sleep(0.05)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def delivered(s3, bucket):
    """Every object of the bucket: {key: body}."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def copies_of(objects):
    """{record id: [key, ...]}: where each record was delivered. Every record
    in every object is one that was sent, whole and byte-exact."""
    where = {}
    for key, body in objects.items():
        assert body.endswith(b"\n"), f"{key} does not end with the delimiter"
        for data in body[:-1].split(b"\n"):
            i = record_id(data)
            assert data == payload(i), f"{key}: record {i} is not what was sent: {data[:80]!r}"
            where.setdefault(i, []).append(key)
    return where


def clusters(where):
    """Groups of objects that share a record (union-find): delivering an
    object's records again after a kill makes one group."""
    parent = {}

    def find(k):
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for keys in where.values():
        for k in keys[1:]:
            parent[find(k)] = find(keys[0])
    groups = {}
    for keys in where.values():
        if len(keys) > 1:
            groups.setdefault(find(keys[0]), set()).update(keys)
    return list(groups.values())


def test_sigkill_under_firehose_load_loses_nothing_acknowledged():
    server = Server("--status-delay-ms", "0").start()
    try:
        fh = server.client("firehose")
        s3 = server.client("s3")
        bucket = unique("fh-durable")
        s3.create_bucket(Bucket=bucket)
        # Zero buffering (an object per read) and a 1 s interval.
        names = [unique("fh-crash0"), unique("fh-crash1")]
        for interval, name in enumerate(names):
            fh.create_delivery_stream(
                DeliveryStreamName=name,
                DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration={
                    "RoleARN": ROLE,
                    "BucketARN": f"arn:aws:s3:::{bucket}",
                    "Prefix": f"{name}/",
                    "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval},
                    "ProcessingConfiguration": {
                        "Enabled": True,
                        "Processors": [
                            {"Type": "AppendDelimiterToRecord", "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "\\n"}]}
                        ],
                    },
                },
            )
        for name in names:
            deadline = time.time() + 10
            while fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
                assert time.time() < deadline
                time.sleep(0.05)
        rng = random.Random(7)
        with Writers(server, names) as writers:
            for _ in range(KILLS):
                time.sleep(rng.uniform(0.3, 1.8))
                server.kill()
                server.restart()
            time.sleep(0.5)
        acked = set(writers.acked)
        assert len(acked) > 1000, f"only {len(acked)} records acknowledged ({writers.errors} errors)"
        s3 = server.client("s3")
        deadline = time.time() + 60
        while True:
            where = copies_of(delivered(s3, bucket))
            missing = acked - where.keys()
            if not missing or time.time() > deadline:
                break
            time.sleep(0.5)
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged records were never delivered, e.g. {sorted(missing)[:5]}"
        # Redelivery only across kills: at most one group of objects sharing
        # records per kill and delivery stream, and no record more often
        # than once per process.
        groups = clusters(where)
        twice = [i for i, keys in where.items() if len(keys) > 1]
        assert len(groups) <= KILLS * len(names), f"{len(groups)} groups of objects share records after {KILLS} kills: {groups}"
        assert max(len(k) for k in where.values()) <= KILLS + 1
        objects = len({k for keys in where.values() for k in keys})
        print(
            f"{len(acked)} records acknowledged across {KILLS} kills ({writers.errors} failed calls), "
            f"all delivered in {objects} objects; {len(twice)} delivered twice in {len(groups)} groups"
        )
    finally:
        server.stop()
        server.cleanup()
