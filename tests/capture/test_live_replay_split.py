"""The live load test's capture preparation (benchmarks/bench_live_replay.py ``split_oversized``).

tcpreplay sends at most 65,535 bytes of a frame, so the benchmark splits longer TCP frames into valid
segments before replaying. The split must not change the byte stream heron reassembles: same payload
at the same sequence numbers, FIN/PSH only on the last piece, other frames untouched.
"""

from __future__ import annotations

import importlib.util
import struct
from collections import Counter
from pathlib import Path

import pytest

from heron_core.capture import open_file_source
from heron_core.config import Config
from heron_core.records import Segment

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_live_replay", ROOT / "benchmarks" / "bench_live_replay.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _tcp_frame(payload: bytes, seq: int, flags: int = 0x19) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 7, 0x4000, 64, 6, 0,
                     bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2)))
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, seq, 1, 0x50, flags, 65535, 0, 0)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp + payload


def _write_pcap(path: Path, frames: list[bytes]) -> None:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000, i, len(f), len(f)) + f
    path.write_bytes(out)


def _segments(path: Path) -> list[Segment]:
    return [r for r in open_file_source(path, "t", Counter(), Config()) if type(r) is Segment]


def test_oversized_frame_becomes_contiguous_segments(tmp_path):
    big = (bytes(range(256)) * 256)[:65495]  # the largest IPv4 packet (65,535 bytes): a 65,549-byte frame
    small = b"GET / HTTP/1.1\r\n\r\n"
    src, dst = tmp_path / "in.pcap", tmp_path / "out.pcap"
    _write_pcap(src, [_tcp_frame(small, 100, 0x18), _tcp_frame(big, 100 + len(small))])
    assert bench.split_oversized(src, dst) == (2, 3)
    segs = _segments(dst)
    assert [len(s.payload) for s in segs] == [len(small), 65535 - 54, len(big) - (65535 - 54)]
    assert all(len(f) <= 65535 for f in _frames(dst))
    assert segs[0] == _segments(src)[0]  # a frame that fits is copied as it was
    assert [s.seq for s in segs] == [100, 100 + len(small), 100 + len(small) + 65535 - 54]
    assert b"".join(s.payload for s in segs) == small + big
    assert [s.flags & 0x09 for s in segs] == [0x08, 0, 0x09]  # PSH (and FIN) only on the last piece
    assert all(s.wire_len == len(s.payload) for s in segs)  # IP total length matches each piece


def _frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    pos, out = 24, []
    while pos < len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        out.append(data[pos + 16: pos + 16 + caplen])
        pos += 16 + caplen
    return out


def test_non_ethernet_capture_is_refused(tmp_path):
    src = tmp_path / "raw.pcap"
    src.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101))
    with pytest.raises(bench.BenchError, match="only Ethernet"):
        bench.split_oversized(src, tmp_path / "out.pcap")
