"""End-to-end ingest benchmark: synth scale capture → full pipeline → DuckDB file, vs tshark.

usage: python benchmarks/bench_ingest.py [--mb 250] [--workers 0,2] [--double] [--dir DIR] [--no-tshark]

For each ``--workers`` value the whole pipeline (reader, decode workers, assembler, store writer into a
fresh DuckDB file) runs in a child process, timed from ``Engine.ingest`` call to return (interpreter
start-up and imports excluded). Reported: MB/s, packets/s, LLM calls/s, CPU seconds per process (the
main process during the ingest, writer thread included; reader and workers from their final ``Stats``)
with the load average — on a shared machine wall time moves with the load, CPU time much less — peak
RSS per process (``getrusage`` of the main process, and the largest of its children: reader and
workers) and the peak of the tree's summed PSS sampled from /proc every 0.2 s (RSS would count the
pages a forked child shares with its parent twice). ``tshark -r FILE -Y http.response``
on the same file gives the reference time. ``--double`` repeats everything on a capture twice as large,
to show that memory does not grow with the input.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pss_kb(pid: int) -> int:
    """Proportional set size: shared pages (the parent's, inherited by fork) are split between the
    processes that map them, so the sum over the tree is the real footprint."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


class TreeSampler(threading.Thread):
    """Peak of (own PSS + PSS of direct children), sampled every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = 0
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.wait(0.2):
            total = _pss_kb(me) + sum(_pss_kb(c) for c in _children(me))
            self.peak_kb = max(self.peak_kb, total)


def child(workers: int, capture: str, db: str) -> None:
    """One measured run (in its own process, so getrusage figures are this run's)."""
    sys.path.insert(0, str(ROOT))
    t_start = time.perf_counter()
    from heron_core.capture.source import source_id_for
    from heron_core.config import Config
    from heron_core.engine import Engine
    from heron_core.store.db import open_store

    sampler = TreeSampler()
    sampler.start()
    store = open_store(db)
    engine = Engine(store, Config(), workers=workers)
    t0 = time.perf_counter()
    c0 = time.process_time()
    result = engine.ingest([capture], source_id_for([capture]))
    wall = time.perf_counter() - t0
    main_ingest_cpu = time.process_time() - c0
    store.close()
    sampler.stop.set()
    sampler.join()
    c = result.counters
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds per process: the main process's own, and what the reader and workers reported
    cpu = {"main": round(main_ingest_cpu, 2)}
    stats = getattr(engine.pipeline, "stats", None)
    if stats is not None:
        for (role, index), load in sorted(stats.load.items()):
            cpu[role if role == "reader" else f"{role}{index}"] = load.get("cpu_s")
    print(json.dumps({
        "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
        "workers": workers, "wall_s": wall, "process_s": time.perf_counter() - t_start,
        "bytes": os.path.getsize(capture), "packets": c["packets_read"], "calls": c["calls_received"],
        "exchanges": c["exchanges"], "errors": c["internal_errors"],
        "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_child_max_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "pss_tree_peak_mb": sampler.peak_kb / 1024, "cpu_by_process": cpu,  # main: during ingest only
        "loadavg": os.getloadavg()[0],
    }))


def ensure_capture(directory: Path, mb: int) -> Path:
    path = directory / f"scale-{mb}.pcap"
    if not path.exists():
        subprocess.run([sys.executable, "-m", "testdata.synth", "scale", "-o", str(path), "--mb", str(mb)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return path


def measure(workers: int, capture: Path, directory: Path) -> dict:
    db = directory / f"bench-w{workers}.duckdb"
    for p in (db, db.with_suffix(".duckdb.wal")):
        if p.exists():
            p.unlink()
    out = subprocess.run([sys.executable, __file__, "--child", str(workers), str(capture), str(db)],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    db.unlink(missing_ok=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def tshark_time(capture: Path) -> tuple[float, float] | None:
    """(wall s, CPU s) of ``tshark -r FILE -Y http.response`` (output discarded)."""
    exe = shutil.which("tshark")
    if exe is None:
        return None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([exe, "-r", str(capture), "-Y", "http.response"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu


def report(capture: Path, runs: list[dict], tshark: tuple[float, float] | None) -> None:
    mb = os.path.getsize(capture) / 1e6
    load = os.getloadavg()[0]
    print(f"\n{capture.name}: {mb:.0f} MB, {runs[0]['packets']} packets, {runs[0]['calls']} LLM calls; "
          f"{os.cpu_count()} CPUs, load average {load:.1f}")
    print(f"{'workers':>7} {'wall s':>7} {'CPU s':>6} {'MB/s':>6} {'pkts/s':>8} {'calls/s':>7} {'RSS main':>8} "
          f"{'RSS child':>9} {'PSS sum':>7} {'vs tshark':>9}")
    for r in runs:
        ratio = f"{tshark[0] / r['wall_s']:.2f}x" if tshark else "-"
        print(f"{r['workers']:>7} {r['wall_s']:>7.2f} {r['cpu_s']:>6.1f} {mb / r['wall_s']:>6.1f} "
              f"{r['packets'] / r['wall_s']:>8.0f} {r['calls'] / r['wall_s']:>7.0f} {r['rss_main_mb']:>7.0f}M "
              f"{r['rss_child_max_mb']:>8.0f}M {r['pss_tree_peak_mb']:>6.0f}M {ratio:>9}")
        print(f"{'':>7} CPU s by process: " + ", ".join(f"{k} {v}" for k, v in r["cpu_by_process"].items())
              + f"; load average at the end {r['loadavg']:.1f}")
    if tshark is not None:
        print(f"tshark -r FILE -Y http.response: {tshark[0]:.2f} s wall, {tshark[1]:.1f} s CPU "
              f"({mb / tshark[0]:.1f} MB/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=250)
    ap.add_argument("--workers", default="0,2", help="comma-separated worker counts")
    ap.add_argument("--double", action="store_true", help="also run on a capture twice as large")
    ap.add_argument("--dir", default="/tmp/heron-bench")
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--child", nargs=3, metavar=("WORKERS", "CAPTURE", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1], args.child[2])
        return
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    sizes = [args.mb] + ([2 * args.mb] if args.double else [])
    for mb in sizes:
        capture = ensure_capture(directory, mb)
        # tshark before and after the heron runs (averaged), so both see similar machine load
        t1 = None if args.no_tshark else tshark_time(capture)
        runs = [measure(int(w), capture, directory) for w in args.workers.split(",")]
        t2 = None if args.no_tshark else tshark_time(capture)
        tshark = ((t1[0] + t2[0]) / 2, (t1[1] + t2[1]) / 2) if t1 and t2 else None
        report(capture, runs, tshark)


if __name__ == "__main__":
    main()
