// One call in full: summary, timing waterfall, conversation, request/response JSON, raw HTTP headers,
// tool calls, hop peer and insights. Used by the call page and inside a turn's timeline.

import { get, getText } from "./api.js";
import { h, fmtMs, fmtInt, fmtUsd, fmtBytes, fmtTime, fmtCompact, pill, statusTone, link, isNum, pretty, DASH } from "./util.js";
import { tabs, kv, jsonView, codeView, section } from "./widgets.js";
import { conversation } from "./conversation.js";
import { staticTable } from "./table.js";
import { insightTable } from "./pages/insights.js";

/** Normalise the bodies list/map of a call detail to {part: info}. */
function bodyMap(detail) {
  const b = detail.bodies;
  if (!b) return {};
  if (Array.isArray(b)) return Object.fromEntries(b.map((x) => [x.part, x]));
  return b;
}

async function fetchBody(callId, part, format = "pretty") {
  const exId = callId;
  return getText(`/api/exchanges/${encodeURIComponent(exId)}/body/${part}`, { format });
}

async function bodyJson(callId, part, info) {
  if (!info) return [null, "not stored"];
  if (info.truncated) return [null, `capped in the store (${fmtBytes(info.dropped_bytes ?? (info.original_bytes - info.stored_bytes))} elided)`];
  const { text } = await fetchBody(callId, part, "raw");
  try { return [JSON.parse(text), null]; } catch { return [null, "not valid JSON"]; }
}

function timing(c) {
  const t0 = c.request_start;
  const end = c.response_end ?? c.request_end;
  const total = isNum(end) ? (end - t0) * 1000 : null;
  const seg = (label, a, b, cls) => (isNum(a) && isNum(b) && b >= a ? { label, a: (a - t0) * 1000, b: (b - t0) * 1000, cls } : null);
  const segs = [
    seg("upload", c.request_start, c.request_end, "seg-upload"),
    seg("wait for head", c.request_end, c.response_start, "seg-wait"),
    seg("head → first chunk", c.response_start, c.first_chunk, "seg-head"),
    seg("first chunk → first token", c.first_chunk, c.first_token, "seg-head"),
    seg("generation", c.first_token ?? c.first_chunk ?? c.response_start, c.response_end, "seg-gen"),
  ].filter(Boolean);
  const scale = total && total > 0 ? total : 1;
  return h("div.waterfall", { "aria-label": "Timing waterfall" },
    segs.map((sg) => h("div.wf-row",
      h("span.wf-label", sg.label),
      h("span.wf-track", h("span.wf-bar", { class: sg.cls, style: { left: `${(sg.a / scale) * 100}%`, width: `${Math.max(0.3, ((sg.b - sg.a) / scale) * 100)}%` } })),
      h("span.wf-val.num", fmtMs(sg.b - sg.a)))),
    h("div.wf-row.wf-total", h("span.wf-label", "total (E2E)"), h("span.wf-track"), h("span.wf-val.num", fmtMs(total))));
}

function summary(detail) {
  const c = detail.call;
  const err = c.error;
  const rl = c.ratelimit;
  return h("div.call-summary",
    h("div.cols-3",
      section("Call", kv([
        ["Call", h("span.mono", c.call_id)],
        ["Request", h("span.mono", `${c.method} ${c.host || c.server || ""}${c.path || ""}`)],
        ["Status", h("span", pill(String(c.status_code ?? "no response"), statusTone(c.status_code)), " ", pill(c.finish, c.ok ? "ok" : undefined))],
        ["Wire API", `${c.wire_api} · ${c.operation} (${c.detected_by})`],
        ["Model", c.model === c.model_requested || !c.model_requested ? c.model : `${c.model} (asked ${c.model_requested})`],
        ["Provider", c.provider],
        ["Stream", c.is_stream ? `yes (${c.stream_format})` : "no"],
        ["Finish", c.finish_reason_raw ? `${c.finish} (${c.finish_reason_raw})` : c.finish],
        err ? ["Error", h("span.text-bad", `${err.source}: ${err.type ?? ""} ${err.message ?? ""}`)] : null,
        c.refusal ? ["Refusal", c.refusal] : null,
        ["Started", fmtTime(c.request_start)],
      ])),
      section("Agent", kv([
        ["Agent", c.agent_kind],
        ["Session", link("sessions", c.session_id)],
        ["Turn", link("turns", c.turn_id)],
        ["Sub-agent", c.subagent],
        ["Auxiliary", c.is_auxiliary ? c.auxiliary_kind || "yes" : "no"],
        ["Attempt", c.attempt > 1 ? h("span.text-warn", `${c.attempt} (retry of `, link("calls", c.retry_of), ")") : String(c.attempt ?? 1)],
        ["Hop", c.hop_role ? h("span", c.hop_role, " · peer ", link("calls", c.hop_peer_call_id)) : null],
        ["Source", c.source_id],
        ["Client", c.connection ? `${c.connection.client_ip}:${c.connection.client_port}` : c.process ? `${c.process.comm}[${c.process.pid}]` : null],
        ["Server", c.server],
        c.process ? ["Process", h("span.mono", `${c.process.comm} · pid ${c.process.pid} · ${c.process.exe ?? "executable unknown"}`), "captured with eBPF at the TLS boundary"] : null,
      ])),
      section("Usage & cost", kv([
        ["Input (total)", fmtInt(c.input_total_tokens), "input_total_tokens: uncached + cache reads + cache writes"],
        ["  cache read / write", `${fmtInt(c.cache_read_tokens)} / ${fmtInt(c.cache_creation_tokens)}`],
        ["Output", `${fmtInt(c.output_tokens)}${isNum(c.reasoning_tokens) ? ` (reasoning ${fmtInt(c.reasoning_tokens)})` : ""}`],
        ["Context Δ", isNum(c.context_delta_tokens) ? fmtInt(c.context_delta_tokens) : null],
        ["Usage", c.usage_estimated ? "estimated" : "reported"],
        ["Cost", h("span", fmtUsd(c.cost_usd), " ", h("span.muted", c.cost_status || ""))],
        ["  in / out", `${fmtUsd(c.cost_input_usd)} / ${fmtUsd(c.cost_output_usd)}`],
        ["Cache savings", fmtUsd(c.cache_savings_usd)],
        ["Bytes req / resp", `${fmtBytes(c.request_body_bytes)} / ${fmtBytes(c.response_body_bytes)}`],
        rl ? ["Rate limit", `${fmtInt(rl.remaining_requests)}/${fmtInt(rl.limit_requests)} req · ${fmtCompact(rl.remaining_tokens)}/${fmtCompact(rl.limit_tokens)} tok${isNum(rl.retry_after_s) ? ` · retry after ${rl.retry_after_s}s` : ""}`] : null,
        c.damaged ? ["Damaged", h("span.text-bad", (c.damage || []).join(", "))] : null,
      ])),
    ),
    section("Timing", h("div.timing-grid",
      timing(c),
      kv([["TTFT", fmtMs(c.ttft_ms)], ["E2E", fmtMs(c.e2e_ms)], ["TPOT", fmtMs(c.tpot_ms)], ["Upload", fmtMs(c.upload_ms)],
        ["Head", fmtMs(c.head_ms)], ["First chunk", fmtMs(c.first_chunk_ms)], ["Generation", fmtMs(c.gen_ms)]], "kv-compact"))));
}

function blockNode(b) {
  const head = {
    system: "System", user: "User", assistant: "Assistant", thinking: "Thinking",
    tool_call: `Tool call · ${b.name ?? ""}`, tool_result: `Tool result${b.name ? " · " + b.name : ""}`, note: "Note",
  }[b.kind] || b.kind;
  const body = b.kind === "tool_call"
    ? jsonView(b.args ?? {})
    : h("div.msg-text", b.text === null || b.text === undefined || b.text === "" ? h("span.muted", "(empty)") : b.text);
  return h("article.msg", { class: `msg-${b.kind}${b.error ? " msg-error" : ""}${b.side === "response" ? " msg-response" : ""}` },
    h("header.msg-head", h("span.msg-role", head), b.id ? h("span.msg-id.mono", b.id) : null,
      b.side === "response" ? h("span.msg-side", "response") : null, b.error ? pill("error", "bad") : null),
    body);
}

async function conversationView(detail) {
  const c = detail.call;
  const bodies = bodyMap(detail);
  const [[req, whyReq], [res, whyRes]] = await Promise.all([
    bodyJson(c.call_id, "request", bodies.request),
    bodyJson(c.call_id, "response_object", bodies.response_object),
  ]);
  const blocks = conversation(c.wire_api, c.operation, req, res, { request: whyReq, response: whyRes });
  if (!res && c.error?.message) blocks.push({ kind: "note", side: "response", text: `error: ${c.error.type ?? ""}: ${c.error.message}` });
  return h("div.conversation", blocks.map(blockNode));
}

async function bodyView(callId, part, info) {
  if (!info) return h("div.note", `No ${part.replace("_", " ")} body stored for this call.`);
  const { text, truncated, contentType } = await fetchBody(callId, part, "pretty");
  const meta = h("div.body-meta",
    `${fmtBytes(info.original_bytes)} original · ${fmtBytes(info.stored_bytes)} stored`,
    truncated || info.truncated ? h("span.pill.pill-warn", "capped: middle elided") : null,
    contentType ? h("span.muted", contentType) : null);
  const looksJson = /json/.test(contentType) && !truncated;
  return h("div", meta, looksJson ? jsonView(text) : codeView(text));
}

function headerBlock(startLine, pairs) {
  return h("div.http-head", h("pre.code.headers",
    h("span.h-start", startLine), "\n",
    (pairs || []).map(([k, v]) => [h("span.h-name", k), ": ", h("span.h-val", v), "\n"])));
}

function headersView(detail) {
  const ex = detail.exchange;
  if (!ex) return h("div.note", "No exchange row stored for this call.");
  const parse = (v) => (typeof v === "string" ? JSON.parse(v) : v) || [];
  const q = ex.query ? `?${ex.query}` : "";
  return h("div.headers-view",
    h("h3.sub-title", "Request"),
    headerBlock(`${ex.method} ${ex.path}${q} ${ex.http_version || ""}`, parse(ex.request_headers)),
    h("h3.sub-title", "Response"),
    ex.status_code ? headerBlock(`${ex.http_version || ""} ${ex.status_code}`, parse(ex.response_headers)) : h("div.note", "No response."),
    kv([["Connection", `${ex.client_ip ?? ""}:${ex.client_port ?? ""} → ${ex.server_ip ?? ""}:${ex.server_port ?? ""}`],
      ["Encoding req / resp", `${ex.request_content_encoding || "identity"} / ${ex.response_content_encoding || "identity"}`],
      ["Wire bytes req / resp", `${fmtBytes(ex.request_wire_bytes)} / ${fmtBytes(ex.response_wire_bytes)}`],
      ["Stream", ex.is_stream ? `${ex.stream_format} · ${fmtInt(ex.stream_events)} events` : "no"],
      ["State", ex.state], ex.damaged ? ["Damage", (ex.damage || []).join(", ")] : null], "kv-compact"));
}

export function toolCallsTable(rows, { showCall = false } = {}) {
  return staticTable([
    showCall ? { key: "call_id", label: "Issued by", render: (r) => link("calls", r.call_id) } : null,
    { key: "seq", label: "#", num: true },
    { key: "name", label: "Tool", cls: "mono" },
    { key: "arguments", label: "Arguments", sortable: false, render: (r) => h("code.args", JSON.stringify(r.arguments ?? null)) },
    { key: "result_status", label: "Result", render: (r) => pill(r.result_status) },
    { key: "wait_ms", label: "Wait", num: true, render: (r) => fmtMs(r.wait_ms) },
    { key: "result_call_id", label: "Result in", render: (r) => link("calls", r.result_call_id) },
    { key: "result_preview", label: "Preview", sortable: false, render: (r) => h("span.preview", r.result_preview ?? "") },
  ].filter(Boolean), rows, { empty: "No tool calls.", id: "tool-calls-table" });
}

/** The full call view. opts.tab: initial tab; opts.onTab(id); opts.detail: an already fetched detail. */
export async function callView(callId, opts = {}) {
  const detail = opts.detail || await get(`/api/calls/${encodeURIComponent(callId)}`);
  const c = detail.call;
  const bodies = bodyMap(detail);
  const tcs = detail.tool_calls || [];
  const ins = detail.insights || [];
  const list = [
    { id: "summary", label: "Summary", render: () => summary(detail) },
    { id: "conversation", label: "Conversation", render: () => conversationView(detail) },
    { id: "request", label: "Request", render: () => bodyView(c.call_id, "request", bodies.request) },
    { id: "response", label: "Response", render: () => bodyView(c.call_id, "response_object", bodies.response_object) },
    { id: "raw", label: "Raw response", render: () => bodyView(c.call_id, "response", bodies.response) },
    { id: "headers", label: "HTTP headers", render: () => headersView(detail) },
    { id: "tools", label: "Tool calls", badge: tcs.length || null, render: () => toolCallsTable(tcs) },
    { id: "insights", label: "Insights", badge: ins.length || null, render: () => insightTable(ins) },
  ];
  if (detail.hop_peer) {
    const p = detail.hop_peer;
    list.push({ id: "hop", label: "Hop peer", render: () => kv([["Peer call", link("calls", p.call_id, p.call_id)], ["Role", p.hop_role],
      ["Server", p.server], ["Model", p.model], ["Status", String(p.status_code ?? DASH)], ["E2E", fmtMs(p.e2e_ms)], ["Raw", jsonView(pretty(p))]]) });
  }
  return h("div.call-view", { dataset: { callId: c.call_id } }, tabs(list, { selected: opts.tab, onSelect: opts.onTab, label: "Call sections" }));
}
