"""Failure tests of the durable engine, through the real server and boto3:
crashes under load, clean shutdown under load, and a full disk. Bounded in
time; loopback only.

The full-disk test needs a tmpfs mount and skips where mounting is not
allowed. The same ground is covered everywhere, without mounts, on the
simulated file system (`riffle_fs::SimFs`, which injects ENOSPC and EIO into
writes and syncs): `crates/riffle-log/src/disk/power.rs`
(`full_disk_and_io_errors_are_never_acknowledged`: records) and
`crates/riffle-streams/tests/power.rs`
(`a_full_disk_fails_control_operations_whole_and_the_service_goes_on`: the
metadata store under the whole service, and
`power_loss_keeps_the_service_whole`: power loss under metadata and records
together)."""
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import botocore.exceptions
import pytest

from conftest import Server, unique, wait_active


def read_all(client, name):
    """Every record of every shard: {shard_id: [(seq, data), ...]} in read order."""
    out = {}
    for shard in client.list_shards(StreamName=name)["Shards"]:
        sid = shard["ShardId"]
        it = client.get_shard_iterator(StreamName=name, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        recs = []
        while it:
            r = client.get_records(ShardIterator=it, Limit=10000)
            recs += [(x["SequenceNumber"], x["Data"]) for x in r["Records"]]
            if not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
                break
            it = r.get("NextShardIterator")
        out[sid] = recs
    return out


class Writers:
    """Threads putting uniquely numbered records and noting every acknowledgement."""

    def __init__(self, server, name, threads=3, batch=50):
        self.server, self.name, self.batch = server, name, batch
        self.acked = {}  # record id -> (shard, seq)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.next = 0
        self.errors = 0
        self.threads = [threading.Thread(target=self.run, args=(w,), daemon=True) for w in range(threads)]

    def ids(self):
        with self.lock:
            first = self.next
            self.next += self.batch
        return range(first, first + self.batch)

    def run(self, w):
        client = None
        while not self.stop.is_set():
            try:
                client = client or self.server.client(connect_timeout=1, read_timeout=5)
                ids = self.ids()
                resp = client.put_records(
                    StreamName=self.name,
                    Records=[{"Data": f"rec-{i}".encode(), "PartitionKey": f"pk-{i % 97}"} for i in ids],
                )
                with self.lock:
                    for i, r in zip(ids, resp["Records"]):
                        if "SequenceNumber" in r:
                            self.acked[i] = (r["ShardId"], r["SequenceNumber"])
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


def check_everything_acked_is_there(client, name, acked):
    records = read_all(client, name)
    where = {}
    for sid, recs in records.items():
        seqs = [int(s) for s, _ in recs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"{sid}: sequence numbers must strictly increase"
        for seq, data in recs:
            where.setdefault(int(data.split(b"-")[1]), []).append((sid, seq))
    missing = [i for i in acked if i not in where]
    assert missing == [], f"{len(missing)} acknowledged records lost, e.g. {missing[:5]}"
    wrong = [i for i, loc in acked.items() if loc not in where[i]]
    assert wrong == [], f"{len(wrong)} records moved shard or sequence number"
    dups = [i for i, locs in where.items() if len(locs) > 1]
    assert dups == []
    return records


def restart(server):
    return server.restart()


def test_sigkill_under_load_loses_nothing_acknowledged():
    server = Server("--status-delay-ms", "0").start()
    try:
        client = server.client()
        name = unique("crash")
        client.create_stream(StreamName=name, ShardCount=3)
        wait_active(client, name)
        seen_before = {}
        rng = random.Random(7)
        with Writers(server, name) as writers:
            for _ in range(5):
                time.sleep(rng.uniform(0.4, 1.2))
                # What a reader sees now must still be there after the crash.
                try:
                    snapshot = read_all(server.client(), name)
                    for sid, recs in snapshot.items():
                        seen_before.setdefault(sid, set()).update(s for s, _ in recs)
                except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                    pass
                server.kill()
                server.restart()
            time.sleep(0.5)
        assert len(writers.acked) > 1000, f"only {len(writers.acked)} records acknowledged"
        records = check_everything_acked_is_there(server.client(), name, writers.acked)
        for sid, seqs in seen_before.items():
            now = {s for s, _ in records[sid]}
            assert seqs <= now, f"{len(seqs - now)} records of {sid} disappeared after being read"
    finally:
        server.stop()
        server.cleanup()


def test_sigterm_under_load_loses_nothing_acknowledged():
    server = Server("--status-delay-ms", "0").start()
    try:
        client = server.client()
        name = unique("term")
        client.create_stream(StreamName=name, ShardCount=2)
        wait_active(client, name)
        with Writers(server, name) as writers:
            time.sleep(1.0)
            server.proc.send_signal(signal.SIGTERM)
            assert server.proc.wait(timeout=15) == 0
            server.log.close()
        assert len(writers.acked) > 100
        restart(server)
        check_everything_acked_is_there(server.client(), name, writers.acked)
    finally:
        server.stop()
        server.cleanup()


@pytest.fixture
def small_disk():
    """A 24 MiB tmpfs, so the server can run out of space."""
    mnt = tempfile.mkdtemp(prefix="riffle-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", mnt])
    shutil.rmtree(mnt, ignore_errors=True)


def test_disk_full_refuses_writes_then_recovers_without_restart(small_disk):
    data = os.path.join(small_disk, "data")
    server = Server("--status-delay-ms", "0", "--segment-bytes", "1048576")
    server.data_dir = data
    server.log_path = os.path.join(tempfile.mkdtemp(), "server.log")
    from pathlib import Path
    server.log_path = Path(server.log_path)
    server.start()
    try:
        client = server.client()
        name = unique("full")
        client.create_stream(StreamName=name, ShardCount=2)
        wait_active(client, name)
        filler = os.path.join(small_disk, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * 8 * 1024 * 1024)
        acked = {}
        payload = os.urandom(900)
        refused = None
        for n in range(4000):
            ids = range(n * 20, n * 20 + 20)
            try:
                resp = client.put_records(StreamName=name, Records=[{"Data": b"rec-%d-" % i + payload, "PartitionKey": str(i)} for i in ids])
            except botocore.exceptions.ClientError as e:
                refused = e.response
                break
            for i, r in zip(ids, resp["Records"]):
                acked[i] = (r["ShardId"], r["SequenceNumber"])
        assert refused is not None, "the disk never filled up"
        assert (refused["Error"]["Code"], refused["ResponseMetadata"]["HTTPStatusCode"]) == ("InternalFailure", 500)
        # While full, each call either fails whole or is acknowledged whole.
        for n in range(5):
            ids = range(5_000_000 + n * 20, 5_000_000 + n * 20 + 20)
            try:
                resp = client.put_records(StreamName=name, Records=[{"Data": b"rec-%d-" % i + payload, "PartitionKey": str(i)} for i in ids])
            except botocore.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] == "InternalFailure"
                continue
            assert resp["FailedRecordCount"] == 0
            for i, r in zip(ids, resp["Records"]):
                acked[i] = (r["ShardId"], r["SequenceNumber"])
        # Free space: the same server goes on.
        os.remove(filler)
        base = 10_000_000
        resp = client.put_records(StreamName=name, Records=[{"Data": b"rec-%d-after" % (base + i), "PartitionKey": str(i)} for i in range(20)])
        assert resp["FailedRecordCount"] == 0
        for i, r in enumerate(resp["Records"]):
            acked[base + i] = (r["ShardId"], r["SequenceNumber"])
        check_everything_acked_is_there(client, name, acked)
        # And after a restart.
        server.stop()
        restart(server)
        check_everything_acked_is_there(server.client(), name, acked)
    finally:
        server.stop()
