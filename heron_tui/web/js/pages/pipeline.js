// Pipeline health (capture-and-http.md §11): the pill and its reasons, sources, queues, and the
// counters of every stage, with the counters that drive the health pill highlighted.

import { get } from "../api.js";
import { h, fmtInt, fmtTime, fmtCompact, fmtBytes, isNum, pill, DASH } from "../util.js";
import { staticTable } from "../table.js";
import { meter } from "../charts.js";
import { kv, section } from "../widgets.js";
import { state } from "../state.js";

const CRITICAL = new Set(["packets_dropped_overload", "packets_dropped_kernel", "zmq_batches_malformed", "zmq_batches_dropped",
  "ebpf_events_lost", "flush_errors", "store_rows_failed", "read_errors"]);
const WARNING = new Set(["tcp_gaps_skipped", "parse_errors", "unpaired_responses", "exchanges_damaged", "calls_late", "h2_skipped"]);
const STAGE_ORDER = ["reader", "decode", "tcp", "http", "wire", "agents", "assembler", "store"];

function valueNode(name, v) {
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v);
    if (!entries.length) return "0";
    return h("span.counter-map", entries.map(([k, x]) => h("span.counter-kv", h("span.muted", `${k} `), valueNode(k, x))));
  }
  if (!isNum(v)) return v === null || v === undefined ? DASH : String(v);
  if (/(^|_)(pid|index|port)$/.test(name)) return String(v);
  const text = /bytes/.test(name) ? fmtBytes(v) : Number.isInteger(v) ? fmtInt(v) : fmtCompact(v);
  if (v > 0 && CRITICAL.has(name)) return h("span.text-bad", { title: "drives the health pill: critical" }, text);
  if (v > 0 && WARNING.has(name)) return h("span.text-warn", { title: "drives the health pill: warning" }, text);
  return text;
}

function stageCard(stage, counters) {
  const entries = Object.entries(counters || {});
  return h("section.panel.stage", { dataset: { stage } }, h("h2.panel-title", stage),
    entries.length ? h("table.grid.counters", h("tbody", entries.map(([name, v]) =>
      h("tr", h("td.mono", name), h("td.num", valueNode(name, v)))))) : h("div.muted", "no counters"));
}

function queuesTable(queues) {
  return staticTable([
    { key: "name", label: "Queue", cls: "mono" },
    { key: "fill", label: "Fill", sortable: false, value: (q) => (q.capacity ? q.depth / q.capacity : 0), render: (q) => {
      const f = q.capacity ? q.depth / q.capacity : 0;
      return h("span.nowrap", meter(f, f >= 0.95 ? "bad" : f >= 0.9 ? "warn" : null), ` ${fmtInt(q.depth)} / ${fmtInt(q.capacity)}`);
    } },
    { key: "high_water", label: "High water", num: true, render: (q) => fmtInt(q.high_water) },
    { key: "blocked_s", label: "Blocked", num: true, render: (q) => (isNum(q.blocked_s) ? `${q.blocked_s.toFixed(2)} s` : DASH) },
    { key: "dropped", label: "Dropped", num: true, render: (q) => (q.dropped ? h("span.text-bad", fmtInt(q.dropped)) : "0") },
  ], queues || [], { id: "queues-table", empty: "No queues (a served database has no running pipeline)." });
}

function sourcesTable(sources) {
  return staticTable([
    { key: "source_id", label: "Source", cls: "mono" },
    { key: "kind", label: "Kind" },
    { key: "state", label: "State", render: (x) => pill(x.state) },
    { key: "watermark", label: "Watermark", render: (x) => h("span.mono", fmtTime(x.watermark)) },
    { key: "lag_s", label: "Lag", num: true, render: (x) => (isNum(x.lag_s) ? `${x.lag_s.toFixed(1)} s` : DASH) },
  ], sources || [], { id: "sources-table", empty: "No sources." });
}

function workersNode(w) {
  if (w === null || w === undefined) return h("div.muted", "—");
  if (Array.isArray(w)) {
    if (!w.length) return h("div.muted", "none");
    if (typeof w[0] === "object") {
      const keys = Object.keys(w[0]);
      return staticTable(keys.map((k) => ({ key: k, label: k, render: (r) => valueNode(k, r[k]) })), w, { id: "workers-table" });
    }
    return h("div", w.join(", "));
  }
  if (typeof w === "object") return kv(Object.entries(w).map(([k, v]) => [k, valueNode(k, v)]), "kv-compact");
  return h("div.stat-value", String(w));
}

export async function render() {
  const p = await get("/api/pipeline");
  const hl = state.health || {};
  const counters = p.counters || {};
  const stages = [...STAGE_ORDER.filter((st) => st in counters), ...Object.keys(counters).filter((st) => !STAGE_ORDER.includes(st))];
  return h("div.page.page-pipeline",
    h("header.page-head", h("h1", "Pipeline health"), h("span#pipeline-pill", pill(p.health, p.health)),
      h("span.page-sub", `sampled ${fmtTime(p.sampled_at)}`)),
    h("div.cols-2",
      section("Status", h("div.reasons", (p.reasons || []).length
        ? h("ul.reason-list", p.reasons.map((r) => h("li", typeof r === "string" ? r : JSON.stringify(r))))
        : h("div.muted", "No problems since the previous sample.")),
      kv([["Mode", hl.mode === "run" ? "run (engine live)" : "serve (read-only database)"], ["Version", hl.version],
        ["Database", h("span.mono", hl.db || "in memory")], ["Schema", hl.schema_version], ["Prices", hl.price_version],
        ["Uptime", isNum(hl.uptime_s) ? `${fmtCompact(hl.uptime_s)} s` : null]], "kv-compact")),
      section("Workers", workersNode(p.workers))),
    section("Sources", sourcesTable(hl.sources)),
    section("Queues", queuesTable(p.queues)),
    h("h2.group-title", "Counters by stage"),
    h("div.stage-grid", stages.map((st) => stageCard(st, counters[st]))));
}
