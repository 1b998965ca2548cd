"""Active-call metrics (metrics.md §3.3–3.4): ``active_avg``, ``active_overlapping``, ``active_peak``.

A call is in flight over ``[request_start, response_end]``. Times are handled as integer µs (the engine's
resolution), so every figure is exact: no float cancellation however large the epoch values.

**One fetch, numpy after it.** The calls overlapping the range are read once (group code, start µs, end
µs) and every figure is computed from those arrays. DuckDB is the wrong tool for the rest: the peak needs
the events in time order, and DuckDB's ``ORDER BY`` of 2M keys costs ~250 ms CPU (Arrow's sort ~120 ms,
numpy's ~30 ms on the same machine), and its hash aggregates by time bucket cost as much as the scan.

**Overlap without a join.** Let ``F(x) = Σ_calls (max(0, x − start) − max(0, x − end))`` — the integral of
the in-flight count up to ``x``. A bucket ``[x, x + w)`` gets ``F(x + w) − F(x)`` call-µs, which is
``w · (level at x)`` plus, for the starts inside the bucket, ``x + w − start`` and minus, for the ends
inside it, ``x + w − end``: per-bucket counts and sums of small offsets (exact in int64 and in the
float64 of ``bincount`` up to 2^53, checked), never a sum of raw epoch µs. ``active_overlapping`` of a
bucket = starts before its end − ends at or before its start.

**Peak.** Each event is one int64, ``2·(t − base) + 1`` for a start and ``2·(t − base)`` for an end (with
``base = t0 − 1 µs``), so one sort orders time with ends before starts at the same instant (§3.4); the
group code sits in the high bits so the same sort groups the calls. A cumulative sum of ±1 gives the
level after each event; the peak of a bucket is the maximum of the level carried into it and the levels
after its events (``numpy.maximum.reduceat`` over the runs of equal (group, bucket)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np

Live = tuple[str, list[Any]]
NO_LIVE: Live = ("", [])
_EXACT = 1 << 53
"""float64 holds every integer below this exactly: the bound for ``bincount`` sums."""


def live_sql(in_flight: Sequence[float], watermark: float | None, t0: float, t1: float) -> Live:
    """Live in-flight calls (not in the table yet) as extra ``(key, start, end)`` rows ending at the
    watermark (§3.1), appended with ``UNION ALL`` to the call selection of this module's queries."""
    if not in_flight or watermark is None:
        return NO_LIVE
    vals = ", ".join("(?)" for _ in in_flight)
    sql = (f" UNION ALL SELECT NULL, s, CAST(? AS DOUBLE) FROM (VALUES {vals}) v(s) "
           "WHERE s < ? AND CAST(? AS DOUBLE) > ?")
    return sql, [watermark, *[float(x) for x in in_flight], t1, watermark, t0]


@dataclass(frozen=True, slots=True)
class Intervals:
    """The calls in flight at some point of a range: group code (index into ``names``), start and end
    in integer µs. Code 0 is the ungrouped key (None), or a value outside ``names``."""

    names: list[Any]
    g: np.ndarray
    cs: np.ndarray
    ce: np.ndarray

    @property
    def groups(self) -> int:
        return len(self.names)


def intervals(cur: duckdb.DuckDBPyConnection, where: str, params: list[Any], key: str, t0: float, t1: float,
              live: Live = NO_LIVE, labels: Sequence[Any] | None = None) -> Intervals:
    """Calls overlapping ``[t0, t1)`` (``response_end > t0``, ``request_start < t1``) plus the live rows.

    ``key`` is ``NULL`` (one group) or SQL giving each call an integer group code ``0 … len(labels) − 1``;
    ``labels[code]`` is the group's value in the results.
    """
    grouped = key != "NULL"
    if grouped:
        if labels is None:
            raise ValueError("a grouped key needs the labels of its codes")
        gsql, all_names = "CAST(coalesce(_k, 0) AS INTEGER) AS g, ", list(labels)
    else:
        gsql, all_names = "", [None]
    sql = (f"SELECT {gsql}CAST(round(cs * 1e6) AS BIGINT) AS cs, CAST(round(ce * 1e6) AS BIGINT) AS ce "
           f"FROM (SELECT {key} AS _k, request_start AS cs, response_end AS ce FROM calls WHERE {where} "
           f"AND response_end IS NOT NULL AND request_start < ? AND response_end > ?{live[0]})")
    tbl = cur.sql(sql, params=params + [t1, t0] + live[1]).to_arrow_table()
    cs = _column(tbl, "cs")
    ce = _column(tbl, "ce")
    g = _column(tbl, "g") if grouped else np.zeros(len(cs), dtype=np.int64)
    return Intervals(all_names, g.astype(np.int64, copy=False), cs, ce)


def _column(tbl: Any, name: str) -> np.ndarray:
    col = tbl.column(name)
    if col.num_chunks == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(col.combine_chunks().to_numpy(zero_copy_only=False), dtype=np.int64)


# --- overlap ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Overlap:
    """Per group and bucket ``lo_b … hi_b``: call-µs in flight (``us``) and calls overlapping (``n``),
    arrays of shape ``(groups, buckets)``."""

    names: list[Any]
    lo_b: int
    us: np.ndarray
    n: np.ndarray

    def row(self, k: Any) -> int | None:
        try:
            return self.names.index(k)
        except ValueError:
            return None

    def seconds(self, k: Any) -> list[float]:
        """Overlap seconds per bucket of group ``k`` (µs integer / 1e6, as exact as a float gets)."""
        i = self.row(k)
        width = self.us.shape[1]
        return [0.0] * width if i is None else [v / 1e6 for v in self.us[i].tolist()]

    def counts(self, k: Any) -> list[int]:
        i = self.row(k)
        return [0] * self.n.shape[1] if i is None else self.n[i].tolist()


def _bucket_sums(idx: np.ndarray, weights: np.ndarray, counts: np.ndarray, bound: int) -> np.ndarray:
    """Exact int64 sums of ``weights`` per index, for the slots whose weights are all in ``[0, bound]``
    (the others are not read): ``bincount`` (float64) while no such sum can reach 2^53, else an int64
    scatter-add."""
    if len(idx) == 0 or int(counts.max()) * max(bound, 1) < _EXACT:
        return np.bincount(idx, weights=weights, minlength=len(counts)).astype(np.int64)
    out = np.zeros(len(counts), dtype=np.int64)
    np.add.at(out, idx, weights)
    return out


def overlap(iv: Intervals, w: int, lo_b: int, hi_b: int) -> Overlap:
    """``active_avg``/``active_overlapping`` inputs for the epoch-aligned buckets ``lo_b … hi_b`` of ``w``
    seconds. A start at ``s`` belongs to the bucket containing ``s``, an end at ``e`` to the bucket
    containing the instant just before ``e`` (an end on a boundary leaves the earlier bucket)."""
    w_us = w * 1_000_000
    nb = hi_b - lo_b + 1
    width = nb + 2  # slot 0: before the range, 1..nb: the buckets, nb + 1: after it
    groups = iv.groups
    size = groups * width
    slot_s = np.clip(iv.cs // w_us - (lo_b - 1), 0, nb + 1)
    slot_e = np.clip((iv.ce - 1) // w_us - (lo_b - 1), 0, nb + 1)
    # offset of each event to the end of its slot's bucket: in (0, w_us] for slots 1..nb (the only ones
    # read below); whatever it is in slots 0 and nb + 1
    off_s = (slot_s + lo_b) * w_us - iv.cs
    off_e = (slot_e + lo_b) * w_us - iv.ce
    if groups > 1:
        slot_s += iv.g * width
        slot_e += iv.g * width
    n_s = np.bincount(slot_s, minlength=size)
    n_e = np.bincount(slot_e, minlength=size)
    sum_s = _bucket_sums(slot_s, off_s, n_s, w_us).reshape(groups, width)
    sum_e = _bucket_sums(slot_e, off_e, n_e, w_us).reshape(groups, width)
    n_s, n_e = n_s.reshape(groups, width), n_e.reshape(groups, width)
    starts_before = np.cumsum(n_s, axis=1) - n_s  # starts before each slot
    ends_upto = np.cumsum(n_e, axis=1) - n_e  # ends at or before each slot's start
    level = starts_before - ends_upto
    us = w_us * level[:, 1:nb + 1] + sum_s[:, 1:nb + 1] - sum_e[:, 1:nb + 1]
    n = starts_before[:, 2:nb + 2] - ends_upto[:, 1:nb + 1]
    return Overlap(iv.names, lo_b, us, n)


def range_overlap(iv: Intervals, t0: float, t1: float) -> tuple[dict[Any, int], dict[Any, int]]:
    """Whole-range figures per group: ``({k: call-µs in flight within [t0, t1]}, {k: calls})``."""
    t0_us, t1_us = round(t0 * 1e6), round(t1 * 1e6)
    per_call = np.minimum(iv.ce, t1_us) - np.maximum(iv.cs, t0_us)
    us: dict[Any, int] = {}
    n: dict[Any, int] = {}
    counts = np.bincount(iv.g, minlength=iv.groups)
    sums = None
    if iv.groups > 1 and len(per_call) and int(np.abs(per_call).max()) * len(per_call) < 1 << 53:
        # float64 adds integers exactly while every partial sum stays below 2^53 (checked above): one
        # pass instead of a mask per group
        sums = np.bincount(iv.g, weights=per_call, minlength=iv.groups)
    for i in np.flatnonzero(counts).tolist():
        if sums is not None:
            us[iv.names[i]] = int(sums[i])
        else:
            us[iv.names[i]] = _exact_sum(per_call[iv.g == i] if iv.groups > 1 else per_call)
        n[iv.names[i]] = int(counts[i])
    return us, n


def _exact_sum(values: np.ndarray) -> int:
    """Sum of int64 values as a Python int, in chunks small enough that no int64 partial sum overflows."""
    if len(values) == 0:
        return 0
    most = int(np.abs(values).max()) or 1
    step = max(1, (1 << 62) // most)
    return sum(int(values[i:i + step].sum()) for i in range(0, len(values), step))


# --- peak ---------------------------------------------------------------------------------------------


class Peaks:
    """Peak per (group, bucket); a bucket without events inherits the level carried into it (the level
    after the last earlier bucket with events)."""

    def __init__(self, names: list[Any], lo_b: int, run_g: np.ndarray, run_b: np.ndarray, run_peak: np.ndarray,
                 run_last: np.ndarray) -> None:
        """Runs of events per (group code, bucket), sorted by group then bucket: the peak in the bucket
        (carried level included) and the level after its last event. Bucket ``lo_b − 1`` holds
        everything before the range."""
        self.lo_b = lo_b
        self._runs: dict[Any, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if len(run_g):
            cuts = np.flatnonzero(np.diff(run_g)) + 1
            for part_g, b, p, last in zip(np.split(run_g, cuts), np.split(run_b, cuts), np.split(run_peak, cuts),
                                          np.split(run_last, cuts)):
                self._runs[names[int(part_g[0])]] = (b, p, last)

    @property
    def peak(self) -> dict[tuple[Any, int], int]:
        """``{(group, bucket): peak}`` of the buckets (from ``lo_b`` on) that hold events."""
        out: dict[tuple[Any, int], int] = {}
        for k, (b, p, _last) in self._runs.items():
            keep = b >= self.lo_b
            out.update(((k, bb), pp) for bb, pp in zip(b[keep].tolist(), p[keep].tolist()))
        return out

    def at(self, k: Any, b: int) -> int:
        return self.series(k, b, b)[0]

    def series(self, k: Any, lo_b: int, hi_b: int) -> list[int]:
        """Peaks of buckets ``lo_b … hi_b`` of group ``k``."""
        runs = self._runs.get(k)
        want = np.arange(lo_b, hi_b + 1, dtype=np.int64)
        if runs is None:
            return [0] * len(want)
        b, p, last = runs
        i = np.searchsorted(b, want, side="right") - 1
        safe = np.maximum(i, 0)
        hit = (i >= 0) & (b[safe] == want)
        carried = np.where(i >= 0, last[safe], 0)
        return np.where(hit, p[safe], carried).tolist()


def peaks(iv: Intervals, t0: float, t1: float, w: int | None) -> Peaks:
    """§3.4 ``active_peak`` of ``iv`` over ``[t0, t1)`` per group and bucket (``w`` seconds, epoch-aligned;
    ``None`` = the whole range as bucket 0).

    Events before ``t0`` are all starts (every call ends after ``t0``) and only make the carried-in level,
    so their times are clamped to ``base``; ends after ``t1`` are dropped. Bucket of an event: a start goes
    to the bucket containing it, an end to the bucket containing the instant just before it — so an end
    exactly on a boundary lowers the level the next bucket inherits and is not counted in it. In event keys
    that is: the events before bucket start ``x`` are those with key ``< 2·(x − base) + 1``, so the runs of
    each bucket are found by binary search in the sorted keys instead of a bucket per event.
    """
    t0_us, t1_us = round(t0 * 1e6), round(t1 * 1e6)
    base = t0_us - 1
    lo_b = 0 if w is None else t0_us // (w * 1_000_000)
    empty = np.zeros(0, dtype=np.int64)
    keep = iv.ce <= t1_us
    n_events = len(iv.cs) + int(keep.sum())
    if n_events == 0:
        return Peaks(iv.names, lo_b, empty, empty, empty, empty)
    starts = np.maximum(iv.cs, base)
    starts -= base
    starts <<= 1
    starts |= 1
    ends = iv.ce[keep] - base
    ends <<= 1
    span = max(int(starts.max()), int(ends.max()) if len(ends) else 0).bit_length()
    grouped = iv.groups > 1
    if grouped and (iv.groups - 1).bit_length() + span > 62:
        raise ValueError("range too long for the active-call peak")  # > ~70,000 years of µs
    shift = span if grouped else 0
    if grouped:
        starts |= iv.g << shift
        ends |= iv.g[keep] << shift
    keys = np.sort(np.concatenate((starts, ends)))
    level = np.cumsum(((keys & 1) << 1) - 1, dtype=np.int64)  # +1 per start, −1 per end
    if w is None:
        edges = np.array([t0_us, t1_us + 1], dtype=np.int64)  # bucket 0 and everything up to its end
        first_b = 0
    else:
        w_us = w * 1_000_000
        hi_b = max(lo_b, -(-t1_us // w_us) - 1)
        edges = np.arange(lo_b, hi_b + 2, dtype=np.int64) * w_us
        first_b = lo_b
    thresholds = 2 * (edges - base) + 1  # event keys below: before the edge
    run_g, run_b, run_peak, run_last = [], [], [], []
    groups = range(iv.groups) if grouped else (0,)
    for gi in groups:
        g_lo = int(np.searchsorted(keys, gi << shift)) if grouped else 0
        g_hi = int(np.searchsorted(keys, (gi + 1) << shift)) if grouped else len(keys)
        if g_hi == g_lo:
            continue
        offset = int(level[g_lo - 1]) if g_lo else 0
        # thresholds past this group's keys must not spill into the group bits: clamp, then offset
        thr = np.minimum(thresholds, 1 << shift) + (gi << shift) if grouped else thresholds
        pos = np.searchsorted(keys[g_lo:g_hi], thr) + g_lo
        # the pre-range run [g_lo, pos[0]) is bucket first_b − 1; bucket first_b + i is [pos[i], pos[i+1])
        bounds = np.concatenate(([g_lo], pos, [g_hi]))
        buckets = np.arange(first_b - 1, first_b + len(pos), dtype=np.int64)
        nonempty = bounds[1:] > bounds[:-1]
        lo_idx = bounds[:-1][nonempty]
        hi_idx = bounds[1:][nonempty] - 1
        top = np.maximum.reduceat(level[g_lo:g_hi], lo_idx - g_lo) - offset
        last = level[hi_idx] - offset
        carried = np.concatenate(([0], last[:-1]))
        run_g.append(np.full(len(lo_idx), gi, dtype=np.int64))
        run_b.append(buckets[nonempty])
        run_peak.append(np.maximum(carried, top))
        run_last.append(last)
    if not run_g:
        return Peaks(iv.names, lo_b, empty, empty, empty, empty)
    return Peaks(iv.names, lo_b, np.concatenate(run_g), np.concatenate(run_b), np.concatenate(run_peak),
                 np.concatenate(run_last))
