"""TCP packetizer: turns a connection made of HTTP exchanges into a timed list of segments.

A segment references its payload by offset into the direction's byte stream instead of holding bytes,
so faults (reordering, overlapping retransmits, drops, snaplen cuts) can be expressed as edits of the
segment list, and the truth builder can replay TCP delivery exactly as the engine's reassembler would.
All times are integer microseconds; all randomness comes from the ``rng`` passed in.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .frames import ACK, FIN, PSH, RST, SYN

C2S, S2C = 0, 1


@dataclass
class ExchangeSpec:
    """One HTTP exchange on a connection.

    ``response_chunks`` are ``(delay after request end in seconds, bytes)``; each chunk is sent as one
    burst (segmented by MSS).  ``request_chunks`` (``(delay after request start, bytes)``) replaces
    ``request`` when a client streams its body.  ``abort`` = ``("client"|"server", n)`` sends an RST after
    ``n`` response chunks; ``no_response`` means the server never answers.  ``truth`` is the API-level
    truth (None for non-LLM exchanges); ``framing`` is ``length``/``chunked``/``close``/``none``.
    """

    request: bytes
    response_chunks: list[tuple[float, bytes]]
    request_chunks: list[tuple[float, bytes]] | None = None
    think_s: float = 0.02
    truth: dict[str, Any] | None = None
    framing: str = "length"
    abort: tuple[str, int] | None = None
    no_response: bool = False
    tiny_prefix: int = 0


@dataclass
class ConnSpec:
    """A TCP connection: endpoints, timing parameters and its exchanges in order."""

    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    exchanges: list[ExchangeSpec]
    start_us: int
    rtt_us: int = 2000
    mss_client: int = 1460
    mss_server: int = 1460
    pipelined: bool = False
    close: str = "client_fin"  # client_fin | server_fin | rst | none
    isn_c: int = 1000
    isn_s: int = 5000


class Seg:
    """One captured TCP segment; payload is ``stream[d][off:off+length]`` (``snap`` = captured bytes)."""

    __slots__ = ("ts", "d", "off", "length", "ack", "flags", "snap", "copies", "cut")

    def __init__(self, ts: int, d: int, off: int, length: int, ack: int, flags: int) -> None:
        self.ts, self.d, self.off, self.length, self.ack, self.flags = ts, d, off, length, ack, flags
        self.snap: int | None = None
        self.copies = 1
        self.cut = False  # True: not in the capture (file ended before it)

    def clone(self) -> "Seg":
        s = Seg(self.ts, self.d, self.off, self.length, self.ack, self.flags)
        s.snap, s.copies = self.snap, self.copies
        return s


@dataclass
class ExchangeRanges:
    """Byte ranges of one exchange in the two streams plus packetizer-known times."""

    req: tuple[int, int]
    resp: tuple[int, int]
    spec: ExchangeSpec
    ordinal: int
    close_ts: int | None = None      # RST time (abort) or second-FIN time (no_response)
    sent_chunks: int = 0


@dataclass
class ConnTrace:
    """Packetized connection: segments sorted by time, both byte streams, per-exchange ranges."""

    spec: ConnSpec
    segs: list[Seg]
    streams: tuple[bytes, bytes]
    ranges: list[ExchangeRanges] = field(default_factory=list)

    @property
    def first_ts(self) -> int:
        return self.segs[0].ts if self.segs else self.spec.start_us


def _wire_gap(n: int, rng: random.Random) -> int:
    """Serialization spacing between back-to-back segments (≈1 Gbit/s plus jitter)."""
    return max(1, n // 125) + rng.randint(0, 3)


class _Builder:
    def __init__(self, spec: ConnSpec, rng: random.Random) -> None:
        self.spec, self.rng = spec, rng
        self.segs: list[Seg] = []
        self.buf: tuple[bytearray, bytearray] = (bytearray(), bytearray())
        self.unacked = 0  # server segments since last client ACK

    def emit(self, ts: int, d: int, off: int, length: int, flags: int) -> Seg:
        ack = len(self.buf[1 - d])
        s = Seg(ts, d, off, length, ack, flags)
        self.segs.append(s)
        return s

    def send(self, t: int, d: int, data: bytes, mss: int, tiny: int = 0) -> int:
        """Append ``data`` to stream ``d`` as MSS-sized segments starting at ``t``; returns last ts."""
        buf = self.buf[d]
        pos, last = 0, t
        rtt = self.spec.rtt_us
        while pos < len(data):
            size = 1 if pos < tiny else mss
            chunk = data[pos:pos + size]
            off = len(buf)
            buf += chunk
            pos += len(chunk)
            flags = ACK | (PSH if pos >= len(data) else 0)
            self.emit(t, d, off, len(chunk), flags)
            last = t
            if d == S2C:
                self.unacked += 1
                if self.unacked >= 2 or pos >= len(data):
                    self.unacked = 0
                    self.ack_at(t + 15 + self.rng.randint(0, 40), C2S)
            t += _wire_gap(len(chunk), self.rng)
        if d == C2S and data:
            self.ack_at(last + rtt // 2 + self.rng.randint(0, 50), S2C)
        return last

    def ack_at(self, ts: int, d: int) -> None:
        self.emit(ts, d, len(self.buf[d]), 0, ACK)


def packetize(spec: ConnSpec, rng: random.Random) -> ConnTrace:
    """Build the full conversation (handshake, exchanges, close) of one connection."""
    b = _Builder(spec, rng)
    rtt = spec.rtt_us
    t = spec.start_us
    b.emit(t, C2S, -1, 0, SYN)
    t += rtt
    b.emit(t, S2C, -1, 0, SYN | ACK)
    t += 20 + rng.randint(0, 30)
    b.emit(t, C2S, 0, 0, ACK)
    ranges: list[ExchangeRanges] = []
    aborted = False
    reqs: list[tuple[ExchangeSpec, int, int, int, int]] = []  # spec, req_lo, req_hi, req_end_ts, ordinal

    def send_request(ex: ExchangeSpec, t0: int) -> tuple[int, int, int]:
        lo = len(b.buf[C2S])
        if ex.request_chunks:
            last = t0
            for delay, data in ex.request_chunks:
                last = b.send(max(t0 + int(delay * 1e6), last + 1), C2S, data, spec.mss_client, 0)
        else:
            last = b.send(t0, C2S, ex.request, spec.mss_client, ex.tiny_prefix)
        return lo, len(b.buf[C2S]), last

    def send_response(ex: ExchangeSpec, req_end: int, not_before: int, rng_: random.Random,
                      rg: ExchangeRanges) -> int:
        last = not_before
        lo = len(b.buf[S2C])
        for i, (delay, data) in enumerate(ex.response_chunks):
            if ex.abort and i >= ex.abort[1]:
                break
            ts = max(req_end + int(delay * 1e6), last + 1)
            last = b.send(ts, S2C, data, spec.mss_server, ex.tiny_prefix if i == 0 else 0)
            rg.sent_chunks = i + 1
        rg.resp = (lo, len(b.buf[S2C]))
        return last

    t += 100
    exchanges = list(spec.exchanges)
    if spec.pipelined:
        for i, ex in enumerate(exchanges):
            t += int(ex.think_s * 1e6) if i == 0 else rng.randint(20, 400)
            lo, hi, last = send_request(ex, t)
            reqs.append((ex, lo, hi, last, i))
            t = last + 1
        prev_end = t
        for ex, lo, hi, req_end, i in reqs:
            rg = ExchangeRanges((lo, hi), (0, 0), ex, i)
            ranges.append(rg)
            prev_end = send_response(ex, req_end, prev_end, rng, rg)
            if ex.abort:
                aborted = True
                t = _abort(b, ex, prev_end, rng, rg)
                break
        if not aborted:
            t = prev_end
    else:
        for i, ex in enumerate(exchanges):
            t += int(ex.think_s * 1e6)
            lo, hi, req_end = send_request(ex, t)
            rg = ExchangeRanges((lo, hi), (len(b.buf[S2C]),) * 2, ex, i)
            ranges.append(rg)
            if ex.no_response:
                t = req_end + int(max(ex.think_s, 1.0) * 1e6)
                rg.close_ts = _close_fins(b, t, rng, rtt, first=C2S)
                return _finish(spec, b, ranges)
            t = send_response(ex, req_end, req_end, rng, rg)
            if ex.abort:
                aborted = True
                t = _abort(b, ex, t, rng, rg)
                break
    if not aborted:
        t += 1000 + rng.randint(0, 50_000)
        if spec.close == "client_fin":
            _close_fins(b, t, rng, rtt, first=C2S)
        elif spec.close == "server_fin":
            _close_fins(b, t, rng, rtt, first=S2C)
        elif spec.close == "rst":
            b.emit(t, C2S, len(b.buf[C2S]), 0, RST | ACK)
    return _finish(spec, b, ranges)


def _abort(b: _Builder, ex: ExchangeSpec, t: int, rng: random.Random, rg: ExchangeRanges) -> int:
    assert ex.abort is not None
    d = C2S if ex.abort[0] == "client" else S2C
    t += 200 + rng.randint(0, 30_000)
    b.emit(t, d, len(b.buf[d]), 0, RST | ACK)
    rg.close_ts = t
    return t


def _close_fins(b: _Builder, t: int, rng: random.Random, rtt: int, first: int) -> int:
    """FIN from ``first``, FIN+ACK from the peer, final ACK; returns the second FIN's time."""
    other = 1 - first
    b.emit(t, first, len(b.buf[first]), 0, FIN | ACK)
    t2 = t + rtt + rng.randint(0, 200)
    s = b.emit(t2, other, len(b.buf[other]), 0, FIN | ACK)
    s.ack += 1
    fin_ack = b.emit(t2 + 20 + rng.randint(0, 30), first, len(b.buf[first]) + 1, 0, ACK)
    fin_ack.ack += 1
    return t2


def _finish(spec: ConnSpec, b: _Builder, ranges: list[ExchangeRanges]) -> ConnTrace:
    b.segs.sort(key=lambda s: s.ts)  # stable: creation order breaks ties
    return ConnTrace(spec, b.segs, (bytes(b.buf[0]), bytes(b.buf[1])), ranges)


def seq_of(trace: ConnTrace, s: Seg) -> tuple[int, int]:
    """Absolute (seq, ack) numbers of a segment."""
    isn = (trace.spec.isn_c, trace.spec.isn_s)
    d = s.d
    seq = isn[d] + 1 + s.off if s.off >= 0 else isn[d]
    ack = isn[1 - d] + 1 + s.ack if (s.flags & ACK) else 0
    return seq & 0xFFFFFFFF, ack & 0xFFFFFFFF
