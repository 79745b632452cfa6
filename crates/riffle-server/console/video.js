// Kinesis Video Streams: the list of streams (create, delete), and a
// stream's page: its description, the fragments timeline and an HLS
// player. Calls are the REST-JSON operations the SDKs make, media ones at
// the stream's data endpoint (GetDataEndpoint).

import { state, answer } from "./api.js";
import { sign } from "./sigv4.js";
import { h, showError, fmtTime, createCard, confirmThen, listPage } from "./ui.js";
import { fragmentTimeline } from "./video-timeline.js";

const HLS_MODULE = "./vendor/hls.light.min.mjs";

/** Calls a Kinesis Video operation: `POST <endpoint>/<path>` with `input`. */
export async function videoCall(path, input = {}, endpoint = location.origin) {
  const url = new URL(`/${path}`, endpoint).href;
  const body = JSON.stringify(input);
  let headers = { "content-type": "application/json", "x-riffle-console": "1" };
  if (state.credentials) {
    const region = state.server?.region || "us-east-1";
    headers = { ...headers, ...(await sign({ method: "POST", url, headers, body, credentials: state.credentials, region, service: "kinesisvideo" })) };
  }
  return answer(await fetch(url, { method: "POST", headers, body }));
}

/** Every stream, all pages of ListStreams. */
async function listStreams() {
  const out = [];
  let token;
  do {
    const page = await videoCall("listStreams", token ? { NextToken: token } : {});
    out.push(...(page.StreamInfoList || []));
    token = page.NextToken;
  } while (token);
  return out;
}

const readOnly = () => state.server?.console === "read-only";
const retention = (hours) => (hours ? `${hours} h` : "none");

/** Deletes the stream after the user types its name; resolves true when deleted. */
function deleteVideoStream(info, slot) {
  return confirmThen(
    {
      title: `Delete ${info.StreamName}?`,
      body: "The stream and all its fragments are deleted. This cannot be undone.",
      confirmLabel: "Delete stream",
      typed: info.StreamName,
    },
    () => videoCall("deleteStream", { StreamARN: info.StreamARN }),
    slot,
  );
}

function createForm(onCreated) {
  const name = h("input", { name: "StreamName", required: true, pattern: "[a-zA-Z0-9_.\\-]+", maxlength: 256, autocomplete: "off" });
  const media = h("input", { name: "MediaType", value: "video/h264", placeholder: "optional", autocomplete: "off" });
  const hours = h("input", { name: "DataRetentionInHours", type: "number", min: 0, max: 87600, value: 24, required: true });
  const device = h("input", { name: "DeviceName", placeholder: "optional", autocomplete: "off" });
  const card = createCard({
    title: "Create video stream",
    fields: [
      h(
        "div",
        { class: "row" },
        h("label", {}, "Name", name),
        h("label", {}, "Media type", media),
        h("label", {}, "Retention (hours, 0: none)", hours),
        h("label", {}, "Device name", device),
      ),
    ],
    first: name,
    submit: async () => {
      const input = { StreamName: name.value.trim(), DataRetentionInHours: Number(hours.value) };
      if (media.value.trim()) input.MediaType = media.value.trim();
      if (device.value.trim()) input.DeviceName = device.value.trim();
      await videoCall("createStream", input);
      card.form.reset();
      onCreated(input.StreamName);
    },
  });
  return card;
}

export function videoStreamsPage(main) {
  const endpoints = new Map(); // stream ARN -> PUT_MEDIA data endpoint
  const page = listPage(main, {
    title: "Video Streams",
    filterLabel: "Filter video streams",
    tableLabel: "Video streams",
    columns: ["Name", "Status", "Media type", "Retention", "Data endpoint (PutMedia)", "Created", ""],
    attr: "data-video-stream",
    name: (r) => r.StreamName,
    cells: (r, slot) => [
      h("td", {}, h("a", { href: `#/video/${encodeURIComponent(r.StreamName)}` }, r.StreamName)),
      h("td", {}, h("span", { class: `status status-${r.Status}` }, r.Status)),
      h("td", {}, r.MediaType ?? ""),
      h("td", { class: "num" }, retention(r.DataRetentionInHours)),
      h("td", {}, h("code", {}, endpoints.get(r.StreamARN) ?? "")),
      h("td", {}, fmtTime(r.CreationTime)),
      h(
        "td",
        {},
        readOnly()
          ? null
          : h("button", { type: "button", class: "danger small", "aria-label": `Delete ${r.StreamName}`, onclick: () => deleteVideoStream(r, slot).then((d) => d && page.reload()) }, "Delete"),
      ),
    ],
    fetch: async () => {
      const rows = await listStreams();
      await Promise.all(
        rows
          .filter((r) => r.Status === "ACTIVE" && !endpoints.has(r.StreamARN))
          .map(async (r) => {
            try {
              endpoints.set(r.StreamARN, (await videoCall("getDataEndpoint", { StreamARN: r.StreamARN, APIName: "PUT_MEDIA" })).DataEndpoint);
            } catch {
              // deleted meanwhile
            }
          }),
      );
      return rows;
    },
    create: readOnly() ? null : createForm(() => page.reload()),
    createLabel: "Create video stream",
    empty: "No video streams yet.",
    noMatch: "No stream matches.",
  });
  return page.stop;
}

let hlsModule = null;
/** hls.js, loaded the first time a stream is played. */
function loadHls() {
  hlsModule ??= import(HLS_MODULE).then((m) => m.default);
  return hlsModule;
}

/**
 * The player: an HLS session (GetHLSStreamingSessionURL at the data
 * endpoint) played by hls.js, or natively where the browser plays HLS.
 */
function player(name, errorSlot) {
  const video = h("video", { controls: true, muted: true, playsinline: true, "aria-label": `Video of ${name}` });
  video.muted = true;
  const note = h("p", { class: "muted", "aria-live": "polite" }, "Choose fragments on the timeline, or play live.");
  const link = h("a", { class: "session", target: "_blank", rel: "noopener", hidden: true }, "HLS playlist");
  let hls = null;
  const stop = () => {
    hls?.destroy();
    hls = null;
    video.removeAttribute("src");
    video.load();
  };
  const play = async (mode, selector, label) => {
    stop();
    showError(errorSlot, null);
    note.textContent = `Opening ${label}…`;
    try {
      const { DataEndpoint } = await videoCall("getDataEndpoint", { StreamName: name, APIName: "GET_HLS_STREAMING_SESSION_URL" });
      const input = { StreamName: name, PlaybackMode: mode, ContainerFormat: "FRAGMENTED_MP4" };
      if (selector) input.HLSFragmentSelector = selector;
      const url = (await videoCall("getHLSStreamingSessionURL", input, DataEndpoint)).HLSStreamingSessionURL;
      link.href = url;
      link.hidden = false;
      video.dataset.mode = mode;
      const Hls = await loadHls();
      if (Hls.isSupported()) {
        hls = new Hls({ liveDurationInfinity: true });
        hls.on(Hls.Events.ERROR, (_, d) => {
          if (d.fatal) showError(errorSlot, new Error(`The player stopped: ${d.type} ${d.details}`));
        });
        hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
        hls.loadSource(url);
        hls.attachMedia(video);
      } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
        video.src = url;
        video.play().catch(() => {});
      } else {
        throw new Error("This browser can play neither HLS nor Media Source Extensions.");
      }
      note.textContent = `Playing ${label}.`;
    } catch (e) {
      note.textContent = "";
      showError(errorSlot, e);
    }
  };
  return { video, note, link, play, stop };
}

export function videoStreamPage(main, name) {
  const cleanups = [];
  const slot = h("div", { class: "slot" });
  const facts = h("dl", { class: "facts" });
  const status = h("span", { class: "status" });
  const playError = h("div", { class: "slot" });
  const p = player(name, playError);
  cleanups.push(p.stop);
  let info = null;
  let lastJson = "";

  const timeline = fragmentTimeline(name, {
    list: (input) => videoCall("listFragments", input),
    onSelect: () => (playSel.disabled = !timeline.selection()),
  });
  const playSel = h("button", { type: "button", class: "primary", disabled: true, "data-play": "ON_DEMAND" }, "Play selection");
  const playLive = h("button", { type: "button", "data-play": "LIVE" }, "Play live");
  playSel.addEventListener("click", () => {
    const sel = timeline.selection();
    if (!sel) return;
    p.play("ON_DEMAND", { FragmentSelectorType: sel.clock, TimestampRange: { StartTimestamp: sel.start, EndTimestamp: sel.end } }, `fragments ${sel.label} on demand`);
  });
  playLive.addEventListener("click", () => p.play("LIVE", null, "live"));

  const deleteBtn = readOnly()
    ? null
    : h("button", {
        type: "button",
        class: "danger",
        onclick: async () => {
          if (info && (await deleteVideoStream(info, slot))) location.hash = "#/video";
        },
      }, "Delete stream");
  const hint = h("pre", { class: "hint" });

  const load = async () => {
    try {
      const d = (await videoCall("describeStream", { StreamName: name })).StreamInfo;
      info = d;
      const json = JSON.stringify(d);
      if (json !== lastJson) {
        lastJson = json;
        status.textContent = d.Status;
        status.className = `status status-${d.Status}`;
        let endpoint = "";
        try {
          endpoint = (await videoCall("getDataEndpoint", { StreamName: name, APIName: "PUT_MEDIA" })).DataEndpoint;
        } catch {
          // not active yet
        }
        const fact = (k, v, key) => [h("dt", {}, k), h("dd", { "data-fact": key }, v)];
        facts.replaceChildren(
          ...fact("ARN", h("code", {}, d.StreamARN), "arn"),
          ...fact("Media type", d.MediaType ?? "", "mediaType"),
          ...fact("Retention", d.DataRetentionInHours ? `${d.DataRetentionInHours} hours` : "none (fragments are not kept)", "retention"),
          ...fact("Device", d.DeviceName ?? "", "device"),
          ...fact("KMS key", h("code", {}, d.KmsKeyId ?? ""), "kms"),
          ...fact("Version", h("code", {}, d.Version), "version"),
          ...fact("Created", fmtTime(d.CreationTime), "created"),
          ...fact("Data endpoint", h("code", {}, endpoint), "endpoint"),
        );
        hint.textContent = `riffle video put FILE --stream ${name} --endpoint ${endpoint || location.origin}`;
      }
      showError(slot, null);
    } catch (e) {
      showError(slot, e);
    }
  };

  main.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumbs" }, h("a", { href: "#/video" }, "Video Streams"), " / ", name),
    h("div", { class: "title" }, h("h1", {}, name), status, h("span", { class: "spacer" }), deleteBtn),
    slot,
    h("section", { "aria-labelledby": "h-vsummary" }, h("h2", { id: "h-vsummary", class: "sr-only" }, "Description"), facts),
    h(
      "section",
      { "aria-labelledby": "h-fragments" },
      h("h2", { id: "h-fragments" }, "Fragments"),
      timeline.element,
    ),
    h(
      "section",
      { "aria-labelledby": "h-player", class: "player" },
      h("h2", { id: "h-player" }, "Player"),
      h("div", { class: "row" }, playSel, playLive, p.link, h("span", { class: "spacer" })),
      p.note,
      playError,
      p.video,
    ),
    h(
      "section",
      { "aria-labelledby": "h-upload" },
      h("h2", { id: "h-upload" }, "Upload"),
      h("p", { class: "muted" }, "Upload a Matroska, WebM or MP4 file (H.264) with PutMedia, as the producer SDK does; add ", h("code", {}, "--realtime"), " to send each frame at its time, like a camera."),
      hint,
    ),
  );
  load().then(() => timeline.load());
  const timer = setInterval(load, 3000);
  cleanups.push(() => clearInterval(timer), timeline.stop);
  return () => cleanups.forEach((f) => f());
}

