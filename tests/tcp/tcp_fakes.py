"""Test doubles for the TCP stage: a recording StreamHandler and a segment builder."""

from __future__ import annotations

from collections import Counter
from typing import Any

from heron_core.config import Config
from heron_core.records import ACK, FIN, PSH, RST, SYN, Endpoint, FlowInfo, Segment
from heron_core.tcp import TcpReassembler

M32 = 0xFFFFFFFF
T0 = 1_700_000_000_000_000  # µs
SEC = 1_000_000
CLIENT: Endpoint = (bytes([10, 0, 0, 1]), 50000)
SERVER: Endpoint = (bytes([10, 0, 0, 2]), 443)


class Recorder:
    """StreamHandler that logs every call as a tuple, in order."""

    def __init__(self, info: FlowInfo) -> None:
        self.info = info
        self.events: list[tuple[Any, ...]] = []
        self.gap_reasons: list[str] = []  # the ``reason`` of each gap event, in order
        self.awaiting = False

    def data(self, from_client: bool, data: bytes, ts_us: int) -> None:
        self.events.append(("data", from_client, bytes(data), ts_us))

    def gap(self, from_client: bool, nbytes: int, ts_us: int, reason: str = "gap") -> None:
        self.events.append(("gap", from_client, nbytes, ts_us))
        self.gap_reasons.append(reason)

    def fin(self, from_client: bool, ts_us: int) -> None:
        self.events.append(("fin", from_client, ts_us))

    def reset(self, ts_us: int) -> None:
        self.events.append(("reset", ts_us))

    def expire(self, ts_us: int, cause: str) -> None:
        self.events.append(("expire", ts_us, cause))

    def closed(self, ts_us: int) -> None:
        self.events.append(("closed", ts_us))

    def awaiting_response(self) -> bool:
        return self.awaiting

    def stream(self, from_client: bool) -> bytes:
        """Concatenated delivered bytes of one direction."""
        return b"".join(e[2] for e in self.events if e[0] == "data" and e[1] == from_client)

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]


class Harness:
    """A reassembler wired to Recorders, with the counters and created handlers exposed."""

    def __init__(self, **overrides: Any) -> None:
        self.counters: Counter = Counter()
        self.handlers: list[Recorder] = []
        self.cfg = Config.load(**overrides)
        self.r = TcpReassembler(self._make, self.counters, self.cfg)

    def _make(self, info: FlowInfo) -> Recorder:
        h = Recorder(info)
        self.handlers.append(h)
        return h

    def feed(self, *segs: Segment) -> None:
        for s in segs:
            self.r.segment(s)

    @property
    def h(self) -> Recorder:
        assert len(self.handlers) == 1, f"{len(self.handlers)} flows created"
        return self.handlers[0]


def seg(
    src: Endpoint, dst: Endpoint, seq: int, payload: bytes = b"", *, flags: int = ACK, ts: int = T0,
    ack: int = 0, wire_len: int | None = None, source: str = "s1", process: Any = None,
) -> Segment:
    return Segment(
        source, ts, src, dst, seq & M32, ack & M32, flags, payload,
        len(payload) if wire_len is None else wire_len, process,
    )


class Conn:
    """Builds the segments of one connection by stream offset (offset 0 = first byte after the SYN)."""

    def __init__(
        self, cisn: int = 1000, sisn: int = 5000, client: Endpoint = CLIENT, server: Endpoint = SERVER,
        source: str = "s1",
    ) -> None:
        self.cisn, self.sisn, self.client, self.server, self.source = cisn, sisn, client, server, source

    def syn(self, ts: int = T0) -> Segment:
        return seg(self.client, self.server, self.cisn, flags=SYN, ts=ts, source=self.source)

    def synack(self, ts: int = T0 + 1) -> Segment:
        return seg(self.server, self.client, self.sisn, flags=SYN | ACK, ack=self.cisn + 1, ts=ts,
                   source=self.source)

    def ack(self, ts: int = T0 + 2) -> Segment:
        return seg(self.client, self.server, self.cisn + 1, ack=self.sisn + 1, ts=ts, source=self.source)

    def handshake(self, ts: int = T0) -> list[Segment]:
        return [self.syn(ts), self.synack(ts + 1), self.ack(ts + 2)]

    def c(self, off: int, payload: bytes = b"", ts: int = T0 + 10, flags: int = ACK | PSH,
          wire_len: int | None = None) -> Segment:
        return seg(self.client, self.server, self.cisn + 1 + off, payload, flags=flags, ts=ts,
                   ack=self.sisn + 1, wire_len=wire_len, source=self.source)

    def s(self, off: int, payload: bytes = b"", ts: int = T0 + 20, flags: int = ACK | PSH,
          wire_len: int | None = None) -> Segment:
        return seg(self.server, self.client, self.sisn + 1 + off, payload, flags=flags, ts=ts,
                   ack=self.cisn + 1, wire_len=wire_len, source=self.source)

    def cfin(self, off: int, ts: int = T0 + 30) -> Segment:
        return self.c(off, flags=ACK | FIN, ts=ts)

    def sfin(self, off: int, ts: int = T0 + 30) -> Segment:
        return self.s(off, flags=ACK | FIN, ts=ts)

    def rst(self, from_client: bool = True, ts: int = T0 + 40) -> Segment:
        if from_client:
            return seg(self.client, self.server, self.cisn + 1, flags=RST, ts=ts, source=self.source)
        return seg(self.server, self.client, self.sisn + 1, flags=RST, ts=ts, source=self.source)
