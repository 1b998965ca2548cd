"""Progressive loading: one engine thread per capture file, writing into the shared store.

The UI must show the first rows while a 250 MB file is still being read, so each file runs in its own
thread with its own ``Engine`` (own writer cursor; the UI reads through other cursors). The loop is
``Engine.ingest_file``'s, plus what a UI needs and a batch ingest doesn't: the reader's counters are
visible while the file is read (for the progress bar: bytes / file size, packets, calls), the writer is
flushed every ``flush_s`` so rows appear continuously rather than per 1000-row batch, and a stop flag
ends the read when the user quits. Threads are daemons: a quit never waits for a big file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from heron_core.capture.pcapfile import CaptureFileError
from heron_core.capture.source import open_file_source
from heron_core.config import Config
from heron_core.engine import Engine
from heron_core.records import Segment
from heron_tui.overlay import EMPTY, LiveRows, OverlayConn

log = logging.getLogger("heron.tui")


@dataclass
class FileProgress:
    """Live state of one file (read by the UI thread; written by its loader thread)."""

    path: str
    source_id: str
    size: int
    status: str = "queued"  # queued | loading | ok | truncated | failed | stopped
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    reader: Counter = field(default_factory=Counter)  # the file's reader counters, live
    engine: Engine | None = None
    merged: bool = False  # reader counters were added to the engine's at the end
    calls_seen: int | None = None  # set by a pipeline run (one engine for every file); None: unknown

    @property
    def calls_known(self) -> bool:
        return self.engine is not None or self.calls_seen is not None

    @property
    def bytes_read(self) -> int:
        return self.reader.get("bytes_read", 0)

    @property
    def packets(self) -> int:
        return self.reader.get("packets_read", 0)

    @property
    def calls(self) -> int:
        if self.engine is not None:
            return self.engine.counters.get("calls_received", 0)
        return self.calls_seen or 0

    @property
    def fraction(self) -> float:
        if self.status in ("ok", "truncated"):
            return 1.0
        return min(1.0, self.bytes_read / self.size) if self.size else 0.0

    @property
    def done(self) -> bool:
        return self.status in ("ok", "truncated", "failed", "stopped")

    def counters(self) -> Counter:
        """Engine + reader counters without counting the reader twice after the final merge."""
        total: Counter = Counter()
        for _ in range(3):  # a dict copy can race a resize in the loader thread; retry
            try:
                if self.engine is not None:
                    total.update(dict(self.engine.counters))
                if not self.merged:
                    total.update(dict(self.reader))
                return total
            except RuntimeError:
                total.clear()
        return total


class Loader:
    """Loads capture files into ``store`` in background threads (one per file).

    The app also drives a ``heron_tui.live.PipelineRun`` through this interface; a file load has no
    in-progress rows to show (``live_rows``) and ends by itself (``live`` is False)."""

    live = False
    paced = False
    state = None

    def __init__(self, store, cfg: Config, paths: list[str], source_ids: list[str], flush_s: float = 0.5) -> None:
        self.store = store
        self.cfg = cfg
        self.flush_s = flush_s
        self.files = [FileProgress(p, sid, _size(p)) for p, sid in zip(paths, source_ids)]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for fp in self.files:
            t = threading.Thread(target=self._run, args=(fp,), name=f"heron-load-{fp.source_id}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self.done

    @property
    def done(self) -> bool:
        return all(f.done for f in self.files)

    @property
    def failed(self) -> list[FileProgress]:
        return [f for f in self.files if f.status == "failed"]

    def fraction(self) -> float:
        """Overall progress by bytes."""
        total = sum(f.size for f in self.files) or 1
        return sum(f.fraction * f.size for f in self.files) / total

    def counters(self) -> Counter:
        total: Counter = Counter()
        for f in self.files:
            total.update(f.counters())
        return total

    def live_rows(self) -> LiveRows:
        return EMPTY

    def describe(self) -> str:
        return ", ".join(f.path for f in self.files)

    def _run(self, fp: FileProgress) -> None:
        fp.started = time.time()
        fp.status = "loading"
        try:
            engine = fp.engine = Engine(self.store, self.cfg, salt=self.store.salt)
            self._ingest(fp, engine)
        except Exception as exc:  # never let a loader thread die silently: the UI shows the status
            log.exception("loading %s failed", fp.path)
            fp.status, fp.error = "failed", f"internal error: {exc}"
        fp.finished = time.time()

    def _ingest(self, fp: FileProgress, engine: Engine) -> None:
        try:
            items = open_file_source(fp.path, fp.source_id, fp.reader, self.cfg)
        except CaptureFileError as exc:
            fp.status, fp.error = "failed", str(exc)
            return
        except OSError as exc:
            fp.status, fp.error = "failed", exc.strerror or str(exc)
            return
        worker = engine.worker
        segment, handle = worker.segment, worker.handle
        writer = engine.writer
        errors = 0
        next_flush = time.monotonic() + self.flush_s
        for n, item in enumerate(items, 1):
            try:
                if type(item) is Segment:
                    segment(item)
                else:
                    handle(item)
            except Exception:  # a stage bug must not lose the rest of the file (as Engine.ingest_file)
                errors += 1
                if errors <= 3:
                    log.exception("internal error while processing %s", os.path.basename(fp.path))
            if n & 255 == 0:
                if self._stop.is_set():
                    fp.status = "stopped"
                    break
                if time.monotonic() >= next_flush and writer is not None:
                    writer.flush()
                    next_flush = time.monotonic() + self.flush_s
        fp.reader["internal_errors"] += errors
        engine.counters.update(fp.reader)
        fp.merged = True
        if writer is not None:
            writer.flush()
        if fp.status != "stopped":
            fp.status = "truncated" if fp.reader["file_truncated"] else "ok"


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class StoreReader:
    """Read access for the UI's workers: a fresh cursor per use, optionally seeing in-progress rows.

    A DuckDB cursor must not be used by two threads at once, and workers run in many threads; a
    cursor costs ~15 µs, so each read takes its own. Creating cursors is serialized by a lock.

    ``live`` (set by the app to its feed's ``live_rows``) returns the current in-progress records; a read
    that names tables (``read(("turns",))``) then sees them merged into those tables (``overlay``).
    """

    def __init__(self, conn, live: Callable[[], LiveRows] | None = None) -> None:
        self.conn = conn
        self.live = live
        self._lock = threading.Lock()

    def cursor(self, tables: tuple[str, ...] = ()):
        with self._lock:
            cur = self.conn.cursor()
        rows = self.live() if tables and self.live is not None else EMPTY
        return OverlayConn(cur, rows, tables) if rows.has(tables) else cur

    @contextmanager
    def read(self, tables: tuple[str, ...] = ()) -> Iterator[Any]:
        cur = self.cursor(tables)
        try:
            yield cur
        finally:
            cur.close()
