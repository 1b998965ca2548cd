// The console shell: navigation, hash router, time-range picker, auto-refresh (polling plus the
// /api/events stream), theme, and the token prompt shown when the API answers 401.

import { get, setToken, getToken, streamEvents, AuthError } from "./api.js";
import { h, clear, debounce, pill, toLocalInput, fromLocalInput } from "./util.js";
import { state, PRESETS, isLive, loadRange, setRange, refreshDataEnd, parseHash } from "./state.js";
import { loading, errorBox } from "./widgets.js";
import { resetFilterCache } from "./filters.js";
import * as overview from "./pages/overview.js";
import * as turns from "./pages/turns.js";
import * as sessions from "./pages/sessions.js";
import * as calls from "./pages/calls.js";
import * as insights from "./pages/insights.js";
import * as services from "./pages/services.js";
import * as pipeline from "./pages/pipeline.js";

const ROUTES = {
  overview: { mod: overview, label: "Overview", rerender: true },
  turns: { mod: turns, label: "Turns" },
  sessions: { mod: sessions, label: "Sessions" },
  calls: { mod: calls, label: "Calls" },
  insights: { mod: insights, label: "Insights" },
  services: { mod: services, label: "Services" },
  pipeline: { mod: pipeline, label: "Pipeline", rerender: true },
};
const REFRESH_MS = 5000;

const $ = (sel) => document.querySelector(sel);
const main = () => $("#main");
let renderSeq = 0;
let currentPage = null;
let refreshTimer = null;
let stopEvents = null;

// --- theme ---------------------------------------------------------------------------------------------

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  const btn = $("#theme-toggle");
  if (btn) {
    btn.setAttribute("aria-pressed", String(theme === "dark"));
    btn.title = theme === "dark" ? "Switch to light theme" : "Switch to dark theme";
    btn.textContent = theme === "dark" ? "☾ Dark" : "☀ Light";
  }
}

function toggleTheme() {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  try { localStorage.setItem("heron-theme", next); } catch { /* ignore */ }
  applyTheme(next);
}

// --- router --------------------------------------------------------------------------------------------

function setActiveNav(name) {
  for (const a of document.querySelectorAll(".mainnav a")) {
    if (a.dataset.route === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function route({ quiet = false, manual = false } = {}) {
  const mine = ++renderSeq;
  const { path, query } = parseHash();
  const name = path[0] || "overview";
  const r = ROUTES[name];
  setActiveNav(name);
  document.title = `heron · ${r ? r.label : "not found"}${path[1] ? " " + path[1].slice(0, 8) : ""}`;
  const host = main();
  if (!r) {
    clear(host).append(h("div.page", errorBox({ status: 404, message: `No page "${name}".` })));
    return;
  }
  if (!quiet) {
    host.setAttribute("aria-busy", "true");
    if (!host.firstChild || host.dataset.route !== name + (path[1] || "")) clear(host).append(loading());
  }
  let node;
  try {
    node = await r.mod.render({ path, query });
  } catch (err) {
    if (mine !== renderSeq) return;
    host.setAttribute("aria-busy", "false");
    if (quiet) return; // keep the last good view on a failed background refresh
    node = h("div.page", errorBox(err), err instanceof AuthError ? h("p.hint", "Enter the API token to continue.") : null);
  }
  if (mine !== renderSeq || (quiet && !state.live && !manual)) return; // auto-refresh was turned off meanwhile
  const scroll = quiet ? window.scrollY : 0;
  clear(host).append(node);
  host.dataset.route = name + (path[1] || "");
  host.setAttribute("aria-busy", "false");
  currentPage = { name, node, detail: !!path[1] };
  if (quiet) window.scrollTo(0, scroll);
}

function onHashChange() {
  route();
  main().focus({ preventScroll: true });
}

// --- health pill -------------------------------------------------------------------------------------

async function refreshHealth() {
  try {
    state.health = await get("/api/health");
  } catch { /* keep the last */ }
  const b = $("#mode-badge");
  if (b && state.health) {
    b.textContent = state.health.mode === "run" ? (isLive() ? "live" : "run · drained") : "read-only";
    b.title = state.health.db ? `database ${state.health.db}` : "in-memory database";
  }
}

function showPipelineHealth(health) {
  const host = $("#health-pill");
  if (!host || !health) return;
  clear(host).append(pill(`pipeline ${health}`, health));
  host.title = `Pipeline health: ${health}`;
}

async function refreshPipelinePill() {
  try {
    const p = await get("/api/pipeline");
    showPipelineHealth(p.health);
  } catch { /* unauthorized or not ready: the pill stays as is */ }
}

// --- auto refresh --------------------------------------------------------------------------------------

const refreshNow = debounce(async () => {
  if (!state.live) return;
  await refreshHealth();
  if (state.range.preset !== "custom" && state.range.preset !== "all") await refreshDataEnd();
  const page = currentPage;
  if (!page) return;
  if (typeof page.node.refresh === "function") page.node.refresh();
  else if (page.node.rerenderOnRefresh || (ROUTES[page.name]?.rerender && !page.detail)) route({ quiet: true });
}, 300);

function setLive(on) {
  state.live = on;
  const btn = $("#live-toggle");
  btn.setAttribute("aria-pressed", String(on));
  btn.classList.toggle("on", on);
  clearInterval(refreshTimer);
  stopEvents?.();
  stopEvents = null;
  if (!on) return;
  refreshTimer = setInterval(() => { refreshNow(); refreshPipelinePill(); }, REFRESH_MS);
  if (state.health?.mode === "run") {
    let pending = null; // at most one refresh per 1.5 s however fast records arrive
    stopEvents = streamEvents((type, data) => {
      if (type === "pipeline") showPipelineHealth(data?.health);
      else if (!pending) pending = setTimeout(() => { pending = null; refreshNow(); }, 1500);
    }, (st) => { btn.dataset.stream = st; });
  }
}

// --- time range ----------------------------------------------------------------------------------------

function rangePicker() {
  const select = h("select#range-select", { "aria-label": "Time range" },
    PRESETS.map((p) => h("option", { value: p.id }, p.label)));
  select.value = state.range.preset;
  const now = Date.now() / 1000;
  const since = h("input#range-since", { type: "datetime-local", "aria-label": "From" });
  const until = h("input#range-until", { type: "datetime-local", "aria-label": "To" });
  since.value = toLocalInput(state.range.since ?? (state.dataEnd ?? now) - 3600);
  until.value = toLocalInput(state.range.until ?? (state.dataEnd ?? now) + 60);
  const apply = h("button.btn.btn-sm", { type: "submit" }, "Apply");
  const custom = h("form.range-custom", { hidden: state.range.preset !== "custom" }, since, h("span.muted", "→"), until, apply);
  custom.addEventListener("submit", (ev) => {
    ev.preventDefault();
    setRange({ preset: "custom", since: fromLocalInput(since.value), until: fromLocalInput(until.value) });
    resetFilterCache();
    route();
  });
  select.addEventListener("change", () => {
    custom.hidden = select.value !== "custom";
    if (select.value === "custom") { since.focus(); return; }
    setRange({ preset: select.value });
    resetFilterCache();
    route();
  });
  return h("div.range", select, custom);
}

// --- token prompt --------------------------------------------------------------------------------------

function tokenDialog() {
  const input = h("input#token-input", { type: "password", autocomplete: "off", spellcheck: "false", required: true });
  const msg = h("p#token-msg.hint");
  const dlg = h("dialog#token-dialog", { "aria-labelledby": "token-title" },
    h("form", { method: "dialog" },
      h("h2#token-title", "API token required"),
      msg,
      h("label", { for: "token-input" }, "Bearer token"), input,
      h("div.dialog-actions",
        h("button.btn.btn-ghost", { type: "button", value: "cancel", onclick: () => dlg.close("cancel") }, "Cancel"),
        h("button.btn.btn-primary#token-submit", { type: "submit", value: "ok" }, "Connect"))));
  dlg.addEventListener("close", () => {
    if (dlg.returnValue === "ok" && input.value.trim()) {
      setToken(input.value.trim());
      input.value = "";
      resetFilterCache();
      boot();
    }
  });
  return dlg;
}

function askToken() {
  const dlg = $("#token-dialog");
  if (!dlg || dlg.open) return;
  $("#token-msg").textContent = getToken()
    ? "The server rejected the stored token. Enter the token given to heron with --token or HERON_TOKEN."
    : "This server is protected. Enter the token given to heron with --token or HERON_TOKEN. It is kept for this browser tab only.";
  dlg.returnValue = "";
  dlg.showModal();
  $("#token-input").focus();
}

// --- shell ---------------------------------------------------------------------------------------------

function shell() {
  const nav = h("nav.mainnav", { "aria-label": "Pages" },
    Object.entries(ROUTES).map(([id, r]) => h("a", { href: `#/${id}`, dataset: { route: id } }, r.label)));
  const live = h("button.btn.btn-sm#live-toggle", { type: "button", "aria-pressed": "false", title: "Auto-refresh every 5 s (and follow /api/events on live runs)" },
    h("span.live-dot", { "aria-hidden": "true" }), "Auto-refresh");
  live.addEventListener("click", () => setLive(!state.live));
  const refresh = h("button.btn.btn-sm#refresh-btn", { type: "button", title: "Refresh now", "aria-label": "Refresh now" }, "⟳");
  refresh.addEventListener("click", () => { refreshHealth().then(refreshPipelinePill); route({ quiet: false }); });
  const theme = h("button.btn.btn-sm#theme-toggle", { type: "button", onclick: toggleTheme });
  const token = h("button.btn.btn-sm#token-btn", { type: "button", title: "Change the API token" }, "Token");
  token.addEventListener("click", askToken);
  const header = h("header.topbar",
    h("a.skip-link", { href: "#main" }, "Skip to content"),
    h("a.brand", { href: "#/overview", "aria-label": "heron overview" }, h("span.brand-mark", { "aria-hidden": "true" }, "◢"), "heron"),
    h("span.badge#mode-badge", ""),
    nav,
    h("div.topbar-tools", h("a#health-pill", { href: "#/pipeline" }), h("span#range-host"), live, refresh, theme, token));
  const root = $("#app");
  clear(root).append(header, h("main#main", { tabindex: "-1" }), tokenDialog());
  applyTheme(document.documentElement.dataset.theme || "dark");
}

async function boot() {
  await refreshHealth();
  if (!state.range.preset) loadRange();
  await refreshDataEnd();
  clear($("#range-host")).append(rangePicker());
  refreshPipelinePill();
  if (!boot.done) setLive(isLive());
  else if (state.live) setLive(true); // e.g. after a token was entered: reopen the event stream
  boot.done = true;
  await route();
}

window.addEventListener("heron:unauthorized", askToken);
window.addEventListener("hashchange", onHashChange);
document.addEventListener("keydown", (ev) => {
  if (ev.target.closest("input,select,textarea,dialog") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const keys = { 1: "overview", 2: "turns", 3: "sessions", 4: "calls", 5: "insights", 6: "services", 7: "pipeline" };
  if (keys[ev.key]) location.hash = `#/${keys[ev.key]}`;
});
shell();
boot();
