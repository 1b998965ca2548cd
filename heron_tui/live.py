"""The engine's pipeline inside the TUI: live capture (``-i``), ZMQ probes, eBPF, paced replay and
multi-process file loading, all as ``Engine.open_pipeline(SourceSpec)`` on one background thread.

Why a thread that owns the engine: the assembler (open turns, calls in flight) and the pipeline's
statistics are changed by that thread and are not safe to read from another. So the thread publishes
everything the UI needs, every ``publish_s``, from its own ``on_tick``: it flushes the store writer, then
snapshots the in-progress records (``overlay.build_live_rows``) and the pipeline health, and swaps one
immutable ``LiveState`` in (a reference assignment, atomic). The UI only ever reads the latest
``LiveState`` and the store through its own cursors — no lock, no racing reads.

``open()`` starts the thread and waits until the source is open (``on_started``) or failed, so the CLI
can print a capture error (no permission, no such interface, bad BPF filter, bind failure) as one line
before the UI starts. ``stop()`` asks the pipeline to drain — sources end, workers flush their flows,
the assembler closes every turn, the writer flushes — as ``heron run`` does on its first signal; with a
database file the ``runs`` row is written too.

``PipelineRun`` has the interface of ``loader.Loader`` (``start``, ``stop``, ``done``, ``files``,
``fraction``, ``counters`` …) plus ``live``/``state``, so the app drives either the same way.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from heron_core.capture.sources import CaptureError, SourceSpec
from heron_core.config import Config
from heron_core.engine import Engine
from heron_core.parallel import Shutdown
from heron_core.parallel.stats import HealthTracker
from heron_tui.loader import FileProgress
from heron_tui.overlay import EMPTY, LiveRows, build_live_rows

log = logging.getLogger("heron.tui")

LIVE_PUBLISH_S = 0.2
"""Live and paced runs: rows visible within 200 ms (capture-and-http.md §3), as ``heron run``."""
FILE_PUBLISH_S = 0.5
"""Files read at full speed: the file loader's flush period (each flush is a DuckDB statement per table)."""
HEALTH_S = 1.0
"""Pipeline health is judged on deltas since the previous sample: one sample a second, as ``heron run``."""
RATE_WINDOW_S = 5.0
"""packets/s over the last few seconds: reader statistics arrive every 2 s with ``--workers``."""
DROP_COUNTERS = ("packets_dropped_kernel", "packets_dropped_overload", "zmq_batches_dropped", "ebpf_events_lost")


@dataclass(frozen=True)
class LiveState:
    """What the UI reads of a running pipeline; replaced whole by the engine thread, never mutated."""

    seq: int = 0
    taken_at: float = 0.0  # wall clock of the snapshot
    rows: LiveRows = EMPTY
    totals: dict[str, int] = field(default_factory=dict)  # flat counters (pipeline totals)
    snapshot: dict[str, Any] | None = None  # engine.pipeline_snapshot(): health, counters by stage, queues…
    watermarks: dict[str, float | None] = field(default_factory=dict)  # event time per source (epoch s)
    drained: frozenset[str] = frozenset()
    in_flight_starts: tuple[float, ...] = ()
    pps: float | None = None  # packets read per second, recent

    @property
    def watermark(self) -> float | None:
        vals = [v for v in self.watermarks.values() if v is not None]
        return max(vals) if vals else None

    @property
    def drops(self) -> int:
        return sum(int(self.totals.get(k, 0)) for k in DROP_COUNTERS)

    def lag_s(self, now: float | None = None) -> float | None:
        """Wall clock minus event time of the slowest running source (live sources only)."""
        now = time.time() if now is None else now
        lags = [now - wm for sid, wm in self.watermarks.items() if wm is not None and sid not in self.drained]
        return max(0.0, max(lags)) if lags else None


class PipelineRun:
    """One ``SourceSpec`` through ``engine.open_pipeline`` on a daemon thread, published as ``LiveState``."""

    def __init__(self, store: Any, cfg: Config, spec: SourceSpec, workers: int = 0, *,
                 publish_s: float | None = None, argv: list[str] | None = None) -> None:
        self.store = store
        self.spec = spec
        self.engine = Engine(store, cfg, salt=store.salt, workers=workers)
        self.live = spec.kind != "files"  # runs until stopped
        self.paced = spec.kind == "files" and spec.replay_speed > 0
        self.publish_s = publish_s or (LIVE_PUBLISH_S if self.live or self.paced else FILE_PUBLISH_S)
        self.argv = list(argv if argv is not None else sys.argv)
        self.files = [FileProgress(p, sid, _size(p)) for p, sid in zip(spec.paths, spec.source_ids)]
        self.state = LiveState()
        self.status = "starting"  # starting | running | drained | stopped | failed
        self.error: str | None = None
        self.capture_error: CaptureError | None = None
        self.started_at = time.time()
        self.finished_at: float | None = None
        self._shutdown = Shutdown()  # never installed: only ``request()``, from stop()
        self._opened = threading.Event()
        self._thread: threading.Thread | None = None
        self._tracker = HealthTracker()
        self._seq = 0
        self._next_health = 0.0
        self._snapshot: dict[str, Any] | None = None
        self._rates: deque[tuple[float, int]] = deque()
        self._publish_errors = 0

    # --- control (any thread) -------------------------------------------------------------------------

    def describe(self) -> str:
        return self.spec.describe()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="heron-pipeline", daemon=True)
            self._thread.start()

    def open(self, timeout: float = 30.0) -> None:
        """Start and wait until the source is open; raises its ``CaptureError`` if it could not be."""
        self.start()
        self._opened.wait(timeout)
        if self.capture_error is not None:
            raise self.capture_error

    def stop(self, timeout: float = 0.0) -> bool:
        """Ask for a drain; wait up to ``timeout`` for it. True once the thread has finished."""
        self._shutdown.request()
        if self._thread is not None and timeout > 0:
            self._thread.join(timeout)
        return self.done

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done

    def kill(self) -> None:
        """Leave at once (the user insisted): kill the reader and worker processes."""
        kill = getattr(self.engine.pipeline, "kill", None)
        if kill is not None:
            kill()

    @property
    def done(self) -> bool:
        return self.status in ("drained", "stopped", "failed") and not (
            self._thread is not None and self._thread.is_alive())

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def failed(self) -> list[FileProgress]:
        return [f for f in self.files if f.status == "failed"]

    def fraction(self) -> float:
        total = sum(f.size for f in self.files)
        if not total:
            return 0.0
        return sum(f.fraction * f.size for f in self.files) / total

    def counters(self) -> Counter:
        return Counter(self.state.totals)

    def live_rows(self) -> LiveRows:
        return self.state.rows

    # --- the engine thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        result = None
        try:
            pipeline = self.engine.open_pipeline(self.spec)
            result = pipeline.run(shutdown=self._shutdown, on_started=self._started, on_tick=self._tick,
                                  tick_s=self.publish_s, flush_s=None)
            self.status = "stopped" if result.stopped else "drained"
            if result.errors:
                self.error = "; ".join(result.errors)
        except CaptureError as exc:
            self.capture_error = exc
            self.status, self.error = "failed", f"{exc.what}: {exc.why}"
        except Exception as exc:  # never die silently: the UI shows the status and the error
            log.exception("the pipeline failed")
            self.status, self.error = "failed", f"internal error: {exc}"
        self.finished_at = time.time()
        try:
            if result is not None:
                self._record(result)
            self._publish(final=True)
        except Exception:
            log.exception("final pipeline snapshot failed")
        finally:
            self._opened.set()

    def _started(self, engine: Any) -> None:
        self.status = "running"
        self._publish()
        self._opened.set()

    def _tick(self, engine: Any) -> None:
        try:
            self._publish()
        except Exception:  # the UI's view of the run must never stop the capture itself
            self._publish_errors += 1
            if self._publish_errors <= 3:
                log.exception("publishing the pipeline state failed")

    def _record(self, result: Any) -> None:
        """The ``runs`` row, as ``heron run`` writes it, when the store is a file."""
        if self.store.path is None:
            return
        from heron_core.runner import record_run

        record_run(self.engine, self.spec, self.argv, result, self.started_at)

    def _publish(self, final: bool = False) -> None:
        """Flush, then snapshot (the order matters: see ``overlay``) and swap the state in."""
        engine = self.engine
        if engine.writer is not None:
            engine.writer.flush()
        now = time.time()
        rows = EMPTY if final else build_live_rows(engine.assembler)
        pipeline = engine.pipeline
        if final or now >= self._next_health or self._snapshot is None:
            self._next_health = now + HEALTH_S
            self._snapshot = engine.pipeline_snapshot(self._tracker)
        snap = self._snapshot
        totals: dict[str, int] = {}
        for group in snap["counters"].values():
            totals.update(group)
        marks = {sid: (None if us is None else us / 1e6)
                 for sid, us in (pipeline.watermarks().items() if pipeline is not None else ())}
        drained = frozenset(pipeline.drained_sources()) if pipeline is not None else frozenset()
        starts = () if final else tuple(c.request_start_us / 1e6 for c in engine.assembler.in_flight()
                                        if c.request_start_us)
        self._files(pipeline, totals, final)
        self._seq += 1
        self.state = LiveState(self._seq, now, rows, totals, snap, marks, drained, starts,
                               self._rate(now, _packets(totals)))

    def _rate(self, now: float, packets: int) -> float | None:
        r = self._rates
        r.append((now, packets))
        while len(r) > 2 and now - r[1][0] >= RATE_WINDOW_S:
            r.popleft()
        (t0, p0), (t1, p1) = r[0], r[-1]
        return (p1 - p0) / (t1 - t0) if t1 - t0 >= 1.0 else None

    def _files(self, pipeline: Any, totals: dict[str, int], final: bool) -> None:
        """Per-file progress from the outcomes so far and the reader's byte count (files are read one after
        another, so the bytes beyond the finished files belong to the current one)."""
        if not self.files:
            return
        outcomes = {o.source_id: o for o in list(getattr(getattr(pipeline, "result", None), "outcomes", ()))}
        left = int(totals.get("bytes_read", 0))
        packets = _packets(totals) - sum(o.packets for o in outcomes.values())
        current = True
        for f in self.files:
            o = outcomes.get(f.source_id)
            if o is not None:
                f.status, f.error = o.status, o.error
                f.reader["packets_read"] = o.packets
                if o.status != "failed":
                    left -= f.size
                    f.reader["bytes_read"] = f.size
            elif final:
                f.status = "stopped" if f.status in ("loading", "queued") else f.status
            elif current and self.status == "running":
                f.status = "loading"
                f.started = f.started or time.time()
                f.reader["bytes_read"] = max(0, min(f.size, left))
                f.reader["packets_read"] = max(0, packets)
                current = False
            if f.status in ("ok", "truncated", "failed", "stopped") and f.finished is None:
                f.finished = time.time()
                f.started = f.started or self.started_at
        calls = int(totals.get("calls_received", 0))
        for f in self.files:
            f.calls_seen = calls if len(self.files) == 1 else None


def _packets(totals: dict[str, int]) -> int:
    """Packets read so far. The file reader adds to ``packets_read`` per buffer it maps (megabytes), so
    while a replay is paced the decoder's count is the one that moves."""
    return max(int(totals.get("packets_read", 0)), int(totals.get("packets_decoded", 0)))


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
