"""Small per-bucket series of the call metrics for sparklines (UI-free), over a capture or a live window.

The TUI's metrics pane wants ~60 points per metric and one number beside each, for everything or for
the current display filter, quickly enough to recompute while a file is loading or a capture runs.
Definitions follow metrics.md §3.3 (errors = status ≥ 400 or finish error/aborted; latency percentiles
over ok calls; output throughput bucketed by ``response_end``; active calls = time-weighted mean in
flight; cache hit ratio = Σ cache_read / Σ input_total over calls that reported usage). It is
deliberately simple SQL over ``calls``. ``heron_core.query.metrics`` is the full query layer (the API's
windows and dimensions), but its ``MetricFilters`` take fixed fields, not an arbitrary display-filter
predicate, and its epoch-aligned windows give a point count that depends on the capture's length; a
sparkline needs the filter and a fixed width, hence this module.

Two ranges: a finished capture spans its data (first request to last response); a live one passes
``t0, t1`` — a sliding window ending at the watermark, so the lines scroll — and the request starts of
the calls still in flight, which count as active up to ``t1`` although they are not stored yet.

The filter is the one the user typed for the list on screen, so the pane shows the calls *behind the
rows shown* (``calls_filter``): on the turns view, ``status == incomplete`` means the calls of
incomplete turns, not calls with that HTTP status; likewise for sessions and insights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from heron_core.query.filterlang import Compiled, compile_filter
from heron_core.query.lists import CALL_ERROR, HIDDEN_HOPS


@dataclass(frozen=True, slots=True)
class Series:
    key: str
    label: str
    kind: str  # 'rate' | 'ms' | 'pct' | 'count' (how to format the number)
    values: list[float]
    total: float | None  # the figure over the whole range


@dataclass(frozen=True)
class Sparks:
    t0: float | None
    t1: float | None
    bucket_s: float
    calls: int
    series: list[Series] = field(default_factory=list)

    def get(self, key: str) -> Series | None:
        return next((s for s in self.series if s.key == key), None)


METRICS = (
    ("calls_s", "calls/s", "rate"),
    ("out_tps", "out tok/s", "rate"),
    ("ttft_p50", "TTFT p50", "ms"),
    ("ttft_p95", "TTFT p95", "ms"),
    ("e2e_p95", "E2E p95", "ms"),
    ("error_rate", "errors", "pct"),
    ("active", "active", "count"),
    ("cache_hit", "cache hit", "pct"),
)

_VIA = {
    "turns": "calls.call_id IN (SELECT unnest(turns.call_ids) FROM turns WHERE {pred})",
    "sessions": "calls.session_id IN (SELECT sessions.session_id FROM sessions WHERE {pred})",
    "insights": "calls.call_id IN (SELECT unnest(insights.call_ids) FROM insights WHERE {pred})",
}


def calls_filter(view: str, text: str | None) -> Compiled | None:
    """The calls behind the rows that list ``view`` shows for display filter ``text`` (None: no filter).

    Turns and insights reach their calls through ``call_ids`` (an in-progress turn's calls have no
    ``turn_id`` yet), sessions through ``session_id``; calls and services filter calls directly.
    Raises ``FilterError`` like ``compile_filter``."""
    if not text or not text.strip():
        return None
    via = _VIA.get(view)
    if via is None:
        return compile_filter(text, "calls")
    inner = compile_filter(text, view)
    if inner is None:
        return None
    return Compiled(via.replace("{pred}", inner.sql), inner.params)


def _empty(t0: float | None, t1: float | None, buckets: int, window: bool) -> Sparks:
    values = [0.0] * buckets if window else []
    return Sparks(t0, t1, (t1 - t0) / buckets if window and t0 is not None and t1 is not None else 0.0, 0,
                  [Series(k, lbl, kind, list(values), None) for k, lbl, kind in METRICS])


def compute(conn: Any, where: Compiled | None = None, buckets: int = 60, t0: float | None = None,
            t1: float | None = None, in_flight: Sequence[float] = ()) -> Sparks:
    """Series of ``METRICS`` over ``buckets`` equal slices of ``[t0, t1]`` (default: the filtered data's
    time range). ``in_flight``: request starts of calls not finished yet (active until ``t1``)."""
    cond = f"{HIDDEN_HOPS}" + (f" AND ({where.sql})" if where else "")
    params = list(where.params) if where else []
    window = t0 is not None and t1 is not None and t1 > t0
    if not window:
        row = conn.execute(
            f"SELECT min(request_start), max(coalesce(response_end, request_start)) FROM calls WHERE {cond}",
            params).fetchone()
        t0, t1 = row[0], row[1]
        if t0 is None:
            return _empty(None, None, buckets, False)
    t0, t1 = float(t0), float(t1)
    span = max(t1 - t0, 1e-3)
    w = span / buckets
    b_of = f"least({buckets - 1}, greatest(0, floor((calls.{{col}} - {t0!r}) / {w!r})))::INTEGER"
    starts = f"{cond} AND calls.request_start BETWEEN {t0!r} AND {t1!r}"
    ends = f"{cond} AND calls.response_end BETWEEN {t0!r} AND {t1!r}"
    overlaps = (f"{cond} AND calls.request_start <= {t1!r} "
                f"AND coalesce(calls.response_end, calls.request_start) >= {t0!r}")
    per = conn.execute(f"""
        SELECT {b_of.format(col='request_start')} AS b, count(*) AS n,
               count(*) FILTER (WHERE {CALL_ERROR}) AS errs,
               quantile_cont(ttft_ms, 0.5) FILTER (WHERE ok) AS ttft50,
               quantile_cont(ttft_ms, 0.95) FILTER (WHERE ok) AS ttft95,
               quantile_cont(e2e_ms, 0.95) FILTER (WHERE ok) AS e2e95,
               sum(cache_read_tokens) FILTER (WHERE NOT coalesce(usage_estimated, false)) AS cr,
               sum(input_total_tokens) FILTER (WHERE NOT coalesce(usage_estimated, false)) AS it
        FROM calls WHERE {starts} GROUP BY 1""", params).fetchall()
    out_rows = conn.execute(f"""
        SELECT {b_of.format(col='response_end')} AS b, sum(output_tokens) FROM calls
        WHERE {ends} GROUP BY 1""", params).fetchall()
    # Each call is spread over the few buckets it overlaps (unnest of its bucket range): a plain range
    # join of buckets × calls is quadratic in DuckDB and took seconds at 100k calls.
    active_rows = conn.execute(f"""
        SELECT b, sum(least(ce, {t0!r} + (b + 1) * {w!r}) - greatest(cs, {t0!r} + b * {w!r})) / {w!r}
        FROM (SELECT cs, ce, unnest(range(bs, be + 1)) AS b FROM (
                SELECT greatest(request_start, {t0!r}) AS cs,
                       least(coalesce(response_end, request_start), {t1!r}) AS ce,
                       greatest(0, floor((request_start - {t0!r}) / {w!r}))::BIGINT AS bs,
                       least({buckets - 1}, floor((least(coalesce(response_end, request_start), {t1!r})
                             - {t0!r}) / {w!r}))::BIGINT AS be
                FROM calls WHERE {overlaps}))
        WHERE ce >= cs
        GROUP BY b""", params).fetchall()
    tot = conn.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE {CALL_ERROR}),
               quantile_cont(ttft_ms, 0.5) FILTER (WHERE ok), quantile_cont(ttft_ms, 0.95) FILTER (WHERE ok),
               quantile_cont(e2e_ms, 0.95) FILTER (WHERE ok),
               sum(cache_read_tokens) FILTER (WHERE NOT coalesce(usage_estimated, false)),
               sum(input_total_tokens) FILTER (WHERE NOT coalesce(usage_estimated, false))
        FROM calls WHERE {starts}""", params).fetchone()
    out_sum = conn.execute(f"SELECT sum(output_tokens) FROM calls WHERE {ends}", params).fetchone()[0]
    busy = conn.execute(f"""
        SELECT sum(least(coalesce(response_end, request_start), {t1!r}) - greatest(request_start, {t0!r}))
        FROM calls WHERE {overlaps}""", params).fetchone()[0] or 0.0
    n, errs, t50, t95, e95, cr, it = tot
    n = int(n or 0)
    act: dict[int, float] = {r[0]: float(r[1] or 0.0) for r in active_rows}
    for s in in_flight:  # not stored yet: in flight from its request start to the end of the range
        cs = max(float(s), t0)
        if cs >= t1:
            continue
        busy += t1 - cs
        for b in range(min(buckets - 1, int((cs - t0) // w)), buckets):
            lo, hi = t0 + b * w, t0 + (b + 1) * w
            act[b] = act.get(b, 0.0) + (min(hi, t1) - max(lo, cs)) / w
    if not n and not busy and not window:
        return _empty(None, None, buckets, False)

    def series(index: dict[int, Any], fn: Any) -> list[float]:
        return [float(fn(index[i])) if i in index and fn(index[i]) is not None else 0.0 for i in range(buckets)]

    p = {r[0]: r for r in per}
    outs = {r[0]: r[1] for r in out_rows}
    result = [
        Series("calls_s", "calls/s", "rate", series(p, lambda r: r[1] / w), n / span),
        Series("out_tps", "out tok/s", "rate", series(outs, lambda v: (v or 0) / w), (out_sum or 0) / span),
        Series("ttft_p50", "TTFT p50", "ms", series(p, lambda r: r[3]), t50),
        Series("ttft_p95", "TTFT p95", "ms", series(p, lambda r: r[4]), t95),
        Series("e2e_p95", "E2E p95", "ms", series(p, lambda r: r[5]), e95),
        Series("error_rate", "errors", "pct", series(p, lambda r: r[2] / r[1] if r[1] else None),
               errs / n if n else None),
        Series("active", "active", "count", series(act, lambda v: v), busy / span),
        Series("cache_hit", "cache hit", "pct", series(p, lambda r: (r[6] or 0) / r[7] if r[7] else None),
               (cr or 0) / it if it else None),
    ]
    return Sparks(t0, t1, w, n, result)
