// Enhanced fan-out: RegisterStreamConsumer and SubscribeToShard over HTTP/2
// (event stream), through the SDK and byte by byte.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import { crc32 } from "node:zlib";

import {
  CreateStreamCommand,
  SplitShardCommand,
  DescribeStreamConsumerCommand,
  DescribeStreamSummaryCommand,
  ListStreamConsumersCommand,
  PutRecordCommand,
  PutRecordsCommand,
  RegisterStreamConsumerCommand,
  SubscribeToShardCommand,
} from "@aws-sdk/client-kinesis";

import { ACCOUNT, MAX_HASH_KEY, REGION, Riffle, bytes, catchError } from "./harness.mjs";

const strip = ({ $metadata, ...rest }) => rest;
const streamArn = (name) => `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${name}`;
const SHARD0 = "shardId-000000000000";
const SHARD1 = "shardId-000000000001";

/** Rejects after `ms` unless `promise` settles first; calls `onTimeout` on expiry. */
function withTimeout(promise, ms, what, onTimeout = () => {}) {
  let timer;
  const t = new Promise((_, fail) => {
    timer = setTimeout(() => {
      onTimeout();
      fail(new Error(`timed out after ${ms} ms: ${what}`));
    }, ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/**
 * Iterates `sub.EventStream`, calling `onEvent(SubscribeToShardEvent)` until it returns true, then
 * breaks. Breaking out of the SDK's async iterable does not cancel the HTTP/2 stream (the SDK leaves
 * it open; verified with NODE_DEBUG=http2), so the request is then aborted, which resets the stream
 * (RST_STREAM) and ends the subscription on the server.
 */
async function consume(sub, ac, onEvent, what, ms = 15000) {
  const run = (async () => {
    for await (const ev of sub.EventStream) {
      assert.deepStrictEqual(Object.keys(ev), ["SubscribeToShardEvent"]);
      if (await onEvent(ev.SubscribeToShardEvent)) break;
    }
  })();
  try {
    await withTimeout(run, ms, what);
  } finally {
    ac.abort();
  }
}

/** Decodes AWS event-stream messages from `buf`; returns [messages, rest]. */
function decodeMessages(buf) {
  const out = [];
  let off = 0;
  while (buf.length - off >= 12) {
    const total = buf.readUInt32BE(off);
    if (buf.length - off < total) break;
    const msg = buf.subarray(off, off + total);
    const headersLen = msg.readUInt32BE(4);
    const preludeCrc = msg.readUInt32BE(8);
    const messageCrc = msg.readUInt32BE(total - 4);
    const headers = {};
    let h = 12;
    const hEnd = 12 + headersLen;
    while (h < hEnd) {
      const nameLen = msg[h];
      const name = msg.subarray(h + 1, h + 1 + nameLen).toString("utf8");
      h += 1 + nameLen;
      const type = msg[h];
      h += 1;
      if (type === 7) {
        const len = msg.readUInt16BE(h);
        headers[name] = msg.subarray(h + 2, h + 2 + len).toString("utf8");
        h += 2 + len;
      } else {
        headers[name] = `<type ${type}>`;
        break;
      }
    }
    out.push({
      raw: msg,
      total,
      headersLen,
      preludeCrcOk: crc32(msg.subarray(0, 8)) === preludeCrc,
      messageCrcOk: crc32(msg.subarray(0, total - 4)) === messageCrc,
      headers,
      payload: msg.subarray(hEnd, total - 4).toString("utf8"),
    });
    off += total;
  }
  return [out, buf.subarray(off)];
}

describe("enhanced fan-out", () => {
  let server;
  let kinesis;
  let consumer;
  const consumers = {};
  const register = async (ConsumerName) => {
    const out = await kinesis.send(
      new RegisterStreamConsumerCommand({ StreamARN: streamArn("fanout"), ConsumerName }),
    );
    return out.Consumer;
  };

  before(async () => {
    server = await Riffle.start();
    kinesis = server.client();
    await kinesis.send(new CreateStreamCommand({ StreamName: "fanout", ShardCount: 2 }));
    const reg = await kinesis.send(
      new RegisterStreamConsumerCommand({ StreamARN: streamArn("fanout"), ConsumerName: "reader" }),
    );
    consumer = reg.Consumer;
    // AWS allows one subscription per consumer and shard at a time (and none again within 5 s),
    // so each subscribing test gets its own consumer.
    for (const name of ["trim", "raw", "twice"]) consumers[name] = await register(name);
  });
  after(async () => {
    await server?.stop();
  });

  test("RegisterStreamConsumer, DescribeStreamConsumer, ListStreamConsumers", async () => {
    const ts = consumer.ConsumerCreationTimestamp;
    assert.ok(ts instanceof Date);
    assert.equal(ts.getTime() % 1000, 0, "creation timestamp has whole seconds");
    const arn = `${streamArn("fanout")}/consumer/reader:${ts.getTime() / 1000}`;
    assert.equal(consumer.ConsumerARN, arn);
    // riffle runs with --status-delay-ms 0, so the consumer may already be ACTIVE
    assert.ok(["CREATING", "ACTIVE"].includes(consumer.ConsumerStatus), consumer.ConsumerStatus);

    const d = await kinesis.send(new DescribeStreamConsumerCommand({ ConsumerARN: arn }));
    assert.deepStrictEqual(strip(d), {
      ConsumerDescription: {
        ConsumerName: "reader",
        ConsumerARN: arn,
        ConsumerStatus: "ACTIVE",
        ConsumerCreationTimestamp: ts,
        StreamARN: streamArn("fanout"),
      },
    });
    const byName = await kinesis.send(
      new DescribeStreamConsumerCommand({ StreamARN: streamArn("fanout"), ConsumerName: "reader" }),
    );
    assert.deepStrictEqual(strip(byName), strip(d));

    const list = await kinesis.send(new ListStreamConsumersCommand({ StreamARN: streamArn("fanout") }));
    const all = [consumer, consumers.trim, consumers.raw, consumers.twice].map((c) => ({
      ConsumerName: c.ConsumerName,
      ConsumerARN: c.ConsumerARN,
      ConsumerStatus: "ACTIVE",
      ConsumerCreationTimestamp: c.ConsumerCreationTimestamp,
    }));
    assert.deepStrictEqual(
      strip(list).Consumers.find((c) => c.ConsumerName === "reader"),
      { ConsumerName: "reader", ConsumerARN: arn, ConsumerStatus: "ACTIVE", ConsumerCreationTimestamp: ts },
    );
    const byNameSort = (a, b) => (a.ConsumerName < b.ConsumerName ? -1 : 1);
    assert.deepStrictEqual(
      { Consumers: [...list.Consumers].sort(byNameSort) },
      { Consumers: all.sort(byNameSort) },
    );
    const summary = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "fanout" }));
    assert.equal(summary.StreamDescriptionSummary.ConsumerCount, 4);

    const dup = await catchError(() =>
      kinesis.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn("fanout"), ConsumerName: "reader" })),
    );
    assert.equal(dup.name, "ResourceInUseException");
    assert.equal(dup.$metadata.httpStatusCode, 400);
  });

  test("SubscribeToShard (LATEST): records put after subscribing arrive; break out cleanly", async () => {
    const ac = new AbortController();
    const sub = await kinesis.send(
      new SubscribeToShardCommand({
        ConsumerARN: consumer.ConsumerARN,
        ShardId: SHARD0,
        StartingPosition: { Type: "LATEST" },
      }),
      { abortSignal: ac.signal },
    );
    assert.equal(sub.$metadata.httpStatusCode, 200);

    const payloads = [bytes([0, 1, 2, 255]), new Uint8Array(0), bytes("third"), Uint8Array.from({ length: 256 }, (_, i) => 255 - i)];
    let puts;
    const events = [];
    const received = [];
    await consume(
      sub,
      ac,
      async (e) => {
        events.push(e);
        if (!puts) {
          // subscribed: now write, to this shard (hash key 0) and one record to the other shard
          const out = await kinesis.send(
            new PutRecordsCommand({
              StreamName: "fanout",
              Records: payloads.map((Data, i) => ({ PartitionKey: `pk${i}`, ExplicitHashKey: "0", Data })),
            }),
          );
          await kinesis.send(
            new PutRecordCommand({
              StreamName: "fanout",
              PartitionKey: "other",
              ExplicitHashKey: MAX_HASH_KEY.toString(),
              Data: bytes("elsewhere"),
            }),
          );
          puts = out.Records;
        }
        received.push(...e.Records);
        return received.length >= puts.length;
      },
      "records over SubscribeToShard",
    );

    assert.equal(puts.length, payloads.length);
    for (const p of puts) assert.equal(p.ShardId, SHARD0);
    for (const r of received) {
      assert.ok(r.ApproximateArrivalTimestamp instanceof Date);
      assert.ok(r.Data instanceof Uint8Array);
    }
    assert.deepStrictEqual(
      received,
      payloads.map((Data, i) => ({
        SequenceNumber: puts[i].SequenceNumber,
        ApproximateArrivalTimestamp: received[i].ApproximateArrivalTimestamp,
        Data,
        PartitionKey: `pk${i}`,
      })),
    );
    // every event is a whole SubscribeToShardEvent
    for (const e of events) {
      assert.ok(Array.isArray(e.Records));
      assert.match(e.ContinuationSequenceNumber, /^\d{56}$/);
      assert.equal(typeof e.MillisBehindLatest, "number");
    }
    const last = events[events.length - 1];
    assert.equal(last.ContinuationSequenceNumber, puts[puts.length - 1].SequenceNumber);
    assert.deepStrictEqual(strip(last), {
      Records: last.Records,
      ContinuationSequenceNumber: puts[puts.length - 1].SequenceNumber,
      MillisBehindLatest: 0,
    });

    // the connection is still usable after breaking out of the subscription
    const d = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "fanout" }));
    assert.equal(d.StreamDescriptionSummary.StreamStatus, "ACTIVE");
  });

  test("SubscribeToShard (TRIM_HORIZON) delivers existing records of that shard only", async () => {
    const ac = new AbortController();
    const sub = await kinesis.send(
      new SubscribeToShardCommand({
        ConsumerARN: consumers.trim.ConsumerARN,
        ShardId: SHARD1,
        StartingPosition: { Type: "TRIM_HORIZON" },
      }),
      { abortSignal: ac.signal },
    );
    const got = [];
    let lastEvent;
    await consume(
      sub,
      ac,
      (e) => {
        lastEvent = e;
        got.push(...e.Records);
        return got.length >= 1;
      },
      "TRIM_HORIZON records",
    );
    assert.deepStrictEqual(
      got.map((r) => [r.PartitionKey, Buffer.from(r.Data).toString()]),
      [["other", "elsewhere"]],
    );
    assert.equal(lastEvent.ContinuationSequenceNumber, got[got.length - 1].SequenceNumber);
  });

  test("SubscribeToShard on an unknown consumer: ResourceNotFoundException", async () => {
    const bogus = `${streamArn("fanout")}/consumer/nobody:1700000000`;
    const e = await catchError(async () => {
      const sub = await kinesis.send(
        new SubscribeToShardCommand({ ConsumerARN: bogus, ShardId: SHARD0, StartingPosition: { Type: "LATEST" } }),
      );
      for await (const _ of sub.EventStream) break;
    });
    assert.equal(e.name, "ResourceNotFoundException");
  });

  test("a second concurrent subscription for the same consumer and shard: ResourceInUseException", async () => {
    const arn = consumers.twice.ConsumerARN;
    const ac1 = new AbortController();
    const first = await kinesis.send(
      new SubscribeToShardCommand({ ConsumerARN: arn, ShardId: SHARD0, StartingPosition: { Type: "LATEST" } }),
      { abortSignal: ac1.signal },
    );
    const it = first.EventStream[Symbol.asyncIterator]();
    try {
      // the first subscription is live: it has delivered its first event
      const ev = await withTimeout(it.next(), 10000, "first subscription's first event");
      assert.equal(ev.done, false);

      // AWS allows one call per second per consumer and shard; within five
      // seconds of the first call, a second one is ResourceInUseException.
      await new Promise((r) => setTimeout(r, 1100));
      const ac2 = new AbortController();
      const e = await catchError(async () => {
        // the error may come as an HTTP error or as an exception event in the stream
        const second = await kinesis.send(
          new SubscribeToShardCommand({ ConsumerARN: arn, ShardId: SHARD0, StartingPosition: { Type: "LATEST" } }),
          { abortSignal: ac2.signal },
        );
        try {
          await withTimeout(
            (async () => {
              for await (const _ of second.EventStream) break;
            })(),
            10000,
            "second subscription",
          );
        } finally {
          ac2.abort();
        }
      });
      assert.equal(e.name, "ResourceInUseException", `${e.name}: ${e.message}`);
    } finally {
      ac1.abort();
    }
  });

  test("raw HTTP/2 SubscribeToShard: event-stream framing, headers and CRCs", async () => {
    const session = http2.connect(server.endpoint);
    try {
      const req = session.request({
        ":method": "POST",
        ":path": "/",
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "Kinesis_20131202.SubscribeToShard",
        "x-amz-date": "20240101T000000Z",
        authorization:
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/kinesis/aws4_request, " +
          "SignedHeaders=content-type;host;x-amz-date;x-amz-target, " +
          "Signature=0000000000000000000000000000000000000000000000000000000000000000",
      });
      req.end(
        JSON.stringify({
          ConsumerARN: consumers.raw.ConsumerARN,
          ShardId: SHARD1,
          StartingPosition: { Type: "TRIM_HORIZON" },
        }),
      );
      const result = await withTimeout(
        new Promise((ok, fail) => {
          let headers;
          let buf = Buffer.alloc(0);
          const messages = [];
          req.on("response", (h) => (headers = h));
          req.on("error", fail);
          req.on("data", (chunk) => {
            let msgs;
            [msgs, buf] = decodeMessages(Buffer.concat([buf, chunk]));
            messages.push(...msgs);
            if (messages.length >= 2) ok({ headers, messages });
          });
          req.on("end", () => ok({ headers, messages }));
        }),
        10000,
        "two event-stream messages",
      );
      req.close(http2.constants.NGHTTP2_CANCEL);

      assert.equal(result.headers[":status"], 200);
      assert.equal(result.headers["content-type"], "application/vnd.amazon.eventstream");
      assert.match(result.headers["x-amzn-requestid"] ?? "", /^[0-9a-f-]{36}$/);
      assert.ok(result.messages.length >= 2, "at least two messages");
      const [initial, first] = result.messages;
      const describeMsg = (m) => ({
        preludeCrcOk: m.preludeCrcOk,
        messageCrcOk: m.messageCrcOk,
        headers: m.headers,
      });
      assert.deepStrictEqual(describeMsg(initial), {
        preludeCrcOk: true,
        messageCrcOk: true,
        headers: {
          ":event-type": "initial-response",
          ":content-type": "application/x-amz-json-1.1",
          ":message-type": "event",
        },
      });
      assert.deepStrictEqual(JSON.parse(initial.payload), {});
      assert.deepStrictEqual(describeMsg(first), {
        preludeCrcOk: true,
        messageCrcOk: true,
        headers: {
          ":event-type": "SubscribeToShardEvent",
          ":content-type": "application/x-amz-json-1.1",
          ":message-type": "event",
        },
      });
      const ev = JSON.parse(first.payload);
      assert.deepStrictEqual(Object.keys(ev).sort(), ["ContinuationSequenceNumber", "MillisBehindLatest", "Records"]);
      assert.equal(ev.Records.length, 1);
      assert.deepStrictEqual(Object.keys(ev.Records[0]).sort(), [
        "ApproximateArrivalTimestamp",
        "Data",
        "PartitionKey",
        "SequenceNumber",
      ]);
      assert.equal(ev.Records[0].Data, Buffer.from("elsewhere").toString("base64"));
      assert.equal(typeof ev.Records[0].ApproximateArrivalTimestamp, "number");
    } finally {
      session.destroy();
    }
  });
});

describe("enhanced fan-out with a status delay", () => {
  let server;
  let kinesis;
  before(async () => {
    server = await Riffle.start({ statusDelayMs: 300 });
    kinesis = server.client();
    await kinesis.send(new CreateStreamCommand({ StreamName: "slow", ShardCount: 1 }));
    for (let i = 0; i < 100; i++) {
      const s = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "slow" }));
      if (s.StreamDescriptionSummary.StreamStatus === "ACTIVE") break;
      await new Promise((r) => setTimeout(r, 25));
    }
  });
  after(async () => {
    await server?.stop();
  });

  test("RegisterStreamConsumer answers CREATING; the consumer becomes ACTIVE", async () => {
    const reg = await kinesis.send(
      new RegisterStreamConsumerCommand({ StreamARN: streamArn("slow"), ConsumerName: "late" }),
    );
    const ts = reg.Consumer.ConsumerCreationTimestamp;
    assert.deepStrictEqual(strip(reg), {
      Consumer: {
        ConsumerName: "late",
        ConsumerARN: `${streamArn("slow")}/consumer/late:${ts.getTime() / 1000}`,
        ConsumerStatus: "CREATING",
        ConsumerCreationTimestamp: ts,
      },
    });
    let status;
    for (let i = 0; i < 100; i++) {
      const d = await kinesis.send(new DescribeStreamConsumerCommand({ ConsumerARN: reg.Consumer.ConsumerARN }));
      status = d.ConsumerDescription.ConsumerStatus;
      if (status === "ACTIVE") break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(status, "ACTIVE");
  });
});

describe("subscription lifetime", () => {
  let server;
  let kinesis;
  before(async () => {
    server = await Riffle.start();
    kinesis = server.client();
    await kinesis.send(new CreateStreamCommand({ StreamName: "life", ShardCount: 1 }));
  });
  after(async () => {
    await server?.stop();
  });

  /** Collects every event until the server ends the stream. */
  async function collectUntilEnd(sub, ac, what) {
    const events = [];
    try {
      await withTimeout(
        (async () => {
          for await (const ev of sub.EventStream) events.push(ev.SubscribeToShardEvent);
        })(),
        10000,
        what,
      );
    } finally {
      ac.abort();
    }
    return events;
  }

  test("a split closes the shard: last event has ChildShards and no ContinuationSequenceNumber", async () => {
    const c = (
      await kinesis.send(
        new RegisterStreamConsumerCommand({ StreamARN: streamArn("life"), ConsumerName: "splitwatch" }),
      )
    ).Consumer;
    const put = await kinesis.send(
      new PutRecordCommand({ StreamName: "life", PartitionKey: "a", Data: bytes("before split") }),
    );
    const ac = new AbortController();
    const sub = await kinesis.send(
      new SubscribeToShardCommand({
        ConsumerARN: c.ConsumerARN,
        ShardId: SHARD0,
        StartingPosition: { Type: "TRIM_HORIZON" },
      }),
      { abortSignal: ac.signal },
    );
    const mid = (1n << 127n).toString();
    await kinesis.send(new SplitShardCommand({ StreamName: "life", ShardToSplit: SHARD0, NewStartingHashKey: mid }));
    const events = await collectUntilEnd(sub, ac, "subscription to a split shard");
    const records = events.flatMap((e) => e.Records);
    assert.deepStrictEqual(
      records.map((r) => r.SequenceNumber),
      [put.SequenceNumber],
    );
    const last = events[events.length - 1];
    assert.deepStrictEqual(strip(last), {
      Records: last.Records,
      MillisBehindLatest: last.MillisBehindLatest,
      ChildShards: [
        {
          ShardId: "shardId-000000000001",
          ParentShards: [SHARD0],
          HashKeyRange: { StartingHashKey: "0", EndingHashKey: ((1n << 127n) - 1n).toString() },
        },
        {
          ShardId: "shardId-000000000002",
          ParentShards: [SHARD0],
          HashKeyRange: { StartingHashKey: mid, EndingHashKey: MAX_HASH_KEY.toString() },
        },
      ],
    });
    for (const e of events.slice(0, -1)) assert.equal(e.ChildShards, undefined);
  });

  // Moves the server clock: keep last.
  test("a subscription ends after 5 minutes", async () => {
    const c = (
      await kinesis.send(
        new RegisterStreamConsumerCommand({ StreamARN: streamArn("life"), ConsumerName: "fiveminutes" }),
      )
    ).Consumer;
    const ac = new AbortController();
    const sub = await kinesis.send(
      new SubscribeToShardCommand({
        ConsumerARN: c.ConsumerARN,
        ShardId: "shardId-000000000001",
        StartingPosition: { Type: "LATEST" },
      }),
      { abortSignal: ac.signal },
    );
    await server.advanceClock(5 * 60 * 1000 + 1000);
    const events = await collectUntilEnd(sub, ac, "subscription past 5 minutes");
    assert.ok(events.length >= 1);
    for (const e of events) assert.deepStrictEqual(e.Records, []);
  });
});
