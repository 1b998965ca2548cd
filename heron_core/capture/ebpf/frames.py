"""The byte protocol between the eBPF agent (system Python + bcc) and heron (docs/ebpf.md).

The agent writes length-prefixed frames on its stdout; ``EbpfSource`` reads them from a pipe. This
module is **stdlib-only** and imported by both sides (the agent runs under ``/usr/bin/python3``, where
heron is not installed, and imports it as a sibling file), so the two can never disagree on a layout.

Frame: ``u32 length (little-endian, counts the type byte and the body) | u8 type | body``.

=========  ========================================================================================
type       body
=========  ========================================================================================
HELLO      JSON ``{version, clock_offset_ns, pid}``: probes are compiled and attached; event
           ``ts_ns`` (CLOCK_MONOTONIC) + ``clock_offset_ns`` = epoch nanoseconds
EVENT      one raw BPF event: ``EVENT_HEADER`` then ``len`` data bytes (see ``program.bpf.c``)
PROC       JSON ``{pid, comm, exe}``: identity of a process, sent before its first event
TARGETS    JSON ``{attached: [{path, kind, symbols}], probes, failed: [{path, error}]}`` after a scan
STATS      JSON ``{events_lost, chunks_dropped, probes}`` (cumulative), about once a second
ERROR      UTF-8 ``what: why`` — the agent cannot run; it exits after sending it
LOG        UTF-8 one line for heron's log (warnings the user should see)
=========  ========================================================================================
"""

from __future__ import annotations

import json
import struct
from typing import Any, NamedTuple

PROTOCOL_VERSION = 1

HELLO = 1
EVENT = 2
PROC = 3
TARGETS = 4
STATS = 5
ERROR = 6
LOG = 7

KIND_WRITE = 1
"""The process wrote plaintext (``SSL_write*``): data the process sends."""
KIND_READ = 2
"""The process read plaintext (``SSL_read*``): data the process received."""
KIND_CLOSE = 3
"""``SSL_shutdown``/``SSL_free``/``SSL_read`` = 0: the TLS connection ended."""

FLAG_TRUNCATED = 1
"""Last chunk of a call longer than ``MAX_CHUNKS`` × ``MAX_CHUNK``: bytes after it were not copied."""
FLAG_COPY_FAILED = 2
"""``bpf_probe_read_user`` failed: the chunk carries no data (its bytes become a gap)."""

MAX_CHUNK = 32768
MAX_CHUNKS = 8

EVENT_HEADER = struct.Struct("<BBHIIIQQQQII16s")
"""kind, flags, chunk, pid, tid, len, conn, ts_ns, offset, aux, gen, pad, comm — the C ``struct
event_t`` header (72 bytes). For data events ``offset`` is the stream position of the first byte and
``aux`` the whole call's length; for CLOSE ``offset``/``aux`` are the final write/read positions."""

_PREFIX = struct.Struct("<IB")
MAX_FRAME = 1 << 20
"""Frames are at most an event (72 + 32 KiB) or a short JSON document; anything larger is corrupt."""


class Event(NamedTuple):
    """One decoded BPF event."""

    kind: int
    flags: int
    chunk: int
    pid: int
    tid: int
    conn: int
    gen: int
    ts_ns: int
    offset: int
    aux: int
    comm: str
    data: bytes


def encode(ftype: int, body: bytes) -> bytes:
    return _PREFIX.pack(len(body) + 1, ftype) + body


def encode_json(ftype: int, obj: Any) -> bytes:
    return encode(ftype, json.dumps(obj, separators=(",", ":")).encode())


def encode_event(ev: Event) -> bytes:
    """An EVENT frame as the agent would forward it (tests and tools build events with this)."""
    comm = ev.comm.encode()[:15]
    head = EVENT_HEADER.pack(ev.kind, ev.flags, ev.chunk, ev.pid, ev.tid, len(ev.data), ev.conn, ev.ts_ns,
                             ev.offset, ev.aux, ev.gen, 0, comm)
    return encode(EVENT, head + ev.data)


def decode_event(body: bytes | memoryview) -> Event | None:
    """Parse an EVENT body; None when it is shorter than its header says (a corrupt frame)."""
    if len(body) < EVENT_HEADER.size:
        return None
    kind, flags, chunk, pid, tid, n, conn, ts, off, aux, gen, _pad, comm = EVENT_HEADER.unpack_from(body)
    end = EVENT_HEADER.size + n
    if end > len(body) or kind not in (KIND_WRITE, KIND_READ, KIND_CLOSE):
        return None
    return Event(kind, flags, chunk, pid, tid, conn, gen, ts, off, aux,
                 comm.split(b"\0", 1)[0].decode("utf-8", "replace"), bytes(body[EVENT_HEADER.size:end]))


class FrameError(ValueError):
    """The stream is not a frame stream (a length that cannot be right): the agent's output is corrupt."""


class FrameReader:
    """Incremental splitter: ``feed`` bytes as they arrive from the pipe, get ``(type, body)`` frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buf
        buf += data
        out: list[tuple[int, bytes]] = []
        pos = 0
        size = len(buf)
        while size - pos >= _PREFIX.size:
            n, ftype = _PREFIX.unpack_from(buf, pos)
            if n < 1 or n > MAX_FRAME:
                raise FrameError(f"bad frame length {n}")
            end = pos + 4 + n
            if end > size:
                break
            out.append((ftype, bytes(buf[pos + _PREFIX.size:end])))
            pos = end
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back (non-zero at EOF means the agent died mid-frame)."""
        return len(self._buf)
