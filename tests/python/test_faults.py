"""Faults users inject into their own tests, with LocalStack's variables:
KINESIS_ERROR_PROBABILITY (throttling errors on PutRecord and PutRecords)
and KINESIS_LATENCY (how long streams and consumers stay CREATING, UPDATING
or DELETING), plus Riffle's RIFFLE_RESPONSE_DELAY_MS and RIFFLE_FAULT_SEED."""
import subprocess
import time
import urllib.error
import urllib.request

import botocore.exceptions
import cbor2
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import REGION, error_of, riffle_bin, unique, wait_active

THROTTLED = "Rate exceeded for shard X in stream Y under account Z."


def faulty(start_server, probability, *flags, **env):
    """A server with KINESIS_ERROR_PROBABILITY set in its environment, as a
    LocalStack user sets it."""
    env = {"KINESIS_ERROR_PROBABILITY": str(probability), **env}
    return start_server("--status-delay-ms", "0", *flags, env=env)


def records_in(k, name):
    out = []
    for sh in k.list_shards(StreamName=name)["Shards"]:
        it = k.get_shard_iterator(StreamName=name, ShardId=sh["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out += [r["Data"] for r in k.get_records(ShardIterator=it)["Records"]]
    return out


def test_probability_one_fails_every_put_record_with_localstacks_error(start_server):
    s = faulty(start_server, 1.0)
    k = s.client()
    name = unique()
    k.create_stream(StreamName=name, ShardCount=2)
    wait_active(k, name)
    for _ in range(20):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            k.put_record(StreamName=name, Data=b"x", PartitionKey="a")
        assert error_of(e) == ("ProvisionedThroughputExceededException", THROTTLED, 400)
        assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ProvisionedThroughputExceededException:"
    # Nothing was written; reads and control operations are never failed.
    assert records_in(k, name) == []
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 2


def test_probability_one_fails_every_put_records_entry(start_server):
    s = faulty(start_server, 1.0)
    k = s.client()
    name = unique()
    k.create_stream(StreamName=name, ShardCount=1)
    wait_active(k, name)
    for n in (1, 3, 500):
        out = k.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": str(i)} for i in range(n)])
        assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert out["FailedRecordCount"] == n
        assert out["Records"] == [{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": THROTTLED}] * n
    assert records_in(k, name) == []


def test_injected_errors_come_before_the_stream_is_looked_up(start_server):
    # As in LocalStack, the dice are rolled before the service sees the
    # request: a missing stream is throttled too.
    s = faulty(start_server, 1.0)
    k = s.client()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        k.put_record(StreamName="no-such-stream", Data=b"x", PartitionKey="a")
    assert error_of(e) == ("ProvisionedThroughputExceededException", THROTTLED, 400)
    # A request that does not parse is still a serialization error.
    req = urllib.request.Request(s.endpoint + "/", data=b"{not json", method="POST", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.PutRecord"})
    with pytest.raises(urllib.error.HTTPError) as h:
        urllib.request.urlopen(req, timeout=5)
    assert h.value.code == 400
    assert b"SerializationException" in h.value.read()


def test_probability_one_over_cbor(start_server):
    s = faulty(start_server, 1.0)
    k = s.client()
    name = unique()
    k.create_stream(StreamName=name, ShardCount=1)
    wait_active(k, name)
    body = cbor2.dumps({"StreamName": name, "Records": [{"Data": b"a", "PartitionKey": "p"}, {"Data": b"b", "PartitionKey": "q"}]})
    headers = {"Content-Type": "application/x-amz-cbor-1.1", "X-Amz-Target": "Kinesis_20131202.PutRecords"}
    req = AWSRequest(method="POST", url=s.endpoint + "/", data=body, headers=headers)
    SigV4Auth(Credentials("AKIDTEST", "secret"), "kinesis", REGION).add_auth(req)
    r = urllib.request.urlopen(urllib.request.Request(s.endpoint + "/", data=body, headers=dict(req.headers.items()), method="POST"), timeout=10)
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/x-amz-cbor-1.1"
    assert cbor2.loads(r.read()) == {
        "FailedRecordCount": 2,
        "Records": [{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": THROTTLED}] * 2,
    }


def test_probability_zero_never_fails(start_server):
    k = faulty(start_server, 0.0).client()
    name = unique()
    k.create_stream(StreamName=name, ShardCount=1)
    wait_active(k, name)
    for i in range(50):
        k.put_record(StreamName=name, Data=b"%d" % i, PartitionKey="a")
        assert k.put_records(StreamName=name, Records=[{"Data": b"r", "PartitionKey": "b"}] * 5)["FailedRecordCount"] == 0
    assert len(records_in(k, name)) == 50 * 6


def outcomes(server, name, n):
    """Which of n PutRecord calls were throttled, in order."""
    k = server.client()
    out = []
    for i in range(n):
        try:
            k.put_record(StreamName=name, Data=b"%d" % i, PartitionKey="a")
            out.append(False)
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
            out.append(True)
    return out


def test_a_seed_replays_the_same_failures(start_server):
    runs = []
    for _ in range(2):
        s = faulty(start_server, 0.5, RIFFLE_FAULT_SEED="1234")
        k = s.client()
        k.create_stream(StreamName="replayed", ShardCount=1)
        wait_active(k, "replayed")
        runs.append(outcomes(s, "replayed", 60))
        # Only the requests that were not throttled were written.
        assert len(records_in(k, "replayed")) == runs[-1].count(False)
    assert runs[0] == runs[1]
    assert 0 < runs[0].count(True) < 60


def test_the_probability_must_be_between_zero_and_one(tmp_path):
    for bad in ("1.5", "-0.1", "often"):
        out = subprocess.run([riffle_bin(), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path)],
                             env={"KINESIS_ERROR_PROBABILITY": bad}, capture_output=True, text=True, timeout=30)
        assert out.returncode == 2
        assert "--kinesis-error-probability" in out.stderr


# ------------------------------------------------------------ KINESIS_LATENCY


def test_kinesis_latency_is_how_long_streams_stay_creating(start_server):
    # LocalStack hands KINESIS_LATENCY to kinesis-mock as the duration of
    # every CREATING/UPDATING/DELETING phase; it replaces --status-delay-ms.
    s = start_server("--status-delay-ms", "0", env={"KINESIS_LATENCY": "60000"})
    k = s.client()
    name = unique()
    k.create_stream(StreamName=name, ShardCount=1)
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "CREATING"
    s.advance_clock(60_000)
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    k.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "UPDATING"


def test_kinesis_latency_zero_makes_changes_immediate(start_server):
    s = start_server("--status-delay-ms", "60000", env={"KINESIS_LATENCY": "0"})
    k = s.client()
    name = unique()
    k.create_stream(StreamName=name, ShardCount=1)
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    k.put_record(StreamName=name, Data=b"x", PartitionKey="a")
    arn = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    c = k.register_stream_consumer(StreamARN=arn, ConsumerName="c")["Consumer"]
    assert k.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])["ConsumerDescription"]["ConsumerStatus"] == "ACTIVE"


# --------------------------------------------------------------- response delay


def test_response_delay_is_added_to_every_data_streams_call(start_server):
    delay = 0.3
    s = start_server("--status-delay-ms", "0", env={"RIFFLE_RESPONSE_DELAY_MS": "300"})
    k = s.client()
    name = unique()
    calls = [
        lambda: k.create_stream(StreamName=name, ShardCount=1),
        lambda: k.describe_stream_summary(StreamName=name),
        lambda: k.put_record(StreamName=name, Data=b"x", PartitionKey="a"),
        lambda: k.list_shards(StreamName=name),
        lambda: k.list_streams(),
    ]
    for call in calls:
        started = time.monotonic()
        call()
        assert time.monotonic() - started >= delay
    # Errors are delayed as well.
    started = time.monotonic()
    with pytest.raises(botocore.exceptions.ClientError):
        k.describe_stream_summary(StreamName="missing")
    assert time.monotonic() - started >= delay
