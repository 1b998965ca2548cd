// Calls: filterable, sortable, paged list of LLM calls; detail with bodies, headers and conversation.

import { get } from "../api.js";
import { h, fmtMs, fmtCompact, fmtUsd, fmtTime, pill, statusTone, link, truncate, shortId, DASH } from "../util.js";
import { pagedTable } from "../table.js";
import { filterBar, filterParams, filterValues } from "../filters.js";
import { rangeParams, rangeLabel, parseHash, setQuery } from "../state.js";
import { callView } from "../callview.js";
import { callClass } from "../timeline.js";
import { stat } from "./turns.js";

const FILTER_KEYS = ["source_id", "wire_api", "model", "server", "agent_kind", "status_code", "finish", "ok",
  "is_stream", "hops", "session_id", "turn_id", "in_flight"];
const FINISHES = ["stop", "length", "tool_use", "content_filter", "error", "aborted", "other"];

export function callColumns({ turn = true } = {}) {
  return [
    { key: "request_start", label: "Time", sort: "request_start", render: (c) => h("span.mono.nowrap", fmtTime(c.request_start)) },
    { key: "status_code", label: "Status", render: (c) => pill(String(c.status_code ?? "—"), statusTone(c.status_code)) },
    { key: "finish", label: "Finish", render: (c) => h("span", { class: `fin ${callClass(c)}` }, c.finish ?? DASH) },
    { key: "call_id", label: "Call", render: (c) => link("calls", c.call_id) },
    { key: "agent_kind", label: "Agent", render: (c) => h("span.nowrap", c.agent_kind ?? DASH, c.subagent ? h("span.tag.tag-sub", c.subagent) : null,
      c.is_auxiliary ? h("span.tag", c.auxiliary_kind || "aux") : null) },
    { key: "model", label: "Model", render: (c) => h("span.nowrap", { title: c.model_requested ? `requested ${c.model_requested}` : null }, c.model ?? c.model_requested ?? DASH) },
    { key: "wire_api", label: "Wire API", render: (c) => h("span.nowrap", c.wire_api, c.is_stream ? h("span.muted", " ⇶") : null) },
    { key: "server", label: "Server", render: (c) => h("span.mono.nowrap", c.server ?? DASH) },
    turn ? { key: "turn_id", label: "Turn", render: (c) => link("turns", c.turn_id) } : null,
    { key: "ttft_ms", label: "TTFT", num: true, sort: "ttft_ms", render: (c) => fmtMs(c.ttft_ms) },
    { key: "e2e_ms", label: "E2E", num: true, sort: "e2e_ms", render: (c) => fmtMs(c.e2e_ms) },
    { key: "input_total_tokens", label: "In tok", num: true, render: (c) => fmtCompact(c.input_total_tokens) },
    { key: "output_tokens", label: "Out tok", num: true, sort: "output_tokens", render: (c) => fmtCompact(c.output_tokens) },
    { key: "cost_usd", label: "Cost", num: true, sort: "cost_usd", render: (c) => h("span", { title: c.cost_status || null }, fmtUsd(c.cost_usd)) },
    { key: "output_preview", label: "Output", cls: "wide", render: (c) => h("span.preview", { title: c.output_preview || c.error?.message || "" },
      c.error ? h("span.text-bad", truncate(`${c.error.type ?? "error"}: ${c.error.message ?? ""}`, 70)) : truncate(c.output_preview, 70) || DASH) },
  ].filter(Boolean);
}

async function list() {
  const fv = await filterValues();
  const table = pagedTable(callColumns(), {
    id: "calls-table", path: "/api/calls", defaultSort: "-request_start",
    params: () => ({ ...rangeParams(), ...filterParams(FILTER_KEYS) }),
    rowHref: (c) => `#/calls/${encodeURIComponent(c.call_id)}`,
    rowClass: (c) => (c.ok === false ? "row-bad" : ""),
    empty: "No calls in this range.",
  });
  const bar = filterBar([
    { key: "agent_kind", label: "Agent", type: "select", options: fv.agent_kind || [] },
    { key: "model", label: "Model", type: "select", options: fv.model || [] },
    { key: "wire_api", label: "Wire API", type: "select", options: fv.wire_api || [] },
    { key: "server", label: "Server", type: "select", options: fv.server || [] },
    { key: "source_id", label: "Source", type: "select", options: fv.source_id || [] },
    { key: "status_code", label: "Status", type: "text", placeholder: "429,500", size: 6 },
    { key: "finish", label: "Finish", type: "select", options: FINISHES },
    { key: "ok", label: "Outcome", type: "select", options: [["true", "ok"], ["false", "failed"]] },
    { key: "is_stream", label: "Stream", type: "select", options: [["true", "yes"], ["false", "no"]] },
    { key: "hops", label: "Proxy legs", type: "select", anyLabel: "folded", options: [["include", "all legs"]] },
    { key: "turn_id", label: "Turn", type: "text", placeholder: "turn id", size: 12 },
    { key: "in_flight", label: "In flight", type: "check" },
  ], () => table.reload());
  table.reload();
  const page = h("div.page.page-calls",
    h("header.page-head", h("h1", "Calls"), h("span.page-sub", rangeLabel())), bar, table);
  page.refresh = () => table.refresh();
  return page;
}

async function detail(callId) {
  const q = parseHash().query;
  const d = await get(`/api/calls/${encodeURIComponent(callId)}`);
  const c = d.call;
  const view = await callView(callId, { detail: d, tab: q.get("tab"), onTab: (tab) => setQuery({ tab: tab === "summary" ? null : tab }) });
  return h("div.page.page-call", { dataset: { callId } },
    h("header.page-head",
      h("nav.crumbs", { "aria-label": "Breadcrumb" }, h("a", { href: "#/calls" }, "Calls"), " / "),
      h("h1", "Call ", h("span.mono", shortId(c.call_id))),
      pill(String(c.status_code ?? "no response"), statusTone(c.status_code)),
      h("span.page-sub", `${c.method} ${c.path} · ${c.model ?? c.model_requested ?? ""} · ${fmtTime(c.request_start)}`),
      c.turn_id ? h("a.btn.btn-sm", { href: `#/turns/${encodeURIComponent(c.turn_id)}?call=${encodeURIComponent(c.call_id)}` }, "Open in turn timeline") : null),
    h("div.stat-strip",
      stat("TTFT", fmtMs(c.ttft_ms)), stat("E2E", fmtMs(c.e2e_ms)), stat("TPOT", fmtMs(c.tpot_ms)),
      stat("Tokens", `${fmtCompact(c.input_total_tokens)} → ${fmtCompact(c.output_tokens)}`),
      stat("Cost", fmtUsd(c.cost_usd), c.cost_status), stat("Finish", c.finish ?? DASH, c.finish_reason_raw)),
    view);
}

export async function render({ path }) {
  return path[1] ? detail(path[1]) : list();
}
