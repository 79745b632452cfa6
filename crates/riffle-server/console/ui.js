// Small DOM helpers shared by the pages.

/** An element: `h("a", { href: "#/" }, "text", child)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElementNS(
    tag === "svg" || attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml",
    tag,
  );
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "svg" || v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** An SVG element. */
export function s(tag, attrs = {}, ...children) {
  return h(tag, { ...attrs, svg: true }, ...children);
}

/** An error as AWS named it, in a box readers and tests can find. */
export function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, err?.type ? `${err.type}: ${err.awsMessage}` : String(err?.message || err));
}

/** Shows `err` (or clears it with null) in `slot`. */
export function showError(slot, err) {
  slot.replaceChildren(...(err ? [errorBox(err)] : []));
}

export function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function fmtDuration(secs) {
  const d = Math.floor(secs / 86400);
  const hh = Math.floor((secs % 86400) / 3600);
  const mm = Math.floor((secs % 3600) / 60);
  const ss = Math.floor(secs % 60);
  return [d && `${d}d`, (d || hh) && `${hh}h`, (d || hh || mm) && `${mm}m`, `${ss}s`].filter(Boolean).join(" ");
}

export function fmtTime(epochSeconds) {
  if (epochSeconds === undefined || epochSeconds === null) return "";
  return new Date(epochSeconds * 1000).toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "Z");
}

/**
 * A modal confirmation. With `typed`, the user must type that text to
 * confirm. Resolves true when confirmed.
 */
export function confirmDialog({ title, body, confirmLabel, typed }) {
  return new Promise((done) => {
    const input = typed ? h("input", { name: "confirm", autocomplete: "off", "aria-label": `Type ${typed} to confirm` }) : null;
    const ok = h("button", { type: "submit", class: "danger", disabled: !!typed }, confirmLabel);
    const cancel = h("button", { type: "button", value: "cancel" }, "Cancel");
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", {}, title),
      h("p", {}, body),
      typed ? h("label", {}, "Type ", h("code", {}, typed), " to confirm", input) : null,
      h("div", { class: "actions" }, cancel, ok),
    );
    const dlg = h("dialog", { class: "confirm" }, form);
    if (input) input.addEventListener("input", () => (ok.disabled = input.value !== typed));
    cancel.addEventListener("click", () => dlg.close("cancel"));
    form.addEventListener("submit", () => (dlg.returnValue = "ok"));
    dlg.addEventListener("close", () => {
      dlg.remove();
      done(dlg.returnValue === "ok");
    });
    document.body.append(dlg);
    dlg.showModal();
    (input || cancel).focus();
  });
}

/**
 * A create form in a card, hidden until `open()`: `fields` (labels) in a
 * row, an error slot, Cancel and Create. On submit `create()` runs; when
 * it resolves the form hides and resets and `onCreated(result)` runs,
 * else its error shows in the form.
 */
export function createCard({ title, fields, create, onCreated }) {
  const error = h("div", { class: "slot" });
  const form = h(
    "form",
    { class: "card create", "aria-label": title, hidden: true },
    h("h2", {}, title),
    h("div", { class: "row" }, ...fields),
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
    try {
      const out = await create();
      showError(error, null);
      form.hidden = true;
      form.reset();
      onCreated?.(out);
    } catch (err) {
      showError(error, err);
    }
  });
  const open = () => {
    form.hidden = false;
    form.querySelector("input, select")?.focus();
  };
  return { form, open };
}

/**
 * Deletes `name` with `remove()` once the user has typed the name; its
 * error shows in `slot`. Resolves true when deleted.
 */
export async function confirmDelete({ name, body, confirmLabel, remove, slot }) {
  if (!(await confirmDialog({ title: `Delete ${name}?`, body, confirmLabel, typed: name }))) return false;
  try {
    await remove();
    showError(slot, null);
    return true;
  } catch (e) {
    showError(slot, e);
    return false;
  }
}

/**
 * A list page in `main`: a title with a filter (focused by `/`) and, with
 * `create` (a createCard), a Create button (`n`); the create form, `slot`,
 * and a table of `columns` (those in `numeric` right-aligned), a row a
 * resource by `row(resource)`. `show(list)` fills it; the filter matches
 * `nameOf(resource)`; `empty` is [no match, none at all].
 */
export function listPage(main, { title, label, columns, numeric = [], nameOf, row, create, slot, empty }) {
  const filter = h("input", { type: "search", placeholder: "Filter by name  ( / )", "data-filter": true, "aria-label": `Filter ${label.toLowerCase()}` });
  const body = h("tbody");
  let rows = [];
  const render = () => {
    const f = filter.value.trim().toLowerCase();
    const shown = rows.filter((r) => nameOf(r).toLowerCase().includes(f));
    body.replaceChildren(
      ...(shown.length ? shown.map(row) : [h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, rows.length ? empty[0] : empty[1]))]),
    );
  };
  filter.addEventListener("input", render);
  main.append(
    h(
      "div",
      { class: "title" },
      h("h1", {}, title),
      h("span", { class: "spacer" }),
      filter,
      create ? h("button", { type: "button", class: "primary", "data-new": true, onclick: create.open }, "Create stream") : null,
    ),
    create?.form ?? null,
    slot,
    h(
      "table",
      { class: "list", "aria-label": label },
      h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col", class: numeric.includes(c) ? "num" : null }, c)))),
      body,
    ),
  );
  return {
    show: (list) => {
      rows = list;
      render();
    },
  };
}

/** The page's colours, for charts. */
export function themeColours() {
  const cs = getComputedStyle(document.documentElement);
  const v = (n) => cs.getPropertyValue(n).trim();
  return { text: v("--fg-muted"), grid: v("--grid"), series: [1, 2, 3, 4, 5, 6].map((i) => v(`--series-${i}`)) };
}

/** A uPlot time chart in `el` of the last `span` seconds, redrawn in the new colours when the colour scheme changes; returns { update(data), destroy() }. */
export function timeChart(el, labels, { yLabel = "", span = 60 } = {}) {
  let data = [[], ...labels.map(() => [])];
  let plot = null;
  const build = () => {
    const c = themeColours();
    const axis = { stroke: c.text, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid } };
    const opts = {
      width: Math.max(300, el.clientWidth || 600),
      height: 220,
      scales: { x: { time: true, range: (_, min, max) => [(max ?? Date.now() / 1000) - span, max ?? Date.now() / 1000] }, y: { range: (_, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [axis, { ...axis, label: yLabel }],
      legend: { live: false },
      series: [{}, ...labels.map((l, i) => ({ label: l, stroke: c.series[i % c.series.length], width: 2, points: { show: false } }))],
    };
    plot?.destroy();
    plot = new globalThis.uPlot(opts, data, el);
  };
  build();
  const resize = () => plot.setSize({ width: Math.max(300, el.clientWidth), height: 220 });
  const scheme = matchMedia("(prefers-color-scheme: dark)");
  window.addEventListener("resize", resize);
  scheme.addEventListener("change", build);
  return {
    update: (d) => {
      data = d;
      plot.setData(d);
    },
    destroy: () => {
      window.removeEventListener("resize", resize);
      scheme.removeEventListener("change", build);
      plot.destroy();
    },
  };
}
