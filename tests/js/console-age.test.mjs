// The stream page's server-side charts in a real browser (Debian's
// Chromium driven by playwright-core): a JS SDK consumer reads an hour
// behind the tip, and the console's endpoint and iterator age chart carry
// the exact MillisBehindLatest its GetRecords response did, per shard;
// the throughput chart shows SDK writes without the live tail; catching
// up brings the age back to 0.
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { CreateStreamCommand, DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, PutRecordCommand, PutRecordsCommand } from "@aws-sdk/client-kinesis";

import { skip, pageFixture, until } from "./console-harness.mjs";

const HOUR_MS = 3_600_000;
const SHARDS = ["shardId-000000000000", "shardId-000000000001"];
const enc = new TextEncoder();

describe("the stream page's iterator age", { skip }, () => {
  const f = pageFixture();
  let server, sdk, page;
  before(() => ({ server, sdk, page } = f));

  /** The endpoint's document for `name`, fetched by the page: [status, body]. */
  const endpoint = (name) =>
    page.evaluate(async (n) => {
      const r = await fetch(`/_riffle/console/api/kinesis/${encodeURIComponent(n)}`, { headers: { "x-riffle-console": "1" } });
      return [r.status, await r.json()];
    }, name);

  /** The table the page shows next to the charts: {shard: [records/s, ms behind]}. */
  const table = () => page.$$eval("[aria-labelledby=h-age] table tr[data-shard]", (trs) => Object.fromEntries(trs.map((tr) => [tr.dataset.shard, [1, 2].map((i) => Number(tr.children[i].textContent))])));
  const shown = async () => Object.fromEntries(Object.entries(await table()).map(([k, v]) => [k, v[1]]));

  const iterator = async (name, ShardId) =>
    (await sdk.send(new GetShardIteratorCommand({ StreamName: name, ShardId, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;

  test("a consumer an hour behind: endpoint, table and chart per shard, then caught up", { timeout: 60000 }, async () => {
    const name = "age-orders";
    await page.goto(`${server.endpoint}/`);
    await sdk.send(new CreateStreamCommand({ StreamName: name, ShardCount: 2 }));
    await until(async () => (await sdk.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary.StreamStatus === "ACTIVE", "the stream active");
    for (const i of [0, 1, 2]) {
      await sdk.send(new PutRecordCommand({ StreamName: name, PartitionKey: "k", ExplicitHashKey: "0", Data: enc.encode(`old-${i}`) }));
    }
    await server.advanceClock(HOUR_MS);
    await sdk.send(new PutRecordCommand({ StreamName: name, PartitionKey: "k", ExplicitHashKey: "0", Data: enc.encode("new") }));

    const first = await sdk.send(new GetRecordsCommand({ ShardIterator: await iterator(name, SHARDS[0]), Limit: 2 }));
    assert.deepEqual(first.Records.map((r) => new TextDecoder().decode(r.Data)), ["old-0", "old-1"]);
    const behind = first.MillisBehindLatest;
    assert.ok(behind >= HOUR_MS && behind < HOUR_MS + 30000, `MillisBehindLatest ${behind}`);
    const empty = await sdk.send(new GetRecordsCommand({ ShardIterator: await iterator(name, SHARDS[1]), Limit: 2 }));
    assert.deepEqual([empty.Records, empty.MillisBehindLatest], [[], 0]);

    // The endpoint: the exact ages, the stream's counters.
    const [status, doc] = await endpoint(name);
    assert.equal(status, 200);
    const { incomingRecordsPerSecond, outgoingRecordsPerSecond, ...rest } = doc;
    assert.deepEqual(rest, {
      streamName: name,
      incomingRecords: 4,
      incomingBytes: 4 * 1 + 5 * 3 + 3,
      outgoingRecords: 2,
      outgoingBytes: 10,
      iteratorAgeMilliseconds: behind,
      shards: [
        { shardId: SHARDS[0], open: true, incomingRecords: 4, incomingBytes: 22, outgoingRecords: 2, outgoingBytes: 10, iteratorAgeMilliseconds: behind },
        { shardId: SHARDS[1], open: true, incomingRecords: 0, incomingBytes: 0, outgoingRecords: 0, outgoingBytes: 0, iteratorAgeMilliseconds: 0 },
      ],
    });
    assert.equal(typeof incomingRecordsPerSecond, "number");
    assert.equal(typeof outgoingRecordsPerSecond, "number");

    // The page: both charts have one series per shard, fed the server's values.
    await page.goto(`${server.endpoint}/_riffle/console/#/streams/${name}`);
    for (const section of ["h-throughput", "h-age"]) {
      await page.waitForSelector(`[aria-labelledby=${section}] .chart .uplot`);
      const legend = await page.$$eval(`[aria-labelledby=${section}] .chart .u-legend .u-series .u-label`, (ls) => ls.map((l) => l.textContent));
      assert.deepEqual(legend.filter(Boolean), SHARDS);
    }
    await until(async () => Object.keys(await shown()).length === 2, "the age table");
    assert.deepEqual(await shown(), { [SHARDS[0]]: behind, [SHARDS[1]]: 0 });
    assert.equal(await page.textContent("[aria-labelledby=h-age] .age-now"), `Furthest behind now: 1.0 h (${SHARDS[0]})`);
    // The chart's points grow with each poll.
    const points = () => page.$$eval(".chart", (cs) => cs.map((c) => Number(c.dataset.points)));
    await until(async () => (await points()).every((n) => n >= 2), "two polls on both charts");

    // Throughput is the server's count, without the live tail: a burst of
    // writes to the first shard shows there, none on the second.
    await sdk.send(new PutRecordsCommand({ StreamName: name, Records: Array.from({ length: 50 }, (_, i) => ({ PartitionKey: "k", ExplicitHashKey: "0", Data: enc.encode(`burst-${i}`) })) }));
    const burst = await until(async () => {
      const t = await table();
      return t[SHARDS[0]][0] > 0 && t;
    }, "the burst in the throughput");
    assert.equal(burst[SHARDS[1]][0], 0);
    assert.equal((await endpoint(name))[1].shards[0].incomingRecords, 54);

    // Catching up: the latest read is at the tip, and the page follows.
    const rest2 = await sdk.send(new GetRecordsCommand({ ShardIterator: first.NextShardIterator, Limit: 100 }));
    assert.deepEqual([rest2.Records.length, rest2.MillisBehindLatest], [52, 0]);
    await until(async () => (await shown())[SHARDS[0]] === 0, "the age back to 0");
    assert.equal(await page.textContent("[aria-labelledby=h-age] .age-now"), "Every reader is at the tip (or none read in the last minute).");
    assert.equal((await endpoint(name))[1].iteratorAgeMilliseconds, 0);
  });

  test("a stream that does not exist: Data Streams' ResourceNotFoundException", async () => {
    await page.goto(`${server.endpoint}/`);
    const [status, body] = await endpoint("no-such-stream");
    assert.deepEqual([status, body], [400, { __type: "ResourceNotFoundException", message: "Stream no-such-stream under account 000000000000 not found." }]);
  });
});
