// A list page: a title with a filter (/) and a create button (n), the
// create form, an error slot and a table of rows, loaded again every 3 s.

import { h, showError, confirmDialog } from "./ui.js";

/**
 * Fills `main`; returns the page's cleanup.
 * - `title`, `label` (the table's accessible name, e.g. "Streams"),
 *   `noun` and `plural` (for "No stream matches." / "No streams yet."),
 *   `heads` (column headings; a heading in `numeric` is right-aligned);
 * - `name(r)`: what the filter matches and rows sort by;
 * - `load()`: resolves the rows; `row(r, { slot, reload })`: a row's <tr>;
 * - `create`: null, or `{ label, form: (reload) => ({ form, open }) }`.
 */
export function listPage(main, { title, label, noun, plural, heads, numeric = [], name, load, row, create }) {
  const slot = h("div", { class: "slot" });
  const filter = h("input", { type: "search", placeholder: "Filter by name  ( / )", "data-filter": true, "aria-label": `Filter ${plural}` });
  const body = h("tbody");
  let rows = [];
  let stopped = false;
  const render = () => {
    const f = filter.value.trim().toLowerCase();
    const shown = rows.filter((r) => name(r).toLowerCase().includes(f));
    body.replaceChildren(
      ...(shown.length
        ? shown.map((r) => row(r, { slot, reload }))
        : [h("tr", {}, h("td", { colspan: heads.length, class: "muted" }, rows.length ? `No ${noun} matches.` : `No ${plural} yet.`))]),
    );
  };
  const reload = async () => {
    try {
      const loaded = await load();
      loaded.sort((a, b) => name(a).localeCompare(name(b)));
      rows = loaded;
      if (!stopped) render();
    } catch (e) {
      showError(slot, e);
    }
  };
  filter.addEventListener("input", render);
  const form = create?.form(reload);
  main.append(
    h(
      "div",
      { class: "title" },
      h("h1", {}, title),
      h("span", { class: "spacer" }),
      filter,
      form ? h("button", { type: "button", class: "primary", "data-new": true, onclick: form.open }, create.label) : null,
    ),
    form?.form,
    slot,
    h(
      "table",
      { class: "list", "aria-label": label },
      h("thead", {}, h("tr", {}, ...heads.map((c) => h("th", { scope: "col", class: numeric.includes(c) ? "num" : null }, c)))),
      body,
    ),
  );
  reload();
  const timer = setInterval(() => !stopped && reload(), 3000);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/** Each summary through `describe(s)`; one whose describe fails (deleted meanwhile) stays the summary. */
export function describeEach(summaries, describe) {
  return Promise.all(summaries.map((s) => describe(s).catch(() => s)));
}

/**
 * Deletes `name` once the user types it in a confirmation (`what`: "stream",
 * `body`: what goes); `remove()` makes the call. Resolves true when deleted,
 * showing the call's error in `slot` otherwise.
 */
export async function deleteTyped(name, what, body, remove, slot) {
  const ok = await confirmDialog({ title: `Delete ${name}?`, body, confirmLabel: `Delete ${what}`, typed: name });
  if (!ok) return false;
  try {
    await remove();
    showError(slot, null);
    return true;
  } catch (e) {
    showError(slot, e);
    return false;
  }
}
