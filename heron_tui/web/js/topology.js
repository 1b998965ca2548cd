// Service topology (metrics.md §6) as a layered SVG graph: clients on the left, services to the right,
// proxies and gateways in the middle. Edge width follows calls; errors tint the edge.

import { h, s, fmtInt, truncate } from "./util.js";

const NODE_W = 210;
const NODE_H = 42;
const COL_GAP = 120;
const ROW_GAP = 16;
const PAD = 16;

function layers(nodes, edges) {
  const layer = new Map(nodes.map((n) => [n.id, n.kind === "client" ? 0 : 1]));
  // longest path from the clients; bounded so a cycle (two gateways calling each other) cannot spin
  for (let pass = 0; pass < nodes.length; pass++) {
    let changed = false;
    for (const e of edges) {
      if (!layer.has(e.from) || !layer.has(e.to) || e.from === e.to) continue;
      const want = layer.get(e.from) + 1;
      if (layer.get(e.to) < want && want <= nodes.length) { layer.set(e.to, want); changed = true; }
    }
    if (!changed) break;
  }
  return layer;
}

/** topo: {nodes:[{id, kind, label, app, calls}], edges:[{from, to, kind, calls, errors}]} */
export function topologyGraph(topo, { onNode } = {}) {
  const nodes = topo.nodes || [];
  const edges = (topo.edges || []).filter((e) => e.from !== e.to);
  if (!nodes.length) return h("div.chart-empty", "No services in this range.");
  const layer = layers(nodes, edges);
  const cols = [];
  for (const n of nodes) (cols[layer.get(n.id)] ||= []).push(n);
  const pos = new Map();
  // order: first column by calls; later columns by the mean row of their callers (fewer crossings)
  cols.forEach((col, ci) => {
    if (!col) return;
    if (ci === 0) col.sort((a, b) => (b.calls || 0) - (a.calls || 0));
    else {
      const rank = (n) => {
        const ins = edges.filter((e) => e.to === n.id && pos.has(e.from)).map((e) => pos.get(e.from).row);
        return ins.length ? ins.reduce((a, b) => a + b, 0) / ins.length : 1e9;
      };
      col.sort((a, b) => rank(a) - rank(b) || (b.calls || 0) - (a.calls || 0));
    }
    col.forEach((n, ri) => pos.set(n.id, { col: ci, row: ri }));
  });
  const maxRows = Math.max(...cols.filter(Boolean).map((c) => c.length));
  const W = PAD * 2 + cols.length * NODE_W + (cols.length - 1) * COL_GAP;
  const H = PAD * 2 + maxRows * NODE_H + (maxRows - 1) * ROW_GAP;
  const xy = (id) => {
    const p = pos.get(id);
    const colLen = cols[p.col].length;
    const offset = ((maxRows - colLen) * (NODE_H + ROW_GAP)) / 2;
    return { x: PAD + p.col * (NODE_W + COL_GAP), y: PAD + offset + p.row * (NODE_H + ROW_GAP) };
  };
  const maxCalls = Math.max(1, ...edges.map((e) => e.calls || 0));
  const svg = s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "topology", role: "img",
    "aria-label": `Topology: ${nodes.length} nodes, ${edges.length} edges` },
  s("defs", {}, ["client", "proxy", "inferred", "bad"].map((k) => s("marker", { id: `arrow-${k}`, viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: `arrow arrow-${k}` })))));

  const labels = []; // drawn above every edge so their halo keeps them readable
  for (const e of edges) {
    if (!pos.has(e.from) || !pos.has(e.to)) continue;
    const a = xy(e.from), b = xy(e.to);
    const back = pos.get(e.to).col <= pos.get(e.from).col;
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2;
    const x2 = back ? b.x + NODE_W : b.x, y2 = b.y + NODE_H / 2;
    const dx = back ? 60 : Math.max(40, (x2 - x1) / 2);
    const d = back ? `M${x1},${y1} C${x1 + dx},${y1} ${x2 + dx},${y2} ${x2},${y2}` : `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
    const width = 1 + 5 * Math.sqrt((e.calls || 0) / maxCalls);
    const errShare = e.calls ? (e.errors || 0) / e.calls : 0;
    const kind = errShare > 0.5 ? "bad" : e.kind;
    const g = s("g", { class: `edge edge-${e.kind}${errShare > 0 ? " edge-errors" : ""}` },
      s("title", {}, `${e.from.replace(/^\w+:/, "")} → ${e.to.replace(/^\w+:/, "")} (${e.kind}): ${e.calls} calls, ${e.errors || 0} errors`),
      s("path", { d, "stroke-width": width, "marker-end": `url(#arrow-${kind})`, class: `edge-path edge-${kind}` }));
    // label just before the arrow head, where edges fanning out of one node have separated
    const bez = (t, p0, p1, p2, p3) => (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t * t * p2 + t ** 3 * p3;
    const mx = back ? Math.max(x1, x2) + 48 : bez(0.85, x1, x1 + dx, x2 - dx, x2);
    const my = back ? (y1 + y2) / 2 : bez(0.85, y1, y1, y2, y2) - 5;
    labels.push(s("text", { x: mx, y: my, class: "edge-label", "text-anchor": back ? "middle" : "end" },
      `${fmtInt(e.calls)}${e.errors ? ` · ${fmtInt(e.errors)} err` : ""}`));
    svg.append(g);
  }
  svg.append(s("g", { class: "edge-labels", "aria-hidden": "true" }, labels));
  for (const n of nodes) {
    const { x, y } = xy(n.id);
    const g = s("g", { class: `node node-${n.kind}`, tabindex: "0", role: "button", "aria-label": `${n.kind} ${n.label}, ${n.calls} calls` },
      s("title", {}, `${n.label}${n.app ? ` (${n.app})` : ""}: ${n.calls} calls`),
      s("rect", { x, y, width: NODE_W, height: NODE_H, rx: 5, class: "node-box" }),
      s("text", { x: x + 10, y: y + 17, class: "node-label" }, truncate(n.label, 26)),
      s("text", { x: x + 10, y: y + 33, class: "node-sub" }, `${n.kind === "client" ? "client" : n.app || "service"} · ${fmtInt(n.calls)} calls`));
    if (onNode) {
      g.addEventListener("click", () => onNode(n));
      g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") onNode(n); });
    }
    svg.append(g);
  }
  return h("div.topology-wrap", svg,
    h("div.tl-legend", h("span", h("span.lg.lg-edge-client"), "client → service"), h("span", h("span.lg.lg-edge-proxy"), "proxy hop"),
      h("span", h("span.lg.lg-edge-inferred"), "inferred (gateway)"), h("span", h("span.lg.lg-edge-bad"), "mostly errors")));
}
