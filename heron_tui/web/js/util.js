// Small helpers: DOM building and number/time formatting. No dependencies.

/** Build an element: h('div.card#id', {attrs / on*: handler}, ...children). */
export function h(tag, attrs, ...children) {
  const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(tag) || [null, tag, ""];
  const node = document.createElement(m[1] || "div");
  for (const part of (m[2] || "").match(/[.#][\w-]+/g) || []) {
    if (part[0] === ".") node.classList.add(part.slice(1));
    else node.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = [node.className, v].filter(Boolean).join(" ");
    else if (k === "style" && typeof v === "object") Object.assign(node.style, v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const SVG_NS = "http://www.w3.org/2000/svg";

/** Build an SVG element with attributes. */
export function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export const isNum = (v) => typeof v === "number" && Number.isFinite(v);
export const DASH = "—";

export function fmtInt(v) {
  if (!isNum(v)) return DASH;
  return Math.round(v).toLocaleString("en-US");
}

/** Compact count: 1234 → 1.23k. */
export function fmtCompact(v) {
  if (!isNum(v)) return DASH;
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  if (a >= 1e3) return (v / 1e3).toFixed(2) + "k";
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(a < 1 ? 3 : a < 10 ? 2 : 1);
}

export function fmtMs(v) {
  if (!isNum(v)) return DASH;
  const a = Math.abs(v);
  if (a >= 3600000) return (v / 3600000).toFixed(1) + " h";
  if (a >= 60000) return (v / 60000).toFixed(1) + " min";
  if (a >= 10000) return (v / 1000).toFixed(1) + " s";
  if (a >= 1000) return (v / 1000).toFixed(2) + " s";
  if (a >= 100) return v.toFixed(0) + " ms";
  if (a >= 10) return v.toFixed(1) + " ms";
  return v.toFixed(2) + " ms";
}

export function fmtPct(v, digits = 1) {
  if (!isNum(v)) return DASH;
  return (v * 100).toFixed(digits) + "%";
}

export function fmtUsd(v) {
  if (!isNum(v)) return DASH;
  const a = Math.abs(v);
  if (a === 0) return "$0";
  if (a < 0.0001) return "$" + v.toExponential(1);
  if (a < 0.01) return "$" + v.toFixed(5);
  if (a < 1) return "$" + v.toFixed(4);
  if (a < 1000) return "$" + v.toFixed(2);
  return "$" + Math.round(v).toLocaleString("en-US");
}

export function fmtBytes(v) {
  if (!isNum(v)) return DASH;
  if (v >= 1 << 30) return (v / (1 << 30)).toFixed(2) + " GiB";
  if (v >= 1 << 20) return (v / (1 << 20)).toFixed(2) + " MiB";
  if (v >= 1 << 10) return (v / (1 << 10)).toFixed(1) + " KiB";
  return v + " B";
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** Epoch seconds → "2026-11-23 16:50:54.772" in local time. */
export function fmtTime(t, { ms = true, date = true } = {}) {
  if (!isNum(t)) return DASH;
  const d = new Date(t * 1000);
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return (date ? day + " " : "") + clock + (ms ? "." + pad(d.getMilliseconds(), 3) : "");
}

/** Short axis label for a bucket start, given the window in seconds. */
export function fmtAxisTime(t, spanS) {
  const d = new Date(t * 1000);
  if (spanS > 2 * 86400) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}h`;
  if (spanS > 600) return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Epoch seconds → value for <input type="datetime-local">. */
export function toLocalInput(t) {
  const d = new Date(t * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fromLocalInput(v) {
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? t / 1000 : null;
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : DASH;
}

export function truncate(text, n = 120) {
  if (text === null || text === undefined) return "";
  const t = String(text).replace(/\s+/g, " ").trim();
  return t.length > n ? t.slice(0, n - 1) + "…" : t;
}

/** Metric lookup with dotted path ("ttft_ms.p95"). */
export function pick(obj, path) {
  let cur = obj;
  for (const k of path.split(".")) {
    if (cur === null || cur === undefined) return null;
    cur = cur[k];
  }
  return cur === undefined ? null : cur;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A link to a record page. */
export function link(kind, id, label) {
  if (!id) return DASH;
  return h("a.mono", { href: `#/${kind}/${encodeURIComponent(id)}`, title: id }, label ?? shortId(id));
}

/** A coloured status pill. */
export function pill(text, tone) {
  return h("span.pill", { class: `pill-${tone || toneOf(text)}` }, text ?? DASH);
}

export function toneOf(v) {
  switch (v) {
    case "ok": case "complete": case "stop": case "priced": case "running": case "active": return "ok";
    case "warning": case "incomplete": case "length": case "in_progress": case "partial": case "tool_use":
    case "pending": case "missing": return "warn";
    case "critical": case "error": case "aborted": case "failed": case "content_filter": return "bad";
    default: return "muted";
  }
}

export function statusTone(code) {
  if (!isNum(code)) return "muted";
  if (code === 429) return "warn";
  if (code >= 400) return "bad";
  return "ok";
}

/** Parse JSON-ish values that the store keeps as strings (insight details). */
export function maybeJson(v) {
  if (typeof v !== "string") return v;
  try { return JSON.parse(v); } catch { return v; }
}

export function pretty(v) {
  return JSON.stringify(v, null, 2);
}
