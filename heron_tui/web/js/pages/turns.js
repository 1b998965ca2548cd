// Turns: filterable, sortable, paged list; detail with the call timeline and the selected call.

import { get } from "../api.js";
import { h, clear, fmtMs, fmtInt, fmtUsd, fmtCompact, fmtTime, pill, link, truncate, shortId, DASH } from "../util.js";
import { pagedTable } from "../table.js";
import { filterBar, filterParams, filterValues } from "../filters.js";
import { rangeParams, rangeLabel, parseHash, setQuery } from "../state.js";
import { timeline } from "../timeline.js";
import { callView, toolCallsTable } from "../callview.js";
import { kv, section, loading, errorBox } from "../widgets.js";
import { insightTable } from "./insights.js";

const FILTER_KEYS = ["agent_kind", "status", "model", "server", "session_id", "min_calls", "has_insights", "include_partial"];
const STATUSES = ["complete", "incomplete", "partial", "in_progress"];

export function turnColumns({ session = true } = {}) {
  return [
    { key: "start", label: "Start", sort: "start", render: (t) => h("span.mono.nowrap", fmtTime(t.start)) },
    { key: "status", label: "Status", render: (t) => pill(t.status) },
    { key: "turn_id", label: "Turn", render: (t) => link("turns", t.turn_id) },
    { key: "agent_kind", label: "Agent" },
    session ? { key: "session_id", label: "Session", render: (t) => link("sessions", t.session_id) } : null,
    { key: "user_input_preview", label: "User input", cls: "wide", render: (t) => h("span.preview", { title: t.user_input_preview || "" }, truncate(t.user_input_preview, 90) || DASH) },
    { key: "models", label: "Models", render: (t) => h("span.nowrap", (t.models || []).join(", ") || DASH) },
    { key: "call_count", label: "Calls", num: true, sort: "call_count", render: (t) => callsCell(t) },
    { key: "duration_ms", label: "Duration", num: true, sort: "duration_ms", render: (t) => fmtMs(t.duration_ms) },
    { key: "first_response_ms", label: "First resp.", num: true, render: (t) => fmtMs(t.first_response_ms) },
    { key: "tokens", label: "Tokens in→out", num: true, render: (t) => `${fmtCompact(t.input_total_tokens)}→${fmtCompact(t.output_tokens)}` },
    { key: "tool_call_count", label: "Tools", num: true, render: (t) => toolsCell(t) },
    { key: "cost_usd", label: "Cost", num: true, sort: "cost_usd", render: (t) => costCell(t) },
    { key: "insight_count", label: "Insights", num: true, render: (t) => (t.insight_count ? h("span.badge.badge-warn", { title: (t.insight_kinds || []).join(", ") }, String(t.insight_count)) : "") },
  ].filter(Boolean);
}

function callsCell(t) {
  const extra = [];
  if (t.subagent_call_count) extra.push(h("span.muted", ` (${t.subagent_call_count} sub)`));
  if (t.retry_count) extra.push(h("span.text-warn", ` ↻${t.retry_count}`));
  return h("span", fmtInt(t.call_count), extra);
}

function toolsCell(t) {
  if (!t.tool_call_count) return "0";
  const bad = (t.tool_error_count || 0) + (t.tool_missing_count || 0);
  return h("span", fmtInt(t.tool_call_count), bad ? h("span.text-bad", { title: `${t.tool_error_count} errors, ${t.tool_missing_count} missing` }, ` !${bad}`) : null);
}

export function costCell(r) {
  return h("span", { title: r.cost_complete === false ? "incomplete: some calls with usage have no price" : null },
    fmtUsd(r.cost_usd), r.cost_complete === false ? h("span.text-warn", "*") : null);
}

async function list() {
  const fv = await filterValues();
  const table = pagedTable(turnColumns(), {
    id: "turns-table", path: "/api/turns", defaultSort: "-start",
    params: () => ({ ...rangeParams(), ...filterParams(FILTER_KEYS) }),
    rowHref: (t) => `#/turns/${encodeURIComponent(t.turn_id)}`,
    rowClass: (t) => (t.status === "in_progress" ? "row-live" : ""),
    empty: "No turns in this range.",
  });
  const bar = filterBar([
    { key: "agent_kind", label: "Agent", type: "select", options: fv.agent_kind || [] },
    { key: "status", label: "Status", type: "select", options: STATUSES },
    { key: "model", label: "Model", type: "select", options: fv.model || [] },
    { key: "server", label: "Server", type: "select", options: fv.server || [] },
    { key: "session_id", label: "Session", type: "text", placeholder: "session id", size: 14 },
    { key: "min_calls", label: "Min calls", type: "number", size: 4 },
    { key: "has_insights", label: "With insights", type: "check" },
    { key: "include_partial", label: "Include partial", type: "check" },
  ], () => table.reload());
  table.reload();
  const page = h("div.page.page-turns",
    h("header.page-head", h("h1", "Turns"), h("span.page-sub", rangeLabel())), bar, table);
  page.refresh = () => table.refresh();
  return page;
}

function stats(t) {
  return h("div.stat-strip",
    stat("Duration", fmtMs(t.duration_ms)),
    stat("First response", fmtMs(t.first_response_ms)),
    stat("Calls", `${fmtInt(t.call_count)}`, `${fmtInt(t.main_call_count)} main · ${fmtInt(t.subagent_call_count)} sub · ${fmtInt(t.retry_count)} retries`),
    stat("Tokens", `${fmtCompact(t.input_total_tokens)} → ${fmtCompact(t.output_tokens)}`, `cache read ${fmtCompact(t.cache_read_tokens)} · write ${fmtCompact(t.cache_creation_tokens)}`),
    stat("Cost", costCell(t)),
    stat("Tools", fmtInt(t.tool_call_count), `${fmtInt(t.tool_error_count)} errors · ${fmtInt(t.tool_missing_count)} missing`),
    stat("Insights", fmtInt(t.insight_count), (t.insight_kinds || []).join(", ")));
}

export function stat(label, value, sub) {
  return h("div.stat", h("div.stat-label", label), h("div.stat-value", value), sub ? h("div.stat-sub", sub) : null);
}

async function detail(turnId) {
  const d = await get(`/api/turns/${encodeURIComponent(turnId)}`);
  const t = d.turn;
  const calls = d.calls || [];
  const q = parseHash().query;
  let selected = q.get("call") || t.anchor_call_id || calls[0]?.call_id;
  let tab = q.get("tab");
  const callHost = h("div.call-host");
  let tl = null;
  const showCall = async (callId, push) => {
    selected = callId;
    tl?.select(callId);
    if (push) setQuery({ call: callId });
    const c = calls.find((x) => x.call_id === callId);
    const idx = calls.indexOf(c) + 1;
    clear(callHost).append(loading());
    try {
      const view = await callView(callId, {
        tab, onTab: (id) => { tab = id; setQuery({ tab: id === "summary" ? null : id }); },
      });
      if (selected !== callId) return;
      clear(callHost).append(section(
        h("span", `Call ${idx || ""} · `, h("span.mono", c?.model || ""), " ", link("calls", callId, "open call ↗")), view));
    } catch (err) {
      clear(callHost).append(errorBox(err));
    }
  };
  tl = timeline(t, calls, d.tool_calls || [], { selected, onSelect: (c) => showCall(c.call_id, true) });
  if (selected) showCall(selected, false);

  const page = h("div.page.page-turn", { dataset: { turnId: t.turn_id, status: t.status } },
    h("header.page-head",
      h("nav.crumbs", { "aria-label": "Breadcrumb" }, h("a", { href: "#/turns" }, "Turns"), " / "),
      h("h1", "Turn ", h("span.mono", shortId(t.turn_id))), pill(t.status), h("span.muted", t.end_reason || ""),
      h("span.page-sub", `${t.agent_kind ?? ""} · ${fmtTime(t.start)}`)),
    stats(t),
    h("div.cols-2",
      section("Conversation", kv([
        ["User input", h("div.preview-block", t.user_input_preview || DASH)],
        ["Final answer", h("div.preview-block", t.final_answer_preview || DASH)],
        t.error ? ["Error", h("span.text-bad", `${t.error.type ?? ""}: ${t.error.message ?? ""}`)] : null,
      ])),
      section("Identity", kv([
        ["Turn", h("span.mono", t.turn_id)], ["Session", link("sessions", t.session_id, t.session_id)],
        ["Agent", t.agent_kind], ["Source", t.source_id], ["Wire API", t.wire_api], ["Server", t.server],
        ["Models", (t.models || []).join(", ")], ["Sub-agents", (t.subagents || []).join(", ")],
        ["Finish", t.finish_reason_raw ? `${t.finish} (${t.finish_reason_raw})` : t.finish],
      ], "kv-compact"))),
    section("Call timeline", tl),
    callHost,
    (d.tool_calls || []).length ? section("Tool calls", toolCallsTable(d.tool_calls, { showCall: true })) : null,
    (d.insights || []).length ? section("Insights", insightTable(d.insights)) : null);
  page.rerenderOnRefresh = t.status === "in_progress";
  return page;
}

export async function render({ path }) {
  return path[1] ? detail(path[1]) : list();
}
