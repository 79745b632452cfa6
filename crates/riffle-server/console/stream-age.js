// The stream page's iterator age chart: each shard's MillisBehindLatest
// (CloudWatch's IteratorAgeMilliseconds) as consumers saw it, polled from
// the server's read-only endpoint /_riffle/console/api/kinesis/<name>.

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

/**
 * The "Iterator age" section for stream `name`: polls every `every` ms.
 * Returns { section, stop }.
 */
export function iteratorAgeSection(name, { every = 1500 } = {}) {
  const slot = h("div", { class: "slot" });
  const now = h("p", { class: "age-now", "aria-live": "polite" });
  const box = h("div", { class: "chart", "aria-label": "Iterator age per shard" });
  // The latest figures as a table, for screen readers (the chart is a canvas).
  const rows = h("tbody");
  const table = h("table", { class: "sr-only", "aria-label": "Iterator age now" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Shard"), h("th", { scope: "col" }, "Milliseconds behind"))), rows);
  const history = []; // { t: seconds, ages: Map(shardId -> ms) }
  let chart = null;
  let key = "";
  let stopped = false;

  const draw = (shards) => {
    const ids = shards.map((x) => x.shardId);
    if (ids.join() !== key) {
      chart?.destroy();
      box.replaceChildren();
      chart = ids.length ? timeChart(box, ids, { yLabel: "ms behind", span: SPAN }) : null;
      key = ids.join();
    }
    box.dataset.points = String(history.length);
    chart?.update([history.map((p) => p.t), ...ids.map((id) => history.map((p) => p.ages.get(id) ?? null))]);
  };

  const poll = async () => {
    try {
      const doc = await getJSON(`/_riffle/console/api/kinesis/${encodeURIComponent(name)}`);
      if (stopped) return;
      const t = Date.now() / 1000;
      history.push({ t, ages: new Map(doc.shards.map((x) => [x.shardId, x.iteratorAgeMilliseconds])) });
      while (history.length && history[0].t < t - SPAN) history.shift();
      const worst = doc.shards.reduce((a, x) => (x.iteratorAgeMilliseconds > (a?.iteratorAgeMilliseconds ?? -1) ? x : a), null);
      now.textContent = worst && worst.iteratorAgeMilliseconds > 0 ? `Furthest behind now: ${fmtAge(worst.iteratorAgeMilliseconds)} (${worst.shardId})` : "Every reader is at the tip (or none read in the last minute).";
      rows.replaceChildren(...doc.shards.map((x) => h("tr", { "data-shard": x.shardId }, h("td", {}, x.shardId), h("td", {}, String(x.iteratorAgeMilliseconds)))));
      showError(slot, null);
      draw(doc.shards);
    } catch (e) {
      if (!stopped) showError(slot, e);
    }
  };

  const section = h(
    "section",
    { "aria-labelledby": "h-age" },
    h("h2", { id: "h-age" }, "Iterator age"),
    h("p", { class: "muted" }, "How far behind the newest record each shard's readers are (MillisBehindLatest of their latest GetRecords or SubscribeToShard event within the last minute; 0 at the tip), as the server saw it."),
    slot,
    now,
    box,
    table,
  );
  poll();
  const timer = setInterval(poll, every);
  return {
    section,
    stop: () => {
      stopped = true;
      clearInterval(timer);
      chart?.destroy();
    },
  };
}
