"""Live capture from a network interface (capture-and-http.md §2.3).

Two backends give the same ``LiveCapture`` interface (a selectable fd and ``read()`` of raw frames):

* **pcapy-ng** (the ``live`` extra; its wheel bundles libpcap): BPF compiled by libpcap, kernel buffer
  ``capture.buffer_bytes``, snap length ``capture.snaplen``, 100 ms read timeout, non-blocking reads
  driven by ``select`` — libpcap's own blocking reads can hang forever on an idle TPACKET_V3 ring
  (shared/notes/feasibility.md §a). pcapy-ng 2.1 has no ``set_immediate_mode``, so a packet may wait for
  the 100 ms block timeout before it is delivered; ``next_batch`` hands over a whole ring block per call.
  On a loopback interface the socket also gets ``PACKET_IGNORE_OUTGOING``: every ``lo`` packet passes
  the packet taps twice (sent, then received), and libpcap only discards the sent copy in user space,
  after it has taken ring space and, when the ring is full, been counted as a second kernel drop.
* **AF_PACKET** (no dependency; used when pcapy-ng is missing, or on request): a raw socket, with
  ``PACKET_IGNORE_OUTGOING`` on loopback only (so ``lo`` packets are seen once, while the host's own
  outgoing packets on a real interface are kept), kernel timestamps (``SO_TIMESTAMPNS``)
  and, for ``--bpf-filter``, the classic BPF program printed by ``tcpdump -dd`` attached with
  ``SO_ATTACH_FILTER``.

``LiveSource`` turns either into the engine's polled records: segments, heartbeats when event time
crosses ``capture.heartbeat_s`` and idle heartbeats at ``max(event time, wall clock − 50 ms)``.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import select
import shutil
import socket
import struct
import subprocess
import time
from collections import Counter
from typing import Any

from heron_core.capture.decode import decode_span
from heron_core.capture.source import SourceRecord
from heron_core.capture.sources import CaptureError, EventClock, SourceSpec, wall_us
from heron_core.config import Config
from heron_core.records import EndOfSource

log = logging.getLogger("heron")

READ_TIMEOUT_MS = 100
IDLE_SLACK_US = 50_000
"""Idle heartbeats trail the wall clock by 50 ms, so a packet already in the kernel ring is not late."""
_STATS_PERIOD_S = 1.0
_BATCH = 512

# Linux constants the socket module does not export.
_ETH_P_ALL = 0x0003
_SOL_PACKET = 263
_PACKET_STATISTICS = 6
_PACKET_IGNORE_OUTGOING = 23
_SO_ATTACH_FILTER = 26
_SO_TIMESTAMPNS = 35
_SO_RCVBUFFORCE = 33
_SIOCGIFHWADDR = 0x8927
_ARPHRD_ETHER = 1
_ARPHRD_LOOPBACK = 772
_LINKTYPE_ETHERNET = 1
_LINKTYPE_RAW = 101
# pcap_activate() status codes
_PCAP_ERROR_NO_SUCH_DEVICE = -5
_PCAP_ERROR_PERM_DENIED = -8
_PCAP_ERROR_IFACE_NOT_UP = -9
_PCAP_ERROR_PROMISC_PERM_DENIED = -11

Span = tuple[int, Any, int, int]
"""A captured frame as ``(ts_us, buffer, start, end)``: ``buffer[start:end]`` is the frame."""


def _permission_error(iface: str) -> CaptureError:
    return CaptureError(f"-i {iface}", "capture needs root or CAP_NET_RAW")


def _ignore_outgoing(fd: int) -> bool:
    """Set ``PACKET_IGNORE_OUTGOING`` on a packet socket we do not own as a Python object (libpcap's);
    False when the kernel lacks it (< 4.20)."""
    s = socket.socket(fileno=os.dup(fd))  # a duplicate: closing it leaves libpcap's descriptor open
    try:
        s.setsockopt(_SOL_PACKET, _PACKET_IGNORE_OUTGOING, 1)
        return True
    except OSError:
        return False
    finally:
        s.close()


def _loopback_names() -> frozenset[str]:
    """Names of the loopback interfaces: on ``any``, their outgoing copies are the duplicates to skip."""
    try:
        names = [name for _index, name in socket.if_nameindex()]
    except OSError:
        return frozenset({"lo"})
    return frozenset(n for n in names if _arphrd(n) == _ARPHRD_LOOPBACK) or frozenset({"lo"})


class PcapyCapture:
    """libpcap through pcapy-ng, non-blocking, read in ring-block batches."""

    def __init__(self, iface: str, bpf_filter: str | None, cfg: Config) -> None:
        import pcapy  # the 'live' extra

        self.iface = iface
        try:
            p = pcapy.create(iface)
            p.set_snaplen(cfg.capture_snaplen)
            p.set_timeout(READ_TIMEOUT_MS)
            p.set_buffer_size(cfg.capture_buffer_bytes)
            rc = p.activate()  # pcapy-ng returns libpcap's status instead of raising
        except pcapy.PcapError as exc:
            msg = str(exc)
            low = msg.lower()
            if "permission" in low or "not permitted" in low:
                raise _permission_error(iface) from None
            if "no such device" in low or "doesn't exist" in low or "not found" in low:
                raise CaptureError(f"-i {iface}", "no such interface") from None
            raise CaptureError(f"-i {iface}", msg) from None
        if isinstance(rc, int) and rc < 0:
            if rc in (_PCAP_ERROR_PERM_DENIED, _PCAP_ERROR_PROMISC_PERM_DENIED):
                raise _permission_error(iface)
            if rc == _PCAP_ERROR_NO_SUCH_DEVICE:
                raise CaptureError(f"-i {iface}", "no such interface")
            if rc == _PCAP_ERROR_IFACE_NOT_UP:
                raise CaptureError(f"-i {iface}", "interface is down")
            raise CaptureError(f"-i {iface}", f"cannot capture (libpcap status {rc})")
        if bpf_filter:
            try:
                p.setfilter(bpf_filter)
            except pcapy.PcapError as exc:
                raise CaptureError("--bpf-filter", str(exc), usage=True) from None
        p.setnonblock(1)
        self._p = p
        self.linktype = p.datalink()
        self._fd = p.getfd()
        self.ignores_outgoing = _arphrd(iface) == _ARPHRD_LOOPBACK and _ignore_outgoing(self._fd)
        self._unpack = struct.Struct("=IIII").iter_unpack

    def fileno(self) -> int:
        return self._fd

    def read(self) -> list[Span]:
        """Every frame the ring holds now (non-blocking; [] when none)."""
        out: list[Span] = []
        while len(out) < 4 * _BATCH:
            buf, meta = self._p.next_batch(_BATCH)
            if not meta:
                break
            out.extend((sec * 1_000_000 + usec, buf, off, off + cap) for sec, usec, off, cap in self._unpack(meta))
        return out

    def kernel_drops(self) -> int:
        """Packets the kernel dropped since the capture opened (ring full / interface drops)."""
        _recv, drop, ifdrop = self._p.stats()
        return drop + ifdrop

    def close(self) -> None:
        try:
            self._p.close()
        except Exception:  # noqa: BLE001, S110 - closing twice is harmless, and close must not raise
            pass


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _tcpdump_bpf(iface: str, expr: str) -> bytes:
    """Classic BPF bytecode for ``expr`` on ``iface`` from ``tcpdump -dd`` (packed ``sock_filter``s)."""
    exe = shutil.which("tcpdump")
    if exe is None:
        raise CaptureError("--bpf-filter", "needs pcapy-ng or tcpdump (to compile the filter)", usage=True)
    proc = subprocess.run([exe, "-dd", "-i", iface, expr], capture_output=True, text=True, timeout=20, check=False)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["tcpdump failed"])[-1]
        raise CaptureError("--bpf-filter", why, usage=True)
    out = bytearray()
    for line in proc.stdout.splitlines():
        line = line.strip().strip(",").strip("{}").strip()
        if not line:
            continue
        code, jt, jf, k = (int(x.strip(), 0) for x in line.split(","))
        out += struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)
    return bytes(out)


class AfPacketCapture:
    """A raw ``AF_PACKET`` socket: the zero-dependency fallback (Linux)."""

    def __init__(self, iface: str, bpf_filter: str | None, cfg: Config) -> None:
        self.iface = iface
        arphrd = _arphrd(iface)
        if arphrd is None and iface != "any":
            raise CaptureError(f"-i {iface}", "no such interface")
        cooked = iface == "any" or arphrd not in (_ARPHRD_ETHER, _ARPHRD_LOOPBACK)
        kind = socket.SOCK_DGRAM if cooked else socket.SOCK_RAW
        try:
            # On one interface, protocol 0: the socket receives nothing until bind() names the interface and
            # ETH_P_ALL, so no packet of another interface, or one the filter would refuse, slips in first.
            # 'any' is not bound at all (an unbound socket hears every interface).
            s = socket.socket(socket.AF_PACKET, kind, socket.htons(_ETH_P_ALL) if iface == "any" else 0)
        except PermissionError:
            raise _permission_error(iface) from None
        # Loopback packets pass the taps twice; only there is the outgoing copy a duplicate. Elsewhere it is
        # the host's own traffic (a local agent's requests), which must be kept.
        self.ignores_outgoing = False
        if arphrd == _ARPHRD_LOOPBACK:
            try:
                s.setsockopt(_SOL_PACKET, _PACKET_IGNORE_OUTGOING, 1)
                self.ignores_outgoing = True
            except OSError:  # kernel < 4.20: skip them by hand below
                pass
        if iface == "any":
            self._skip_outgoing_on = _loopback_names()
        elif arphrd == _ARPHRD_LOOPBACK and not self.ignores_outgoing:
            self._skip_outgoing_on = frozenset({iface})
        else:
            self._skip_outgoing_on = frozenset()
        try:
            s.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, cfg.capture_buffer_bytes)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg.capture_buffer_bytes)
        s.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        if bpf_filter:
            if cooked:
                s.close()
                raise CaptureError("--bpf-filter", f"needs pcapy-ng on interface {iface}", usage=True)
            prog = _tcpdump_bpf(iface, bpf_filter)
            self._prog = ctypes.create_string_buffer(prog)  # must outlive the setsockopt call
            fprog = _SockFprog(len(prog) // 8, ctypes.addressof(self._prog))
            s.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, bytes(fprog))
        try:
            if iface != "any":
                s.bind((iface, _ETH_P_ALL))  # CPython applies htons itself
        except OSError as exc:
            s.close()
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise CaptureError(f"-i {iface}", "no such interface") from None
            raise CaptureError(f"-i {iface}", exc.strerror or str(exc)) from None
        s.setblocking(False)
        self._s = s
        self.linktype = _LINKTYPE_RAW if cooked else _LINKTYPE_ETHERNET
        self._snaplen = cfg.capture_snaplen
        self._buf = bytearray(self._snaplen)
        self._anc = socket.CMSG_SPACE(16)
        self._drops = 0

    def fileno(self) -> int:
        return self._s.fileno()

    def read(self) -> list[Span]:
        out: list[Span] = []
        buf = self._buf
        view = memoryview(buf)
        s = self._s
        while len(out) < 4 * _BATCH:
            try:
                n, anc, _flags, addr = s.recvmsg_into([view], self._anc)
            except (BlockingIOError, InterruptedError):
                break
            if addr[2] == socket.PACKET_OUTGOING and addr[0] in self._skip_outgoing_on:
                continue
            ts = 0
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == _SO_TIMESTAMPNS and len(data) >= 16:
                    sec, nsec = struct.unpack_from("qq", data)
                    ts = sec * 1_000_000 + nsec // 1000
            if not ts:
                ts = wall_us()
            frame = bytes(view[:n])
            out.append((ts, frame, 0, n))
        return out

    def kernel_drops(self) -> int:
        try:
            raw = self._s.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 8)
            _packets, drops = struct.unpack("II", raw)  # the kernel resets them on every read
            self._drops += drops
        except OSError:
            pass
        return self._drops

    def close(self) -> None:
        self._s.close()


def _arphrd(iface: str) -> int | None:
    """The interface's hardware type (``ARPHRD_*``), or None if there is no such interface.

    Asked with ``SIOCGIFHWADDR`` rather than read from ``/sys/class/net``: sysfs shows the network
    namespace it was mounted in, which is not ours after ``unshare -n`` or ``ip netns exec`` without a
    remount, while the ioctl answers for the namespace of the socket."""
    if not iface or len(iface.encode()) >= 16:
        return None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            res = fcntl.ioctl(s.fileno(), _SIOCGIFHWADDR, struct.pack("16s16x", iface.encode()))
    except OSError:
        return None
    return struct.unpack_from("H", res, 16)[0]  # ifr_hwaddr.sa_family


def open_capture(iface: str, bpf_filter: str | None, cfg: Config, backend: str = "auto") -> Any:
    """Open ``iface`` with pcapy-ng, or with AF_PACKET if pcapy-ng is missing (or ``backend`` says so)."""
    if backend in ("auto", "pcapy"):
        try:
            import pcapy  # noqa: F401
        except ImportError:
            if backend == "pcapy":
                raise CaptureError(f"-i {iface}", "pcapy-ng is not installed (pip install 'heron-tui[live]')")
        else:
            return PcapyCapture(iface, bpf_filter, cfg)
    if not hasattr(socket, "AF_PACKET"):
        raise CaptureError(f"-i {iface}", "live capture needs pcapy-ng on this platform")
    return AfPacketCapture(iface, bpf_filter, cfg)


class LiveSource:
    """A live interface as a polled ``RecordSource`` (one source, id = the interface name)."""

    def __init__(self, spec: SourceSpec, counters: Counter, cfg: Config) -> None:
        assert spec.iface is not None
        self.cap = open_capture(spec.iface, spec.bpf_filter, cfg, spec.capture_backend)
        self.source_id = spec.source_id or spec.iface
        self.counters = counters
        self.cfg = cfg
        self.finished = False
        self.clock = EventClock(self.source_id, cfg)
        self._idle_s = cfg.capture_heartbeat_s
        self._next_stats = time.monotonic() + _STATS_PERIOD_S
        self._fd = self.cap.fileno()

    def poll(self, timeout_s: float) -> list[SourceRecord]:
        if self.finished:
            return []
        ready, _, _ = select.select([self._fd], [], [], min(max(timeout_s, 0.0), READ_TIMEOUT_MS / 1000))
        frames = self.cap.read() if ready else []
        out: list[SourceRecord] = []
        now = time.monotonic()
        if frames:
            self._records(frames, out)
            self.clock.last_packet_wall = now
        else:
            hb = self.clock.idle(now, wall_us() - IDLE_SLACK_US, self._idle_s)
            if hb is not None:
                self.counters["heartbeats_emitted"] += 1
                out.append(hb)
        if now >= self._next_stats:
            self._next_stats = now + _STATS_PERIOD_S
            self.counters["packets_dropped_kernel"] = self.cap.kernel_drops()
        return out

    def _records(self, frames: list[Span], out: list[SourceRecord]) -> None:
        sid = self.source_id
        lt = self.cap.linktype
        c = self.counters
        clock = self.clock
        nbytes = decoded = 0
        for ts, buf, start, end in frames:
            nbytes += end - start
            hb = clock.packet(ts)
            if hb is not None:
                c["heartbeats_emitted"] += 1
                out.append(hb)
            seg = decode_span(sid, ts, lt, buf, start, end, c)
            if seg is not None:
                decoded += 1
                out.append(seg)
        c["packets_read"] += len(frames)
        c["bytes_read"] += nbytes
        c["packets_decoded"] += decoded

    def close(self) -> list[SourceRecord]:
        if self.finished:
            return []
        self.finished = True
        try:
            self.counters["packets_dropped_kernel"] = self.cap.kernel_drops()
        finally:
            self.cap.close()
        return [EndOfSource(self.source_id)]
