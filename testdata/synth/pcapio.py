"""Streaming capture-file writers (classic pcap µs/ns, pcapng).

Plain ``struct`` code so the synthesizer has no dependency on scapy/dpkt for output and can stream
hundreds of megabytes straight to disk: records are written through a large buffered file handle and
never accumulated in memory.  Timestamps are integer microseconds (the whole synthesizer works on a
µs grid so truth timestamps are exact whatever the file resolution is).
"""
from __future__ import annotations

import struct
from typing import BinaryIO

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

_REC = struct.Struct("<IIII")
_EPB_HEAD = struct.Struct("<IIIIIII")


class CaptureWriter:
    """Writes packets to a pcap or pcapng file.

    ``fmt`` is ``"pcap"`` or ``"pcapng"``; ``nanosecond`` selects the ``a1b23c4d`` magic (pcap) or
    ``if_tsresol = 9`` (pcapng).  ``cut_last`` lets a caller end the file inside a record to model a
    capture that was killed mid-write.
    """

    def __init__(self, path: str, linktype: int, *, fmt: str = "pcap", nanosecond: bool = False,
                 snaplen: int = 262144, buffer_bytes: int = 4 << 20) -> None:
        if fmt not in ("pcap", "pcapng"):
            raise ValueError(f"unknown capture format {fmt!r}")
        self.fmt = fmt
        self.nanosecond = nanosecond
        self.linktype = linktype
        self.snaplen = snaplen
        self.packets = 0
        self.bytes_written = 0
        self._f: BinaryIO = open(path, "wb", buffering=buffer_bytes)
        self._mult = 1000 if nanosecond else 1
        if fmt == "pcap":
            magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
            self._emit(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        else:
            self._write_pcapng_header()

    # -- pcapng blocks -------------------------------------------------------------------------
    def _write_pcapng_header(self) -> None:
        shb_body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        shb_opts = _opt(4, b"heron-tui testdata.synth") + _opt(0, b"")
        self._block(0x0A0D0D0A, shb_body + shb_opts)
        tsres = bytes([9 if self.nanosecond else 6])
        idb_body = struct.pack("<HHI", self.linktype, 0, self.snaplen)
        idb_opts = _opt(2, b"synth0") + _opt(9, tsres) + _opt(0, b"")
        self._block(0x00000001, idb_body + idb_opts)

    def _block(self, btype: int, body: bytes) -> None:
        pad = (-len(body)) % 4
        total = 12 + len(body) + pad
        self._emit(struct.pack("<II", btype, total) + body + b"\0" * pad + struct.pack("<I", total))

    # -- records -------------------------------------------------------------------------------
    def _emit(self, data: bytes) -> None:
        self._f.write(data)
        self.bytes_written += len(data)

    def write(self, ts_us: int, frame: bytes, orig_len: int | None = None) -> None:
        """Write one record; ``frame`` is the captured bytes, ``orig_len`` the wire length."""
        wire = len(frame) if orig_len is None else orig_len
        t = ts_us * self._mult
        self.packets += 1
        if self.fmt == "pcap":
            if self.nanosecond:
                sec, frac = divmod(t, 1_000_000_000)
            else:
                sec, frac = divmod(t, 1_000_000)
            self._emit(_REC.pack(sec, frac, len(frame), wire) + frame)
            return
        n = len(frame)
        pad = (-n) % 4
        total = 32 + n + pad
        self._emit(_EPB_HEAD.pack(6, total, 0, t >> 32, t & 0xFFFFFFFF, n, wire) + frame
                   + b"\0" * pad + struct.pack("<I", total))

    def write_cut(self, ts_us: int, frame: bytes, keep: int) -> None:
        """Write a record header announcing ``frame`` but only ``keep`` bytes of it, then stop.

        The file is then truncated mid-record, as when a capture process is killed.  No further
        writes are allowed.
        """
        before = self.bytes_written
        self.write(ts_us, frame)
        record_len = self.bytes_written - before
        header = 16 if self.fmt == "pcap" else 28
        keep = max(1, min(keep, len(frame) - 1))
        self._f.seek(-(record_len - header - keep), 1)
        self._f.truncate()
        self.bytes_written = before + header + keep

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "CaptureWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _opt(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad
