"""Segment-level capture faults applied to a packetized connection.

Faults are edits of the segment list so the truth builder can see exactly what reached the capture.
Benign faults (reorder, retransmit incl. partial overlap, duplicate capture) never damage an exchange;
damaging faults (drop, snaplen) are only placed inside the *body* of the *last* exchange of a
connection that is left open, which keeps the engine's expected behaviour unambiguous (the gap is
skipped by timeout, nothing later on the flow depends on it).  RST, no-response and 1-byte segments are
connection-spec level (see :mod:`tcpflow`).
"""
from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field

from .tcpflow import C2S, S2C, ConnTrace, ExchangeRanges, Seg


@dataclass(frozen=True)
class FaultConfig:
    """Rates: ``reorder``/``retransmit``/``dup_capture`` per data segment; the others per connection."""

    reorder: float = 0.0
    retransmit: float = 0.0
    dup_capture: float = 0.0
    drop: float = 0.0
    snaplen: float = 0.0
    rst: float = 0.0
    no_response: float = 0.0
    tiny: float = 0.0
    capture_cut: bool = False

    @property
    def any(self) -> bool:
        return any((self.reorder, self.retransmit, self.dup_capture, self.drop, self.snaplen, self.rst,
                    self.no_response, self.tiny, self.capture_cut))


@dataclass
class FaultLog:
    """Which faults touched which exchange ordinal, and where a response gap starts."""

    by_ordinal: dict[int, set[str]] = field(default_factory=dict)
    gap_at: dict[int, int] = field(default_factory=dict)  # ordinal -> first missing response offset
    gap_end: dict[int, int] = field(default_factory=dict)  # ordinal -> first offset after the hole

    def add(self, ordinal: int | None, name: str) -> None:
        if ordinal is not None:
            self.by_ordinal.setdefault(ordinal, set()).add(name)


def _owner(ranges: list[ExchangeRanges], d: int, off: int) -> int | None:
    for r in ranges:
        lo, hi = r.req if d == C2S else r.resp
        if lo <= off < hi:
            return r.ordinal
    return None


REORDER_MAX_US = 200_000
"""Largest time between two swapped segments. Real reordering happens inside one burst; a swap across
seconds would hold bytes back past the engine's gap timeout (capture-and-http.md §5.4, 2 s), which is
damage, not a benign fault."""


def _sent_upto(segs: list[Seg], d: int) -> tuple[list[int], list[int]]:
    """``(times, ends)``: for direction ``d``, the highest stream offset sent by each segment time."""
    times: list[int] = []
    ends: list[int] = []
    hi = 0
    for s in sorted((x for x in segs if x.d == d and x.length), key=lambda x: x.ts):
        hi = max(hi, s.off + s.length)
        times.append(s.ts)
        ends.append(hi)
    return times, ends


def _swappable(segs: list[Seg], j: int, i: int) -> bool:
    """A benign swap: close in time, and no data of the other direction in between (a response can't
    precede the request bytes it answers, nor a request the response that prompted it)."""
    a, b = segs[j], segs[i]
    if b.ts - a.ts > REORDER_MAX_US:
        return False
    return not any(s.length and s.d != a.d for s in segs[j + 1:i])


def apply_benign(trace: ConnTrace, cfg: FaultConfig, rng: random.Random, log: FaultLog) -> None:
    """Reordering, retransmissions (full and partially overlapping) and duplicate capture."""
    segs = trace.segs
    if cfg.reorder:
        last_idx: dict[int, int] = {}
        for i, s in enumerate(segs):
            if not s.length:
                continue
            j = last_idx.get(s.d)
            last_idx[s.d] = i
            # rng.random() is drawn exactly as before the _swappable guard existed, so seeds keep
            # their other choices.
            if j is not None and segs[j].length and rng.random() < cfg.reorder and _swappable(segs, j, i):
                a, b = segs[j], segs[i]
                a.off, b.off = b.off, a.off
                a.length, b.length = b.length, a.length
                a.flags, b.flags = b.flags, a.flags
                log.add(_owner(trace.ranges, a.d, a.off), "reorder")
                log.add(_owner(trace.ranges, b.d, b.off), "reorder")
                last_idx.pop(s.d)
    if cfg.retransmit:
        extra: list[Seg] = []
        sent = (_sent_upto(segs, C2S), _sent_upto(segs, S2C))
        for s in segs:
            if not s.length or s.snap is not None or rng.random() >= cfg.retransmit:
                continue
            r = s.clone()
            r.ts = s.ts + rng.randint(200, 5000)
            if rng.random() < 0.5 and s.length > 1:
                half = s.length // 2
                # A retransmission can only carry bytes the sender had already sent by then (not the
                # next response, written seconds later).
                times, ends = sent[s.d]
                upto = ends[bisect.bisect_right(times, r.ts) - 1]
                end = min(s.off + s.length + half, upto)
                r.off, r.length = s.off + half, end - (s.off + half)
                name = "retransmit_overlap"
            else:
                name = "retransmit"
            extra.append(r)
            log.add(_owner(trace.ranges, s.d, s.off), name)
        segs.extend(extra)
        segs.sort(key=lambda x: x.ts)
    if cfg.dup_capture:
        for s in segs:
            if rng.random() < cfg.dup_capture:
                s.copies = 2
                if s.length:
                    log.add(_owner(trace.ranges, s.d, s.off), "dup_capture")


def apply_gap(trace: ConnTrace, kind: str, rng: random.Random, log: FaultLog) -> bool:
    """Drop (``drop``) or snap-truncate (``snaplen``) one body segment of the last exchange's response.

    Returns False when the response is too short to host a gap that the engine can detect.
    """
    if not trace.ranges:
        return False
    rg = trace.ranges[-1]
    lo, hi = rg.resp
    body = trace.streams[S2C]
    head_end = body.find(b"\r\n\r\n", lo, hi)
    if head_end < 0:
        return False
    head_end += 4
    cands = [s for s in trace.segs if s.d == S2C and s.length and s.off >= head_end and s.off + s.length < hi]
    # the gap must be followed by at least one more segment of this response
    cands = [s for s in cands if s.length > 1]
    # A partially overlapping retransmission starts mid-segment: dropping it would also drop (below) the
    # original segment spanning its start, so the hole would begin earlier than logged, possibly in the
    # response head. Only segments whose start no other segment covers can be the victim.
    cands = [s for s in cands if not any(o is not s and o.d == S2C and o.length and o.off < s.off < o.off + o.length
                                         for o in trace.segs)]
    if len(cands) < 2:
        return False
    victim = cands[rng.randrange(0, len(cands) - 1)]
    if kind == "drop":
        trace.segs.remove(victim)
        gap = victim.off
    else:
        victim.snap = rng.randint(0, victim.length - 1)
        gap = victim.off + victim.snap
    # a retransmission must not refill the gap
    trace.segs[:] = [s for s in trace.segs
                     if not (s is not victim and s.d == S2C and s.length and s.off <= gap < s.off + s.length)]
    log.add(rg.ordinal, kind)
    log.gap_at[rg.ordinal] = gap
    if kind == "drop":
        # an overlapping retransmission of the victim may refill its second half
        log.gap_end[rg.ordinal] = min(s.off for s in trace.segs if s.d == S2C and s.length and s.off > gap)
    else:
        log.gap_end[rg.ordinal] = victim.off + victim.length  # the engine skips the whole cut tail (§5.6)
    return True
