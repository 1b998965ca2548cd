// Hand-drawn SVG charts: time series (lines or bars, one or more series) with a hover read-out, and
// a plain bar chart for histograms. Colours come from CSS variables so both themes work.

import { h, s, clear, isNum, fmtAxisTime, fmtTime } from "./util.js";

export const PALETTE = ["--c1", "--c2", "--c3", "--c4", "--c5", "--c6", "--c7", "--c8", "--c9", "--c10", "--c11"];
export const color = (i) => `var(${PALETTE[i % PALETTE.length]})`;

/** Round a max up to a "nice" number and return ticks. */
function niceTicks(max, count = 4) {
  if (!isNum(max) || max <= 0) return { max: 1, ticks: [0, 0.5, 1] };
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((x) => x >= raw);
  const top = Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(+v.toFixed(12));
  return { max: top, ticks };
}

/** Re-render fn(width) into host whenever its width changes. */
function responsive(host, fn) {
  let last = -1;
  const draw = () => {
    const w = Math.max(200, Math.floor(host.clientWidth || 600));
    if (w === last) return;
    last = w;
    clear(host);
    fn(w);
  };
  const ro = new ResizeObserver(() => requestAnimationFrame(draw));
  ro.observe(host);
  requestAnimationFrame(draw);
  return host;
}

/**
 * Time series chart.
 * buckets: [epoch s], windowS: bucket width, series: [{name, values: [v|null], color?}]
 * opts: {title, format(v), type: "line"|"bar", height, stacked, partialFrom}
 */
export function timeChart(buckets, windowS, series, opts = {}) {
  const fmt = opts.format || String;
  const height = opts.height || 150;
  const legend = series.length > 1 || opts.legend
    ? h("div.legend", series.map((sr, i) => h("span.legend-item",
      h("span.swatch", { style: { background: sr.color || color(i) } }), sr.name)))
    : null;
  const plot = h("div.chart-plot");
  const tip = h("div.chart-tip", { role: "status" });
  const card = h("figure.chart", { "aria-label": opts.title || "chart" },
    h("figcaption.chart-title", opts.title || "", opts.subtitle ? h("span.chart-sub", opts.subtitle) : null),
    legend, h("div.chart-body", plot, tip));

  const hasData = series.some((sr) => sr.values.some(isNum));
  if (!buckets.length || !hasData) {
    plot.append(h("div.chart-empty", { style: { height: height + "px" } }, "no data in range"));
    return card;
  }

  responsive(plot, (W) => {
    const padL = 48, padR = 8, padT = 8, padB = 20;
    const iw = W - padL - padR, ih = height - padT - padB;
    const n = buckets.length;
    const t0 = buckets[0], t1 = buckets[n - 1] + windowS;
    const x = (t) => padL + ((t - t0) / (t1 - t0)) * iw;
    let maxV = 0;
    if (opts.stacked) {
      for (let i = 0; i < n; i++) maxV = Math.max(maxV, series.reduce((a, sr) => a + (isNum(sr.values[i]) ? sr.values[i] : 0), 0));
    } else {
      for (const sr of series) for (const v of sr.values) if (isNum(v)) maxV = Math.max(maxV, v);
    }
    const { max, ticks } = niceTicks(maxV);
    const y = (v) => padT + ih - (v / max) * ih;
    const svg = s("svg", { width: W, height, viewBox: `0 0 ${W} ${height}`, class: "chart-svg", role: "img",
      "aria-label": `${opts.title || "chart"}: ${series.map((sr) => sr.name).join(", ")}` });

    for (const tv of ticks) {
      svg.append(s("line", { x1: padL, x2: W - padR, y1: y(tv), y2: y(tv), class: "grid-line" }));
      svg.append(s("text", { x: padL - 6, y: y(tv) + 3, class: "axis-label", "text-anchor": "end" }, fmt(tv)));
    }
    const labelEvery = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(iw / 80))));
    for (let i = 0; i < n; i += labelEvery) {
      svg.append(s("text", { x: x(buckets[i]), y: height - 5, class: "axis-label", "text-anchor": i === 0 ? "start" : "middle" },
        fmtAxisTime(buckets[i], t1 - t0)));
    }
    if (isNum(opts.partialFrom) && opts.partialFrom < t1) {
      const px = x(Math.max(t0, opts.partialFrom));
      svg.append(s("rect", { x: px, y: padT, width: W - padR - px, height: ih, class: "partial-zone" },
        s("title", {}, "buckets still filling (past the watermark)")));
    }

    const bw = Math.max(1, (iw / n) * 0.8);
    if (opts.type === "bar") {
      const base = new Array(n).fill(0);
      series.forEach((sr, si) => {
        const fill = sr.color || color(si);
        const gw = opts.stacked ? bw : bw / series.length;
        sr.values.forEach((v, i) => {
          if (!isNum(v) || v <= 0) return;
          const bx = x(buckets[i]) + (iw / n) * 0.1 + (opts.stacked ? 0 : gw * si);
          const top = opts.stacked ? base[i] + v : v;
          svg.append(s("rect", { x: bx, y: y(top), width: gw, height: Math.max(0.5, y(opts.stacked ? base[i] : 0) - y(top)),
            fill, class: "bar" }));
          if (opts.stacked) base[i] += v;
        });
      });
    } else {
      series.forEach((sr, si) => {
        const stroke = sr.color || color(si);
        let d = "";
        let pen = false;
        const mid = (i) => x(buckets[i] + windowS / 2);
        sr.values.forEach((v, i) => {
          if (!isNum(v)) { pen = false; return; }
          d += `${pen ? "L" : "M"}${mid(i).toFixed(1)},${y(v).toFixed(1)}`;
          pen = true;
        });
        if (series.length === 1 && d) {
          // light area under a single series
          const pts = sr.values.map((v, i) => (isNum(v) ? [mid(i), y(v)] : null));
          let area = "";
          let run = [];
          const flush = () => {
            if (run.length) area += `M${run[0][0]},${y(0)}` + run.map((p) => `L${p[0]},${p[1]}`).join("") + `L${run[run.length - 1][0]},${y(0)}Z`;
            run = [];
          };
          for (const p of pts) { if (p) run.push(p); else flush(); }
          flush();
          svg.append(s("path", { d: area, fill: stroke, class: "area" }));
        }
        svg.append(s("path", { d, stroke, class: "line" }));
        sr.values.forEach((v, i) => {
          const lonely = isNum(v) && !isNum(sr.values[i - 1]) && !isNum(sr.values[i + 1]);
          if (lonely) svg.append(s("circle", { cx: mid(i), cy: y(v), r: 2.5, fill: stroke }));
        });
      });
    }

    const cursor = s("line", { y1: padT, y2: padT + ih, class: "cursor-line", visibility: "hidden" });
    svg.append(cursor);
    const hit = s("rect", { x: padL, y: padT, width: iw, height: ih, fill: "transparent" });
    svg.append(hit);
    const show = (clientX) => {
      const rect = svg.getBoundingClientRect();
      const px = clientX - rect.left;
      const i = Math.min(n - 1, Math.max(0, Math.floor(((px - padL) / iw) * n)));
      const cx = x(buckets[i] + windowS / 2);
      cursor.setAttribute("x1", cx);
      cursor.setAttribute("x2", cx);
      cursor.setAttribute("visibility", "visible");
      clear(tip).append(h("div.tip-time", fmtTime(buckets[i], { ms: false })),
        series.map((sr, si) => h("div.tip-row", h("span.swatch", { style: { background: sr.color || color(si) } }),
          h("span.tip-name", sr.name), h("span.tip-val", isNum(sr.values[i]) ? fmt(sr.values[i]) : "—"))));
      tip.style.display = "block";
      const left = cx + 12 + tip.offsetWidth > W ? cx - 12 - tip.offsetWidth : cx + 12;
      tip.style.left = `${left}px`;
    };
    hit.addEventListener("mousemove", (ev) => show(ev.clientX));
    hit.addEventListener("mouseleave", () => { cursor.setAttribute("visibility", "hidden"); tip.style.display = "none"; });
    plot.append(svg);
  });
  return card;
}

/** Vertical bars with category labels (turn-duration histogram). rows: [{label, value}] */
export function barChart(rows, opts = {}) {
  const height = opts.height || 110;
  const plot = h("div.chart-plot");
  const card = h("figure.chart.chart-small", { "aria-label": opts.title || "bar chart" },
    opts.title ? h("figcaption.chart-title", opts.title) : null, h("div.chart-body", plot));
  responsive(plot, (W) => {
    const padT = 12, padB = 18, padL = 4, padR = 4;
    const ih = height - padT - padB;
    const n = rows.length || 1;
    const slot = (W - padL - padR) / n;
    const max = Math.max(1, ...rows.map((r) => r.value || 0));
    const svg = s("svg", { width: W, height, class: "chart-svg", role: "img", "aria-label": opts.title || "bar chart" });
    rows.forEach((r, i) => {
      const bh = ((r.value || 0) / max) * ih;
      const bx = padL + i * slot + slot * 0.15;
      svg.append(s("rect", { x: bx, y: padT + ih - bh, width: slot * 0.7, height: Math.max(r.value ? 1 : 0, bh),
        class: "bar", fill: opts.color || color(0) }, s("title", {}, `${r.label}: ${r.value}`)));
      if (r.value) {
        svg.append(s("text", { x: bx + slot * 0.35, y: padT + ih - bh - 2, class: "bar-value", "text-anchor": "middle" }, r.value));
      }
      svg.append(s("text", { x: bx + slot * 0.35, y: height - 4, class: "axis-label", "text-anchor": "middle" }, r.label));
    });
    plot.append(svg);
  });
  return card;
}

/** Tiny inline meter (0..1) used in tables. */
export function meter(fraction, tone) {
  const f = isNum(fraction) ? Math.max(0, Math.min(1, fraction)) : 0;
  return h("span.meter", { class: tone ? `meter-${tone}` : null, role: "img", "aria-label": `${Math.round(f * 100)}%` },
    h("span.meter-fill", { style: { width: `${(f * 100).toFixed(1)}%` } }));
}
