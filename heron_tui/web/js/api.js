// REST client for /api (interfaces.md §7): bearer token from sessionStorage, typed errors, the
// time range applied to every list and metric query, and the /api/events stream read with fetch.

const TOKEN_KEY = "heron-token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export class AuthError extends ApiError {}

export function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token lives for this page only */ }
}

function headers() {
  const t = getToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/** "/api/x" + params → URL string; arrays become comma lists, null/""/undefined are dropped. */
export function url(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === null || v === undefined || v === "" || (Array.isArray(v) && !v.length)) continue;
    q.set(k, Array.isArray(v) ? v.join(",") : String(v));
  }
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}

async function raise(res) {
  let code = null;
  let message = null;
  try {
    const body = await res.json();
    code = body?.error?.code ?? null;
    message = body?.error?.message ?? null;
  } catch { /* not JSON */ }
  const Err = res.status === 401 ? AuthError : ApiError;
  if (res.status === 401) window.dispatchEvent(new CustomEvent("heron:unauthorized"));
  throw new Err(res.status, code, message || `${res.status} ${res.statusText}`);
}

/** GET JSON. */
export async function get(path, params, { signal } = {}) {
  const res = await fetch(url(path, params), { headers: headers(), signal, cache: "no-store" });
  if (!res.ok) await raise(res);
  return res.json();
}

/** GET a body as text, with its truncation flag and content type. */
export async function getText(path, params) {
  const res = await fetch(url(path, params), { headers: headers(), cache: "no-store" });
  if (!res.ok) await raise(res);
  return {
    text: await res.text(),
    truncated: res.headers.get("X-Heron-Truncated") === "true",
    contentType: res.headers.get("Content-Type") || "",
  };
}

/**
 * Read /api/events (SSE framing) with a streaming fetch so the Authorization header can be sent.
 * Calls onEvent(type, data) per event; returns a stop() function. Reconnects with back-off.
 */
export function streamEvents(onEvent, onState) {
  const ctl = { stopped: false, abort: null };
  const run = async () => {
    let delay = 1000;
    while (!ctl.stopped) {
      const abort = new AbortController();
      ctl.abort = abort;
      try {
        const res = await fetch("/api/events", {
          headers: { ...headers(), Accept: "text/event-stream" }, signal: abort.signal, cache: "no-store",
        });
        if (res.status === 401) {
          window.dispatchEvent(new CustomEvent("heron:unauthorized"));
          onState?.("unauthorized");
          return;
        }
        if (!res.ok || !res.body) { onState?.("unavailable"); return; }
        onState?.("open");
        delay = 1000;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n/g, "\n");
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            dispatch(buf.slice(0, cut), onEvent);
            buf = buf.slice(cut + 2);
          }
        }
      } catch (err) {
        if (ctl.stopped) return;
      }
      if (ctl.stopped) return;
      onState?.("reconnecting");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  };
  run();
  return () => {
    ctl.stopped = true;
    ctl.abort?.abort();
  };
}

function dispatch(block, onEvent) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return;
  let parsed = data.join("\n");
  try { parsed = JSON.parse(parsed); } catch { /* keep text */ }
  onEvent(type, parsed);
}
