// The console's Analytics pages in a real browser (Debian's Chromium driven
// by playwright-core): an application created in the UI, its input added
// with the schema DiscoverInputSchema proposes from records put with the
// SDK, SQL checked by Riffle's parser as it is typed, saved, started, and
// the rows of DESTINATION_SQL_STREAM watched live; read-only mode. Writes
// the screenshots docs/console/analytics-*.png.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

import { CreateStreamCommand, GetRecordsCommand, GetShardIteratorCommand, PutRecordCommand } from "@aws-sdk/client-kinesis";
import { CreateApplicationCommand, DescribeApplicationCommand, KinesisAnalyticsClient, StartApplicationCommand } from "@aws-sdk/client-kinesis-analytics";
import { NodeHttp2Handler } from "@smithy/node-http-handler";

import { ACCOUNT, CREDENTIALS, REGION, Riffle } from "./harness.mjs";
import { launch, shoot, skip, until } from "./console-harness.mjs";

const ROLE = `arn:aws:iam::${ACCOUNT}:role/riffle-analytics`;


function analyticsClient(server) {
  const c = new KinesisAnalyticsClient({
    endpoint: server.endpoint,
    region: REGION,
    credentials: CREDENTIALS,
    maxAttempts: 1,
    requestHandler: new NodeHttp2Handler({ requestTimeout: 10000, sessionTimeout: 10000 }),
  });
  server.clients.push(c);
  return c;
}

/**
 * For one describe block: a server started with `args`, its Data Streams
 * and Analytics clients, and a browser page (`height` tall), as `ctx`'s
 * members once `before` ran.
 */
function fixture(args = [], height = 800) {
  const ctx = {};
  before(async () => {
    ctx.server = await Riffle.start({ args });
    ctx.sdk = ctx.server.client();
    ctx.ka = analyticsClient(ctx.server);
    ctx.browser = await launch();
    ctx.page = await ctx.browser.newPage({ viewport: { width: 1280, height } });
  });
  after(async () => {
    await ctx.browser?.close();
    await ctx.server?.stop();
  });
  return ctx;
}

const put = (sdk, stream, doc) => sdk.send(new PutRecordCommand({ StreamName: stream, PartitionKey: "p", Data: new TextEncoder().encode(JSON.stringify(doc)) }));

/** The live view's table: its header and rows of cell texts. */
function liveTable(page) {
  return page.$eval("table.liverows", (t) => ({
    head: [...t.querySelectorAll("thead th")].map((th) => th.textContent),
    rows: [...t.querySelectorAll("tbody tr")].map((tr) => [...tr.children].map((td) => td.textContent)),
  }));
}

const BAD_SQL = [
  'CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker VARCHAR(4), price DOUBLE, doubled DOUBLE);',
  'CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"',
  'SELECT STREAM "ticker", "price", "price" * 2 FROM WHERE "price" > 10;',
].join("\n");
const GOOD_SQL = BAD_SQL.replace("FROM WHERE", 'FROM "SOURCE_SQL_STREAM_001" WHERE');

describe("the console's Analytics pages, read-write", { skip }, () => {
  const ctx = fixture([], 860);

  test("create, add an input with a discovered schema, edit SQL, save, start, watch rows, stop", { timeout: 120000 }, async () => {
    const { server, sdk, ka, page } = ctx;
    const app = "tickers";
    await sdk.send(new CreateStreamCommand({ StreamName: "ticks", ShardCount: 1 }));
    await sleep(200);
    for (const doc of [
      { ticker: "AMZN", price: 12.5 },
      { ticker: "MSFT", price: 8.25 },
      { ticker: "IBM", price: 20 },
    ]) {
      await put(sdk, "ticks", doc);
    }

    // The list, reached with g a; create with n.
    await page.goto(`${server.endpoint}/`);
    await page.waitForSelector("#mode:text('read-write')");
    await page.keyboard.press("g");
    await page.keyboard.press("a");
    await page.waitForSelector("text=No applications yet.");
    assert.equal(new URL(page.url()).hash, "#/analytics");
    await page.keyboard.press("n");
    await page.fill("form.create input[name=ApplicationName]", app);
    await page.fill("form.create input[name=ApplicationDescription]", "Prices over 10, doubled");
    await page.click("form.create button[type=submit]");
    await page.waitForSelector(`h1:text-is("${app}")`);
    assert.equal(new URL(page.url()).hash, `#/analytics/${app}`);
    await page.waitForSelector(".title .status-READY");
    assert.equal(await page.textContent(".title .version"), "version 1");

    // Add the input: the schema DiscoverInputSchema proposes from the three records.
    await page.click("button:text('Add input')");
    await page.waitForSelector("form.addinput select[name=source] option", { state: "attached" });
    assert.deepEqual(await page.$$eval("form.addinput select[name=source] option", (os) => os.map((o) => [o.textContent, o.value])), [
      ["ticks", `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/ticks`],
    ]);
    await page.click("button:text('Discover schema')");
    await page.waitForSelector("form.addinput table.edit tr.col");
    const proposed = await page.$$eval("form.addinput table.edit tr.col", (trs) => trs.map((tr) => [...tr.querySelectorAll("input")].map((i) => i.value)));
    assert.deepEqual(proposed, [
      ["ticker", "VARCHAR(4)", "$.ticker"],
      ["price", "DOUBLE", "$.price"],
    ]);
    assert.equal(await page.textContent("form.addinput .proposed p"), "Discovered from 3 records: JSON, rows at $, UTF-8.");
    const sample = await page.$$eval("form.addinput table[aria-label='Sample rows'] tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    assert.deepEqual(sample, [
      ["AMZN", "12.5"],
      ["MSFT", "8.25"],
      ["IBM", "20"],
    ]);
    await page.click("form.addinput button[type=submit]");
    await page.waitForSelector('.input[data-input="1.1"]');
    const columns = await page.$$eval('.input[data-input="1.1"] table.columns tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    assert.deepEqual(columns, [
      ["ticker", "VARCHAR(4)", "$.ticker"],
      ["price", "DOUBLE", "$.price"],
    ]);
    const { ApplicationDetail: afterInput } = await ka.send(new DescribeApplicationCommand({ ApplicationName: app }));
    assert.equal(afterInput.ApplicationVersionId, 2);
    assert.deepEqual(afterInput.InputDescriptions[0].InAppStreamNames, ["SOURCE_SQL_STREAM_001"]);
    assert.deepEqual(afterInput.InputDescriptions[0].KinesisStreamsInputDescription, { ResourceARN: `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/ticks`, RoleARN: ROLE });

    // SQL with an error on line 3: the parser's message at its line and column, and Ctrl+Enter does not save it.
    await page.fill("textarea.sql", BAD_SQL);
    const err = await page.waitForSelector(".sqlstatus .sqlerror");
    assert.equal(await err.textContent(), "Line 3, column 51: Expected: table name, found: WHERE (parser)");
    assert.deepEqual([await err.getAttribute("data-line"), await err.getAttribute("data-column")], ["3", "51"]);
    assert.equal(await page.textContent(".sqled .gutter span.bad"), "3\n");
    await page.focus("textarea.sql");
    await page.keyboard.press("Control+Enter");
    await sleep(300);
    assert.equal((await ka.send(new DescribeApplicationCommand({ ApplicationName: app }))).ApplicationDetail.ApplicationVersionId, 2);

    // Fixed: it parses and plans against the input's schema; Ctrl+Enter saves through UpdateApplication.
    await page.fill("textarea.sql", GOOD_SQL);
    await page.waitForSelector(".sqlstatus .sqlok");
    assert.equal(await page.textContent(".sqlstatus .sqlok"), "Parses and plans. In-application streams: error_stream, SOURCE_SQL_STREAM_001, DESTINATION_SQL_STREAM");
    assert.equal(await page.$(".sqled .gutter span.bad"), null);
    await page.focus("textarea.sql");
    await page.keyboard.press("Control+Enter");
    await page.waitForSelector(".sqlstatus .saved:text('Saved as version 3.')");
    const { ApplicationDetail: saved } = await ka.send(new DescribeApplicationCommand({ ApplicationName: app }));
    assert.equal(saved.ApplicationCode, GOOD_SQL);
    assert.equal(saved.ApplicationVersionId, 3);

    // An output: DESTINATION_SQL_STREAM as JSON to the stream "doubled".
    await sdk.send(new CreateStreamCommand({ StreamName: "doubled", ShardCount: 1 }));
    await page.click("button:text-is('Add output')");
    await page.waitForSelector("form.addoutput select[name=destination] option >> nth=1", { state: "attached" });
    await page.selectOption("form.addoutput select[name=destination]", `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/doubled`);
    await page.click("form.addoutput button[type=submit]");
    await page.waitForSelector('tr[data-output="1.1"]');
    assert.deepEqual(await page.$eval('tr[data-output="1.1"]', (tr) => [...tr.children].map((td) => td.textContent)), [
      "1.1",
      "DESTINATION_SQL_STREAM",
      `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/doubled`,
      "JSON",
    ]);
    await page.waitForSelector(".title .version:text('version 4')");

    // The live view offers the plan's streams and watches DESTINATION_SQL_STREAM.
    await until(
      async () => (await page.$$eval("select[name=inAppStream] option", (os) => os.map((o) => o.value))).join() === "error_stream,SOURCE_SQL_STREAM_001,DESTINATION_SQL_STREAM",
      "the plan's streams",
    );
    assert.equal(await page.$eval("select[name=inAppStream]", (s) => s.value), "DESTINATION_SQL_STREAM");

    // Start from the trim horizon: the three records already there, then two put now.
    await page.selectOption("select[name=InputStartingPosition]", "TRIM_HORIZON");
    await page.click("button:text-is('Start')");
    await page.waitForSelector(".title .status-RUNNING", { timeout: 20000 });
    await put(sdk, "ticks", { ticker: "AAPL", price: 30.5 });
    await put(sdk, "ticks", { ticker: "ORCL", price: 5 });
    const live = await until(async () => {
      const t = await liveTable(page);
      return t.rows.length >= 3 && t;
    }, "three rows in the live view");
    assert.deepEqual(live.head, ["ROWTIME", "TICKER", "PRICE", "DOUBLED"]);
    assert.deepEqual(
      live.rows.map((r) => r.slice(1)),
      [
        ["AMZN", "12.5", "25.0"],
        ["IBM", "20.0", "40.0"],
        ["AAPL", "30.5", "61.0"],
      ],
    );
    for (const r of live.rows) assert.match(r[0], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,3})?$/);
    assert.equal(await page.textContent(".livecount"), "3 rows");
    // The output stream got the same rows.
    const { ShardIterator } = await sdk.send(new GetShardIteratorCommand({ StreamName: "doubled", ShardId: "shardId-000000000000", ShardIteratorType: "TRIM_HORIZON" }));
    const delivered = await until(async () => {
      const { Records } = await sdk.send(new GetRecordsCommand({ ShardIterator }));
      return Records.length >= 3 && Records.map((r) => new TextDecoder().decode(r.Data));
    }, "three records in the output stream");
    assert.deepEqual(delivered, [
      '{"TICKER":"AMZN","PRICE":12.5,"DOUBLED":25.0}',
      '{"TICKER":"IBM","PRICE":20.0,"DOUBLED":40.0}',
      '{"TICKER":"AAPL","PRICE":30.5,"DOUBLED":61.0}',
    ]);
    await shoot(page, "analytics-app", true);

    // The list: status, version, inputs and outputs.
    await page.click("a:text-is('Analytics')");
    await page.waitForSelector(`tr[data-application="${app}"] .status-RUNNING`);
    const row = await page.$eval(`tr[data-application="${app}"]`, (tr) => [...tr.children].slice(0, 4).map((td) => td.textContent));
    assert.deepEqual(row, [app, "RUNNING", "4", "in: ticks → SOURCE_SQL_STREAM · out: DESTINATION_SQL_STREAM → doubled"]);
    await ka.send(new CreateApplicationCommand({ ApplicationName: "sessions", ApplicationDescription: "made with the SDK" }));
    await page.waitForSelector('tr[data-application="sessions"] .status-READY');
    await page.fill("input[data-filter]", "tick");
    assert.deepEqual(await page.$$eval("tr[data-application]", (trs) => trs.map((tr) => tr.dataset.application)), [app]);
    await page.fill("input[data-filter]", "");
    await page.evaluate(() => document.activeElement.blur());
    await shoot(page, "analytics-list");

    // Stop from the application's page.
    await page.click(`a[href="#/analytics/${app}"]`);
    await page.waitForSelector(".title .status-RUNNING");
    await page.click("button:text-is('Stop')");
    await page.waitForSelector(".title .status-READY", { timeout: 20000 });
    assert.equal((await ka.send(new DescribeApplicationCommand({ ApplicationName: app }))).ApplicationDetail.ApplicationStatus, "READY");

    // Delete from the list after typing the name.
    await page.click("a:text-is('Analytics')");
    await page.click('button[aria-label="Delete sessions"]');
    await page.fill("dialog.confirm input[name=confirm]", "sessions");
    await page.click("dialog.confirm button.danger");
    await until(async () => (await page.$$eval("tr[data-application]", (trs) => trs.map((tr) => tr.dataset.application))).join() === app, "sessions deleted");
  });
});

describe("the console's Analytics pages, read-only", { skip }, () => {
  const ctx = fixture(["--console", "read-only"]);

  test("shows applications and checks SQL, offers no change, and the server refuses one", { timeout: 60000 }, async () => {
    const { server, ka, page } = ctx;
    await ka.send(new CreateApplicationCommand({ ApplicationName: "watched", ApplicationCode: GOOD_SQL }));
    await page.goto(`${server.endpoint}/_riffle/console/#/analytics`);
    await page.waitForSelector("#mode:text('read-only')");
    await page.waitForSelector('tr[data-application="watched"] .status-READY');
    assert.equal(await page.$("button[data-new]"), null);
    assert.equal(await page.$('button[aria-label="Delete watched"]'), null);

    await page.click('a[href="#/analytics/watched"]');
    await page.waitForSelector(".sqlstatus .sqlplan");
    // No input yet: it parses, and the planner says why it cannot run.
    assert.equal(
      await page.textContent(".sqlstatus .sqlplan"),
      "Parses; cannot run as the application is configured: Pump STREAM_PUMP: Object 'SOURCE_SQL_STREAM_001' not found",
    );
    assert.equal(await page.$eval("textarea.sql", (t) => t.readOnly), true);
    for (const label of ["Start", "Stop", "Save", "Delete", "Add input", "Add output"]) {
      assert.equal(await page.$(`button:text-is('${label}')`), null, label);
    }
    const refused = await page.evaluate(async () => {
      const { call } = await import("./api.js");
      try {
        await call("StartApplication", { ApplicationName: "watched", InputConfigurations: [] }, "KinesisAnalytics_20150814");
        return null;
      } catch (e) {
        return e.message;
      }
    });
    assert.equal(refused, "AccessDeniedException: The console is read-only on this server: StartApplication changes state (riffle serve --console read-write allows it)");
    assert.equal((await ka.send(new DescribeApplicationCommand({ ApplicationName: "watched" }))).ApplicationDetail.ApplicationStatus, "READY");
  });
});

describe("the console's Analytics pages on a server that checks signatures", { skip }, () => {
  const ctx = fixture(["--credential-pairs", `${CREDENTIALS.accessKeyId}:${CREDENTIALS.secretAccessKey}`]);

  test("signs the code checks and the live rows; unsigned, they are refused", { timeout: 60000 }, async () => {
    const { server, sdk, ka, page } = ctx;
    await sdk.send(new CreateStreamCommand({ StreamName: "ticks", ShardCount: 1 }));
    await ka.send(
      new CreateApplicationCommand({
        ApplicationName: "signed",
        ApplicationCode: GOOD_SQL,
        Inputs: [
          {
            NamePrefix: "SOURCE_SQL_STREAM",
            KinesisStreamsInput: { ResourceARN: `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/ticks`, RoleARN: ROLE },
            InputSchema: {
              RecordFormat: { RecordFormatType: "JSON", MappingParameters: { JSONMappingParameters: { RecordRowPath: "$" } } },
              RecordColumns: [
                { Name: "ticker", Mapping: "$.ticker", SqlType: "VARCHAR(4)" },
                { Name: "price", Mapping: "$.price", SqlType: "DOUBLE" },
              ],
            },
          },
        ],
      }),
    );
    await page.goto(`${server.endpoint}/_riffle/console/#/analytics/signed`);
    await page.fill("input[name=accessKeyId]", CREDENTIALS.accessKeyId);
    await page.fill("input[name=secretAccessKey]", CREDENTIALS.secretAccessKey);
    await page.click("form.signin button[type=submit]");
    await page.waitForSelector(".sqlstatus .sqlok");
    await until(async () => (await page.$eval("select[name=inAppStream]", (s) => s.value)) === "DESTINATION_SQL_STREAM", "the live view");
    await ka.send(
      new StartApplicationCommand({ ApplicationName: "signed", InputConfigurations: [{ Id: "1.1", InputStartingPositionConfiguration: { InputStartingPosition: "TRIM_HORIZON" } }] }),
    );
    await put(sdk, "ticks", { ticker: "NFLX", price: 100.25 });
    const live = await until(async () => {
      const t = await liveTable(page);
      return t.rows.length >= 1 && t;
    }, "a row in the live view");
    assert.deepEqual(live.rows.map((r) => r.slice(1)), [["NFLX", "100.25", "200.5"]]);
    const unsigned = await page.evaluate(async () =>
      Promise.all(
        ["validate?sql=x", "rows?application=signed&stream=DESTINATION_SQL_STREAM"].map(async (p) => {
          const r = await fetch(`/_riffle/console/api/analytics/${p}`, { headers: { "x-riffle-console": "1" } });
          return [r.status, (await r.json()).__type];
        }),
      ),
    );
    assert.deepEqual(unsigned, [
      [403, "MissingAuthenticationTokenException"],
      [403, "MissingAuthenticationTokenException"],
    ]);
  });
});
