"""Shared set-up for the black-box suite: a real `riffle serve` process and
real AWS clients pointed at it."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import botocore.config
import pytest

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "000000000000"


def riffle_bin():
    if os.environ.get("RIFFLE_BIN"):
        return os.environ["RIFFLE_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(Path(target) / "debug" / "riffle")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One riffle process on a free loopback port."""

    def __init__(self, *flags, env=None):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.data_dir = tempfile.mkdtemp(prefix="riffle-test-")
        self.log_path = Path(self.data_dir) / "server.log"
        self.flags = list(flags)
        self.env = dict(os.environ, **(env or {}))
        self.proc = None

    def start(self):
        args = [riffle_bin(), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir, "--test-clock", *self.flags]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, env=self.env)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"riffle exited early: {self.log_path.read_text()}")
            try:
                urllib.request.urlopen(self.endpoint + "/_riffle/health", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("riffle did not start")

    def stop(self, sig=None):
        if self.proc and self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def kill(self):
        """SIGKILL: the process dies at once, nothing flushed or closed."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def restart(self):
        """Starts the server again on the same data directory and port."""
        self.proc = None
        return self.start()

    def advance_clock(self, ms):
        req = urllib.request.Request(self.endpoint + "/_riffle/clock", data=json.dumps({"advance_ms": ms}).encode(), method="POST")
        return json.loads(urllib.request.urlopen(req, timeout=5).read())

    def client(self, service="kinesis", **kw):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=kw.pop("region_name", REGION),
            aws_access_key_id=kw.pop("aws_access_key_id", "AKIDTEST"),
            aws_secret_access_key=kw.pop("aws_secret_access_key", "secret"),
            config=botocore.config.Config(retries={"max_attempts": 0}, **kw),
        )

    def cleanup(self):
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    s = Server().start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture
def start_server():
    """Starts extra servers with their own flags; stops them after the test."""
    started = []

    def start(*flags, env=None):
        s = Server(*flags, env=env).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
        s.cleanup()


@pytest.fixture(scope="session")
def kinesis(server):
    return server.client()


@pytest.fixture(scope="session")
def slow_server():
    """A server whose CREATING/UPDATING/DELETING phases last 3 s, for tests
    that observe them on a busy machine."""
    s = Server("--status-delay-ms", "3000").start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture(scope="session")
def slow_kinesis(slow_server):
    return slow_server.client()


def unique(prefix="s"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_active(client, name, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
        if status == "ACTIVE":
            return
        time.sleep(0.05)
    raise AssertionError(f"stream {name} did not become ACTIVE")


def stream_factory(client):
    """Makes ACTIVE provisioned streams with unique names on `client`, and
    deletes them afterwards: a generator for fixtures."""
    made = []

    def make(shards=1, **kw):
        name = unique()
        client.create_stream(StreamName=name, ShardCount=shards, **kw)
        wait_active(client, name)
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            client.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
        except client.exceptions.ResourceNotFoundException:
            pass


@pytest.fixture
def stream(kinesis):
    """stream(shards) → the name of a new ACTIVE stream."""
    yield from stream_factory(kinesis)


@pytest.fixture
def slow_kinesis_stream(slow_kinesis):
    """Like `stream`, on the slow server."""
    yield from stream_factory(slow_kinesis)


def error_of(excinfo):
    """(code, message, status) of a botocore ClientError."""
    e = excinfo.value.response
    return e["Error"]["Code"], e["Error"].get("Message"), e["ResponseMetadata"]["HTTPStatusCode"]


def aws_cli(endpoint, *args, check=True):
    """Runs the AWS CLI (v1, from PyPI) against riffle; returns parsed JSON or ''."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDTEST", AWS_SECRET_ACCESS_KEY="secret", AWS_DEFAULT_REGION=REGION, AWS_PAGER="")
    out = subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", endpoint, "--output", "json", *args], env=env, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed: {out.stderr}")
    if out.returncode != 0:
        return out
    return json.loads(out.stdout) if out.stdout.strip() else ""
