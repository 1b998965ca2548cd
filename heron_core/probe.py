"""``heron probe -i IFACE --to ENDPOINT``: capture on this host and push batches to a remote heron.

The probe is the sending side of capture-and-http.md §2.4: it captures like ``heron run -i`` (same
backends, BPF filter, snap length), wraps the raw frames into the ZMQ batch format and PUSHes them to a
``heron run --zmq ENDPOINT`` that binds the PULL side. It decodes nothing; the receiving reader does.

* Frames must be Ethernet. Other link types (``any`` gives Linux cooked frames, tun devices raw IP) get
  a synthetic Ethernet header (zero MAC addresses, the frame's ethertype). A frame longer than the
  format's 65535-byte limit is cut there (the receiver sees a truncated segment, a gap) — only
  possible on loopback, whose MTU is 64 KiB.
* A batch is sent when it holds ``pipeline.batch_segments`` packets or its first packet is 50 ms old;
  while nothing is captured the probe sends a heartbeat frame every ``capture.heartbeat_s``, so the
  receiver's watermark for this probe keeps moving.
* Sends never block capture: when the receiver is gone and ZMQ's send queue is full, batches are
  dropped and counted (reported at exit).
"""

from __future__ import annotations

import logging
import struct
import time
import uuid
from collections import Counter
from typing import Any

from heron_core.capture.live import open_capture
from heron_core.capture.sources import CaptureError, wall_us
from heron_core.capture.zmq_source import MAX_FRAME, encode_batch, heartbeat_record
from heron_core.config import Config
from heron_core.parallel.control import Shutdown

log = logging.getLogger("heron")

FLUSH_AGE_S = 0.05
_SEND_HWM = 1000
_ZERO_MACS = b"\x00" * 12
_ETH_IPV4 = b"\x08\x00"
_ETH_IPV6 = b"\x86\xdd"


def to_ethernet(linktype: int, frame: bytes) -> bytes | None:
    """The frame as Ethernet, or None when its link layer cannot be mapped (counted by the caller)."""
    if linktype == 1:
        return frame
    if linktype == 113 and len(frame) >= 16:  # Linux cooked v1: protocol at 14
        return _ZERO_MACS + frame[14:16] + frame[16:]
    if linktype == 276 and len(frame) >= 20:  # Linux cooked v2: protocol at 0
        return _ZERO_MACS + frame[0:2] + frame[20:]
    if linktype in (101, 12, 14, 228, 229) and frame:
        version = frame[0] >> 4
        if version == 4:
            return _ZERO_MACS + _ETH_IPV4 + frame
        if version == 6:
            return _ZERO_MACS + _ETH_IPV6 + frame
        return None
    if linktype in (0, 108) and len(frame) >= 4:  # BSD loopback: 4-byte address family
        fam_be = struct.unpack_from(">I", frame)[0]
        fam_le = struct.unpack_from("<I", frame)[0]
        if 2 in (fam_be, fam_le):
            return _ZERO_MACS + _ETH_IPV4 + frame[4:]
        if {fam_be, fam_le} & {24, 28, 30}:
            return _ZERO_MACS + _ETH_IPV6 + frame[4:]
    return None


class ProbeSender:
    """Batches frames and pushes them; ``counters`` says what was sent, cut, dropped."""

    def __init__(self, endpoint: str, probe_id: bytes, cfg: Config) -> None:
        try:
            import zmq
        except ImportError:
            raise CaptureError(f"--to {endpoint}", "pyzmq is not installed (pip install 'heron-tui[live]')")
        self._zmq = zmq
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.SNDHWM, _SEND_HWM)
        self.sock.setsockopt(zmq.LINGER, 2000)  # at exit, give queued batches 2 s to leave
        try:
            self.sock.connect(endpoint)
        except zmq.ZMQError as exc:
            raise CaptureError(f"--to {endpoint}", str(exc)) from None
        self.probe_id = probe_id
        self.max_records = max(1, min(cfg.pipeline_batch_segments, 0xFFFF))
        self.pending: list[tuple[int, bytes, int]] = []
        self.first = 0.0
        self.counters: Counter = Counter()

    def add(self, ts_us: int, frame: bytes, orig_len: int) -> None:
        if len(frame) > MAX_FRAME:
            frame = frame[:MAX_FRAME]
            self.counters["frames_cut"] += 1
        if not self.pending:
            self.first = time.monotonic()
        self.pending.append((ts_us, frame, orig_len))
        if len(self.pending) >= self.max_records:
            self.flush()

    def due(self, now: float) -> bool:
        return bool(self.pending) and now - self.first >= FLUSH_AGE_S

    def flush(self) -> None:
        if not self.pending:
            return
        recs, self.pending = self.pending, []
        self._send(encode_batch(self.probe_id, recs), len(recs))

    def heartbeat(self) -> None:
        self._send(encode_batch(self.probe_id, [heartbeat_record(wall_us())]), 0)
        self.counters["heartbeats_sent"] += 1

    def _send(self, msg: bytes, npk: int) -> None:
        try:
            self.sock.send(msg, self._zmq.NOBLOCK)
        except self._zmq.Again:
            self.counters["batches_dropped"] += 1
            self.counters["packets_dropped"] += npk
            return
        self.counters["batches_sent"] += 1
        self.counters["packets_sent"] += npk

    def close(self) -> None:
        self.flush()
        self.sock.close()
        self.ctx.term()


def run_probe(
    iface: str, endpoint: str, bpf_filter: str | None, cfg: Config, probe_id: str | None = None,
    backend: str = "auto", shutdown: Shutdown | None = None,
) -> Counter:
    """Capture on ``iface`` and push to ``endpoint`` until a signal; returns the sender's counters.

    Raises ``CaptureError`` (one-line) when the interface or the endpoint cannot be opened."""
    import select

    pid = uuid.UUID(probe_id) if probe_id else uuid.uuid4()
    cap: Any = open_capture(iface, bpf_filter, cfg, backend)
    sender = ProbeSender(endpoint, pid.bytes, cfg)
    own = shutdown is None
    shutdown = shutdown or Shutdown().install()
    log.info("probe %s: capturing on %s, sending to %s", pid, iface, endpoint)
    fd = cap.fileno()
    last_activity = time.monotonic()
    hb_s = cfg.capture_heartbeat_s
    try:
        while not shutdown.requested:
            ready, _, _ = select.select([fd], [], [], FLUSH_AGE_S)
            now = time.monotonic()
            if ready:
                for ts, buf, start, end in cap.read():
                    frame = to_ethernet(cap.linktype, bytes(buf[start:end]))
                    if frame is None:
                        sender.counters["frames_unmapped"] += 1
                        continue
                    sender.add(ts, frame, end - start)
                    last_activity = now
            if sender.due(now):
                sender.flush()
            if now - last_activity >= hb_s:
                sender.flush()
                sender.heartbeat()
                last_activity = now
    finally:
        sender.counters["packets_dropped_kernel"] = cap.kernel_drops()
        cap.close()
        sender.close()
        if own:
            shutdown.restore()
    return sender.counters
