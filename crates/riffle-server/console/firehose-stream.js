// One delivery stream: delivery errors, its description, what it buffers
// against its hints, freshness and delivery counters over time, the
// newest objects in its bucket with download links, and a test record.

import { call, getJSON } from "./api.js";
import { h, showError, fmtTime, fmtBytes, fmtDuration, timeChart } from "./ui.js";
import { FIREHOSE, writable, arnName, destinationOf, firstDestination, sourceCell, deleteDeliveryStream } from "./firehose.js";
import { listObjects, downloadUrl } from "./s3.js";

const HISTORY = 300; // seconds of counters kept for the charts
const MAX_OBJECTS = 50;

/** The part of an S3 key prefix before its first expression (`!{...}`). */
function staticPrefix(p) {
  const i = (p || "").indexOf("!{");
  return i < 0 ? p || "" : p.slice(0, i);
}

/** The hints a destination buffers by, wherever its type keeps them. */
function hintsOf(d) {
  const b = d.BufferingHints || d.S3DestinationDescription?.BufferingHints || {};
  return { sizeBytes: (b.SizeInMBs ?? 5) * 1024 * 1024, intervalSecs: b.IntervalInSeconds ?? 300, known: !!(d.BufferingHints || d.S3DestinationDescription) };
}

/** A bar showing `value` of `max`, labelled. */
function bar(label, value, max, text) {
  const pct = max > 0 ? Math.min(100, (value / max) * 100) : value > 0 ? 100 : 0;
  return h(
    "div",
    { class: "fillbar", role: "meter", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": max, "aria-valuenow": value, title: text },
    h("span", { class: `fillbar-in${pct >= 100 ? " full" : ""}`, style: `width:${pct.toFixed(1)}%` }),
    h("span", { class: "fillbar-text" }, text),
  );
}

const onOff = (v) => (v ? "enabled" : "disabled");

/** The description of one destination, as facts. */
function destinationFacts(dest, info) {
  const { type, d } = destinationOf(dest);
  const fact = (k, v) => (v === undefined || v === null || v === "" ? [] : [h("dt", {}, k), h("dd", {}, v)]);
  const bucket = d.BucketARN || d.S3DestinationDescription?.BucketARN;
  const processors = (d.ProcessingConfiguration?.Enabled && d.ProcessingConfiguration.Processors) || [];
  const conv = d.DataFormatConversionConfiguration;
  const convOut = conv?.OutputFormatConfiguration?.Serializer && Object.keys(conv.OutputFormatConfiguration.Serializer)[0];
  const hints = d.BufferingHints || d.S3DestinationDescription?.BufferingHints;
  const delivered = info ? info.delivered : true;
  return h(
    "div",
    { class: "destination", "data-destination-type": type },
    h(
      "h3",
      {},
      type || "unknown",
      " ",
      h("code", { class: "muted" }, dest.DestinationId),
      " ",
      delivered
        ? h("span", { class: "badge delivered" }, "delivered")
        : h("span", { class: "badge stored-only", title: "Riffle stores and describes this destination; its records stay buffered." }, "stored, not delivered"),
    ),
    h(
      "dl",
      { class: "facts" },
      ...fact("Bucket", bucket ? h("code", {}, arnName(bucket)) : null),
      ...fact("Prefix", d.Prefix ? h("code", {}, d.Prefix) : null),
      ...fact("Error output prefix", d.ErrorOutputPrefix ? h("code", {}, d.ErrorOutputPrefix) : null),
      ...fact("Endpoint", d.EndpointConfiguration?.Url ? h("code", {}, d.EndpointConfiguration.Url) : null),
      ...fact("Buffering", hints ? `${hints.SizeInMBs} MiB or ${hints.IntervalInSeconds} s, whichever comes first` : null),
      ...fact("Compression", d.CompressionFormat),
      ...fact("Processing", processors.length ? processors.map((p) => p.Type).join(", ") : "none"),
      ...fact("Format conversion", conv ? `${onOff(conv.Enabled)}${convOut ? ` (to ${convOut.replace(/Ser[Dd]e$/, "")})` : ""}` : "none"),
      ...fact("Dynamic partitioning", d.DynamicPartitioningConfiguration ? onOff(d.DynamicPartitioningConfiguration.Enabled) : null),
      ...fact("Source record backup", d.S3BackupMode),
    ),
  );
}

/** A table of S3 objects, newest first, each with a download link. */
async function objectRows(bucket, objects, what) {
  if (!objects.length) return [h("tr", {}, h("td", { colspan: 4, class: "muted" }, `No ${what} yet.`))];
  const links = await Promise.all(objects.map((o) => downloadUrl(bucket, o.key)));
  return objects.map((o, i) =>
    h(
      "tr",
      { "data-key": o.key },
      h("td", {}, h("code", {}, o.key)),
      h("td", { class: "num" }, fmtBytes(o.size)),
      h("td", { class: "nowrap" }, fmtTime(o.modified / 1000)),
      h("td", {}, h("a", { href: links[i], download: o.key.split("/").pop(), "aria-label": `Download ${o.key}` }, "Download")),
    ),
  );
}

const objectTable = (label, body) =>
  h("div", { class: "scroll" }, h("table", { class: "list objects", "aria-label": label }, h("thead", {}, h("tr", {}, ...["Key", "Size", "Last modified", ""].map((c, i) => h("th", { scope: "col", class: i === 1 ? "num" : null }, c)))), body));

export function deliveryStreamPage(main, name) {
  const cleanups = [];
  const slot = h("div", { class: "slot" });
  const failure = h("div", { class: "slot", "aria-live": "polite" });
  const status = h("span", { class: "status" });
  const facts = h("dl", { class: "facts" });
  const destBox = h("div");
  let desc = null;
  let info = null;
  let lastDescJson = "";
  let lastFailure = "";

  // Buffer fill.
  const fillSummary = h("p", { class: "muted" });
  const fillBody = h("tbody");
  const renderFill = () => {
    if (!desc || !info) return;
    const { d } = firstDestination(desc);
    const hints = hintsOf(d);
    const parts = info.partitions;
    const inParts = parts.reduce((n, p) => n + p.records, 0);
    fillSummary.textContent =
      `${info.unreadRecords} record${info.unreadRecords === 1 ? "" : "s"} accepted and not yet read; ` +
      `${inParts} in ${parts.length} partition buffer${parts.length === 1 ? "" : "s"}; ` +
      `${info.pending.records} in objects being written or waiting for a retry` +
      (info.staged.records ? `; ${info.staged.records} waiting for the Lambda processor` : "") +
      (hints.known ? `. Hints: ${fmtBytes(hints.sizeBytes)} or ${hints.intervalSecs} s.` : ".");
    fillBody.replaceChildren(
      ...(parts.length
        ? parts.map((p) => {
            const keys = Object.entries(p.keys);
            const elapsed = p.intervalElapsedSeconds ?? 0;
            return h(
              "tr",
              { "data-partition": keys.map(([k, v]) => `${k}=${v}`).join(",") || "(all)", "data-records": p.records, "data-bytes": p.bytes },
              h("td", {}, keys.length ? keys.map(([k, v]) => h("div", {}, h("code", {}, `${k.replace(/^partitionKeyFrom\w+:/, "")}=${v}`))) : h("span", { class: "muted" }, "all records")),
              h("td", { class: "num" }, String(p.records)),
              h("td", { class: "wide" }, bar("Bytes buffered of the size hint", p.bytes, hints.sizeBytes, `${fmtBytes(p.bytes)} of ${fmtBytes(hints.sizeBytes)}`)),
              h("td", { class: "wide" }, bar("Seconds waited of the interval hint", elapsed, hints.intervalSecs, `${fmtDuration(elapsed)} of ${hints.intervalSecs} s`)),
              h("td", { class: "num" }, p.oldestAgeSeconds !== undefined ? `${p.oldestAgeSeconds.toFixed(1)} s` : ""),
            );
          })
        : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No partition buffer holds records."))]),
    );
  };

  // Freshness and counters over time.
  const history = [];
  const counterBox = h("dl", { class: "facts counters" });
  const freshBox = h("div", { class: "chart", "aria-label": "Data freshness over time" });
  const countBox = h("div", { class: "chart", "aria-label": "Deliveries and failed attempts over time" });
  let freshChart = null;
  let countChart = null; // made once the page is laid out
  const renderCounters = () => {
    const c = info.counters;
    const fact = (k, v) => [h("dt", {}, k), h("dd", { "data-counter": k }, String(v))];
    counterBox.replaceChildren(
      ...fact("Incoming records", c.IncomingRecords),
      ...fact("Incoming bytes", fmtBytes(c.IncomingBytes)),
      ...fact("Objects delivered to S3", c["DeliveryToS3.Success"]),
      ...fact("Records delivered to S3", c["DeliveryToS3.Records"]),
      ...fact("Bytes delivered to S3", fmtBytes(c["DeliveryToS3.Bytes"])),
      ...(c["DeliveryToRedshift.Success"] ? [...fact("COPY commands to Redshift", c["DeliveryToRedshift.Success"]), ...fact("Rows loaded into Redshift", c["DeliveryToRedshift.Records"])] : []),
      ...(c.PartitionCount || c.PartitionCountExceeded ? [...fact("Active partitions", c.PartitionCount), ...fact("Partition limit met", c.PartitionCountExceeded ? "yes" : "no")] : []),
      ...(c["JQProcessing.Duration"] ? fact("JQ processing time", `${c["JQProcessing.Duration"].toFixed(3)} s`) : []),
      ...fact("Failed delivery attempts", c.FailedAttempts),
      ...fact("Throttled records", c.ThrottledRecords),
      ...fact("Data freshness", `${info.dataFreshnessSeconds.toFixed(1)} s`),
    );
    const t = Date.now() / 1000;
    history.push({ t, fresh: info.dataFreshnessSeconds, ok: c["DeliveryToS3.Success"] + c["DeliveryToRedshift.Success"], failed: c.FailedAttempts, incoming: c.IncomingRecords });
    while (history.length && history[0].t < t - HISTORY) history.shift();
    const xs = history.map((p) => p.t);
    const delta = (k) => history.map((p, i) => (i ? Math.max(0, p[k] - history[i - 1][k]) : 0));
    freshChart?.update([xs, history.map((p) => p.fresh)]);
    countChart?.update([xs, delta("ok"), delta("failed"), delta("incoming")]);
  };

  // Recent objects.
  const objectsBody = h("tbody");
  const errorsBody = h("tbody");
  const objectsNote = h("p", { class: "muted" });
  const objectsError = h("div", { class: "slot" });
  let lastObjects = "";
  let drawnAt = 0;
  const loadObjects = async () => {
    if (!desc) return;
    const { d } = firstDestination(desc);
    const bucketArn = d.BucketARN || d.S3DestinationDescription?.BucketARN;
    if (!bucketArn) {
      objectsNote.textContent = "This destination has no S3 bucket.";
      return;
    }
    const bucket = arnName(bucketArn);
    const s3d = d.BucketARN ? d : d.S3DestinationDescription;
    const data = staticPrefix(s3d.Prefix);
    const errors = s3d.ErrorOutputPrefix ? staticPrefix(s3d.ErrorOutputPrefix) : null;
    objectsNote.replaceChildren("Newest first, from ", h("code", {}, `s3://${bucket}/${data}`), ...(errors !== null ? [" and errors from ", h("code", {}, `s3://${bucket}/${errors}`), "."] : [" (errors go under it, in folders named after the error, such as processing-failed/)."]));
    try {
      const isError = (k) => (errors !== null ? k.startsWith(errors) : /^[a-z-]+-failed\//.test(k.slice(data.length)));
      const listed = await listObjects(bucket, data);
      const errorObjects = (errors !== null ? await listObjects(bucket, errors) : listed.filter((o) => isError(o.key))).slice(0, MAX_OBJECTS);
      const dataObjects = listed.filter((o) => !isError(o.key)).slice(0, MAX_OBJECTS);
      // Links are presigned for an hour: rows are redrawn when the objects
      // change, and every half hour.
      const seen = JSON.stringify([bucket, dataObjects, errorObjects]);
      if (seen !== lastObjects || Date.now() - drawnAt > 1800e3) {
        objectsBody.replaceChildren(...(await objectRows(bucket, dataObjects, "objects")));
        errorsBody.replaceChildren(...(await objectRows(bucket, errorObjects, "error objects")));
        lastObjects = seen;
        drawnAt = Date.now();
      }
      showError(objectsError, null);
    } catch (e) {
      showError(objectsError, e);
    }
  };

  // Put a test record.
  const data = h("textarea", { name: "Data", rows: 2, "aria-label": "Data", placeholder: "Text or JSON; a newline is not added" });
  const putResult = h("p", { class: "muted", "aria-live": "polite" });
  const putError = h("div", { class: "slot" });
  const putButton = h("button", { type: "submit", class: "primary", disabled: !writable() }, "Put record");
  const putForm = h("form", { class: "put", "aria-label": "Put a record" }, h("label", { class: "wide" }, "Data", data), putError, h("div", { class: "actions" }, putResult, putButton));
  putForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    let bin = "";
    for (const b of new TextEncoder().encode(data.value)) bin += String.fromCharCode(b);
    try {
      const out = await call("PutRecord", { DeliveryStreamName: name, Record: { Data: btoa(bin) } }, FIREHOSE);
      showError(putError, null);
      putResult.textContent = `Accepted as record ${out.RecordId}.`;
      load();
    } catch (err) {
      putResult.textContent = "";
      showError(putError, err);
    }
  });

  const deleteBtn = writable()
    ? h("button", { type: "button", class: "danger", onclick: async () => (await deleteDeliveryStream(name, slot)) && (location.hash = "#/firehose") }, "Delete delivery stream")
    : null;

  const load = async () => {
    try {
      const [dd, i] = await Promise.all([call("DescribeDeliveryStream", { DeliveryStreamName: name }, FIREHOSE), getJSON(`/_riffle/console/api/firehose/${encodeURIComponent(name)}`)]);
      desc = dd.DeliveryStreamDescription;
      info = i;
      status.textContent = desc.DeliveryStreamStatus;
      status.className = `status status-${desc.DeliveryStreamStatus}`;
      const f = desc.FailureDescription;
      // Redrawn (and announced) only when it changes.
      const fj = JSON.stringify(f ?? null);
      if (fj !== lastFailure) {
        lastFailure = fj;
        failure.replaceChildren(
          ...(f
            ? [h("div", { class: "error failure", role: "alert", "data-failure-type": f.Type }, h("strong", {}, "Delivery is failing "), h("span", { class: "muted" }, `(${f.Type})`), h("p", { class: "details" }, f.Details))]
            : []),
        );
      }
      const dj = JSON.stringify({ ...desc, FailureDescription: null, DeliveryStreamStatus: null });
      if (dj !== lastDescJson) {
        lastDescJson = dj;
        const fact = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
        const sse = desc.DeliveryStreamEncryptionConfiguration;
        facts.replaceChildren(
          ...fact("ARN", h("code", {}, desc.DeliveryStreamARN)),
          ...fact("Source", sourceCell(desc)),
          ...fact("Created", fmtTime(desc.CreateTimestamp)),
          ...fact("Version", desc.VersionId),
          ...fact("Encryption", sse?.Status ?? "DISABLED"),
        );
        destBox.replaceChildren(...desc.Destinations.map((dest, n) => destinationFacts(dest, info.destinations[n])));
      }
      renderFill();
      renderCounters();
      showError(slot, null);
    } catch (e) {
      showError(slot, e);
    }
  };

  const kinesisSource = () => desc?.Source?.KinesisStreamSourceDescription;
  main.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumbs" }, h("a", { href: "#/firehose" }, "Firehose"), " / ", name),
    h("div", { class: "title" }, h("h1", {}, name), status, h("span", { class: "spacer" }), deleteBtn),
    slot,
    failure,
    h("section", { "aria-labelledby": "h-summary" }, h("h2", { id: "h-summary", class: "sr-only" }, "Summary"), facts),
    h("section", { "aria-labelledby": "h-dest" }, h("h2", { id: "h-dest" }, "Destination"), destBox),
    h(
      "section",
      { "aria-labelledby": "h-fill" },
      h("h2", { id: "h-fill" }, "Buffer fill"),
      fillSummary,
      h("table", { class: "list fill", "aria-label": "Partition buffers" }, h("thead", {}, h("tr", {}, ...["Partition", "Records", "Size", "Interval", "Oldest record"].map((c, i) => h("th", { scope: "col", class: i === 1 || i === 4 ? "num" : null }, c)))), fillBody),
    ),
    h(
      "section",
      { "aria-labelledby": "h-fresh" },
      h("h2", { id: "h-fresh" }, "Delivery"),
      h("p", { class: "muted" }, "Counters as CloudWatch names them; DataFreshness is the age of the oldest record not yet delivered. Charts cover the last five minutes this page was open."),
      counterBox,
      h("div", { class: "charts" }, freshBox, countBox),
    ),
    h(
      "section",
      { "aria-labelledby": "h-objects" },
      h("h2", { id: "h-objects" }, "Recent objects"),
      objectsNote,
      objectsError,
      objectTable("Objects", objectsBody),
      h("h3", {}, "Error output"),
      objectTable("Error objects", errorsBody),
    ),
    h("section", { "aria-labelledby": "h-put" }, h("h2", { id: "h-put" }, "Put a test record"), putForm),
  );
  freshChart = timeChart(freshBox, ["DataFreshness (s)"], { yLabel: "seconds", span: HISTORY });
  countChart = timeChart(countBox, ["Objects delivered", "Failed attempts", "Records in"], { yLabel: "per poll", span: HISTORY });
  cleanups.push(() => freshChart.destroy(), () => countChart.destroy());
  load().then(() => {
    loadObjects();
    if (kinesisSource()) {
      putButton.disabled = true;
      putResult.replaceChildren("Records come from the source stream: put them there (", sourceCell(desc), ").");
    }
  });
  const timer = setInterval(load, 1000);
  const objectsTimer = setInterval(loadObjects, 2000);
  cleanups.push(() => clearInterval(timer), () => clearInterval(objectsTimer));
  return () => cleanups.forEach((f) => f());
}
