// Data Streams: the list, creating and deleting streams.

import { call, all } from "./api.js";
import { h, fmtTime, confirmThen, createCard, listPage } from "./ui.js";

/** Deletes `name` after the user types its name; resolves true when deleted. */
export function deleteStream(name, slot) {
  return confirmThen(
    {
      title: `Delete ${name}?`,
      body: "The stream, its shards and all their records are deleted. This cannot be undone.",
      confirmLabel: "Delete stream",
      typed: name,
    },
    () => call("DeleteStream", { StreamName: name, EnforceConsumerDeletion: true }),
    slot,
  );
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
  const card = createCard({
    title: "Create stream",
    fields: [h("div", { class: "row" }, h("label", {}, "Name", name), h("label", {}, "Capacity mode", mode), shardsLabel)],
    first: name,
    submit: async () => {
      const input = { StreamName: name.value.trim() };
      if (mode.value === "ON_DEMAND") input.StreamModeDetails = { StreamMode: "ON_DEMAND" };
      else input.ShardCount = Number(shards.value);
      await call("CreateStream", input);
      card.form.reset();
      onCreated(input.StreamName);
    },
  });
  return card;
}

export function streamsPage(main) {
  const page = listPage(main, {
    title: "Data Streams",
    filterLabel: "Filter streams",
    tableLabel: "Streams",
    columns: ["Name", "Status", "Open shards", "Mode", "Retention", "Created", ""],
    attr: "data-stream",
    name: (r) => r.StreamName,
    cells: (r, slot) => [
      h("td", {}, h("a", { href: `#/streams/${encodeURIComponent(r.StreamName)}` }, r.StreamName)),
      h("td", {}, h("span", { class: `status status-${r.StreamStatus}` }, r.StreamStatus)),
      h("td", { class: "num" }, r.OpenShardCount ?? ""),
      h("td", {}, r.StreamModeDetails?.StreamMode ?? ""),
      h("td", { class: "num" }, r.RetentionPeriodHours !== undefined ? `${r.RetentionPeriodHours} h` : ""),
      h("td", {}, fmtTime(r.StreamCreationTimestamp)),
      h(
        "td",
        {},
        h("button", { type: "button", class: "danger small", "aria-label": `Delete ${r.StreamName}`, onclick: () => deleteStream(r.StreamName, slot).then((d) => d && page.reload()) }, "Delete"),
      ),
    ],
    fetch: async () => {
      const summaries = await all("ListStreams", {}, "StreamSummaries");
      return Promise.all(
        summaries.map(async (s) => {
          try {
            const d = await call("DescribeStreamSummary", { StreamName: s.StreamName });
            return d.StreamDescriptionSummary;
          } catch {
            return s; // deleted meanwhile
          }
        }),
      );
    },
    create: createForm(() => page.reload()),
    createLabel: "Create stream",
    empty: "No streams yet.",
    noMatch: "No stream matches.",
  });
  return page.stop;
}
