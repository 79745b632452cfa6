// The console's live tail over Server-Sent Events
// (GET /_riffle/console/api/streams/<name>/tail): records put with the JS
// SDK arrive from each starting position and across a split in KCL order;
// the URL is presigned with the console's own SigV4 code and checked like
// any signed request; another origin is refused; and the stream page's
// tail in Chromium uses it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

import {
  CreateStreamCommand,
  DeleteStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  PutRecordCommand,
  SplitShardCommand,
} from "@aws-sdk/client-kinesis";

import { CREDENTIALS, REGION, Riffle } from "./harness.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const CONSOLE = join(resolve(HERE, "..", ".."), "crates", "riffle-server", "console");
const CHROMIUM = "/usr/bin/chromium";
const { presign } = await import(join(CONSOLE, "sigv4.js"));
const enc = new TextEncoder();

/** The tail's URL for `stream`, from `params`, presigned with `secret` unless null. */
async function tailUrl(server, stream, params, secret = CREDENTIALS.secretAccessKey, date = new Date()) {
  const url = `${server.endpoint}/_riffle/console/api/streams/${stream}/tail?${new URLSearchParams(params)}`;
  if (secret === null) return url;
  return presign({ url, credentials: { ...CREDENTIALS, secretAccessKey: secret }, region: REGION, service: "kinesis", date });
}

/**
 * An open tail: its response, and the events read so far as
 * {event, data} (comments left out); `until(n)` waits for n of them.
 */
async function open(url, headers = {}) {
  const abort = new AbortController();
  const resp = await fetch(url, { headers, signal: abort.signal });
  const got = { resp, events: [], close: () => abort.abort() };
  if (!resp.ok) return { ...got, body: await resp.text() };
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const lines = block.split("\n").filter((l) => !l.startsWith(":"));
          if (!lines.length) continue;
          const field = (f) => lines.find((l) => l.startsWith(`${f}: `))?.slice(f.length + 2);
          got.events.push({ event: field("event"), data: JSON.parse(field("data")) });
        }
      }
    } catch {
      // closed
    }
  })();
  got.until = async (n, what = `${n} events`) => {
    const deadline = Date.now() + 15000;
    while (got.events.length < n && Date.now() < deadline) await sleep(50);
    assert.equal(got.events.length, n, `${what}: ${JSON.stringify(got.events)}`);
    return got.events;
  };
  return got;
}

const b64 = (s) => Buffer.from(s).toString("base64");

describe("the live tail over Server-Sent Events, on a server that checks signatures", () => {
  let server, sdk;
  before(async () => {
    server = await Riffle.start({ args: ["--credential-pairs", `${CREDENTIALS.accessKeyId}:${CREDENTIALS.secretAccessKey}`] });
    sdk = server.client();
  });
  after(() => server?.stop());

  const put = (stream, key, data, hashKey) =>
    sdk.send(new PutRecordCommand({ StreamName: stream, PartitionKey: key, Data: enc.encode(data), ExplicitHashKey: hashKey }));
  const recordOf = (p, key, data) => ({
    event: "record",
    data: { shardId: p.ShardId, sequenceNumber: p.SequenceNumber, partitionKey: key, arrivalTimestamp: p.arrival, data: b64(data) },
  });
  /** PutRecord's answer with the record's arrival time, as GetRecords reports it. */
  const putRead = async (stream, key, data, hashKey) => {
    const p = await put(stream, key, data, hashKey);
    const { ShardIterator } = await sdk.send(
      new GetShardIteratorCommand({ StreamName: stream, ShardId: p.ShardId, ShardIteratorType: "AT_SEQUENCE_NUMBER", StartingSequenceNumber: p.SequenceNumber }),
    );
    const { Records } = await sdk.send(new GetRecordsCommand({ ShardIterator, Limit: 1 }));
    return { ...p, arrival: Records[0].ApproximateArrivalTimestamp.getTime() / 1000 };
  };

  test("the console's presigned URL is botocore's for the same request", async () => {
    const url = await presign({
      method: "POST",
      url: "http://127.0.0.1:4566/",
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "Kinesis_20131202.ListStreams" },
      credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "secret" },
      region: "us-east-1",
      service: "kinesis",
      expires: 300,
      date: new Date(Date.UTC(2026, 10, 25, 21, 36, 37)),
    });
    // botocore 1.44.8's SigV4QueryAuth (the vector in riffle-wire's sigv4.rs).
    assert.equal(
      url,
      "http://127.0.0.1:4566/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDTEST%2F20261125%2Fus-east-1%2Fkinesis%2Faws4_request&X-Amz-Date=20261125T213637Z&X-Amz-Expires=300&X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-target&X-Amz-Signature=21e34a972ba10bc868a6902aa1b682bd2b055259333ffe973bb82e60d51dfa8c",
    );
  });

  test("from the trim horizon: every shard, a split's children after their parent", { timeout: 60000 }, async () => {
    await sdk.send(new CreateStreamCommand({ StreamName: "lineage", ShardCount: 2 }));
    const before = [await putRead("lineage", "a", "a1", "1"), await putRead("lineage", "b", "b1", (2n ** 127n + 1n).toString())];
    await sdk.send(new SplitShardCommand({ StreamName: "lineage", ShardToSplit: "shardId-000000000000", NewStartingHashKey: (2n ** 126n).toString() }));
    const child = await putRead("lineage", "a", "a2 ✓", "1");
    assert.equal(child.ShardId, "shardId-000000000002");
    const tail = await open(await tailUrl(server, "lineage", { from: "trim-horizon" }));
    assert.equal(tail.resp.status, 200);
    assert.equal(tail.resp.headers.get("content-type"), "text/event-stream");
    assert.equal(tail.resp.headers.get("cache-control"), "no-store");
    const events = await tail.until(3);
    const byShard = (e) => e.data.shardId;
    // The parent's record before its child's; shard 1's anywhere.
    assert.deepEqual(
      events.filter((e) => byShard(e) !== "shardId-000000000001"),
      [recordOf(before[0], "a", "a1"), recordOf(child, "a", "a2 ✓")],
    );
    assert.deepEqual(events.filter((e) => byShard(e) === "shardId-000000000001"), [recordOf(before[1], "b", "b1")]);
    // Records put while the tail is open arrive too, in either child.
    const later = [await putRead("lineage", "c", "c1", "2"), await putRead("lineage", "d", "d1", (2n ** 126n + 5n).toString())];
    assert.deepEqual(
      (await tail.until(5)).slice(3),
      [recordOf(later[0], "c", "c1"), recordOf(later[1], "d", "d1")],
    );
    // Deleting the stream ends the tail with AWS's error.
    await sdk.send(new DeleteStreamCommand({ StreamName: "lineage" }));
    const [failure] = (await tail.until(6)).slice(5);
    assert.deepEqual(failure, {
      event: "failure",
      data: { __type: "ResourceNotFoundException", message: "Stream lineage under account 000000000000 not found." },
    });
    tail.close();
  });

  test("from latest: only what is put after the tail opened", { timeout: 60000 }, async () => {
    await sdk.send(new CreateStreamCommand({ StreamName: "latest", ShardCount: 1 }));
    await put("latest", "k", "old");
    const tail = await open(await tailUrl(server, "latest", { from: "latest" }));
    await sleep(300);
    const fresh = await putRead("latest", "k", "new");
    assert.deepEqual(await tail.until(1), [recordOf(fresh, "k", "new")]);
    tail.close();
  });

  test("at a timestamp: records that arrived then or later", { timeout: 60000 }, async () => {
    await sdk.send(new CreateStreamCommand({ StreamName: "at", ShardCount: 1 }));
    const first = await putRead("at", "k", "first");
    await server.advanceClock(10000);
    const second = await putRead("at", "k", "second");
    const at = await open(await tailUrl(server, "at", { from: "at-timestamp", timestamp: String(first.arrival + 5) }));
    assert.deepEqual(await at.until(1), [recordOf(second, "k", "second")]);
    at.close();
    const all = await open(await tailUrl(server, "at", { from: "at-timestamp", timestamp: String(first.arrival) }));
    assert.deepEqual(await all.until(2), [recordOf(first, "k", "first"), recordOf(second, "k", "second")]);
    all.close();
  });

  test("refuses unsigned, wrongly signed, expired and foreign requests, and bad arguments", { timeout: 60000 }, async () => {
    await sdk.send(new CreateStreamCommand({ StreamName: "guarded", ShardCount: 1 }));
    const answer = async (url, headers) => {
      const t = await open(url, headers);
      t.close();
      return { status: t.resp.status, body: t.body };
    };
    const err = (status, type, message) => ({ status, body: JSON.stringify({ __type: type, message }) });
    assert.deepEqual(
      await answer(await tailUrl(server, "guarded", { from: "latest" }, null)),
      err(403, "MissingAuthenticationTokenException", "Missing Authentication Token"),
    );
    const wrong = await answer(await tailUrl(server, "guarded", { from: "latest" }, "not-the-secret"));
    assert.equal(wrong.status, 400);
    assert.match(JSON.parse(wrong.body).message, /^The request signature we calculated does not match the signature you provided\./);
    assert.equal(JSON.parse(wrong.body).__type, "InvalidSignatureException");
    const expired = await answer(await tailUrl(server, "guarded", { from: "latest" }, undefined, new Date(Date.now() - 3600_000)));
    assert.equal(expired.status, 400);
    assert.match(JSON.parse(expired.body).message, /^Signature expired: /);
    // The signature covers the query: changing the start breaks it.
    const tampered = (await tailUrl(server, "guarded", { from: "latest" })).replace("from=latest", "from=trim-horizon");
    assert.equal(JSON.parse((await answer(tampered)).body).__type, "InvalidSignatureException");
    const foreign = "http://127.0.0.1:1";
    assert.deepEqual(
      await answer(await tailUrl(server, "guarded", { from: "latest" }), { origin: foreign }),
      err(400, "AccessDeniedException", `Console requests are accepted only from the server's own origin (${server.endpoint}), not from ${foreign}`),
    );
    assert.deepEqual(
      await answer(await tailUrl(server, "guarded", { from: "AT_SEQUENCE_NUMBER" })),
      err(400, "InvalidArgumentException", "from AT_SEQUENCE_NUMBER is not one of trim-horizon, latest and at-timestamp."),
    );
    assert.deepEqual(
      await answer(await tailUrl(server, "guarded", { from: "at-timestamp" })),
      err(400, "InvalidArgumentException", "A timestamp is required when from is at-timestamp."),
    );
    assert.deepEqual(
      await answer(await tailUrl(server, "nowhere", { from: "latest" })),
      err(400, "ResourceNotFoundException", "Stream nowhere under account 000000000000 not found."),
    );
  });

  test("the stream page's tail in Chromium is pushed, signed, and shows each start's records", {
    skip: !existsSync(CHROMIUM) && `${CHROMIUM} is missing (scripts/test installs Debian's chromium)`,
    timeout: 90000,
  }, async () => {
    await sdk.send(new CreateStreamCommand({ StreamName: "pushed", ShardCount: 2 }));
    const old = await putRead("pushed", "k-old", "before the tail");
    // Later records arrive at least 5 s after it on the server's clock.
    await server.advanceClock(5000);
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(`${server.endpoint}/_riffle/console/#/streams/pushed`);
      await page.fill("input[name=accessKeyId]", CREDENTIALS.accessKeyId);
      await page.fill("input[name=secretAccessKey]", CREDENTIALS.secretAccessKey);
      await page.click("form.signin button[type=submit]");
      await page.waitForSelector("svg.shardmap g.shard >> nth=1");
      const rows = () =>
        page.$$eval("table.records tbody tr", (trs) => trs.map((tr) => [tr.dataset.shardId, tr.dataset.seq, tr.children[3].textContent, tr.querySelector("td.data").textContent]));
      const rowOf = (p, key, data) => [p.ShardId, p.SequenceNumber, key, data];
      const waitRows = async (n) => {
        const deadline = Date.now() + 15000;
        let r;
        while ((r = await rows()).length < n && Date.now() < deadline) await sleep(100);
        return r;
      };
      const start = async (type, timestamp) => {
        await page.selectOption("select[name=iteratorType]", type);
        if (timestamp) await page.fill("input[name=timestamp]", timestamp);
        await page.click("text=Start tail");
        assert.equal(await page.getAttribute("[aria-live=polite][data-transport]", "data-transport"), "events");
      };

      // Latest: only the new record.
      await start("LATEST");
      await sleep(300);
      const fresh = await putRead("pushed", "k-new", "after the tail ✓");
      assert.deepEqual(await waitRows(1), [rowOf(fresh, "k-new", "after the tail ✓")]);
      await page.click("text=Stop");

      // Trim horizon: both, newest first.
      await start("TRIM_HORIZON");
      const both = await waitRows(2);
      assert.deepEqual(
        both.sort((a, b) => a[2].localeCompare(b[2])),
        [rowOf(fresh, "k-new", "after the tail ✓"), rowOf(old, "k-old", "before the tail")],
      );
      await page.click("text=Stop");

      // At a timestamp (the field is local time, whole seconds) after the first record.
      const at0 = (Math.floor(old.arrival) + 1) * 1000;
      const local = new Date(at0 - new Date(at0).getTimezoneOffset() * 60000).toISOString().slice(0, 19);
      await start("AT_TIMESTAMP", local);
      const at = await waitRows(1);
      await sleep(500);
      assert.deepEqual(await rows(), [rowOf(fresh, "k-new", "after the tail ✓")], JSON.stringify(at));
      await page.click("text=Stop");
    } finally {
      await browser.close();
    }
  });
});
