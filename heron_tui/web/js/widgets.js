// Reusable view pieces: tabs, key/value grids, JSON and code viewers, error and loading states.

import { h, clear, DASH } from "./util.js";

/**
 * Accessible tabs. tabs: [{id, label, render() → Node|Promise<Node>}]; the first render of a tab is
 * cached. The selected tab id is reported through onSelect (used to keep it in the URL).
 */
export function tabs(list, { selected, onSelect, label = "Sections" } = {}) {
  const bar = h("div.tabs", { role: "tablist", "aria-label": label });
  const body = h("div.tab-panel", { role: "tabpanel", tabindex: "0" });
  const cache = new Map();
  const buttons = new Map();
  let current = null;
  const select = async (id, focus = false) => {
    if (!buttons.has(id)) id = list[0].id;
    current = id;
    for (const [tid, b] of buttons) {
      b.setAttribute("aria-selected", String(tid === id));
      b.tabIndex = tid === id ? 0 : -1;
    }
    if (focus) buttons.get(id).focus();
    body.setAttribute("aria-labelledby", `tab-${id}`);
    body.dataset.tab = id;
    onSelect?.(id);
    if (!cache.has(id)) {
      clear(body).append(loading());
      let node;
      try {
        node = await list.find((t) => t.id === id).render();
      } catch (err) {
        node = errorBox(err);
      }
      cache.set(id, node);
    }
    if (current === id) clear(body).append(cache.get(id));
  };
  list.forEach((t, i) => {
    const b = h("button.tab", { type: "button", role: "tab", id: `tab-${t.id}`, dataset: { tab: t.id } }, t.label,
      t.badge !== undefined && t.badge !== null ? h("span.tab-badge", String(t.badge)) : null);
    b.addEventListener("click", () => select(t.id));
    b.addEventListener("keydown", (ev) => {
      const dir = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
      if (!dir) return;
      ev.preventDefault();
      select(list[(i + dir + list.length) % list.length].id, true);
    });
    buttons.set(t.id, b);
    bar.append(b);
  });
  select(selected || list[0].id);
  return h("div.tabs-wrap", bar, body);
}

/** Key/value grid. pairs: [[label, value, title?]] (null values shown as —). */
export function kv(pairs, cls = "") {
  return h("dl.kv", { class: cls || null }, pairs.filter(Boolean).map(([k, v, title]) => [
    h("dt", { title: title || null }, k),
    h("dd", v === null || v === undefined || v === "" ? DASH : v),
  ]));
}

const TOKEN_RE = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;

/** Pretty JSON (already-formatted text or a value) with light syntax colouring. */
export function jsonView(value, { maxChars = 400000 } = {}) {
  let text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  let note = null;
  if (text.length > maxChars) {
    note = h("div.note", `Showing the first ${maxChars.toLocaleString()} of ${text.length.toLocaleString()} characters.`);
    text = text.slice(0, maxChars);
  }
  const pre = h("pre.code.json");
  let last = 0;
  for (const m of text.matchAll(TOKEN_RE)) {
    if (m.index > last) pre.append(text.slice(last, m.index));
    if (m[1]) {
      pre.append(h("span", { class: m[2] ? "j-key" : "j-str" }, m[1]));
      if (m[2]) pre.append(m[2]);
    } else if (m[3]) pre.append(h("span.j-lit", m[3]));
    else pre.append(h("span.j-num", m[4]));
    last = m.index + m[0].length;
  }
  pre.append(text.slice(last));
  return h("div.code-wrap", note, copyButton(() => text), pre);
}

export function codeView(text) {
  return h("div.code-wrap", copyButton(() => text), h("pre.code", text));
}

function copyButton(getText) {
  const b = h("button.btn.btn-sm.copy-btn", { type: "button", title: "Copy to clipboard" }, "Copy");
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(getText());
      b.textContent = "Copied";
    } catch {
      b.textContent = "Copy failed";
    }
    setTimeout(() => { b.textContent = "Copy"; }, 1200);
  });
  return b;
}

export function loading(text = "Loading…") {
  return h("div.loading", { role: "status" }, h("span.spinner", { "aria-hidden": "true" }), text);
}

export function errorBox(err) {
  const status = err && err.status;
  const title = status === 404 ? "Not found" : status === 401 ? "Unauthorized" : "Could not load";
  return h("div.error-box", { role: "alert" }, h("strong", title), h("span", err?.message || String(err)));
}

export function section(title, ...children) {
  return h("section.panel", h("h2.panel-title", title), ...children);
}
