// The console's shell: server facts, sign-in when the server has
// credentials, the hash router and keyboard shortcuts.

import { state, getJSON, setCredentials } from "./api.js";
import { h, errorBox } from "./ui.js";
import { streamsPage } from "./streams.js";
import { streamPage } from "./stream.js";
import { serverPage } from "./server.js";
import { videoStreamsPage, videoStreamPage } from "./video.js";
import { firehosePage } from "./firehose.js";
import { deliveryStreamPage } from "./firehose-stream.js";
import { analyticsPage } from "./analytics.js";
import { applicationPage } from "./analytics-app.js";

const main = document.getElementById("main");
let current = null; // the page's cleanup

function signInForm(err) {
  const id = h("input", { name: "accessKeyId", required: true, autocomplete: "username" });
  const secret = h("input", { name: "secretAccessKey", type: "password", required: true, autocomplete: "current-password" });
  const form = h(
    "form",
    { class: "card signin" },
    h("h1", {}, "Sign in"),
    h("p", {}, "This server checks signatures. The console signs its calls with an access key from the server's credentials; it is kept in this tab only."),
    err ? errorBox(err) : null,
    h("label", {}, "Access key ID", id),
    h("label", {}, "Secret access key", secret),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setCredentials({ accessKeyId: id.value.trim(), secretAccessKey: secret.value });
    start();
  });
  main.replaceChildren(form);
  id.focus();
}

function header() {
  const mode = document.getElementById("mode");
  mode.textContent = state.server.console;
  mode.className = `badge mode-${state.server.console}`;
  const who = document.getElementById("who");
  who.replaceChildren(
    ...(state.credentials
      ? [
          h("span", { class: "muted" }, state.credentials.accessKeyId, " "),
          h("button", { type: "button", onclick: () => (setCredentials(null), start()) }, "Sign out"),
        ]
      : []),
  );
}

async function route() {
  if (current) current();
  current = null;
  const hash = location.hash || "#/streams";
  const parts = hash.slice(2).split("/").map(decodeURIComponent);
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.toggleAttribute("aria-current", a.dataset.nav === parts[0]);
  }
  main.replaceChildren();
  if (parts[0] === "server") current = serverPage(main);
  else if (parts[0] === "video") current = parts[1] ? videoStreamPage(main, parts[1]) : videoStreamsPage(main);
  else if (parts[0] === "streams" && parts[1]) current = streamPage(main, parts[1]);
  else if (parts[0] === "firehose") current = parts[1] ? deliveryStreamPage(main, parts[1]) : firehosePage(main);
  else if (parts[0] === "analytics") current = parts[1] ? applicationPage(main, parts[1]) : analyticsPage(main);
  else current = streamsPage(main);
}

async function start() {
  try {
    state.server = await getJSON("/_riffle/console/api/server");
  } catch (e) {
    if (["MissingAuthenticationTokenException", "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignatureException"].includes(e.type)) {
      const tried = !!state.credentials;
      setCredentials(null);
      signInForm(tried ? e : null);
      return;
    }
    main.replaceChildren(errorBox(e));
    return;
  }
  header();
  document.title = `Riffle console · ${location.host}`;
  await route();
}

window.addEventListener("hashchange", () => state.server && route());

// g s / g f / g a / g v / g m move between pages; / focuses the page's filter; n opens the
// create form. Keys typed into fields are left alone.
let pendingG = false;
document.addEventListener("keydown", (e) => {
  const t = e.target;
  if (e.ctrlKey || e.metaKey || e.altKey || t.closest?.("input, textarea, select, dialog")) return;
  if (pendingG) {
    pendingG = false;
    if (e.key === "s") location.hash = "#/streams";
    if (e.key === "m") location.hash = "#/server";
    if (e.key === "v") location.hash = "#/video";
    if (e.key === "f") location.hash = "#/firehose";
    if (e.key === "a") location.hash = "#/analytics";
    return;
  }
  if (e.key === "g") pendingG = true;
  else if (e.key === "/") {
    const f = document.querySelector("[data-filter]");
    if (f) {
      e.preventDefault();
      f.focus();
    }
  } else if (e.key === "n") {
    const b = document.querySelector("[data-new]");
    if (b) {
      e.preventDefault();
      b.click();
    }
  }
});

start();
