"""open_file_source: eager header errors, segments in file order, heartbeat placement and event time
(capture-and-http.md §2.6), EndOfSource, counters; source_id_for naming."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from capture_builders import PAYLOAD, PcapNg, eth_ip4_tcp, write_pcap
from scapy.all import ARP, Ether

from heron_core.capture import CaptureFileError, frames_to_records, open_file_source, source_id_for
from heron_core.config import Config
from heron_core.records import EndOfSource, Heartbeat, Segment

T0 = 1_700_000_000
S = 1_000_000


def records_at(tmp_path: Path, offsets_us: list[int], frames: list[bytes] | None = None, **cfg) -> list:
    """Write one frame per offset (µs after T0) and return what the source yields, as compact tuples:
    ``("seg", ts offset, payload)``, ``("hb", ts offset)``, ``("end",)``."""
    frames = frames or [eth_ip4_tcp(str(i).encode()) for i in range(len(offsets_us))]
    recs = [(T0 + off // S, off % S, data) for off, data in zip(offsets_us, frames, strict=True)]
    path = write_pcap(tmp_path / "cap.pcap", recs)
    return compact(open_file_source(path, "cap", Counter(), Config.load(**cfg)))


def compact(records) -> list:
    out = []
    for r in records:
        if isinstance(r, Segment):
            out.append(("seg", r.ts_us - T0 * S, r.payload))
        elif isinstance(r, Heartbeat):
            assert r.source_id == "cap"
            out.append(("hb", r.ts_us - T0 * S))
        else:
            assert r == EndOfSource("cap")
            out.append(("end",))
    return out


def test_heartbeat_before_the_packet_that_crossed_it(tmp_path: Path) -> None:
    offsets = [0, 500_000, 999_999, 1_200_000, 1_300_000, 900_000, 2_100_000, 2_200_000, 9_000_000, 9_000_001]
    got = records_at(tmp_path, offsets)
    assert got == [
        ("seg", 0, b"0"),
        ("seg", 500_000, b"1"),
        ("seg", 999_999, b"2"),
        ("hb", 1_200_000),  # event time advanced >= 1 s since the reference (the first packet) ...
        ("seg", 1_200_000, b"3"),  # ... and the heartbeat comes before the packet that crossed it
        ("seg", 1_300_000, b"4"),
        ("seg", 900_000, b"5"),  # late packet: keeps its timestamp, no heartbeat, event time stays
        ("seg", 2_100_000, b"6"),  # 0.9 s after the last heartbeat: none (spacing is not a 1 s grid)
        ("hb", 2_200_000),
        ("seg", 2_200_000, b"7"),
        ("hb", 9_000_000),  # a long jump gives one heartbeat, not one per elapsed second
        ("seg", 9_000_000, b"8"),
        ("seg", 9_000_001, b"9"),
        ("end",),
    ]


def test_event_time_never_goes_back(tmp_path: Path) -> None:
    # after a jump to 5 s, packets at 1..4 s are late: they neither emit heartbeats nor reset event time
    offsets = [0, 5_000_000, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_999_999, 6_000_000]
    got = records_at(tmp_path, offsets)
    assert [r for r in got if r[0] == "hb"] == [("hb", 5_000_000), ("hb", 6_000_000)]
    assert got.index(("hb", 6_000_000)) == got.index(("seg", 6_000_000, b"7")) - 1


def test_heartbeat_spacing_from_config_and_non_tcp_frames(tmp_path: Path) -> None:
    arp = bytes(Ether() / ARP())
    frames = [eth_ip4_tcp(b"a"), arp, eth_ip4_tcp(b"b"), arp]
    got = records_at(tmp_path, [0, 250_000, 300_000, 600_000], frames, **{"capture.heartbeat_s": 0.25})
    # the ARP frame moves event time too: its heartbeat is emitted although it yields no segment
    assert got == [("seg", 0, b"a"), ("hb", 250_000), ("seg", 300_000, b"b"), ("hb", 600_000), ("end",)]


def test_counters(tmp_path: Path) -> None:
    arp = bytes(Ether() / ARP())
    frames = [eth_ip4_tcp(b"x" * i) for i in range(5)] + [arp]
    recs = [(T0 + i, 0, f) for i, f in enumerate(frames)]
    path = write_pcap(tmp_path / "c.pcap", recs)
    counters: Counter = Counter()
    out = list(open_file_source(path, "c", counters, Config()))
    assert sum(isinstance(r, Segment) for r in out) == 5
    assert +counters == Counter(
        packets_read=6,
        bytes_read=sum(len(f) for f in frames),
        packets_decoded=5,
        not_ip=1,
        heartbeats_emitted=5,
    )


def test_counters_when_abandoned_early(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "c.pcap", [(T0, i, eth_ip4_tcp(PAYLOAD)) for i in range(10)])
    counters: Counter = Counter()
    it = open_file_source(path, "c", counters, Config())
    for _ in range(4):
        next(it)
    it.close()
    assert counters["packets_decoded"] == 4


def test_segments_carry_source_and_exact_fields(tmp_path: Path) -> None:
    ng = PcapNg().shb().idb(1, tsresol=9).epb(0, T0 * 1_000_000_000 + 1_500, eth_ip4_tcp(PAYLOAD))
    path = tmp_path / "one.pcapng"
    path.write_bytes(bytes(ng))
    out = list(open_file_source(path, "one", Counter(), Config()))
    assert len(out) == 2 and out[1] == EndOfSource("one")
    seg = out[0]
    assert (seg.source_id, seg.ts_us, seg.payload, seg.wire_len, seg.process) == (
        "one",
        T0 * S + 1,
        PAYLOAD,
        49,
        None,
    )
    assert type(seg.payload) is bytes  # not a view into the mapped file


def test_empty_capture_yields_only_end(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "e.pcap", [])
    assert list(open_file_source(path, "e", Counter(), Config())) == [EndOfSource("e")]


def test_header_errors_raise_on_call(tmp_path: Path) -> None:
    with pytest.raises(CaptureFileError, match="^file not found$"):
        open_file_source(tmp_path / "missing.pcap", "m", Counter(), Config())
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"definitely not a capture")
    with pytest.raises(CaptureFileError, match="^not a pcap or pcapng file$"):
        open_file_source(bad, "b", Counter(), Config())


def test_truncated_file_still_ends_with_end_of_source(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "t.pcap", [(T0, i, eth_ip4_tcp(b"abc")) for i in range(3)])
    path.write_bytes(path.read_bytes()[:-2])
    counters: Counter = Counter()
    out = list(open_file_source(path, "t", counters, Config()))
    assert [type(r) for r in out] == [Segment, Segment, EndOfSource]
    assert counters["file_truncated"] == 1


def test_frames_to_records_matches_file_source(tmp_path: Path) -> None:
    offsets = [0, 700_000, 1_400_000, 3_000_000]
    frames = [eth_ip4_tcp(bytes([i]) * i) for i in range(4)]
    expected = records_at(tmp_path, offsets, frames)
    live = [(T0 * S + off, 1, f, len(f)) for off, f in zip(offsets, frames, strict=True)]
    assert compact(frames_to_records(live, "cap", Counter(), Config())) == expected


@pytest.mark.parametrize(
    ("paths", "ids"),
    [
        (["a.pcap"], ["a"]),
        (["/x/cap.pcap", "/y/cap.pcapng", "cap.pcap"], ["cap", "cap-2", "cap-3"]),
        (["d/run.1.pcap", "run.1.pcapng", "other"], ["run.1", "run.1-2", "other"]),
        (["x.pcap", "x-2.pcap", "x.pcapng"], ["x", "x-2", "x-3"]),
        (["x.pcap", "x.pcapng", "x-2.pcap"], ["x", "x-2", "x-2-2"]),
        ([Path("p/q.pcapng")], ["q"]),
        ([], []),
    ],
)
def test_source_id_for(paths: list, ids: list[str]) -> None:
    assert source_id_for(paths) == ids
