"""Corruption has a way forward: a damaged frame in a sealed segment is
skipped by readers (GetRecords gets past it), `riffle fsck` names it,
`riffle repair --quarantine` moves it out, and every other record keeps its
sequence number. Black box: the real binary, boto3, bytes flipped on disk
at a position found from the layout in crates/riffle-log/design.md."""
import json
import struct
import subprocess
import urllib.request
from pathlib import Path

from conftest import Server, riffle_bin, unique, wait_active

SEG_HEADER = 32
FRAME_HEADER = 36


def frames(seg):
    """(pos, size, shard, first_offset, count) of every frame of a segment
    (design.md: u32 len, u32 crc, kind, flags, 2 reserved, u32 shard,
    u64 first offset, u32 count, i64 base arrival, records)."""
    b = seg.read_bytes()
    out, pos = [], SEG_HEADER
    while pos + FRAME_HEADER <= len(b):
        (length,) = struct.unpack_from("<I", b, pos)
        shard, first, count = struct.unpack_from("<IQI", b, pos + 12)
        out.append((pos, length + 4, shard, first, count))
        pos += length + 4
    assert pos == len(b), "frames do not tile the segment"
    return out


def read_shard(client, name, limit):
    """Every record from TRIM_HORIZON as (sequence number, data), in a
    bounded number of calls: a wedged iterator fails the test."""
    sid = client.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    it = client.get_shard_iterator(StreamName=name, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    recs = []
    for _ in range(500):
        r = client.get_records(ShardIterator=it, Limit=limit)
        recs += [(x["SequenceNumber"], x["Data"]) for x in r["Records"]]
        if not r["Records"] and r["MillisBehindLatest"] == 0:
            return recs
        it = r["NextShardIterator"]
    raise AssertionError("the iterator never reached the end of the shard")


def riffle(*args):
    return subprocess.run([riffle_bin(), *args], capture_output=True, text=True, timeout=60)


def metric(server, name):
    text = urllib.request.urlopen(server.endpoint + "/metrics", timeout=5).read().decode()
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def test_a_damaged_frame_is_skipped_reported_and_quarantined():
    server = Server("--status-delay-ms", "0", "--segment-bytes", "2048").start()
    data_dir = Path(server.data_dir)
    try:
        client = server.client()
        name = unique("rot")
        client.create_stream(StreamName=name, ShardCount=1)
        wait_active(client, name)
        for i in range(80):
            client.put_record(StreamName=name, PartitionKey=f"k{i}", Data=f"record-{i:04d}-".encode() * 4)
        baseline = read_shard(client, name, 10000)
        assert len(baseline) == 80
        server.stop()

        [log_dir] = [p for p in (data_dir / "streams").iterdir() if p.is_dir()]
        sealed = sorted(p for p in log_dir.glob("*.seg") if p.with_suffix(".idx").exists())
        assert len(sealed) >= 3, sorted(log_dir.iterdir())
        seg = sealed[1]
        fs = frames(seg)
        pos, size, shard, first, count = fs[len(fs) // 2]
        assert shard == 0 and count >= 1
        raw = bytearray(seg.read_bytes())
        raw[pos + FRAME_HEADER + 5] ^= 0x20
        seg.write_bytes(bytes(raw))
        lost = set(range(first - 1, first - 1 + count))  # offsets start at 1
        expected = [r for i, r in enumerate(baseline) if i not in lost]

        # Readers get past the damage, whatever their batch size.
        restart = Server("--status-delay-ms", "0", "--segment-bytes", "2048")
        restart.data_dir = server.data_dir
        restart.log_path = server.log_path
        server = restart.start()
        client = server.client()
        for limit in (10000, 7, 1):
            assert read_shard(client, name, limit) == expected
        [skipped] = metric(server, "riffle_log_skipped_corrupt_records_total")
        assert skipped.endswith(f"}} {count}"), skipped

        # fsck refuses a running server's data.
        out = riffle("fsck", "--data-dir", str(data_dir))
        assert out.returncode == 2, out
        assert "running" in out.stderr and "stop it first" in out.stderr
        server.stop()

        # Stopped: fsck names the range.
        out = riffle("fsck", "--data-dir", str(data_dir))
        assert out.returncode == 1, out
        assert f"{seg}: DAMAGED bytes {pos}..{pos + size}" in out.stdout, out.stdout
        assert f"shardId-000000000000 offsets {first}..={first + count - 1}" in out.stdout
        assert f"stream {name}" in out.stdout

        out = riffle("repair", "--data-dir", str(data_dir), "--quarantine")
        assert out.returncode == 0, out
        out = riffle("fsck", "--data-dir", str(data_dir))
        assert out.returncode == 0, out
        q = data_dir / "quarantine" / log_dir.name
        stem = f"{seg.stem}-{pos}"
        assert (q / f"{stem}.bin").read_bytes() == bytes(raw[pos:pos + size])
        note = json.loads((q / f"{stem}.json").read_text())
        assert (note["shard_id"], note["first_offset"], note["count"]) == ("shardId-000000000000", first, count)
        assert (note["byte_start"], note["byte_end"], note["attribution"]) == (pos, pos + size, "index")

        # Same records, same sequence numbers, nothing skipped any more.
        server.proc = None
        server.start()
        client = server.client()
        assert read_shard(client, name, 10000) == expected
        assert read_shard(client, name, 3) == expected
        assert metric(server, "riffle_log_skipped_corrupt_records_total") == []
    finally:
        server.stop()
        server.cleanup()
