"""The reader process: source → L2–L4 decode → per-worker batches (capture-and-http.md §3).

Segments go to worker ``hash(flow key) % N`` — a hash that is the same for both directions (so a flow
always lands on one worker) and the same from run to run (crc32 of the addresses, plus the ports), so
per-worker load is reproducible. Heartbeats and ``EndOfSource`` go to **every** worker, appended after
the segments already batched for it, which keeps each worker's input in exactly the order the
single-process engine would see it, restricted to its flows.

A batch is sent when it holds ``pipeline.batch_segments`` records, when a heartbeat or ``EndOfSource``
is appended, or when its first record is 50 ms old. Files use blocking puts (lossless). Live, ZMQ and
eBPF sources wait at most ``pipeline.live_wait_s`` for a busy worker (a full queue or its in-flight byte
budget), then drop the batch's segments (``packets_dropped_overload``) but keep its markers for the next
send, so watermarks and drains are never lost. While the reader waits it reads nothing, so a burst piles
up in the kernel's capture ring (``capture.buffer_bytes``) instead of being dropped here: measured with
tcpreplay, a 128 MiB ring had no kernel drops while the reader dropped thousands of packets at once.
Past the wait, loss is inevitable either way and the reader drops, keeping the ring for newer packets.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import time
from collections import Counter
from typing import Any
from zlib import crc32

from heron_core.capture.sources import CaptureError, FileSource, SourceSpec, open_record_source
from heron_core.config import Config
from heron_core.records import Segment

from .protocol import STATS_PERIOD_S, Done, Failed, Outcome, Producer, Started, Stats, parent_gone

log = logging.getLogger("heron")

FLUSH_AGE_S = 0.05
"""A partly filled batch waits at most this long (wall clock) before it is sent."""
INFLIGHT_BYTES = 16 * 1024 * 1024
"""Payload bytes per worker sent but not yet processed. ``pipeline.worker_queue`` bounds messages, but
1024 batches of 256 full-size segments are ~300 MB held by the reader's queue buffer; this bounds
memory whatever the packet size (files wait, live sources drop)."""
_MAX_POLL_S = 0.1


def child_signals() -> None:
    """Children leave signals to the main process: Ctrl+C reaches the whole process group, but only the
    main process decides how to drain. SIGTERM keeps its default so the main process can kill us."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Router:
    """Batches records per worker and sends them (see the module doc)."""

    def __init__(
        self, producers: list[Producer], cfg: Config, lossless: bool, counters: Counter, consumed: Any = None,
    ) -> None:
        self.producers = producers
        self.consumed = consumed  # per-worker payload bytes processed (shared array, written by worker i)
        self.sent_bytes = [0] * len(producers)
        self._ppid = os.getppid()
        self.n = len(producers)
        self.size = max(1, cfg.pipeline_batch_segments)
        self.lossless = lossless
        self.wait_s = max(0.0, float(cfg.pipeline_live_wait_s))
        self.counters = counters
        self.batches: list[list[Any]] = [[] for _ in producers]
        self.started = [0.0] * self.n  # wall (monotonic) time of each batch's first record
        self.routed = [0] * self.n  # segments sent per worker (load figures)

    def route(self, recs: list[Any], now: float) -> None:
        """The hot loop: one call per polled chunk of records."""
        batches = self.batches
        started = self.started
        n = self.n
        size = self.size
        for r in recs:
            if type(r) is Segment:
                src = r[2]
                dst = r[3]
                w = ((crc32(src[0]) ^ crc32(dst[0])) + src[1] + dst[1]) % n if n > 1 else 0
                b = batches[w]
                if not b:
                    started[w] = now
                b.append(tuple(r))
                if len(b) >= size:
                    self.send(w)
            else:
                for w in range(n):
                    b = batches[w]
                    if not b:
                        started[w] = now
                    b.append(r)
                    self.send(w)

    def timeout(self, now: float) -> float:
        """How long the source may block before the oldest partly filled batch is due."""
        due = _MAX_POLL_S
        for w, b in enumerate(self.batches):
            if b:
                due = min(due, self.started[w] + FLUSH_AGE_S - now)
        return max(0.0, due)

    def flush_due(self, now: float) -> None:
        for w, b in enumerate(self.batches):
            if b and now - self.started[w] >= FLUSH_AGE_S:
                self.send(w)

    def flush_all(self) -> None:
        for w, b in enumerate(self.batches):
            if b:
                self.send(w, lossless=True)

    def send(self, w: int, lossless: bool = False) -> None:
        batch = self.batches[w]
        self.batches[w] = []
        nseg = 0
        nbytes = 0
        for r in batch:
            if type(r) is tuple:
                nseg += 1
                nbytes += len(r[7])
        p = self.producers[w]
        if self.lossless or lossless:
            if self.consumed is not None and nbytes:
                self._wait_room(w, p)
            p.put_blocking(batch)
            self.routed[w] += nseg
            self.sent_bytes[w] += nbytes
        elif self._put_lossy(w, p, batch, nbytes):
            self.routed[w] += nseg
            self.sent_bytes[w] += nbytes
        else:
            self.counters["packets_dropped_overload"] += nseg
            markers = [r for r in batch if type(r) is not tuple]
            if markers:  # heartbeats / EndOfSource are retried with the next send
                self.batches[w] = markers
                self.started[w] = time.monotonic()

    def _put_lossy(self, w: int, p: Producer, batch: list, nbytes: int) -> bool:
        """Lossy put: at once if worker ``w`` has room, else after waiting up to ``wait_s`` for it (the
        time counts in ``blocked_s``); False (counted in the producer's ``dropped``) if it never came."""
        if (not nbytes or self._in_budget(w)) and p.put_nowait_quiet(batch):
            return True
        if self.wait_s <= 0:
            p.dropped += 1
            return False
        t0 = time.monotonic()
        deadline = t0 + self.wait_s
        nap = 0.001
        try:
            while nbytes and not self._in_budget(w):
                if time.monotonic() >= deadline:
                    return p.refuse()
                time.sleep(nap)
                nap = min(nap * 2, 0.008)
        finally:
            p.blocked_s += time.monotonic() - t0
        # a full queue: put_blocking waits (its own blocked_s) in 0.25 s steps until the deadline
        return p.put_blocking(batch, abort=lambda: time.monotonic() >= deadline) or p.refuse()

    def _in_budget(self, w: int) -> bool:
        """Is worker ``w`` within its in-flight byte budget?"""
        return self.consumed is None or self.sent_bytes[w] - self.consumed[w] <= INFLIGHT_BYTES

    def _wait_room(self, w: int, p: Producer) -> None:
        """Lossless: wait until worker ``w`` has processed enough of what it was sent (time → blocked_s)."""
        consumed = self.consumed
        if self.sent_bytes[w] - consumed[w] <= INFLIGHT_BYTES:
            return
        t0 = time.monotonic()
        nap = 0.001
        while self.sent_bytes[w] - consumed[w] > INFLIGHT_BYTES:
            time.sleep(nap)
            nap = min(nap * 2, 0.008)  # the budget is ~50 ms of worker time: waking often only costs CPU
            if time.monotonic() - t0 > 0.25 and parent_gone(self._ppid):
                break
        p.blocked_s += time.monotonic() - t0

    def saturated(self) -> bool:
        """Some worker queue is full (a ZMQ source then drops whole batches)."""
        for p in self.producers:
            try:
                if p.q.full():
                    return True
            except (NotImplementedError, OSError):
                return False
        return False

    def finish(self) -> None:
        """Send what is batched, then "no more input" to every worker (always lossless)."""
        self.flush_all()
        for p in self.producers:
            p.put_blocking(None)


def reader_main(
    spec: SourceSpec, cfg: Config, worker_queues: list[Any], out_q: Any, stop: Any, consumed: Any = None,
) -> None:
    """Entry point of the reader process (module-level, so it also works with the 'spawn' start method).
    ``consumed``: shared per-worker counts of payload bytes processed (the in-flight byte budget)."""
    child_signals()
    ppid = os.getppid()
    counters: Counter = Counter()
    producers = [Producer(q, f"worker-{i}", cfg.pipeline_worker_queue) for i, q in enumerate(worker_queues)]
    router = Router(producers, cfg, spec.lossless, counters, consumed)
    out = Producer(out_q, "assembler", cfg.pipeline_assembler_queue)
    t_start = time.monotonic()

    def stats(final: bool = False) -> None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        load = {"segments_routed": sum(router.routed), "wall_s": round(time.monotonic() - t_start, 3),
                "cpu_s": round(ru.ru_utime + ru.ru_stime, 3)}
        queues = {p.name: p.gauges() for p in producers}
        out.put_blocking(Stats("reader", 0, os.getpid(), dict(counters), queues, load, final))

    try:
        src = open_record_source(spec, counters, cfg, router.saturated)
    except CaptureError as exc:
        out.put_blocking(Failed("reader", 0, exc.what, exc.why, exc.usage))
        router.finish()
        out.put_blocking(Done("reader", 0))
        return
    if isinstance(src, FileSource):
        src.on_outcome = lambda o: out.put_blocking(Outcome(o))
    out.put_blocking(Started("reader", os.getpid()))
    next_stats = time.monotonic() + STATS_PERIOD_S
    try:
        try:
            poll = src.poll
            route = router.route
            while not stop.is_set():
                recs = poll(router.timeout(time.monotonic()))
                now = time.monotonic()
                if recs:
                    route(recs, now)
                router.flush_due(now)
                if src.finished:
                    break
                if now >= next_stats:
                    next_stats = now + STATS_PERIOD_S
                    stats()
                    if parent_gone(ppid):
                        return
        finally:
            # Drain: every source still open ends here, so the workers flush and close its flows.
            route_end = src.close()
            if route_end:
                router.route(route_end, time.monotonic())
    except Exception as exc:  # a bug in a source must still let the pipeline drain
        log.exception("reader failed")
        out.put_blocking(Failed("reader", 0, "reader", f"internal error: {exc}"))
    finally:
        router.finish()
        stats(final=True)
        out.put_blocking(Done("reader", 0))
