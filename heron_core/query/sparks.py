"""Small per-bucket series of the call metrics for sparklines (UI-free), over the capture's time range.

The TUI's metrics pane wants ~60 points per metric and one number beside each, for everything or for
the current display filter, quickly enough to recompute while a file is loading. Definitions follow
metrics.md §3.3 (errors = status ≥ 400 or finish error/aborted; latency percentiles over ok calls; output
throughput bucketed by ``response_end``; active calls = time-weighted mean in flight; cache hit ratio =
Σ cache_read / Σ input_total over calls that reported usage). It is deliberately simple SQL over
``calls``. ``heron_core.query.metrics`` is the full query layer (the API's windows and dimensions), but its
``MetricFilters`` take fixed fields, not an arbitrary display-filter predicate, and its epoch-aligned
windows give a point count that depends on the capture's length; a sparkline needs the filter and a
fixed width, hence this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heron_core.query.filterlang import Compiled
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


def compute(conn: Any, where: Compiled | None = None, buckets: int = 60) -> Sparks:
    """Series of ``METRICS`` over ``buckets`` equal slices of the (filtered) capture time range."""
    cond = f"{HIDDEN_HOPS}" + (f" AND ({where.sql})" if where else "")
    params = list(where.params) if where else []
    row = conn.execute(
        f"SELECT min(request_start), max(coalesce(response_end, request_start)), count(*) FROM calls "
        f"WHERE {cond}", params).fetchone()
    t0, t1, n = row[0], row[1], int(row[2] or 0)
    if not n or t0 is None:
        return Sparks(None, None, 0.0, 0, [Series(k, lbl, kind, [], None) for k, lbl, kind in METRICS])
    span = max(float(t1) - float(t0), 1e-3)
    w = span / buckets
    b_of = f"least({buckets - 1}, greatest(0, floor((calls.{{col}} - {t0!r}) / {w!r})))::INTEGER"
    per = conn.execute(f"""
        SELECT {b_of.format(col='request_start')} AS b, count(*) AS n,
               count(*) FILTER (WHERE {CALL_ERROR}) AS errs,
               quantile_cont(ttft_ms, 0.5) FILTER (WHERE ok) AS ttft50,
               quantile_cont(ttft_ms, 0.95) FILTER (WHERE ok) AS ttft95,
               quantile_cont(e2e_ms, 0.95) FILTER (WHERE ok) AS e2e95,
               sum(cache_read_tokens) FILTER (WHERE NOT coalesce(usage_estimated, false)) AS cr,
               sum(input_total_tokens) FILTER (WHERE NOT coalesce(usage_estimated, false)) AS it
        FROM calls WHERE {cond} GROUP BY 1""", params).fetchall()
    out_rows = conn.execute(f"""
        SELECT {b_of.format(col='response_end')} AS b, sum(output_tokens) FROM calls
        WHERE {cond} AND response_end IS NOT NULL GROUP BY 1""", params).fetchall()
    # Each call is spread over the few buckets it overlaps (unnest of its bucket range): a plain range
    # join of buckets × calls is quadratic in DuckDB and took seconds at 100k calls.
    active_rows = conn.execute(f"""
        SELECT b, sum(least(ce, {t0!r} + (b + 1) * {w!r}) - greatest(cs, {t0!r} + b * {w!r})) / {w!r}
        FROM (SELECT cs, ce, unnest(range(bs, be + 1)) AS b FROM (
                SELECT request_start AS cs, coalesce(response_end, request_start) AS ce,
                       greatest(0, floor((request_start - {t0!r}) / {w!r}))::BIGINT AS bs,
                       least({buckets - 1}, floor((coalesce(response_end, request_start) - {t0!r}) / {w!r}))::BIGINT
                           AS be
                FROM calls WHERE {cond}))
        GROUP BY b""", params).fetchall()
    tot = conn.execute(f"""
        SELECT count(*) FILTER (WHERE {CALL_ERROR}),
               quantile_cont(ttft_ms, 0.5) FILTER (WHERE ok), quantile_cont(ttft_ms, 0.95) FILTER (WHERE ok),
               quantile_cont(e2e_ms, 0.95) FILTER (WHERE ok), sum(output_tokens),
               sum(coalesce(response_end, request_start) - request_start),
               sum(cache_read_tokens) FILTER (WHERE NOT coalesce(usage_estimated, false)),
               sum(input_total_tokens) FILTER (WHERE NOT coalesce(usage_estimated, false))
        FROM calls WHERE {cond}""", params).fetchone()

    def series(index: dict[int, Any], fn: Any) -> list[float]:
        return [float(fn(index[i])) if i in index and fn(index[i]) is not None else 0.0 for i in range(buckets)]

    p = {r[0]: r for r in per}
    outs = {r[0]: r[1] for r in out_rows}
    act = {r[0]: r[1] for r in active_rows}
    errs, t50, t95, e95, out_sum, busy, cr, it = tot
    result = [
        Series("calls_s", "calls/s", "rate", series(p, lambda r: r[1] / w), n / span),
        Series("out_tps", "out tok/s", "rate", series(outs, lambda v: (v or 0) / w), (out_sum or 0) / span),
        Series("ttft_p50", "TTFT p50", "ms", series(p, lambda r: r[3]), t50),
        Series("ttft_p95", "TTFT p95", "ms", series(p, lambda r: r[4]), t95),
        Series("e2e_p95", "E2E p95", "ms", series(p, lambda r: r[5]), e95),
        Series("error_rate", "errors", "pct", series(p, lambda r: r[2] / r[1] if r[1] else None), errs / n),
        Series("active", "active", "count", series(act, lambda v: v), (busy or 0) / span),
        Series("cache_hit", "cache hit", "pct", series(p, lambda r: (r[6] or 0) / r[7] if r[7] else None),
               (cr or 0) / it if it else None),
    ]
    return Sparks(float(t0), float(t1), w, n, result)
