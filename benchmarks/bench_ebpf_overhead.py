"""Overhead of the eBPF TLS probes on a busy HTTPS client (issue #7): calls/s with and without them.

A client process makes LLM calls as fast as it can — ``--threads`` keep-alive HTTPS connections
(CPython's ``ssl``, i.e. ``SSL_write_ex``/``SSL_read_ex`` in the system libssl) posting chat completions,
streamed or not — to the mock server over TLS on 127.0.0.1, for ``--seconds`` per run. Runs alternate
between *off* (no heron) and *on* (``heron run --ebpf --no-retention --workers 0``, probes attached to
every libssl, so the mock server's own SSL calls are probed too, as they would be on a real host), and
each is repeated ``--rounds`` times; the median calls/s of each side and the ratio are printed, with
heron's event counters (every probed SSL call is one event) and the load average.

The mock answers a non-streamed call after a 40 ms think time and streams a chunk every 12 ms, so it takes
many threads to make the machine busy: 16 are latency-bound (~370 calls/s), 64 saturate 2 cores
(~1,300 calls/s). The figure that matters is the *relative* drop.

Run as root (the probes need CAP_BPF + CAP_PERFMON) on a host where ``heron doctor`` says eBPF works:

    python benchmarks/bench_ebpf_overhead.py [--seconds 10] [--rounds 3] [--threads 16] [--stream]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENT = r"""
import http.client, json, ssl, sys, threading, time
port, ca, seconds, threads, stream = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
ctx = ssl.create_default_context(cafile=ca)
body = json.dumps({"model": "gpt-4o-mini", "stream": stream,
                   "messages": [{"role": "user", "content": "overhead benchmark: say hi"}]}).encode()
counts = [0] * threads
stop = time.monotonic() + seconds
def run(i):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
    while time.monotonic() < stop:
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json",
                                                             "Authorization": "Bearer sk-bench-not-a-key"})
        r = conn.getresponse()
        r.read()
        if r.status == 200:
            counts[i] += 1
ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
t0 = time.monotonic()
[t.start() for t in ts]
[t.join() for t in ts]
cpu = time.process_time()
print(json.dumps({"calls": sum(counts), "seconds": time.monotonic() - t0, "cpu_s": cpu}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"mock server did not listen on {port}")


def _status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _client(port: int, ca: Path, seconds: float, threads: int, stream: bool) -> dict:
    p = subprocess.run([sys.executable, "-c", CLIENT, str(port), str(ca), str(seconds), str(threads),
                        "1" if stream else "0"], capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def _start_heron(tmp: Path) -> tuple[subprocess.Popen, Path]:
    status = tmp / "status.json"
    status.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", "from heron_tui.cli import heron_main; heron_main()", "run", "--ebpf",
                             "--no-retention", "--workers", "0", "--status-file", str(status),
                             "--port", str(_free_port())],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while _status(status).get("state") != "running":
        if proc.poll() is not None:
            raise SystemExit("heron run --ebpf exited: " + (proc.stderr.read() or "").strip())
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("heron run --ebpf did not start in 180 s")
        time.sleep(0.2)
    return proc, status


def _counters(status: Path) -> dict:
    c = _status(status).get("pipeline", {}).get("counters", {})
    flat: dict = {}
    for stage in c.values():
        if isinstance(stage, dict):
            flat.update(stage)
    return flat


def _settled(status: Path, timeout: float = 60.0) -> dict:
    """heron's counters once it has caught up: unchanged over two status-file rewrites (every 2 s)."""
    deadline = time.monotonic() + timeout
    last = _counters(status)
    while time.monotonic() < deadline:
        time.sleep(4.2)
        now = _counters(status)
        if now.get("ebpf_events") == last.get("ebpf_events"):
            return now
        last = now
    return last


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=64, help="client threads (64 saturate 2 cores)")
    ap.add_argument("--stream", action="store_true", help="streamed answers (many more SSL_read calls)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_ebpf_overhead: run as root (the probes need CAP_BPF + CAP_PERFMON)", file=sys.stderr)
        return 1
    from testdata.mock_llm.tls import make_tls_files

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        tls = make_tls_files(tmp / "tls")
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "testdata.mock_llm", "--port", str(port), "--tls",
                                   str(tls.cert), str(tls.key)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            _wait_port(port)
            _client(port, tls.ca, 1.0, 2, a.stream)  # warm-up
            off: list[float] = []
            on: list[float] = []
            events = lost = 0
            for _ in range(a.rounds):
                r = _client(port, tls.ca, a.seconds, a.threads, a.stream)
                off.append(r["calls"] / r["seconds"])
                heron, status = _start_heron(tmp)
                try:
                    before = _counters(status).get("ebpf_events", 0)
                    r = _client(port, tls.ca, a.seconds, a.threads, a.stream)
                    on.append(r["calls"] / r["seconds"])
                    c = _settled(status)
                    events += c.get("ebpf_events", 0) - before
                    lost += c.get("ebpf_events_lost", 0)
                finally:
                    heron.send_signal(2)
                    heron.wait(60)
        finally:
            server.terminate()
            server.wait(10)
    mo, mn = statistics.median(off), statistics.median(on)
    kind = "streamed" if a.stream else "non-streamed"
    print(f"{os.cpu_count()} cpu(s), load average {os.getloadavg()[0]:.1f}; {a.threads} client threads, {kind}, "
          f"{a.rounds} × {a.seconds:.0f} s each way")
    print(f"calls/s without probes: {mo:8.1f}   (runs: {', '.join(f'{x:.1f}' for x in off)})")
    print(f"calls/s with probes:    {mn:8.1f}   (runs: {', '.join(f'{x:.1f}' for x in on)})")
    print(f"change: {100 * (mn - mo) / mo:+.1f} %; probe events seen by heron: {events} "
          f"({events / max(1, sum(on) * a.seconds):.1f} per call), lost: {lost}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
