"""A decode worker process: batches of records in, batches of worker messages out.

It runs ``heron_core.worker.DecodeWorker`` unchanged — the same object the single-process engine uses —
so a flow is decoded identically whichever process it lands in. Segments arrive as plain tuples (see
protocol.py); the reassembler only unpacks them, so they are fed as they are.

A stage bug on one record is counted (``internal_errors``) and logged (first three), like the
single-process engine; a heartbeat or ``EndOfSource`` whose processing failed is still forwarded, so
the assembler's watermark merge never waits for a worker forever.
"""

from __future__ import annotations

import logging
import os
import queue
import resource
import time
from collections import Counter
from typing import Any

from heron_core.config import Config
from heron_core.records import EndOfSource, Heartbeat, Watermark
from heron_core.redact import Redactor
from heron_core.worker import DecodeWorker

from .protocol import STATS_PERIOD_S, Done, Producer, Stats, pack, parent_gone
from .reader import child_signals

log = logging.getLogger("heron")

_GET_TIMEOUT_S = 0.5
INFLIGHT_LISTS = 64
"""Output lists sent to the main process but not yet consumed by it. ``pipeline.assembler_queue`` bounds
messages (8192), but a lagging main process would leave up to that many pickled-to-be lists of
exchanges and compressed bodies in this process's queue buffer; this bounds the memory instead."""


def worker_main(
    index: int, cfg: Config, salt: bytes, in_q: Any, out_q: Any, consumed: Any = None, delivered: Any = None,
) -> None:
    """Entry point of worker ``index`` (module-level, so it also works with the 'spawn' start method).
    ``consumed[index]`` is raised by the payload bytes of each processed batch (the reader's budget);
    ``delivered[index]`` counts the output lists the main process consumed (this worker's budget)."""
    child_signals()
    ppid = os.getppid()
    counters: Counter = Counter()
    redactor = Redactor(salt, enabled=cfg.redaction_enabled, extra_patterns=cfg.redaction_extra_patterns)
    out: list[Any] = []
    worker = DecodeWorker(cfg, redactor, out.append, counters)
    producer = Producer(out_q, "assembler", cfg.pipeline_assembler_queue)
    segment = worker.segment
    handle = worker.handle
    t_start = time.monotonic()
    busy = 0.0
    nseg = nbatches = nmsgs = errors = 0
    sent = 0  # output lists put

    def wait_room() -> None:
        if delivered is None or sent - delivered[index] < INFLIGHT_LISTS:
            return
        t0 = time.monotonic()
        nap = 0.001
        while sent - delivered[index] >= INFLIGHT_LISTS:
            time.sleep(nap)
            nap = min(nap * 2, 0.008)
            if time.monotonic() - t0 > 0.25 and parent_gone(ppid):
                break
        producer.blocked_s += time.monotonic() - t0

    def stats(final: bool = False) -> None:
        counters["internal_errors"] = errors
        ru = resource.getrusage(resource.RUSAGE_SELF)
        load = {"segments": nseg, "batches": nbatches, "messages": nmsgs, "busy_s": round(busy, 3),
                "wall_s": round(time.monotonic() - t_start, 3), "cpu_s": round(ru.ru_utime + ru.ru_stime, 3)}
        producer.put_blocking(Stats("worker", index, os.getpid(), dict(counters), {"assembler": producer.gauges()},
                                    load, final))

    next_stats = time.monotonic() + STATS_PERIOD_S
    while True:
        try:
            batch = in_q.get(timeout=_GET_TIMEOUT_S)
        except queue.Empty:
            if parent_gone(ppid):
                return
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + STATS_PERIOD_S
                stats()
            continue
        if batch is None:
            break
        t0 = time.perf_counter()
        nbatches += 1
        nbytes = 0
        for item in batch:
            if type(item) is tuple:
                nseg += 1
                nbytes += len(item[7])
                try:
                    segment(item)
                except Exception:
                    errors += 1
                    if errors <= 3:
                        log.exception("internal error in worker %d", index)
            else:
                try:
                    handle(item)
                except Exception:
                    errors += 1
                    if errors <= 3:
                        log.exception("internal error in worker %d", index)
                    marker = Watermark(item.source_id, item.ts_us) if type(item) is Heartbeat else item
                    if type(item) in (Heartbeat, EndOfSource) and (not out or out[-1] != marker):
                        out.append(marker)
        if consumed is not None and nbytes:
            consumed[index] += nbytes  # only this process writes its slot
        if out:
            nmsgs += len(out)
            msgs = out
            out = []
            worker.emit = out.append  # the sent list is pickled later by the queue's feeder thread
            wait_room()
            producer.put_blocking((index, pack(msgs)))
            sent += 1
        busy += time.perf_counter() - t0
        now = time.monotonic()
        if now >= next_stats:
            next_stats = now + STATS_PERIOD_S
            stats()
    stats(final=True)
    producer.put_blocking(Done("worker", index))
