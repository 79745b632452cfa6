// The stream page's charts of what the server counts, per shard: records
// written per second (CloudWatch's shard-level IncomingRecords) and
// iterator age (IteratorAgeMilliseconds: the MillisBehindLatest consumers
// saw), polled from the read-only endpoint /_riffle/console/api/kinesis/<name>.

import { getJSON } from "./api.js";
import { h, showError, timeChart } from "./ui.js";

const SPAN = 60; // seconds shown

/** Milliseconds as a short duration: "0 ms", "850 ms", "12.5 s", "3.2 min", "1.5 h". */
export function fmtAge(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** A chart with one series per shard, rebuilt when the shards change. */
function shardChart(label, yLabel) {
  const box = h("div", { class: "chart", "aria-label": label });
  let chart = null;
  let key = "";
  return {
    box,
    draw(ids, xs, series) {
      if (ids.join() !== key) {
        chart?.destroy();
        box.replaceChildren();
        chart = ids.length ? timeChart(box, ids, { yLabel, span: SPAN }) : null;
        key = ids.join();
      }
      box.dataset.points = String(xs.length);
      chart?.update([xs, ...series]);
    },
    destroy: () => chart?.destroy(),
  };
}

/**
 * The "Throughput" and "Iterator age" sections for stream `name`; polls
 * every `every` ms. Returns { throughput, age, stop }.
 */
export function streamCharts(name, { every = 1500 } = {}) {
  const slot = h("div", { class: "slot" });
  const now = h("p", { class: "age-now", "aria-live": "polite" });
  const rates = shardChart("Records written per second per shard", "records/s");
  const ages = shardChart("Iterator age per shard", "ms behind");
  // The latest figures as a table, for screen readers (charts are canvases).
  const rows = h("tbody");
  const head = ["Shard", "Records written per second", "Milliseconds behind"].map((c) => h("th", { scope: "col" }, c));
  const table = h("table", { class: "sr-only", "aria-label": "Shards now" }, h("thead", {}, h("tr", {}, ...head)), rows);
  const history = []; // { t: seconds, rate: Map(shardId -> records/s), age: Map(shardId -> ms) }
  let last = null; // the previous poll: { t, incoming: Map(shardId -> records) }
  let stopped = false;

  const poll = async () => {
    try {
      const doc = await getJSON(`/_riffle/console/api/kinesis/${encodeURIComponent(name)}`);
      if (stopped) return;
      const t = Date.now() / 1000;
      const incoming = new Map(doc.shards.map((x) => [x.shardId, x.incomingRecords]));
      const rate = new Map();
      if (last) {
        for (const [id, n] of incoming) rate.set(id, Math.max(0, n - (last.incoming.get(id) ?? 0)) / (t - last.t));
      }
      last = { t, incoming };
      history.push({ t, rate, age: new Map(doc.shards.map((x) => [x.shardId, x.iteratorAgeMilliseconds])) });
      while (history.length && history[0].t < t - SPAN) history.shift();

      const ids = doc.shards.map((x) => x.shardId);
      const xs = history.map((p) => p.t);
      rates.draw(ids, xs, ids.map((id) => history.map((p) => p.rate.get(id) ?? null)));
      ages.draw(ids, xs, ids.map((id) => history.map((p) => p.age.get(id) ?? null)));
      const cells = (x) => [x.shardId, (rate.get(x.shardId) ?? 0).toFixed(1), String(x.iteratorAgeMilliseconds)].map((c) => h("td", {}, c));
      rows.replaceChildren(...doc.shards.map((x) => h("tr", { "data-shard": x.shardId }, ...cells(x))));
      const worst = doc.shards.reduce((a, x) => (x.iteratorAgeMilliseconds > (a?.iteratorAgeMilliseconds ?? 0) ? x : a), null);
      now.textContent = worst ? `Furthest behind now: ${fmtAge(worst.iteratorAgeMilliseconds)} (${worst.shardId})` : "Every reader is at the tip (or none read in the last minute).";
      showError(slot, null);
    } catch (e) {
      if (!stopped) showError(slot, e);
    }
  };

  const section = (id, title, about, ...body) => h("section", { "aria-labelledby": id }, h("h2", { id }, title), h("p", { class: "muted" }, about), ...body);
  const throughput = section(
    "h-throughput",
    "Throughput",
    "Records written per second per shard over the last minute, as the server counts them (every PutRecord and PutRecords, from any writer).",
    slot,
    rates.box,
  );
  const age = section(
    "h-age",
    "Iterator age",
    "How far behind the newest record each shard's readers are (MillisBehindLatest of their latest GetRecords or SubscribeToShard event within the last minute; 0 at the tip), as the server saw it.",
    now,
    ages.box,
    table,
  );
  poll();
  const timer = setInterval(poll, every);
  return {
    throughput,
    age,
    stop: () => {
      stopped = true;
      clearInterval(timer);
      rates.destroy();
      ages.destroy();
    },
  };
}
