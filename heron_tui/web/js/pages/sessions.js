// Sessions: list and detail (its turns, auxiliary calls and context growth).

import { get } from "../api.js";
import { h, fmtMs, fmtInt, fmtCompact, fmtTime, pill, link, truncate, shortId, DASH } from "../util.js";
import { pagedTable, staticTable } from "../table.js";
import { filterBar, filterParams, filterValues } from "../filters.js";
import { rangeParams, rangeLabel } from "../state.js";
import { kv, section } from "../widgets.js";
import { barChart } from "../charts.js";
import { turnColumns, costCell, stat } from "./turns.js";
import { callColumns } from "./calls.js";

const FILTER_KEYS = ["agent_kind", "source_id"];

function turnsCell(s) {
  const bad = (s.turns_incomplete || 0) + (s.turns_partial || 0);
  return h("span", fmtInt(s.turn_count), bad ? h("span.muted", { title: `${s.turns_incomplete} incomplete, ${s.turns_partial} partial` }, ` (${bad} inc.)`) : null);
}

const COLUMNS = [
  { key: "last_end", label: "Last activity", sort: "last_end", render: (s) => h("span.mono.nowrap", fmtTime(s.last_end)) },
  { key: "state", label: "State", render: (s) => pill(s.state) },
  { key: "session_id", label: "Session", render: (s) => link("sessions", s.session_id) },
  { key: "agent_kind", label: "Agent" },
  { key: "first_user_input_preview", label: "First input", cls: "wide", render: (s) => h("span.preview", { title: s.first_user_input_preview || "" }, truncate(s.first_user_input_preview, 80) || DASH) },
  { key: "turn_count", label: "Turns", num: true, sort: "turn_count", render: turnsCell },
  { key: "call_count", label: "Calls", num: true, render: (s) => h("span", fmtInt(s.call_count), s.auxiliary_call_count ? h("span.muted", ` +${s.auxiliary_call_count} aux`) : null) },
  { key: "models", label: "Models", render: (s) => h("span.nowrap", (s.models || []).join(", ") || DASH) },
  { key: "duration", label: "Span", num: true, render: (s) => fmtMs((s.last_end - s.first_start) * 1000) },
  { key: "tokens", label: "Tokens in→out", num: true, render: (s) => `${fmtCompact(s.input_total_tokens)}→${fmtCompact(s.output_tokens)}` },
  { key: "tool_call_count", label: "Tools", num: true, render: (s) => h("span", fmtInt(s.tool_call_count), s.tool_error_count ? h("span.text-bad", ` !${s.tool_error_count}`) : null) },
  { key: "cost_usd", label: "Cost", num: true, sort: "cost_usd", render: costCell },
  { key: "insight_count", label: "Insights", num: true, render: (s) => (s.insight_count ? h("span.badge.badge-warn", String(s.insight_count)) : "") },
  { key: "source_id", label: "Source", render: (s) => h("span.nowrap", s.source_id) },
];

async function list() {
  const fv = await filterValues();
  const table = pagedTable(COLUMNS, {
    id: "sessions-table", path: "/api/sessions", defaultSort: "-last_end",
    params: () => ({ ...rangeParams(), ...filterParams(FILTER_KEYS) }),
    rowHref: (s) => `#/sessions/${encodeURIComponent(s.session_id)}`,
    empty: "No sessions in this range.",
  });
  const bar = filterBar([
    { key: "agent_kind", label: "Agent", type: "select", options: fv.agent_kind || [] },
    { key: "source_id", label: "Source", type: "select", options: fv.source_id || [] },
  ], () => table.reload());
  table.reload();
  const page = h("div.page.page-sessions",
    h("header.page-head", h("h1", "Sessions"), h("span.page-sub", rangeLabel())), bar, table);
  page.refresh = () => table.refresh();
  return page;
}

async function contextGrowth(sessionId) {
  let calls = [];
  try {
    const r = await get("/api/calls", { session_id: sessionId, sort: "request_start", limit: 1000, since: 0 });
    calls = (r.items || []).filter((c) => !c.subagent && !c.is_auxiliary && c.input_total_tokens !== null);
  } catch { return null; }
  if (calls.length < 2) return null;
  const every = Math.ceil(calls.length / 24);
  return section("Context growth", h("p.hint", "Input tokens (total, incl. cache) of each main-agent call, in order."),
    barChart(calls.map((c, i) => ({ label: i % every === 0 ? String(i + 1) : "", value: c.input_total_tokens })),
      { height: 120 }));
}

async function detail(sessionId) {
  const d = await get(`/api/sessions/${encodeURIComponent(sessionId)}`);
  const s = d.session;
  const growth = await contextGrowth(sessionId);
  return h("div.page.page-session", { dataset: { sessionId: s.session_id } },
    h("header.page-head",
      h("nav.crumbs", { "aria-label": "Breadcrumb" }, h("a", { href: "#/sessions" }, "Sessions"), " / "),
      h("h1", "Session ", h("span.mono", shortId(s.session_id))), pill(s.state),
      h("span.page-sub", `${s.agent_kind ?? ""} · ${fmtTime(s.first_start)} → ${fmtTime(s.last_end, { date: false })}`)),
    h("div.stat-strip",
      stat("Turns", fmtInt(s.turn_count), `${fmtInt(s.turns_complete)} complete · ${fmtInt(s.turns_incomplete)} incomplete · ${fmtInt(s.turns_partial)} partial`),
      stat("Calls", fmtInt(s.call_count), `${fmtInt(s.auxiliary_call_count)} auxiliary`),
      stat("Span", fmtMs((s.last_end - s.first_start) * 1000)),
      stat("Tokens", `${fmtCompact(s.input_total_tokens)} → ${fmtCompact(s.output_tokens)}`, `cache read ${fmtCompact(s.cache_read_tokens)}`),
      stat("Cost", costCell(s)),
      stat("Tools", fmtInt(s.tool_call_count), `${fmtInt(s.tool_error_count)} errors`),
      stat("Insights", fmtInt(s.insight_count))),
    section("Identity", kv([
      ["Session", h("span.mono", s.session_id)], ["Native id", h("span.mono", s.native_session_id ?? DASH)],
      ["Session source", s.session_source], ["Agent", s.agent_kind], ["Source", s.source_id], ["Server", s.server],
      ["Client", s.client_ip ?? (s.process ? `${s.process.comm}[${s.process.pid}]` : null)],
      ["Models", (s.models || []).join(", ")], ["Sub-agents", (s.subagents || []).join(", ")],
      ["First input", h("div.preview-block", s.first_user_input_preview || DASH)],
    ], "kv-compact kv-wide")),
    section(`Turns (${(d.turns || []).length})`, staticTable(turnColumns({ session: false }), d.turns || [],
      { id: "session-turns", rowHref: (t) => `#/turns/${encodeURIComponent(t.turn_id)}`, empty: "No turns." })),
    growth,
    (d.auxiliary_calls || []).length ? section(`Auxiliary calls (${d.auxiliary_calls.length})`,
      staticTable(callColumns({ turn: false }), d.auxiliary_calls, { rowHref: (c) => `#/calls/${encodeURIComponent(c.call_id)}` })) : null);
}

export async function render({ path }) {
  return path[1] ? detail(path[1]) : list();
}
