// Services: one row per upstream server (metrics.md §6) and the client/proxy/service topology.

import { get } from "../api.js";
import { h, fmtInt, fmtMs, fmtCompact, fmtUsd, fmtTime, pill, pick, DASH } from "../util.js";
import { pagedTable } from "../table.js";
import { rangeParams, rangeLabel } from "../state.js";
import { section } from "../widgets.js";
import { topologyGraph } from "../topology.js";

function errorsCell(r) {
  const e = r.errors || {};
  if (!e.total) return "0";
  const parts = [];
  if (e.errors_4xx) parts.push(`${e.errors_4xx} 4xx`);
  if (e.errors_5xx) parts.push(`${e.errors_5xx} 5xx`);
  if (e.aborted) parts.push(`${e.aborted} aborted`);
  if (e.rate_limited) parts.push(`${e.rate_limited} × 429`);
  return h("span.text-bad", { title: parts.join(", ") }, fmtInt(e.total));
}

function listCell(values, n = 2) {
  const v = values || [];
  if (!v.length) return DASH;
  return h("span.nowrap.cell-list", { title: v.join("\n") }, v.slice(0, n).join(", "), v.length > n ? h("span.muted", ` +${v.length - n}`) : null);
}

const COLUMNS = [
  { key: "server", label: "Server", sort: "server", render: (r) => h("a.mono", { href: `#/calls?server=${encodeURIComponent(r.server)}&hops=include` }, r.server) },
  { key: "app", label: "App", sort: "app", title: "Detected application (metrics.md §6); hover for the Server header",
    render: (r) => h("span", { title: [r.server_header && `Server: ${r.server_header}`, r.host && `Host: ${r.host}`].filter(Boolean).join("\n") || null },
      r.app ? pill(r.app, "info") : DASH) },
  { key: "calls", label: "Calls", num: true, sort: "calls", render: (r) => fmtInt(r.calls) },
  { key: "errors", label: "Errors", num: true, sort: "errors", render: errorsCell },
  { key: "models", label: "Models", render: (r) => listCell(r.models, 1) },
  { key: "wire_apis", label: "Wire APIs", render: (r) => listCell(r.wire_apis, 1) },
  { key: "paths", label: "Paths", render: (r) => listCell(r.paths, 1) },
  { key: "ttft", label: "TTFT p50 / p95", num: true, render: (r) => `${fmtMs(pick(r, "ttft_ms.p50"))} / ${fmtMs(pick(r, "ttft_ms.p95"))}` },
  { key: "e2e", label: "E2E p50 / p95", num: true, render: (r) => `${fmtMs(pick(r, "e2e_ms.p50"))} / ${fmtMs(pick(r, "e2e_ms.p95"))}` },
  { key: "tokens", label: "Tokens in→out", num: true, sort: "output_tokens", render: (r) => `${fmtCompact(r.input_total_tokens)}→${fmtCompact(r.output_tokens)}` },
  { key: "cost_usd", label: "Cost", num: true, sort: "cost_usd", render: (r) => fmtUsd(r.cost_usd) },
  { key: "last_seen", label: "Last seen", sort: "last_seen", render: (r) => h("span.mono.nowrap", fmtTime(r.last_seen, { date: false })) },
];

export async function render() {
  const table = pagedTable(COLUMNS, {
    id: "services-table", path: "/api/services", defaultSort: "-calls",
    params: () => rangeParams(), empty: "No services in this range.",
  });
  table.reload();
  const topo = await get("/api/services/topology", rangeParams());
  const graph = topologyGraph(topo, {
    onNode: (n) => {
      if (n.kind === "service") location.hash = `#/calls?server=${encodeURIComponent(n.label)}&hops=include`;
    },
  });
  const page = h("div.page.page-services",
    h("header.page-head", h("h1", "Services"), h("span.page-sub", rangeLabel())),
    section("Services", table),
    section("Topology", h("p.hint", "Clients call services; proxy edges join the two legs of a folded proxy hop; inferred edges are a service whose address also appears as a client of another service. Click a service to list its calls."),
      h("div.topology-scroll", graph)));
  page.refresh = () => table.refresh();
  return page;
}
