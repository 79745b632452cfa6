// Data Streams: the list, creating and deleting streams.

import { call, all } from "./api.js";
import { h, showError, fmtTime } from "./ui.js";
import { listPage, describeEach, deleteTyped } from "./listpage.js";

/** Deletes `name` after the user types its name; resolves true when deleted. */
export function deleteStream(name, slot) {
  const body = "The stream, its shards and all their records are deleted. This cannot be undone.";
  return deleteTyped(name, "stream", body, () => call("DeleteStream", { StreamName: name, EnforceConsumerDeletion: true }), slot);
}

function createForm(onCreated) {
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
  return listPage(main, {
    title: "Data Streams",
    label: "Streams",
    noun: "stream",
    plural: "streams",
    heads: ["Name", "Status", "Open shards", "Mode", "Retention", "Created", ""],
    name: (r) => r.StreamName,
    load: async () => {
      const summaries = await all("ListStreams", {}, "StreamSummaries");
      return describeEach(summaries, async (s) => (await call("DescribeStreamSummary", { StreamName: s.StreamName })).StreamDescriptionSummary);
    },
    row: (r, { slot, reload }) =>
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
          h("button", { type: "button", class: "danger small", "aria-label": `Delete ${r.StreamName}`, onclick: () => deleteStream(r.StreamName, slot).then((d) => d && reload()) }, "Delete"),
        ),
      ),
    create: { label: "Create stream", form: (reload) => createForm(() => reload()) },
  });
}
