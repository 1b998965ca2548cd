"""Throughput of TcpReassembler's hot path: in-order 1400-byte segments into a no-op handler.

Usage: python benchmarks/bench_tcp.py [N_SEGMENTS] [N_FLOWS]

Segments are built like the decoder builds them (fresh endpoint tuples and address bytes per packet, so
hashes are not pre-cached), in chunks so memory stays small; only ``segment()`` calls are timed. Reported
rates use CPU time of this process (``time.process_time``) so a busy machine does not distort them; the
wall-clock rate is shown alongside. Scenarios: one flow; N_FLOWS flows interleaved round-robin; one flow
with 1 % of segments swapped with their successor (slow path: store + drain).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from heron_core.config import Config  # noqa: E402
from heron_core.records import ACK, PSH, SYN, Segment  # noqa: E402
from heron_core.tcp import TcpReassembler  # noqa: E402

PAYLOAD = bytes(1400)
T0 = 1_700_000_000_000_000
CHUNK = 100_000
SERVER_IP = bytes([10, 0, 0, 2])
CLIENT_IP = bytes([10, 0, 0, 1])


class NoOp:
    def data(self, from_client: bool, data: bytes, ts_us: int) -> None:
        pass

    def gap(self, from_client: bool, nbytes: int, ts_us: int) -> None:
        pass

    def fin(self, from_client: bool, ts_us: int) -> None:
        pass

    def reset(self, ts_us: int) -> None:
        pass

    def expire(self, ts_us: int, cause: str) -> None:
        pass

    def closed(self, ts_us: int) -> None:
        pass

    def awaiting_response(self) -> bool:
        return False


def chunk(start: int, n: int, flows: int, seqs: list[int], swap_every: int) -> list[Segment]:
    """Segments ``start .. start+n`` round-robin over ``flows`` flows (``seqs`` is advanced)."""
    out = []
    for i in range(start, start + n):
        f = i % flows
        out.append(Segment("bench", T0 + i, (bytes(CLIENT_IP), 1024 + f), (bytes(SERVER_IP), 443), seqs[f], 1,
                           ACK | PSH, PAYLOAD, 1400))
        seqs[f] = (seqs[f] + 1400) & 0xFFFFFFFF
    if swap_every:
        for i in range(flows, n - flows, swap_every):
            out[i], out[i + flows] = out[i + flows], out[i]
    return out


def run(n: int, flows: int, swap_every: int = 0) -> tuple[float, float]:
    """(segments per CPU second, segments per wall second)."""
    counters: Counter = Counter()
    r = TcpReassembler(lambda info: NoOp(), counters, Config())
    isn = 0xFFFF0000  # every flow wraps 2**32 after ~46 segments
    for f in range(flows):
        r.segment(Segment("bench", T0, (CLIENT_IP, 1024 + f), (SERVER_IP, 443), isn, 0, SYN, b"", 0))
    seqs = [(isn + 1) & 0xFFFFFFFF] * flows
    cpu = wall = 0.0
    feed = r.segment
    for start in range(0, n, CHUNK):
        segs = chunk(start, min(CHUNK, n - start), flows, seqs, swap_every)
        t, w = time.process_time(), time.perf_counter()
        for s in segs:
            feed(s)
        cpu += time.process_time() - t
        wall += time.perf_counter() - w
    assert counters["tcp_gaps_skipped"] == 0 and counters["tcp_ooo_bytes"] == 0
    return n / cpu, n / wall


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    flows = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    print(f"python {sys.version.split()[0]}, {n:,} segments of 1400 bytes, best of 3")
    for label, nf, swap in (("1 flow, in order", 1, 0), (f"{flows} flows, in order", flows, 0),
                            ("1 flow, 1% reordered", 1, 100)):
        cpu, wall = max(run(n, nf, swap) for _ in range(3))
        gbit = cpu * 1400 * 8 / 1e9
        print(f"  {label:22s} {cpu:11,.0f} seg/s CPU ({gbit:4.1f} Gbit/s)  {wall:11,.0f} seg/s wall")


if __name__ == "__main__":
    main()
