// Kinesis Analytics (SQL applications): the list, creating and deleting
// applications. The application's own page is analytics-app.js.

import { call, state } from "./api.js";
import { h, fmtTime, confirmThen, createCard, listPage } from "./ui.js";
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
  return confirmThen(
    {
      title: `Delete ${name}?`,
      body: "The application, its code and its configuration are deleted. Its input and output streams are kept.",
      confirmLabel: "Delete application",
      typed: name,
    },
    () => ka("DeleteApplication", { ApplicationName: name, CreateTimestamp: detail.CreateTimestamp }),
    slot,
  );
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
  const card = createCard({
    title: "Create application",
    fields: [h("div", { class: "row" }, h("label", {}, "Name", name), h("label", { class: "grow" }, "Description (optional)", description)), editor.el],
    first: name,
    submit: async () => {
      const input = { ApplicationName: name.value.trim() };
      if (description.value.trim()) input.ApplicationDescription = description.value.trim();
      if (editor.value().trim()) input.ApplicationCode = editor.value();
      try {
        await ka("CreateApplication", input);
      } catch (err) {
        editor.showError(err); // a CodeValidationException also at its line
        throw err;
      }
      card.form.reset();
      editor.set("");
      editor.showError(null);
      onCreated(input.ApplicationName);
    },
  });
  editor.onSubmit(() => card.form.requestSubmit());
  return card;
}

export function analyticsPage(main) {
  const page = listPage(main, {
    title: "Analytics applications",
    filterLabel: "Filter applications",
    tableLabel: "Applications",
    columns: ["Name", "Status", "Version", "Inputs and outputs", "Created", ""],
    attr: "data-application",
    name: (r) => r.ApplicationName,
    cells: (r, slot) => [
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
              { type: "button", class: "danger small", "aria-label": `Delete ${r.ApplicationName}`, onclick: () => deleteApplication(r, slot).then((d) => d && page.reload()) },
              "Delete",
            )
          : null,
      ),
    ],
    fetch: async () => {
      const summaries = await listApplications();
      // DescribeApplication for the version, inputs and outputs; a summary stays when deleted meanwhile.
      return Promise.all(summaries.map((s) => ka("DescribeApplication", { ApplicationName: s.ApplicationName }).then((d) => d.ApplicationDetail, () => s)));
    },
    create: writable() ? createForm((n) => (location.hash = `#/analytics/${encodeURIComponent(n)}`)) : null,
    createLabel: "Create application",
    empty: "No applications yet.",
    noMatch: "No application matches.",
  });
  return page.stop;
}
