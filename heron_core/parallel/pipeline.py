"""The parallel engine (``--workers N``, N ≥ 1): one reader process, N decode worker processes, and the
assembler plus store writer in the main process (capture-and-http.md §3).

::

    reader ──(N bounded queues, batches)──► worker i ──(one bounded queue, batches)──► main: merge ► assembler ► store

The main process consumes the single assembler queue: worker output goes through the
``WatermarkMerger`` into the engine's assembler (the same object as in single-process mode), ``Stats``
into ``PipelineStats``, file outcomes into the result. It also runs the caller's ticks (status file,
health log, periodic writer flushes) and turns a stop request into the reader's stop event; the
pipeline then drains by itself and ``run`` returns once every process said ``Done``.
"""

from __future__ import annotations

import gc
import logging
import queue
import sys
import time
from collections.abc import Callable
from typing import Any

from heron_core.capture.sources import CaptureError, SourceSpec
from heron_core.pricing import preload_price_data
from heron_core.wire.decode import preload_wire_modules

from .control import Abort, RunResult, Shutdown, get_context
from .merge import SourceSequencer, WatermarkMerger
from .protocol import Done, Failed, Outcome, Started, Stats, unpack
from .reader import reader_main
from .stats import PipelineStats, snapshot
from .workerproc import worker_main

log = logging.getLogger("heron")

_GET_TIMEOUT_S = 0.05
_JOIN_S = 5.0


_PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = 1031


def _widen_pipe(q: Any) -> None:
    """Give a queue's pipe 1 MiB instead of 64 KiB (Linux): a 300 KB batch then goes through in one
    write instead of five sender/receiver round trips — the feeder threads' ``send`` was a third of the
    reader's CPU. Best effort (``fs.pipe-max-size`` may be lower; other platforms lack the call)."""
    reader = getattr(q, "_reader", None)
    if reader is None or not sys.platform.startswith("linux"):
        return
    try:
        import fcntl

        fcntl.fcntl(reader.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
    except (OSError, ValueError):
        pass


class ParallelPipeline:
    """Runs one ``SourceSpec`` through reader + N workers into ``engine.assembler``."""

    def __init__(self, engine: Any, spec: SourceSpec, workers: int, start_method: str | None = None) -> None:
        if workers < 1:
            raise ValueError("ParallelPipeline needs at least one worker")
        cfg = engine.cfg
        self.engine = engine
        self.spec = spec
        self.n = workers
        ctx = get_context(start_method)
        self._fork = ctx.get_start_method() == "fork"
        self.worker_qs = [ctx.Queue(cfg.pipeline_worker_queue) for _ in range(workers)]
        self.out_q = ctx.Queue(cfg.pipeline_assembler_queue)
        for q in [*self.worker_qs, self.out_q]:
            _widen_pipe(q)
        self.stop_event = ctx.Event()
        self.consumed = ctx.RawArray("q", workers)  # payload bytes each worker processed (reader's budget)
        self.delivered = ctx.RawArray("q", workers)  # output lists of each worker consumed here (its budget)
        self.stats = PipelineStats(workers, cfg.pipeline_worker_queue, cfg.pipeline_assembler_queue)
        # Files are read one after another: keep their output in that order (see SourceSequencer).
        self.sequencer = SourceSequencer(self._assemble, spec.source_ids) if spec.kind == "files" else None
        self.merger = WatermarkMerger(self.sequencer or self._assemble, workers)
        self.reader = ctx.Process(target=reader_main, name="heron-reader", daemon=True,
                                  args=(spec, cfg, self.worker_qs, self.out_q, self.stop_event, self.consumed))
        self.procs = [ctx.Process(target=worker_main, name=f"heron-worker-{i}", daemon=True,
                                  args=(i, cfg, engine.salt, self.worker_qs[i], self.out_q, self.consumed,
                                        self.delivered))
                      for i in range(workers)]
        self.result = RunResult()
        self.done: set[tuple[str, int]] = set()
        self.started = False
        self.failure: CaptureError | None = None
        self.folded = False
        self._errors = 0
        self._on_started: Callable[[Any], None] | None = None

    # --- the assembler side ---------------------------------------------------------------------------

    def _assemble(self, msg: Any) -> None:
        """The engine's assembler, guarded like the single-process hot loop: a stage bug on one message
        is counted (``internal_errors``), not fatal."""
        try:
            self.engine.assembler(msg)
        except Exception:
            self._errors += 1
            self.engine.counters["internal_errors"] += 1
            if self._errors <= 3:
                log.exception("internal error in the assembler")

    def _dispatch(self, item: Any) -> None:
        t = type(item)
        if t is tuple:
            self.merger.feed(item[0], unpack(item[1]))
            self.delivered[item[0]] += 1
        elif t is Stats:
            self.stats.update(item)
        elif t is Outcome:
            self.result.outcomes.append(item.outcome)
            if item.outcome.status == "failed" and self.sequencer is not None:
                self.sequencer.skip(item.outcome.source_id)
        elif t is Started:
            self.started = True
            if self._on_started is not None:
                self._on_started(self.engine)
        elif t is Failed:
            if item.role == "reader" and not self.started:
                self.failure = CaptureError(item.what, item.why, item.usage)
            else:
                self.result.errors.append(f"{item.role} {item.index}: {item.what}: {item.why}")
                log.error("%s %d: %s: %s", item.role, item.index, item.what, item.why)
        elif t is Done:
            self.done.add((item.role, item.index))

    # --- running --------------------------------------------------------------------------------------

    def run(
        self,
        shutdown: Shutdown | None = None,
        on_started: Callable[[Any], None] | None = None,
        on_tick: Callable[[Any], None] | None = None,
        tick_s: float = 0.2,
        flush_s: float | None = None,
    ) -> RunResult:
        """Start the processes, consume until every process is done, then fold the counters in.

        Raises ``CaptureError`` if the reader could not open the source. ``flush_s`` flushes the store
        writer that often (live runs, so rows become visible); None leaves batching to the writer."""
        self._on_started = on_started
        writer = self.engine.writer
        t0 = time.perf_counter()
        self._start_children()
        get = self.out_q.get
        dispatch = self._dispatch
        expected = self.n + 1
        next_tick = time.monotonic() + tick_s
        next_flush = time.monotonic() + (flush_s or 0.0)
        try:
            while len(self.done) < expected:
                if shutdown is not None and shutdown.requested:
                    shutdown.check()
                    if not self.stop_event.is_set():
                        self.stop_event.set()
                        self.result.stopped = True
                try:
                    item = get(timeout=_GET_TIMEOUT_S)
                except queue.Empty:
                    self._check_alive()
                else:
                    dispatch(item)
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + tick_s
                    self._sample_depth()
                    self._check_alive()
                    if on_tick is not None:
                        on_tick(self.engine)
                if flush_s and now >= next_flush and writer is not None:
                    next_flush = now + flush_s
                    writer.flush()
        except BaseException:
            self.kill()
            raise
        self._join()
        if self.failure is not None:
            raise self.failure
        self.merger.finish()
        if self.sequencer is not None:
            self.sequencer.flush()
        self.stats.fold_into(self.engine.counters)
        self.folded = True
        if writer is not None:
            writer.flush()
        r = self.result
        r.counters = self.engine.counters
        r.duration_s = time.perf_counter() - t0
        r.drained = not r.errors
        return r

    def _start_children(self) -> None:
        """Start the reader, then the workers.

        With 'fork', what the workers need on their first calls is imported here first, once: the price
        data (~0.45 s of CPU) and the wire API modules would otherwise be imported by every worker. The
        reader needs neither, so it starts first and reads while this process imports.

        No thread of ours runs while a child is forked: the store writer's thread only lives between
        a batch hand-over and the next flush, and a flush here ends it if rows were handed over before
        the run (a forked child holds a copy of whatever locks other threads held at that instant).

        Around each fork the parent's objects are frozen (``gc.freeze``): a child's garbage collector
        then never walks the ~100k objects it inherited (imports, price data) — a full collection cost
        0.1–0.2 s per worker and wrote to every inherited page (copy-on-write). The parent unfreezes
        right after, so its own collector is unchanged."""
        writer = self.engine.writer
        if self._fork and writer is not None:
            writer.flush()
        self._forking(self.reader.start)
        if self._fork:
            if self.engine.cfg.cost_enabled:
                preload_price_data()
            preload_wire_modules()
        for p in self.procs:
            self._forking(p.start)

    def _forking(self, start: Callable[[], None]) -> None:
        if not self._fork:
            start()
            return
        gc.freeze()
        try:
            start()
        finally:
            gc.unfreeze()

    def stop(self) -> None:
        """Ask the reader to stop; the pipeline drains and ``run`` returns."""
        self.stop_event.set()
        self.result.stopped = True

    def _sample_depth(self) -> None:
        try:
            d = self.out_q.qsize()
        except (NotImplementedError, OSError):
            return
        self.stats.main_high_water = max(self.stats.main_high_water, d)

    def _check_alive(self) -> None:
        """A process that died without ``Done`` (killed, crashed) cannot drain: stop the rest."""
        for role, idx, p in [("reader", 0, self.reader)] + [("worker", i, p) for i, p in enumerate(self.procs)]:
            if (role, idx) in self.done or p.exitcode is None:
                continue
            # Exit code 0 is never a failure: a child exits 0 only after its ``Done`` went into the queue
            # (the queue's feeder thread flushes before the process ends) or when this process is gone.
            # Its last messages may sit behind many others while this process lags, for any length of
            # time under load, so waiting a fixed grace and then killing everything lost good data.
            if p.exitcode == 0:
                continue
            msg = f"{role} {idx} exited unexpectedly (exit code {p.exitcode})"
            log.error(msg)
            self.result.errors.append(msg)
            self.done.add((role, idx))
            if role == "worker":  # its flows are lost; the reader would block on its queue forever
                self.kill()
                self.done.update([("reader", 0)] + [("worker", i) for i in range(self.n)])
            else:  # no reader: tell the workers there is no more input
                for q in self.worker_qs:
                    try:
                        q.put_nowait(None)
                    except queue.Full:
                        pass

    def _join(self) -> None:
        for p in [self.reader, *self.procs]:
            p.join(_JOIN_S)
            if p.exitcode is None:
                p.kill()
                p.join(1.0)
        for q in [*self.worker_qs, self.out_q]:
            q.close()
            q.cancel_join_thread()

    def kill(self) -> None:
        """Leave at once (second signal, or an error in the main process): kill every child, and let the
        store writer's thread finish only the statement it is in (the caller closes the store next)."""
        self.stop_event.set()
        for p in [self.reader, *self.procs]:
            if p.exitcode is None and p.pid is not None:
                p.kill()
        for p in [self.reader, *self.procs]:
            if p.pid is not None:
                p.join(1.0)
        for q in [*self.worker_qs, self.out_q]:
            q.cancel_join_thread()
        if self.engine.writer is not None:
            self.engine.writer.abandon()

    # --- statistics -----------------------------------------------------------------------------------

    def _depths(self) -> dict[str, int]:
        depths: dict[str, int] = {}
        for i, q in enumerate(self.worker_qs):
            try:
                depths[f"worker-{i}"] = q.qsize()
            except (NotImplementedError, OSError):
                depths[f"worker-{i}"] = 0
        try:
            depths["assembler"] = self.out_q.qsize()
        except (NotImplementedError, OSError):
            depths["assembler"] = 0
        return depths

    def totals(self) -> Any:
        return self.engine.counters.copy() if self.folded else self.stats.totals(self.engine.counters)

    def snapshot(self, tracker: Any = None) -> dict[str, Any]:
        depths = self._depths() if not self.folded else {}
        totals = self.totals()
        lossy = not self.spec.lossless
        if lossy:
            now = time.time()
            for sid, wm in list(self.merger.merged.items()):  # copies: the API reads from another thread
                if sid not in self.merger.drained:
                    totals[f"watermark_lag_s.{sid}"] = round(max(0.0, now - wm / 1e6), 3)
        alive = {i: p.exitcode is None and p.pid is not None for i, p in enumerate(self.procs)}
        return snapshot(totals, self.stats.queue_rows(depths), self.stats.worker_rows(alive, depths),
                        tracker or self.engine.health, lossy)

    def watermarks(self) -> dict[str, int | None]:
        return {sid: self.merger.watermark(sid) for sid in list(self.merger.marks)}

    def drained_sources(self) -> set[str]:
        return set(self.merger.drained)


__all__ = ["Abort", "ParallelPipeline"]
