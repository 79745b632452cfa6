// One Analytics application: status with start and stop, the SQL editor,
// inputs with their schemas (and adding one, its schema discovered from
// the stream), outputs, and live rows of any in-application stream.

import { all, getJSON, signed, state } from "./api.js";
import { h, showError, fmtTime } from "./ui.js";
import { ka, writable, deleteApplication } from "./analytics.js";
import { sqlEditor } from "./analytics-sql.js";

const ROWS = "/_riffle/console/api/analytics/rows";
const MAX_ROWS = 500;
const POSITIONS = ["NOW", "TRIM_HORIZON", "LAST_STOPPED_POINT"];

const defaultRole = () => `arn:aws:iam::${state.server?.account ?? "000000000000"}:role/riffle-analytics`;

/** A definition list of [term, value] pairs (empty values left out). */
function facts(pairs) {
  return h("dl", { class: "facts" }, ...pairs.filter(([, v]) => v !== undefined && v !== null && v !== "").flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function table(label, heads, rows, attrs = {}) {
  return h(
    "table",
    { class: "list", "aria-label": label, ...attrs },
    h("thead", {}, h("tr", {}, ...heads.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, ...rows),
  );
}

/** What a RecordFormat says, in words. */
function formatText(f) {
  if (!f) return "";
  const m = f.MappingParameters || {};
  if (m.JSONMappingParameters) return `JSON, rows at ${m.JSONMappingParameters.RecordRowPath}`;
  if (m.CSVMappingParameters) {
    const c = m.CSVMappingParameters;
    return `CSV, rows split by ${JSON.stringify(c.RecordRowDelimiter)}, columns by ${JSON.stringify(c.RecordColumnDelimiter)}`;
  }
  return f.RecordFormatType;
}

/** An input schema: its format and columns. */
function schemaView(schema, label) {
  return h(
    "div",
    { class: "schema" },
    facts([
      ["Record format", formatText(schema?.RecordFormat)],
      ["Encoding", schema?.RecordEncoding],
    ]),
    table(
      label,
      ["Column", "SQL type", "Mapping"],
      (schema?.RecordColumns || []).map((c) => h("tr", { "data-column": c.Name }, h("td", {}, h("code", {}, c.Name)), h("td", {}, h("code", {}, c.SqlType)), h("td", {}, h("code", {}, c.Mapping ?? "")))),
      { class: "list columns" },
    ),
  );
}

function inputView(i) {
  const src = i.KinesisStreamsInputDescription || i.KinesisFirehoseInputDescription || {};
  return h(
    "div",
    { class: "input", "data-input": i.InputId },
    h("h3", {}, `Input ${i.InputId}: ${i.NamePrefix}`),
    facts([
      ["Source", h("code", { class: "arn" }, src.ResourceARN ?? "")],
      ["Role", h("code", { class: "arn" }, src.RoleARN ?? "")],
      ["In-application streams", (i.InAppStreamNames || []).join(", ")],
      ["Parallelism", i.InputParallelism?.Count],
      ["Starting position", i.InputStartingPositionConfiguration?.InputStartingPosition],
    ]),
    schemaView(i.InputSchema, `Schema of ${i.NamePrefix}`),
  );
}

function outputView(o) {
  const dest = o.KinesisStreamsOutputDescription || o.KinesisFirehoseOutputDescription || o.LambdaOutputDescription || {};
  return h(
    "tr",
    { "data-output": o.OutputId },
    h("td", {}, o.OutputId),
    h("td", {}, h("code", {}, o.Name)),
    h("td", {}, h("code", { class: "arn" }, dest.ResourceARN ?? "")),
    h("td", {}, o.DestinationSchema?.RecordFormatType ?? ""),
  );
}

/** The Data Streams streams, for the input and output forms. */
async function streamOptions(select) {
  try {
    const streams = await all("ListStreams", {}, "StreamSummaries");
    select.replaceChildren(...streams.map((s) => h("option", { value: s.StreamARN }, s.StreamName)));
  } catch (e) {
    select.replaceChildren(h("option", { value: "" }, String(e.message)));
  }
}

/** Adding an input: a Data Streams stream, its schema discovered from its records, then edited. */
function addInputForm(app, reload) {
  const source = h("select", { name: "source", "aria-label": "Source stream" });
  const prefix = h("input", { name: "NamePrefix", value: "SOURCE_SQL_STREAM", required: true, maxlength: 32 });
  const role = h("input", { name: "RoleARN", value: defaultRole(), required: true, size: 44 });
  const error = h("div", { class: "slot" });
  const proposed = h("div", { class: "proposed" });
  const add = h("button", { type: "submit", class: "primary", disabled: true }, "Add input");
  let format = null;
  const colBody = h("tbody");
  const colRow = (c) => {
    const tr = h(
      "tr",
      { class: "col" },
      h("td", {}, h("input", { name: "Name", value: c.Name, "aria-label": "Column name", required: true })),
      h("td", {}, h("input", { name: "SqlType", value: c.SqlType, "aria-label": "SQL type", required: true })),
      h("td", {}, h("input", { name: "Mapping", value: c.Mapping ?? "", "aria-label": "Mapping" })),
      h("td", {}, h("button", { type: "button", class: "small", "aria-label": `Remove column ${c.Name}`, onclick: () => tr.remove() }, "Remove")),
    );
    return tr;
  };
  const discover = async () => {
    showError(error, null);
    try {
      const r = await ka("DiscoverInputSchema", {
        ResourceARN: source.value,
        RoleARN: role.value.trim(),
        InputStartingPositionConfiguration: { InputStartingPosition: "TRIM_HORIZON" },
      });
      format = r.InputSchema;
      colBody.replaceChildren(...r.InputSchema.RecordColumns.map(colRow));
      const cols = r.InputSchema.RecordColumns.map((c) => c.Name);
      proposed.replaceChildren(
        h("p", {}, `Discovered from ${r.RawInputRecords?.length ?? 0} records: ${formatText(r.InputSchema.RecordFormat)}, ${r.InputSchema.RecordEncoding ?? ""}.`),
        h("table", { class: "list edit", "aria-label": "Proposed columns" }, h("thead", {}, h("tr", {}, ...["Column", "SQL type", "Mapping", ""].map((c) => h("th", { scope: "col" }, c)))), colBody),
        h("h4", {}, "Sample rows"),
        h("div", { class: "scroll sample" }, table("Sample rows", cols, (r.ParsedInputRecords || []).slice(0, 10).map((row) => h("tr", {}, ...row.map((v) => h("td", {}, v)))))),
      );
      add.disabled = false;
    } catch (e) {
      showError(error, e);
    }
  };
  const form = h(
    "form",
    { class: "card create addinput", "aria-label": "Add input", hidden: true },
    h("h2", {}, "Add input"),
    h("div", { class: "row" }, h("label", {}, "Data Streams stream", source), h("label", {}, "In-application name prefix", prefix), h("label", {}, "Role ARN", role)),
    h("div", { class: "actions" }, h("p", { class: "muted" }, "The schema is discovered from the stream's records, then yours to edit."), h("button", { type: "button", onclick: discover }, "Discover schema")),
    proposed,
    error,
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => (form.hidden = true) }, "Cancel"), add),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const columns = [...colBody.querySelectorAll("tr.col")].map((tr) => {
      const v = (n) => tr.querySelector(`input[name=${n}]`).value.trim();
      return { Name: v("Name"), SqlType: v("SqlType"), ...(v("Mapping") ? { Mapping: v("Mapping") } : {}) };
    });
    try {
      const d = app();
      await ka("AddApplicationInput", {
        ApplicationName: d.ApplicationName,
        CurrentApplicationVersionId: d.ApplicationVersionId,
        Input: {
          NamePrefix: prefix.value.trim(),
          KinesisStreamsInput: { ResourceARN: source.value, RoleARN: role.value.trim() },
          InputSchema: { ...format, RecordColumns: columns },
        },
      });
      form.hidden = true;
      proposed.replaceChildren();
      add.disabled = true;
      reload();
    } catch (err) {
      showError(error, err);
    }
  });
  return { form, open: () => ((form.hidden = false), streamOptions(source).then(() => source.focus())) };
}

/** Adding an output: an in-application stream to a Data Streams stream. */
function addOutputForm(app, reload) {
  const name = h("input", { name: "Name", value: "DESTINATION_SQL_STREAM", required: true, maxlength: 32 });
  const dest = h("select", { name: "destination", "aria-label": "Destination stream" });
  const fmt = h("select", { name: "RecordFormatType" }, h("option", {}, "JSON"), h("option", {}, "CSV"));
  const role = h("input", { name: "RoleARN", value: defaultRole(), required: true, size: 44 });
  const error = h("div", { class: "slot" });
  const form = h(
    "form",
    { class: "card create addoutput", "aria-label": "Add output", hidden: true },
    h("h2", {}, "Add output"),
    h("div", { class: "row" }, h("label", {}, "In-application stream", name), h("label", {}, "Data Streams stream", dest), h("label", {}, "Format", fmt), h("label", {}, "Role ARN", role)),
    error,
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => (form.hidden = true) }, "Cancel"), h("button", { type: "submit", class: "primary" }, "Add output")),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const d = app();
      await ka("AddApplicationOutput", {
        ApplicationName: d.ApplicationName,
        CurrentApplicationVersionId: d.ApplicationVersionId,
        Output: { Name: name.value.trim(), KinesisStreamsOutput: { ResourceARN: dest.value, RoleARN: role.value.trim() }, DestinationSchema: { RecordFormatType: fmt.value } },
      });
      form.hidden = true;
      showError(error, null);
      reload();
    } catch (err) {
      showError(error, err);
    }
  });
  return { form, open: () => ((form.hidden = false), streamOptions(dest).then(() => name.focus())) };
}

/** Live rows of one in-application stream, read from the rows endpoint's events. */
function liveRows(name) {
  const pick = h("select", { name: "inAppStream", "aria-label": "In-application stream" });
  const count = h("span", { class: "muted livecount" }, "");
  const head = h("thead");
  const body = h("tbody");
  const note = h("div", { class: "slot" });
  let ctrl = null;
  let total = 0;
  let columns = [];
  const stop = () => {
    ctrl?.abort();
    ctrl = null;
  };
  const show = (ev) => {
    if (ev.columns.join() !== columns.join()) {
      columns = ev.columns;
      head.replaceChildren(h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, c))));
    }
    for (const r of ev.rows) {
      body.append(h("tr", {}, ...columns.map((c, i) => h("td", { "data-col": c, class: r[i] === null ? "null" : null }, r[i] ?? "NULL"))));
    }
    while (body.children.length > MAX_ROWS) body.firstChild.remove();
    total += ev.rows.length;
    count.textContent = `${total} rows${ev.dropped ? `, ${ev.dropped} dropped (the page fell behind)` : ""}`;
    const box = body.closest(".scroll");
    if (box) box.scrollTop = box.scrollHeight;
  };
  const watch = async () => {
    stop();
    const mine = (ctrl = new AbortController());
    body.replaceChildren();
    head.replaceChildren();
    columns = [];
    total = 0;
    count.textContent = "waiting for rows…";
    showError(note, null);
    if (!pick.value) return;
    const url = new URL(`${ROWS}?${new URLSearchParams({ application: name, stream: pick.value })}`, location.origin).href;
    try {
      const headers = await signed("GET", url, { "x-riffle-console": "1" }, "");
      const resp = await fetch(url, { headers, signal: mine.signal });
      if (!resp.ok) throw new Error(`${resp.status}: ${await resp.text()}`);
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = frame
            .split("\n")
            .filter((l) => l.startsWith("data: "))
            .map((l) => l.slice(6))
            .join("\n");
          if (data) show(JSON.parse(data));
        }
      }
    } catch (e) {
      if (e.name !== "AbortError") showError(note, e);
    }
  };
  let chosen = false; // by the user, rather than offered
  pick.addEventListener("change", () => ((chosen = true), watch()));
  const el = h(
    "section",
    { class: "live", "aria-label": "Live rows" },
    h("h2", {}, "Live rows"),
    h(
      "div",
      { class: "row" },
      h("label", {}, "In-application stream", pick),
      h("button", { type: "button", onclick: () => ((body.textContent = ""), (total = 0), (count.textContent = "")) }, "Clear"),
      count,
    ),
    h("p", { class: "muted" }, "Rows appear as the running application puts them into the stream; none are kept when nobody watches."),
    note,
    h("div", { class: "scroll tail" }, h("table", { class: "list liverows", "aria-label": "Live rows" }, head, body)),
  );
  return {
    el,
    stop,
    /** Offers `names`, keeping the user's choice while it is still there; DESTINATION_SQL_STREAM otherwise. */
    offer(names) {
      const was = pick.value;
      if (names.join() === [...pick.options].map((o) => o.value).join()) return;
      pick.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
      const want = chosen && names.includes(was) ? was : names.includes("DESTINATION_SQL_STREAM") ? "DESTINATION_SQL_STREAM" : names.includes(was) ? was : names[0];
      if (want !== undefined) pick.value = want;
      if (pick.value !== was || !ctrl) watch();
    },
  };
}

export function applicationPage(main, name) {
  const rw = writable();
  const slot = h("div", { class: "slot" });
  const statusEl = h("span", { class: "status" });
  const version = h("span", { class: "muted version" });
  const position = h("select", { name: "InputStartingPosition", "aria-label": "Input starting position" }, ...POSITIONS.map((p) => h("option", { value: p }, p)));
  const startBtn = h("button", { type: "button", class: "primary", onclick: () => start() }, "Start");
  const stopBtn = h("button", { type: "button", onclick: () => stopApp() }, "Stop");
  const delBtn = h("button", { type: "button", class: "danger", onclick: () => deleteApplication(detail, slot).then((d) => d && (location.hash = "#/analytics")) }, "Delete");
  const info = h("div");
  const editor = sqlEditor({ label: `SQL code of ${name}`, rows: 14, application: name, readOnly: !rw });
  const saveBtn = h("button", { type: "button", class: "primary", onclick: () => save() }, "Save");
  const inputs = h("div", { class: "inputs" });
  const outputs = h("div", { class: "outputs" });
  const live = liveRows(name);
  let detail = null;
  let saved = null; // the code as last loaded or saved
  let shownVersion = null;
  let stopped = false;

  const app = () => detail;
  const reload = () => load();
  const addInput = addInputForm(app, reload);
  const addOutput = addOutputForm(app, reload);

  /** The streams the live view offers: the plan's, else what the configuration names. */
  const offerStreams = async () => {
    let names = null;
    try {
      const params = new URLSearchParams({ application: name, sql: saved ?? "" });
      const r = await getJSON(`/_riffle/console/api/analytics/validate?${params}`);
      if (!r.parse && !r.plan) names = r.streams.map((s) => s.name);
    } catch {
      // Shown by the editor.
    }
    if (!names) names = ["error_stream", ...(detail?.InputDescriptions || []).flatMap((i) => i.InAppStreamNames || [])];
    live.offer(names);
  };

  const render = (d) => {
    statusEl.textContent = d.ApplicationStatus;
    statusEl.className = `status status-${d.ApplicationStatus}`;
    version.textContent = `version ${d.ApplicationVersionId}`;
    startBtn.disabled = d.ApplicationStatus !== "READY";
    position.disabled = d.ApplicationStatus !== "READY";
    stopBtn.disabled = d.ApplicationStatus !== "RUNNING" && d.ApplicationStatus !== "STARTING";
    if (shownVersion === d.ApplicationVersionId) return;
    shownVersion = d.ApplicationVersionId;
    info.replaceChildren(
      facts([
        ["ARN", h("code", { class: "arn" }, d.ApplicationARN)],
        ["Description", d.ApplicationDescription],
        ["Created", fmtTime(d.CreateTimestamp)],
        ["Updated", fmtTime(d.LastUpdateTimestamp)],
      ]),
    );
    const code = d.ApplicationCode ?? "";
    // Unsaved edits are kept; otherwise the editor shows the saved code.
    if ((saved === null || editor.value() === saved) && editor.value() !== code) {
      editor.set(code);
      if (code) editor.validate();
    }
    saved = code;
    const ins = d.InputDescriptions || [];
    inputs.replaceChildren(...(ins.length ? ins.map(inputView) : [h("p", { class: "muted" }, "No input yet.")]));
    const outs = d.OutputDescriptions || [];
    outputs.replaceChildren(
      outs.length ? table("Outputs", ["ID", "In-application stream", "Destination", "Format"], outs.map(outputView)) : h("p", { class: "muted" }, "No output yet."),
    );
    offerStreams();
  };

  const load = async () => {
    try {
      detail = (await ka("DescribeApplication", { ApplicationName: name })).ApplicationDetail;
      if (!stopped) render(detail);
      showError(slot, null);
    } catch (e) {
      showError(slot, e);
    }
  };

  const start = async () => {
    try {
      await ka("StartApplication", {
        ApplicationName: name,
        InputConfigurations: (detail?.InputDescriptions || []).map((i) => ({ Id: i.InputId, InputStartingPositionConfiguration: { InputStartingPosition: position.value } })),
      });
      showError(slot, null);
    } catch (e) {
      showError(slot, e);
    }
    load();
  };
  const stopApp = async () => {
    try {
      await ka("StopApplication", { ApplicationName: name });
      showError(slot, null);
    } catch (e) {
      showError(slot, e);
    }
    load();
  };
  const save = async () => {
    if (!rw) return;
    const checked = await editor.validate();
    if (checked?.parse) return; // shown at its line
    try {
      await ka("UpdateApplication", {
        ApplicationName: name,
        CurrentApplicationVersionId: detail.ApplicationVersionId,
        ApplicationUpdate: { ApplicationCodeUpdate: editor.value() },
      });
      saved = editor.value();
      await load();
      editor.note(`Saved as version ${detail.ApplicationVersionId}.`, "ok saved");
    } catch (e) {
      if (!editor.showError(e)) editor.note(`${e.type}: ${e.awsMessage}`, "error");
    }
  };
  editor.onSubmit(save);

  main.append(
    h("div", { class: "crumbs" }, h("a", { href: "#/analytics" }, "Analytics"), " / ", name),
    h(
      "div",
      { class: "title" },
      h("h1", {}, name),
      statusEl,
      version,
      h("span", { class: "spacer" }),
      rw ? h("label", { class: "inline" }, "Start from", position) : null,
      rw ? startBtn : null,
      rw ? stopBtn : null,
      rw ? delBtn : null,
    ),
    slot,
    info,
    h(
      "section",
      { class: "code", "aria-label": "SQL code" },
      h("h2", {}, "SQL code"),
      editor.el,
      h(
        "div",
        { class: "actions" },
        h("p", { class: "muted" }, "Checked by Riffle's parser and planner as you type.", rw ? " Ctrl+Enter saves." : ""),
        h("button", { type: "button", onclick: () => editor.validate() }, "Check"),
        rw ? saveBtn : null,
      ),
    ),
    h(
      "section",
      { "aria-label": "Inputs" },
      h("div", { class: "title" }, h("h2", {}, "Inputs"), h("span", { class: "spacer" }), rw ? h("button", { type: "button", "data-new": true, onclick: addInput.open }, "Add input") : null),
      rw ? addInput.form : null,
      inputs,
    ),
    h(
      "section",
      { "aria-label": "Outputs" },
      h("div", { class: "title" }, h("h2", {}, "Outputs"), h("span", { class: "spacer" }), rw ? h("button", { type: "button", onclick: addOutput.open }, "Add output") : null),
      rw ? addOutput.form : null,
      outputs,
    ),
    live.el,
  );
  load();
  const timer = setInterval(() => !stopped && load(), 2000);
  return () => {
    stopped = true;
    clearInterval(timer);
    live.stop();
  };
}
