"""Builders for the capture tests: frames (scapy), classic pcap files (scapy's writer) and pcapng files.

pcapng is built here by hand because the tests need what scapy's writer cannot produce (several
sections in different byte orders, ``if_tsresol`` / ``if_tsoffset``, Simple and obsolete Packet blocks,
unknown blocks); ``test_capture_pcapfile`` checks this builder against scapy's pcapng reader.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

from scapy.all import IP, TCP, Ether, RawPcapWriter

CLIENT4, SERVER4 = "10.1.2.3", "93.184.216.34"
CLIENT6, SERVER6 = "2001:db8::1", "2001:db8::2"
SPORT, DPORT = 51000, 443
SEQ, ACK = 1000, 2000
PAYLOAD = b"POST /v1/messages HTTP/1.1\r\nHost: api.example\r\n\r\n"


def ip4(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, text)


def ip6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


def tcp(payload: bytes = PAYLOAD, flags: str = "PA", **kw) -> TCP:
    """The TCP layer every decode test expects back (ports, seq/ack, flags, payload)."""
    return TCP(sport=SPORT, dport=DPORT, seq=SEQ, ack=ACK, flags=flags, **kw) / payload


def eth_ip4_tcp(payload: bytes = PAYLOAD) -> bytes:
    return bytes(
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=CLIENT4, dst=SERVER4) / tcp(payload)
    )


def write_pcap(
    path: Path,
    records: list[tuple[int, int, bytes]],
    linktype: int = 1,
    endian: str = "<",
    nano: bool = False,
    wirelen: dict[int, int] | None = None,
) -> Path:
    """Classic pcap through scapy's writer. ``records`` are ``(sec, usec_or_nsec, data)``; ``wirelen``
    maps a record index to an original length different from the captured one."""
    writer = RawPcapWriter(
        str(path), linktype=linktype, endianness=endian, nano=nano, snaplen=262144, sync=True
    )
    writer.write_header(None)
    for i, (sec, frac, data) in enumerate(records):
        writer.write_packet(data, sec=sec, usec=frac, wirelen=(wirelen or {}).get(i))
    writer.close()
    return path


class PcapNg:
    """Append pcapng blocks in the current section's byte order; ``bytes(self)`` is the file."""

    SHB, IDB, PB, SPB, NRB, ISB, EPB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.e = "<"

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)

    def block(self, btype: int, body: bytes) -> PcapNg:
        body += b"\0" * (-len(body) % 4)
        total = 12 + len(body)
        self.parts.append(struct.pack(self.e + "II", btype, total) + body + struct.pack(self.e + "I", total))
        return self

    @staticmethod
    def _opts(e: str, opts: list[tuple[int, bytes]]) -> bytes:
        if not opts:
            return b""
        out = b""
        for code, value in opts:
            out += struct.pack(e + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)
        return out + struct.pack(e + "HH", 0, 0)

    def shb(self, endian: str = "<", opts: list[tuple[int, bytes]] | None = None) -> PcapNg:
        self.e = endian
        body = struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1) + self._opts(endian, opts or [])
        return self.block(self.SHB, body)

    def idb(
        self, linktype: int, snaplen: int = 0, tsresol: int | None = None, tsoffset: int | None = None
    ) -> PcapNg:
        opts = [(2, b"eth0")]  # if_name, to be skipped
        if tsresol is not None:
            opts.append((9, bytes([tsresol])))
        if tsoffset is not None:
            opts.append((14, struct.pack(self.e + "q", tsoffset)))
        return self.block(
            self.IDB, struct.pack(self.e + "HHI", linktype, 0, snaplen) + self._opts(self.e, opts)
        )

    def epb(self, if_id: int, ts: int, data: bytes, orig_len: int | None = None) -> PcapNg:
        hdr = struct.pack(
            self.e + "IIIII", if_id, ts >> 32, ts & 0xFFFFFFFF, len(data), orig_len or len(data)
        )
        return self.block(self.EPB, hdr + data + b"\0" * (-len(data) % 4) + self._opts(self.e, [(1, b"hi")]))

    def spb(self, data: bytes, orig_len: int | None = None) -> PcapNg:
        return self.block(self.SPB, struct.pack(self.e + "I", orig_len or len(data)) + data)

    def pb(self, if_id: int, ts: int, data: bytes) -> PcapNg:
        hdr = struct.pack(self.e + "HHIIII", if_id, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
        return self.block(self.PB, hdr + data)
