#!/usr/bin/env python3
"""Captures the exact request bytes real SDKs send, for the codec golden tests
in crates/riffle-streams/tests/golden.rs.

    python3 scripts/capture_golden.py tests/golden

boto3's requests are captured from its `before-send` hook, so nothing is
sent anywhere. CBOR requests are built the way the Java SDK v2 builds them
(definite-length maps, byte-string blobs, tag 1 around epoch milliseconds),
since that SDK cannot run here.
"""
import datetime
import json
import sys
from pathlib import Path

import boto3
import botocore
import cbor2

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/golden")


class Captured(Exception):
    pass


def capture(op, **params):
    client = boto3.client("kinesis", endpoint_url="http://127.0.0.1:1", region_name="us-east-1",
                          aws_access_key_id="AKIDTEST", aws_secret_access_key="secret")
    seen = {}

    def hook(request, **_):
        seen["request"] = request
        raise Captured()

    client.meta.events.register("before-send.kinesis.*", hook)
    try:
        getattr(client, op)(**params)
    except Captured:
        pass
    req = seen["request"]
    return {
        "client": f"botocore {botocore.__version__}",
        "target": req.headers["X-Amz-Target"].decode() if isinstance(req.headers["X-Amz-Target"], bytes) else req.headers["X-Amz-Target"],
        "content_type": req.headers["Content-Type"].decode() if isinstance(req.headers["Content-Type"], bytes) else req.headers["Content-Type"],
        "body": req.body.decode() if isinstance(req.body, bytes) else req.body,
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cases = {
        "boto3-put-record": capture("put_record", StreamName="clicks", Data=bytes(range(256)), PartitionKey="user-1",
                                    ExplicitHashKey="170141183460469231731687303715884105728"),
        "boto3-put-records": capture("put_records", StreamName="clicks",
                                     Records=[{"Data": b"a", "PartitionKey": "1"}, {"Data": b"\x00\xff", "PartitionKey": "2"}]),
        "boto3-get-shard-iterator": capture("get_shard_iterator", StreamName="clicks", ShardId="shardId-000000000001",
                                            ShardIteratorType="AT_TIMESTAMP",
                                            Timestamp=datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc)),
        "boto3-create-stream": capture("create_stream", StreamName="clicks", ShardCount=3, Tags={"team": "web"}),
        "boto3-list-shards": capture("list_shards", StreamARN="arn:aws:kinesis:us-east-1:000000000000:stream/clicks",
                                     ShardFilter={"Type": "AT_TIMESTAMP", "Timestamp": datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)}),
    }
    for name, case in cases.items():
        (OUT / f"{name}.json").write_text(json.dumps(case, indent=2, sort_keys=True) + "\n")
    java_put = cbor2.dumps({"StreamName": "clicks", "Data": bytes(range(256)), "PartitionKey": "user-1"})
    (OUT / "java-cbor-put-record.cbor").write_bytes(java_put)
    ts = cbor2.CBORTag(1, 1767323045678)
    java_iter = cbor2.dumps({"StreamName": "clicks", "ShardId": "shardId-000000000001",
                             "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": ts})
    (OUT / "java-cbor-get-shard-iterator.cbor").write_bytes(java_iter)


if __name__ == "__main__":
    main()
