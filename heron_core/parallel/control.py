"""Run control shared by both engine modes: the result of a run, signal handling, the start method.

Shutdown (capture-and-http.md §3): the first SIGINT/SIGTERM asks the pipeline to stop — the reader
stops reading, every source ends with ``EndOfSource``, the workers drain their flows, the assembler
closes turns and the writer flushes, then the process exits 0. A second signal raises ``Abort`` in the
main thread: the children are killed and the store is closed as it is (DuckDB keeps it readable).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("heron")


class Abort(BaseException):
    """A second stop signal: leave now (BaseException, so ordinary ``except Exception`` can't eat it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Shutdown:
    """Turns SIGINT/SIGTERM into a drain request, and a second one into ``Abort``."""

    def __init__(self) -> None:
        self.requested = False
        self.aborted = 0  # the signal number of the second signal, once it came
        self.signals = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> Shutdown:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous.clear()

    def request(self) -> None:
        """Ask for a drain without a signal (tests, the API)."""
        self.requested = True

    def check(self) -> None:
        """Raise ``Abort`` if a second signal came. The handler raises it too, but a C extension running
        at that moment may turn it into its own error (DuckDB reports "Query interrupted", which the
        store writer then retries), so the run loops also call this."""
        if self.aborted:
            raise Abort(self.aborted)

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signals += 1
        if self.signals == 1:
            self.requested = True
            log.warning("stopping: draining the pipeline (signal again to exit at once)")
            return
        self.aborted = signum
        raise Abort(signum)


@dataclass
class RunResult:
    """What a pipeline run produced (the CLI's summary and the ``runs`` row are built from it)."""

    outcomes: list[Any] = field(default_factory=list)  # capture.sources.FileOutcome per file
    counters: Counter = field(default_factory=Counter)
    duration_s: float = 0.0
    drained: bool = False  # every source ended and the writer flushed
    stopped: bool = False  # ended by a stop request
    errors: list[str] = field(default_factory=list)  # processes that died or failed


def default_start_method() -> str:
    """'fork' on Linux: children start in milliseconds and inherit the imported engine and price data;
    they never call into the parent's DuckDB, leave through ``os._exit`` (no destructor of an inherited
    object runs), and are forked with the parent's objects frozen (``gc.freeze``), so their garbage
    collector never finalizes an inherited DuckDB object either; no thread of ours runs across the fork
    (pipeline.py). 'forkserver' was measured as the safer alternative and not chosen: its server must
    import the engine and the price data before the first child starts, 0.6–1 s later than with 'fork'
    (docs/performance.md). Elsewhere 'spawn' (macOS forks are unsafe with system frameworks loaded);
    every process entry point is module-level and takes only picklable arguments, so 'spawn' and
    'forkserver' work too (``ParallelPipeline(..., start_method=...)``)."""
    if sys.platform.startswith("linux"):
        return "fork"
    return "spawn"


def get_context(method: str | None = None) -> Any:
    return multiprocessing.get_context(method or default_start_method())
