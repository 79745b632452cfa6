// Kinesis Analytics (SQL applications): the list, creating and deleting
// applications. The application's own page is analytics-app.js.

import { call, state } from "./api.js";
import { h, showError, confirmDialog, fmtTime } from "./ui.js";
import { sqlEditor } from "./analytics-sql.js";

export const ANALYTICS = "KinesisAnalytics_20150814";

/** Calls a Kinesis Analytics operation. */
export const ka = (operation, input) => call(operation, input, ANALYTICS);

/** Whether the console may change state on this server. */
export const writable = () => state.server?.console !== "read-only";

/** Every application's summary. */
export async function listApplications() {
  const out = [];
  let req = { Limit: 50 };
  for (;;) {
    const page = await ka("ListApplications", req);
    out.push(...(page.ApplicationSummaries || []));
    if (!page.HasMoreApplications || !out.length) return out;
    req = { Limit: 50, ExclusiveStartApplicationName: out[out.length - 1].ApplicationName };
  }
}

/** Deletes the application after the user types its name; resolves true when deleted. */
export async function deleteApplication(detail, slot) {
  const name = detail.ApplicationName;
  const ok = await confirmDialog({
    title: `Delete ${name}?`,
    body: "The application, its code and its configuration are deleted. Its input and output streams are kept.",
    confirmLabel: "Delete application",
    typed: name,
  });
  if (!ok) return false;
  try {
    await ka("DeleteApplication", { ApplicationName: name, CreateTimestamp: detail.CreateTimestamp });
    showError(slot, null);
    return true;
  } catch (e) {
    showError(slot, e);
    return false;
  }
}

/** "2 in (clicks) · 1 out (DESTINATION_SQL_STREAM → out)" for a list row. */
function ioSummary(d) {
  const source = (i) => (i.KinesisStreamsInputDescription || i.KinesisFirehoseInputDescription)?.ResourceARN?.split("/").pop() ?? "?";
  const dest = (o) =>
    (o.KinesisStreamsOutputDescription || o.KinesisFirehoseOutputDescription || o.LambdaOutputDescription)?.ResourceARN?.split(/[/:]/).pop() ?? "?";
  const ins = d.InputDescriptions || [];
  const outs = d.OutputDescriptions || [];
  return [
    ins.length ? `in: ${ins.map((i) => `${source(i)} → ${i.NamePrefix}`).join(", ")}` : "no input",
    outs.length ? `out: ${outs.map((o) => `${o.Name} → ${dest(o)}`).join(", ")}` : "no output",
  ].join(" · ");
}

function createForm(onCreated) {
  const name = h("input", { name: "ApplicationName", required: true, pattern: "[a-zA-Z0-9_.\\-]+", maxlength: 128, autocomplete: "off" });
  const description = h("input", { name: "ApplicationDescription", maxlength: 1024, autocomplete: "off" });
  const editor = sqlEditor({ label: "Application code (optional)", rows: 8 });
  const error = h("div", { class: "slot" });
  const form = h(
    "form",
    { class: "card create", "aria-label": "Create application", hidden: true },
    h("h2", {}, "Create application"),
    h("div", { class: "row" }, h("label", {}, "Name", name), h("label", { class: "grow" }, "Description (optional)", description)),
    editor.el,
    error,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => (form.hidden = true) }, "Cancel"),
      h("button", { type: "submit", class: "primary" }, "Create"),
    ),
  );
  const submit = async () => {
    const input = { ApplicationName: name.value.trim() };
    if (description.value.trim()) input.ApplicationDescription = description.value.trim();
    if (editor.value().trim()) input.ApplicationCode = editor.value();
    try {
      await ka("CreateApplication", input);
      showError(error, null);
      editor.showError(null);
      form.hidden = true;
      form.reset();
      editor.set("");
      onCreated(input.ApplicationName);
    } catch (err) {
      if (!editor.showError(err)) showError(error, err);
      else showError(error, null);
    }
  };
  editor.onSubmit(() => form.requestSubmit());
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  return { form, open: () => ((form.hidden = false), name.focus()) };
}

export function analyticsPage(main) {
  const slot = h("div", { class: "slot" });
  const filter = h("input", { type: "search", placeholder: "Filter by name  ( / )", "data-filter": true, "aria-label": "Filter applications" });
  const body = h("tbody");
  let rows = [];
  const render = () => {
    const f = filter.value.trim().toLowerCase();
    const shown = rows.filter((r) => r.ApplicationName.toLowerCase().includes(f));
    body.replaceChildren(
      ...(shown.length
        ? shown.map((r) =>
            h(
              "tr",
              { "data-application": r.ApplicationName },
              h("td", {}, h("a", { href: `#/analytics/${encodeURIComponent(r.ApplicationName)}` }, r.ApplicationName)),
              h("td", {}, h("span", { class: `status status-${r.ApplicationStatus}` }, r.ApplicationStatus)),
              h("td", { class: "num" }, r.ApplicationVersionId ?? ""),
              h("td", { class: "io" }, r.InputDescriptions ? ioSummary(r) : ""),
              h("td", {}, fmtTime(r.CreateTimestamp)),
              h(
                "td",
                {},
                writable() && r.CreateTimestamp !== undefined
                  ? h(
                      "button",
                      { type: "button", class: "danger small", "aria-label": `Delete ${r.ApplicationName}`, onclick: () => deleteApplication(r, slot).then((d) => d && load()) },
                      "Delete",
                    )
                  : null,
              ),
            ),
          )
        : [h("tr", {}, h("td", { colspan: 6, class: "muted" }, rows.length ? "No application matches." : "No applications yet."))]),
    );
  };
  filter.addEventListener("input", render);
  let stopped = false;
  const load = async () => {
    try {
      const summaries = await listApplications();
      rows = await Promise.all(
        summaries.map(async (s) => {
          try {
            return (await ka("DescribeApplication", { ApplicationName: s.ApplicationName })).ApplicationDetail;
          } catch {
            return s; // deleted meanwhile
          }
        }),
      );
      rows.sort((a, b) => a.ApplicationName.localeCompare(b.ApplicationName));
      if (!stopped) render();
    } catch (e) {
      showError(slot, e);
    }
  };
  const create = createForm((n) => (location.hash = `#/analytics/${encodeURIComponent(n)}`));
  main.append(
    h(
      "div",
      { class: "title" },
      h("h1", {}, "Analytics applications"),
      h("span", { class: "spacer" }),
      filter,
      writable() ? h("button", { type: "button", class: "primary", "data-new": true, onclick: create.open }, "Create application") : null,
    ),
    create.form,
    slot,
    h(
      "table",
      { class: "list", "aria-label": "Applications" },
      h("thead", {}, h("tr", {}, ...["Name", "Status", "Version", "Inputs and outputs", "Created", ""].map((c) => h("th", { scope: "col", class: c === "Version" ? "num" : null }, c)))),
      body,
    ),
  );
  load();
  const timer = setInterval(() => !stopped && load(), 3000);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
