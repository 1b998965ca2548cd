"""eBPF chunks → TCP-like ``Segment``s, so TLS plaintext takes the same path as packets (docs/ebpf.md).

The reassembler, the HTTP parser and everything after them only know TCP flows. A TLS connection seen
by the probes is turned into one:

* **Flow key.** Each ``(pid, SSL*, generation)`` gets two synthetic endpoints in the IPv6 discard
  prefix ``100::/64`` (RFC 6666) and next to it: ``P`` (the process's side) and ``R`` (its peer), whose
  low 64 bits are two independent hashes of the triple. They live in the eBPF source's own ``source_id``, so they cannot collide with a
  real connection; they differ per triple, so the parallel reader's flow hash spreads connections over
  the workers, and both directions of one connection always land on the same worker.
* **Sequence numbers** are the byte offsets the BPF program keeps per direction (mod 2**32), so a lost
  chunk leaves a hole exactly its size and the reassembler's gap logic applies unchanged.
* **Opening.** When the first chunk of a connection starts at offset 0 with an HTTP request line (or
  the HTTP/2 preface) written by the process, a SYN from ``P`` and a SYN+ACK from ``R`` open the flow at
  offset 0. Otherwise (a connection already open when capture started) no SYN is sent and the
  reassembler's mid-stream pickup syncs on the next request line.
* **Only the client side.** Writes are the client direction (capture-and-http.md §2.5). A process
  that *reads* a request line is the TLS server of that connection (a local gateway or mock probed
  too): its flow is dropped and counted (``ebpf_server_flows_skipped``). When its client runs on this
  host, the client's own flow carries the same call; keeping both would store every call twice.
* **Closing.** A CLOSE event carries both final offsets: a FIN from each side at those positions.
  When a process is gone without a close (killed, or exited without ``SSL_free``), its connections
  get FINs at the last positions seen.
* **Losses the probe knows about.** A call longer than 8 × 32 KiB is cut: its last chunk is marked
  and the segment's ``wire_len`` covers the bytes not copied, so the reassembler reports them at once
  as a ``truncated`` gap; a chunk whose copy failed is an empty segment with the full ``wire_len``.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections import Counter
from dataclasses import dataclass

from heron_core.records import ACK, FIN, SYN, Endpoint, Process, Segment

from .frames import FLAG_COPY_FAILED, FLAG_TRUNCATED, KIND_CLOSE, KIND_WRITE, MAX_CHUNK, Event

_M = 0xFFFFFFFF
_ISN = _M  # the SYN occupies sequence number 2**32 − 1, so stream byte 0 is sequence number 0
_PREFIX_P = bytes.fromhex("0100000000000000")
_PREFIX_R = bytes.fromhex("0100000000000001")
_PORT_P = 1
_PORT_R = 2
_REQUEST = re.compile(rb"(?:GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS|CONNECT|TRACE) [^ \r\n]+ HTTP/1\.|PRI \* HTTP/2")


def endpoints(pid: int, conn: int, gen: int) -> tuple[Endpoint, Endpoint]:
    """The synthetic (process side, peer side) endpoints of one TLS connection generation."""
    key = struct.pack("<IQI", pid, conn, gen)
    # Two independent hashes: the reader routes by crc32(src) ^ crc32(dst), and CRC is linear, so two
    # addresses that differed in a fixed byte only would XOR to the same value for every connection.
    hp = hashlib.blake2b(key, digest_size=8, person=b"heron-ebpf-P").digest()
    hr = hashlib.blake2b(key, digest_size=8, person=b"heron-ebpf-R").digest()
    return (_PREFIX_P + hp, _PORT_P), (_PREFIX_R + hr, _PORT_R)


@dataclass(slots=True)
class _Conn:
    p: Endpoint
    r: Endpoint
    process: Process
    end_write: int = 0  # stream position after the last byte seen, per direction (for FINs on exit)
    end_read: int = 0
    role: str | None = None  # 'client' | 'server' once a request line showed which side the process is
    emitted: bool = False  # segments were sent for it (a SYN may only come first)


class ChunkConverter:
    """Turns decoded events of one eBPF source into segments (see the module doc).

    ``clock_offset_ns`` maps the events' CLOCK_MONOTONIC stamps to epoch time. Process identities come
    from the agent's PROC frames (``identity``); a pid without one gets ``exe`` None.
    """

    def __init__(self, source_id: str, clock_offset_ns: int, counters: Counter) -> None:
        self.source_id = source_id
        self.offset_ns = clock_offset_ns
        self.counters = counters
        self.conns: dict[tuple[int, int, int], _Conn] = {}
        self.procs: dict[int, Process] = {}
        self._dying: set[int] = set()  # pids found gone at the previous reap

    def ts_us(self, ts_ns: int) -> int:
        return (ts_ns + self.offset_ns) // 1000

    def identity(self, pid: int, comm: str, exe: str | None) -> None:
        self.procs[pid] = Process(pid, comm, exe)

    def _process(self, ev: Event) -> Process:
        p = self.procs.get(ev.pid)
        if p is None:
            p = self.procs[ev.pid] = Process(ev.pid, ev.comm, None)
        return p

    def event(self, ev: Event, out: list) -> None:
        """Append the segments of one event to ``out``."""
        ts = self.ts_us(ev.ts_ns)
        key = (ev.pid, ev.conn, ev.gen)
        if ev.kind == KIND_CLOSE:
            c = self.conns.pop(key, None)
            if c is not None and c.emitted and c.role != "server":
                self._fins(c, ev.offset, ev.aux, ts, out)
            return
        c = self.conns.get(key)
        if c is None:
            p, r = endpoints(*key)
            c = self.conns[key] = _Conn(p, r, self._process(ev))
        if c.role is None and ev.chunk == 0 and _REQUEST.match(ev.data):
            if ev.kind != KIND_WRITE:
                c.role = "server"
                self.counters["ebpf_server_flows_skipped"] += 1
            else:
                c.role = "client"
                if ev.offset == 0 and not c.emitted:  # the connection's first bytes: open it cleanly
                    out.append(Segment(self.source_id, ts, c.p, c.r, _ISN, 0, SYN, b"", 0, c.process))
                    out.append(Segment(self.source_id, ts, c.r, c.p, _ISN, 0, SYN | ACK, b"", 0, c.process))
        if c.role == "server":
            return
        c.emitted = True
        payload = ev.data
        wire_len = len(payload)
        if ev.flags & FLAG_COPY_FAILED:
            payload = b""
            wire_len = max(0, min(MAX_CHUNK, ev.aux - ev.chunk * MAX_CHUNK))
        if ev.flags & FLAG_TRUNCATED:
            call_end = ev.offset - ev.chunk * MAX_CHUNK + ev.aux
            wire_len = max(wire_len, call_end - ev.offset)
        if ev.kind == KIND_WRITE:
            src, dst = c.p, c.r
            c.end_write = max(c.end_write, ev.offset + wire_len)
        else:
            src, dst = c.r, c.p
            c.end_read = max(c.end_read, ev.offset + wire_len)
        out.append(Segment(self.source_id, ts, src, dst, ev.offset & _M, 0, 0, payload, wire_len, c.process))

    def _fins(self, c: _Conn, end_write: int, end_read: int, ts: int, out: list) -> None:
        sid = self.source_id
        out.append(Segment(sid, ts, c.p, c.r, end_write & _M, 0, FIN | ACK, b"", 0, c.process))
        out.append(Segment(sid, ts, c.r, c.p, end_read & _M, 0, FIN | ACK, b"", 0, c.process))

    def reap(self, ts_us: int, alive=None) -> list:
        """FINs for connections of processes that are gone (they will never send a CLOSE), and forget
        their identities. A pid is reaped only when found gone by two successive calls, so events it
        emitted just before exiting (still in the pipe) keep its identity and close normally.
        ``alive(pid)`` defaults to checking ``/proc``."""
        if alive is None:
            alive = _pid_alive
        out: list = []
        gone = {pid for pid in {k[0] for k in self.conns} | set(self.procs) if not alive(pid)}
        dead = gone & self._dying
        self._dying = gone - dead
        if not dead:
            return out
        for key in [k for k in self.conns if k[0] in dead]:
            c = self.conns.pop(key)
            if c.emitted and c.role != "server":
                self._fins(c, c.end_write, c.end_read, ts_us, out)
        for pid in dead:
            self.procs.pop(pid, None)
        return out


def _pid_alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")
