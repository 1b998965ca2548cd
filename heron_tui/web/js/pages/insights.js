// Insights: what the engine called out (loops, retry storms, model substitutions, rate-limit pressure…).

import { h, fmtTime, fmtInt, pill, link, maybeJson, DASH } from "../util.js";
import { pagedTable, staticTable } from "../table.js";
import { filterBar, filterParams } from "../filters.js";
import { rangeParams, rangeLabel } from "../state.js";
import { jsonView, kv } from "../widgets.js";

const FILTER_KEYS = ["kind", "severity", "source_id", "session_id", "turn_id"];
const KINDS = ["planner_loop", "retry_storm", "model_substitution", "rate_limit_pressure", "stalled_tool",
  "context_growth"];

const sevTone = (s) => (s === "critical" ? "bad" : s === "warning" ? "warn" : "muted");

function callLinks(ids) {
  const list = ids || [];
  if (!list.length) return DASH;
  const shown = list.slice(0, 3).map((id) => link("calls", id));
  return h("span.nowrap", shown.flatMap((a, i) => (i ? [" ", a] : [a])), list.length > 3 ? h("span.muted", ` +${list.length - 3}`) : null);
}

function columns() {
  return [
    { key: "last_seen", label: "Last seen", sort: "last_seen", render: (r) => h("span.mono.nowrap", fmtTime(r.last_seen ?? r.first_seen)) },
    { key: "severity", label: "Severity", render: (r) => pill(r.severity, sevTone(r.severity)) },
    { key: "kind", label: "Kind", render: (r) => h("span.mono", r.kind) },
    { key: "summary", label: "Summary", cls: "wide wrap", render: (r) => h("span.preview", r.summary ?? DASH) },
    { key: "count", label: "Count", num: true, sort: "count", render: (r) => fmtInt(r.count) },
    { key: "session_id", label: "Session", render: (r) => link("sessions", r.session_id) },
    { key: "turn_id", label: "Turn", render: (r) => link("turns", r.turn_id) },
    { key: "call_ids", label: "Calls", sortable: false, render: (r) => callLinks(r.call_ids) },
    { key: "source_id", label: "Source" },
  ];
}

export function insightDetail(r) {
  return h("div.insight-detail",
    kv([["Insight", h("span.mono", r.insight_id)], ["First seen", fmtTime(r.first_seen)], ["Last seen", fmtTime(r.last_seen)],
      ["Calls", h("span", (r.call_ids || []).flatMap((id, i) => (i ? [" ", link("calls", id)] : [link("calls", id)])))]], "kv-compact"),
    jsonView(maybeJson(r.details) ?? {}));
}

/** Static insight table for detail pages (rows expand to their details). */
export function insightTable(rows) {
  return staticTable(columns(), rows || [], { id: "insights-inline", expand: insightDetail, empty: "No insights." });
}

export async function render() {
  const table = pagedTable(columns(), {
    id: "insights-table", path: "/api/insights", defaultSort: "-last_seen",
    params: () => ({ ...rangeParams(), ...filterParams(FILTER_KEYS) }),
    expand: insightDetail, empty: "No insights in this range.",
  });
  const bar = filterBar([
    { key: "kind", label: "Kind", type: "select", options: KINDS },
    { key: "severity", label: "Severity", type: "select", options: ["info", "warning", "critical"] },
    { key: "session_id", label: "Session", type: "text", placeholder: "session id", size: 14 },
    { key: "turn_id", label: "Turn", type: "text", placeholder: "turn id", size: 14 },
  ], () => table.reload());
  table.reload();
  const page = h("div.page.page-insights",
    h("header.page-head", h("h1", "Insights"), h("span.page-sub", rangeLabel()),
      h("span.hint", "Click a row for its details.")), bar, table);
  page.refresh = () => table.refresh();
  return page;
}
