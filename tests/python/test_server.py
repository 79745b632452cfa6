"""Server features around the API: start-up init, TLS with ALPN, throttling,
presigned (query-string) SigV4."""
import socket
import ssl
import time
from pathlib import Path

import pytest
import urllib.request

from conftest import ACCOUNT, REGION, error_of, free_port, unique


def test_init_creates_streams_idempotently(start_server, tmp_path):
    init = tmp_path / "streams.txt"
    init.write_text("orders:3\n# comment\nclicks\norders:3\n")
    s = start_server("--init", str(init), "--streams", "extra:2,clicks")
    k = s.client()
    assert k.list_streams()["StreamNames"] == ["clicks", "extra", "orders"]
    summaries = {n: k.describe_stream_summary(StreamName=n)["StreamDescriptionSummary"] for n in ["clicks", "extra", "orders"]}
    assert {n: (d["StreamStatus"], d["OpenShardCount"], d["StreamModeDetails"]["StreamMode"]) for n, d in summaries.items()} == {
        "clicks": ("ACTIVE", 4, "ON_DEMAND"),
        "extra": ("ACTIVE", 2, "PROVISIONED"),
        "orders": ("ACTIVE", 3, "PROVISIONED"),
    }
    # A restart on the same data dir with the same init changes nothing.
    k.put_record(StreamName="orders", Data=b"kept", PartitionKey="a")
    s.stop()
    s.start()
    k = s.client()
    assert k.list_streams()["StreamNames"] == ["clicks", "extra", "orders"]
    recs = []
    for sh in k.list_shards(StreamName="orders")["Shards"]:
        it = k.get_shard_iterator(StreamName="orders", ShardId=sh["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        recs += [r["Data"] for r in k.get_records(ShardIterator=it)["Records"]]
    assert recs == [b"kept"]


def test_tls_listener_speaks_h2_and_http1(start_server):
    port = free_port()
    s = start_server("--tls-listen", f"127.0.0.1:{port}")
    cert = Path(s.data_dir) / "tls" / "cert.pem"
    ctx = ssl.create_default_context(cafile=str(cert))
    for alpn in (["h2", "http/1.1"], ["http/1.1"]):
        ctx.set_alpn_protocols(alpn)
        with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == alpn[0]
    # boto3 over HTTPS, verifying the generated certificate.
    import boto3
    k = boto3.client("kinesis", endpoint_url=f"https://localhost:{port}", region_name=REGION,
                     aws_access_key_id="AKIDTEST", aws_secret_access_key="secret", verify=str(cert))
    name = unique()
    k.create_stream(StreamName=name, ShardCount=1)
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamName"] == name


def test_throttling_per_shard(start_server):
    s = start_server("--throttle", "--status-delay-ms", "0")
    k = s.client()
    name = unique()
    k.create_stream(StreamName=name, ShardCount=1)
    # 1,000 records/s per shard: the 1,001st record in the same second is refused on its own.
    # Limits count per one-second window: three calls of 400 that land in
    # one window refuse at least 200 records; calls that straddle a window
    # boundary may all pass, so try again.
    got, failed = [], []
    deadline = time.time() + 20
    while not failed and time.time() < deadline:
        got = []
        for _ in range(3):
            got += k.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": str(i)} for i in range(400)])["Records"]
        failed = [r for r in got if "ErrorCode" in r]
        time.sleep(1.0)
    assert len(failed) >= 200 and len(got) - len(failed) <= 1000
    assert failed[0] == {
        "ErrorCode": "ProvisionedThroughputExceededException",
        "ErrorMessage": f"Rate exceeded for shard shardId-000000000000 in stream {name} under account {ACCOUNT}.",
    }
    # 5 GetRecords calls per second per shard.
    it = k.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="LATEST")["ShardIterator"]
    with pytest.raises(k.exceptions.ProvisionedThroughputExceededException) as e:
        # 20 quick calls span at most two windows, so one of them gets 10.
        for _ in range(20):
            it = k.get_records(ShardIterator=it)["NextShardIterator"]
    assert error_of(e)[0] == "ProvisionedThroughputExceededException"


def metric(server, name):
    text = urllib.request.urlopen(server.endpoint + "/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError(f"{name} missing from /metrics:\n{text}")


def test_per_stream_durability_tag_and_metrics(start_server):
    s = start_server("--status-delay-ms", "0")
    k = s.client()
    fast, safe = unique("none"), unique("fsync")
    k.create_stream(StreamName=fast, ShardCount=1, Tags={"riffle:durability": "none"})
    k.create_stream(StreamName=safe, ShardCount=1)
    before = metric(s, "riffle_log_syncs_total")
    for i in range(20):
        k.put_record(StreamName=fast, Data=b"x", PartitionKey=str(i))
    assert metric(s, "riffle_log_syncs_total") == before
    for i in range(20):
        k.put_record(StreamName=safe, Data=b"x", PartitionKey=str(i))
    assert metric(s, "riffle_log_syncs_total") == before + 20
    # Removing the tag restores the server's default (fsync).
    k.remove_tags_from_stream(StreamName=fast, TagKeys=["riffle:durability"])
    k.put_record(StreamName=fast, Data=b"x", PartitionKey="a")
    assert metric(s, "riffle_log_syncs_total") == before + 21
    assert metric(s, "riffle_streams") == 2
    text = urllib.request.urlopen(s.endpoint + "/metrics", timeout=5).read().decode()
    assert 'riffle_requests_total{operation="PutRecord",outcome="ok"} 41' in text
    with pytest.raises(k.exceptions.ResourceNotFoundException):
        k.describe_stream(StreamName="missing")
    text = urllib.request.urlopen(s.endpoint + "/metrics", timeout=5).read().decode()
    assert 'riffle_requests_total{operation="DescribeStream",outcome="ResourceNotFoundException"} 1' in text


def test_metadata_survives_restart(start_server):
    s = start_server("--status-delay-ms", "0")
    k = s.client()
    name = unique()
    k.create_stream(StreamName=name, ShardCount=2, Tags={"team": "web"})
    arn = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    k.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**126))
    k.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    consumer = k.register_stream_consumer(StreamARN=arn, ConsumerName="app")["Consumer"]
    k.put_resource_policy(ResourceARN=arn, Policy='{"Version":"2012-10-17","Statement":[]}')
    k.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})
    put = k.put_record(StreamName=name, Data=b"before", PartitionKey="a")
    it = k.get_shard_iterator(StreamName=name, ShardId=put["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    before = {
        "shards": k.list_shards(StreamName=name)["Shards"],
        "summary": k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"],
        "tags": k.list_tags_for_stream(StreamName=name)["Tags"],
        "consumer": k.describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"])["ConsumerDescription"],
        "policy": k.get_resource_policy(ResourceARN=arn)["Policy"],
        "account": k.describe_account_settings()["MinimumThroughputBillingCommitment"],
    }
    s.stop()
    s.start()
    k = s.client()
    after = {
        "shards": k.list_shards(StreamName=name)["Shards"],
        "summary": k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"],
        "tags": k.list_tags_for_stream(StreamName=name)["Tags"],
        "consumer": k.describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"])["ConsumerDescription"],
        "policy": k.get_resource_policy(ResourceARN=arn)["Policy"],
        "account": k.describe_account_settings()["MinimumThroughputBillingCommitment"],
    }
    assert after == before
    # An iterator issued before the restart still reads.
    assert [r["Data"] for r in k.get_records(ShardIterator=it)["Records"]] == [b"before"]
    # Numbering goes on: the next record of the shard follows the first.
    again = k.put_record(StreamName=name, Data=b"after", PartitionKey="a")
    assert again["ShardId"] == put["ShardId"] and int(again["SequenceNumber"]) > int(put["SequenceNumber"])


def test_shutdown_ends_open_subscriptions(start_server):
    import signal
    import threading
    import time as _time

    s = start_server("--status-delay-ms", "0")
    k = s.client()
    name = unique()
    k.create_stream(StreamName=name, ShardCount=1)
    arn = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    consumer = k.register_stream_consumer(StreamARN=arn, ConsumerName="c")["Consumer"]["ConsumerARN"]
    events = k.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000", StartingPosition={"Type": "LATEST"})["EventStream"]
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(events), daemon=True)
    reader.start()
    _time.sleep(1.5)
    started = _time.time()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=10) == 0
    assert _time.time() - started < 3, "shutdown waited for the subscription"
    reader.join(timeout=5)
    assert not reader.is_alive()
    assert all("SubscribeToShardEvent" in e for e in seen) and len(seen) >= 1


def test_page_sizes_are_capped_as_aws_documents(start_server):
    s = start_server("--status-delay-ms", "0")
    k = s.client()
    for i in range(101):
        k.create_stream(StreamName=f"cap-{i:03d}", ShardCount=1)
    page = k.list_streams(Limit=10000)
    assert (len(page["StreamNames"]), page["HasMoreStreams"]) == (100, True)
    k.create_stream(StreamName="wide", ShardCount=1001)
    shards = k.list_shards(StreamName="wide", MaxResults=10000)
    assert len(shards["Shards"]) == 1000 and "NextToken" in shards
    rest = k.list_shards(NextToken=shards["NextToken"])
    assert [sh["ShardId"] for sh in rest["Shards"]] == ["shardId-000000001000"]


def test_localhost_over_ipv6_loopback_too(server):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    ok = urllib.request.urlopen(f"http://[::1]:{server.port}/_riffle/health", timeout=5).read()
    assert ok == b"ok\n"
