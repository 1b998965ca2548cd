// Shared console state: the time range, server health and the current route's query parameters.

import { get } from "./api.js";

const RANGE_KEY = "heron-range";
export const PRESETS = [
  { id: "15m", label: "Last 15 min", seconds: 900 },
  { id: "1h", label: "Last 1 h", seconds: 3600 },
  { id: "24h", label: "Last 24 h", seconds: 86400 },
  { id: "all", label: "All data", seconds: null },
  { id: "custom", label: "Custom…", seconds: null },
];

export const state = {
  health: null, // /api/health
  range: { preset: null, since: null, until: null },
  dataEnd: null, // latest call time in a finished database (anchor of "last N" presets)
  live: false, // auto-refresh on
};

/** True when the server runs an engine with a source still capturing. */
export function isLive() {
  const h = state.health;
  if (!h || h.mode !== "run") return false;
  const sources = h.sources || [];
  return !sources.length || sources.some((src) => src.state === "running");
}

export function loadRange() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(RANGE_KEY) || "null");
    if (saved && PRESETS.some((p) => p.id === saved.preset)) state.range = saved;
  } catch { /* ignore */ }
  if (!state.range.preset) state.range = { preset: isLive() ? "1h" : "all", since: null, until: null };
}

export function setRange(range) {
  state.range = { ...state.range, ...range };
  try { sessionStorage.setItem(RANGE_KEY, JSON.stringify(state.range)); } catch { /* ignore */ }
}

/** Latest call time, used as "now" when browsing a finished database. */
export async function refreshDataEnd() {
  if (isLive()) { state.dataEnd = null; return; }
  try {
    const r = await get("/api/calls", { sort: "-request_start", limit: 1 });
    const c = r.items?.[0];
    state.dataEnd = c ? Math.max(c.response_end ?? 0, c.request_start ?? 0) : null;
  } catch {
    state.dataEnd = null;
  }
}

/** Event-time "now" of a live run: the newest source watermark (a replay runs ahead of the clock). */
export function liveNow() {
  const marks = (state.health?.sources || []).map((x) => x.watermark).filter((x) => typeof x === "number");
  return marks.length ? Math.max(...marks) : Date.now() / 1000;
}

/** The `since`/`until` query parameters for the current range ({} = the server's default). */
export function rangeParams() {
  const r = state.range;
  if (r.preset === "custom") {
    const out = {};
    if (r.since !== null && r.since !== undefined) out.since = r.since.toFixed(3);
    if (r.until !== null && r.until !== undefined) out.until = r.until.toFixed(3);
    return out;
  }
  const preset = PRESETS.find((p) => p.id === r.preset);
  if (!preset || !preset.seconds) {
    return isLive() ? { since: 0 } : {}; // live servers default to the last hour; "all" means all
  }
  const end = isLive() ? liveNow() : state.dataEnd ? state.dataEnd + 1 : Date.now() / 1000;
  return { since: (end - preset.seconds).toFixed(3), until: end.toFixed(3) };
}

/** Human label of the active range (for titles and empty states). */
export function rangeLabel() {
  const r = state.range;
  const p = PRESETS.find((x) => x.id === r.preset);
  if (!p) return "";
  if (r.preset === "custom") return "custom range";
  if (p.seconds && !isLive()) return `${p.label.toLowerCase()} of data`;
  return p.label.toLowerCase();
}

/** Parse "#/turns/abc?status=complete" → {path: ["turns", "abc"], query: URLSearchParams}. */
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, "");
  const [p, qs] = raw.split("?");
  const path = p.split("/").filter(Boolean).map(decodeURIComponent);
  return { path, query: new URLSearchParams(qs || "") };
}

/** Replace the current hash's query, keeping the path (no new history entry). */
export function setQuery(updates, { push = false } = {}) {
  const { path, query } = parseHash();
  for (const [k, v] of Object.entries(updates)) {
    if (v === null || v === undefined || v === "") query.delete(k);
    else query.set(k, v);
  }
  const qs = query.toString();
  const hash = "#/" + path.map(encodeURIComponent).join("/") + (qs ? "?" + qs : "");
  if (push) location.hash = hash;
  else history.replaceState(null, "", hash);
}
