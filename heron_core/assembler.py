"""The assembler: the single consumer of worker messages, in the main process.

It merges watermarks per source, releases calls in event time, and writes exchanges, calls and bodies
through the store writer. Turn assembly, proxy-hop folding and insights plug in here (they need the
event-time watermark, which only the assembler has).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .messages import CallStarted, ExchangeFinished
from .records import EndOfSource, Watermark


@dataclass
class SourceState:
    source_id: str
    watermark_us: int = 0
    drained: bool = False


@dataclass
class Assembler:
    """Consumes ``ExchangeFinished``/``CallStarted``/``Watermark``/``EndOfSource`` messages."""

    writer: Any  # heron_core.store.writer.StoreWriter, or None for a dry run
    counters: Counter = field(default_factory=Counter)
    sources: dict[str, SourceState] = field(default_factory=dict)
    in_flight: dict[str, CallStarted] = field(default_factory=dict)

    def __call__(self, msg: Any) -> None:
        t = type(msg)
        if t is ExchangeFinished:
            self._finished(msg)
        elif t is CallStarted:
            self.in_flight[msg.call_id] = msg
        elif t is Watermark:
            self._source(msg.source_id).watermark_us = max(self._source(msg.source_id).watermark_us, msg.ts_us)
        elif t is EndOfSource:
            self._source(msg.source_id).drained = True
            if self.writer is not None:
                self.writer.flush()

    def _source(self, source_id: str) -> SourceState:
        st = self.sources.get(source_id)
        if st is None:
            st = self.sources[source_id] = SourceState(source_id)
        return st

    def _finished(self, msg: ExchangeFinished) -> None:
        ex, call = msg.exchange, msg.call
        c = self.counters
        c["exchanges"] += 1
        if ex.damage:
            c["damaged_exchanges"] += 1
        if call is not None:
            self.in_flight.pop(call.call_id, None)
            c["calls_received"] += 1
            c[f"calls_by_wire_api.{call.wire_api}"] += 1
        if self.writer is not None:
            self.writer.add_exchange(ex, call is not None)
            if call is not None:
                self.writer.add_call(call)
            if msg.bodies:
                self.writer.add_bodies(msg.bodies)
