"""Messages between the reader, the decode workers and the main process, and the producer side of the
bounded queues that carry them (capture-and-http.md §3).

Queue items:

* reader → worker *i*: a ``list`` of records — segments as **plain tuples** (a ``Segment`` namedtuple
  costs 3× more to pickle and unpickle: ~10 µs vs ~3.4 µs a segment), ``Heartbeat`` and
  ``EndOfSource`` as themselves — or ``None``, "no more input".
* worker *i* → main: ``(i, [messages])``, the worker's output (``CallStarted``, ``ExchangeFinished``,
  ``Watermark``, ``EndOfSource``) in emission order, batched per input batch to amortise pickling.
  ``ExchangeFinished`` travels packed as a plain tuple of field values (``pack``/``unpack``): unpickling
  a 105-field ``Call`` dataclass runs its ``__setstate__`` loop in Python, ~76 µs against ~12 µs for a
  tuple plus the class's own ``__init__``, and the main process unpickles every call.
* reader/workers → main (same queue): ``Started``, ``Failed``, ``Outcome``, ``Stats`` and ``Done``.

The gauges of capture-and-http.md §11 that only a producer can measure (time spent blocked in ``put``,
batches dropped, the deepest depth seen at a put) are kept by ``Producer`` and travel in ``Stats``.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter
from typing import Any, NamedTuple

from heron_core.messages import ExchangeFinished
from heron_core.records import Call, Exchange


class Started(NamedTuple):
    """The reader opened its source (the engine is running; ``on_started`` may fire)."""

    role: str
    pid: int


class Failed(NamedTuple):
    """A process could not do its job: the reader's source did not open (``what``/``why`` form the
    one-line error; ``usage`` = bad option value), or a process died of an internal error."""

    role: str
    index: int
    what: str
    why: str
    usage: bool = False


class Outcome(NamedTuple):
    """One capture file of a ``files`` source is done (``heron_core.capture.sources.FileOutcome``)."""

    outcome: Any


class Stats(NamedTuple):
    """A process's counters (a full snapshot, not a delta: gauges such as ``flows_active`` sum right),
    its producer-side queue gauges by queue name, and its load figures. Sent every 2 s of wall time and
    once more, ``final``, when the process ends."""

    role: str  # 'reader' | 'worker'
    index: int
    pid: int
    counters: dict[str, int]
    queues: dict[str, dict[str, float]]
    load: dict[str, float]
    final: bool = False


class Done(NamedTuple):
    """The process has sent everything and is exiting."""

    role: str
    index: int


STATS_PERIOD_S = 2.0

_exchange_values = attrgetter(*(f.name for f in fields(Exchange)))
_call_values = attrgetter(*(f.name for f in fields(Call)))


def pack(msgs: list[Any]) -> list[Any]:
    """A worker's output list as sent: ``ExchangeFinished`` as ``(exchange values, call values or None,
    bodies)``, every other message as itself."""
    return [
        (_exchange_values(m.exchange), None if m.call is None else _call_values(m.call), m.bodies)
        if type(m) is ExchangeFinished else m
        for m in msgs
    ]


def unpack(msgs: list[Any]) -> list[Any]:
    """``pack`` undone (in the main process)."""
    return [
        ExchangeFinished(Exchange(*m[0]), None if m[1] is None else Call(*m[1]), m[2]) if type(m) is tuple else m
        for m in msgs
    ]


def parent_gone(ppid: int) -> bool:
    """True once the process that started us died (we were re-parented): stop instead of hanging."""
    return os.getppid() != ppid


class Producer:
    """The sending end of one bounded queue, with its producer-side gauges.

    ``put_blocking`` is the lossless path (files, and every worker → main put): it waits for room,
    adding the time to ``blocked_s``; ``put_nowait`` refuses at once when the queue is full and counts it in
    ``dropped`` (the reader's lossy path waits a bounded time first: ``Router._put_lossy``). ``high_water`` is the depth seen right after each put.
    """

    __slots__ = ("_ppid", "blocked_s", "capacity", "dropped", "high_water", "name", "q")

    def __init__(self, q: Any, name: str, capacity: int) -> None:
        self.q = q
        self.name = name
        self.capacity = capacity
        self.high_water = 0
        self.blocked_s = 0.0
        self.dropped = 0
        self._ppid = os.getppid()

    def _depth(self) -> None:
        try:
            d = self.q.qsize()
        except (NotImplementedError, OSError):  # macOS has no sem_getvalue
            return
        self.high_water = max(self.high_water, d)

    def put_blocking(self, item: Any, abort: Callable[[], bool] | None = None) -> bool:
        """Put, waiting as long as it takes; False only if ``abort()`` or the parent died meanwhile."""
        q = self.q
        try:
            q.put_nowait(item)
        except queue.Full:
            t0 = time.monotonic()
            try:
                while True:
                    try:
                        q.put(item, timeout=0.25)
                        break
                    except queue.Full:
                        if (abort is not None and abort()) or parent_gone(self._ppid):
                            return False
            finally:
                self.blocked_s += time.monotonic() - t0
        self._depth()
        return True

    def put_nowait(self, item: Any) -> bool:
        if self.put_nowait_quiet(item):
            return True
        self.dropped += 1
        return False

    def put_nowait_quiet(self, item: Any) -> bool:
        """``put_nowait`` that leaves ``dropped`` alone (the caller may still wait and retry)."""
        try:
            self.q.put_nowait(item)
        except queue.Full:
            return False
        self._depth()
        return True

    def refuse(self) -> bool:
        """Count one refused put; returns False (for ``put_blocking(…) or p.refuse()``)."""
        self.dropped += 1
        return False

    def gauges(self) -> dict[str, float]:
        return {"high_water": self.high_water, "blocked_s": round(self.blocked_s, 3), "dropped": self.dropped}
