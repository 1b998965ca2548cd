"""Throughput of the capture stage: pcap file → ``open_file_source`` → segments.

Generates (deterministically, seed fixed) a classic pcap of Ethernet/IPv4/TCP frames of mixed sizes
into a temporary directory, then times full passes of ``open_file_source`` over it (reading, decoding,
heartbeats) and prints MB/s and packets/s, by wall clock and by process CPU time (the steadier figure
on a shared machine; the file was just written, so it is in the page cache). The default size mix is
roughly what an LLM capture looks like: many pure ACKs and MSS-sized segments, some small ones, a few
large offload (TSO/GRO) frames up to 65000 bytes of payload.

    python benchmarks/bench_capture.py [--mb 200] [--repeat 3] [--mix llm|small] [--keep PATH]
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from heron_core.capture import open_file_source  # noqa: E402
from heron_core.config import Config  # noqa: E402
from heron_core.records import Segment  # noqa: E402


def _payload_len(rng: random.Random, mix: str) -> int:
    if mix == "small":
        return rng.choice((0, 0, 1, 40, 200))
    r = rng.random()
    if r < 0.35:
        return 0  # pure ACK
    if r < 0.75:
        return 1448  # MSS-sized
    if r < 0.95:
        return rng.randint(1, 1448)
    return rng.randint(1449, 65000)  # offload-sized


def generate(path: Path, target_bytes: int, mix: str = "llm", seed: int = 1) -> int:
    """Write the benchmark pcap; returns the packet count."""
    rng = random.Random(seed)
    blob = bytes(rng.getrandbits(8) for _ in range(65536))
    eth = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
    rec = struct.Struct("<IIII")
    ip = struct.Struct("!BBHHHBBH4s4s")
    tcp = struct.Struct("!HHIIBBHHH")
    written = 24
    count = 0
    ts = 1_700_000_000_000_000
    with open(path, "wb", buffering=1 << 20) as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        while written < target_bytes:
            plen = _payload_len(rng, mix)
            flow = rng.randrange(64)
            client = rng.random() < 0.5
            a, b = bytes((10, 0, 0, 1 + flow)), bytes((10, 0, 1, 1))
            sport, dport = 40000 + flow, 443
            if not client:
                a, b, sport, dport = b, a, dport, sport
            start = rng.randrange(0, 65536 - plen + 1)
            frame = b"".join(
                (
                    eth,
                    ip.pack(0x45, 0, 40 + plen, count & 0xFFFF, 0x4000, 64, 6, 0, a, b),
                    tcp.pack(sport, dport, rng.getrandbits(32), rng.getrandbits(32), 0x50, 0x18, 65535, 0, 0),
                    blob[start : start + plen],
                )
            )
            ts += rng.randrange(0, 2000)
            fh.write(rec.pack(ts // 1_000_000, ts % 1_000_000, len(frame), len(frame)))
            fh.write(frame)
            written += 16 + len(frame)
            count += 1
    return count


def run_once(path: Path) -> tuple[float, float, int, int, Counter]:
    """One full pass: (wall s, CPU s, segments, payload bytes, counters)."""
    counters: Counter = Counter()
    segments = payload = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for rec in open_file_source(path, "bench", counters, Config()):
        if type(rec) is Segment:
            segments += 1
            payload += len(rec.payload)
    return time.perf_counter() - t0, time.process_time() - c0, segments, payload, counters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="file size in MB (default 200)")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes; the best is reported")
    ap.add_argument("--keep", type=Path, help="write the pcap here instead of a temporary directory")
    ap.add_argument(
        "--mix",
        choices=("llm", "small"),
        default="llm",
        help="frame sizes: 'llm' (default, mixed up to 65000 B) or 'small' (ACKs and tiny segments: "
        "the per-packet ceiling)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.pcap"
        t0 = time.perf_counter()
        count = generate(path, args.mb * 1_000_000, args.mix)
        size = path.stat().st_size
        print(
            f"generated {path.name}: {size / 1e6:.1f} MB, {count} packets in {time.perf_counter() - t0:.1f} s"
        )
        walls, cpus = [], []
        for _ in range(args.repeat):
            wall, cpu, segments, payload, counters = run_once(path)
            assert segments == count == counters["packets_decoded"], (segments, count, counters)
            walls.append(wall)
            cpus.append(cpu)
            print(f"  pass: {wall:.3f} s wall, {cpu:.3f} s CPU")
        for label, best in (("wall", min(walls)), ("CPU", min(cpus))):
            print(
                f"open_file_source ({label}, best of {args.repeat}): {size / 1e6 / best:.0f} MB/s, "
                f"{count / best:,.0f} packets/s, {best / count * 1e6:.2f} µs/packet"
            )
        print(
            f"  payload {payload / 1e6:.1f} MB in {count} segments, "
            f"{counters['heartbeats_emitted']} heartbeats"
        )


if __name__ == "__main__":
    main()
