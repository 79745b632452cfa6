// Kinesis Analytics (SQL applications): the list, creating and deleting
// applications. The application's own page is analytics-app.js.

import { call, state } from "./api.js";
import { h, showError, fmtTime } from "./ui.js";
import { listPage, describeEach, deleteTyped } from "./listpage.js";
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
export function deleteApplication(detail, slot) {
  const name = detail.ApplicationName;
  const body = "The application, its code and its configuration are deleted. Its input and output streams are kept.";
  return deleteTyped(name, "application", body, () => ka("DeleteApplication", { ApplicationName: name, CreateTimestamp: detail.CreateTimestamp }), slot);
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
  return listPage(main, {
    title: "Analytics applications",
    label: "Applications",
    noun: "application",
    plural: "applications",
    heads: ["Name", "Status", "Version", "Inputs and outputs", "Created", ""],
    numeric: ["Version"],
    name: (r) => r.ApplicationName,
    load: async () => describeEach(await listApplications(), async (s) => (await ka("DescribeApplication", { ApplicationName: s.ApplicationName })).ApplicationDetail),
    row: (r, { slot, reload }) =>
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
                { type: "button", class: "danger small", "aria-label": `Delete ${r.ApplicationName}`, onclick: () => deleteApplication(r, slot).then((d) => d && reload()) },
                "Delete",
              )
            : null,
        ),
      ),
    create: writable() ? { label: "Create application", form: () => createForm((n) => (location.hash = `#/analytics/${encodeURIComponent(n)}`)) } : null,
  });
}
