"""CLI: ``python -m testdata.synth scenario NAME -o out.pcap [--truth t.jsonl] [--seed N]`` and
``python -m testdata.synth scale -o big.pcap --mb 250``.  See README.md."""
from __future__ import annotations

import argparse
import sys
import time

from .capture import WriteOptions
from .frames import LINKS, LinkSpec

SCENARIOS = ("clean_mix", "faults_mix", "linktypes", "agent_sessions")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", required=True, help="capture file to write")
    p.add_argument("--truth", help="truth JSONL to write (one line per LLM exchange)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--format", choices=("pcap", "pcapng"), default=None,
                   help="default: from the extension (.pcapng → pcapng), else pcap")
    p.add_argument("--ns", action="store_true", help="nanosecond timestamps")
    p.add_argument("--link", choices=sorted(LINKS), default="ethernet")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testdata.synth", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("scenario", help="write a named scenario")
    sp.add_argument("name", choices=SCENARIOS)
    sp.add_argument("--calls", type=int, default=None, help="approximate number of LLM calls")
    _common(sp)
    sc = sub.add_parser("scale", help="write a big capture fast from pre-rendered templates")
    sc.add_argument("--mb", type=float, default=250.0)
    sc.add_argument("--concurrency", type=int, default=64)
    sc.add_argument("--checksums", action="store_true", help="compute TCP checksums (slower)")
    _common(sc)
    a = ap.parse_args(argv)
    fmt = a.format or ("pcapng" if a.out.endswith(".pcapng") else "pcap")
    opts = WriteOptions(LinkSpec.named(a.link), fmt, a.ns, True)
    t0 = time.perf_counter()
    if a.cmd == "scale":
        from .scale import scale
        opts.tcp_checksum = a.checksums
        r = scale(a.seed, a.out, a.truth, opts, mb=a.mb, concurrency=a.concurrency)
    else:
        from . import agents, scenarios
        fn = {"clean_mix": scenarios.clean_mix, "faults_mix": scenarios.faults_mix,
              "linktypes": scenarios.linktypes, "agent_sessions": agents.agent_sessions}[a.name]
        kw = {"n_calls": a.calls} if a.calls else {}
        r = fn(a.seed, a.out, a.truth, opts, **kw)
    dt = time.perf_counter() - t0
    files = r.extra_files or [r.pcap] + ([r.truth] if r.truth else [])
    print(f"wrote {', '.join(files)}: {r.packets} packets, {r.bytes / 1e6:.1f} MB, {r.calls} LLM calls, "
          f"{r.connections} connections in {dt:.1f}s ({r.bytes / 1e6 / max(dt, 1e-9):.1f} MB/s)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
