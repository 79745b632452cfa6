"""The first thing a user does: create a stream, write, read back."""
from conftest import ACCOUNT, REGION, aws_cli, error_of, unique, wait_active

import pytest


def test_put_and_get_round_trip(kinesis, stream):
    name = stream(2)
    put = kinesis.put_record(StreamName=name, Data=b"hello", PartitionKey="a")
    # MD5("a") = 0cc175b9..., below 2^127: shard 0 of 2.
    assert put["ShardId"] == "shardId-000000000000"
    assert len(put["SequenceNumber"]) == 56
    it = kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = kinesis.get_records(ShardIterator=it)
    assert [(r["Data"], r["PartitionKey"], r["SequenceNumber"]) for r in got["Records"]] == [(b"hello", "a", put["SequenceNumber"])]
    assert got["MillisBehindLatest"] == 0
    assert got["NextShardIterator"]


def test_cli_quickstart(server):
    name = unique()
    assert aws_cli(server.endpoint, "kinesis", "create-stream", "--stream-name", name, "--shard-count", "1") == ""
    wait_active(server.client(), name)
    summary = aws_cli(server.endpoint, "kinesis", "describe-stream-summary", "--stream-name", name)["StreamDescriptionSummary"]
    assert summary["StreamARN"] == f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"
    assert summary["OpenShardCount"] == 1
    put = aws_cli(server.endpoint, "kinesis", "put-record", "--stream-name", name, "--partition-key", "k", "--data", "aGk=")
    assert put["ShardId"] == "shardId-000000000000"


def test_missing_stream_is_resource_not_found(kinesis):
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as e:
        kinesis.describe_stream(StreamName="nope")
    assert error_of(e) == ("ResourceNotFoundException", f"Stream nope under account {ACCOUNT} not found.", 400)
