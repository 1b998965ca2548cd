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
    """Index of the record to truncate: a large server data segment in the last ~8 % of the capture."""
    n = len(order)
    start = int(n * 0.92)
    cands = [i for i in range(start, n) if order[i][3].d != C2S and order[i][3].length > 64]
    if not cands:
        cands = [i for i in range(start, n) if order[i][3].length > 0] or [n - 1]
    return rng.choice(cands)


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
