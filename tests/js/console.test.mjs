// The web console in a real browser (Debian's Chromium driven by
// playwright-core): streams created, fed, tailed, split and deleted through
// the UI and the SDK; read-only mode; cross-origin pages; signing. Writes
// the screenshots in docs/console/.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import {
  DescribeStreamSummaryCommand,
  ListStreamsCommand,
  CreateStreamCommand,
  PutRecordCommand,
  SplitShardCommand,
} from "@aws-sdk/client-kinesis";

import { CREDENTIALS, Riffle, catchError } from "./harness.mjs";
import { CONSOLE, ROOT, skip, launch, until, shoot } from "./console-harness.mjs";

const require = createRequire(import.meta.url);
const VERSION = readFileSync(join(ROOT, "Cargo.toml"), "utf8").match(/^version = "([^"]+)"/m)[1];
const HALF = (2n ** 127n - 1n).toString();

/** The live tail's rows: shard, partition key and decoded data. */
function tailRows(page) {
  return page.$$eval("table.records tbody tr", (trs) =>
    trs.map((tr) => ({
      shard: tr.dataset.shardId,
      seq: tr.dataset.seq,
      key: tr.children[3].textContent,
      data: tr.querySelector("td.data").textContent,
    })),
  );
}

test("the vendored uPlot is the pinned package's files, byte for byte", () => {
  const pinned = JSON.parse(readFileSync(join(CONSOLE, "package.json"), "utf8")).dependencies.uplot;
  const lock = JSON.parse(readFileSync(join(CONSOLE, "package-lock.json"), "utf8"));
  assert.equal(lock.packages["node_modules/uplot"].version, pinned);
  assert.equal(require("uplot/package.json").version, pinned);
  for (const [vendored, dist] of [
    ["uPlot.iife.min.js", "uplot/dist/uPlot.iife.min.js"],
    ["uPlot.min.css", "uplot/dist/uPlot.min.css"],
  ]) {
    assert.ok(readFileSync(join(CONSOLE, "vendor", vendored)).equals(readFileSync(require.resolve(dist))), vendored);
  }
});

test("the console's SigV4 signs AWS's get-vanilla test vector", async () => {
  const { sign } = await import(join(CONSOLE, "sigv4.js"));
  const out = await sign({
    method: "GET",
    url: "https://example.amazonaws.com/",
    credentials: CREDENTIALS,
    region: "us-east-1",
    service: "service",
    date: new Date(Date.UTC(2015, 7, 30, 12, 36, 0)),
  });
  assert.deepEqual(out, {
    "x-amz-date": "20150830T123600Z",
    authorization:
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
  });
});

describe("the console, read-write (the loopback default)", { skip }, () => {
  let server, sdk, browser, page;
  before(async () => {
    server = await Riffle.start();
    sdk = server.client();
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("create in the UI, put from the UI and the SDK, tail, split, consumers, server page, delete", { timeout: 120000 }, async () => {
    const name = "console-orders";
    await page.goto(`${server.endpoint}/`);
    assert.equal(page.url(), `${server.endpoint}/_riffle/console/`);
    await page.waitForSelector("#mode:text('read-write')");
    await page.waitForSelector("text=No streams yet.");

    // Create through the form.
    await page.keyboard.press("n");
    await page.fill("form.create input[name=StreamName]", name);
    await page.fill("form.create input[name=ShardCount]", "2");
    await page.click("form.create button[type=submit]");
    await page.waitForSelector(`tr[data-stream="${name}"] .status-ACTIVE`);
    const row = await page.$eval(`tr[data-stream="${name}"]`, (tr) => [...tr.children].slice(0, 5).map((td) => td.textContent));
    assert.deepEqual(row, [name, "ACTIVE", "2", "PROVISIONED", "24 h"]);
    const summary = (await sdk.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary;
    assert.deepEqual([summary.OpenShardCount, summary.StreamModeDetails.StreamMode], [2, "PROVISIONED"]);
    await sdk.send(new CreateStreamCommand({ StreamName: "console-clicks", StreamModeDetails: { StreamMode: "ON_DEMAND" } }));
    await page.waitForSelector('tr[data-stream="console-clicks"] .status-ACTIVE');
    await shoot(page, "streams");

    // The stream's page: two shards, each half the key space.
    await page.click(`a[href="#/streams/${name}"]`);
    await page.waitForSelector("svg.shardmap g.shard >> nth=1");
    const ranges = () =>
      page.$$eval("svg.shardmap g.shard", (gs) =>
        gs.map((g) => ({
          id: g.dataset.shardId,
          state: g.classList.contains("open") ? "open" : "closed",
          start: g.dataset.start,
          end: g.dataset.end,
          parent: g.dataset.parent ?? null,
          x: Number(g.querySelector("rect").getAttribute("x")),
          y: Number(g.querySelector("rect").getAttribute("y")),
          width: Number(g.querySelector("rect").getAttribute("width")),
        })),
      );
    const before = await ranges();
    assert.deepEqual(
      before.map(({ id, state, start, end, x, width }) => ({ id, state, start, end, x, width })),
      [
        { id: "shardId-000000000000", state: "open", start: "0", end: HALF, x: 1, width: 498 },
        { id: "shardId-000000000001", state: "open", start: (2n ** 127n).toString(), end: (2n ** 128n - 1n).toString(), x: 501, width: 498 },
      ],
    );

    // Tail from the trim horizon, then put from the UI and from the SDK.
    await page.selectOption("select[name=iteratorType]", "TRIM_HORIZON");
    await page.click("text=Start tail");
    assert.equal(await page.getAttribute("[data-transport]", "data-transport"), "events");
    await page.fill("input[name=PartitionKey]", "pk-ui");
    await page.fill("textarea[name=Data]", "hello from the console");
    await page.click("text=Put record");
    const putText = await (await page.waitForSelector("form.put p:has-text('Put in')")).textContent();
    const [, uiShard, uiSeq] = putText.match(/^Put in (shardId-\d+) at sequence number (\d+)\.$/);
    const sdkPut = await sdk.send(
      new PutRecordCommand({ StreamName: name, PartitionKey: "pk-sdk", Data: new TextEncoder().encode("from the SDK ✓") }),
    );
    const json = await sdk.send(
      new PutRecordCommand({ StreamName: name, PartitionKey: "pk-json", ExplicitHashKey: "5", Data: new TextEncoder().encode('{"n":1,"ok":true}') }),
    );
    const sortRows = (rows) => rows.sort((a, b) => a.key.localeCompare(b.key));
    let rows = await until(async () => {
      const r = await tailRows(page);
      return r.length === 3 && r;
    }, "three records in the tail");
    assert.deepEqual(sortRows(rows), [
      { shard: "shardId-000000000000", seq: json.SequenceNumber, key: "pk-json", data: '{"n":1,"ok":true}' },
      { shard: sdkPut.ShardId, seq: sdkPut.SequenceNumber, key: "pk-sdk", data: "from the SDK ✓" },
      { shard: uiShard, seq: uiSeq, key: "pk-ui", data: "hello from the console" },
    ]);
    await page.selectOption("select[name=decode]", "json");
    rows = sortRows(await tailRows(page));
    assert.deepEqual(rows.map((r) => r.data), ['{\n  "n": 1,\n  "ok": true\n}', "(not JSON) from the SDK ✓", "(not JSON) hello from the console"]);
    await page.selectOption("select[name=decode]", "hex");
    rows = sortRows(await tailRows(page));
    assert.equal(rows[1].data, "66 72 6f 6d 20 74 68 65 20 53 44 4b 20 e2 9c 93");
    await page.selectOption("select[name=decode]", "text");

    // The throughput chart counts what the tail read.
    await page.waitForSelector("[aria-labelledby=h-throughput] .chart .uplot");
    const legend = await page.$$eval("[aria-labelledby=h-throughput] .chart .u-legend .u-series .u-label", (ls) => ls.map((l) => l.textContent));
    assert.deepEqual(legend.filter(Boolean), ["shardId-000000000000", "shardId-000000000001"]);

    // Split shard 0 with the SDK: the map draws the parent closed and two
    // children a row below, each half its range, with lines to them.
    const quarter = (2n ** 126n).toString();
    await sdk.send(new SplitShardCommand({ StreamName: name, ShardToSplit: "shardId-000000000000", NewStartingHashKey: quarter }));
    await page.waitForSelector("svg.shardmap g.shard >> nth=3", { timeout: 15000 });
    const after = await ranges();
    const parent = after.find((s) => s.id === "shardId-000000000000");
    assert.deepEqual(
      after.map(({ id, state, start, end, parent }) => ({ id, state, start, end, parent })),
      [
        { id: "shardId-000000000000", state: "closed", start: "0", end: HALF, parent: null },
        { id: "shardId-000000000001", state: "open", start: (2n ** 127n).toString(), end: (2n ** 128n - 1n).toString(), parent: null },
        { id: "shardId-000000000002", state: "open", start: "0", end: (2n ** 126n - 1n).toString(), parent: "shardId-000000000000" },
        { id: "shardId-000000000003", state: "open", start: quarter, end: HALF, parent: "shardId-000000000000" },
      ],
    );
    for (const child of after.filter((s) => s.parent)) {
      assert.equal(child.y, parent.y + 64, child.id);
      assert.equal(child.width, 248, child.id);
    }
    assert.deepEqual(
      await page.$$eval("svg.shardmap line.lineage", (ls) => ls.map((l) => [l.dataset.parent, l.dataset.child])),
      [
        ["shardId-000000000000", "shardId-000000000002"],
        ["shardId-000000000000", "shardId-000000000003"],
      ],
    );
    assert.deepEqual(
      await page.$$eval("table.shards tbody tr", (trs) => trs.map((tr) => [...tr.children].slice(0, 6).map((td) => td.textContent))),
      [
        ["shardId-000000000000", "closed", "", "0", HALF, "50.0%"],
        ["shardId-000000000001", "open", "", (2n ** 127n).toString(), (2n ** 128n - 1n).toString(), "50.0%"],
        ["shardId-000000000002", "open", "shardId-000000000000", "0", (2n ** 126n - 1n).toString(), "25.0%"],
        ["shardId-000000000003", "open", "shardId-000000000000", quarter, HALF, "25.0%"],
      ],
    );

    // The tail follows the closed shard into its child.
    const child = await sdk.send(
      new PutRecordCommand({ StreamName: name, PartitionKey: "pk-child", ExplicitHashKey: "7", Data: new TextEncoder().encode("after the split") }),
    );
    assert.equal(child.ShardId, "shardId-000000000002");
    const childRow = await until(async () => (await tailRows(page)).find((r) => r.key === "pk-child"), "the child's record in the tail");
    assert.deepEqual(childRow, { shard: "shardId-000000000002", seq: child.SequenceNumber, key: "pk-child", data: "after the split" });

    // Consumers: register in the UI.
    await page.fill("input[name=ConsumerName]", "console-reader");
    await page.click("text=Register consumer");
    await page.waitForSelector('tr[data-consumer="console-reader"] .status-ACTIVE');
    await page.click("text=Stop");
    await shoot(page, "stream", true);

    // The server page.
    await page.keyboard.press("g");
    await page.keyboard.press("m");
    await page.waitForSelector("[data-fact=version]");
    const facts = await page.$$eval("[data-fact]", (dds) => Object.fromEntries(dds.map((d) => [d.dataset.fact, d.textContent])));
    assert.deepEqual(
      { version: facts.version, storage: facts.storage, durability: facts.durability, dataDirectory: facts.dataDirectory, console: facts.console, listen: facts.listen },
      { version: VERSION, storage: "disk", durability: "fsync", dataDirectory: server.dataDir, console: "read-write", listen: `127.0.0.1:${server.port}` },
    );
    assert.match(facts.diskBytes, /^\d+(\.\d)? (B|KiB|MiB)$/);
    const putRow = await page.waitForSelector('tr[data-operation="PutRecord"]');
    assert.deepEqual(await putRow.$$eval("td", (tds) => tds.slice(0, 3).map((t) => t.textContent)), ["PutRecord", "4", "0"]);
    await page.waitForFunction(() => document.querySelectorAll(".chart .uplot").length === 1);
    // Traffic for the chart: PutRecord calls for six seconds.
    const end = Date.now() + 6000;
    let n = 0;
    while (Date.now() < end) {
      await sdk.send(new PutRecordCommand({ StreamName: "console-clicks", PartitionKey: `k${n++}`, Data: new Uint8Array([n & 255]) }));
      await sleep(n % 40 === 0 ? 300 : 5);
    }
    await sleep(2100);
    await shoot(page, "server", true);

    // Delete in the UI, after typing the name.
    await page.keyboard.press("g");
    await page.keyboard.press("s");
    await page.click(`button[aria-label="Delete ${name}"]`);
    const confirm = page.locator("dialog.confirm button.danger");
    assert.equal(await confirm.isDisabled(), true);
    await page.fill("dialog.confirm input[name=confirm]", name);
    await confirm.click();
    await page.waitForSelector(`tr[data-stream="${name}"]`, { state: "detached" });
    const e = await until(
      () => catchError(() => sdk.send(new DescribeStreamSummaryCommand({ StreamName: name }))).catch(() => null),
      "the stream to be gone",
    );
    assert.equal(e.name, "ResourceNotFoundException");
  });

  test("a page on another origin cannot make the console's calls", { timeout: 60000 }, async () => {
    const other = createServer((_, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>elsewhere</title>");
    });
    await new Promise((ok) => other.listen(0, "127.0.0.1", ok));
    const origin = `http://127.0.0.1:${other.address().port}`;
    try {
      const p = await browser.newPage();
      await p.goto(`${origin}/`);
      const got = await p.evaluate(async (endpoint) => {
        const r = await fetch(`${endpoint}/`, {
          method: "POST",
          headers: {
            "content-type": "application/x-amz-json-1.1",
            "x-amz-target": "Kinesis_20131202.CreateStream",
            "x-riffle-console": "1",
          },
          body: JSON.stringify({ StreamName: "from-elsewhere", ShardCount: 1 }),
        });
        return { status: r.status, body: await r.text() };
      }, server.endpoint);
      await p.close();
      assert.deepEqual(got, {
        status: 400,
        body: JSON.stringify({
          __type: "AccessDeniedException",
          message: `Console requests are accepted only from the server's own origin (${server.endpoint}), not from ${origin}`,
        }),
      });
      const { StreamNames } = await sdk.send(new ListStreamsCommand({}));
      assert.deepEqual(StreamNames.filter((n) => n === "from-elsewhere"), []);
    } finally {
      other.close();
    }
  });
});

describe("the console, read-only", { skip }, () => {
  let server, sdk, browser;
  before(async () => {
    server = await Riffle.start({ args: ["--console", "read-only"] });
    sdk = server.client();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("shows streams and refuses a create with AWS's error; the stream does not exist", { timeout: 60000 }, async () => {
    await sdk.send(new CreateStreamCommand({ StreamName: "made-by-the-sdk", ShardCount: 1 }));
    const page = await browser.newPage({ viewport: { width: 1280, height: 700 } });
    await page.goto(`${server.endpoint}/`);
    await page.waitForSelector("#mode:text('read-only')");
    await page.waitForSelector('tr[data-stream="made-by-the-sdk"] .status-ACTIVE');
    await page.click("button[data-new]");
    await page.fill("form.create input[name=StreamName]", "refused");
    await page.click("form.create button[type=submit]");
    const err = await page.waitForSelector("form.create .error");
    assert.equal(
      await err.textContent(),
      "AccessDeniedException: The console is read-only on this server: CreateStream changes state (riffle serve --console read-write allows it)",
    );
    const { StreamNames } = await sdk.send(new ListStreamsCommand({}));
    assert.deepEqual(StreamNames, ["made-by-the-sdk"]);
  });
});

describe("the console on a server that checks signatures", { skip }, () => {
  let server, sdk, browser;
  before(async () => {
    server = await Riffle.start({ args: ["--credential-pairs", `${CREDENTIALS.accessKeyId}:${CREDENTIALS.secretAccessKey}`] });
    sdk = server.client();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("asks for an access key, refuses a wrong secret, and signs its calls", { timeout: 60000 }, async () => {
    await sdk.send(new CreateStreamCommand({ StreamName: "signed", ShardCount: 1 }));
    const page = await browser.newPage({ viewport: { width: 1280, height: 700 } });
    await page.goto(`${server.endpoint}/`);
    await page.waitForSelector("form.signin");
    await page.fill("input[name=accessKeyId]", CREDENTIALS.accessKeyId);
    await page.fill("input[name=secretAccessKey]", "not-the-secret");
    await page.click("form.signin button[type=submit]");
    const err = await page.waitForSelector("form.signin .error");
    assert.match(await err.textContent(), /^InvalidSignatureException: The request signature we calculated does not match the signature you provided\./);
    await page.fill("input[name=accessKeyId]", CREDENTIALS.accessKeyId);
    await page.fill("input[name=secretAccessKey]", CREDENTIALS.secretAccessKey);
    await page.click("form.signin button[type=submit]");
    await page.waitForSelector('tr[data-stream="signed"] .status-ACTIVE');
    await page.click('a[href="#/streams/signed"]');
    await page.fill("textarea[name=Data]", "signed in the browser");
    await page.click("text=Put record");
    await page.waitForSelector("form.put p:has-text('Put in shardId-000000000000')");
  });
});

describe("the console adds nothing to the API path", () => {
  test("a PutRecords answer has the same headers and body with the console on and off", { timeout: 60000 }, async () => {
    const answers = [];
    for (const args of [[], ["--console", "off"]]) {
      const server = await Riffle.start({ args });
      try {
        await server.client().send(new CreateStreamCommand({ StreamName: "s", ShardCount: 1 }));
        const r = await fetch(`${server.endpoint}/`, {
          method: "POST",
          headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "Kinesis_20131202.PutRecords" },
          body: JSON.stringify({ StreamName: "s", Records: [{ PartitionKey: "k", Data: "aGk=" }] }),
        });
        const headers = [...r.headers.entries()]
          .map(([k, v]) => [k, ["x-amzn-requestid", "x-amz-id-2", "date"].includes(k) ? "(varies)" : v])
          .sort();
        answers.push({ status: r.status, headers, body: (await r.text()).replace(/"SequenceNumber":"\d+"/, '"SequenceNumber":"N"') });
      } finally {
        await server.stop();
      }
    }
    assert.deepEqual(answers[0], answers[1]);
    assert.equal(answers[0].body, '{"FailedRecordCount":0,"Records":[{"SequenceNumber":"N","ShardId":"shardId-000000000000"}],"EncryptionType":"NONE"}');
  });
});
