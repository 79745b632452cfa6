"""`riffle demo clickstream`, run as a user runs it: a real PostgreSQL of its
own, `riffle serve` as its child, clicks through Firehose and the Analytics
application into the warehouse tables.

Checked: a seeded run ends by itself and prints exactly the final
recommendations that seed's clicks give (they were checked once against
the raw clicks the demo keeps in S3); SIGINT and SIGTERM stop it cleanly
with every acknowledged click counted; bad flags and a taken port give a
clear error; and whatever way it ends, it leaves no process and no
directory behind."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import riffle_bin


def postgres_available():
    """initdb and pg_ctl on PATH or where Debian puts them, as the demo
    looks for them."""
    if shutil.which("initdb"):
        return True
    return any(Path(d, "initdb").exists() and Path(d, "pg_ctl").exists() for d in Path("/usr/lib/postgresql").glob("*/bin"))


needs_postgres = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not installed (scripts/test installs Debian's postgresql package)")

# Seed 7 at 300 clicks/s for 25 s: 3,162 sessions, 7,501 clicks. The
# co-viewed products are those most often in the same session (every pair
# count in `pairs` matched the raw clicks).
SEED_7_FINAL = [
    "== final recommendations ==",
    "top: p035 views=1402 purchases=40",
    "top: p012 views=991 purchases=20",
    "top: p028 views=709 purchases=9",
    "top: p025 views=388 purchases=10",
    "top: p013 views=341 purchases=8",
    "also-viewed: p035 -> p012,p028,p013",
    "also-viewed: p012 -> p035,p028,p013",
    "also-viewed: p028 -> p035,p012,p013",
    "also-viewed: p025 -> p035,p012,p028",
    "also-viewed: p013 -> p035,p012,p028",
    "totals: events=7501 views=7336 purchases=165 revenue=7157.35",
]


@pytest.fixture
def tmpdir_env():
    """A TMPDIR of the test's own, so that what the demo leaves in it can
    be seen. PostgreSQL may run as another user: it must reach it."""
    d = tempfile.mkdtemp(prefix="riffle-demo-test-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def demo(tmp, *flags, **kw):
    env = dict(os.environ, TMPDIR=tmp)
    return subprocess.Popen([riffle_bin(), "demo", "clickstream", *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw)


def processes_mentioning(text):
    """Processes whose command line names `text` (the demo's directory)."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmdline = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append((p.name, cmdline))
    return found


def assert_nothing_left(tmp, out):
    m = re.search(r"^working directory (\S+)$", out, re.M)
    assert m, out
    workdir = m.group(1)
    assert workdir.startswith(tmp + "/"), workdir
    assert not os.path.exists(workdir)
    assert os.listdir(tmp) == []
    # PostgreSQL may take a moment to be gone after pg_ctl returns.
    deadline = time.time() + 5
    while processes_mentioning(workdir):
        assert time.time() < deadline, processes_mentioning(workdir)
        time.sleep(0.1)


def final_section(out):
    """The final recommendations: the header and the lines after it."""
    lines = out.splitlines()
    start = lines.index("== final recommendations ==")
    section = [lines[start]]
    for line in lines[start + 1 :]:
        if not re.match(r"(top|also-viewed|anomaly|totals): ", line):
            break
        section.append(line)
    return section


@needs_postgres
def test_a_seeded_run_prints_the_recommendations_its_clicks_give(tmpdir_env):
    p = demo(tmpdir_env, "--seed", "7", "--rate", "300", "--duration", "25")
    out, err = p.communicate(timeout=240)
    assert p.returncode == 0, out + err
    assert "application clickstream RUNNING" in out
    # Progress lines while it ran, then the drain.
    assert re.search(r"^\[0:05\] clicks generated \d+ · acknowledged \d+", out, re.M), out
    assert "done sending after" in out and "7501 clicks acknowledged" in out
    # Recommendations while running, read back from PostgreSQL.
    assert re.search(r"^  top products now \(last 30 s\): p\d{3} \(\d+ views\)", out, re.M), out
    assert re.search(r"^  people who viewed p\d{3} also viewed p\d{3}, p\d{3}, p\d{3}$", out, re.M), out
    # The final recommendations: exactly what seed 7's clicks give, every
    # acknowledged click counted once. No anomaly lines: the forest
    # learns from 64 one-second windows before it scores.
    assert final_section(out) == SEED_7_FINAL, out
    assert_nothing_left(tmpdir_env, out)


@needs_postgres
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_it_cleanly_with_every_click_counted(tmpdir_env, sig):
    p = demo(tmpdir_env, "--seed", "3", "--rate", "150")
    lines = []
    deadline = time.time() + 120
    while True:
        line = p.stdout.readline()
        assert line, "".join(lines) + p.stderr.read()
        lines.append(line)
        if line.startswith("[0:05]"):
            break
        assert time.time() < deadline, "".join(lines)
    p.send_signal(sig)
    rest, err = p.communicate(timeout=90)
    out = "".join(lines) + rest
    assert p.returncode == 0, out + err
    m = re.search(r"^stopping after [\d.]+ s: (\d+) clicks acknowledged", out, re.M)
    assert m, out
    acked = int(m.group(1))
    assert acked >= 5 * 150
    final = final_section(out)
    assert final[0] == "== final recommendations ==" and len([x for x in final if x.startswith("top: ")]) == 5, out
    totals = re.fullmatch(r"totals: events=(\d+) views=(\d+) purchases=(\d+) revenue=\d+\.\d\d", final[-1])
    assert totals, final
    events, views, purchases = map(int, totals.groups())
    assert events == acked and views + purchases == acked, out
    assert "had not drained" not in out
    assert_nothing_left(tmpdir_env, out)


def test_bad_flags_are_refused_before_anything_starts(tmpdir_env):
    for flags, message in [
        (["--rate", "0"], "0 is not in 1..=5000"),
        (["--rate", "lots"], "invalid value 'lots' for '--rate <RATE>'"),
        (["--duration", "0"], "0 is not in 1..=86400"),
        (["--port", "70000"], "70000 is not in 1..=65535"),
    ]:
        p = demo(tmpdir_env, *flags)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 2, (flags, out, err)
        assert message in err, (flags, err)
        assert out == ""
    assert os.listdir(tmpdir_env) == []


@needs_postgres
def test_a_taken_port_is_a_clear_error_and_nothing_is_left(tmpdir_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = demo(tmpdir_env, "--port", str(port), "--duration", "5")
        out, err = p.communicate(timeout=120)
    assert p.returncode == 1, out + err
    assert "riffle demo: riffle serve exited at start-up" in err, err
    assert f"127.0.0.1:{port}" in err, err
    assert "== final recommendations ==" not in out
    assert_nothing_left(tmpdir_env, out)
