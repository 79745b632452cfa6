#!/usr/bin/env python3
"""Input-to-output latency of a running Kinesis Analytics application.

Starts `riffle serve` (the binary given, on a free port and a temporary
data directory), creates an input and an output stream and a filter
application between them, then puts one record at a time (`--records`,
`--interval-ms` apart) stamped with the time it was put, while a reader
polls the output stream; each output row's latency is the time it was read
minus the time its record was put. Prints p50, p90, p99 and max.

    python3 scripts/bench_analytics_latency.py target/release/riffle --records 2000
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import boto3
import botocore.config

ROLE = "arn:aws:iam::000000000000:role/r"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("riffle")
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--interval-ms", type=float, default=5.0)
    args = ap.parse_args()

    port = free_port()
    data = tempfile.mkdtemp(prefix="riffle-latency-")
    proc = subprocess.Popen(
        [args.riffle, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--status-delay-ms", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(endpoint + "/_riffle/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        cfg = botocore.config.Config(retries={"max_attempts": 0})
        kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b", config=cfg)
        kinesis, ka = boto3.client("kinesis", **kw), boto3.client("kinesisanalytics", **kw)
        for name in ("in", "out"):
            kinesis.create_stream(StreamName=name, ShardCount=1)
        while any(
            kinesis.describe_stream_summary(StreamName=n)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE" for n in ("in", "out")
        ):
            time.sleep(0.05)
        schema = {
            "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
            "RecordColumns": [
                {"Name": "ID", "Mapping": "$.id", "SqlType": "BIGINT"},
                {"Name": "SENT", "Mapping": "$.sent", "SqlType": "DOUBLE"},
            ],
        }
        ka.create_application(
            ApplicationName="latency",
            ApplicationCode="""
              CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (id BIGINT, sent DOUBLE);
              CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
                SELECT STREAM id, sent FROM "SOURCE_SQL_STREAM_001" WHERE id >= 0;""",
            Inputs=[{
                "NamePrefix": "SOURCE_SQL_STREAM",
                "KinesisStreamsInput": {"ResourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/in", "RoleARN": ROLE},
                "InputSchema": schema,
            }],
            Outputs=[{
                "Name": "DESTINATION_SQL_STREAM",
                "KinesisStreamsOutput": {"ResourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/out", "RoleARN": ROLE},
                "DestinationSchema": {"RecordFormatType": "JSON"},
            }],
        )
        ka.start_application(
            ApplicationName="latency",
            InputConfigurations=[{"Id": "1.1", "InputStartingPositionConfiguration": {"InputStartingPosition": "TRIM_HORIZON"}}],
        )
        while ka.describe_application(ApplicationName="latency")["ApplicationDetail"]["ApplicationStatus"] != "RUNNING":
            time.sleep(0.05)
        # The application's task starts within a maintenance tick (1 s).
        time.sleep(1.5)

        latencies = []
        done = threading.Event()

        def read():
            reader = boto3.client("kinesis", **kw)
            it = reader.get_shard_iterator(StreamName="out", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while len(latencies) < args.records:
                out = reader.get_records(ShardIterator=it, Limit=1000)
                now = time.time()
                for r in out["Records"]:
                    latencies.append(now - json.loads(r["Data"])["SENT"])
                it = out["NextShardIterator"]
            done.set()

        t = threading.Thread(target=read, daemon=True)
        t.start()
        for i in range(args.records):
            kinesis.put_record(StreamName="in", PartitionKey="k", Data=json.dumps({"id": i, "sent": time.time()}).encode())
            time.sleep(args.interval_ms / 1000)
        if not done.wait(60):
            print(f"only {len(latencies)} of {args.records} rows arrived", file=sys.stderr)
            sys.exit(1)
        latencies.sort()
        pct = lambda p: latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000
        print(
            f"analytics latency (put → filter pump → output stream read, {len(latencies)} rows, one record every {args.interval_ms} ms): "
            f"p50 {pct(50):.1f} ms, p90 {pct(90):.1f} ms, p99 {pct(99):.1f} ms, max {latencies[-1] * 1000:.1f} ms"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
