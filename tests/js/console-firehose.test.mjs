// The console's Firehose pages in a real browser (Debian's Chromium driven
// by playwright-core): a delivery stream created through the form into a
// bucket of the embedded S3, records put from the page and the SDK, the
// buffer filling, the object appearing and downloaded through its link
// byte for byte; a delivery failure; read-only mode; a server that checks
// signatures (presigned links). Writes docs/console/firehose-*.png.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import {
  CreateDeliveryStreamCommand,
  DescribeDeliveryStreamCommand,
  FirehoseClient,
  ListDeliveryStreamsCommand,
  PutRecordBatchCommand,
  PutRecordCommand,
} from "@aws-sdk/client-firehose";
import { CreateStreamCommand } from "@aws-sdk/client-kinesis";
import { CreateBucketCommand, DeleteBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";

import { ACCOUNT, CREDENTIALS, REGION, Riffle } from "./harness.mjs";
import { CONSOLE, skip, launch, until, shoot } from "./console-harness.mjs";

const ROLE = `arn:aws:iam::${ACCOUNT}:role/firehose-delivery`;

function clients(server) {
  const fh = new FirehoseClient({ endpoint: server.endpoint, region: REGION, credentials: CREDENTIALS, maxAttempts: 1 });
  const s3 = new S3Client({ endpoint: server.endpoint, region: REGION, credentials: CREDENTIALS, forcePathStyle: true, maxAttempts: 1 });
  server.clients.push(fh, s3);
  return { fh, s3 };
}

async function objectBytes(s3, Bucket, Key) {
  const out = await s3.send(new GetObjectCommand({ Bucket, Key }));
  return Buffer.from(await out.Body.transformToByteArray());
}

/**
 * A server started with `args` for the enclosing describe, its SDK clients
 * and a browser: fields of the returned object once `before` has run.
 */
function fixture(args = []) {
  const f = {};
  before(async () => {
    f.server = await Riffle.start({ args });
    Object.assign(f, clients(f.server));
    f.browser = await launch();
  });
  after(async () => {
    await f.browser?.close();
    await f.server?.stop();
  });
  return f;
}

/** Clicks a download link and returns the bytes the browser saved. */
async function download(page, selector) {
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click(selector)]);
  return readFileSync(await dl.path());
}

/** A delivery stream into `bucket` made with the SDK. */
function s3Stream(name, bucket, { interval = 0, prefix } = {}) {
  return new CreateDeliveryStreamCommand({
    DeliveryStreamName: name,
    DeliveryStreamType: "DirectPut",
    ExtendedS3DestinationConfiguration: {
      RoleARN: ROLE,
      BucketARN: `arn:aws:s3:::${bucket}`,
      Prefix: prefix,
      BufferingHints: { SizeInMBs: 1, IntervalInSeconds: interval },
    },
  });
}

test("the console's presigned URLs are AWS's documented example, signature for signature", async () => {
  const { presign, s3Path } = await import(join(CONSOLE, "sigv4.js"));
  const url = await presign({
    url: "https://examplebucket.s3.amazonaws.com/test.txt",
    credentials: { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" },
    region: "us-east-1",
    expires: 86400,
    date: new Date(Date.UTC(2013, 4, 24)),
  });
  assert.equal(
    url,
    "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
  );
  assert.equal(s3Path("b", "year=2026/a b+c~.gz"), "/b/year%3D2026/a%20b%2Bc~.gz");
});

describe("the Firehose pages, read-write", { skip }, () => {
  const f = fixture();
  let server, fh, s3, page;
  before(async () => {
    ({ server, fh, s3 } = f);
    page = await f.browser.newPage({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  });

  test("create in the form, put from the page and the SDK, buffer fill, an object appears and downloads byte for byte", { timeout: 120000 }, async () => {
    const name = "console-orders";
    const bucket = "console-deliveries";
    for (const b of ["archive", bucket]) await s3.send(new CreateBucketCommand({ Bucket: b }));

    await page.goto(`${server.endpoint}/`);
    await page.waitForSelector("#mode:text('read-write')");
    await page.keyboard.press("g");
    await page.keyboard.press("f");
    await page.waitForSelector("text=No delivery streams yet.");
    assert.equal(new URL(page.url()).hash, "#/firehose");

    // The form: the bucket chooser lists the embedded S3's buckets.
    await page.keyboard.press("n");
    await page.waitForSelector(`form.create select[name=Bucket] option[value="${bucket}"]`, { state: "attached" });
    assert.deepEqual(await page.$$eval("form.create select[name=Bucket] option", (os) => os.map((o) => o.value)), ["archive", bucket]);
    await page.fill("form.create input[name=DeliveryStreamName]", name);
    await page.selectOption("form.create select[name=Bucket]", bucket);
    await page.fill("form.create input[name=Prefix]", "orders/");
    await page.fill("form.create input[name=ErrorOutputPrefix]", "orders-errors/");
    await page.fill("form.create input[name=SizeInMBs]", "1");
    await page.fill("form.create input[name=IntervalInSeconds]", "60");
    await page.click("form.create button[type=submit]");
    await page.waitForSelector(`tr[data-delivery-stream="${name}"] .status-ACTIVE`);
    const row = await page.$eval(`tr[data-delivery-stream="${name}"]`, (tr) => [...tr.children].slice(0, 4).map((td) => td.textContent));
    assert.deepEqual(row, [name, "ACTIVE", "Direct PUT", `ExtendedS3 s3://${bucket}/orders/`]);
    const described = (await fh.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: name }))).DeliveryStreamDescription;
    const d = described.Destinations[0].ExtendedS3DestinationDescription;
    assert.deepEqual(
      [described.DeliveryStreamType, d.BucketARN, d.Prefix, d.ErrorOutputPrefix, d.BufferingHints, d.CompressionFormat, d.RoleARN],
      ["DirectPut", `arn:aws:s3:::${bucket}`, "orders/", "orders-errors/", { SizeInMBs: 1, IntervalInSeconds: 60 }, "UNCOMPRESSED", ROLE],
    );

    // Its page: the destination as described, nothing buffered yet.
    await page.click(`a[href="#/firehose/${name}"]`);
    await page.waitForSelector(".destination[data-destination-type=ExtendedS3] .badge.delivered");
    await page.waitForSelector("text=No partition buffer holds records.");
    await page.waitForSelector("table.objects[aria-label=Objects] >> text=No objects yet.");

    // Records from the page and the SDK wait in the buffer.
    const fromPage = "from the console ✓\n";
    await page.fill("textarea[name=Data]", fromPage);
    await page.click("text=Put record");
    await page.waitForSelector("form.put p:has-text('Accepted as record')");
    const binary = Buffer.from([0, 1, 2, 254, 255, 10]);
    const json = Buffer.from('{"order":42}\n');
    await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: name, Records: [{ Data: binary }, { Data: json }] }));
    const expected = Buffer.concat([Buffer.from(fromPage), binary, json]);
    const fill = await until(
      () =>
        page
          .$eval("table.fill tbody tr", (tr) => ({ partition: tr.dataset.partition, records: tr.dataset.records, bytes: tr.dataset.bytes, meter: tr.querySelector("[role=meter]")?.getAttribute("aria-valuemax") }))
          .then((f) => f.records === "3" && f),
      "three records in the buffer",
    );
    assert.deepEqual(fill, { partition: "(all)", records: "3", bytes: String(expected.length), meter: String(1024 * 1024) });
    assert.equal(await page.textContent('dd[data-counter="Incoming records"]'), "3");
    assert.deepEqual((await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).KeyCount, 0);

    // The interval passes on the server's clock: one object, listed with a link.
    await server.advanceClock(61000);
    const link = await page.waitForSelector('table.objects[aria-label=Objects] tr[data-key^="orders/"] a[download]', { timeout: 20000 });
    const key = await link.evaluate((a) => a.closest("tr").dataset.key);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    assert.deepEqual(listed.Contents.map((o) => o.Key), [key]);
    assert.match(key, /^orders\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/console-orders-1-/);
    assert.deepEqual(await objectBytes(s3, bucket, key), expected);
    const saved = await download(page, 'table.objects[aria-label=Objects] tr[data-key^="orders/"] a[download]');
    assert.deepEqual(saved, expected);
    await page.waitForSelector("text=No partition buffer holds records.");
    await until(async () => (await page.textContent('dd[data-counter="Objects delivered to S3"]')) === "1", "the delivery counted");
    assert.equal(await page.textContent('dd[data-counter="Records delivered to S3"]'), "3");
    assert.equal(await page.$(".error.failure"), null);

    // One more record, to show a buffer filling.
    await fh.send(new PutRecordCommand({ DeliveryStreamName: name, Record: { Data: Buffer.from('{"order":43}\n') } }));
    await page.waitForSelector('table.fill tbody tr[data-records="1"]');
    await shoot(page, "firehose-stream", true);
  });

  test("a delivery failure (the bucket deleted) shows FailureDescription on the page and in the list", { timeout: 60000 }, async () => {
    const name = "console-failing";
    await s3.send(new CreateBucketCommand({ Bucket: "doomed" }));
    await fh.send(s3Stream(name, "doomed"));
    await s3.send(new DeleteBucketCommand({ Bucket: "doomed" }));
    await fh.send(new PutRecordCommand({ DeliveryStreamName: name, Record: { Data: Buffer.from("lost?\n") } }));
    await page.goto(`${server.endpoint}/_riffle/console/#/firehose/${name}`);
    const box = await page.waitForSelector(".error.failure .details", { timeout: 20000 });
    const details = await box.textContent();
    assert.match(details, /^S3\.NoSuchBucket: /);
    const sdk = (await fh.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: name }))).DeliveryStreamDescription.FailureDescription;
    assert.equal(sdk.Type, "UNKNOWN_ERROR");
    assert.equal(sdk.Details.replace(/\(\d+ attempts? so far\)/, ""), details.replace(/\(\d+ attempts? so far\)/, ""));
    await until(async () => Number(await page.textContent('dd[data-counter="Failed delivery attempts"]')) >= 1, "a failed attempt counted");

    // A Data Streams source, linked from the list.
    await server.client().send(new CreateStreamCommand({ StreamName: "clicks", ShardCount: 1 }));
    await fh.send(
      new CreateDeliveryStreamCommand({
        DeliveryStreamName: "console-clicks",
        DeliveryStreamType: "KinesisStreamAsSource",
        KinesisStreamSourceConfiguration: { KinesisStreamARN: `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/clicks`, RoleARN: ROLE },
        ExtendedS3DestinationConfiguration: { RoleARN: ROLE, BucketARN: "arn:aws:s3:::archive", Prefix: "clicks/" },
      }),
    );
    await page.click('nav a[data-nav="firehose"]');
    await page.waitForSelector(`tr[data-delivery-stream="${name}"] .status-FAILING`);
    await page.waitForSelector('tr[data-delivery-stream="console-clicks"] a[data-source-stream="clicks"][href="#/streams/clicks"]');
    await page.waitForSelector('tr[data-delivery-stream="console-orders"] .status-ACTIVE');
    await shoot(page, "firehose-list");

    // The filter, from the keyboard.
    await page.keyboard.press("/");
    await page.keyboard.type("fail");
    await until(async () => (await page.$$eval("tr[data-delivery-stream]", (trs) => trs.map((t) => t.dataset.deliveryStream))).join() === name, "the filter");
  });
  test("dynamic partitions fill their own buffers; a destination type Riffle only stores says so", { timeout: 60000 }, async () => {
    const name = "console-partitioned";
    await fh.send(
      new CreateDeliveryStreamCommand({
        DeliveryStreamName: name,
        ExtendedS3DestinationConfiguration: {
          RoleARN: ROLE,
          BucketARN: "arn:aws:s3:::archive",
          Prefix: "customers/customer=!{partitionKeyFromQuery:customer}/",
          ErrorOutputPrefix: "customers-errors/!{firehose:error-output-type}/",
          BufferingHints: { SizeInMBs: 64, IntervalInSeconds: 900 },
          DynamicPartitioningConfiguration: { Enabled: true },
          ProcessingConfiguration: {
            Enabled: true,
            Processors: [
              {
                Type: "MetadataExtraction",
                Parameters: [
                  { ParameterName: "MetadataExtractionQuery", ParameterValue: "{customer: .customer}" },
                  { ParameterName: "JsonParsingEngine", ParameterValue: "JQ-1.6" },
                ],
              },
            ],
          },
        },
      }),
    );
    const records = ['{"customer":"ann","n":1}', '{"customer":"bob","n":2}', '{"customer":"ann","n":3}'];
    await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: name, Records: [...records, "not json"].map((r) => ({ Data: Buffer.from(r) })) }));
    await page.goto(`${server.endpoint}/_riffle/console/#/firehose/${name}`);
    const parts = await until(
      async () => {
        const rows = await page.$$eval("table.fill tbody tr[data-partition]", (trs) => trs.map((tr) => [tr.dataset.partition, tr.dataset.records, tr.dataset.bytes]));
        return rows.length === 2 && rows.sort();
      },
      "two partition buffers",
    );
    assert.deepEqual(parts, [
      ["partitionKeyFromQuery:customer=ann", "2", String(records[0].length + records[2].length)],
      ["partitionKeyFromQuery:customer=bob", "1", String(records[1].length)],
    ]);
    // The record the query could not read is in the error output, linked.
    const errorLink = 'table.objects[aria-label="Error objects"] tr[data-key^="customers-errors/"] a[download]';
    const errorKey = await (await page.waitForSelector(errorLink, { timeout: 20000 })).evaluate((a) => a.closest("tr").dataset.key);
    const errorBytes = await objectBytes(s3, "archive", errorKey);
    assert.match(errorBytes.toString(), /"rawData":"bm90IGpzb24="/);
    assert.deepEqual(await download(page, errorLink), errorBytes);
    await until(async () => (await page.textContent('dd[data-counter="Active partitions"]').catch(() => "")) === "2", "PartitionCount 2");
    assert.deepEqual(await page.$$eval(".destination dl.facts dt", (dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent]).filter(([k]) => ["Processing", "Dynamic partitioning"].includes(k))), [
      ["Processing", "MetadataExtraction"],
      ["Dynamic partitioning", "enabled"],
    ]);

    await fh.send(
      new CreateDeliveryStreamCommand({
        DeliveryStreamName: "console-splunk",
        SplunkDestinationConfiguration: {
          HECEndpoint: "https://splunk.example.com:8088",
          HECEndpointType: "Raw",
          HECToken: "00000000-0000-0000-0000-000000000000",
          S3Configuration: { RoleARN: ROLE, BucketARN: "arn:aws:s3:::archive" },
        },
      }),
    );
    await page.goto(`${server.endpoint}/_riffle/console/#/firehose/console-splunk`);
    const badge = await page.waitForSelector(".destination[data-destination-type=Splunk] .badge");
    assert.equal(await badge.textContent(), "stored, not delivered");
  });
});

describe("the Firehose pages, read-only", { skip }, () => {
  const f = fixture(["--console", "read-only"]);
  let server, fh, s3, browser;
  before(() => ({ server, fh, s3, browser } = f));

  test("shows delivery streams and objects, hides the create form, and the server refuses a create", { timeout: 60000 }, async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "ro-bucket" }));
    await fh.send(s3Stream("made-by-the-sdk", "ro-bucket"));
    const page = await browser.newPage({ viewport: { width: 1280, height: 700 } });
    await page.goto(`${server.endpoint}/_riffle/console/#/firehose`);
    await page.waitForSelector("#mode:text('read-only')");
    await page.waitForSelector('tr[data-delivery-stream="made-by-the-sdk"] .status-ACTIVE');
    assert.equal(await page.$("button[data-new]"), null);
    assert.equal(await page.$("tr[data-delivery-stream] button"), null);
    await page.click('a[href="#/firehose/made-by-the-sdk"]');
    await page.waitForSelector("table.objects[aria-label=Objects] >> text=No objects yet.");
    assert.equal(await page.$eval("form.put button[type=submit]", (b) => b.disabled), true);
    const refused = await page.evaluate(async () => {
      const { call } = await import("./api.js");
      try {
        await call("CreateDeliveryStream", { DeliveryStreamName: "refused", ExtendedS3DestinationConfiguration: { RoleARN: "arn:aws:iam::000000000000:role/r", BucketARN: "arn:aws:s3:::ro-bucket" } }, "Firehose_20150804");
        return "created";
      } catch (e) {
        return `${e.type}: ${e.awsMessage}`;
      }
    });
    assert.equal(refused, "AccessDeniedException: The console is read-only on this server: CreateDeliveryStream changes state (riffle serve --console read-write allows it)");
    const { DeliveryStreamNames } = await fh.send(new ListDeliveryStreamsCommand({}));
    assert.deepEqual(DeliveryStreamNames, ["made-by-the-sdk"]);
  });
});

describe("the Firehose pages on a server that checks signatures", { skip }, () => {
  const f = fixture(["--credential-pairs", `${CREDENTIALS.accessKeyId}:${CREDENTIALS.secretAccessKey}`]);
  let server, fh, s3, browser;
  before(() => ({ server, fh, s3, browser } = f));

  test("lists the bucket with signed calls and downloads through a presigned link the server verifies", { timeout: 60000 }, async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "signed-bucket" }));
    await fh.send(s3Stream("signed", "signed-bucket", { prefix: "data/" }));
    const page = await browser.newPage({ viewport: { width: 1280, height: 700 }, acceptDownloads: true });
    await page.goto(`${server.endpoint}/_riffle/console/#/firehose/signed`);
    await page.waitForSelector("form.signin");
    await page.fill("input[name=accessKeyId]", CREDENTIALS.accessKeyId);
    await page.fill("input[name=secretAccessKey]", CREDENTIALS.secretAccessKey);
    await page.click("form.signin button[type=submit]");
    await page.waitForSelector("text=No partition buffer holds records.");
    await page.fill("textarea[name=Data]", "signed in the browser");
    await page.click("text=Put record");
    const link = await page.waitForSelector('table.objects[aria-label=Objects] tr[data-key^="data/"] a[download]', { timeout: 20000 });
    const href = await link.getAttribute("href");
    const u = new URL(href);
    assert.deepEqual(
      [u.searchParams.get("X-Amz-Credential").split("/")[0], u.searchParams.get("X-Amz-SignedHeaders"), u.searchParams.get("X-Amz-Expires")],
      [CREDENTIALS.accessKeyId, "host", "3600"],
    );
    assert.deepEqual(await download(page, 'table.objects[aria-label=Objects] tr[data-key^="data/"] a[download]'), Buffer.from("signed in the browser"));
    // Keys with characters SigV4 encodes: the page's links still verify.
    const odd = "customer=ann/a b+c~(1)!*'é.txt";
    await s3.send(new PutObjectCommand({ Bucket: "signed-bucket", Key: odd, Body: "odd key" }));
    const oddUrl = await page.evaluate(async (key) => (await import("./s3.js")).downloadUrl("signed-bucket", key), odd);
    const oddGet = await fetch(oddUrl);
    assert.deepEqual([oddGet.status, await oddGet.text()], [200, "odd key"]);
    // The server checks the link: changed, it is refused.
    u.searchParams.set("X-Amz-Expires", "3601");
    const tampered = await fetch(u);
    assert.equal(tampered.status, 403);
    assert.match(await tampered.text(), /<Code>SignatureDoesNotMatch<\/Code>/);
  });
});
