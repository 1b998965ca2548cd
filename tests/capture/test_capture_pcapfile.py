"""read_frames / read_spans: classic pcap (µs/ns, both byte orders), pcapng (sections, interfaces,
timestamp resolution and offset, SPB/PB, unknown blocks), damaged and hostile files, both the mapped
and the chunked (pipe) input paths, and a cross-check against dpkt's and scapy's readers."""

from __future__ import annotations

import os
import struct
import threading
import tracemalloc
from collections import Counter
from pathlib import Path

import dpkt
import pytest
from capture_builders import PcapNg, eth_ip4_tcp, write_pcap
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.utils import RawPcapNgReader

from heron_core.capture import pcapfile
from heron_core.capture.pcapfile import MAX_BLOCK, CaptureFileError, read_frames, read_spans

T0 = 1_700_000_000


def frames(path: Path, counters: Counter | None = None) -> list[tuple[int, int, bytes, int]]:
    return list(read_frames(path, Counter() if counters is None else counters))


def sample_records(n: int = 5) -> list[tuple[int, int, bytes]]:
    return [(T0 + i, 1000 * i + 7, eth_ip4_tcp(bytes([65 + i]) * (10 * i))) for i in range(n)]


# --- classic pcap ------------------------------------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_both_orders_and_resolutions(tmp_path: Path, endian: str, nano: bool) -> None:
    records = sample_records()
    if nano:  # ns fractions with sub-µs digits that must be dropped, not rounded
        records = [(s, f * 1000 + 999, d) for s, f, d in records]
    path = write_pcap(tmp_path / "x.pcap", records, linktype=1, endian=endian, nano=nano, wirelen={2: 9000})
    magic = path.read_bytes()[:4]
    assert magic == struct.pack(endian + "I", 0xA1B23C4D if nano else 0xA1B2C3D4)
    counters: Counter = Counter()
    got = frames(path, counters)
    assert got == [
        ((T0 + i) * 1_000_000 + i * 1000 + 7, 1, d, 9000 if i == 2 else len(d))
        for i, (_s, _f, d) in enumerate(records)
    ]
    assert counters == Counter(packets_read=5, bytes_read=sum(len(d) for *_x, d in records))


def test_classic_linktype_from_header(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "sll.pcap", [(T0, 0, b"\0" * 40)], linktype=113)
    assert frames(path) == [(T0 * 1_000_000, 113, b"\0" * 40, 40)]
    data = bytearray(path.read_bytes())
    data[20:24] = struct.pack("<I", 0x10000001)  # FCS-length bits in the upper part of the field
    path.write_bytes(bytes(data))
    assert frames(path)[0][1] == 1


def test_header_only_file_has_no_frames(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "empty.pcap", [])
    counters: Counter = Counter()
    assert frames(path, counters) == []
    assert +counters == Counter()


def test_cross_check_with_dpkt(tmp_path: Path) -> None:
    """A scapy-written file read by dpkt and by us: same timestamps and bytes."""
    records = [
        (T0 + i // 3, (i * 7919) % 1_000_000, eth_ip4_tcp(bytes(range(i % 256)) * 3)) for i in range(300)
    ]
    for endian, nano in (("<", False), (">", True)):
        recs = [(s, f * 1000 + 5, d) for s, f, d in records] if nano else records
        path = write_pcap(tmp_path / f"dpkt{endian == '<'}{nano}.pcap", recs, endian=endian, nano=nano)
        with open(path, "rb") as fh:
            reader = dpkt.pcap.Reader(fh)
            theirs = [(ts, buf) for ts, buf in reader]
            assert reader.datalink() == 1
        ours = frames(path)
        assert [d for _t, _l, d, _o in ours] == [buf for _ts, buf in theirs]
        assert [t for t, *_r in ours] == [s * 1_000_000 + f // (1000 if nano else 1) for s, f, _d in recs]
        # dpkt gives float seconds: equal to ours within float precision
        assert all(abs(t / 1e6 - float(ts)) < 2e-6 for (t, *_r), (ts, _b) in zip(ours, theirs, strict=True))


# --- pcapng ------------------------------------------------------------------------------------------


def rich_pcapng() -> tuple[bytes, list[tuple[int, int, bytes, int]]]:
    """Two sections (little then big endian), each with two interfaces of different link types and
    timestamp units, EPB/SPB/PB, skipped blocks. Returns the file and the frames expected from it."""
    a, b, c, d, e = (eth_ip4_tcp(bytes([x]) * n) for x, n in ((1, 0), (2, 5), (3, 17), (4, 100), (5, 3)))
    raw = b"\x45" + bytes(39)
    ng = PcapNg().shb("<", opts=[(4, b"heron test")])
    ng.idb(1, snaplen=262144)  # default µs
    ng.idb(101, tsresol=9, tsoffset=100)  # ns, +100 s
    ng.block(0x00000BAD, b"unknown block body")
    ng.epb(0, T0 * 1_000_000 + 1, a)
    ng.epb(1, T0 * 1_000_000_000 + 2_345_678, raw, orig_len=1500)
    ng.block(PcapNg.NRB, b"\0" * 8)  # name resolution: skipped
    ng.spb(b, orig_len=len(b))
    ng.pb(0, T0 * 1_000_000 + 9, c)
    ng.block(PcapNg.ISB, struct.pack("<III", 0, 0, 0))  # interface statistics: skipped
    ng.shb(">")  # new section: new byte order, interfaces reset
    ng.idb(228, tsresol=0x80 | 20)  # 2^-20 s
    ng.idb(1, tsresol=3, tsoffset=-5)  # ms, -5 s
    ng.epb(0, (T0 << 20) + (1 << 19), raw)  # T0 + 0.5 s
    ng.epb(1, T0 * 1000 + 250, d)
    ng.spb(e + b"\0", orig_len=len(e) + 1)  # SPB: length from orig_len / block; ts from previous packet
    expected = [
        (T0 * 1_000_000 + 1, 1, a, len(a)),
        ((T0 + 100) * 1_000_000 + 2345, 101, raw, 1500),
        ((T0 + 100) * 1_000_000 + 2345, 1, b, len(b)),
        (T0 * 1_000_000 + 9, 1, c, len(c)),
        (T0 * 1_000_000 + 500_000, 228, raw, len(raw)),
        ((T0 - 5) * 1_000_000 + 250_000, 1, d, len(d)),
        ((T0 - 5) * 1_000_000 + 250_000, 228, e + b"\0", len(e) + 1),
    ]
    return bytes(ng), expected


def test_pcapng_sections_interfaces_resolutions(tmp_path: Path) -> None:
    data, expected = rich_pcapng()
    path = tmp_path / "rich.pcapng"
    path.write_bytes(data)
    counters: Counter = Counter()
    assert frames(path, counters) == expected
    assert +counters == Counter(packets_read=7, bytes_read=sum(len(f[2]) for f in expected))


def test_pcapng_spb_is_cut_to_snaplen(tmp_path: Path) -> None:
    ng = PcapNg().shb().idb(1, snaplen=20)
    ng.epb(0, 5, b"x" * 20)
    ng.spb(b"y" * 20, orig_len=60)
    path = tmp_path / "spb.pcapng"
    path.write_bytes(bytes(ng))
    assert frames(path) == [(5, 1, b"x" * 20, 20), (5, 1, b"y" * 20, 60)]


def test_pcapng_builder_agrees_with_scapy(tmp_path: Path) -> None:
    """Our test builder, checked by an independent reader (scapy's), for what scapy understands."""
    ng = PcapNg().shb().idb(1).idb(1, tsresol=9)
    payloads = [eth_ip4_tcp(b"p" * n) for n in (0, 1, 2, 3, 700)]
    for i, p in enumerate(payloads):
        ng.epb(i % 2, (T0 * 1_000_000 + i) * (1000 if i % 2 else 1), p)
    path = tmp_path / "scapy.pcapng"
    path.write_bytes(bytes(ng))
    theirs = [(bytes(pkt), meta) for pkt, meta in RawPcapNgReader(str(path))]
    assert [p for p, _m in theirs] == payloads
    assert [(m.tshigh << 32 | m.tslow) // (m.tsresol // 1_000_000) for _p, m in theirs] == [
        T0 * 1_000_000 + i for i in range(5)
    ]
    assert frames(path) == [(T0 * 1_000_000 + i, 1, p, len(p)) for i, p in enumerate(payloads)]


def test_pcapng_epb_with_unknown_interface_is_skipped(tmp_path: Path) -> None:
    ng = PcapNg().shb().idb(1).epb(3, 1, b"lost").epb(0, 2, b"kept")
    path = tmp_path / "if.pcapng"
    path.write_bytes(bytes(ng))
    counters: Counter = Counter()
    assert frames(path, counters) == [(2, 1, b"kept", 4)]
    assert counters["read_errors"] == 1


# --- damaged files -----------------------------------------------------------------------------------


def test_truncated_last_record_classic(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "t.pcap", sample_records())
    full = path.read_bytes()
    for cut in (5, 16 + 3, len(sample_records()[-1][2]) - 1):  # inside the data, inside the header
        path.write_bytes(full[:-cut])
        counters: Counter = Counter()
        got = frames(path, counters)
        assert len(got) == 4
        assert counters["file_truncated"] == 1 and counters["read_errors"] == 0
        assert counters["packets_read"] == 4


def test_truncated_last_block_pcapng(tmp_path: Path) -> None:
    data, expected = rich_pcapng()
    for cut in (1, 4, 20):
        path = tmp_path / "t.pcapng"
        path.write_bytes(data[:-cut])
        counters: Counter = Counter()
        assert frames(path, counters) == expected[:-1]
        assert counters["file_truncated"] == 1 and counters["read_errors"] == 0


@pytest.mark.parametrize("garbage", [struct.pack("<II", 6, 7), struct.pack("<II", 6, 8), b"\xff" * 64])
def test_garbage_mid_pcapng_stops_with_read_error(tmp_path: Path, garbage: bytes) -> None:
    ng = PcapNg().shb().idb(1).epb(0, 1, b"one")
    good = bytes(ng)
    path = tmp_path / "g.pcapng"
    path.write_bytes(good + garbage + bytes(PcapNg().shb().idb(1).epb(0, 2, b"two"))[28:])
    counters: Counter = Counter()
    assert frames(path, counters) == [(1, 1, b"one", 3)]
    assert counters["read_errors"] == 1 and counters["file_truncated"] == 0


def test_trailing_length_mismatch_is_a_read_error(tmp_path: Path) -> None:
    data = bytearray(bytes(PcapNg().shb().idb(1).epb(0, 1, b"one").epb(0, 2, b"two")))
    data[-4:] = struct.pack("<I", 999)
    path = tmp_path / "m.pcapng"
    path.write_bytes(bytes(data))
    counters: Counter = Counter()
    assert frames(path, counters) == [(1, 1, b"one", 3)]
    assert counters["read_errors"] == 1


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_hostile_length_is_never_allocated(tmp_path: Path, fmt: str) -> None:
    if fmt == "pcap":
        head = write_pcap(tmp_path / "h.pcap", sample_records(2)).read_bytes()
        data = head + struct.pack("<IIII", T0, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"x" * 100
    else:
        data = bytes(PcapNg().shb().idb(1).epb(0, 1, b"one")) + struct.pack("<II", 6, 0xFFFFFFF0) + b"x" * 100
    path = tmp_path / f"h.{fmt}"
    path.write_bytes(data)
    for via_pipe in (False, True):
        counters: Counter = Counter()
        tracemalloc.start()
        try:
            got = list(read_frames(path, counters)) if not via_pipe else pipe_frames(tmp_path, data, counters)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(got) == (2 if fmt == "pcap" else 1)
        assert counters["read_errors"] == 1
        assert peak < 8 * 1024 * 1024 + 100_000  # one read chunk at most, never the claimed length


def test_large_claimed_length_near_limit_at_end_is_truncation(tmp_path: Path) -> None:
    data = bytes(PcapNg().shb().idb(1).epb(0, 1, b"one")) + struct.pack("<II", 6, MAX_BLOCK - 4) + b"x" * 100
    path = tmp_path / "near.pcapng"
    path.write_bytes(data)
    counters: Counter = Counter()
    assert frames(path, counters) == [(1, 1, b"one", 3)]
    assert counters["file_truncated"] == 1


# --- header errors (eager) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"hello world, this is not a capture file at all", "not a pcap or pcapng file"),
        (b"\x1f\x8b\x08\x00" + bytes(40), "gzip-compressed file (decompress it first)"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated pcap file header"),
        (struct.pack("<IHHiIII", 0xA1B2C3D4, 1, 0, 0, 0, 65535, 1), "unsupported pcap version 1.0"),
        (struct.pack("<II", 0x0A0D0D0A, 28), "truncated pcapng section header"),
        (struct.pack("<III", 0x0A0D0D0A, 28, 0x12345678) + bytes(16), "bad pcapng byte-order magic"),
        (
            struct.pack("<IIIHHq", 0x0A0D0D0A, 0x7FFFFFF0, 0x1A2B3C4D, 1, 0, -1) + bytes(4),
            "bad pcapng section header length",
        ),
        (struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 2, 0, -1, 28), "unsupported pcapng version 2"),
    ],
)
def test_bad_headers_raise_eagerly(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureFileError) as info:
        read_frames(path, Counter())  # the call itself raises: no iteration needed
    assert str(info.value) == message and "\n" not in message
    assert info.value.path == path


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureFileError, match="^file not found$"):
        read_frames(tmp_path / "nope.pcap", Counter())
    with pytest.raises(CaptureFileError, match="^is a directory$"):
        read_spans(tmp_path, Counter())


# --- input paths: mapped windows and chunked pipe reads ------------------------------------------------


def pipe_frames(tmp_path: Path, data: bytes, counters: Counter) -> list[tuple[int, int, bytes, int]]:
    """Read ``data`` through a FIFO: not mappable, so the chunked reader is used."""
    fifo = tmp_path / f"fifo{threading.get_ident()}"
    if fifo.exists():
        fifo.unlink()
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as fh:
            for i in range(0, len(data), 1000):  # in pieces: short raw reads on the other side
                fh.write(data[i : i + 1000])
                fh.flush()

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        return list(read_frames(fifo, counters))
    finally:
        writer.join()
        fifo.unlink()


@pytest.mark.parametrize("chunk", [64, 100, 4096, 4 * 1024 * 1024])
def test_chunk_boundaries_mapped_and_piped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(pcapfile, "_CHUNK", chunk)
    records = [(T0, i, eth_ip4_tcp(b"z" * ((i * 37) % 300))) for i in range(60)]
    classic = write_pcap(tmp_path / "c.pcap", records).read_bytes()
    ng_data, ng_expected = rich_pcapng()
    classic_expected = [(T0 * 1_000_000 + i, 1, d, len(d)) for _s, i, d in records]
    for data, expected in ((classic, classic_expected), (ng_data, ng_expected)):
        path = tmp_path / "f.bin"
        path.write_bytes(data)
        for via_pipe in (False, True):
            counters: Counter = Counter()
            got = pipe_frames(tmp_path, data, counters) if via_pipe else frames(path, counters)
            assert got == expected
            assert +counters == Counter(
                packets_read=len(expected), bytes_read=sum(len(f[2]) for f in expected)
            )
        cut = data[:-3]  # truncated in both paths
        counters = Counter()
        assert pipe_frames(tmp_path, cut, counters) == expected[:-1]
        assert counters["file_truncated"] == 1


def test_counters_are_current_before_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """packets_read is published every chunk, not only when the file ends."""
    monkeypatch.setattr(pcapfile, "_CHUNK", 1000)
    records = [(T0, i, eth_ip4_tcp(b"q" * 100)) for i in range(100)]
    path = write_pcap(tmp_path / "c.pcap", records)
    counters: Counter = Counter()
    it = read_frames(path, counters)
    for _ in range(50):
        next(it)
    assert 30 <= counters["packets_read"] <= 50
    it.close()
    assert counters["packets_read"] == 50


def test_spans_point_into_the_buffer(tmp_path: Path) -> None:
    records = sample_records(3)
    path = write_pcap(tmp_path / "s.pcap", records)
    spans = list(read_spans(path, Counter()))
    assert [bytes(buf[s:e]) for _t, _l, buf, s, e, _o in spans] == [d for *_x, d in records]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_never_raise(tmp_path: Path, data: st.DataObject) -> None:
    base = data.draw(
        st.sampled_from([rich_pcapng()[0], write_pcap(tmp_path / "m.pcap", sample_records()).read_bytes()])
    )
    buf = bytearray(base)
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    path = tmp_path / "mut.bin"
    path.write_bytes(bytes(buf[:cut]))
    counters: Counter = Counter()
    try:
        got = list(read_frames(path, counters))
    except CaptureFileError:
        return  # header damaged: refused eagerly, fine
    assert len(got) <= 10
    assert all(len(d) <= len(buf) for _t, _l, d, _o in got)
