// Data Streams: the list, creating and deleting streams.

import { call, all } from "./api.js";
import { h, showError, confirmDialog, fmtTime } from "./ui.js";

/** Deletes `name` after the user types its name; resolves true when deleted. */
export async function deleteStream(name, slot) {
  const ok = await confirmDialog({
    title: `Delete ${name}?`,
    body: "The stream, its shards and all their records are deleted. This cannot be undone.",
    confirmLabel: "Delete stream",
    typed: name,
  });
  if (!ok) return false;
  try {
    await call("DeleteStream", { StreamName: name, EnforceConsumerDeletion: true });
    showError(slot, null);
    return true;
  } catch (e) {
    showError(slot, e);
    return false;
  }
}

function createForm(onCreated, slot) {
  const name = h("input", { name: "StreamName", required: true, pattern: "[a-zA-Z0-9_.\\-]+", maxlength: 128, autocomplete: "off" });
  const mode = h("select", { name: "mode" }, h("option", { value: "PROVISIONED" }, "Provisioned"), h("option", { value: "ON_DEMAND" }, "On-demand"));
  const shards = h("input", { name: "ShardCount", type: "number", min: 1, value: 1, required: true });
  const shardsLabel = h("label", {}, "Shards", shards);
  mode.addEventListener("change", () => {
    shardsLabel.hidden = mode.value === "ON_DEMAND";
    shards.required = mode.value !== "ON_DEMAND";
  });
  const error = h("div", { class: "slot" });
  const form = h(
    "form",
    { class: "card create", "aria-label": "Create stream", hidden: true },
    h("h2", {}, "Create stream"),
    h("div", { class: "row" }, h("label", {}, "Name", name), h("label", {}, "Capacity mode", mode), shardsLabel),
    error,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => (form.hidden = true) }, "Cancel"),
      h("button", { type: "submit", class: "primary" }, "Create"),
    ),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = { StreamName: name.value.trim() };
    if (mode.value === "ON_DEMAND") input.StreamModeDetails = { StreamMode: "ON_DEMAND" };
    else input.ShardCount = Number(shards.value);
    try {
      await call("CreateStream", input);
      showError(error, null);
      form.hidden = true;
      form.reset();
      onCreated(input.StreamName);
    } catch (err) {
      showError(error, err);
    }
  });
  return { form, open: () => ((form.hidden = false), name.focus()) };
}

export function streamsPage(main) {
  const slot = h("div", { class: "slot" });
  const filter = h("input", { type: "search", placeholder: "Filter by name  ( / )", "data-filter": true, "aria-label": "Filter streams" });
  const body = h("tbody");
  let rows = [];
  const render = () => {
    const f = filter.value.trim().toLowerCase();
    const shown = rows.filter((r) => r.StreamName.toLowerCase().includes(f));
    body.replaceChildren(
      ...(shown.length
        ? shown.map((r) =>
            h(
              "tr",
              { "data-stream": r.StreamName },
              h("td", {}, h("a", { href: `#/streams/${encodeURIComponent(r.StreamName)}` }, r.StreamName)),
              h("td", {}, h("span", { class: `status status-${r.StreamStatus}` }, r.StreamStatus)),
              h("td", { class: "num" }, r.OpenShardCount ?? ""),
              h("td", {}, r.StreamModeDetails?.StreamMode ?? ""),
              h("td", { class: "num" }, r.RetentionPeriodHours !== undefined ? `${r.RetentionPeriodHours} h` : ""),
              h("td", {}, fmtTime(r.StreamCreationTimestamp)),
              h(
                "td",
                {},
                h("button", { type: "button", class: "danger small", "aria-label": `Delete ${r.StreamName}`, onclick: () => deleteStream(r.StreamName, slot).then((d) => d && load()) }, "Delete"),
              ),
            ),
          )
        : [h("tr", {}, h("td", { colspan: 7, class: "muted" }, rows.length ? "No stream matches." : "No streams yet."))]),
    );
  };
  filter.addEventListener("input", render);
  let stopped = false;
  const load = async () => {
    try {
      const summaries = await all("ListStreams", {}, "StreamSummaries");
      rows = await Promise.all(
        summaries.map(async (s) => {
          try {
            const d = await call("DescribeStreamSummary", { StreamName: s.StreamName });
            return d.StreamDescriptionSummary;
          } catch {
            return s; // deleted meanwhile
          }
        }),
      );
      rows.sort((a, b) => a.StreamName.localeCompare(b.StreamName));
      render();
    } catch (e) {
      showError(slot, e);
    }
  };
  const create = createForm(() => load(), slot);
  main.append(
    h(
      "div",
      { class: "title" },
      h("h1", {}, "Data Streams"),
      h("span", { class: "spacer" }),
      filter,
      h("button", { type: "button", class: "primary", "data-new": true, onclick: create.open }, "Create stream"),
    ),
    create.form,
    slot,
    h(
      "table",
      { class: "list", "aria-label": "Streams" },
      h("thead", {}, h("tr", {}, ...["Name", "Status", "Open shards", "Mode", "Retention", "Created", ""].map((c) => h("th", { scope: "col" }, c)))),
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
