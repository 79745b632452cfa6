// Firehose: the delivery streams, creating (Direct PUT or a Data Streams
// source, to an S3 bucket of the embedded S3) and deleting them.

import { call, all, state } from "./api.js";
import { h, showError, fmtTime, confirmThen, createCard, listPage } from "./ui.js";
import { listBuckets } from "./s3.js";

export const FIREHOSE = "Firehose_20150804";

/** Whether the console may change state on this server. */
export const writable = () => state.server?.console !== "read-only";

/** The name in an ARN's resource part (`...:deliverystream/NAME`, `...:::bucket`). */
export const arnName = (arn) => (arn || "").replace(/^.*[:/]/, "");

/**
 * A destination's type and description: { type, d }. S3 destinations are
 * described twice (S3 and ExtendedS3): the extended one is theirs.
 */
export function destinationOf(dest = {}) {
  const keys = Object.keys(dest).filter((k) => k.endsWith("DestinationDescription"));
  const key = keys.find((k) => k !== "S3DestinationDescription") || keys[0];
  return key ? { type: key.replace(/DestinationDescription$/, ""), d: dest[key] } : { type: "", d: {} };
}

/** A stream's first destination: { type, d }. */
export const firstDestination = (desc) => destinationOf(desc.Destinations?.[0]);

/** Every delivery stream's name. */
export async function listNames() {
  const names = [];
  let start;
  for (;;) {
    const page = await call("ListDeliveryStreams", start ? { ExclusiveStartDeliveryStreamName: start, Limit: 100 } : { Limit: 100 }, FIREHOSE);
    names.push(...page.DeliveryStreamNames);
    if (!page.HasMoreDeliveryStreams || !page.DeliveryStreamNames.length) return names;
    start = page.DeliveryStreamNames.at(-1);
  }
}

/** Deletes `name` after the user types its name; resolves true when deleted. */
export function deleteDeliveryStream(name, slot) {
  return confirmThen(
    {
      title: `Delete ${name}?`,
      body: "The delivery stream and the records it has not delivered yet are deleted. Objects already in S3 stay. This cannot be undone.",
      confirmLabel: "Delete delivery stream",
      typed: name,
    },
    () => call("DeleteDeliveryStream", { DeliveryStreamName: name }, FIREHOSE),
    slot,
  );
}

const option = (value, label = value) => h("option", { value }, label);

function createForm(onCreated) {
  const field = (label, el) => h("label", {}, label, el);
  const name = h("input", { name: "DeliveryStreamName", required: true, pattern: "[a-zA-Z0-9_.\\-]+", maxlength: 64, autocomplete: "off" });
  const source = h("select", { name: "source" }, option("DirectPut", "Direct PUT"), option("KinesisStreamAsSource", "Kinesis data stream"));
  const kstream = h("select", { name: "KinesisStream", "aria-label": "Source stream" });
  const kstreamLabel = field("Source stream", kstream);
  kstreamLabel.hidden = true;
  const bucket = h("select", { name: "Bucket", required: true });
  const noBuckets = h("p", { class: "muted", hidden: true }, "No buckets yet: create one with the S3 API (for example aws s3 mb s3://NAME --endpoint-url ", location.origin, ").");
  const prefix = h("input", { name: "Prefix", placeholder: "optional, e.g. orders/", size: 24 });
  const errorPrefix = h("input", { name: "ErrorOutputPrefix", placeholder: "optional", size: 24 });
  const size = h("input", { name: "SizeInMBs", type: "number", min: 1, max: 128, value: 5, required: true });
  const interval = h("input", { name: "IntervalInSeconds", type: "number", min: 0, max: 900, value: 300, required: true });
  const compression = h("select", { name: "CompressionFormat" }, ...["UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"].map((c) => option(c)));
  const role = h("input", { name: "RoleARN", required: true, size: 36 });
  const loadChoices = async (error) => {
    role.value ||= `arn:aws:iam::${state.server.account}:role/firehose-delivery`;
    try {
      const chosen = bucket.value;
      const buckets = await listBuckets();
      bucket.replaceChildren(...buckets.map((b) => option(b)));
      if (buckets.includes(chosen)) bucket.value = chosen;
      noBuckets.hidden = buckets.length > 0;
      showError(error, null);
    } catch (e) {
      showError(error, e);
    }
  };
  let streamsError = null;
  source.addEventListener("change", async () => {
    kstreamLabel.hidden = source.value !== "KinesisStreamAsSource";
    if (kstreamLabel.hidden) return;
    try {
      const streams = await all("ListStreams", {}, "StreamSummaries");
      kstream.replaceChildren(...streams.map((s) => option(s.StreamARN, s.StreamName)));
    } catch (e) {
      if (streamsError) showError(streamsError, e);
    }
  });
  return createCard({
    title: "Create delivery stream",
    fields: [
      h("div", { class: "row" }, field("Name", name), field("Source", source), kstreamLabel),
      h("h3", {}, "Destination: Amazon S3"),
      h("div", { class: "row" }, field("Bucket", bucket), field("Prefix", prefix), field("Error output prefix", errorPrefix), field("Role ARN", role)),
      noBuckets,
      h("div", { class: "row" }, field("Buffer size (MiB)", size), field("Buffer interval (s, 0 = zero buffering)", interval), field("Compression", compression)),
    ],
    first: name,
    onOpen: (error) => {
      streamsError = error;
      loadChoices(error);
    },
    submit: async () => {
      const s3 = {
        RoleARN: role.value.trim(),
        BucketARN: `arn:aws:s3:::${bucket.value}`,
        BufferingHints: { SizeInMBs: Number(size.value), IntervalInSeconds: Number(interval.value) },
        CompressionFormat: compression.value,
      };
      if (prefix.value) s3.Prefix = prefix.value;
      if (errorPrefix.value) s3.ErrorOutputPrefix = errorPrefix.value;
      const input = { DeliveryStreamName: name.value.trim(), DeliveryStreamType: source.value, ExtendedS3DestinationConfiguration: s3 };
      if (source.value === "KinesisStreamAsSource") input.KinesisStreamSourceConfiguration = { KinesisStreamARN: kstream.value, RoleARN: s3.RoleARN };
      await call("CreateDeliveryStream", input, FIREHOSE);
      onCreated(input.DeliveryStreamName);
    },
  });
}

/** The source column: Direct PUT, or the Data Streams stream (a link). */
export function sourceCell(desc) {
  const k = desc.Source?.KinesisStreamSourceDescription;
  if (!k) return desc.DeliveryStreamType === "DirectPut" ? "Direct PUT" : desc.DeliveryStreamType;
  const stream = arnName(k.KinesisStreamARN);
  return h("span", {}, "Kinesis stream ", h("a", { href: `#/streams/${encodeURIComponent(stream)}`, "data-source-stream": stream }, stream));
}

/** The destination column: its type and, for S3, the bucket and prefix. */
export function destinationCell(desc) {
  const { type, d } = firstDestination(desc);
  const bucket = d.BucketARN || d.S3DestinationDescription?.BucketARN;
  return [type, bucket ? h("code", {}, ` s3://${arnName(bucket)}/${d.Prefix || ""}`) : null];
}

export function firehosePage(main) {
  const page = listPage(main, {
    title: "Firehose",
    filterLabel: "Filter delivery streams",
    tableLabel: "Delivery streams",
    columns: ["Name", "Status", "Source", "Destination", "Created", ""],
    attr: "data-delivery-stream",
    name: (r) => r.DeliveryStreamName,
    cells: (r, slot) => [
      h("td", {}, h("a", { href: `#/firehose/${encodeURIComponent(r.DeliveryStreamName)}` }, r.DeliveryStreamName)),
      h(
        "td",
        {},
        h("span", { class: `status status-${r.DeliveryStreamStatus}` }, r.DeliveryStreamStatus),
        r.FailureDescription ? h("span", { class: "status status-FAILING", title: r.FailureDescription.Details }, "failing") : null,
      ),
      h("td", {}, sourceCell(r)),
      h("td", {}, destinationCell(r)),
      h("td", {}, fmtTime(r.CreateTimestamp)),
      h(
        "td",
        {},
        writable()
          ? h("button", { type: "button", class: "danger small", "aria-label": `Delete ${r.DeliveryStreamName}`, onclick: () => deleteDeliveryStream(r.DeliveryStreamName, slot).then((d) => d && page.reload()) }, "Delete")
          : null,
      ),
    ],
    fetch: async () => {
      const described = await Promise.all(
        (await listNames()).map((n) =>
          call("DescribeDeliveryStream", { DeliveryStreamName: n }, FIREHOSE).then(
            (d) => d.DeliveryStreamDescription,
            () => null, // deleted meanwhile
          ),
        ),
      );
      return described.filter(Boolean);
    },
    create: writable() ? createForm(() => page.reload()) : null,
    createLabel: "Create delivery stream",
    aside: h("span", { class: "muted" }, "Read-only console"),
    empty: "No delivery streams yet.",
    noMatch: "No delivery stream matches.",
  });
  return page.stop;
}
