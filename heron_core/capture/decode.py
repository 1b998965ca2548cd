"""Link, IP and TCP decoding of one frame into a ``Segment`` (capture-and-http.md §2.2, §4).

This runs once per packet in the reader, so the common case (Ethernet or Linux cooked + IPv4 without
options + TCP) is decoded by a single precompiled ``Struct.unpack_from`` over the headers; everything
else (other link types, VLAN/QinQ/MPLS, IP options, IPv6 extension headers) goes through the general
path. The file source decodes straight out of the reader's buffer (``decode_span``), so the payload is
the only copy made of a packet.

Frames that yield no segment are counted, never raised on: ``not_ip``, ``not_tcp``, ``ip_fragments``
(no reassembly), ``packets_malformed`` (headers inconsistent or cut before the end of the TCP base
header), ``unsupported_linktype``. A segment whose payload was cut by the snap length carries the
header-derived ``wire_len`` and counts ``packets_truncated``. Checksums are not verified.
"""

from __future__ import annotations

from collections import Counter
from mmap import mmap
from struct import Struct

from heron_core.records import Segment

# Fast path: link header + IPv4 (IHL 5) + TCP up to the flags in one unpack, for the link types that
# carry an ethertype at a fixed place (Ethernet; Linux cooked v1/v2, which `tcpdump -i any` writes):
# ethertype | ver/ihl, tot_len, frag, proto, src, dst | sport, dport, seq, ack, off/flags
_IP4_TCP = "BxH2xHxB2x4s4s HHIIH"
_FAST = {
    1: (Struct("!12xH " + _IP4_TCP).unpack_from, 14),  # Ethernet: ethertype at 12
    113: (Struct("!14xH " + _IP4_TCP).unpack_from, 16),  # SLL: protocol at 14
    276: (Struct("!H18x " + _IP4_TCP).unpack_from, 20),  # SLL2: protocol at 0
}
# The same for IPv6 without extension headers (TCP right after the fixed header): ethertype |
# ver/tc/flow, payload_len, next_header, src, dst | sport, dport, seq, ack, off/flags
_IP6_TCP = "IHBx16s16s HHIIH"
_FAST6 = {
    1: Struct("!12xH " + _IP6_TCP).unpack_from,
    113: Struct("!14xH " + _IP6_TCP).unpack_from,
    276: Struct("!H18x " + _IP6_TCP).unpack_from,
}
_IP4 = Struct("!BxH2xHxB2x4s4s").unpack_from  # ver/ihl, tot_len, flags/frag_off, proto, src, dst
_IP6 = Struct("!IHBx16s16s").unpack_from  # ver/tc/flow, payload_len, next_header, src, dst
_TCP = Struct("!HHIIH").unpack_from  # sport, dport, seq, ack, data offset/flags
_U16 = Struct("!H").unpack_from
_U32_LE = Struct("<I").unpack_from
_U32_BE = Struct(">I").unpack_from

# ``Segment(...)`` runs the namedtuple's Python-level ``__new__``; building the same tuple through
# ``tuple.__new__`` is done in C and saves ~0.3 µs a packet (the tests compare against ``Segment(...)``, so
# a field added to ``Segment`` cannot go unnoticed here).
_new = tuple.__new__

Buffer = bytes | mmap
"""What frames are read from: a packet's own bytes, or the reader's buffer with ``start``/``end``."""

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
_ETH_VLAN = frozenset((0x8100, 0x88A8, 0x9100))
_ETH_MPLS = frozenset((0x8847, 0x8848))

_AF_INET = 2
_AF_INET6 = frozenset((24, 28, 30))  # BSD/OpenBSD, FreeBSD, macOS/iOS

# IPv6 extension headers walked to reach TCP (Fragment, 44, is handled apart).
_IP6_HOPOPTS, _IP6_ROUTING, _IP6_FRAGMENT, _IP6_AH, _IP6_DSTOPTS = 0, 43, 44, 51, 60
_IP6_EXT = frozenset((_IP6_HOPOPTS, _IP6_ROUTING, _IP6_FRAGMENT, _IP6_AH, _IP6_DSTOPTS))
_TCP_PROTO = 6

# Result kinds of the link layer.
_V4, _V6, _NOT_IP, _BAD, _UNSUPPORTED = 4, 6, 0, -1, -2

LINKTYPES = frozenset((0, 1, 12, 14, 101, 108, 113, 228, 229, 276))
"""Link types ``decode_frame`` understands; others count ``unsupported_linktype``."""


def decode_frame(source_id: str, ts_us: int, linktype: int, data: bytes, counters: Counter) -> Segment | None:
    """Decode one captured frame into a TCP ``Segment``, or count why not and return None."""
    seg = decode_span(source_id, ts_us, linktype, data, 0, len(data), counters)
    if seg is not None:
        counters["packets_decoded"] += 1
    return seg


def decode_span(
    source_id: str, ts_us: int, linktype: int, buf: Buffer, start: int, end: int, counters: Counter
) -> Segment | None:
    """``decode_frame`` of the frame ``buf[start:end]`` without copying it out first, and without
    counting ``packets_decoded``: the caller counts returned segments in a local and adds them to the
    counters in batches, since a ``Counter`` increment costs a tenth of the whole decode.

    ``buf`` may extend beyond ``end`` (it is the reader's buffer), so every read is bounds-checked
    against ``end``; nothing relies on ``struct.error``.
    """
    fast = _FAST.get(linktype)
    if fast is not None and end - start >= fast[1] + 40:
        unpack, ip_off = fast
        et, vihl, tot_len, frag, proto, src, dst, sport, dport, seq, ack, offflags = unpack(buf, start)
        if et == ETH_IPV4 and vihl == 0x45 and proto == _TCP_PROTO and not frag & 0x3FFF:
            ip_off += start
            if tot_len:
                ip_end = ip_off + tot_len
                stop = ip_end if ip_end < end else end  # trim link padding / snaplen cut
            else:
                ip_end = stop = end
            doff = (offflags >> 10) & 0x3C
            poff = ip_off + 20 + doff
            wire_len = ip_end - poff
            if doff < 20 or wire_len < 0:
                counters["packets_malformed"] += 1
                return None
            payload = buf[poff:stop]
            if len(payload) < wire_len:
                counters["packets_truncated"] += 1
            return _new(
                Segment,
                (
                    source_id,
                    ts_us,
                    (src, sport),
                    (dst, dport),
                    seq,
                    ack,
                    offflags & 0xFF,
                    payload,
                    wire_len,
                    None,
                ),
            )
        if et == ETH_IPV6 and end - start >= fast[1] + 60:
            seg = _fast_ipv6(source_id, ts_us, linktype, buf, start, end, fast[1], counters)
            if seg is not _SLOW:
                return seg
    kind, off = _link(linktype, buf, start, end)
    if kind == _V4:
        return _ipv4(source_id, ts_us, buf, off, end, counters)
    if kind == _V6:
        return _ipv6(source_id, ts_us, buf, off, end, counters)
    if kind == _NOT_IP:
        counters["not_ip"] += 1
    elif kind == _BAD:
        counters["packets_malformed"] += 1
    else:
        counters["unsupported_linktype"] += 1
    return None


_SLOW = object()  # _fast_ipv6: not the common shape, take the general path


def _fast_ipv6(
    source_id: str, ts_us: int, linktype: int, buf: Buffer, start: int, end: int, ip_off: int, counters: Counter
) -> Segment | None | object:
    """IPv6 whose next header is TCP, in one unpack (about a sixth of the packets of a dual-stack capture;
    the general path costs five calls a packet). Anything else returns ``_SLOW``; the checks and results
    are those of ``_ipv6`` + ``_tcp`` for this shape."""
    _et, vtf, plen, nxt, src, dst, sport, dport, seq, ack, offflags = _FAST6[linktype](buf, start)
    if vtf >> 28 != 6 or nxt != _TCP_PROTO:
        return _SLOW
    ip_off += start
    toff = ip_off + 40
    ip_end = toff + plen if plen else end  # 0: jumbogram / offload, use what was captured
    doff = (offflags >> 10) & 0x3C
    poff = toff + doff
    wire_len = ip_end - poff
    if doff < 20 or wire_len < 0:
        counters["packets_malformed"] += 1
        return None
    payload = buf[poff : ip_end if ip_end < end else end]  # noqa: FURB136 - no call per packet
    if len(payload) < wire_len:
        counters["packets_truncated"] += 1
    return _new(
        Segment,
        (source_id, ts_us, (src, sport), (dst, dport), seq, ack, offflags & 0xFF, payload, wire_len, None),
    )


def _link(linktype: int, buf: Buffer, start: int, end: int) -> tuple[int, int]:
    """Strip the link layer: ``(kind, offset of the IP header)``."""
    n = end - start
    if linktype == 1:  # Ethernet
        if n < 14:
            return _BAD, 0
        return _ethertype(buf, _U16(buf, start + 12)[0], start + 14, end)
    if linktype in (101, 12, 14):  # raw IP, version from the first nibble
        return _by_nibble(buf, start) if n else (_BAD, 0)
    if linktype == 228:
        return (_V4, start) if n else (_BAD, 0)
    if linktype == 229:
        return (_V6, start) if n else (_BAD, 0)
    if linktype == 0 or linktype == 108:  # BSD NULL (host order, try both) / OpenBSD loop (network order)
        if n < 4:
            return _BAD, 0
        be = _U32_BE(buf, start)[0]
        le = be if linktype == 108 else _U32_LE(buf, start)[0]
        if be == _AF_INET or le == _AF_INET:
            return _V4, start + 4
        if be in _AF_INET6 or le in _AF_INET6:
            return _V6, start + 4
        return _NOT_IP, 0
    if linktype == 113:  # Linux cooked v1: 16-byte header, protocol at 14
        if n < 16:
            return _BAD, 0
        return _ethertype(buf, _U16(buf, start + 14)[0], start + 16, end)
    if linktype == 276:  # Linux cooked v2: 20-byte header, protocol at 0
        if n < 20:
            return _BAD, 0
        return _ethertype(buf, _U16(buf, start)[0], start + 20, end)
    return _UNSUPPORTED, 0


def _ethertype(buf: Buffer, et: int, off: int, end: int) -> tuple[int, int]:
    """Resolve an ethertype at ``off``: VLAN/QinQ tags (any depth) stripped, MPLS labels popped."""
    while et in _ETH_VLAN:
        if off + 4 > end:
            return _BAD, 0
        et = _U16(buf, off + 2)[0]
        off += 4
    if et == ETH_IPV4:
        return _V4, off
    if et == ETH_IPV6:
        return _V6, off
    if et in _ETH_MPLS:
        while True:  # 4-byte label stack entries; bit 0 of the third byte is bottom-of-stack
            if off + 4 > end:
                return _BAD, 0
            bottom = buf[off + 2] & 1
            off += 4
            if bottom:
                break
        if off >= end:
            return _BAD, 0
        kind, off = _by_nibble(buf, off)
        return (_NOT_IP, 0) if kind == _BAD else (kind, off)
    return _NOT_IP, 0


def _by_nibble(buf: Buffer, off: int) -> tuple[int, int]:
    version = buf[off] >> 4
    if version == 4:
        return _V4, off
    if version == 6:
        return _V6, off
    return _BAD, 0


def _ipv4(source_id: str, ts_us: int, buf: Buffer, off: int, end: int, counters: Counter) -> Segment | None:
    if off + 20 > end:
        counters["packets_malformed"] += 1
        return None
    vihl, tot_len, frag, proto, src, dst = _IP4(buf, off)
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20 or (tot_len and tot_len < ihl):
        counters["packets_malformed"] += 1
        return None
    if frag & 0x3FFF:  # MF set or fragment offset != 0
        counters["ip_fragments"] += 1
        return None
    if proto != _TCP_PROTO:
        counters["not_tcp"] += 1
        return None
    # Trim link padding to the total length; 0 (segmentation offload, sending host) = what was captured.
    ip_end = off + tot_len if tot_len else end
    return _tcp(source_id, ts_us, buf, off + ihl, ip_end, end, src, dst, counters)


def _ipv6(source_id: str, ts_us: int, buf: Buffer, off: int, end: int, counters: Counter) -> Segment | None:
    if off + 40 > end:
        counters["packets_malformed"] += 1
        return None
    vtf, plen, nxt, src, dst = _IP6(buf, off)
    if vtf >> 28 != 6:
        counters["packets_malformed"] += 1
        return None
    ip_end = off + 40 + plen if plen else end  # 0: jumbogram / offload, use what was captured
    cur = off + 40
    while nxt in _IP6_EXT:
        if cur + 8 > end:
            counters["packets_malformed"] += 1
            return None
        if nxt == _IP6_FRAGMENT:
            if _U16(buf, cur + 2)[0] & 0xFFF9:  # offset != 0 or M set; atomic fragments are read through
                counters["ip_fragments"] += 1
                return None
            hlen = 8
        elif nxt == _IP6_AH:
            hlen = (buf[cur + 1] + 2) * 4
        else:
            hlen = (buf[cur + 1] + 1) * 8
        nxt = buf[cur]
        cur += hlen
        if cur > ip_end:
            counters["packets_malformed"] += 1
            return None
    if nxt != _TCP_PROTO:
        counters["not_tcp"] += 1
        return None
    return _tcp(source_id, ts_us, buf, cur, ip_end, end, src, dst, counters)


def _tcp(
    source_id: str,
    ts_us: int,
    buf: Buffer,
    toff: int,
    ip_end: int,
    end: int,
    src: bytes,
    dst: bytes,
    counters: Counter,
) -> Segment | None:
    """TCP header at ``toff``; the IP packet ends at ``ip_end`` (headers), the capture at ``end``."""
    if toff + 20 > end:  # the base header must be captured
        counters["packets_malformed"] += 1
        return None
    sport, dport, seq, ack, offflags = _TCP(buf, toff)
    doff = (offflags >> 10) & 0x3C
    poff = toff + doff
    wire_len = ip_end - poff
    if doff < 20 or wire_len < 0:
        counters["packets_malformed"] += 1
        return None
    payload = buf[poff : ip_end if ip_end < end else end]
    if len(payload) < wire_len:
        counters["packets_truncated"] += 1
    return _new(
        Segment,
        (source_id, ts_us, (src, sport), (dst, dport), seq, ack, offflags & 0xFF, payload, wire_len, None),
    )
