"""`riffle bench` against a server started for the test: short runs of the
write (with read-back verification and end-to-end) and mixed phases, so the
bench keeps working and keeps reporting what it measures."""
import re
import subprocess

from conftest import riffle_bin


def bench(server, *flags):
    out = subprocess.run(
        [riffle_bin(), "bench", "--endpoint", server.endpoint, *flags],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def assert_deleted(server):
    """Every stream the bench made is being deleted or gone."""
    k = server.client()
    for name in k.list_streams()["StreamNames"]:
        try:
            status = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
        except k.exceptions.ResourceNotFoundException:
            continue
        assert status == "DELETING", name


def line(report, pattern):
    m = re.search(pattern, report, re.MULTILINE)
    assert m, f"no line matching {pattern!r} in:\n{report}"
    return m


def test_write_read_and_e2e_phases_report_every_acknowledged_record(start_server):
    server = start_server()
    report = bench(
        server,
        "--phase", "all",
        "--duration-secs", "1",
        "--e2e-secs", "1",
        "--e2e-rate", "200",
        "--connections", "2",
        "--shards", "2",
        "--batch", "50",
    )
    acked = int(line(report, r"^write: (\d+) records acked in [\d.]+ s = \d+ records/s, [\d.]+ MiB/s payload; (\d+) throttled/failed entries, (\d+) failed calls; PutRecords latency ").group(1))
    assert acked > 0
    write = line(report, r"^write: \d+ records acked .*; (\d+) throttled/failed entries, (\d+) failed calls;")
    assert (write.group(1), write.group(2)) == ("0", "0"), report
    read = int(line(report, r"^read: (\d+) records from 2 shards in ").group(1))
    assert read >= acked
    verify = line(report, r"^verify: (\d+) acknowledged, (\d+) lost, (\d+) duplicates, (\d+) with a different shard or sequence number$")
    assert verify.groups() == (str(acked), "0", "0", "0"), report
    e2e = line(report, r"^e2e: (\d+) records at 200 records/s over 1 s, (\d+) received; put→get latency ")
    assert int(e2e.group(1)) > 0 and e2e.group(1) == e2e.group(2), report
    # The bench deletes its stream afterwards.
    assert_deleted(server)


def test_mixed_phase_reports_writes_reads_and_control_without_errors(start_server):
    server = start_server()
    report = bench(
        server,
        "--phase", "mixed",
        "--streams", "2",
        "--shards", "1",
        "--duration-secs", "1",
        "--connections", "2",
        "--batch", "20",
    )
    line(report, r"^riffle bench --phase mixed → .*: 2 streams × 1 shards, 2 writer connections, 20 records × 100 bytes per PutRecords$")
    for what in ["mixed write \\(PutRecords\\)", "mixed read \\(GetRecords\\)", "mixed control \\(tag, describe, list\\)"]:
        m = line(report, rf"^{what}: (\d+) records/s, (\d+) calls/s, (\d+) errors, latency ")
        assert int(m.group(2)) > 0, report
        assert m.group(3) == "0", report
        if "control" not in what:
            assert int(m.group(1)) > 0, report
    assert_deleted(server)
