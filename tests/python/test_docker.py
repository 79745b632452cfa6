"""Riffle as the container image runs it: configured by RIFFLE_LISTEN and
RIFFLE_DATA_DIR alone, checked by `riffle health`; docker-compose.yml is
checked against the Dockerfile without Docker. The image itself is built and
run only when RIFFLE_TEST_DOCKER=1 and a Docker daemon answers with the base
images present (a release build from scratch takes longer than the CI
budget); everything it relies on is tested everywhere."""
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import botocore.config
import pytest
import yaml

from conftest import REGION, ROOT, free_port, riffle_bin, unique, wait_active


class EnvServer:
    """`riffle serve` with no flags, configured only by its environment, as
    the image's entrypoint runs it."""

    def __init__(self, tmp_path, listen_host="0.0.0.0", port=None):
        self.port = port or free_port()
        self.data_dir = tmp_path / "data"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "RIFFLE_LISTEN": f"{listen_host}:{self.port}",
            "RIFFLE_DATA_DIR": str(self.data_dir),
            "RIFFLE_STATUS_DELAY_MS": "0",
        }
        self.log_path = tmp_path / "server.log"
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([riffle_bin(), "serve"], env=self.env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_riffle/health", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("riffle did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        self.log.close()

    def client(self):
        return boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{self.port}", region_name=REGION,
                            aws_access_key_id="test", aws_secret_access_key="test",
                            config=botocore.config.Config(retries={"max_attempts": 0}))


@pytest.fixture
def env_server(tmp_path):
    s = EnvServer(tmp_path).start()
    yield s
    s.stop()


def health(*args, env=None, timeout=30):
    """Runs `riffle health`; returns (exit code, stdout, stderr)."""
    e = {"PATH": os.environ.get("PATH", ""), **(env or {})}
    out = subprocess.run([riffle_bin(), "health", *args], env=e, capture_output=True, text=True, timeout=timeout)
    return out.returncode, out.stdout.strip(), out.stderr.strip()


def local_addresses():
    """This machine's IPv4 addresses other than 127.0.0.1, as far as they
    can be found without sending anything."""
    found = set()
    try:
        found |= {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.connect(("10.255.255.255", 1))  # picks a route; sends nothing
            found.add(u.getsockname()[0])
    except OSError:
        pass
    if sys.platform.startswith("linux"):
        found.add("127.0.0.2")  # all of 127/8 is the loopback on Linux
    return found - {"127.0.0.1", "0.0.0.0"}


def reachable(addr, port):
    try:
        with urllib.request.urlopen(f"http://{addr}:{port}/_riffle/health", timeout=5) as r:
            return r.read() == b"ok\n"
    except OSError:
        return False


def test_serve_listens_on_the_wildcard_address_from_riffle_listen(env_server):
    assert re.search(rf"listen=0\.0\.0\.0:{env_server.port}\b", env_server.log_path.read_text())
    k = env_server.client()
    name = unique()
    k.create_stream(StreamName=name, ShardCount=1)
    wait_active(k, name)
    k.put_record(StreamName=name, Data=b"hello", PartitionKey="a")
    # Reachable on every local address, not only the loopback.
    addrs = local_addresses()
    if not addrs:
        pytest.skip("no local address other than 127.0.0.1 found")
    for addr in addrs:
        assert reachable(addr, env_server.port), addr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="127.0.0.2 is a loopback address on Linux only")
def test_a_loopback_listen_address_is_not_the_wildcard(tmp_path):
    # The control for the test above: 127.0.0.1 is not reachable as 127.0.0.2.
    s = EnvServer(tmp_path, listen_host="127.0.0.1").start()
    try:
        assert reachable("127.0.0.1", s.port)
        assert not reachable("127.0.0.2", s.port)
    finally:
        s.stop()


def test_serve_keeps_its_data_in_riffle_data_dir(tmp_path):
    s = EnvServer(tmp_path).start()
    try:
        k = s.client()
        name = unique()
        k.create_stream(StreamName=name, ShardCount=1)
        wait_active(k, name)
        seq = k.put_record(StreamName=name, Data=b"kept", PartitionKey="a")["SequenceNumber"]
    finally:
        s.stop()
    assert (s.data_dir / "meta.redb").is_file()
    assert any((s.data_dir / "streams").iterdir())
    # A new process on the same directory (a container on the same volume)
    # has the stream and its record.
    s2 = EnvServer(tmp_path, port=s.port).start()
    try:
        k = s2.client()
        assert k.list_streams()["StreamNames"] == [name]
        it = k.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        recs = k.get_records(ShardIterator=it)["Records"]
        assert [(r["Data"], r["SequenceNumber"]) for r in recs] == [(b"kept", seq)]
    finally:
        s2.stop()


def test_health_exits_zero_for_a_running_server(env_server):
    # As the image's HEALTHCHECK runs it: the address comes from RIFFLE_LISTEN.
    assert health(env={"RIFFLE_LISTEN": f"0.0.0.0:{env_server.port}"}) == (0, "ok", "")
    assert health("--listen", f"127.0.0.1:{env_server.port}") == (0, "ok", "")


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_health_checks_an_ipv6_wildcard_on_the_ipv6_loopback(tmp_path):
    s = EnvServer(tmp_path, listen_host="[::]").start()
    try:
        assert health(env={"RIFFLE_LISTEN": f"[::]:{s.port}"}) == (0, "ok", "")
    finally:
        s.stop()


def test_health_exits_one_for_a_stopped_server(tmp_path):
    s = EnvServer(tmp_path).start()
    assert health("--listen", f"127.0.0.1:{s.port}")[0] == 0
    s.stop()
    code, out, err = health("--listen", f"127.0.0.1:{s.port}")
    assert (code, out) == (1, "")
    assert f"riffle at 127.0.0.1:{s.port} is not healthy" in err
    assert "refused" in err.lower()


def test_health_exits_one_when_something_else_answers():
    class NotRiffle(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"nope")

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotRiffle)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        code, _, err = health("--listen", f"127.0.0.1:{srv.server_address[1]}")
    finally:
        srv.shutdown()
    assert code == 1
    assert "404" in err


def test_health_exits_one_when_nothing_answers_in_time():
    # A socket that accepts connections and never answers.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        started = time.monotonic()
        code, _, err = health("--listen", f"127.0.0.1:{s.getsockname()[1]}", "--timeout-ms", "500")
    assert code == 1
    assert "no answer within 500 ms" in err
    assert time.monotonic() - started >= 0.5


# ------------------------------------------------------------------- the image


def base_images():
    """The FROM images of the Dockerfile, with its ARG defaults filled in."""
    text = (ROOT / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
    images = []
    for ref in re.findall(r"^FROM (\S+)", text, re.M):
        images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], ref))
    return images


def docker(*args, timeout=60, check=True):
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {out.stderr}")
    return out


def docker_unavailable():
    """Why the image cannot be built here, or None."""
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s"
    if info.returncode != 0:
        return f"`docker info` failed, no Docker daemon: {info.stderr.strip().splitlines()[-1] if info.stderr.strip() else info.returncode}"
    for image in base_images():
        if docker("image", "inspect", image, check=False).returncode == 0:
            continue
        try:
            pulled = docker("pull", "--quiet", image, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            return f"base image {image} is not present and `docker pull` timed out"
        if pulled.returncode != 0:
            return f"base image {image} is not present and cannot be pulled: {pulled.stderr.strip()}"
    return None


def dockerfile():
    """The runtime stage's ENV, VOLUME, EXPOSE and HEALTHCHECK."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    runtime = text[text.rindex("\nFROM "):]
    env = dict(re.findall(r"(\w+)=(\S+)", re.search(r"^ENV (.*)$", runtime, re.M).group(1)))
    health = re.search(r"^HEALTHCHECK (.*?) CMD (\[.*\])$", runtime, re.M)
    return {
        "env": env,
        "volume": re.search(r'^VOLUME \["(.*)"\]$', runtime, re.M).group(1),
        "expose": re.search(r"^EXPOSE (\d+)$", runtime, re.M).group(1),
        "health_options": dict(re.findall(r"--([\w-]+)=(\S+)", health.group(1))),
        "health_cmd": json.loads(health.group(2)),
    }


def test_compose_file_matches_the_dockerfile():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    image = dockerfile()
    assert image["env"] == {"RIFFLE_LISTEN": "0.0.0.0:4566", "RIFFLE_DATA_DIR": "/var/lib/riffle"}
    assert (image["volume"], image["expose"]) == ("/var/lib/riffle", "4566")
    assert list(compose["services"]) == ["riffle"]
    riffle = compose["services"]["riffle"]
    assert (riffle["build"], riffle["image"]) == (".", "riffle:local")
    # The port the image listens on, published as 4566.
    assert riffle["ports"] == [f"4566:{image['expose']}"]
    # The named volume, declared at the top level, mounted where the image keeps its data.
    assert riffle["volumes"] == [f"riffle-data:{image['volume']}"]
    assert compose["volumes"] == {"riffle-data": None}
    # The same health check as the image's.
    hc = riffle["healthcheck"]
    assert hc["test"] == ["CMD", *image["health_cmd"]] == ["CMD", "riffle", "health"]
    assert {k: str(hc[k.replace("-", "_")]) for k in image["health_options"]} == image["health_options"]
    # The streams to create are in a form `riffle serve` reads, and stopping leaves time for the shutdown grace.
    assert riffle["environment"] == {"RIFFLE_STREAMS": "orders:2,clicks"}
    assert riffle["stop_grace_period"] == "15s"


def test_compose_environment_starts_a_server_with_its_streams(tmp_path):
    """`riffle serve` with the compose file's environment creates its streams."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    s = EnvServer(tmp_path, listen_host="127.0.0.1")
    s.env.update(compose["services"]["riffle"]["environment"])
    s.start()
    try:
        k = s.client()
        assert sorted(k.list_streams()["StreamNames"]) == ["clicks", "orders"]
        orders = k.describe_stream_summary(StreamName="orders")["StreamDescriptionSummary"]
        clicks = k.describe_stream_summary(StreamName="clicks")["StreamDescriptionSummary"]
        assert (orders["OpenShardCount"], orders["StreamModeDetails"]["StreamMode"]) == (2, "PROVISIONED")
        assert clicks["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
    finally:
        s.stop()


@pytest.mark.timeout(3600)  # a release build from scratch
@pytest.mark.skipif(os.environ.get("RIFFLE_TEST_DOCKER") != "1",
                    reason="building the image takes longer than the CI budget: set RIFFLE_TEST_DOCKER=1")
def test_the_image_serves_with_a_volume_and_reports_healthy():
    reason = docker_unavailable()
    if reason:
        pytest.skip(reason)
    tag = f"riffle-test:{uuid.uuid4().hex[:8]}"
    volume = f"riffle-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    docker("build", "-t", tag, str(ROOT), timeout=3600)
    container = None
    try:
        def run():
            return docker("run", "-d", "-p", f"127.0.0.1:{port}:4566", "-v", f"{volume}:/var/lib/riffle",
                          "--health-interval", "1s", "--health-start-period", "30s", tag).stdout.strip()

        def wait_healthy(cid):
            deadline = time.time() + 60
            while time.time() < deadline:
                status = docker("inspect", "--format", "{{.State.Health.Status}}", cid).stdout.strip()
                if status == "healthy":
                    return
                time.sleep(0.5)
            raise AssertionError(f"container not healthy: {docker('logs', cid, check=False).stderr}")

        container = run()
        wait_healthy(container)
        assert docker("exec", container, "id", "-u").stdout.strip() != "0"
        k = boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
                         aws_access_key_id="test", aws_secret_access_key="test")
        k.create_stream(StreamName="in-docker", ShardCount=1)
        wait_active(k, "in-docker")
        k.put_record(StreamName="in-docker", Data=b"kept", PartitionKey="a")
        # `docker stop` is SIGTERM: a clean shutdown; a new container on
        # the same volume has the data.
        docker("stop", container, timeout=60)
        docker("rm", container)
        container = run()
        wait_healthy(container)
        it = k.get_shard_iterator(StreamName="in-docker", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        assert [r["Data"] for r in k.get_records(ShardIterator=it)["Records"]] == [b"kept"]
    finally:
        if container:
            docker("rm", "-f", container, check=False)
        docker("volume", "rm", "-f", volume, check=False)
        docker("image", "rm", "-f", tag, check=False)
