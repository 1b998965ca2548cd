"""Active-call metrics (metrics.md §3.3–3.4): ``active_avg``, ``active_overlapping``, ``active_peak``.

A call is in flight over ``[request_start, response_end]``. Times are handled as integer µs (the engine's
resolution), so every figure is exact: no float cancellation however large the epoch values.

**Overlap without a join.** Let ``F(x) = Σ_calls (min(end, x) − min(start, x))`` — the integral of the
in-flight count up to ``x``. A bucket ``[s, s + w)`` gets ``F(s + w) − F(s)`` call-seconds, and
``F(s) = s·(starts ≤ s − ends ≤ s) − (Σ start − Σ end over those)``. So two small aggregates (count and
µs-sum of starts per bucket, of ends per bucket) and a prefix sum over the buckets give ``active_avg``; the
same counts give ``active_overlapping`` = starts before the bucket's end − ends at or before its start.

**Peak.** It needs the events in time order: a running ``sum(±1) OVER (ORDER BY …)`` in DuckDB costs 0.4–1.5 s
for 2M events on 2 cores, and DuckDB's ``ORDER BY`` of 2M keys ~250 ms CPU, so the events are fetched
unsorted and sorted with Arrow (one BIGINT key per event — ``µs × 2 + 1`` for a start, ``µs × 2`` for an
end — so an end sorts before a start at the same instant, §3.4), then ``cumulative_sum`` gives the level
after each event and DuckDB aggregates max level and net change per bucket over the Arrow table.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

Live = tuple[str, list[Any]]
NO_LIVE: Live = ("", [])


def live_sql(in_flight: Sequence[float], watermark: float | None, t0: float, t1: float) -> Live:
    """Live in-flight calls (not in the table yet) as extra ``(key, start, end)`` rows ending at the
    watermark (§3.1), appended with ``UNION ALL`` to the call selection of this module's queries."""
    if not in_flight or watermark is None:
        return NO_LIVE
    vals = ", ".join("(?)" for _ in in_flight)
    sql = (f" UNION ALL SELECT NULL, s, CAST(? AS DOUBLE) FROM (VALUES {vals}) v(s) "
           "WHERE s < ? AND CAST(? AS DOUBLE) > ?")
    return sql, [watermark, *[float(x) for x in in_flight], t1, watermark, t0]


def _calls_cte(key: str, where: str, live: Live, group_sql: str | None = None) -> str:
    """``c(_k, cs, ce)`` — or ``c(g, cs, ce)`` with ``group_sql`` computed once per call (materialized) —
    the calls overlapping the range, times in integer µs (params: [group], where, t1, t0, live)."""
    head = f"c AS MATERIALIZED (SELECT {group_sql} AS g," if group_sql else "c AS (SELECT _k,"
    return (f"{head} CAST(round(cs * 1e6) AS BIGINT) AS cs, CAST(round(ce * 1e6) AS BIGINT) AS ce"
            f" FROM (SELECT {key} AS _k, request_start AS cs, response_end AS ce FROM calls WHERE {where}"
            f" AND response_end IS NOT NULL AND request_start < ? AND response_end > ?{live[0]}))")


def overlap(cur: duckdb.DuckDBPyConnection, where: str, params: list[Any], key: str, w: int, lo_b: int,
            hi_b: int, live: Live = NO_LIVE) -> dict[tuple[Any, int], tuple[float, int]]:
    """``{(group, bucket): (overlap seconds, overlapping calls)}`` for buckets ``lo_b … hi_b`` of ``w`` s."""
    w_us, lo_us, hi_us = w * 1_000_000, lo_b * w * 1_000_000, (hi_b + 1) * w * 1_000_000
    sql = f"""
    WITH {_calls_cte(key, where, live)}
    SELECT _k, 1 AS kind, greatest(cs // {w_us}, {lo_b - 1}) AS b, count(*), sum(cs) FROM c GROUP BY 1, 3
    UNION ALL
    SELECT _k, -1, (ce - 1) // {w_us}, count(*), sum(ce) FROM c WHERE ce <= {hi_us} GROUP BY 1, 3
    """
    rows = cur.execute(sql, params + [hi_us / 1e6, lo_us / 1e6] + live[1]).fetchall()
    per: dict[Any, dict[int, list[int]]] = {}
    for k, kind, b, n, total in rows:
        slot = per.setdefault(k, {}).setdefault(int(b), [0, 0, 0, 0])  # starts n, Σ, ends n, Σ
        if kind == 1:
            slot[0], slot[1] = int(n), int(total)
        else:
            slot[2], slot[3] = int(n), int(total)
    out: dict[tuple[Any, int], tuple[float, int]] = {}
    for k, buckets in per.items():
        ns = ss = ne = se = 0  # starts / ends in buckets before the current one
        for b in sorted(buckets):
            if b >= lo_b:
                break
            ns, ss, ne, se = ns + buckets[b][0], ss + buckets[b][1], ne + buckets[b][2], se + buckets[b][3]
        f_prev = _f(lo_b * w_us, ns, ss, ne, se)
        for b in range(lo_b, hi_b + 1):
            slot = buckets.get(b)
            ended_before = ne  # ends at or before the bucket start
            if slot is not None:
                ns, ss, ne, se = ns + slot[0], ss + slot[1], ne + slot[2], se + slot[3]
            f_next = _f((b + 1) * w_us, ns, ss, ne, se)
            n_over = ns - ended_before
            if n_over or f_next != f_prev:
                out[(k, b)] = ((f_next - f_prev) / 1e6, n_over)
            f_prev = f_next
    return out


def _f(x: int, ns: int, ss: int, ne: int, se: int) -> int:
    """``F(x)`` in µs from the counts/sums of starts and ends at or before ``x``."""
    return x * ns - ss - (x * ne - se)


class Peaks:
    """Peak per (group, bucket) from ``peaks``; a bucket without events inherits the level carried into
    it (the level after the last earlier bucket with events)."""

    def __init__(self, rows: Sequence[tuple[Any, int, int, int]], lo_b: int) -> None:
        """``rows``: ``(group, bucket, max level inside the bucket relative to its start, net change)``
        for every (group, bucket) with events, bucket ``lo_b − 1`` holding everything before the range."""
        self.peak: dict[tuple[Any, int], int] = {}
        self._after: dict[Any, tuple[list[int], list[int]]] = {}
        level: dict[Any, int] = {}
        for k, b, top, delta in sorted(rows, key=lambda r: (str(r[0]), r[1])):
            b = int(b)
            carried = level.get(k, 0)
            if b >= lo_b:
                self.peak[(k, b)] = carried + max(int(top), 0)
            level[k] = carried + int(delta)
            bs, levels = self._after.setdefault(k, ([], []))
            bs.append(b)
            levels.append(level[k])

    def at(self, k: Any, b: int) -> int:
        v = self.peak.get((k, b))
        if v is not None:
            return v
        bs, levels = self._after.get(k, ([], []))
        i = bisect.bisect_left(bs, b) - 1
        return levels[i] if i >= 0 else 0


def peaks(cur: duckdb.DuckDBPyConnection, where: str, params: list[Any], key: str, t0: float, t1: float,
          w: int | None, live: Live = NO_LIVE) -> Peaks:
    """§3.4 ``active_peak`` of the calls overlapping ``[t0, t1)``, per group and bucket (``w`` seconds,
    epoch-aligned; ``None`` = the whole range as bucket 0).

    Each event is one BIGINT, ``2·(t − base) + (1 for a start, 0 for an end)`` with ``base = t0 − 1 µs``,
    so one single-key sort orders time with ends before starts at the same instant. Events before ``t0``
    are all starts (every selected call ends after ``t0``) and only make the carried-in level, so their
    times are clamped to ``base``. Groups are ordered afterwards by a stable sort of the small group ids
    (keeping them out of the time key keeps the input nearly sorted, which Arrow sorts ~3x faster).
    Bucket of an event: a start goes to the bucket containing it, an end to the bucket containing the
    instant just before it — so an end exactly on a boundary lowers the level the next bucket inherits and
    is not counted in it.
    """
    t0_us, t1_us = round(t0 * 1e6), round(t1 * 1e6)
    base = t0_us - 1
    lo_b = 0 if w is None else t0_us // (w * 1_000_000)
    grouped = key != "NULL"
    names: list[Any] = [None]
    if grouped:
        names += [r[0] for r in cur.execute(
            f"SELECT DISTINCT {key} FROM calls WHERE {where} AND response_end IS NOT NULL AND request_start < ? "
            f"AND response_end > ? ORDER BY 1", params + [t1, t0]).fetchall()]
        gsql, gparams = "CAST(coalesce(list_position(?::VARCHAR[], _k), 0) AS INTEGER)", [names[1:]]
    else:
        gsql, gparams = "", []
    sql = f"""
    WITH {_calls_cte(key, where, live, gsql if grouped else None)}
    SELECT {"g, " if grouped else ""}2 * (greatest(cs, {base}) - {base}) + 1 AS e FROM c
    UNION ALL SELECT {"g, " if grouped else ""}2 * (ce - {base}) AS e FROM c WHERE ce <= {t1_us}
    """
    rel = cur.sql(sql, params=gparams + params + [t1, t0] + live[1])
    tbl = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.fetch_arrow_table()  # DuckDB < 1.4
    if tbl.num_rows == 0:
        return Peaks([], lo_b)
    order = pc.sort_indices(tbl.column("e"))
    e = pc.take(tbl.column("e"), order)
    if grouped:
        g = pc.take(tbl.column("g"), order)
        by_group = pc.sort_indices(g)  # stable: time order kept inside each group
        e, g = pc.take(e, by_group), pc.take(g, by_group)
    else:
        g = pa.nulls(len(e), pa.int32()).fill_null(0)
    d = pc.subtract(pc.multiply(pc.bit_wise_and(e, 1), 2), 1)
    ev = pa.table({"g": g, "e": e, "d": d, "l": pc.cumulative_sum(d)})
    instant = f"((e >> 1) + {base} - 1 + (e & 1))"  # a start: its µs; an end: the µs just before it
    bucket = (f"CASE WHEN {instant} < {t0_us} THEN -1 ELSE 0 END" if w is None
              else f"greatest({instant} // {w * 1_000_000}, {lo_b - 1})")
    name = "__heron_peak_events"
    cur.register(name, ev)
    try:
        runs = cur.execute(f"SELECT g, {bucket} AS b, max(l), sum(d) FROM {name} GROUP BY ALL "
                           "ORDER BY g, b").fetchall()
    finally:
        cur.unregister(name)
    # ``l`` runs on across buckets and groups: subtract the level before each run (Σ of earlier runs)
    rows, before = [], 0
    for g_i, b, top, total in runs:
        rows.append((names[g_i], b, int(top) - before, int(total)))
        before += int(total)
    return Peaks(rows, lo_b)
