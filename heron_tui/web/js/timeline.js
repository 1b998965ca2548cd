// A turn's call timeline: one row per call, a bar from request_start to response_end split at the
// first token, the first-token mark, the tool wait that preceded the call, sub-agent indentation, and
// error / retry / aborted colouring. Rows are keyboard-selectable.

import { h, fmtMs, fmtCompact, isNum, truncate } from "./util.js";

function niceStep(spanMs, target = 6) {
  const raw = spanMs / target;
  const mag = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-6)));
  return [1, 2, 5, 10].map((m) => m * mag).find((x) => x >= raw) || raw;
}

export function callClass(c) {
  if (c.finish === "aborted") return "tl-aborted";
  if (!c.ok || (isNum(c.status_code) && c.status_code >= 400) || c.finish === "error") return "tl-error";
  if ((c.attempt || 1) > 1) return "tl-retry";
  if (c.is_auxiliary) return "tl-aux";
  return "tl-ok";
}

/**
 * calls: call records of the turn; toolCalls: its tool_calls rows; onSelect(call).
 * Returns an element with .select(callId).
 */
export function timeline(turn, calls, toolCalls, { selected, onSelect } = {}) {
  const ordered = [...calls].sort((a, b) => a.request_start - b.request_start);
  const t0 = Math.min(turn.start ?? Infinity, ...ordered.map((c) => c.request_start));
  const ends = ordered.map((c) => c.response_end ?? c.request_end ?? c.request_start);
  const t1 = Math.max(turn.end ?? -Infinity, ...ends);
  const span = Math.max(t1 - t0, 0.001);
  const pct = (t) => `${(((t - t0) / span) * 100).toFixed(3)}%`;
  const wpct = (a, b) => `${Math.max(0.15, ((b - a) / span) * 100).toFixed(3)}%`;

  // tool waits: for each result call, the earliest issue time among the tool calls it answered
  const waitStart = new Map();
  for (const tc of toolCalls || []) {
    if (!tc.result_call_id || !isNum(tc.issued_at)) continue;
    const prev = waitStart.get(tc.result_call_id);
    if (prev === undefined || tc.issued_at < prev) waitStart.set(tc.result_call_id, tc.issued_at);
  }
  // sub-agent depth: main agent 0, named sub-agents 1
  const depth = (c) => (c.subagent ? 1 : 0);

  const stepMs = niceStep(span * 1000);
  const ticks = [];
  for (let ms = 0; ms <= span * 1000 + 1e-9; ms += stepMs) ticks.push(ms);
  const axis = h("div.tl-row.tl-axis", { "aria-hidden": "true" },
    h("div.tl-label", h("span.muted", `${ordered.length} calls · ${fmtMs(span * 1000)}`)),
    h("div.tl-track", ticks.map((ms) => h("span.tl-tick", { style: { left: pct(t0 + ms / 1000) } }, fmtMs(ms)))));

  const rows = new Map();
  const root = h("div.timeline", { role: "listbox", "aria-label": "Calls of the turn" }, axis);
  ordered.forEach((c, i) => {
    const end = c.response_end ?? c.request_end ?? c.request_start;
    const ft = c.first_token ?? c.first_chunk;
    const cls = callClass(c);
    const track = h("div.tl-track");
    ticks.forEach((ms) => track.append(h("span.tl-grid", { style: { left: pct(t0 + ms / 1000) } })));
    const ws = waitStart.get(c.call_id);
    if (isNum(ws) && ws < c.request_start) {
      track.append(h("span.tl-toolwait", { style: { left: pct(ws), width: wpct(ws, c.request_start) },
        title: `tool execution ${fmtMs((c.request_start - ws) * 1000)}` }));
    }
    const bar = h("span.tl-bar", { class: cls, style: { left: pct(c.request_start), width: wpct(c.request_start, end) } });
    if (isNum(ft) && ft >= c.request_start && ft <= end) {
      bar.append(h("span.tl-wait", { style: { width: `${(((ft - c.request_start) / Math.max(end - c.request_start, 1e-6)) * 100).toFixed(2)}%` } }));
      track.append(h("span.tl-ft", { style: { left: pct(ft) }, title: `first token +${fmtMs(c.ttft_ms)}` }));
    }
    track.append(bar);
    const stats = `${fmtMs(c.e2e_ms ?? (end - c.request_start) * 1000)}`;
    track.append(h("span.tl-bar-label", { style: { left: `calc(${pct(end)} + 4px)` } }, stats));

    const status = c.status_code ?? "—";
    const tags = [];
    if (c.subagent) tags.push(h("span.tag.tag-sub", c.subagent));
    if ((c.attempt || 1) > 1) tags.push(h("span.tag.tag-retry", `retry ${c.attempt}`));
    if (c.is_auxiliary) tags.push(h("span.tag", c.auxiliary_kind || "aux"));
    if (c.tool_call_count) tags.push(h("span.tag.tag-tool", `→ ${(c.tool_calls || []).map((t) => t.name).join(", ") || c.tool_call_count + " tools"}`));
    const label = h("div.tl-label", { style: { paddingLeft: `${0.4 + depth(c) * 1.2}em` } },
      h("span.tl-idx", String(i + 1)),
      h("span.tl-status", { class: cls }, String(status)),
      h("span.tl-model", { title: c.model || "" }, truncate(c.model || c.model_requested || "", 26)),
      h("span.tl-tok", { title: "input total → output tokens" }, `${fmtCompact(c.input_total_tokens)}→${fmtCompact(c.output_tokens)}`),
      tags);
    const row = h("div.tl-row", {
      role: "option", tabindex: "0", "aria-selected": "false", class: cls, dataset: { callId: c.call_id },
      title: `${c.method} ${c.path} · ${c.finish}${c.error ? " · " + (c.error.message || c.error.type) : ""}`,
    }, label, track);
    const choose = () => onSelect?.(c);
    row.addEventListener("click", choose);
    row.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); choose(); }
      else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        const sib = ev.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
        if (sib && sib.classList.contains("tl-row") && sib.dataset.callId) sib.focus();
      }
    });
    rows.set(c.call_id, row);
    root.append(row);
  });

  const legend = h("div.tl-legend", { "aria-hidden": "true" },
    h("span", h("span.lg.tl-ok"), "ok"), h("span", h("span.lg.tl-error"), "error"),
    h("span", h("span.lg.tl-retry"), "retry"), h("span", h("span.lg.tl-aborted"), "aborted"),
    h("span", h("span.lg.lg-wait"), "before first token"), h("span", h("span.lg.lg-ft"), "first token"),
    h("span", h("span.lg.lg-toolwait"), "tool execution"));
  const wrap = h("div.timeline-wrap", root, legend);
  wrap.select = (id) => {
    for (const [cid, r] of rows) {
      r.setAttribute("aria-selected", String(cid === id));
      r.classList.toggle("selected", cid === id);
    }
  };
  if (selected) wrap.select(selected);
  return wrap;
}
