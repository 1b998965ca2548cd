"""TCP reassembly: turn captured segments into per-direction, in-order byte streams (capture-and-http.md §5).

The HTTP stage needs each direction of a connection as one contiguous byte stream, plus explicit notice
of every hole it will never see (so it can damage only the affected exchange and resync) and of how the
connection ended. This module is the only place that knows about sequence numbers, retransmissions,
reordering, snaplen truncation and port reuse; what leaves it is a ``StreamHandler`` call sequence.

Design notes:

* Both directions of a flow are registered in one dict under their *directional* key
  ``(source_id, src, dst)``, so the per-packet lookup needs no endpoint ordering and lands directly on the
  sender's direction state.
* Each direction keeps ``nxt`` (the 32-bit next expected sequence number) for the hot-path equality test
  and ``off`` (an unwrapped 64-bit position) so out-of-order entries sort correctly across the 2**32
  wrap. A segment's position is ``off + signed32(seq - nxt)``. Positions only matter relative to stored
  entries, so the hot path (which runs only while nothing is stored) does not maintain ``off``: any value
  is a valid frame while the store is empty, and every other path keeps ``off`` and ``nxt`` in step.
* Out-of-order data (and an early FIN, which occupies one sequence number) lives in a heap ordered by
  offset; overlaps are resolved when entries are popped, so no byte is delivered twice.
* ``fast`` is true while a direction is synced, has nothing stored and has not finished: then an
  in-order, untruncated, flag-free segment costs a dict lookup, a few attribute reads/writes and one
  handler call.
* All timers use event time: gap timeouts and flow expiry run from ``watermark()``, never the wall clock.
"""

from __future__ import annotations

import re
from collections import Counter
from heapq import heappop, heappush
from itertools import count
from typing import Callable, Protocol

from heron_core.config import Config
from heron_core.records import ACK, FIN, RST, SYN, Endpoint, FlowInfo, Process, Segment

__all__ = ["StreamHandler", "TcpReassembler"]

_M = 0xFFFFFFFF
_HALF = 0x80000000
_SWEEP_US = 10_000_000
"""Flow expiry is checked every 10 s of event time (spec §5.5); finer checks would only cost CPU."""
_TIME_WAIT_US = 60_000_000
"""How long a closed/reset flow's key keeps swallowing stray packets (final ACKs, retransmitted FINs) that
would otherwise open a bogus unsynced flow. 60 s = TCP's 2·MSL TIME-WAIT."""

_REQUEST_LINE = re.compile(rb"(?:GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS) [^ \r\n]+ HTTP/1\.")
_H2_PREFACE = b"PRI * HTTP/2.0"
_STATUS_PREFIX = b"HTTP/1."

DirKey = tuple[str, Endpoint, Endpoint]


class StreamHandler(Protocol):
    """Consumer of one flow's reassembled streams (the HTTP connection); made by the factory per flow."""

    def data(self, from_client: bool, data: bytes, ts_us: int) -> None:
        """In-order bytes of one direction; ``ts_us`` is the packet that made them available."""

    def gap(self, from_client: bool, nbytes: int, ts_us: int, reason: str = "gap") -> None:
        """``nbytes`` at the current position will never arrive; ts = last packet delivered before it.
        ``reason`` is the damage it causes: ``gap`` (lost segment) or ``truncated`` (the snaplen cut the
        tail of a captured segment, §5.6), so the exchange's damage tells the two apart (§6.6)."""

    def fin(self, from_client: bool, ts_us: int) -> None:
        """That direction ended; every byte before the FIN has been delivered (or gapped)."""

    def reset(self, ts_us: int) -> None:
        """RST: abort everything; the flow is gone."""

    def expire(self, ts_us: int, cause: str) -> None:
        """Flow dropped without a close: cause 'expired' | 'drained'; ts = the flow's last packet time."""

    def closed(self, ts_us: int) -> None:
        """Both FINs applied; the flow is gone."""

    def awaiting_response(self) -> bool:
        """True while a request waits for its response (selects the longer pending timeout)."""


class _Dir:
    """State of one direction of a flow (the sender's side)."""

    __slots__ = (
        "flow", "peer", "src", "is_client", "synced", "fast", "nxt", "off", "isn", "ooo", "ooo_bytes",
        "gap_ts", "fin_pos", "fin_done", "last_ts", "pkt_ts", "on_data",
    )

    def __init__(self, flow: _Flow, src: Endpoint, ts_us: int, on_data: Callable[[bool, bytes, int], None]):
        self.flow = flow
        self.peer: _Dir = self
        self.src = src
        self.is_client: bool | None = None  # None until the flow's client side is known
        self.synced = False
        self.fast = False
        self.nxt = -1  # never equals a real sequence number while unsynced
        self.off = 0
        self.isn: int | None = None  # initial sequence number, when this side's SYN was seen
        # heap of (pos, tie-breaker, payload or None for a FIN, wire_len, ts)
        self.ooo: list[tuple[int, int, bytes | None, int, int]] = []
        self.ooo_bytes = 0
        self.gap_ts = 0  # when the front gap was first seen (packet time)
        self.fin_pos: int | None = None  # position of a stored (early) FIN
        self.fin_done = False
        self.last_ts = ts_us  # last packet whose bytes were delivered (the ts of a following gap)
        self.pkt_ts = ts_us  # last packet seen from this side, unless it was delivered by the hot path
        self.on_data = on_data


class _Source:
    """Per-source bookkeeping: live flows, directions holding stored data, recently closed keys."""

    __slots__ = ("flows", "pending", "tombs", "next_sweep")

    def __init__(self) -> None:
        self.flows: dict[_Flow, None] = {}
        self.pending: dict[_Dir, None] = {}
        self.tombs: dict[DirKey, tuple[int, int | None]] = {}  # key -> (closed at, sender's ISN)
        self.next_sweep = 0


class _Flow:
    __slots__ = ("info", "handler", "a", "b", "keys", "source", "sync_ts", "sync_ack", "h2", "dead")

    def __init__(self, info: FlowInfo, handler: StreamHandler, keys: tuple[DirKey, DirKey], source: _Source):
        self.info = info
        self.handler = handler
        self.keys = keys
        self.source = source
        self.sync_ts = 0  # time the client side became known; the server may not sync on older data
        self.sync_ack: int | None = None  # ack of the mid-stream sync request: older server data is skipped
        self.h2 = False
        self.dead = False
        self.a: _Dir
        self.b: _Dir


def _sdiff(a: int, b: int) -> int:
    """Signed 32-bit distance a - b (modular, so it is right across the 2**32 wrap)."""
    return ((a - b + _HALF) & _M) - _HALF


class TcpReassembler:
    """Per-worker TCP reassembly for any number of sources and flows (one instance per worker).

    Feed ``segment()`` in arrival order, ``watermark()`` on each heartbeat and ``end_source()`` at the
    end of a source. Counters are written into the caller's ``Counter`` (tcp stage names, §11).
    """

    __slots__ = (
        "_factory", "_c", "_dirs", "_sources", "_tick", "_ooo_total", "_nflows",
        "_gap_us", "_idle_us", "_pending_us", "_ooo_max", "_ooo_worker_max",
    )

    def __init__(self, handler_factory: Callable[[FlowInfo], StreamHandler], counters: Counter, cfg: Config):
        self._factory = handler_factory
        self._c = counters
        self._dirs: dict[DirKey, _Dir] = {}
        self._sources: dict[str, _Source] = {}
        self._tick = count()  # heap tie-breaker: entries never compare payloads
        self._ooo_total = 0
        self._nflows = 0
        self._gap_us = round(cfg.tcp_gap_timeout_s * 1_000_000)
        self._idle_us = round(cfg.tcp_idle_timeout_s * 1_000_000)
        self._pending_us = round(cfg.tcp_pending_timeout_s * 1_000_000)
        self._ooo_max = cfg.tcp_ooo_max_bytes
        self._ooo_worker_max = cfg.tcp_ooo_worker_max_bytes

    # --- hot path --------------------------------------------------------------------------------------

    def segment(self, seg: Segment) -> None:
        """Process one segment. The common case (in order, nothing stored, no SYN/FIN/RST, not truncated,
        no process to learn) is handled inline; everything else goes to ``_slow``."""
        source_id, ts, src, dst, seq, ack, flags, payload, wire_len, process = seg
        key = (source_id, src, dst)
        d = self._dirs.get(key)
        if (
            d is not None and d.fast and not flags & 7 and seq == d.nxt and len(payload) == wire_len
            and (process is None or d.flow.info.process is not None)
        ):
            if wire_len:
                d.nxt = (seq + wire_len) & 0xFFFFFFFF
                d.last_ts = ts  # also the last packet time: see _last_packet
                d.on_data(d.is_client, payload, ts)
            else:
                d.pkt_ts = ts
            return
        self._slow(key, d, ts, seq, ack, flags, payload, wire_len, process)

    # --- everything else -------------------------------------------------------------------------------

    def _slow(
        self, key: DirKey, d: _Dir | None, ts: int, seq: int, ack: int, flags: int, payload: bytes,
        wire_len: int, process: Process | None,
    ) -> None:
        if flags & RST:
            if d is not None:
                self._reset(d.flow, ts)
            return
        if flags & SYN:
            d = self._syn(key, d, ts, seq, ack, flags, process)
            if d is None:
                return
            seq = (seq + 1) & _M  # the SYN occupies one sequence number; any payload (TFO) follows it
        elif d is None:
            s = self._sources.get(key[0])
            if s is not None and key in s.tombs:
                return  # late packet of a flow that already closed
            d = self._new_flow(key, ts, process).a
        f = d.flow
        if process is not None and f.info.process is None:
            f.info.process = process
        d.pkt_ts = ts
        if not d.synced:
            if not wire_len or not self._try_sync(d, seq, ack, flags, payload, ts):
                if wire_len:
                    self._c["bytes_skipped_unsynced"] += wire_len
                if flags & FIN:
                    self._unsynced_fin(d, ts)
                return
        if d.fin_done:
            if wire_len or flags & FIN:
                self._c["tcp_retransmits"] += 1
            return
        rel = ((seq - d.nxt + _HALF) & _M) - _HALF
        pos = d.off + rel
        if wire_len:
            self._accept(d, rel, pos, payload, wire_len, ts)
            if f.dead or d.fin_done:
                return
        if flags & FIN:
            fin_pos = pos + wire_len
            if fin_pos <= d.off:
                self._apply_fin(d, ts)
            elif d.fin_pos is None:
                self._store(d, fin_pos, None, 0, ts)
            else:
                self._c["tcp_retransmits"] += 1

    def _accept(self, d: _Dir, rel: int, pos: int, payload: bytes, wire_len: int, ts: int) -> None:
        """Place a payload-bearing segment of a synced direction: deliver, trim, drop or store it."""
        if rel > 0:
            self._store(d, pos, payload, wire_len, ts)
            return
        if rel + wire_len <= 0:
            self._c["tcp_retransmits"] += 1
            return
        self._deliver(d, -rel, payload, wire_len, ts)
        if d.ooo:
            self._drain(d)

    def _deliver(self, d: _Dir, skip: int, payload: bytes, wire_len: int, ts: int) -> None:
        """Deliver ``payload[skip:]`` (the caller guarantees it starts at or before ``off``), then the
        snaplen-truncated tail, if any, as a gap at its position (§5.6)."""
        cap = len(payload)
        if skip < cap:
            n = cap - skip
            d.nxt = (d.nxt + n) & _M
            d.off += n
            d.last_ts = ts
            d.on_data(d.is_client, payload[skip:] if skip else payload, ts)
            skip = cap
        if wire_len > skip:
            self._gap(d, wire_len - skip, "truncated")

    def _gap(self, d: _Dir, n: int, reason: str = "gap") -> None:
        self._c["tcp_gaps_skipped"] += 1
        self._c["tcp_gap_bytes"] += n
        d.nxt = (d.nxt + n) & _M
        d.off += n
        d.flow.handler.gap(d.is_client, n, d.last_ts, reason)

    def _store(self, d: _Dir, pos: int, payload: bytes | None, wire_len: int, ts: int) -> None:
        """Keep an ahead-of-order segment (or FIN, ``payload=None``) and enforce the memory bounds."""
        heap = d.ooo
        if not heap:
            d.gap_ts = ts
            d.fast = False
            d.flow.source.pending[d] = None
        heappush(heap, (pos, next(self._tick), payload, wire_len, ts))
        if payload is None:
            d.fin_pos = pos
            return
        cap = len(payload)
        d.ooo_bytes += cap
        self._ooo_total += cap
        self._c["tcp_ooo_segments"] += 1
        if d.ooo_bytes > self._ooo_max or self._ooo_total > self._ooo_worker_max:
            self._enforce_bounds(d)
        self._c["tcp_ooo_bytes"] = self._ooo_total

    def _enforce_bounds(self, d: _Dir) -> None:
        """Over a bound, waiting is no longer affordable: skip gaps now. For the worker-wide bound the
        victims are the directions whose front gap is oldest (most likely never to be filled)."""
        while d.ooo and d.ooo_bytes > self._ooo_max:
            self._skip_gap(d)
        while self._ooo_total > self._ooo_worker_max:
            victim: _Dir | None = None
            for s in self._sources.values():
                for p in s.pending:
                    if p.ooo_bytes and (victim is None or p.gap_ts < victim.gap_ts):
                        victim = p
            if victim is None:
                break
            self._skip_gap(victim)

    def _drain(self, d: _Dir) -> None:
        """Deliver every stored entry that became contiguous; trims overlaps, applies an early FIN."""
        heap = d.ooo
        popped = False
        while heap and heap[0][0] <= d.off:
            pos, _, payload, wire_len, ts = heappop(heap)
            popped = True
            if ts < d.last_ts:
                ts = d.last_ts  # bytes became available no earlier than the packet that filled the hole
            if payload is None:
                d.fin_pos = None
                self._apply_fin(d, ts)
                return
            cap = len(payload)
            d.ooo_bytes -= cap
            self._ooo_total -= cap
            skip = d.off - pos
            if skip >= wire_len:
                self._c["tcp_retransmits"] += 1
                continue
            self._deliver(d, skip, payload, wire_len, ts)
        if popped:
            if heap:
                d.gap_ts = min(e[4] for e in heap)  # the new front gap was seen when data past it came
            else:
                d.flow.source.pending.pop(d, None)
                d.fast = d.synced and not d.fin_done and d.is_client is not None
            self._c["tcp_ooo_bytes"] = self._ooo_total

    def _skip_gap(self, d: _Dir) -> None:
        """Declare ``[off, lowest stored)`` permanently missing and deliver what follows (§5.4)."""
        n = d.ooo[0][0] - d.off
        if n > 0:
            self._gap(d, n)
        self._drain(d)

    def _drop_store(self, d: _Dir) -> None:
        """Discard everything stored for a direction (after its FIN, or when the flow goes away)."""
        self._ooo_total -= d.ooo_bytes
        d.ooo.clear()
        d.ooo_bytes = 0
        d.fin_pos = None
        d.flow.source.pending.pop(d, None)
        self._c["tcp_ooo_bytes"] = self._ooo_total

    # --- opening ---------------------------------------------------------------------------------------

    def _new_flow(self, key: DirKey, ts: int, process: Process | None) -> _Flow:
        """Create a flow; ``.a`` is the direction of ``key``'s sender."""
        source_id, src, dst = key
        lo, hi = (src, dst) if src <= dst else (dst, src)
        info = FlowInfo(source_id, lo, hi, ts, process=process)
        handler = self._factory(info)
        s = self._sources.get(source_id)
        if s is None:
            s = self._sources[source_id] = _Source()
        rkey = (source_id, dst, src)
        f = _Flow(info, handler, (key, rkey), s)
        on_data = handler.data
        a = f.a = _Dir(f, src, ts, on_data)
        b = f.b = _Dir(f, dst, ts, on_data)
        a.peer = b
        b.peer = a
        self._dirs[key] = a
        self._dirs[rkey] = b
        s.flows[f] = None
        if s.tombs:
            s.tombs.pop(key, None)
            s.tombs.pop(rkey, None)
        self._c["flows_created"] += 1
        self._nflows += 1
        self._c["flows_active"] = self._nflows
        return f

    @staticmethod
    def _set_roles(f: _Flow, client: _Dir) -> None:
        client.is_client = True
        client.peer.is_client = False
        f.info.client = client.src
        f.info.server = client.peer.src

    @staticmethod
    def _sync(d: _Dir, nxt: int, ts: int, isn: int | None = None) -> None:
        d.synced = True
        d.nxt = nxt & _M
        d.off = 0
        d.isn = isn
        d.last_ts = ts
        d.fast = d.is_client is not None and not d.fin_done and not d.ooo

    def _syn(
        self, key: DirKey, d: _Dir | None, ts: int, seq: int, ack: int, flags: int, process: Process | None,
    ) -> _Dir | None:
        """Handle SYN / SYN+ACK; returns the sender's direction, or None for a duplicate.

        A SYN that does not belong to the live flow on its key (different ISN, or the flow was picked up
        mid-stream) means the ports were reused after the old connection ended unseen: the old flow is
        expired and a new one starts (§5.2)."""
        is_synack = bool(flags & ACK)
        if d is not None:
            f = d.flow
            if d.isn == seq and d.is_client is (not is_synack):
                self._c["tcp_retransmits"] += 1
                d.pkt_ts = ts
                return None
            if is_synack:
                peer = d.peer
                joins = (
                    d.isn is None and not d.synced and d.is_client is not True
                    and (peer.isn is None or ack == (peer.isn + 1) & _M)
                    and (peer.isn is not None or not peer.synced)
                )
                if joins:  # the answer to the SYN we saw, or the first we see of this connection
                    self._set_roles(f, peer)
                    self._sync(d, seq + 1, ts, seq)
                    if not peer.synced:
                        self._sync(peer, ack, ts)
                        f.sync_ts = ts
                    return d
            self._expire(f, "expired")
        else:
            s = self._sources.get(key[0])
            if s is not None:
                tomb = s.tombs.get(key)
                if tomb is not None and tomb[1] == seq:
                    self._c["tcp_retransmits"] += 1  # retransmitted SYN of a connection already closed
                    return None
        f = self._new_flow(key, ts, process)
        d = f.a
        f.sync_ts = ts
        if is_synack:
            self._set_roles(f, f.b)
            self._sync(d, seq + 1, ts, seq)
            self._sync(f.b, ack, ts)  # the SYN+ACK acknowledges the client's next byte
        else:
            self._set_roles(f, d)
            self._sync(d, seq + 1, ts, seq)
        return d

    def _try_sync(self, d: _Dir, seq: int, ack: int, flags: int, payload: bytes, ts: int) -> bool:
        """Mid-stream pickup (§5.2): the client syncs on a request line (or the h2 preface), the server
        on its first status line that is not older than that request."""
        f = d.flow
        if d.is_client is not False:
            h2 = payload.startswith(_H2_PREFACE)
            if not h2 and _REQUEST_LINE.match(payload) is None:
                return False
            if d.is_client is None:
                self._set_roles(f, d)
                self._c["midstream_syncs"] += 1
                f.sync_ts = ts
                f.sync_ack = ack if flags & ACK else None
                f.h2 = h2
            self._sync(d, seq, ts)
            return True
        if ts < f.sync_ts:
            return False
        if f.sync_ack is not None and _sdiff(seq, f.sync_ack) < 0:
            return False  # bytes the client had already received before sending its request
        if not f.h2 and not payload.startswith(_STATUS_PREFIX):
            return False
        self._sync(d, seq, ts)
        return True

    # --- closing ---------------------------------------------------------------------------------------

    def _apply_fin(self, d: _Dir, ts: int) -> None:
        """The direction's FIN is reached: notify, and close the flow when both sides are done."""
        if ts < d.last_ts:
            ts = d.last_ts
        d.fin_done = True
        d.fast = False
        d.nxt = (d.nxt + 1) & _M
        d.off += 1
        self._drop_store(d)  # nothing legitimately follows a FIN
        f = d.flow
        if d.is_client is not None:
            f.handler.fin(d.is_client, ts)
        if d.peer.fin_done:
            self._close(f, ts)

    def _unsynced_fin(self, d: _Dir, ts: int) -> None:
        """FIN on a direction we never synced: nothing can precede it in the parser, apply it now."""
        if d.fin_done:
            return
        d.fin_done = True
        d.fast = False
        f = d.flow
        if d.is_client is not None:
            f.handler.fin(d.is_client, ts)
        if d.peer.fin_done:
            self._close(f, ts)

    def _close(self, f: _Flow, ts: int) -> None:
        f.handler.closed(ts)
        self._c["flows_closed"] += 1
        self._remove(f, ts)

    def _reset(self, f: _Flow, ts: int) -> None:
        f.handler.reset(ts)
        self._c["flows_closed"] += 1
        self._remove(f, ts)

    @staticmethod
    def _last_packet(f: _Flow) -> int:
        """The flow's last packet time. The hot path records a delivering packet only in ``last_ts``
        (saving a write per segment), other packets in ``pkt_ts``; the latest of the four is the answer."""
        a, b = f.a, f.b
        return max(a.pkt_ts, a.last_ts, b.pkt_ts, b.last_ts)

    def _expire(self, f: _Flow, cause: str) -> None:
        f.handler.expire(self._last_packet(f), cause)
        self._c["flows_expired"] += 1
        self._remove(f, None)

    def _remove(self, f: _Flow, tomb_ts: int | None) -> None:
        """Forget a flow; after a close/reset its keys are tombstoned against stray late packets."""
        f.dead = True
        s = f.source
        for d in (f.a, f.b):
            d.fast = False
            self._drop_store(d)
        for key, d in zip(f.keys, (f.a, f.b)):
            self._dirs.pop(key, None)
            if tomb_ts is not None:
                s.tombs[key] = (tomb_ts, d.isn)
        s.flows.pop(f, None)
        self._nflows -= 1
        self._c["flows_active"] = self._nflows

    # --- event time ------------------------------------------------------------------------------------

    def watermark(self, source_id: str, ts_us: int) -> None:
        """Event time of ``source_id`` reached ``ts_us``: skip timed-out gaps, expire idle flows."""
        s = self._sources.get(source_id)
        if s is None:
            return
        if s.pending:
            limit = ts_us - self._gap_us
            for d in list(s.pending):
                while d.ooo and d.gap_ts <= limit and not d.flow.dead:
                    self._skip_gap(d)
        if ts_us >= s.next_sweep:
            s.next_sweep = ts_us + _SWEEP_US
            shortest = min(self._idle_us, self._pending_us)
            for f in list(s.flows):
                idle = ts_us - self._last_packet(f)
                if idle < shortest:
                    continue
                limit_us = self._pending_us if f.handler.awaiting_response() else self._idle_us
                if idle >= limit_us:
                    self._expire(f, "expired")
            if s.tombs:
                s.tombs = {k: v for k, v in s.tombs.items() if ts_us - v[0] < _TIME_WAIT_US}

    def end_source(self, source_id: str) -> None:
        """The source has no more data: deliver what is stored (skipping its gaps), then drain every
        flow of the source with cause 'drained'."""
        s = self._sources.get(source_id)
        if s is None:
            return
        for f in list(s.flows):
            dirs = (f.a, f.b) if f.a.is_client else (f.b, f.a)
            for d in dirs:
                while d.ooo and not f.dead:
                    self._skip_gap(d)
            if not f.dead:
                self._expire(f, "drained")
        del self._sources[source_id]

    # --- introspection (tests, health) -----------------------------------------------------------------

    def flow_count(self) -> int:
        return self._nflows

    def ooo_bytes(self) -> int:
        return self._ooo_total
