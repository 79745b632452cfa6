// Resharding: SplitShard, then reading the closed parent to its end.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  CreateStreamCommand,
  DescribeStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  PutRecordCommand,
  SplitShardCommand,
} from "@aws-sdk/client-kinesis";

import { ACCOUNT, MAX_HASH_KEY, Riffle, bytes, catchError, errorShape } from "./harness.mjs";

const strip = ({ $metadata, ...rest }) => rest;
const PARENT = "shardId-000000000000";
const LEFT = "shardId-000000000001";
const RIGHT = "shardId-000000000002";
const MID = 1n << 127n;

describe("SplitShard", () => {
  let server;
  let kinesis;
  const before_ = []; // sequence numbers put before the split
  let splitOut;

  before(async () => {
    server = await Riffle.start();
    kinesis = server.client();
    await kinesis.send(new CreateStreamCommand({ StreamName: "resharded", ShardCount: 1 }));
    for (let i = 0; i < 3; i++) {
      const out = await kinesis.send(
        new PutRecordCommand({ StreamName: "resharded", PartitionKey: `k${i}`, Data: bytes([i, 0xff - i]) }),
      );
      before_.push(out.SequenceNumber);
    }
    splitOut = await kinesis.send(
      new SplitShardCommand({
        StreamName: "resharded",
        ShardToSplit: PARENT,
        NewStartingHashKey: MID.toString(),
      }),
    );
    // --status-delay-ms 0: wait at most briefly for ACTIVE
    for (let i = 0; i < 50; i++) {
      const s = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "resharded" }));
      if (s.StreamDescriptionSummary.StreamStatus === "ACTIVE") break;
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  after(async () => {
    await server?.stop();
  });

  test("SplitShard returns an empty output and DescribeStream shows the new shards", async () => {
    assert.deepStrictEqual(strip(splitOut), {});
    const out = await kinesis.send(new DescribeStreamCommand({ StreamName: "resharded" }));
    const shards = out.StreamDescription.Shards;
    assert.equal(out.StreamDescription.StreamStatus, "ACTIVE");
    const parentRange = shards[0].SequenceNumberRange;
    assert.match(parentRange.EndingSequenceNumber ?? "", /^\d{56}$/);
    assert.ok(BigInt(parentRange.EndingSequenceNumber) > BigInt(before_[2]));
    assert.deepStrictEqual(shards, [
      {
        ShardId: PARENT,
        HashKeyRange: { StartingHashKey: "0", EndingHashKey: MAX_HASH_KEY.toString() },
        SequenceNumberRange: {
          StartingSequenceNumber: parentRange.StartingSequenceNumber,
          EndingSequenceNumber: parentRange.EndingSequenceNumber,
        },
      },
      {
        ShardId: LEFT,
        ParentShardId: PARENT,
        HashKeyRange: { StartingHashKey: "0", EndingHashKey: (MID - 1n).toString() },
        SequenceNumberRange: { StartingSequenceNumber: shards[1].SequenceNumberRange.StartingSequenceNumber },
      },
      {
        ShardId: RIGHT,
        ParentShardId: PARENT,
        HashKeyRange: { StartingHashKey: MID.toString(), EndingHashKey: MAX_HASH_KEY.toString() },
        SequenceNumberRange: { StartingSequenceNumber: shards[2].SequenceNumberRange.StartingSequenceNumber },
      },
    ]);
    const summary = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "resharded" }));
    assert.equal(summary.StreamDescriptionSummary.OpenShardCount, 2);

    const latest = await kinesis.send(
      new ListShardsCommand({ StreamName: "resharded", ShardFilter: { Type: "AT_LATEST" } }),
    );
    assert.deepStrictEqual(latest.Shards.map((s) => s.ShardId), [LEFT, RIGHT]);
  });

  test("new records go to the children", async () => {
    const lo = await kinesis.send(
      new PutRecordCommand({ StreamName: "resharded", PartitionKey: "x", ExplicitHashKey: "0", Data: bytes("lo") }),
    );
    const hi = await kinesis.send(
      new PutRecordCommand({
        StreamName: "resharded",
        PartitionKey: "x",
        ExplicitHashKey: MAX_HASH_KEY.toString(),
        Data: bytes("hi"),
      }),
    );
    assert.equal(lo.ShardId, LEFT);
    assert.equal(hi.ShardId, RIGHT);
  });

  test("reading the parent to its end: NextShardIterator undefined, ChildShards present", async () => {
    let it = (
      await kinesis.send(
        new GetShardIteratorCommand({ StreamName: "resharded", ShardId: PARENT, ShardIteratorType: "TRIM_HORIZON" }),
      )
    ).ShardIterator;
    const records = [];
    let last;
    for (let i = 0; i < 10 && it; i++) {
      last = await kinesis.send(new GetRecordsCommand({ ShardIterator: it }));
      records.push(...last.Records);
      it = last.NextShardIterator;
    }
    assert.equal(it, undefined, "NextShardIterator is undefined at the end of a closed shard");
    assert.deepStrictEqual(
      records.map((r) => [r.SequenceNumber, Array.from(r.Data)]),
      before_.map((s, i) => [s, [i, 0xff - i]]),
    );
    assert.equal(typeof last.MillisBehindLatest, "number");
    assert.deepStrictEqual(strip(last), {
      Records: last.Records,
      MillisBehindLatest: last.MillisBehindLatest,
      ChildShards: [
        {
          ShardId: LEFT,
          ParentShards: [PARENT],
          HashKeyRange: { StartingHashKey: "0", EndingHashKey: (MID - 1n).toString() },
        },
        {
          ShardId: RIGHT,
          ParentShards: [PARENT],
          HashKeyRange: { StartingHashKey: MID.toString(), EndingHashKey: MAX_HASH_KEY.toString() },
        },
      ],
    });
  });

  test("LATEST on the closed parent also ends with ChildShards", async () => {
    const it = (
      await kinesis.send(
        new GetShardIteratorCommand({ StreamName: "resharded", ShardId: PARENT, ShardIteratorType: "LATEST" }),
      )
    ).ShardIterator;
    const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: it }));
    assert.deepStrictEqual(out.Records, []);
    assert.equal(out.NextShardIterator, undefined);
    assert.deepStrictEqual(
      out.ChildShards?.map((c) => c.ShardId),
      [LEFT, RIGHT],
    );
  });

  test("splitting the closed parent again is rejected", async () => {
    const e = await catchError(() =>
      kinesis.send(
        new SplitShardCommand({ StreamName: "resharded", ShardToSplit: PARENT, NewStartingHashKey: "100" }),
      ),
    );
    // The exception type for this case is not AWS-verified (moto: InvalidArgumentException);
    // the message is the one AWS-compatible emulators agree on.
    assert.ok(["InvalidArgumentException", "ResourceInUseException"].includes(e.name), e.name);
    assert.equal(
      e.message,
      `Shard ${PARENT} in stream resharded under account ${ACCOUNT} has already been merged or split, ` +
        "and thus is not eligible for merging or splitting.",
    );
    assert.equal(e.$metadata.httpStatusCode, 400);
  });

  test("SplitShard with a hash key outside the shard: InvalidArgumentException", async () => {
    const e = await catchError(() =>
      kinesis.send(
        new SplitShardCommand({ StreamName: "resharded", ShardToSplit: LEFT, NewStartingHashKey: "1" }),
      ),
    );
    assert.deepStrictEqual(errorShape(e), {
      name: "InvalidArgumentException",
      message:
        `NewStartingHashKey 1 used in SplitShard() on shard ${LEFT} in stream resharded under account ${ACCOUNT} ` +
        `is not both greater than one plus the shard's StartingHashKey 0 and less than the shard's ` +
        `EndingHashKey ${(MID - 1n).toString()}.`,
      fault: "client",
      httpStatusCode: 400,
    });
  });
});
