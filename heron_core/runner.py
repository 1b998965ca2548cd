"""``heron run``: one source through the engine into the store, until drained or stopped.

The driver owns what a long run needs beyond the pipeline: signal handling (first SIGINT/SIGTERM
drains, a second one leaves at once), periodic writer flushes so rows become visible, an optional
status file (one JSON object, rewritten atomically every second — DuckDB admits a single writing
process, so a test or a supervisor reads progress from it rather than from the database), a health
line in the log at ``-v``, the ``runs`` row at the end, and the ``on_started(engine)`` hook where the
REST API server attaches (it then reads ``engine.pipeline_snapshot()`` and the store).
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from heron_core.capture.sources import SourceSpec, cpu_count
from heron_core.parallel import Abort, Shutdown
from heron_core.parallel.stats import HealthTracker

log = logging.getLogger("heron")

STATUS_PERIOD_S = 1.0
HEALTH_LOG_PERIOD_S = 5.0
LIVE_FLUSH_S = 0.2
"""Live and paced runs flush the writer this often (capture-and-http.md §3: rows visible within 200 ms)."""
FILE_FLUSH_S = 2.0


def auto_workers() -> int:
    """The default ``--workers``: the fastest setting measured for the core count (docs/performance.md).

    The reader and the main process (assembler + DuckDB writer) each need a good part of a core, so
    one decode worker per core beyond the first, at least 1 and at most 4 (beyond that the main
    process is the bottleneck on every machine measured)."""
    return max(1, min(4, cpu_count() - 1))


class StatusFile:
    """Writes ``{state, pid, source, sources, pipeline, updated_at}`` to a file, atomically."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.tracker = HealthTracker()

    def write(self, engine: Any, spec: SourceSpec, state: str, started_at: float) -> None:
        pipeline = engine.pipeline
        marks = pipeline.watermarks() if pipeline is not None else {}
        drained = pipeline.drained_sources() if pipeline is not None else set()
        sources = [{"source_id": sid, "state": "drained" if sid in drained else "running",
                    "watermark": None if wm is None else wm / 1e6} for sid, wm in sorted(marks.items())]
        doc = {
            "state": state,
            "pid": os.getpid(),
            "source": spec.describe(),
            "started_at": started_at,
            "updated_at": time.time(),
            "sources": sources,
            "pipeline": engine.pipeline_snapshot(self.tracker),
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS))
        os.replace(tmp, self.path)


def _health_line(snap: dict[str, Any]) -> str:
    c: dict[str, int] = {}
    for group in snap["counters"].values():
        c.update(group)
    queues = " ".join(f"{q['name']} {q['depth']}/{q['capacity']}" for q in snap["queues"])
    line = (f"pipeline {snap['health']}: {c.get('packets_read', 0)} packets, {c.get('exchanges', 0)} exchanges, "
            f"{c.get('calls_received', 0)} calls, {c.get('packets_dropped_overload', 0)} dropped"
            + (f"; queues {queues}" if queues else ""))
    if snap["reasons"]:
        line += "; " + ", ".join(snap["reasons"])
    return line


def record_run(engine: Any, spec: SourceSpec, argv: list[str], result: Any, started_at: float) -> None:
    """The ``runs`` row of this invocation (argv, sources, final counters)."""
    from heron_core import __version__

    if engine.writer is None:
        return
    if spec.kind == "files":
        sources = [{"path": o.path, "source_id": o.source_id, "status": o.status, "packets": o.packets}
                   for o in result.outcomes]
    else:
        sources = [{"source": spec.describe(), "kind": spec.kind}]
    engine.writer.add_rows("runs", [{
        "run_id": str(uuid.uuid4()),
        "started_at": started_at,
        "ended_at": time.time(),
        "version": __version__,
        "argv": list(argv),  # JSON columns take Python objects (store/rows.py serializes them)
        "sources": sources,
        "counters": dict(result.counters),
        "price_version": None,
    }])
    engine.writer.flush()


def run(
    engine: Any,
    spec: SourceSpec,
    *,
    exit_after_drain: bool = False,
    status_file: str | os.PathLike[str] | None = None,
    on_started: Callable[[Any], None] | None = None,
    on_tick: Callable[[Any], None] | None = None,
    argv: list[str] | None = None,
) -> int:
    """Run ``spec`` until it drains (``exit_after_drain``) or a signal; returns the exit code.

    Raises ``CaptureError`` when the source cannot be opened. A second signal kills the children and
    returns 130 with the store as it is (still readable)."""
    shutdown = Shutdown().install()
    started_at = time.time()
    status = StatusFile(status_file) if status_file else None
    health = HealthTracker()
    next_status = 0.0
    next_health = time.monotonic() + HEALTH_LOG_PERIOD_S
    state = "starting"

    def tick(eng: Any) -> None:
        nonlocal next_status, next_health
        now = time.monotonic()
        if status is not None and now >= next_status:
            next_status = now + STATUS_PERIOD_S
            status.write(eng, spec, state, started_at)
        if now >= next_health and log.isEnabledFor(logging.INFO):
            next_health = now + HEALTH_LOG_PERIOD_S
            log.info(_health_line(eng.pipeline_snapshot(health)))
        if on_tick is not None:
            on_tick(eng)

    def started(eng: Any) -> None:
        nonlocal state
        state = "running"
        log.info("capturing from %s with %d decode worker(s)", spec.describe(), eng.workers)
        if status is not None:
            status.write(eng, spec, state, started_at)
        if on_started is not None:
            on_started(eng)

    paced_or_live = not spec.lossless or spec.replay_speed > 0
    pipeline = engine.open_pipeline(spec)
    try:
        result = pipeline.run(shutdown=shutdown, on_started=started, on_tick=tick,
                              flush_s=LIVE_FLUSH_S if paced_or_live else FILE_FLUSH_S)
        shutdown.check()  # a second signal during the final flush may have been swallowed by DuckDB
        state = "stopped" if shutdown.requested else "drained"
        for o in result.outcomes:
            if o.status == "failed":
                print(f"heron: error: {o.path}: {o.error}", file=sys.stderr)
            elif o.status == "truncated":
                print(f"heron: warning: {o.path}: capture file is truncated; read up to the cut", file=sys.stderr)
        if status is not None:
            status.write(engine, spec, state, started_at)
        log.info(_health_line(engine.pipeline_snapshot(health)))
        if not exit_after_drain and not shutdown.requested:
            log.warning("all sources drained; Ctrl+C to exit")
            while not shutdown.requested:
                time.sleep(0.2)
                tick(engine)
        shutdown.check()
        record_run(engine, spec, argv if argv is not None else sys.argv, result, started_at)
        if status is not None:
            status.write(engine, spec, "exited", started_at)
        failed = any(o.status == "failed" for o in result.outcomes)
        return 1 if failed or result.errors else 0
    except Abort:
        log.warning("second signal: exiting at once")
        kill = getattr(pipeline, "kill", None)
        if kill is not None:
            kill()
        return 130
    finally:
        shutdown.restore()
