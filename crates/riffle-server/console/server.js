// The server: version, storage, disk use, uptime, and the request counters
// of /metrics charted.

import { getJSON, state } from "./api.js";
import { h, showError, fmtBytes, fmtDuration, fmtTime, timeChart } from "./ui.js";

/** Prometheus text: [{ name, labels, value }]. */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, "$1");
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

export function serverPage(main) {
  const slot = h("div", { class: "slot" });
  const facts = h("dl", { class: "facts" });
  const gauges = h("dl", { class: "facts" });
  const chartBox = h("div", { class: "chart", "aria-label": "Requests per second" });
  const opsBody = h("tbody");
  const history = []; // [seconds, ok/s, errors/s]
  let previous = null;
  let chart = null;

  const loadInfo = async () => {
    try {
      const s = await getJSON("/_riffle/console/api/server");
      state.server = s;
      const fact = (k, v, id) => [h("dt", {}, k), h("dd", { "data-fact": id }, v)];
      facts.replaceChildren(
        ...fact("Version", s.version, "version"),
        ...fact("Listening on", s.listen, "listen"),
        ...fact("Storage", s.storage, "storage"),
        ...fact("Durability", s.durability, "durability"),
        ...fact("Data directory", h("code", {}, s.dataDirectory ?? ""), "dataDirectory"),
        ...fact("Disk use", fmtBytes(s.diskBytes), "diskBytes"),
        ...fact("Started", fmtTime(s.startedAt / 1000), "startedAt"),
        ...fact("Uptime", fmtDuration(s.uptimeSeconds), "uptime"),
        ...fact("Console", s.console, "console"),
        ...fact("Signatures", s.credentialsRequired ? "checked" : "not checked (no credentials configured)", "credentials"),
        ...fact("Region · account", `${s.region} · ${s.account}`, "region"),
      );
    } catch (e) {
      showError(slot, e);
    }
  };

  const loadMetrics = async () => {
    let samples;
    try {
      const r = await fetch("/metrics", { headers: { "x-riffle-console": "1" } });
      samples = parseMetrics(await r.text());
    } catch (e) {
      showError(slot, e);
      return;
    }
    const now = Date.now() / 1000;
    const requests = samples.filter((x) => x.name === "riffle_requests_total");
    const total = (f) => requests.filter(f).reduce((a, x) => a + x.value, 0);
    const ok = total((x) => x.labels.outcome === "ok");
    const failed = total((x) => x.labels.outcome !== "ok");
    if (previous) {
      const dt = now - previous.t;
      history.push([Math.round(now), Math.max(0, (ok - previous.ok) / dt), Math.max(0, (failed - previous.failed) / dt)]);
      while (history.length > 151) history.shift();
    }
    previous = { t: now, ok, failed };
    chart ??= timeChart(chartBox, ["succeeded", "failed"], { yLabel: "requests/s", span: 300 });
    chart.update([history.map((x) => x[0]), history.map((x) => x[1]), history.map((x) => x[2])]);
    const g = (n) => samples.filter((x) => x.name === n).reduce((a, x) => a + x.value, 0);
    const fact = (k, v) => [h("dt", {}, k), h("dd", {}, String(v))];
    gauges.replaceChildren(
      ...fact("Streams", g("riffle_streams")),
      ...fact("Open shards", g("riffle_open_shards")),
      ...fact("Connections", g("riffle_connections")),
      ...fact("Requests in flight", g("riffle_requests_in_flight")),
      ...fact("Record bytes not yet durable", fmtBytes(g("riffle_pending_write_bytes"))),
    );
    const byOp = new Map();
    for (const x of requests) {
      const e = byOp.get(x.labels.operation) ?? { ok: 0, failed: 0, errors: [] };
      if (x.labels.outcome === "ok") e.ok += x.value;
      else {
        e.failed += x.value;
        e.errors.push(`${x.labels.outcome} ${x.value}`);
      }
      byOp.set(x.labels.operation, e);
    }
    opsBody.replaceChildren(
      ...[...byOp.entries()]
        .sort((a, b) => b[1].ok + b[1].failed - (a[1].ok + a[1].failed))
        .map(([op, e]) => h("tr", { "data-operation": op }, h("td", {}, op), h("td", { class: "num" }, e.ok), h("td", { class: "num" }, e.failed), h("td", {}, e.errors.join(", ")))),
    );
  };

  main.append(
    h("div", { class: "title" }, h("h1", {}, "Server")),
    slot,
    h("section", {}, facts),
    h("section", { "aria-labelledby": "h-req" }, h("h2", { id: "h-req" }, "Requests"), h("p", { class: "muted" }, "Requests per second over the last five minutes, from /metrics every 2 seconds while this page is open."), chartBox, gauges),
    h(
      "section",
      { "aria-labelledby": "h-ops" },
      h("h2", { id: "h-ops" }, "Requests by operation"),
      h("table", { class: "list", "aria-label": "Requests by operation" }, h("thead", {}, h("tr", {}, ...["Operation", "Succeeded", "Failed", "Errors"].map((c, i) => h("th", { scope: "col", class: i === 1 || i === 2 ? "num" : null }, c)))), opsBody),
    ),
  );
  loadInfo();
  loadMetrics();
  const t1 = setInterval(loadInfo, 5000);
  const t2 = setInterval(loadMetrics, 2000);
  return () => {
    clearInterval(t1);
    clearInterval(t2);
    chart?.destroy();
  };
}
