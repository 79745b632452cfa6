// A video stream's fragments over a time range (ListFragments), drawn on a
// time axis: a block per fragment, as wide as its duration, and the gaps
// between them. Hover or focus shows a fragment; click, Enter or Space
// chooses it, Shift extends the choice; arrows, Home and End move along.

import { h, s, showError, fmtBytes } from "./ui.js";

/** Gaps longer than this are drawn (the server's discontinuity threshold). */
const GAP_MS = 50;
/** ListFragments pages read at most (1,000 fragments each). */
const MAX_PAGES = 10;
const RANGES = [
  ["300", "Last 5 minutes"],
  ["3600", "Last hour"],
  ["86400", "Last 24 hours"],
  ["custom", "Custom range"],
];
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((x) => x * 1000);

/** `2026-11-30 02:31:05.250Z` for epoch milliseconds. */
export function fmtMs(ms) {
  return new Date(ms).toISOString().replace("T", " ");
}

const seconds = (ms) => `${Number((ms / 1000).toFixed(3))} s`;

/** Fragment numbers are decimal strings too long for a Number. */
const byNumber = (a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);

/** Each fragment's start on `clock` and its end, in epoch milliseconds, sorted. */
function placed(fragments, clock) {
  const key = clock === "SERVER_TIMESTAMP" ? "ServerTimestamp" : "ProducerTimestamp";
  return fragments
    .map((f) => {
      const t = Math.round(f[key] * 1000);
      return { f, t, end: t + (f.FragmentLengthInMilliseconds ?? 0) };
    })
    .sort((a, b) => a.t - b.t || byNumber(a.f.FragmentNumber, b.f.FragmentNumber));
}

/** The gaps longer than GAP_MS between consecutive fragments. */
export function gapsOf(items) {
  const out = [];
  let reach = -Infinity;
  for (const it of items) {
    if (it.t - reach > GAP_MS && reach > -Infinity) out.push({ from: reach, to: it.t });
    reach = Math.max(reach, it.end);
  }
  return out;
}

function ticks(t0, t1, width) {
  const step = STEPS.find((st) => (t1 - t0) / st <= Math.max(2, Math.floor(width / 130))) ?? STEPS[STEPS.length - 1];
  const out = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) out.push(t);
  return { step, at: out };
}

function tickLabel(t, step) {
  const iso = new Date(t).toISOString();
  return step < 60000 ? iso.slice(11, 19) : iso.slice(11, 16);
}

/**
 * The timeline of stream `name`: `list(input)` is ListFragments,
 * `onSelect()` is told when the choice changes. Returns the element,
 * `load()`, `selection()` (the chosen fragments' range on the chosen clock,
 * in epoch seconds, or null) and `stop()`.
 */
export function fragmentTimeline(name, { list, onSelect }) {
  const clockSel = h(
    "select",
    { name: "clock", "aria-label": "Clock" },
    h("option", { value: "PRODUCER_TIMESTAMP" }, "Producer timestamps"),
    h("option", { value: "SERVER_TIMESTAMP" }, "Server timestamps"),
  );
  const rangeSel = h("select", { name: "range", "aria-label": "Time range" }, ...RANGES.map(([v, l]) => h("option", { value: v }, l)));
  rangeSel.value = "3600";
  const from = h("input", { name: "from", type: "datetime-local", step: 1, "aria-label": "From" });
  const to = h("input", { name: "to", type: "datetime-local", step: 1, "aria-label": "To" });
  const fromLabel = h("label", { hidden: true }, "From", from);
  const toLabel = h("label", { hidden: true }, "To", to);
  rangeSel.addEventListener("change", () => {
    const custom = rangeSel.value === "custom";
    fromLabel.hidden = toLabel.hidden = !custom;
    if (custom && !from.value) {
      const local = (ms) => new Date(ms - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 19);
      from.value = local(Date.now() - 3600000);
      to.value = local(Date.now());
    }
  });
  const form = h(
    "form",
    { class: "row timelineform", "aria-label": "Fragments to show" },
    h("label", {}, "Clock", clockSel),
    h("label", {}, "Range", rangeSel),
    fromLabel,
    toLabel,
    h("button", { type: "submit" }, "Show fragments"),
    h("button", { type: "button", "data-select-all": true, onclick: () => choose(0, items.length - 1) }, "Select all"),
  );
  const error = h("div", { class: "slot" });
  const summary = h("p", { class: "muted timeline-summary", "aria-live": "polite" }, "Loading fragments…");
  const box = h("div", { class: "timeline" });
  const details = h("dl", { class: "facts fragment", "aria-live": "polite" });
  const chosen = h("p", { class: "chosen" });
  const element = h("div", {}, form, error, summary, box, details, chosen);

  let items = [];
  let clock = "PRODUCER_TIMESTAMP";
  let sel = null; // [first, last] indexes into items
  let anchor = 0;
  let focusIdx = 0;
  let lastJson = "";
  let stopped = false;

  const range = () => {
    if (rangeSel.value === "custom") {
      const a = new Date(from.value).getTime();
      const b = new Date(to.value).getTime();
      if (!(a < b)) throw new Error("Choose a range whose end is after its start.");
      return [a, b];
    }
    const now = Date.now();
    return [now - Number(rangeSel.value) * 1000, now];
  };

  const show = (i) => {
    const it = items[i];
    if (!it) return details.replaceChildren();
    const f = it.f;
    const fact = (k, v, key) => [h("dt", {}, k), h("dd", { "data-fact": key }, v)];
    details.replaceChildren(
      ...fact("Fragment", h("code", {}, f.FragmentNumber), "number"),
      ...fact("Producer timestamp", fmtMs(Math.round(f.ProducerTimestamp * 1000)), "producer"),
      ...fact("Server timestamp", fmtMs(Math.round(f.ServerTimestamp * 1000)), "server"),
      ...fact("Duration", seconds(f.FragmentLengthInMilliseconds ?? 0), "duration"),
      ...fact("Size", fmtBytes(f.FragmentSizeInBytes ?? 0), "size"),
    );
  };

  const paintSelection = () => {
    for (const r of box.querySelectorAll("rect.frag")) {
      const i = Number(r.dataset.index);
      const on = !!sel && i >= sel[0] && i <= sel[1];
      r.classList.toggle("selected", on);
      r.setAttribute("aria-pressed", String(on));
    }
    if (!sel) {
      chosen.textContent = items.length ? "No fragments chosen." : "";
      return;
    }
    const a = items[sel[0]];
    const b = items[sel[1]];
    const n = sel[1] - sel[0] + 1;
    chosen.textContent = `Chosen: ${n} fragment${n === 1 ? "" : "s"}, ${fmtMs(a.t)} to ${fmtMs(b.end)} (${seconds(b.end - a.t)}).`;
  };

  function choose(a, b) {
    if (!items.length) return;
    sel = [Math.min(a, b), Math.max(a, b)];
    paintSelection();
    onSelect?.();
  }

  const focusAt = (i) => {
    const rects = box.querySelectorAll("rect.frag");
    if (!rects.length) return;
    focusIdx = Math.max(0, Math.min(rects.length - 1, i));
    rects.forEach((r, k) => r.setAttribute("tabindex", k === focusIdx ? "0" : "-1"));
    rects[focusIdx].focus();
  };

  const pick = (i, extend) => {
    if (extend) choose(anchor, i);
    else {
      anchor = i;
      choose(i, i);
    }
  };

  const draw = () => {
    if (!items.length) {
      box.replaceChildren();
      return;
    }
    const W = 1000, TOP = 6, BAR = 40, AXIS = TOP + BAR + 6, H = AXIS + 20;
    let t0 = items[0].t;
    let t1 = Math.max(...items.map((it) => it.end));
    const pad = Math.max(500, (t1 - t0) * 0.02);
    t0 -= pad;
    t1 += pad;
    const x = (t) => ((t - t0) / (t1 - t0)) * W;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "fragments", role: "group", "aria-label": `Fragments of ${name} on a time axis; arrow keys move, Enter chooses, Shift+Enter extends` });
    const { step, at } = ticks(t0, t1, W);
    for (const t of at) {
      svg.append(
        s("line", { class: "tick", x1: x(t), x2: x(t), y1: TOP - 4, y2: AXIS }),
        s("text", { class: "ticklabel", x: Math.min(Math.max(x(t), 24), W - 24), y: H - 4, "text-anchor": "middle" }, tickLabel(t, step)),
      );
    }
    svg.append(s("line", { class: "axis", x1: 0, x2: W, y1: AXIS, y2: AXIS }));
    for (const g of gapsOf(items)) {
      const gx = x(g.from);
      const gw = Math.max(2, x(g.to) - gx);
      svg.append(
        s(
          "g",
          { class: "gap", "data-from": g.from, "data-to": g.to },
          s("title", {}, `No fragments for ${seconds(g.to - g.from)} (${fmtMs(g.from)} to ${fmtMs(g.to)})`),
          s("rect", { x: gx, y: TOP + BAR / 2 - 3, width: gw, height: 6 }),
          gw > 70 ? s("text", { x: gx + gw / 2, y: TOP + BAR / 2 - 8, "text-anchor": "middle" }, `gap ${seconds(g.to - g.from)}`) : null,
        ),
      );
    }
    items.forEach((it, i) => {
      const fx = x(it.t);
      const fw = Math.max(2, x(it.end) - fx - 1);
      const f = it.f;
      const label = `Fragment ${f.FragmentNumber}, producer ${fmtMs(Math.round(f.ProducerTimestamp * 1000))}, server ${fmtMs(Math.round(f.ServerTimestamp * 1000))}, ${seconds(f.FragmentLengthInMilliseconds ?? 0)}, ${fmtBytes(f.FragmentSizeInBytes ?? 0)}`;
      const r = s(
        "rect",
        {
          class: "frag",
          x: fx,
          y: TOP,
          width: fw,
          height: BAR,
          rx: 2,
          tabindex: i === focusIdx ? 0 : -1,
          role: "button",
          "aria-label": label,
          "data-index": i,
          "data-fragment-number": f.FragmentNumber,
          "data-start": it.t,
          "data-duration": f.FragmentLengthInMilliseconds ?? 0,
        },
        s("title", {}, label),
      );
      svg.append(r);
    });
    svg.addEventListener("mouseover", (e) => e.target.dataset?.index && show(Number(e.target.dataset.index)));
    svg.addEventListener("focusin", (e) => {
      if (!e.target.dataset?.index) return;
      focusIdx = Number(e.target.dataset.index);
      show(focusIdx);
    });
    svg.addEventListener("click", (e) => e.target.dataset?.index && pick(Number(e.target.dataset.index), e.shiftKey));
    svg.addEventListener("keydown", (e) => {
      const i = Number(e.target.dataset?.index);
      if (Number.isNaN(i)) return;
      const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: items.length - 1 };
      if (e.key in moves) {
        e.preventDefault();
        focusAt(moves[e.key]);
        if (e.shiftKey) pick(focusIdx, true);
      } else if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        pick(i, e.shiftKey);
      }
    });
    box.replaceChildren(svg);
    paintSelection();
  };

  const load = async () => {
    let input;
    try {
      const [a, b] = range();
      input = { StreamName: name, MaxResults: 1000, FragmentSelector: { FragmentSelectorType: clockSel.value, TimestampRange: { StartTimestamp: a / 1000, EndTimestamp: b / 1000 } } };
    } catch (e) {
      return showError(error, e);
    }
    try {
      const fragments = [];
      let pages = 0;
      let more = false;
      for (let token; ; ) {
        const page = await list(token ? { ...input, NextToken: token } : input);
        fragments.push(...(page.Fragments || []));
        token = page.NextToken;
        more = !!token;
        if (!token || ++pages >= MAX_PAGES) break;
      }
      if (stopped) return;
      showError(error, null);
      const json = JSON.stringify([clockSel.value, fragments]);
      if (json === lastJson) return;
      const grew = lastJson && clock === clockSel.value && sel && sel[0] === 0 && sel[1] === items.length - 1;
      lastJson = json;
      clock = clockSel.value;
      items = placed(fragments, clock);
      focusIdx = Math.min(focusIdx, Math.max(0, items.length - 1));
      // The choice is all fragments at first, and stays all as more arrive.
      sel = items.length && (!sel || grew || sel[1] >= items.length) ? [0, items.length - 1] : items.length ? sel : null;
      const gaps = gapsOf(items);
      const total = items.reduce((n, it) => n + (it.f.FragmentSizeInBytes ?? 0), 0);
      const length = items.reduce((n, it) => n + (it.f.FragmentLengthInMilliseconds ?? 0), 0);
      summary.textContent = items.length
        ? `${items.length}${more ? "+" : ""} fragment${items.length === 1 ? "" : "s"}, ${fmtBytes(total)}, ${seconds(length)} of media from ${fmtMs(items[0].t)} to ${fmtMs(items[items.length - 1].end)}; ${gaps.length} gap${gaps.length === 1 ? "" : "s"}.${more ? " Only the first 10,000 are drawn." : ""}`
        : "No fragments in this range. Upload some (below), or widen the range.";
      draw();
      show(sel ? sel[0] : -1);
      onSelect?.();
    } catch (e) {
      showError(error, e);
    }
  };

  // A new range or clock: all of its fragments are chosen.
  const reload = () => {
    lastJson = "";
    sel = null;
    load();
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    reload();
  });
  clockSel.addEventListener("change", reload);
  // A relative range follows new fragments.
  const timer = setInterval(() => rangeSel.value !== "custom" && !box.contains(document.activeElement) && load(), 5000);

  return {
    element,
    load,
    selection: () => {
      if (!sel) return null;
      const a = items[sel[0]];
      const b = items[sel[1]];
      return {
        clock,
        start: a.t / 1000,
        // ON_DEMAND takes fragments whose start is within the range, both ends included.
        end: (b.t + 1) / 1000,
        label: sel[0] === sel[1] ? a.f.FragmentNumber : `${a.f.FragmentNumber} to ${b.f.FragmentNumber}`,
      };
    },
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
