"""ZMQ probe batches (capture-and-http.md §2.4): a bound PULL socket, one source per probe UUID.

Wire format (all integers big-endian). A batch is one ZMQ message (its frames concatenated):

    header (24 bytes):  version u16 | pkts_num u16 | keybit u32 | uuid 16 bytes
    pkts_num records:   pkt_data_len u16 | tv_sec u32 | tv_usec u32 | caplen u32 | len u32 | frame

Frames are Ethernet (optionally VLAN-tagged / MPLS-labelled). A batch whose length is not exactly
``24 + Σ(18 + pkt_data_len)`` is dropped whole (``zmq_batches_malformed``). A 14-byte frame with zero
MAC addresses and ethertype 0xFFFF is a probe heartbeat at its timestamp.

Each probe has its own clock: on every batch the reader records ``wall clock − newest timestamp`` of
that probe, and while the probe is silent for ``capture.heartbeat_s`` it emits heartbeats at ``wall
clock − offset``, so a skewed probe clock never advances event time wrongly. When the worker queues
are full, whole batches are dropped and counted (``zmq_batches_dropped``).
"""

from __future__ import annotations

import struct
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable

from heron_core.capture.decode import decode_span
from heron_core.capture.source import SourceRecord
from heron_core.capture.sources import CaptureError, EventClock, SourceSpec, wall_us
from heron_core.config import Config
from heron_core.records import EndOfSource

HEADER = struct.Struct(">HHI16s")
RECORD = struct.Struct(">HIIII")  # pkt_data_len, tv_sec, tv_usec, caplen, len
HEADER_LEN = HEADER.size  # 24
RECORD_LEN = RECORD.size  # 18
MAX_RECORDS = 0xFFFF
MAX_FRAME = 0xFFFF
HEARTBEAT_FRAME = b"\x00" * 12 + b"\xff\xff"
_LINKTYPE_ETHERNET = 1
_RECV_PER_POLL = 256

Batch = tuple[str, int, list[tuple[int, int, int]]]
"""A parsed batch: ``(source_id, version, [(ts_us, frame start, frame end)])`` into the message bytes."""


def encode_batch(probe_id: bytes, records: Iterable[tuple[int, bytes, int]], version: int = 1, keybit: int = 0) -> bytes:
    """Build one batch from ``(ts_us, frame, orig_len)`` records (frames must be ≤ 65535 bytes)."""
    parts = []
    n = 0
    for ts_us, frame, orig_len in records:
        sec, usec = divmod(ts_us, 1_000_000)
        parts.append(RECORD.pack(len(frame), sec, usec, len(frame), orig_len))
        parts.append(frame)
        n += 1
    if n > MAX_RECORDS:
        raise ValueError("too many records for one batch")
    return HEADER.pack(version, n, keybit, probe_id) + b"".join(parts)


def heartbeat_record(ts_us: int) -> tuple[int, bytes, int]:
    """A probe heartbeat record at ``ts_us`` (to put in a batch)."""
    return (ts_us, HEARTBEAT_FRAME, len(HEARTBEAT_FRAME))


def parse_batch(msg: bytes) -> Batch | None:
    """Validate and index a batch; None when it is malformed (any length mismatch)."""
    size = len(msg)
    if size < HEADER_LEN:
        return None
    version, count, _keybit, raw_id = HEADER.unpack_from(msg)
    pos = HEADER_LEN
    recs: list[tuple[int, int, int]] = []
    unpack = RECORD.unpack_from
    for _ in range(count):
        if pos + RECORD_LEN > size:
            return None
        dlen, sec, usec, _caplen, _orig = unpack(msg, pos)
        start = pos + RECORD_LEN
        pos = start + dlen
        if pos > size:
            return None
        recs.append((sec * 1_000_000 + usec, start, pos))
    if pos != size:
        return None
    return str(uuid.UUID(bytes=raw_id)), version, recs


class _Probe:
    """Per-probe state: its event clock and the offset between our wall clock and its clock."""

    __slots__ = ("clock", "last_batch_mono", "offset_us", "version")

    def __init__(self, source_id: str, cfg: Config) -> None:
        self.clock = EventClock(source_id, cfg)
        self.offset_us = 0
        self.last_batch_mono = time.monotonic()
        self.version = 0


class ZmqSource:
    """A bound PULL socket as a polled ``RecordSource``; never finishes by itself."""

    def __init__(
        self, spec: SourceSpec, counters: Counter, cfg: Config, saturated: Callable[[], bool] | None = None
    ) -> None:
        try:
            import zmq
        except ImportError:
            raise CaptureError(f"--zmq {spec.endpoint}", "pyzmq is not installed (pip install 'heron-tui[live]')")
        assert spec.endpoint is not None
        self._zmq = zmq
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PULL)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 10_000)
        try:
            self.sock.bind(spec.endpoint)
        except zmq.ZMQError as exc:
            self.sock.close()
            self.ctx.term()
            raise CaptureError(f"--zmq {spec.endpoint}", str(exc)) from None
        self.endpoint = spec.endpoint
        self.counters = counters
        self.cfg = cfg
        self.finished = False
        self.probes: dict[str, _Probe] = {}
        self._saturated = saturated
        self._idle_s = cfg.capture_heartbeat_s

    def poll(self, timeout_s: float) -> list[SourceRecord]:
        if self.finished:
            return []
        zmq = self._zmq
        out: list[SourceRecord] = []
        if self.sock.poll(max(0, int(timeout_s * 1000))):
            for _ in range(_RECV_PER_POLL):
                try:
                    frames = self.sock.recv_multipart(zmq.NOBLOCK, copy=True)
                except zmq.Again:
                    break
                self.batch(frames[0] if len(frames) == 1 else b"".join(frames), out)
        self._idle(out)
        return out

    def batch(self, msg: bytes, out: list[SourceRecord]) -> None:
        """Turn one batch into records (appended to ``out``), or count why not."""
        c = self.counters
        parsed = parse_batch(msg)
        if parsed is None:
            c["zmq_batches_malformed"] += 1
            return
        sid, version, recs = parsed
        c["zmq_batches"] += 1
        if self._saturated is not None and self._saturated():
            # Accounted like any overload drop: read, then dropped (packets_read = decoded + dropped + …).
            n = sum(1 for _ts, s, e in recs if not (e - s == 14 and msg[s:e] == HEARTBEAT_FRAME))
            c["zmq_batches_dropped"] += 1
            c["packets_read"] += n
            c["packets_dropped_overload"] += n
            return
        probe = self.probes.get(sid)
        if probe is None:
            probe = self.probes[sid] = _Probe(sid, self.cfg)
        probe.version = version
        clock = probe.clock
        newest = 0
        npk = nbytes = decoded = 0
        for ts, start, end in recs:
            newest = max(newest, ts)
            if end - start == 14 and msg[start:end] == HEARTBEAT_FRAME:
                hb = clock.heartbeat_at(ts)
                if hb is not None:
                    c["heartbeats_emitted"] += 1
                    out.append(hb)
                continue
            npk += 1
            nbytes += end - start
            hb = clock.packet(ts)
            if hb is not None:
                c["heartbeats_emitted"] += 1
                out.append(hb)
            seg = decode_span(sid, ts, _LINKTYPE_ETHERNET, msg, start, end, c)
            if seg is not None:
                decoded += 1
                out.append(seg)
        c["packets_read"] += npk
        c["bytes_read"] += nbytes
        c["packets_decoded"] += decoded
        now = time.monotonic()
        probe.last_batch_mono = now
        clock.last_packet_wall = now
        if recs:
            probe.offset_us = wall_us() - newest

    def _idle(self, out: list[SourceRecord]) -> None:
        """Heartbeats for probes silent for ``capture.heartbeat_s``, at ``wall clock − offset``."""
        if not self.probes:
            return
        now = time.monotonic()
        wall = wall_us()
        for probe in self.probes.values():
            hb = probe.clock.idle(now, wall - probe.offset_us, self._idle_s)
            if hb is not None:
                self.counters["heartbeats_emitted"] += 1
                out.append(hb)

    def close(self) -> list[SourceRecord]:
        if self.finished:
            return []
        self.finished = True
        self.sock.close(0)
        self.ctx.term()
        return [EndOfSource(sid) for sid in self.probes]
