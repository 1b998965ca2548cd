// Overview: KPI cards (metrics.md §3.3), time-series charts, per-agent activity (§4), per-model table.

import { get } from "../api.js";
import { h, fmtInt, fmtMs, fmtPct, fmtUsd, fmtCompact, isNum, pick, DASH } from "../util.js";
import { timeChart, barChart, color } from "../charts.js";
import { staticTable } from "../table.js";
import { rangeParams, rangeLabel } from "../state.js";

const WINDOW_S = { "10s": 10, "1m": 60, "5m": 300, "1h": 3600 };
const COST_NOTE = "List-price equivalent from genai-prices at capture time. The wire cannot show negotiated " +
  "discounts, flat-rate subscriptions (agents logged in with an account) or batch discounts.";

const TS_METRICS = ["calls", "errors", "errors_4xx", "errors_5xx", "aborted", "rate_limited", "error_rate", "ttft_ms.p50", "ttft_ms.p95", "e2e_ms.p95", "output_tps",
  "input_total_tokens", "output_tokens", "cache_read_tokens", "cost_usd", "active_avg", "active_peak", "cache_hit_ratio"];

function kpi(label, value, sub, opts = {}) {
  return h("div.kpi", { class: opts.tone ? `kpi-${opts.tone}` : null, title: opts.title || null, dataset: { kpi: opts.key || label } },
    h("div.kpi-label", label), h("div.kpi-value", value), h("div.kpi-sub", sub || "\u00a0"));
}

function kpis(sm) {
  const er = sm.error_rate;
  return h("section.kpis", { "aria-label": "Key metrics" },
    kpi("Calls", fmtInt(sm.calls), `${fmtCompact(sm.call_rate)}/s · ${fmtInt(sm.stream_calls)} streamed`, { key: "calls" }),
    kpi("Error rate", fmtPct(er), `${fmtInt(sm.errors)} errors · ${fmtInt(sm.rate_limited)} × 429`,
      { key: "error_rate", tone: isNum(er) && er > 0.05 ? "bad" : isNum(er) && er > 0 ? "warn" : null }),
    kpi("TTFT p50", fmtMs(pick(sm, "ttft_ms.p50")), `n = ${fmtInt(pick(sm, "ttft_ms.n"))}`, { key: "ttft_p50" }),
    kpi("TTFT p95", fmtMs(pick(sm, "ttft_ms.p95")), `p99 ${fmtMs(pick(sm, "ttft_ms.p99"))}`, { key: "ttft_p95" }),
    kpi("E2E p95", fmtMs(pick(sm, "e2e_ms.p95")), `p50 ${fmtMs(pick(sm, "e2e_ms.p50"))}`, { key: "e2e_p95" }),
    kpi("Output tok/s", fmtCompact(sm.output_tps), `${fmtCompact(sm.output_tokens)} output tokens`, { key: "output_tps" }),
    kpi("Cache hit", fmtPct(sm.cache_hit_ratio), `${fmtCompact(sm.cache_read_tokens)} of ${fmtCompact(sm.input_total_tokens)} input`,
      { key: "cache_hit_ratio" }),
    kpi("Cost", fmtUsd(sm.cost_usd), `cache saved ${fmtUsd(sm.cache_savings_usd)} · ${fmtPct(sm.priced_share, 0)} priced`,
      { key: "cost", title: COST_NOTE }),
  );
}

function charts(ts) {
  const buckets = ts.buckets || [];
  const win = WINDOW_S[ts.window] || (buckets.length > 1 ? buckets[1] - buckets[0] : 60);
  const vals = (m) => {
    const sr = (ts.series || [])[0];
    return sr ? (sr.values[m] || []) : [];
  };
  const calls = vals("calls");
  const errors = vals("errors");
  const okCalls = calls.map((c, i) => (isNum(c) ? c - (errors[i] || 0) : null));
  const common = { partialFrom: ts.partial_from };
  const sub = `per ${ts.window || "bucket"}`;
  return h("section.chart-grid", { "aria-label": "Time series" },
    timeChart(buckets, win, [
      { name: "ok", values: okCalls, color: "var(--ok)" },
      { name: "errors", values: errors, color: "var(--bad)" },
    ], { ...common, title: "Calls", subtitle: sub, type: "bar", stacked: true, format: fmtCompact }),
    timeChart(buckets, win, [
      { name: "TTFT p50", values: vals("ttft_ms.p50"), color: color(0) },
      { name: "TTFT p95", values: vals("ttft_ms.p95"), color: color(1) },
      { name: "E2E p95", values: vals("e2e_ms.p95"), color: color(2) },
    ], { ...common, title: "Latency", subtitle: "ok calls", format: fmtMs }),
    timeChart(buckets, win, [{ name: "error rate", values: vals("error_rate"), color: "var(--bad)" },
      { name: "cache hit", values: vals("cache_hit_ratio"), color: color(3) }],
    { ...common, title: "Error rate · cache hit ratio", format: (v) => fmtPct(v, 0) }),
    timeChart(buckets, win, [{ name: "output tok/s", values: vals("output_tps"), color: color(4) }],
      { ...common, title: "Output throughput", subtitle: "tokens/s by response end", format: fmtCompact }),
    timeChart(buckets, win, [
      { name: "input (total)", values: vals("input_total_tokens"), color: color(5) },
      { name: "cache read", values: vals("cache_read_tokens"), color: color(3) },
      { name: "output", values: vals("output_tokens"), color: color(4) },
    ], { ...common, title: "Tokens", subtitle: sub, format: fmtCompact }),
    timeChart(buckets, win, [
      { name: "avg in flight", values: vals("active_avg"), color: color(6) },
      { name: "peak", values: vals("active_peak"), color: color(7) },
    ], { ...common, title: "Concurrency", subtitle: "calls in flight", format: fmtCompact }),
    timeChart(buckets, win, [
      { name: "4xx (not 429)", values: vals("errors_4xx").map((v, i) => (v === null || v === undefined ? v : v - (vals("rate_limited")[i] || 0))), color: color(2) },
      { name: "429", values: vals("rate_limited"), color: "var(--warn)" },
      { name: "5xx", values: vals("errors_5xx"), color: "var(--bad)" },
      { name: "aborted", values: vals("aborted"), color: color(5) },
    ], { ...common, title: "Errors by class", subtitle: sub, type: "bar", stacked: true, format: fmtCompact }),
    timeChart(buckets, win, [{ name: "cost", values: vals("cost_usd"), color: color(8) }],
      { ...common, title: "Cost", subtitle: sub, type: "bar", format: fmtUsd }),
  );
}

const shortBucket = (b) => String(b ?? "").replace(/min$/, "m").replace(">=", "≥");

function agentsSection(ag) {
  const rows = ag.rows || ag.items || (Array.isArray(ag) ? ag : []);
  const statusText = (r) => Object.entries(r.turns_by_status || {}).filter(([, n]) => n)
    .map(([k, n]) => `${n} ${k}`).join(" · ") || DASH;
  const table = staticTable([
    { key: "agent_kind", label: "Agent", render: (r) => h("a", { href: `#/turns?agent_kind=${encodeURIComponent(r.agent_kind)}` }, r.agent_kind ?? "none") },
    { key: "turns", label: "Turns", num: true, render: (r) => fmtInt(r.turns) },
    { key: "status", label: "By status", sortable: false, render: statusText },
    { key: "dur50", label: "Duration p50", num: true, value: (r) => pick(r, "turn_duration_ms.p50"), render: (r) => fmtMs(pick(r, "turn_duration_ms.p50")) },
    { key: "dur95", label: "p95", num: true, value: (r) => pick(r, "turn_duration_ms.p95"), render: (r) => fmtMs(pick(r, "turn_duration_ms.p95")) },
    { key: "cpt", label: "Calls/turn", num: true, value: (r) => pick(r, "calls_per_turn.avg"), render: (r) => fmtCompact(pick(r, "calls_per_turn.avg")) },
    { key: "sub", label: "Sub-agent share", num: true, value: (r) => r.subagent_call_share, render: (r) => fmtPct(r.subagent_call_share, 0) },
    { key: "fr", label: "First resp. p50", num: true, value: (r) => pick(r, "first_response_ms.p50"), render: (r) => fmtMs(pick(r, "first_response_ms.p50")) },
    { key: "tool_calls", label: "Tool calls", num: true, render: (r) => fmtInt(r.tool_calls) },
    { key: "tsr", label: "Tool success", num: true, value: (r) => r.tool_success_rate, render: (r) => fmtPct(r.tool_success_rate, 0) },
    { key: "cost", label: "Cost", num: true, value: (r) => pick(r, "turn_cost_usd.sum"), render: (r) => fmtUsd(pick(r, "turn_cost_usd.sum")) },
  ], rows, { id: "agents-table", empty: "No agent turns in this range." });
  const hists = h("div.hist-grid", rows.map((r) => barChart(
    (r.turn_duration_histogram || []).map((b) => ({ label: shortBucket(b.bucket), value: b.count })),
    { title: `${r.agent_kind ?? "none"} · turn durations` })));
  return h("section.panel", h("h2.panel-title", "Agent activity"), table, rows.length ? hists : null);
}

function modelsSection(bd) {
  const rows = bd.rows || [];
  return h("section.panel", h("h2.panel-title", "By model"), staticTable([
    { key: "key", label: "Model", render: (r) => h("a", { href: `#/calls?model=${encodeURIComponent(r.key ?? "")}` }, r.key ?? "none") },
    { key: "calls", label: "Calls", num: true, render: (r) => fmtInt(r.calls) },
    { key: "error_rate", label: "Errors", num: true, render: (r) => fmtPct(r.error_rate) },
    { key: "ttft50", label: "TTFT p50", num: true, value: (r) => pick(r, "ttft_ms.p50"), render: (r) => fmtMs(pick(r, "ttft_ms.p50")) },
    { key: "ttft95", label: "TTFT p95", num: true, value: (r) => pick(r, "ttft_ms.p95"), render: (r) => fmtMs(pick(r, "ttft_ms.p95")) },
    { key: "e2e95", label: "E2E p95", num: true, value: (r) => pick(r, "e2e_ms.p95"), render: (r) => fmtMs(pick(r, "e2e_ms.p95")) },
    { key: "tpot", label: "TPOT p50", num: true, value: (r) => pick(r, "tpot_ms.p50"), render: (r) => fmtMs(pick(r, "tpot_ms.p50")) },
    { key: "input_total_tokens", label: "Input tok", num: true, render: (r) => fmtCompact(r.input_total_tokens) },
    { key: "output_tokens", label: "Output tok", num: true, render: (r) => fmtCompact(r.output_tokens) },
    { key: "cache_hit_ratio", label: "Cache hit", num: true, render: (r) => fmtPct(r.cache_hit_ratio, 0) },
    { key: "cost_usd", label: "Cost", num: true, render: (r) => fmtUsd(r.cost_usd) },
  ], rows, { id: "models-table", empty: "No calls in this range." }));
}

export async function render() {
  const range = rangeParams();
  const [sm, ts, ag, bd] = await Promise.all([
    get("/api/metrics/summary", range),
    get("/api/metrics/timeseries", { ...range, metrics: TS_METRICS }),
    get("/api/metrics/agents", range),
    get("/api/metrics/breakdown", { ...range, by: "model" }),
  ]);
  return h("div.page.page-overview",
    h("header.page-head", h("h1", "Overview"), h("span.page-sub", rangeLabel())),
    kpis(sm), charts(ts),
    h("div.two-col", agentsSection(ag), modelsSection(bd)));
}
