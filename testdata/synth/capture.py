"""Merging packetized connections into one capture file (time-interleaved), with an optional cut end.

Connections are merged by timestamp (ties by connection order) so many concurrent flows interleave as in
a real capture.  A "capture cut" marks every segment from a chosen point on as not captured and writes
the first of them as a truncated last record, like a tcpdump killed mid-write.
"""
from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

from .frames import FrameEncoder, LinkSpec
from .pcapio import CaptureWriter
from .tcpflow import C2S, ConnTrace, Seg, seq_of


@dataclass
class WriteOptions:
    link: LinkSpec
    fmt: str = "pcap"
    nanosecond: bool = False
    tcp_checksum: bool = True


def merged(traces: list[ConnTrace]) -> list[tuple[int, int, int, Seg]]:
    """All segments of all connections in capture order: ``(ts, conn, index, seg)``."""
    streams = [[(s.ts, ci, i, s) for i, s in enumerate(t.segs)] for ci, t in enumerate(traces)]
    return list(heapq.merge(*streams, key=lambda x: (x[0], x[1], x[2])))


def choose_cut(order: list[tuple[int, int, int, Seg]], rng: random.Random) -> int:
    """Index of the record to truncate: a large server data segment in the last ~8 % of the capture.

    A cut that would leave captured bytes stranded past a missing range (a reordered segment whose
    predecessor falls after the cut) is passed over for the next candidate: at end of source the engine
    skips such a gap (damage ``gap``, watermark +∞, capture-and-http.md §2.6/§5.4), which the truth
    model of a plain cut (aborted at the flow's last packet) does not describe.
    """
    n = len(order)
    start = int(n * 0.92)
    cands = [i for i in range(start, n) if order[i][3].d != C2S and order[i][3].length > 64]
    if not cands:
        cands = [i for i in range(start, n) if order[i][3].length > 0] or [n - 1]
    first = cands.index(rng.choice(cands))
    for k in range(len(cands)):
        i = cands[(first + k) % len(cands)]
        if not _strands_bytes(order, i):
            return i
    # heavy reordering can leave no clean data record: cut a bare ACK/FIN near the end instead
    for i in range(n - 1, start - 1, -1):
        if not order[i][3].length and not _strands_bytes(order, i):
            return i
    return cands[first]


def _hole_starts(segs: list[Seg], d: int, skip: set[int]) -> set[int]:
    """Stream offsets where captured data of direction ``d`` (minus ``skip``ped segments) has a hole
    followed by more captured data."""
    spans = sorted((s.off, s.off + (s.length if s.snap is None else s.snap))
                   for s in segs if s.d == d and s.length and id(s) not in skip)
    holes: set[int] = set()
    nxt = 0
    for a, b in spans:
        if a > nxt:
            holes.add(nxt)
        nxt = max(nxt, b)
    return holes


def _strands_bytes(order: list[tuple[int, int, int, Seg]], cut: int) -> bool:
    """Whether cutting at ``cut`` opens a hole that did not exist without the cut (drops and snaplen
    cuts are holes either way, and are modelled by the truth), or drops a snaplen-cut segment."""
    if any(s.snap is not None for _, _, _, s in order[cut:]):
        return True  # a snaplen-cut segment must stay in the file, or its damage is a plain gap
    by_conn: dict[int, list[Seg]] = {}
    for _, ci, _, s in order:
        by_conn.setdefault(ci, []).append(s)
    gone = {id(s) for _, _, _, s in order[cut:]}
    for ci in {ci for _, ci, _, _ in order[cut:]}:
        segs = by_conn[ci]
        for d in (0, 1):
            if _hole_starts(segs, d, gone) != _hole_starts(segs, d, set()):
                return True
    return False


def mark_cut(order: list[tuple[int, int, int, Seg]], cut: int) -> None:
    for _, _, _, s in order[cut:]:
        s.cut = True


def write_capture(path: str, traces: list[ConnTrace], opts: WriteOptions,
                  order: list[tuple[int, int, int, Seg]] | None = None, cut: int | None = None) -> CaptureWriter:
    """Encode and write every captured segment; returns the (closed) writer for its counters."""
    if order is None:
        order = merged(traces)
    encs: list[tuple[FrameEncoder, FrameEncoder]] = []
    for t in traces:
        sp = t.spec
        encs.append((FrameEncoder(opts.link, sp.client_ip, sp.server_ip, sp.client_port, sp.server_port, True,
                                  tcp_checksum=opts.tcp_checksum),
                     FrameEncoder(opts.link, sp.server_ip, sp.client_ip, sp.server_port, sp.client_port, False,
                                  tcp_checksum=opts.tcp_checksum)))
    w = CaptureWriter(path, opts.link.linktype, fmt=opts.fmt, nanosecond=opts.nanosecond)
    for i, (ts, ci, _, s) in enumerate(order):
        trace = traces[ci]
        payload = trace.streams[s.d][s.off:s.off + s.length] if s.length else b""
        seq, ack = seq_of(trace, s)
        frame = encs[ci][s.d].encode(seq, ack, s.flags, payload, ts)
        if cut is not None and i == cut:
            w.write_cut(ts, frame, len(frame) // 2)
            break
        if s.snap is not None:
            captured = frame[:len(frame) - s.length + s.snap]
            for _ in range(s.copies):
                w.write(ts, captured, len(frame))
        else:
            for _ in range(s.copies):
                w.write(ts, frame)
    w.close()
    return w
