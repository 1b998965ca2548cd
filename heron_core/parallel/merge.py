"""Watermark merge in front of the assembler (capture-and-http.md §2.6).

Every worker sees every heartbeat and forwards ``Watermark(source, t)`` after the records its earlier
segments produced. The assembler may only act on ``t`` once *all* workers got there, so its watermark
per source is the minimum over workers. ``WatermarkMerger`` wraps the assembler callable: it passes
every other message through untouched, passes a ``Watermark`` on only when it advances that minimum,
and passes ``EndOfSource`` on only when every worker has sent it (a worker that ended a source no
longer holds the minimum back).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from heron_core.records import EndOfSource, Watermark

log = logging.getLogger("heron")

_ENDED = 1 << 62  # a worker that drained a source never holds its watermark back


class WatermarkMerger:
    """Min-over-workers watermark per source; see the module doc."""

    def __init__(self, sink: Callable[[Any], None], workers: int) -> None:
        self.sink = sink
        self.n = workers
        self.marks: dict[str, list[int]] = {}  # source -> last watermark per worker (-1: none yet)
        self.merged: dict[str, int] = {}  # source -> watermark passed on
        self.ended: dict[str, set[int]] = {}
        self.drained: set[str] = set()
        self.updated_at: dict[str, float] = {}  # source -> wall time of the last merged advance

    def feed(self, worker: int, msgs: Iterable[Any]) -> None:
        sink = self.sink
        for m in msgs:
            t = type(m)
            if t is Watermark:
                self._mark(worker, m.source_id, m.ts_us)
            elif t is EndOfSource:
                self._end(worker, m)
            else:
                sink(m)

    def _marks(self, source_id: str) -> list[int]:
        marks = self.marks.get(source_id)
        if marks is None:
            marks = self.marks[source_id] = [-1] * self.n
        return marks

    def _mark(self, worker: int, source_id: str, ts_us: int) -> None:
        marks = self._marks(source_id)
        if ts_us <= marks[worker]:
            return
        marks[worker] = ts_us
        low = min(marks)
        if low > self.merged.get(source_id, -1) and low != _ENDED:
            self.merged[source_id] = low
            self.updated_at[source_id] = time.time()
            self.sink(Watermark(source_id, low))

    def _end(self, worker: int, msg: EndOfSource) -> None:
        sid = msg.source_id
        ended = self.ended.setdefault(sid, set())
        ended.add(worker)
        marks = self._marks(sid)
        marks[worker] = _ENDED
        if len(ended) == self.n:
            self._drain(sid)
        else:
            low = min(marks)
            if low != _ENDED and low > self.merged.get(sid, -1) and low >= 0:
                self.merged[sid] = low
                self.updated_at[sid] = time.time()
                self.sink(Watermark(sid, low))

    def _drain(self, source_id: str) -> None:
        if source_id in self.drained:
            return
        self.drained.add(source_id)
        self.sink(EndOfSource(source_id))

    def finish(self) -> None:
        """Every worker is gone: drain any source a failed worker never ended (logged), so turns close."""
        for sid in list(self.marks):
            if sid not in self.drained:
                log.warning("source %s: not every worker drained it; draining it now", sid)
                self._drain(sid)

    def watermark(self, source_id: str) -> int | None:
        """The merged watermark of a source (µs), None before the first."""
        return self.merged.get(source_id)


def source_of(msg: Any) -> str | None:
    """The source a worker message belongs to (None for anything unknown)."""
    sid = getattr(msg, "source_id", None)
    if sid is None:
        ex = getattr(msg, "exchange", None)
        sid = getattr(ex, "source_id", None)
    return sid


class SourceSequencer:
    """Keeps sequentially read sources in sequence at the assembler.

    Several capture files are separate sources read one after another, so the single-process engine
    hands the assembler everything of file *k* (up to its ``EndOfSource``) before anything of file
    *k+1*. With workers, a worker that finished file *k* already decodes file *k+1* while another still
    works on *k*; stages that compare calls across sources (proxy-hop and mirror folding,
    agents-and-turns.md §9) would then see a different order. The sequencer holds messages of a later
    file until the previous one has drained, so every worker count yields the same records. Memory is
    bounded by how far the fastest worker can run ahead: the queue capacities.
    """

    def __init__(self, sink: Callable[[Any], None], order: Iterable[str]) -> None:
        self.sink = sink
        self.order = list(order)
        self.index = {sid: i for i, sid in enumerate(self.order)}
        self.pos = 0
        self.held: dict[str, list[Any]] = {}
        self.finished: set[str] = set()  # ended (or skipped) while not yet current

    def __call__(self, msg: Any) -> None:
        sid = source_of(msg)
        if sid is None or sid not in self.index or self.pos >= len(self.order):
            self.sink(msg)
            return
        if sid == self.order[self.pos]:
            self.sink(msg)
            if type(msg) is EndOfSource:
                self._advance()
            return
        self.held.setdefault(sid, []).append(msg)
        if type(msg) is EndOfSource:
            self.finished.add(sid)

    def skip(self, source_id: str) -> None:
        """A source that will send nothing (its file could not be opened)."""
        if self.pos < len(self.order) and self.order[self.pos] == source_id:
            self._advance()
        else:
            self.finished.add(source_id)

    def _advance(self) -> None:
        while True:
            self.pos += 1
            if self.pos >= len(self.order):
                return
            sid = self.order[self.pos]
            for m in self.held.pop(sid, ()):
                self.sink(m)
            if sid not in self.finished:
                return

    def flush(self) -> None:
        """Release everything still held, in source order (end of run)."""
        for sid in self.order:
            for m in self.held.pop(sid, ()):
                self.sink(m)
