"""Capture-file reader: classic pcap and pcapng → frames ``(ts_us, linktype, data, orig_len)``.

Hand-written rather than built on dpkt or scapy because this is the first hot loop of the engine: dpkt's
pcap reader measured ~3.5x slower per record than ``read_frames`` and ~6x slower than ``read_spans``
(it builds a header object per record; its Ethernet/IP/TCP parsing is >10x slower than ``decode_span``),
scapy far slower still. Here a record costs one ``Struct.unpack_from`` on the buffer and the yielded
tuple. ``read_spans`` does
not even copy the packet out (it yields ``buf, start, end``); the file source decodes from there, so the
TCP payload is the only copy made of a packet.

Regular files are memory-mapped (no read() copy into fresh user memory: measured ~1.5x faster than
chunked reads on this loop); pipes and other non-mappable inputs are read in ``_CHUNK`` pieces. Either
way nothing is allocated from a length the file claims: a record or block length beyond ``MAX_RECORD`` /
``MAX_BLOCK`` (Wireshark's limits) is garbage, and chunked reads grow at most to that bound. (A mapped
file that another process truncates while it is read would fault; capture tools only append or rotate.)

Errors: a header that cannot be read raises ``CaptureFileError`` *before* the iterator is returned (so
the CLI can fail with exit 1 before the pipeline starts). After that the reader never raises for bad
content: a truncated last record ends the iteration and counts ``file_truncated``; an impossible length
mid-file ends it and counts ``read_errors``; a block that is well framed but unusable (unknown interface)
is skipped and counts ``read_errors``. ``packets_read`` / ``bytes_read`` (captured bytes) are added to the
counters every ``_CHUNK`` bytes and when the iteration ends, not per packet.
"""

from __future__ import annotations

import functools
import mmap
import os
import stat
from collections import Counter
from collections.abc import Callable, Iterator
from struct import Struct
from typing import BinaryIO

Buffer = bytes | mmap.mmap

Frame = tuple[int, int, bytes, int]
"""``(ts_us, linktype, data, orig_len)``: timestamp in integer µs, the link type of the file/interface,
the captured bytes and the original (wire) length of the frame."""

Span = tuple[int, int, Buffer, int, int, int]
"""``(ts_us, linktype, buf, start, end, orig_len)``: a frame as ``buf[start:end]``, not yet copied."""

_CHUNK = 4 * 1024 * 1024
MAX_RECORD = 16 * 1024 * 1024
"""Largest captured length accepted in a classic pcap record (Wireshark's block limit)."""
MAX_BLOCK = 16 * 1024 * 1024 + 64
"""Largest pcapng block accepted (16 MiB of packet data plus the block's own fields)."""

_PCAP_US = 0xA1B2C3D4
_PCAP_NS = 0xA1B23C4D
_SHB = 0x0A0D0D0A
_BOM = 0x1A2B3C4D
_IDB, _PB, _SPB, _EPB = 1, 2, 3, 6
_OPT_TSRESOL, _OPT_TSOFFSET = 9, 14
_LINKTYPE_MASK = 0x03FFFFFF  # upper bits of the pcap "network" field carry FCS info

_U32 = {"<": Struct("<I"), ">": Struct(">I")}
_PCAP_HDR = {"<": Struct("<IHHiIII"), ">": Struct(">IHHiIII")}
_PCAP_REC = {"<": Struct("<IIII"), ">": Struct(">IIII")}
_BLOCK_HDR = {"<": Struct("<II"), ">": Struct(">II")}
_EPB_HDR = {"<": Struct("<IIIII"), ">": Struct(">IIIII")}  # if_id, ts_hi, ts_lo, caplen, orig_len
_PB_HDR = {"<": Struct("<HHIIII"), ">": Struct(">HHIIII")}  # if_id, drops, ts_hi, ts_lo, caplen, len
_IDB_HDR = {"<": Struct("<HHI"), ">": Struct(">HHI")}  # linktype, reserved, snaplen
_OPT_HDR = {"<": Struct("<HH"), ">": Struct(">HH")}
_I64 = {"<": Struct("<q"), ">": Struct(">q")}

Interface = tuple[int, int, int, int, int]
"""``(linktype, ts_mul, ts_div, ts_offset_us, snaplen)``: ``ts_us = raw * mul // div + offset_us``."""


class CaptureFileError(Exception):
    """A capture file whose header cannot be read; ``str()`` is a one-line message, ``path`` the file."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = path


def read_frames(path: str | os.PathLike[str], counters: Counter) -> Iterator[Frame]:
    """Open a pcap or pcapng file and return an iterator over its frames.

    The header is checked here, eagerly: ``CaptureFileError`` is raised by this call, never by the
    iteration. The file is closed when the iterator is exhausted or closed.
    """
    spans = read_spans(path, counters)
    return ((ts, linktype, buf[start:end], orig_len) for ts, linktype, buf, start, end, orig_len in spans)


def read_spans(path: str | os.PathLike[str], counters: Counter) -> Iterator[Span]:
    """Like ``read_frames`` but without copying the packet out: yields ``Span`` tuples pointing into
    the read buffer, for ``decode_span`` (the file source), so the payload is the only copy made."""
    f = _open(path)
    try:
        buf, limit, refill = _load(f)
        head = buf[:28]
        if not head:
            raise CaptureFileError("empty file", path)
        if len(head) >= 4:
            for e in ("<", ">"):
                magic = _U32[e].unpack_from(head)[0]
                if magic in (_PCAP_US, _PCAP_NS):
                    return _classic(f, buf, limit, refill, e, magic == _PCAP_NS, counters, path)
            if _U32["<"].unpack_from(head)[0] == _SHB:
                return _pcapng(f, buf, limit, refill, counters, path)
        if head[:2] == b"\x1f\x8b":
            raise CaptureFileError("gzip-compressed file (decompress it first)", path)
        raise CaptureFileError("not a pcap or pcapng file", path)
    except OSError as exc:
        f.close()
        raise CaptureFileError(exc.strerror or "read error", path) from None
    except BaseException:
        f.close()
        raise


def _open(path: str | os.PathLike[str]) -> BinaryIO:
    try:
        return open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise CaptureFileError("file not found", path) from None
    except IsADirectoryError:
        raise CaptureFileError("is a directory", path) from None
    except PermissionError:
        raise CaptureFileError("permission denied", path) from None
    except OSError as exc:
        raise CaptureFileError(exc.strerror or "cannot open file", path) from None


Refill = Callable[[Buffer, int, int], tuple[Buffer, int, int]]
"""``refill(buf, pos, need) -> (buf, pos, limit)``: make ``need`` bytes from ``pos`` available below
``limit`` if the file has them. The loops call it about once per ``_CHUNK`` bytes and add their local
packet counts to the counters there, so the counters stay current without per-packet updates."""


def _load(f: BinaryIO) -> tuple[Buffer, int, Refill]:
    """``(buffer, limit, refill)``: a regular file is mapped whole (no copy into user memory, the packet
    payload is copied once, straight from the page cache); anything else (pipes) is read in chunks."""
    try:
        st = os.fstat(f.fileno())
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            return mm, min(len(mm), _CHUNK), _window
    except (OSError, ValueError, OverflowError):
        pass
    buf = _refill(f, b"", 0, 28)[0]  # the file header; on a pipe, no waiting for a whole chunk
    return buf, len(buf), functools.partial(_refill, f)


def _window(buf: Buffer, pos: int, need: int) -> tuple[Buffer, int, int]:
    """Refill of a mapped file: everything is mapped already, just move the limit one chunk on.

    The pages already read are released from this process (``MADV_DONTNEED``; they stay in the page
    cache), so the reader's resident memory stays at a few chunks instead of growing to the file size —
    ``ru_maxrss`` counts touched file pages. Records before ``pos`` were all consumed; a late access
    would only fault the page back in."""
    if isinstance(buf, mmap.mmap) and _DONTNEED is not None:
        drop = (pos - _CHUNK) // mmap.PAGESIZE * mmap.PAGESIZE
        if drop > 0:
            try:
                buf.madvise(_DONTNEED, 0, drop)
            except (OSError, ValueError):
                pass
    return buf, pos, min(len(buf), pos + max(_CHUNK, need))


_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)


def _refill(f: BinaryIO, buf: Buffer, pos: int, need: int) -> tuple[Buffer, int, int]:
    """Chunked refill: the unread rest of ``buf`` extended to at least ``need`` bytes if the file has
    them. Each read asks for a whole chunk (a regular file gives it, so refills happen once per
    ``_CHUNK`` bytes, not per record) but takes what a pipe has ready instead of waiting for more than
    ``need``. ``need`` is bounded by the caller (``MAX_RECORD``/``MAX_BLOCK``), so memory is too."""
    parts = [buf[pos:]] if pos < len(buf) else []
    have = len(buf) - pos
    while have < need:
        chunk = f.read(max(_CHUNK, need - have))
        if not chunk:
            break
        parts.append(chunk)
        have += len(chunk)
    out = b"".join(parts)
    return out, 0, len(out)


# --- classic pcap ------------------------------------------------------------------------------------


def _classic(
    f: BinaryIO, buf: Buffer, limit: int, refill: Refill, e: str, nanos: bool, counters: Counter, path
) -> Iterator[Span]:
    if len(buf) < 24:
        raise CaptureFileError("truncated pcap file header", path)
    _magic, major, minor, _zone, _sigfigs, snaplen, network = _PCAP_HDR[e].unpack_from(buf)
    if major != 2:
        raise CaptureFileError(f"unsupported pcap version {major}.{minor}", path)
    max_caplen = min(max(snaplen, 262144), MAX_RECORD)
    linktype = network & _LINKTYPE_MASK
    return _classic_records(f, buf, limit, refill, e, nanos, linktype, max_caplen, counters)


def _classic_records(
    f: BinaryIO,
    buf: Buffer,
    blen: int,
    refill: Refill,
    e: str,
    nanos: bool,
    linktype: int,
    max_caplen: int,
    counters: Counter,
) -> Iterator[Span]:
    unpack = _PCAP_REC[e].unpack_from
    pos = 24  # blen: the limit up to which buf may be read without a refill
    npk = nbytes = 0
    try:
        while True:
            hend = pos + 16
            if hend > blen:
                counters["packets_read"] += npk
                counters["bytes_read"] += nbytes
                npk = nbytes = 0
                try:
                    buf, pos, blen = refill(buf, pos, 16)
                except OSError:
                    counters["read_errors"] += 1
                    return
                hend = pos + 16
                if hend > blen:
                    if blen > pos:
                        counters["file_truncated"] += 1
                    return
            sec, frac, caplen, orig_len = unpack(buf, pos)
            if caplen > max_caplen:  # garbage (or hostile): never read that much
                counters["read_errors"] += 1
                return
            end = hend + caplen
            if end > blen:
                counters["packets_read"] += npk
                counters["bytes_read"] += nbytes
                npk = nbytes = 0
                try:
                    buf, pos, blen = refill(buf, pos, 16 + caplen)
                except OSError:
                    counters["read_errors"] += 1
                    return
                hend = pos + 16
                end = hend + caplen
                if end > blen:
                    counters["file_truncated"] += 1
                    return
            npk += 1
            nbytes += caplen
            pos = end
            yield (sec * 1000000 + (frac // 1000 if nanos else frac), linktype, buf, hend, end, orig_len)
    finally:
        counters["packets_read"] += npk
        counters["bytes_read"] += nbytes
        f.close()


# --- pcapng ------------------------------------------------------------------------------------------


def _shb_order(buf: Buffer, pos: int) -> str | None:
    """Byte order of the section whose header starts at ``pos`` (from its byte-order magic)."""
    if _U32["<"].unpack_from(buf, pos + 8)[0] == _BOM:
        return "<"
    if _U32[">"].unpack_from(buf, pos + 8)[0] == _BOM:
        return ">"
    return None


def _pcapng(f: BinaryIO, buf: Buffer, limit: int, refill: Refill, counters: Counter, path) -> Iterator[Span]:
    if len(buf) < 28:
        raise CaptureFileError("truncated pcapng section header", path)
    e = _shb_order(buf, 0)
    if e is None:
        raise CaptureFileError("bad pcapng byte-order magic", path)
    length = _U32[e].unpack_from(buf, 4)[0]
    if length < 28 or length & 3 or length > MAX_BLOCK:
        raise CaptureFileError("bad pcapng section header length", path)
    major = _OPT_HDR[e].unpack_from(buf, 12)[0]
    if major != 1:
        raise CaptureFileError(f"unsupported pcapng version {major}", path)
    return _pcapng_blocks(f, buf, limit, refill, counters)


def _interface(buf: Buffer, pos: int, end: int, e: str) -> Interface:
    """Parse an Interface Description Block: link type, snaplen, ``if_tsresol``, ``if_tsoffset``."""
    linktype, _reserved, snaplen = _IDB_HDR[e].unpack_from(buf, pos + 8)
    mul = div = 1
    offset_us = 0
    o = pos + 16
    opt_end = end - 4
    opt_hdr = _OPT_HDR[e].unpack_from
    while o + 4 <= opt_end:
        code, olen = opt_hdr(buf, o)
        if code == 0 or o + 4 + olen > opt_end:
            break
        if code == _OPT_TSRESOL and olen >= 1:
            v = buf[o + 4]
            if v & 0x80:  # 2^-n seconds
                mul, div = 1000000, 1 << (v & 0x7F)
            elif v >= 6:  # 10^-v seconds
                mul, div = 1, 10 ** (v - 6)
            else:
                mul, div = 10 ** (6 - v), 1
        elif code == _OPT_TSOFFSET and olen >= 8:
            offset_us = _I64[e].unpack_from(buf, o + 4)[0] * 1000000
        o += 4 + ((olen + 3) & ~3)
    return (linktype, mul, div, offset_us, snaplen)


def _pcapng_blocks(f: BinaryIO, buf: Buffer, blen: int, refill: Refill, counters: Counter) -> Iterator[Span]:
    """Walk the blocks. Sections may change byte order, so the unpackers are rebound at every SHB."""
    e = "<"
    block_hdr = _BLOCK_HDR[e].unpack_from
    u32 = _U32[e].unpack_from
    epb = _EPB_HDR[e].unpack_from
    ifaces: list[Interface] = []
    pos = 0  # blen: the limit up to which buf may be read without a refill
    last_ts = 0  # Simple Packet Blocks carry no timestamp: they get the previous packet's
    npk = nbytes = 0
    try:
        while True:
            if pos + 12 > blen:
                counters["packets_read"] += npk
                counters["bytes_read"] += nbytes
                npk = nbytes = 0
                try:
                    buf, pos, blen = refill(buf, pos, 12)
                except OSError:
                    counters["read_errors"] += 1
                    return
                if pos + 12 > blen:
                    if blen > pos:
                        counters["file_truncated"] += 1
                    return
            btype, length = block_hdr(buf, pos)
            if btype == _SHB:  # palindromic type: recognisable before the byte order is known
                order = _shb_order(buf, pos)
                if order is None:
                    counters["read_errors"] += 1
                    return
                e = order
                block_hdr = _BLOCK_HDR[e].unpack_from
                u32 = _U32[e].unpack_from
                epb = _EPB_HDR[e].unpack_from
                length = u32(buf, pos + 4)[0]
                ifaces = []
            if length < 12 or length & 3 or length > MAX_BLOCK:  # impossible: garbage, stop
                counters["read_errors"] += 1
                return
            end = pos + length
            if end > blen:
                counters["packets_read"] += npk
                counters["bytes_read"] += nbytes
                npk = nbytes = 0
                try:
                    buf, pos, blen = refill(buf, pos, length)
                except OSError:
                    counters["read_errors"] += 1
                    return
                end = pos + length
                if end > blen:
                    counters["file_truncated"] += 1
                    return
            if u32(buf, end - 4)[0] != length:  # the trailing copy of the length must match
                counters["read_errors"] += 1
                return
            if btype == _EPB and length >= 32:
                if_id, ts_hi, ts_lo, caplen, orig_len = epb(buf, pos + 8)
                if caplen <= length - 32 and if_id < len(ifaces):
                    linktype, mul, div, offset_us, _snaplen = ifaces[if_id]
                    ts = (ts_hi << 32) | ts_lo
                    if div != 1 or mul != 1:
                        ts = ts * mul // div
                    last_ts = ts = ts + offset_us
                    npk += 1
                    nbytes += caplen
                    start = pos + 28
                    pos = end
                    yield (ts, linktype, buf, start, start + caplen, orig_len)
                    continue
                counters["read_errors"] += 1
            elif btype == _SPB and length >= 16:
                if ifaces:
                    linktype, _mul, _div, _off, snaplen = ifaces[0]
                    orig_len = u32(buf, pos + 8)[0]
                    caplen = min(orig_len, length - 16)
                    if snaplen:
                        caplen = min(caplen, snaplen)
                    npk += 1
                    nbytes += caplen
                    start = pos + 12
                    pos = end
                    yield (last_ts, linktype, buf, start, start + caplen, orig_len)
                    continue
                counters["read_errors"] += 1
            elif btype == _IDB and length >= 20:
                ifaces.append(_interface(buf, pos, end, e))
            elif btype == _PB and length >= 32:
                if_id, _drops, ts_hi, ts_lo, caplen, orig_len = _PB_HDR[e].unpack_from(buf, pos + 8)
                if caplen <= length - 32 and if_id < len(ifaces):
                    linktype, mul, div, offset_us, _snaplen = ifaces[if_id]
                    last_ts = ts = ((ts_hi << 32) | ts_lo) * mul // div + offset_us
                    npk += 1
                    nbytes += caplen
                    start = pos + 28
                    pos = end
                    yield (ts, linktype, buf, start, start + caplen, orig_len)
                    continue
                counters["read_errors"] += 1
            elif btype in (_EPB, _SPB, _IDB, _PB):  # known type, too short to hold its fields
                counters["read_errors"] += 1
            pos = end  # SHB (handled above) and unknown block types: skipped by length
    finally:
        counters["packets_read"] += npk
        counters["bytes_read"] += nbytes
        f.close()
