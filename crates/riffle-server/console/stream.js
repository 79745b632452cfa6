// One stream: its summary, shard map and lineage, live tail, throughput,
// a test record, and its consumers.

import { call, all, state, answer, AwsError } from "./api.js";
import { presign } from "./sigv4.js";
import { h, s, showError, fmtTime, confirmDialog } from "./ui.js";
import { deleteStream } from "./streams.js";
import { streamCharts } from "./stream-metrics.js";

const SPACE = 2n ** 128n;
const MAX_ROWS = 1000;
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** A record's data (base64) as text, JSON or hex. */
export function decode(b64, how) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  if (how === "hex") return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  const text = new TextDecoder("utf-8").decode(bytes);
  if (how === "json") {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return `(not JSON) ${text}`;
    }
  }
  return text;
}

/** The share of the hash key space from `a` to `b` inclusive, 0 to 1. */
function share(a, b) {
  return Number(((BigInt(b) - BigInt(a) + 1n) * 1000000n) / SPACE) / 1000000;
}

function position(a) {
  return Number((BigInt(a) * 1000000n) / SPACE) / 1000000;
}

/**
 * The shard map: each shard a bar placed and sized by its hash key range,
 * one row per generation, lines from parents to children.
 */
export function shardMap(shards) {
  const byId = new Map(shards.map((x) => [x.ShardId, x]));
  const depth = new Map();
  const depthOf = (x) => {
    if (depth.has(x.ShardId)) return depth.get(x.ShardId);
    let d = 0;
    for (const p of [x.ParentShardId, x.AdjacentParentShardId]) {
      if (p && byId.has(p)) d = Math.max(d, depthOf(byId.get(p)) + 1);
    }
    depth.set(x.ShardId, d);
    return d;
  };
  shards.forEach(depthOf);
  const rows = Math.max(0, ...depth.values()) + 1;
  const W = 1000, ROW = 64, BAR = 32, TOP = 26;
  const height = TOP + rows * ROW;
  const geo = new Map();
  for (const x of shards) {
    const r = x.HashKeyRange;
    const gx = position(r.StartingHashKey) * W;
    const gw = share(r.StartingHashKey, r.EndingHashKey) * W;
    geo.set(x.ShardId, { x: gx, w: gw, y: TOP + depth.get(x.ShardId) * ROW });
  }
  const svg = s("svg", { viewBox: `0 0 ${W} ${height}`, class: "shardmap", role: "img", "aria-label": "Shard map: hash key ranges and lineage" });
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(
      s("line", { x1: t * W, x2: t * W, y1: 16, y2: height, class: "tick" }),
      s("text", { x: Math.min(Math.max(t * W, 12), W - 12), y: 12, class: "ticklabel", "text-anchor": "middle" }, `${t * 100}%`),
    );
  }
  for (const x of shards) {
    const c = geo.get(x.ShardId);
    for (const p of [x.ParentShardId, x.AdjacentParentShardId]) {
      const pg = p && geo.get(p);
      if (!pg) continue;
      const pr = byId.get(p).HashKeyRange;
      const lo = BigInt(pr.StartingHashKey) > BigInt(x.HashKeyRange.StartingHashKey) ? pr.StartingHashKey : x.HashKeyRange.StartingHashKey;
      const hi = BigInt(pr.EndingHashKey) < BigInt(x.HashKeyRange.EndingHashKey) ? pr.EndingHashKey : x.HashKeyRange.EndingHashKey;
      const mx = (position(lo) + share(lo, hi) / 2) * W;
      svg.append(s("line", { class: "lineage", x1: mx, y1: pg.y + BAR, x2: mx, y2: c.y, "data-parent": p, "data-child": x.ShardId }));
    }
  }
  for (const x of shards) {
    const c = geo.get(x.ShardId);
    const open = !x.SequenceNumberRange?.EndingSequenceNumber;
    const idNum = Number(x.ShardId.replace(/^shardId-/, ""));
    const label = c.w > 190 ? x.ShardId : c.w > 40 ? `#${idNum}` : "";
    svg.append(
      s(
        "g",
        {
          class: `shard ${open ? "open" : "closed"}`,
          "data-shard-id": x.ShardId,
          "data-start": x.HashKeyRange.StartingHashKey,
          "data-end": x.HashKeyRange.EndingHashKey,
          "data-parent": x.ParentShardId,
          "data-adjacent-parent": x.AdjacentParentShardId,
        },
        s("title", {}, `${x.ShardId} (${open ? "open" : "closed"})\n${x.HashKeyRange.StartingHashKey} to ${x.HashKeyRange.EndingHashKey}`),
        s("rect", { x: c.x + 1, y: c.y, width: Math.max(1, c.w - 2), height: BAR, rx: 4 }),
        s("text", { x: c.x + c.w / 2, y: c.y + BAR / 2 + 5, "text-anchor": "middle" }, label),
      ),
    );
  }
  return svg;
}

function shardTable(shards) {
  return h(
    "table",
    { class: "list shards", "aria-label": "Shards" },
    h("thead", {}, h("tr", {}, ...["Shard", "State", "Parents", "Starting hash key", "Ending hash key", "Key space", "First sequence number"].map((c, i) => h("th", { scope: "col", class: i >= 3 ? "num" : null }, c)))),
    h(
      "tbody",
      {},
      shards.map((x) =>
        h(
          "tr",
          { "data-shard-id": x.ShardId },
          h("td", {}, h("code", {}, x.ShardId)),
          h("td", {}, x.SequenceNumberRange?.EndingSequenceNumber ? "closed" : "open"),
          h("td", {}, [x.ParentShardId, x.AdjacentParentShardId].filter(Boolean).join(", ")),
          h("td", { class: "num" }, h("code", {}, x.HashKeyRange.StartingHashKey)),
          h("td", { class: "num" }, h("code", {}, x.HashKeyRange.EndingHashKey)),
          h("td", { class: "num" }, `${(share(x.HashKeyRange.StartingHashKey, x.HashKeyRange.EndingHashKey) * 100).toFixed(1)}%`),
          h("td", { class: "num" }, h("code", {}, x.SequenceNumberRange?.StartingSequenceNumber ?? "")),
        ),
      ),
    ),
  );
}

/**
 * Reads shards with GetRecords from an iterator type, following a closed
 * shard into its children; `onRecords(shardId, records)` sees each batch.
 */
class Tail {
  constructor(stream, shards, opts, onRecords, onError) {
    Object.assign(this, { stream, shards, opts, onRecords, onError, stopped: false, started: new Set() });
  }

  start() {
    const { shardId, type } = this.opts;
    const ids = new Set(this.shards.map((x) => x.ShardId));
    let first;
    if (shardId) first = [shardId];
    else if (type === "LATEST") first = this.shards.filter((x) => !x.SequenceNumberRange?.EndingSequenceNumber).map((x) => x.ShardId);
    else first = this.shards.filter((x) => !ids.has(x.ParentShardId) && !ids.has(x.AdjacentParentShardId)).map((x) => x.ShardId);
    for (const id of first) this.follow(id, type);
  }

  stop() {
    this.stopped = true;
  }

  async follow(shardId, type) {
    if (this.started.has(shardId)) return;
    this.started.add(shardId);
    const input = { StreamName: this.stream, ShardId: shardId, ShardIteratorType: type };
    if (type === "AT_TIMESTAMP") input.Timestamp = this.opts.timestamp;
    if (type.endsWith("_SEQUENCE_NUMBER")) input.StartingSequenceNumber = this.opts.sequenceNumber;
    let iterator;
    try {
      iterator = (await call("GetShardIterator", input)).ShardIterator;
    } catch (e) {
      this.onError(e);
      return;
    }
    while (!this.stopped && iterator) {
      let out;
      try {
        out = await call("GetRecords", { ShardIterator: iterator, Limit: 1000 });
      } catch (e) {
        if (e.type === "ProvisionedThroughputExceededException") {
          await sleep(1000);
          continue;
        }
        this.onError(e);
        return;
      }
      if (this.stopped) return;
      if (out.Records?.length) this.onRecords(shardId, out.Records);
      iterator = out.NextShardIterator;
      if (!iterator) {
        const next = type === "AT_TIMESTAMP" ? "AT_TIMESTAMP" : "TRIM_HORIZON";
        for (const c of out.ChildShards || []) this.follow(c.ShardId, next);
        return;
      }
      await sleep(out.Records?.length && out.MillisBehindLatest > 0 ? 200 : 1000);
    }
  }
}

/** The tail endpoint's names of the starting positions it takes. */
const EVENT_STARTS = { LATEST: "latest", TRIM_HORIZON: "trim-horizon", AT_TIMESTAMP: "at-timestamp" };

/**
 * Every shard's records as the server reads them (children after their
 * parents), pushed as Server-Sent Events by the console's tail endpoint;
 * the URL is presigned when the console signs its calls, as EventSource
 * sends no headers. Calls `onRecords(shardId, records)` as Tail does.
 */
class EventTail {
  constructor(stream, opts, onRecords, onError, onEnd) {
    Object.assign(this, { stream, opts, onRecords, onError, onEnd, stopped: false, source: null });
  }

  async start() {
    const params = new URLSearchParams({ from: EVENT_STARTS[this.opts.type] });
    if (this.opts.type === "AT_TIMESTAMP") params.set("timestamp", String(this.opts.timestamp));
    let url = new URL(`/_riffle/console/api/streams/${encodeURIComponent(this.stream)}/tail?${params}`, location.origin).href;
    if (state.credentials) {
      url = await presign({ url, credentials: state.credentials, region: state.server?.region || "us-east-1", service: "kinesis" });
    }
    if (this.stopped) return;
    const source = new EventSource(url);
    this.source = source;
    let opened = false;
    source.onopen = () => (opened = true);
    source.addEventListener("record", (e) => {
      const r = JSON.parse(e.data);
      this.onRecords(r.shardId, [{ SequenceNumber: r.sequenceNumber, PartitionKey: r.partitionKey, Data: r.data, ApproximateArrivalTimestamp: r.arrivalTimestamp }]);
    });
    source.addEventListener("failure", (e) => {
      const d = JSON.parse(e.data);
      this.stop();
      this.onError(new AwsError(d.__type, d.message));
    });
    source.addEventListener("end", () => {
      this.stop();
      this.onEnd();
    });
    source.onerror = async () => {
      if (this.stopped) return;
      this.stop();
      if (opened) return this.onError(new Error("The live tail's connection to the server was lost."));
      // EventSource does not say why it was refused: the same request does.
      const abort = new AbortController();
      try {
        const resp = await fetch(url, { signal: abort.signal });
        abort.abort();
        await answer(resp);
        this.onError(new Error("The live tail could not connect to the server."));
      } catch (err) {
        this.onError(err);
      }
    };
  }

  stop() {
    this.stopped = true;
    this.source?.close();
  }
}

export function streamPage(main, name) {
  const cleanups = [];
  let stream = null; // the summary
  let shards = [];
  let lastShardsJson = "";
  let lastSummaryJson = "";
  const slot = h("div", { class: "slot" });
  const summary = h("dl", { class: "facts" });
  const mapBox = h("div", { class: "mapbox" });
  const tableBox = h("div", { class: "scroll" });
  const title = h("h1", {}, name);
  const status = h("span", { class: "status" });

  // The live tail.
  const rowsBody = h("tbody");
  const shardSel = h("select", { name: "shard", "aria-label": "Shard" }, h("option", { value: "" }, "All shards"));
  const typeSel = h(
    "select",
    { name: "iteratorType", "aria-label": "Start from" },
    ...["LATEST", "TRIM_HORIZON", "AT_TIMESTAMP", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"].map((t) => h("option", { value: t }, t)),
  );
  const tsInput = h("input", { name: "timestamp", type: "datetime-local", step: 1, "aria-label": "Timestamp" });
  const seqInput = h("input", { name: "sequenceNumber", placeholder: "Sequence number", "aria-label": "Sequence number", size: 30 });
  const tsLabel = h("label", { hidden: true }, "At", tsInput);
  const seqLabel = h("label", { hidden: true }, "Sequence number", seqInput);
  const decodeSel = h("select", { name: "decode", "aria-label": "Show data as" }, ...["text", "json", "hex"].map((t) => h("option", { value: t }, t)));
  const startBtn = h("button", { type: "submit", class: "primary" }, "Start tail");
  const stopBtn = h("button", { type: "button", disabled: true }, "Stop");
  const tailError = h("div", { class: "slot" });
  const tailState = h("span", { class: "muted", "aria-live": "polite" }, "Stopped.");
  let tail = null;
  const seen = [];
  typeSel.addEventListener("change", () => {
    tsLabel.hidden = typeSel.value !== "AT_TIMESTAMP";
    seqLabel.hidden = !typeSel.value.endsWith("_SEQUENCE_NUMBER");
  });
  const rowOf = (r) =>
    h(
      "tr",
      { "data-shard-id": r.shardId, "data-seq": r.SequenceNumber },
      h("td", { class: "nowrap" }, fmtTime(r.ApproximateArrivalTimestamp)),
      h("td", { class: "nowrap" }, h("code", {}, `#${Number(r.shardId.replace(/^shardId-/, ""))}`)),
      h("td", { class: "seq" }, h("code", {}, r.SequenceNumber)),
      h("td", {}, r.PartitionKey),
      h("td", { class: "data" }, h("pre", {}, decode(r.Data, decodeSel.value))),
    );
  decodeSel.addEventListener("change", () => rowsBody.replaceChildren(...seen.map(rowOf).reverse()));
  const stopTail = () => {
    tail?.stop();
    tail = null;
    startBtn.disabled = false;
    stopBtn.disabled = true;
    tailState.textContent = "Stopped.";
  };
  stopBtn.addEventListener("click", stopTail);
  const tailForm = h(
    "form",
    { class: "row tailform", "aria-label": "Live tail" },
    h("label", {}, "Shard", shardSel),
    h("label", {}, "Start from", typeSel),
    tsLabel,
    seqLabel,
    h("label", {}, "Show data as", decodeSel),
    startBtn,
    stopBtn,
    tailState,
  );
  tailForm.addEventListener("submit", (e) => {
    e.preventDefault();
    stopTail();
    showError(tailError, null);
    const type = typeSel.value;
    const opts = { shardId: shardSel.value || null, type };
    if (type === "AT_TIMESTAMP") {
      if (!tsInput.value) return showError(tailError, new Error("Choose a timestamp to start at."));
      opts.timestamp = new Date(tsInput.value).getTime() / 1000;
    }
    if (type.endsWith("_SEQUENCE_NUMBER")) {
      if (!opts.shardId) return showError(tailError, new Error("A sequence number belongs to one shard: choose the shard."));
      opts.sequenceNumber = seqInput.value.trim();
    }
    seen.length = 0;
    rowsBody.replaceChildren();
    const onRecords = (shardId, records) => {
      for (const r of records) {
        const rec = { ...r, shardId };
        seen.push(rec);
        rowsBody.prepend(rowOf(rec));
      }
      while (seen.length > MAX_ROWS) {
        seen.shift();
        rowsBody.lastChild?.remove();
      }
      tailState.textContent = `Tailing: ${seen.length} record${seen.length === 1 ? "" : "s"} shown.`;
    };
    const onError = (err) => showError(tailError, err);
    // Every shard from a position the server's tail takes: pushed to the
    // page. One shard, or a sequence number: GetRecords, polled.
    const pushed = !opts.shardId && type in EVENT_STARTS;
    tail = pushed
      ? new EventTail(name, opts, onRecords, onError, () => {
          stopTail();
          tailState.textContent = `Every shard is closed and read: ${seen.length} records shown.`;
        })
      : new Tail(name, shards, opts, onRecords, onError);
    tailState.dataset.transport = pushed ? "events" : "polling";
    tail.start();
    startBtn.disabled = true;
    stopBtn.disabled = false;
    tailState.textContent = "Tailing: 0 records shown.";
  });
  cleanups.push(stopTail);

  // Put a test record.
  const pk = h("input", { name: "PartitionKey", value: "console", required: true, "aria-label": "Partition key" });
  const data = h("textarea", { name: "Data", rows: 2, "aria-label": "Data", placeholder: "Text or JSON" });
  const ehk = h("input", { name: "ExplicitHashKey", "aria-label": "Explicit hash key", placeholder: "optional", size: 40 });
  const putResult = h("p", { class: "muted", "aria-live": "polite" });
  const putError = h("div", { class: "slot" });
  const putForm = h(
    "form",
    { class: "put", "aria-label": "Put a record" },
    h("div", { class: "row" }, h("label", {}, "Partition key", pk), h("label", {}, "Explicit hash key", ehk)),
    h("label", { class: "wide" }, "Data", data),
    putError,
    h("div", { class: "actions" }, putResult, h("button", { type: "submit", class: "primary" }, "Put record")),
  );
  putForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    let bin = "";
    for (const b of new TextEncoder().encode(data.value)) bin += String.fromCharCode(b);
    const input = { StreamName: name, PartitionKey: pk.value, Data: btoa(bin) };
    if (ehk.value.trim()) input.ExplicitHashKey = ehk.value.trim();
    try {
      const out = await call("PutRecord", input);
      showError(putError, null);
      putResult.textContent = `Put in ${out.ShardId} at sequence number ${out.SequenceNumber}.`;
    } catch (err) {
      putResult.textContent = "";
      showError(putError, err);
    }
  });

  // Consumers.
  const consumersBody = h("tbody");
  const consumerName = h("input", { name: "ConsumerName", required: true, "aria-label": "Consumer name", placeholder: "Consumer name" });
  const consumerError = h("div", { class: "slot" });
  const consumerForm = h(
    "form",
    { class: "row", "aria-label": "Register a consumer" },
    consumerName,
    h("button", { type: "submit" }, "Register consumer"),
  );
  const loadConsumers = async () => {
    if (!stream) return;
    const list = await all("ListStreamConsumers", { StreamARN: stream.StreamARN }, "Consumers");
    consumersBody.replaceChildren(
      ...(list.length
        ? list.map((c) =>
            h(
              "tr",
              { "data-consumer": c.ConsumerName },
              h("td", {}, c.ConsumerName),
              h("td", {}, h("span", { class: `status status-${c.ConsumerStatus}` }, c.ConsumerStatus)),
              h("td", {}, fmtTime(c.ConsumerCreationTimestamp)),
              h("td", {}, h("code", { class: "arn" }, c.ConsumerARN)),
              h(
                "td",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    class: "danger small",
                    "aria-label": `Deregister ${c.ConsumerName}`,
                    onclick: async () => {
                      const ok = await confirmDialog({ title: `Deregister ${c.ConsumerName}?`, body: "Its enhanced fan-out subscriptions end.", confirmLabel: "Deregister" });
                      if (!ok) return;
                      try {
                        await call("DeregisterStreamConsumer", { ConsumerARN: c.ConsumerARN });
                        showError(consumerError, null);
                        loadConsumers();
                      } catch (err) {
                        showError(consumerError, err);
                      }
                    },
                  },
                  "Deregister",
                ),
              ),
            ),
          )
        : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No consumers."))]),
    );
  };
  consumerForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await call("RegisterStreamConsumer", { StreamARN: stream.StreamARN, ConsumerName: consumerName.value.trim() });
      consumerName.value = "";
      showError(consumerError, null);
      loadConsumers();
    } catch (err) {
      showError(consumerError, err);
    }
  });

  const deleteBtn = h("button", {
    type: "button",
    class: "danger",
    onclick: async () => {
      if (await deleteStream(name, slot)) location.hash = "#/streams";
    },
  }, "Delete stream");

  const load = async () => {
    try {
      const d = (await call("DescribeStreamSummary", { StreamName: name })).StreamDescriptionSummary;
      stream = d;
      const list = await all("ListShards", { StreamName: name }, "Shards");
      const sj = JSON.stringify(d);
      if (sj !== lastSummaryJson) {
        lastSummaryJson = sj;
        status.textContent = d.StreamStatus;
        status.className = `status status-${d.StreamStatus}`;
        const fact = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
        summary.replaceChildren(
          ...fact("ARN", h("code", {}, d.StreamARN)),
          ...fact("Capacity mode", d.StreamModeDetails?.StreamMode ?? ""),
          ...fact("Open shards", String(d.OpenShardCount)),
          ...fact("Retention", `${d.RetentionPeriodHours} hours`),
          ...fact("Created", fmtTime(d.StreamCreationTimestamp)),
          ...fact("Encryption", d.EncryptionType ?? "NONE"),
          ...fact("Consumers", String(d.ConsumerCount ?? 0)),
        );
      }
      const lj = JSON.stringify(list);
      if (lj !== lastShardsJson) {
        lastShardsJson = lj;
        shards = list;
        mapBox.replaceChildren(shardMap(list));
        tableBox.replaceChildren(shardTable(list));
        const chosen = shardSel.value;
        shardSel.replaceChildren(h("option", { value: "" }, "All shards"), ...list.map((x) => h("option", { value: x.ShardId }, x.ShardId)));
        shardSel.value = chosen;
        if (tail) tail.shards = list;
      }
      showError(slot, null);
      await loadConsumers();
    } catch (e) {
      showError(slot, e);
    }
  };

  const charts = streamCharts(name);
  cleanups.push(charts.stop);
  main.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumbs" }, h("a", { href: "#/streams" }, "Data Streams"), " / ", name),
    h("div", { class: "title" }, title, status, h("span", { class: "spacer" }), deleteBtn),
    slot,
    h("section", { "aria-labelledby": "h-summary" }, h("h2", { id: "h-summary", class: "sr-only" }, "Summary"), summary),
    h("section", { "aria-labelledby": "h-shards" }, h("h2", { id: "h-shards" }, "Shards"), mapBox, tableBox),
    h(
      "section",
      { "aria-labelledby": "h-tail" },
      h("h2", { id: "h-tail" }, "Live tail"),
      tailForm,
      tailError,
      h("div", { class: "scroll tail" }, h("table", { class: "list records", "aria-label": "Records" }, h("thead", {}, h("tr", {}, ...["Arrival", "Shard", "Sequence number", "Partition key", "Data"].map((c) => h("th", { scope: "col" }, c)))), rowsBody)),
    ),
    charts.throughput,
    charts.age,
    h("section", { "aria-labelledby": "h-put" }, h("h2", { id: "h-put" }, "Put a test record"), putForm),
    h("section", { "aria-labelledby": "h-consumers" }, h("h2", { id: "h-consumers" }, "Consumers"), consumerForm, consumerError, h("table", { class: "list", "aria-label": "Consumers" }, h("thead", {}, h("tr", {}, ...["Name", "Status", "Created", "ARN", ""].map((c) => h("th", { scope: "col" }, c)))), consumersBody)),
  );
  load();
  const timer = setInterval(load, 2000);
  cleanups.push(() => clearInterval(timer));
  return () => cleanups.forEach((f) => f());
}
