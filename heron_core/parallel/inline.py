"""``--workers 0`` for polled sources: the reader, worker and assembler logic in the main process.

``heron ingest`` with ``--workers 0`` keeps its own loop (``Engine.ingest``); this is the same thing for
``heron run``, whose sources (paced files, live interfaces, ZMQ) must be polled so the process can
wake up without data (idle heartbeats, stop requests, writer flushes). It has the interface of
``ParallelPipeline`` so the run driver does not care which one it got.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from heron_core.capture.sources import FileSource, SourceSpec, open_record_source
from heron_core.records import EndOfSource, Segment

from .control import RunResult, Shutdown
from .stats import snapshot

log = logging.getLogger("heron")

_POLL_S = 0.1


class InlinePipeline:
    """Runs one ``SourceSpec`` in the calling process through ``engine.worker`` (→ its assembler)."""

    def __init__(self, engine: Any, spec: SourceSpec) -> None:
        self.engine = engine
        self.spec = spec
        self.result = RunResult()
        self.watermark: dict[str, int | None] = {}
        self.drained: set[str] = set()
        self._stop = False
        self._errors = 0

    def _feed(self, recs: list[Any]) -> None:
        worker = self.engine.worker
        segment = worker.segment
        handle = worker.handle
        for r in recs:
            try:
                if type(r) is Segment:
                    segment(r)
                else:
                    handle(r)
            except Exception:  # a stage bug must not stop the capture
                self._errors += 1
                self.engine.counters["internal_errors"] += 1
                if self._errors <= 3:
                    log.exception("internal error")
            if type(r) is not Segment:
                if type(r) is EndOfSource:
                    self.drained.add(r.source_id)
                else:
                    self.watermark[r.source_id] = r.ts_us

    def run(
        self,
        shutdown: Shutdown | None = None,
        on_started: Callable[[Any], None] | None = None,
        on_tick: Callable[[Any], None] | None = None,
        tick_s: float = 0.2,
        flush_s: float | None = None,
    ) -> RunResult:
        engine = self.engine
        writer = engine.writer
        t0 = time.perf_counter()
        src = open_record_source(self.spec, engine.counters, engine.cfg)  # CaptureError propagates
        if on_started is not None:
            on_started(engine)
        next_tick = time.monotonic() + tick_s
        next_flush = time.monotonic() + (flush_s or 0.0)
        try:
            while True:
                if self._stop or (shutdown is not None and shutdown.requested):
                    if shutdown is not None:
                        shutdown.check()
                    self.result.stopped = True
                    break
                self._feed(src.poll(_POLL_S))
                if src.finished:
                    break
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + tick_s
                    if on_tick is not None:
                        on_tick(engine)
                if flush_s and now >= next_flush and writer is not None:
                    next_flush = now + flush_s
                    writer.flush()
        finally:
            self._feed(src.close())
        if shutdown is not None:
            shutdown.check()
        if isinstance(src, FileSource):
            self.result.outcomes = list(src.outcomes)
        if writer is not None:
            writer.flush()
        r = self.result
        r.counters = engine.counters
        r.duration_s = time.perf_counter() - t0
        r.drained = True
        return r

    def stop(self) -> None:
        self._stop = True

    def kill(self) -> None:
        """Leave at once (second signal): the store writer's thread finishes only the statement it is in,
        so the caller can close the store under no running statement."""
        if self.engine.writer is not None:
            self.engine.writer.abandon()

    def totals(self) -> Any:
        return self.engine.counters.copy()

    def snapshot(self, tracker: Any = None) -> dict[str, Any]:
        totals = self.totals()
        lossy = not self.spec.lossless
        if lossy:
            now = time.time()
            for sid, wm in list(self.watermark.items()):  # the API reads from another thread
                if wm is not None and sid not in self.drained:
                    totals[f"watermark_lag_s.{sid}"] = round(max(0.0, now - wm / 1e6), 3)
        return snapshot(totals, [], [], tracker or self.engine.health, lossy)

    def watermarks(self) -> dict[str, int | None]:
        return dict(list(self.watermark.items()))

    def drained_sources(self) -> set[str]:
        return set(self.drained)
