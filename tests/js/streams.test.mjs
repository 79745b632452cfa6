// Stream control plane: CreateStream, DescribeStream, DescribeStreamSummary,
// ListShards, ListStreams and tags.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  AddTagsToStreamCommand,
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamCommand,
  DescribeStreamSummaryCommand,
  ListShardsCommand,
  ListStreamsCommand,
  ListTagsForResourceCommand,
  ListTagsForStreamCommand,
  RemoveTagsFromStreamCommand,
  TagResourceCommand,
  UntagResourceCommand,
} from "@aws-sdk/client-kinesis";

import { ACCOUNT, MAX_HASH_KEY, REGION, Riffle, catchError, errorShape } from "./harness.mjs";

const strip = ({ $metadata, ...rest }) => rest;
const arn = (name) => `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${name}`;
// consecutive shards created together differ by exactly 2^144 + 16 (AWS-verified)
const SHARD_SEQ_STEP = (1n << 144n) + 16n;

/** The even hash-key split AWS makes for `n` shards. */
function hashRanges(n) {
  const step = (1n << 128n) / BigInt(n);
  return Array.from({ length: n }, (_, i) => ({
    StartingHashKey: (step * BigInt(i)).toString(),
    EndingHashKey: (i === n - 1 ? MAX_HASH_KEY : step * BigInt(i + 1) - 1n).toString(),
  }));
}

describe("streams", () => {
  let server;
  let kinesis;
  let created; // [beforeMs, afterMs] around CreateStream of "alpha"
  before(async () => {
    server = await Riffle.start();
    kinesis = server.client();
    const t0 = Date.now();
    await kinesis.send(new CreateStreamCommand({ StreamName: "alpha", ShardCount: 3 }));
    created = [t0, Date.now()];
    await kinesis.send(new CreateStreamCommand({ StreamName: "beta", ShardCount: 1 }));
    await kinesis.send(new CreateStreamCommand({ StreamName: "gamma", ShardCount: 2 }));
  });
  after(async () => {
    await server?.stop();
  });

  test("CreateStream returns an empty output", async () => {
    const out = await kinesis.send(new CreateStreamCommand({ StreamName: "delta", ShardCount: 1 }));
    assert.deepStrictEqual(strip(out), {});
    assert.equal(out.$metadata.httpStatusCode, 200);
    await kinesis.send(new DeleteStreamCommand({ StreamName: "delta" }));
  });

  test("DescribeStream returns the whole description", async () => {
    const out = await kinesis.send(new DescribeStreamCommand({ StreamName: "alpha" }));
    const desc = out.StreamDescription;

    const ts = desc.StreamCreationTimestamp;
    assert.ok(ts instanceof Date, "StreamCreationTimestamp is a Date");
    assert.ok(
      ts.getTime() >= Math.floor(created[0] / 1000) * 1000 - 3000 && ts.getTime() <= created[1] + 1000,
      `StreamCreationTimestamp ${ts.toISOString()} near creation`,
    );

    const starts = desc.Shards.map((s) => s.SequenceNumberRange?.StartingSequenceNumber);
    for (const s of starts) assert.match(s, /^\d{56}$/);
    assert.equal(BigInt(starts[1]) - BigInt(starts[0]), SHARD_SEQ_STEP);
    assert.equal(BigInt(starts[2]) - BigInt(starts[1]), SHARD_SEQ_STEP);

    const ranges = hashRanges(3);
    assert.deepStrictEqual(ranges.map((r) => r.EndingHashKey), [
      "113427455640312821154458202477256070484",
      "226854911280625642308916404954512140969",
      "340282366920938463463374607431768211455",
    ]);
    assert.deepStrictEqual(strip(out), {
      StreamDescription: {
        StreamName: "alpha",
        StreamARN: arn("alpha"),
        StreamStatus: "ACTIVE",
        StreamModeDetails: { StreamMode: "PROVISIONED" },
        Shards: [0, 1, 2].map((i) => ({
          ShardId: `shardId-00000000000${i}`,
          HashKeyRange: ranges[i],
          SequenceNumberRange: { StartingSequenceNumber: starts[i] },
        })),
        HasMoreShards: false,
        RetentionPeriodHours: 24,
        StreamCreationTimestamp: ts,
        EnhancedMonitoring: [{ ShardLevelMetrics: [] }],
        EncryptionType: "NONE",
      },
    });
  });

  test("DescribeStream pages shards with Limit and ExclusiveStartShardId", async () => {
    const p1 = await kinesis.send(new DescribeStreamCommand({ StreamName: "alpha", Limit: 2 }));
    assert.deepStrictEqual(
      p1.StreamDescription.Shards.map((s) => s.ShardId),
      ["shardId-000000000000", "shardId-000000000001"],
    );
    assert.equal(p1.StreamDescription.HasMoreShards, true);
    const p2 = await kinesis.send(
      new DescribeStreamCommand({
        StreamName: "alpha",
        Limit: 2,
        ExclusiveStartShardId: "shardId-000000000001",
      }),
    );
    assert.deepStrictEqual(p2.StreamDescription.Shards.map((s) => s.ShardId), ["shardId-000000000002"]);
    assert.equal(p2.StreamDescription.HasMoreShards, false);
  });

  test("DescribeStream accepts StreamARN instead of StreamName", async () => {
    const byName = await kinesis.send(new DescribeStreamCommand({ StreamName: "beta" }));
    const byArn = await kinesis.send(new DescribeStreamCommand({ StreamARN: arn("beta") }));
    assert.deepStrictEqual(strip(byArn), strip(byName));
  });

  test("DescribeStreamSummary returns the whole summary", async () => {
    const out = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "alpha" }));
    const ts = out.StreamDescriptionSummary?.StreamCreationTimestamp;
    assert.ok(ts instanceof Date);
    const full = await kinesis.send(new DescribeStreamCommand({ StreamName: "alpha" }));
    assert.deepStrictEqual(ts, full.StreamDescription.StreamCreationTimestamp);
    assert.deepStrictEqual(strip(out), {
      StreamDescriptionSummary: {
        StreamName: "alpha",
        StreamARN: arn("alpha"),
        StreamStatus: "ACTIVE",
        StreamModeDetails: { StreamMode: "PROVISIONED" },
        RetentionPeriodHours: 24,
        StreamCreationTimestamp: ts,
        EnhancedMonitoring: [{ ShardLevelMetrics: [] }],
        EncryptionType: "NONE",
        OpenShardCount: 3,
        ConsumerCount: 0,
        MaxRecordSizeInKiB: 1024,
      },
    });
  });

  test("ListShards lists every shard, pages with MaxResults/NextToken", async () => {
    const all = await kinesis.send(new ListShardsCommand({ StreamName: "alpha" }));
    const desc = await kinesis.send(new DescribeStreamCommand({ StreamName: "alpha" }));
    assert.deepStrictEqual(strip(all), { Shards: desc.StreamDescription.Shards });

    const p1 = await kinesis.send(new ListShardsCommand({ StreamName: "alpha", MaxResults: 2 }));
    assert.deepStrictEqual(p1.Shards, desc.StreamDescription.Shards.slice(0, 2));
    assert.equal(typeof p1.NextToken, "string");
    const p2 = await kinesis.send(new ListShardsCommand({ NextToken: p1.NextToken }));
    assert.deepStrictEqual(strip(p2), { Shards: desc.StreamDescription.Shards.slice(2) });

    const after1 = await kinesis.send(
      new ListShardsCommand({ StreamName: "alpha", ExclusiveStartShardId: "shardId-000000000001" }),
    );
    assert.deepStrictEqual(strip(after1), { Shards: desc.StreamDescription.Shards.slice(2) });
  });

  test("ListShards argument errors", async () => {
    const neither = await catchError(() => kinesis.send(new ListShardsCommand({})));
    assert.deepStrictEqual(errorShape(neither), {
      name: "InvalidArgumentException",
      message: "Either NextToken or StreamName should be provided.",
      fault: "client",
      httpStatusCode: 400,
    });
    const p1 = await kinesis.send(new ListShardsCommand({ StreamName: "alpha", MaxResults: 1 }));
    const both = await catchError(() =>
      kinesis.send(new ListShardsCommand({ StreamName: "alpha", NextToken: p1.NextToken })),
    );
    assert.deepStrictEqual(errorShape(both), {
      name: "InvalidArgumentException",
      message: "NextToken and StreamName cannot be provided together.",
      fault: "client",
      httpStatusCode: 400,
    });
    const missing = await catchError(() => kinesis.send(new ListShardsCommand({ StreamName: "nope" })));
    assert.deepStrictEqual(errorShape(missing), {
      name: "ResourceNotFoundException",
      message: `Stream nope under account ${ACCOUNT} not found.`,
      fault: "client",
      httpStatusCode: 400,
    });
  });

  test("ListStreams lists names in order with summaries", async () => {
    const out = await kinesis.send(new ListStreamsCommand({}));
    assert.deepStrictEqual(out.StreamNames, ["alpha", "beta", "gamma"]);
    assert.equal(out.HasMoreStreams, false);
    assert.equal(out.NextToken, undefined);
    const descs = {};
    for (const n of out.StreamNames) {
      descs[n] = (await kinesis.send(new DescribeStreamCommand({ StreamName: n }))).StreamDescription;
    }
    assert.deepStrictEqual(strip(out), {
      StreamNames: ["alpha", "beta", "gamma"],
      HasMoreStreams: false,
      StreamSummaries: out.StreamNames.map((n) => ({
        StreamName: n,
        StreamARN: arn(n),
        StreamStatus: "ACTIVE",
        StreamModeDetails: { StreamMode: "PROVISIONED" },
        StreamCreationTimestamp: descs[n].StreamCreationTimestamp,
      })),
    });
  });

  test("ListStreams pages with Limit, ExclusiveStartStreamName and NextToken", async () => {
    const p1 = await kinesis.send(new ListStreamsCommand({ Limit: 2 }));
    assert.deepStrictEqual(p1.StreamNames, ["alpha", "beta"]);
    assert.equal(p1.HasMoreStreams, true);
    assert.equal(typeof p1.NextToken, "string");

    const p2 = await kinesis.send(new ListStreamsCommand({ NextToken: p1.NextToken }));
    assert.deepStrictEqual(p2.StreamNames, ["gamma"]);
    assert.equal(p2.HasMoreStreams, false);

    const ex = await kinesis.send(new ListStreamsCommand({ ExclusiveStartStreamName: "alpha" }));
    assert.deepStrictEqual(ex.StreamNames, ["beta", "gamma"]);
    const ex2 = await kinesis.send(new ListStreamsCommand({ ExclusiveStartStreamName: "b" }));
    assert.deepStrictEqual(ex2.StreamNames, ["beta", "gamma"]);
  });

  test("CreateStream of an existing stream: ResourceInUseException", async () => {
    const e = await catchError(() =>
      kinesis.send(new CreateStreamCommand({ StreamName: "alpha", ShardCount: 1 })),
    );
    assert.deepStrictEqual(errorShape(e), {
      name: "ResourceInUseException",
      message: `Stream alpha under account ${ACCOUNT} already exists.`,
      fault: "client",
      httpStatusCode: 400,
    });
  });

  test("CreateStream validation: invalid name, too long name", async () => {
    const bad = await catchError(() =>
      kinesis.send(new CreateStreamCommand({ StreamName: "bad name!", ShardCount: 1 })),
    );
    assert.deepStrictEqual(errorShape(bad), {
      name: "ValidationException",
      message:
        "1 validation error detected: Value 'bad name!' at 'streamName' failed to satisfy constraint: " +
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
      fault: "client",
      httpStatusCode: 400,
    });

    const long = "a".repeat(129);
    const tooLong = await catchError(() =>
      kinesis.send(new CreateStreamCommand({ StreamName: long, ShardCount: 1 })),
    );
    assert.deepStrictEqual(errorShape(tooLong), {
      name: "ValidationException",
      message:
        `1 validation error detected: Value '${long}' at 'streamName' failed to satisfy constraint: ` +
        "Member must have length less than or equal to 128",
      fault: "client",
      httpStatusCode: 400,
    });
  });

  test("CreateStream validation: several errors, in AWS's field order (shardCount, streamName)", async () => {
    const three = await catchError(() =>
      kinesis.send(new CreateStreamCommand({ StreamName: "", ShardCount: 0 })),
    );
    assert.deepStrictEqual(errorShape(three), {
      name: "ValidationException",
      message:
        "3 validation errors detected: " +
        "Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1; " +
        "Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; " +
        "Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1",
      fault: "client",
      httpStatusCode: 400,
    });

  });

  test("Describe/DescribeStreamSummary/Delete of a missing stream: ResourceNotFoundException", async () => {
    const expected = {
      name: "ResourceNotFoundException",
      message: `Stream no-such-stream under account ${ACCOUNT} not found.`,
      fault: "client",
      httpStatusCode: 400,
    };
    for (const cmd of [
      new DescribeStreamCommand({ StreamName: "no-such-stream" }),
      new DescribeStreamSummaryCommand({ StreamName: "no-such-stream" }),
      new DeleteStreamCommand({ StreamName: "no-such-stream" }),
      new ListTagsForStreamCommand({ StreamName: "no-such-stream" }),
    ]) {
      const e = await catchError(() => kinesis.send(cmd));
      assert.deepStrictEqual(errorShape(e), expected, cmd.constructor.name);
    }
  });

  test("tags: add, overwrite, list sorted, page, remove", async () => {
    const none = await kinesis.send(new ListTagsForStreamCommand({ StreamName: "beta" }));
    assert.deepStrictEqual(strip(none), { Tags: [], HasMoreTags: false });

    const add = await kinesis.send(
      new AddTagsToStreamCommand({
        StreamName: "beta",
        Tags: { team: "data", env: "test", "cost/centre": "42", empty: "" },
      }),
    );
    assert.deepStrictEqual(strip(add), {});
    await kinesis.send(new AddTagsToStreamCommand({ StreamName: "beta", Tags: { env: "prod" } }));

    const all = await kinesis.send(new ListTagsForStreamCommand({ StreamName: "beta" }));
    assert.deepStrictEqual(strip(all), {
      Tags: [
        { Key: "cost/centre", Value: "42" },
        { Key: "empty", Value: "" },
        { Key: "env", Value: "prod" },
        { Key: "team", Value: "data" },
      ],
      HasMoreTags: false,
    });

    const page = await kinesis.send(
      new ListTagsForStreamCommand({ StreamName: "beta", ExclusiveStartTagKey: "empty", Limit: 1 }),
    );
    assert.deepStrictEqual(strip(page), { Tags: [{ Key: "env", Value: "prod" }], HasMoreTags: true });

    const rm = await kinesis.send(
      new RemoveTagsFromStreamCommand({ StreamName: "beta", TagKeys: ["env", "not-there"] }),
    );
    assert.deepStrictEqual(strip(rm), {});
    const left = await kinesis.send(new ListTagsForStreamCommand({ StreamName: "beta" }));
    assert.deepStrictEqual(left.Tags.map((t) => t.Key), ["cost/centre", "empty", "team"]);
  });

  test("tags: invalid characters are rejected", async () => {
    const e = await catchError(() =>
      kinesis.send(new AddTagsToStreamCommand({ StreamName: "beta", Tags: { "a;b": "x" } })),
    );
    assert.deepStrictEqual(errorShape(e), {
      name: "InvalidArgumentException",
      message:
        "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @.",
      fault: "client",
      httpStatusCode: 400,
    });
  });

  test("tags by resource ARN: TagResource / ListTagsForResource / UntagResource", async () => {
    const tagged = await kinesis.send(
      new TagResourceCommand({ ResourceARN: arn("gamma"), Tags: { b: "2", a: "1" } }),
    );
    assert.deepStrictEqual(strip(tagged), {});
    const list = await kinesis.send(new ListTagsForResourceCommand({ ResourceARN: arn("gamma") }));
    assert.deepStrictEqual(strip(list), {
      Tags: [
        { Key: "a", Value: "1" },
        { Key: "b", Value: "2" },
      ],
    });
    // visible through the stream-name API too
    const byName = await kinesis.send(new ListTagsForStreamCommand({ StreamName: "gamma" }));
    assert.deepStrictEqual(strip(byName), { Tags: list.Tags, HasMoreTags: false });

    await kinesis.send(new UntagResourceCommand({ ResourceARN: arn("gamma"), TagKeys: ["a"] }));
    const after1 = await kinesis.send(new ListTagsForResourceCommand({ ResourceARN: arn("gamma") }));
    assert.deepStrictEqual(strip(after1), { Tags: [{ Key: "b", Value: "2" }] });
  });

  test("CreateStream with Tags", async () => {
    await kinesis.send(
      new CreateStreamCommand({ StreamName: "tagged", ShardCount: 1, Tags: { owner: "me" } }),
    );
    const tags = await kinesis.send(new ListTagsForStreamCommand({ StreamName: "tagged" }));
    assert.deepStrictEqual(strip(tags), { Tags: [{ Key: "owner", Value: "me" }], HasMoreTags: false });
    await kinesis.send(new DeleteStreamCommand({ StreamName: "tagged" }));
    const e = await catchError(() =>
      kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "tagged" })),
    );
    assert.equal(e.name, "ResourceNotFoundException");
  });
});
