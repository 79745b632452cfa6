// Data plane: PutRecord, PutRecords, GetShardIterator, GetRecords.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  CreateStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  PutRecordCommand,
  PutRecordsCommand,
} from "@aws-sdk/client-kinesis";

import { ACCOUNT, MAX_HASH_KEY, Riffle, allBytes, bytes, catchError, errorShape } from "./harness.mjs";

const strip = ({ $metadata, ...rest }) => rest;
const SHARD0 = "shardId-000000000000";
const SHARD1 = "shardId-000000000001";
const HK0 = "0"; // routes to shard 0 of a 2-shard stream
const HK1 = MAX_HASH_KEY.toString(); // routes to shard 1

/** Deterministic pseudo-random bytes. */
function noise(n, seed = 12345) {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe("records", () => {
  let server;
  let kinesis;

  const iterator = async (StreamName, ShardId, ShardIteratorType, extra = {}) =>
    (
      await kinesis.send(
        new GetShardIteratorCommand({ StreamName, ShardId, ShardIteratorType, ...extra }),
      )
    ).ShardIterator;

  /** Every record of a shard from TRIM_HORIZON (open shard: until an empty page). */
  async function readAll(StreamName, ShardId) {
    let it = await iterator(StreamName, ShardId, "TRIM_HORIZON");
    const records = [];
    for (let i = 0; i < 20 && it; i++) {
      const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: it }));
      records.push(...out.Records);
      if (out.Records.length === 0) break;
      it = out.NextShardIterator;
    }
    return records;
  }

  before(async () => {
    server = await Riffle.start();
    kinesis = server.client();
    for (const name of ["bytes", "batch", "iters", "limits"]) {
      await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: 2 }));
    }
  });
  after(async () => {
    await server?.stop();
  });

  test("PutRecord output and byte-exact GetRecords round trip", async () => {
    const payloads = [
      allBytes(),
      new Uint8Array(0),
      bytes("hello, kinesis"),
      bytes([0, 0, 0, 0]),
      noise(200 * 1024),
      bytes([0xff, 0xfe, 0xfd]),
    ];
    const keys = ["all-bytes", "empty", "text", "zeros", "noise", "ключ-🔑"];
    const t0 = Date.now();
    const puts = [];
    for (let i = 0; i < payloads.length; i++) {
      const out = await kinesis.send(
        new PutRecordCommand({
          StreamName: "bytes",
          PartitionKey: keys[i],
          ExplicitHashKey: HK0,
          Data: payloads[i],
        }),
      );
      assert.match(out.SequenceNumber, /^\d{56}$/);
      assert.deepStrictEqual(strip(out), { ShardId: SHARD0, SequenceNumber: out.SequenceNumber, EncryptionType: "NONE" });
      puts.push(out);
    }
    const t1 = Date.now();
    for (let i = 1; i < puts.length; i++) {
      assert.ok(BigInt(puts[i - 1].SequenceNumber) < BigInt(puts[i].SequenceNumber), "increasing");
    }

    const it = await iterator("bytes", SHARD0, "TRIM_HORIZON");
    const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: it }));
    assert.equal(out.Records.length, payloads.length);
    for (const r of out.Records) {
      assert.ok(r.ApproximateArrivalTimestamp instanceof Date, "ApproximateArrivalTimestamp is a Date");
      const ms = r.ApproximateArrivalTimestamp.getTime();
      assert.ok(ms >= t0 - 1000 && ms <= t1 + 1000, `arrival ${ms} within [${t0}, ${t1}]`);
      assert.ok(r.Data instanceof Uint8Array);
    }
    assert.equal(typeof out.NextShardIterator, "string");
    assert.deepStrictEqual(strip(out), {
      Records: payloads.map((Data, i) => ({
        SequenceNumber: puts[i].SequenceNumber,
        ApproximateArrivalTimestamp: out.Records[i].ApproximateArrivalTimestamp,
        Data,
        PartitionKey: keys[i],
      })),
      NextShardIterator: out.NextShardIterator,
      MillisBehindLatest: 0,
    });

    // nothing went to the other shard
    const other = await kinesis.send(
      new GetRecordsCommand({ ShardIterator: await iterator("bytes", SHARD1, "TRIM_HORIZON") }),
    );
    assert.deepStrictEqual(other.Records, []);

    // the next iterator is positioned after the last record
    const tail = await kinesis.send(new GetRecordsCommand({ ShardIterator: out.NextShardIterator }));
    assert.deepStrictEqual(tail.Records, []);
    assert.equal(tail.MillisBehindLatest, 0);
    assert.equal(typeof tail.NextShardIterator, "string");
  });

  test("PutRecord routes by MD5 of the partition key", async () => {
    // md5("a") = 0cc175b9..., md5("b") = 92eb5ffe... (> 2^127)
    const a = await kinesis.send(new PutRecordCommand({ StreamName: "batch", PartitionKey: "a", Data: bytes("x") }));
    const b = await kinesis.send(new PutRecordCommand({ StreamName: "batch", PartitionKey: "b", Data: bytes("y") }));
    assert.equal(a.ShardId, SHARD0);
    assert.equal(b.ShardId, SHARD1);
  });

  test("PutRecords output in request order, sequence numbers increase per shard", async () => {
    const entries = [
      { PartitionKey: "p0", ExplicitHashKey: HK0, Data: bytes([1]) },
      { PartitionKey: "p1", ExplicitHashKey: HK1, Data: bytes([2, 2]) },
      { PartitionKey: "p2", ExplicitHashKey: HK0, Data: allBytes() },
      { PartitionKey: "p3", ExplicitHashKey: HK1, Data: new Uint8Array(0) },
      { PartitionKey: "p4", ExplicitHashKey: HK0, Data: noise(4096, 7) },
    ];
    const out = await kinesis.send(new PutRecordsCommand({ StreamName: "batch", Records: entries }));
    const shards = [SHARD0, SHARD1, SHARD0, SHARD1, SHARD0];
    for (const r of out.Records) assert.match(r.SequenceNumber, /^\d{56}$/);
    assert.deepStrictEqual(strip(out), {
      FailedRecordCount: 0,
      Records: out.Records.map((r, i) => ({ SequenceNumber: r.SequenceNumber, ShardId: shards[i] })),
      EncryptionType: "NONE",
    });
    const seq = out.Records.map((r) => BigInt(r.SequenceNumber));
    assert.ok(seq[0] < seq[2] && seq[2] < seq[4]);
    assert.ok(seq[1] < seq[3]);

    const s0 = await readAll("batch", SHARD0);
    const s1 = await readAll("batch", SHARD1);
    const pick = (rs, keys) =>
      rs.filter((r) => keys.includes(r.PartitionKey)).map((r) => [r.SequenceNumber, r.PartitionKey, r.Data]);
    assert.deepStrictEqual(pick(s0, ["p0", "p2", "p4"]), [
      [out.Records[0].SequenceNumber, "p0", entries[0].Data],
      [out.Records[2].SequenceNumber, "p2", entries[2].Data],
      [out.Records[4].SequenceNumber, "p4", entries[4].Data],
    ]);
    assert.deepStrictEqual(pick(s1, ["p1", "p3"]), [
      [out.Records[1].SequenceNumber, "p1", entries[1].Data],
      [out.Records[3].SequenceNumber, "p3", entries[3].Data],
    ]);
  });

  test("iterator types: AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP", async () => {
    const seqs = [];
    for (let i = 0; i < 4; i++) {
      const out = await kinesis.send(
        new PutRecordCommand({ StreamName: "iters", PartitionKey: `k${i}`, ExplicitHashKey: HK1, Data: bytes([i]) }),
      );
      seqs.push(out.SequenceNumber);
    }
    const dataOf = (out) => out.Records.map((r) => Array.from(r.Data));

    const at = await kinesis.send(
      new GetRecordsCommand({
        ShardIterator: await iterator("iters", SHARD1, "AT_SEQUENCE_NUMBER", { StartingSequenceNumber: seqs[1] }),
      }),
    );
    assert.deepStrictEqual(dataOf(at), [[1], [2], [3]]);

    const afterIt = await kinesis.send(
      new GetRecordsCommand({
        ShardIterator: await iterator("iters", SHARD1, "AFTER_SEQUENCE_NUMBER", {
          StartingSequenceNumber: seqs[1],
        }),
      }),
    );
    assert.deepStrictEqual(dataOf(afterIt), [[2], [3]]);

    const latestIt = await iterator("iters", SHARD1, "LATEST");
    const empty = await kinesis.send(new GetRecordsCommand({ ShardIterator: latestIt }));
    assert.deepStrictEqual(strip(empty), {
      Records: [],
      NextShardIterator: empty.NextShardIterator,
      MillisBehindLatest: 0,
    });
    assert.equal(typeof empty.NextShardIterator, "string");
    const put = await kinesis.send(
      new PutRecordCommand({ StreamName: "iters", PartitionKey: "late", ExplicitHashKey: HK1, Data: bytes([9]) }),
    );
    const fresh = await kinesis.send(new GetRecordsCommand({ ShardIterator: empty.NextShardIterator }));
    assert.deepStrictEqual(
      fresh.Records.map((r) => [r.SequenceNumber, r.PartitionKey, Array.from(r.Data)]),
      [[put.SequenceNumber, "late", [9]]],
    );

    // AT_TIMESTAMP at the first record's arrival time starts at that record
    const all = await readAll("iters", SHARD1);
    const ts = all[0].ApproximateArrivalTimestamp;
    const atTs = await kinesis.send(
      new GetRecordsCommand({
        ShardIterator: await iterator("iters", SHARD1, "AT_TIMESTAMP", { Timestamp: ts }),
      }),
    );
    assert.equal(atTs.Records[0].SequenceNumber, seqs[0]);
    // a timestamp after every record gives an iterator at the tip
    const later = new Date(all[all.length - 1].ApproximateArrivalTimestamp.getTime() + 1);
    const atLater = await kinesis.send(
      new GetRecordsCommand({
        ShardIterator: await iterator("iters", SHARD1, "AT_TIMESTAMP", { Timestamp: later }),
      }),
    );
    assert.deepStrictEqual(atLater.Records, []);
  });

  test("GetRecords Limit pages through a shard", async () => {
    const seqs = [];
    for (let i = 0; i < 5; i++) {
      const out = await kinesis.send(
        new PutRecordCommand({ StreamName: "limits", PartitionKey: "k", ExplicitHashKey: HK0, Data: bytes([i]) }),
      );
      seqs.push(out.SequenceNumber);
    }
    let it = await iterator("limits", SHARD0, "TRIM_HORIZON");
    const pages = [];
    for (let i = 0; i < 4; i++) {
      const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: 2 }));
      pages.push(out.Records.map((r) => r.SequenceNumber));
      assert.equal(typeof out.MillisBehindLatest, "number");
      it = out.NextShardIterator;
    }
    assert.deepStrictEqual(pages, [[seqs[0], seqs[1]], [seqs[2], seqs[3]], [seqs[4]], []]);
  });

  test("SequenceNumberForOrdering gives a larger sequence number", async () => {
    const first = await kinesis.send(
      new PutRecordCommand({ StreamName: "limits", PartitionKey: "o", ExplicitHashKey: HK1, Data: bytes("1") }),
    );
    const second = await kinesis.send(
      new PutRecordCommand({
        StreamName: "limits",
        PartitionKey: "o",
        ExplicitHashKey: HK1,
        Data: bytes("2"),
        SequenceNumberForOrdering: first.SequenceNumber,
      }),
    );
    assert.equal(second.ShardId, SHARD1);
    assert.ok(BigInt(second.SequenceNumber) > BigInt(first.SequenceNumber));
  });

  test("errors: missing stream, bad hash key, bad shard, bad iterator", async () => {
    const cases = [
      [
        new PutRecordCommand({ StreamName: "nope", PartitionKey: "a", Data: bytes("x") }),
        "ResourceNotFoundException",
        `Stream nope under account ${ACCOUNT} not found.`,
      ],
      [
        new PutRecordsCommand({ StreamName: "nope", Records: [{ PartitionKey: "a", Data: bytes("x") }] }),
        "ResourceNotFoundException",
        `Stream nope under account ${ACCOUNT} not found.`,
      ],
      [
        new PutRecordCommand({
          StreamName: "bytes",
          PartitionKey: "a",
          ExplicitHashKey: (MAX_HASH_KEY + 1n).toString(),
          Data: bytes("x"),
        }),
        "InvalidArgumentException",
        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. " +
          `Specified value was ${(MAX_HASH_KEY + 1n).toString()}`,
      ],
      [
        new GetShardIteratorCommand({ StreamName: "bytes", ShardId: "shardId-000000000009", ShardIteratorType: "LATEST" }),
        "ResourceNotFoundException",
        `Shard shardId-000000000009 in stream bytes under account ${ACCOUNT} does not exist`,
      ],
      [
        new GetShardIteratorCommand({ StreamName: "nope", ShardId: SHARD0, ShardIteratorType: "LATEST" }),
        "ResourceNotFoundException",
        `Shard ${SHARD0} in stream nope under account ${ACCOUNT} does not exist`,
      ],
      [
        new GetShardIteratorCommand({ StreamName: "bytes", ShardId: SHARD0, ShardIteratorType: "AT_SEQUENCE_NUMBER" }),
        "InvalidArgumentException",
        "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or " +
          "(2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. " +
          "Request specified AT_SEQUENCE_NUMBER and no StartingSequenceNumber.",
      ],
      [
        new GetRecordsCommand({ ShardIterator: "AAAAAAAAAAEnotarealiterator" }),
        "InvalidArgumentException",
        "Invalid ShardIterator.",
      ],
      [
        new GetRecordsCommand({ ShardIterator: "x".repeat(513) }),
        "ValidationException",
        `1 validation error detected: Value '${"x".repeat(513)}' at 'shardIterator' failed to satisfy ` +
          "constraint: Member must have length less than or equal to 512",
      ],
      [
        new PutRecordCommand({ StreamName: "bytes", PartitionKey: "", Data: bytes("x") }),
        "ValidationException",
        "1 validation error detected: Value '' at 'partitionKey' failed to satisfy constraint: " +
          "Member must have length greater than or equal to 1",
      ],
    ];
    for (const [cmd, name, message] of cases) {
      const e = await catchError(() => kinesis.send(cmd));
      assert.deepStrictEqual(
        errorShape(e),
        { name, message, fault: "client", httpStatusCode: 400 },
        cmd.constructor.name,
      );
    }
  });

  test("a tampered shard iterator is rejected", async () => {
    const it = await iterator("bytes", SHARD0, "TRIM_HORIZON");
    const buf = Buffer.from(it, "base64");
    buf[buf.length - 1] ^= 0x01;
    const e = await catchError(() =>
      kinesis.send(new GetRecordsCommand({ ShardIterator: buf.toString("base64") })),
    );
    assert.deepStrictEqual(errorShape(e), {
      name: "InvalidArgumentException",
      message: "Invalid ShardIterator.",
      fault: "client",
      httpStatusCode: 400,
    });
  });

  // Moves the server clock: keep last.
  test("an iterator older than 5 minutes: ExpiredIteratorException", async () => {
    const it = await iterator("bytes", SHARD0, "TRIM_HORIZON");
    await server.advanceClock(300_000 + 2_000);
    const e = await catchError(() => kinesis.send(new GetRecordsCommand({ ShardIterator: it })));
    assert.equal(e.name, "ExpiredIteratorException");
    assert.equal(e.$metadata.httpStatusCode, 400);
    const javaDate = "[A-Z][a-z]{2} [A-Z][a-z]{2} \\d{2} \\d{2}:\\d{2}:\\d{2} UTC \\d{4}";
    assert.match(
      e.message,
      new RegExp(
        `^Iterator expired\\. The iterator was created at time ${javaDate} while right now it is ${javaDate} ` +
          "which is further in the future than the tolerated delay of 300000 milliseconds\\.$",
      ),
    );
  });
});
