"""The single-process engine (``--workers 0``): sources → decode worker → assembler → store.

It owns nothing the stages don't: it opens sources, drives the hot loop, keeps per-file results for the
ingest summary, and turns a stage bug on one segment into a counted ``internal_errors`` instead of losing
the rest of the file.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .assembler import Assembler
from .capture.pcapfile import CaptureFileError
from .capture.source import open_file_source
from .config import Config
from .records import Segment
from .redact import Redactor
from .worker import DecodeWorker

log = logging.getLogger("heron")


@dataclass
class FileResult:
    path: str
    source_id: str
    status: str  # 'ok' | 'truncated' | 'failed'
    packets: int = 0
    error: str | None = None


@dataclass
class IngestResult:
    files: list[FileResult] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)
    duration_s: float = 0.0

    @property
    def failed(self) -> bool:
        return any(f.status == "failed" for f in self.files)


class Engine:
    """Runs capture files through the pipeline into a store (or nowhere, with ``store=None``)."""

    def __init__(self, store: Any, cfg: Config, salt: bytes | None = None, workers: int = 0) -> None:
        from .parallel.stats import HealthTracker
        from .store.writer import StoreWriter

        self.cfg = cfg
        self.store = store
        self.counters: Counter = Counter()
        self.workers = max(0, workers)  # decode processes; 0 = everything in this process
        self.pipeline: Any = None  # the running ParallelPipeline / InlinePipeline (heron run, --workers N)
        self.health = HealthTracker()
        salt = salt if salt is not None else (store.salt if store is not None else b"heron")
        self.salt = salt
        self.redactor = Redactor(salt, enabled=cfg.redaction_enabled, extra_patterns=cfg.redaction_extra_patterns)
        # background: DuckDB's insert work runs in a writer thread, overlapping the assembler (store/writer.py)
        self.writer = StoreWriter(store, self.counters, background=True) if store is not None else None
        self.assembler = Assembler(self.writer, self.counters, cfg)
        self.worker = DecodeWorker(cfg, self.redactor, self.assembler, self.counters)

    def ingest(self, paths: list[str], source_ids: list[str]) -> IngestResult:
        if self.workers > 0:
            return self._ingest_parallel(paths, source_ids)
        result = IngestResult(counters=self.counters)
        t0 = time.perf_counter()
        try:
            for path, source_id in zip(paths, source_ids):
                result.files.append(self.ingest_file(path, source_id))
        except BaseException:  # Ctrl+C: no writer statement may still run when the caller closes the store
            if self.writer is not None:
                self.writer.abandon()
            raise
        if self.writer is not None:
            self.writer.flush()
        result.duration_s = time.perf_counter() - t0
        return result

    def ingest_file(self, path: str, source_id: str) -> FileResult:
        fc: Counter = Counter()
        try:
            items = open_file_source(path, source_id, fc, self.cfg)
        except CaptureFileError as exc:
            return FileResult(path, source_id, "failed", error=str(exc))
        except OSError as exc:
            return FileResult(path, source_id, "failed", error=exc.strerror or str(exc))
        segment = self.worker.segment
        handle = self.worker.handle
        errors = 0
        for item in items:
            try:
                if type(item) is Segment:
                    segment(item)
                else:
                    handle(item)
            except Exception:  # a stage bug must not lose the rest of the file
                errors += 1
                if errors <= 3:
                    log.exception("internal error while processing %s", Path(path).name)
        fc["internal_errors"] += errors
        self.counters.update(fc)
        status = "truncated" if fc["file_truncated"] else "ok"
        return FileResult(path, source_id, status, packets=fc["packets_read"])

    # --- the parallel engine and polled sources (heron_core/parallel) ----------------------------------

    def _ingest_parallel(self, paths: list[str], source_ids: list[str]) -> IngestResult:
        """``ingest`` through a reader process and ``self.workers`` decode processes (same records)."""
        from .capture.sources import SourceSpec

        pipeline = self.open_pipeline(SourceSpec("files", paths=list(paths), source_ids=list(source_ids)))
        run = pipeline.run()
        files = [FileResult(o.path, o.source_id, o.status, packets=o.packets, error=o.error) for o in run.outcomes]
        return IngestResult(files=files, counters=self.counters, duration_s=run.duration_s)

    def open_pipeline(self, spec: Any) -> Any:
        """The pipeline that runs ``spec`` (a ``capture.sources.SourceSpec``) with this engine's workers
        setting: ``ParallelPipeline`` for N ≥ 1, ``InlinePipeline`` for 0. Call its ``run(...)``."""
        from .parallel import InlinePipeline, ParallelPipeline

        self.pipeline = ParallelPipeline(self, spec, self.workers) if self.workers > 0 else InlinePipeline(self, spec)
        return self.pipeline

    def pipeline_snapshot(self, tracker: Any = None) -> dict[str, Any]:
        """Pipeline health, counters by stage, queue gauges and worker load: the ``GET /api/pipeline``
        object (interfaces.md §7.2, capture-and-http.md §11). Health is judged against the previous
        snapshot taken with the same ``tracker`` (``parallel.stats.HealthTracker``; default: the
        engine's own), so several consumers (API, status file, log) don't steal each other's deltas."""
        from .parallel.stats import snapshot

        if self.pipeline is not None:
            return self.pipeline.snapshot(tracker)
        return snapshot(self.counters.copy(), [], [], tracker or self.health, lossy=False)
