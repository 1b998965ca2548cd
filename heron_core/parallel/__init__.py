"""The parallel engine: reader process, decode worker processes, bounded queues, watermark merge and
pipeline statistics (capture-and-http.md §2.6, §3, §11; docs/architecture.md §7).

``ParallelPipeline`` (``--workers N``) and ``InlinePipeline`` (``--workers 0`` for polled sources) have
the same interface: ``run(shutdown, on_started, on_tick, tick_s, flush_s) -> RunResult``, ``stop()``,
``snapshot()`` (the ``GET /api/pipeline`` object), ``watermarks()``, ``drained_sources()``.
"""

from .control import Abort, RunResult, Shutdown, default_start_method
from .inline import InlinePipeline
from .pipeline import ParallelPipeline

__all__ = ["Abort", "InlinePipeline", "ParallelPipeline", "RunResult", "Shutdown", "default_start_method"]
