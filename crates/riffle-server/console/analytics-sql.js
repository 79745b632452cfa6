// The SQL editor of Analytics applications: a monospace textarea with line
// numbers, checked as you type by Riffle's own parser and planner (the
// console's validate endpoint, which saves nothing), errors shown at their
// line and column. Ctrl+Enter (Cmd+Enter) submits.

import { getJSON } from "./api.js";
import { h } from "./ui.js";

const VALIDATE = "/_riffle/console/api/analytics/validate";
// The server refuses URIs over 64 KiB; longer code is checked by saving it.
const MAX_URL = 60000;

/** `{ line, column, message }` of a CodeValidationException, or null. */
export function codeError(err) {
  const m = err?.type === "CodeValidationException" && /^SQL error at line (\d+), column (\d+): ([\s\S]*)$/.exec(err.awsMessage || "");
  return m ? { line: Number(m[1]), column: Number(m[2]), message: m[3] } : null;
}

/**
 * An editor. `application`: the application whose inputs and reference
 * tables the planner checks the code against (none: the parser only).
 */
export function sqlEditor({ label = "SQL", rows = 16, application = null, readOnly = false } = {}) {
  const gutter = h("pre", { class: "gutter", "aria-hidden": "true" });
  const area = h("textarea", {
    name: "ApplicationCode",
    class: "sql",
    rows,
    spellcheck: "false",
    autocapitalize: "off",
    autocomplete: "off",
    wrap: "off",
    readonly: readOnly,
    "aria-label": label,
  });
  const status = h("div", { class: "sqlstatus", role: "status", "aria-live": "polite" });
  const el = h("div", { class: "sqlbox" }, h("span", { class: "sqllabel" }, label), h("div", { class: "sqled" }, gutter, area), status);
  let bad = 0;
  let submit = null;
  let checked = "";
  let seq = 0;
  let onChecked = () => {};

  const numbers = () => {
    const n = area.value.split("\n").length;
    gutter.replaceChildren(...Array.from({ length: n }, (_, i) => h("span", { class: i + 1 === bad ? "bad" : null }, `${i + 1}\n`)));
    gutter.scrollTop = area.scrollTop;
  };
  /** Moves the caret to `line`, `column` (1-based). */
  const goTo = (line, column) => {
    const lines = area.value.split("\n");
    let at = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) at += lines[i].length + 1;
    at += Math.max(0, column - 1);
    area.focus();
    area.setSelectionRange(at, at);
  };
  /** Shows a positioned error (or clears with null). */
  const mark = (e, source) => {
    bad = e ? e.line : 0;
    numbers();
    if (!e) return;
    status.replaceChildren(
      h(
        "p",
        { class: "error sqlerror", role: "alert", "data-line": e.line, "data-column": e.column },
        h("button", { type: "button", class: "small linkish", onclick: () => goTo(e.line, e.column), title: "Go to the error" }, `Line ${e.line}, column ${e.column}`),
        `: ${e.message}`,
        source ? h("span", { class: "muted" }, ` (${source})`) : null,
      ),
    );
  };

  /** Checks the code now; resolves the endpoint's answer (null when not checked). */
  const validate = async () => {
    const code = area.value;
    const params = new URLSearchParams({ sql: code });
    if (application) params.set("application", application);
    const url = `${VALIDATE}?${params}`;
    const mine = ++seq;
    if (url.length > MAX_URL) {
      mark(null);
      status.replaceChildren(h("p", { class: "muted" }, "Too long to check before saving: saving checks it."));
      return null;
    }
    let r;
    try {
      r = await getJSON(url);
    } catch (e) {
      if (mine === seq) status.replaceChildren(h("p", { class: "error", role: "alert" }, String(e.message)));
      return null;
    }
    if (mine !== seq) return r;
    checked = code;
    if (r.parse) mark(r.parse, "parser");
    else {
      mark(null);
      status.replaceChildren(
        r.plan
          ? h("p", { class: "warn sqlplan" }, "Parses; cannot run as the application is configured: ", r.plan)
          : h(
              "p",
              { class: "ok sqlok" },
              application && r.streams.length
                ? `Parses and plans. In-application streams: ${r.streams.map((x) => x.name).join(", ")}`
                : "Parses.",
            ),
      );
    }
    onChecked(r);
    return r;
  };

  let timer = null;
  area.addEventListener("input", () => {
    numbers();
    clearTimeout(timer);
    timer = setTimeout(() => area.value !== checked && validate(), 400);
  });
  area.addEventListener("scroll", () => (gutter.scrollTop = area.scrollTop));
  area.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      submit?.();
    } else if (e.key === "Tab" && !e.shiftKey && !readOnly) {
      // Two spaces; Esc then Tab leaves the editor.
      if (area.dataset.escaped) return;
      e.preventDefault();
      area.setRangeText("  ", area.selectionStart, area.selectionEnd, "end");
      area.dispatchEvent(new Event("input"));
    } else if (e.key === "Escape") {
      area.dataset.escaped = "1";
      return;
    }
    delete area.dataset.escaped;
  });
  numbers();

  return {
    el,
    area,
    value: () => area.value,
    set(text) {
      area.value = text;
      checked = "";
      numbers();
    },
    validate,
    onSubmit: (fn) => (submit = fn),
    onChecked: (fn) => (onChecked = fn),
    /** Shows a CodeValidationException at its position; false for other errors. */
    showError(err) {
      const e = codeError(err);
      if (!err) {
        mark(null);
        status.replaceChildren();
      } else if (e) mark(e, err.type);
      return !!e;
    },
    note(text, cls = "ok") {
      status.replaceChildren(h("p", { class: cls }, text));
    },
  };
}
