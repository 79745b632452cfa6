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

/**
 * Asks with `confirmDialog(ask)`, then runs `action`; its error (or none)
 * is shown in `slot`. Resolves true once the action succeeded.
 */
export async function confirmThen(ask, action, slot) {
  if (!(await confirmDialog(ask))) return false;
  try {
    await action();
    showError(slot, null);
    return true;
  } catch (e) {
    showError(slot, e);
    return false;
  }
}

/**
 * A create form in a card, hidden until opened: `fields` are its rows;
 * `submit()` makes the call (its error is shown in the form, which stays
 * open). Returns { form, open }; `onOpen` runs each time it opens.
 */
export function createCard({ title, fields, first, submit, onOpen }) {
  const error = h("div", { class: "slot" });
  const form = h(
    "form",
    { class: "card create", "aria-label": title, hidden: true },
    h("h2", {}, title),
    ...fields,
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
      await submit(error);
      showError(error, null);
      form.hidden = true;
    } catch (err) {
      showError(error, err);
    }
  });
  return { form, open: () => ((form.hidden = false), first.focus(), onOpen?.(error)) };
}

/**
 * A page listing resources, reloaded every 3 s: a title, a filter (`/`)
 * on `name(row)`, the create button (`n`) when `create` is given, and a
 * table whose rows carry `attr` = the name and `cells(row, slot)`. Returns
 * { stop, reload }.
 */
export function listPage(main, { title, filterLabel, tableLabel, columns, attr, name, cells, fetch, create, createLabel, aside, empty, noMatch }) {
  const slot = h("div", { class: "slot" });
  const filter = h("input", { type: "search", placeholder: "Filter by name  ( / )", "data-filter": true, "aria-label": filterLabel });
  const body = h("tbody");
  let rows = [];
  let stopped = false;
  const render = () => {
    const f = filter.value.trim().toLowerCase();
    const shown = rows.filter((r) => name(r).toLowerCase().includes(f));
    body.replaceChildren(
      ...(shown.length
        ? shown.map((r) => h("tr", { [attr]: name(r) }, ...cells(r, slot)))
        : [h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, rows.length ? noMatch : empty))]),
    );
  };
  filter.addEventListener("input", render);
  const reload = async () => {
    try {
      rows = await fetch();
      rows.sort((a, b) => name(a).localeCompare(name(b)));
      if (!stopped) render();
    } catch (e) {
      showError(slot, e);
    }
  };
  main.append(
    h(
      "div",
      { class: "title" },
      h("h1", {}, title),
      h("span", { class: "spacer" }),
      filter,
      create ? h("button", { type: "button", class: "primary", "data-new": true, onclick: create.open }, createLabel) : aside,
    ),
    ...(create ? [create.form] : []),
    slot,
    h("table", { class: "list", "aria-label": tableLabel }, h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, c)))), body),
  );
  reload();
  const timer = setInterval(() => !stopped && reload(), 3000);
  return {
    reload,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
