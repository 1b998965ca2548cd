"""Live load test: a capture replayed onto ``lo`` with tcpreplay at increasing rates, captured by ``heron run -i lo``.

usage (as root): python benchmarks/bench_live_replay.py [--mb 400 | --capture FILE] [--rates 25,50,100,...,top]
                 [--workers 2] [--heron-config TOML] [--cache-dir DIR] [--json OUT]

Answers "how fast can traffic arrive before heron loses any of it?" with real packets through the kernel:

1. **Capture.** ``python -m testdata.synth scale --mb N`` (or ``--capture FILE``), Ethernet link type.
2. **Prepared for lo** (kept in ``--cache-dir``, reused while the source file is unchanged):
   ``tcpdump -r SRC -w … 'ip and tcp'`` (IPv4 TCP only: the only IPv6 loopback address is ``::1``, so
   distinct IPv6 hosts cannot be kept apart on lo), then frames longer than 65,535 bytes are split into
   valid TCP segments (tcpreplay 4.4 sends at most 65,535 bytes of a frame; the rest would be cut off
   and seen as a gap), then ``tcprewrite --pnat=0.0.0.0/0:127.0.0.0/8`` puts every address in
   127.0.0.0/8, ``--enet-smac/--enet-dmac`` give all frames two fixed, locally administered MACs and
   ``--fixcsum`` repairs the checksums. The MACs are not lo's own (all zeros), so the kernel's IP layer
   discards the frames (``PACKET_OTHERHOST``) while packet sockets still see them, and the BPF filter
   ``tcp and ether src S and ether dst D`` keeps other loopback traffic on a shared machine out of the
   count.
3. **Ground truth:** ``heron ingest PREPARED --no-retention --json`` (the calls an offline read finds).
4. **Per rate:** start ``heron run -i lo --bpf-filter … --workers W --db TMP --status-file … --port 0``,
   wait until its status file says ``running``, ``tcpreplay -i lo --preload-pcap --mbps R`` (or
   ``--topspeed``), wait until heron's counters stop moving with empty queues, stop it with SIGINT (it
   drains and closes every flow), then read its ``runs`` row and count ``calls``.

A rung passes when kernel drops and overload drops are both 0 and every expected call is stored. The
replay is *sustained* when it lasted at least ``--min-seconds`` (default 20 s), which is far longer
than any buffer (32 MiB kernel ring, 16 MiB in flight per worker) can hide; a shorter replay is
reported as a *burst*. CPU seconds of heron (all its processes) and of tcpreplay come from ``wait4``;
the 1-minute load average is printed next to every wall-clock number (docs/performance.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERON = [sys.executable, "-c", "from heron_tui.cli import heron_main; heron_main()"]
SMAC = "02:48:52:4e:00:01"
DMAC = "02:48:52:4e:00:02"
TCPREPLAY_MAX_FRAME = 65535
"""tcpreplay 4.4.3 sends no more than this many bytes of a frame (measured on lo: 65,549 → 65,535)."""
DEFAULT_RATES = "25,50,100,200,400,800,1000,1600,top"
SETTLE_S = 3.0
"""heron has drained when its counters and queues have not moved for this long after the replay."""
DRAIN_TIMEOUT_S = 180.0


class BenchError(Exception):
    """A one-line reason the benchmark cannot run (printed without a traceback)."""


# --------------------------------------------------------------------------------------------- preparation


def _run(cmd: list[str], what: str, **kw: Any) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["failed"])[-1]
        raise BenchError(f"{what}: {last}")
    return proc


def split_oversized(src: Path, dst: Path, max_frame: int = TCPREPLAY_MAX_FRAME) -> tuple[int, int]:
    """Copy a classic Ethernet pcap, splitting every IPv4/TCP frame longer than ``max_frame`` into
    consecutive segments that fit (sequence numbers advanced, FIN/PSH only on the last piece, IP total
    length set; checksums are left to ``tcprewrite --fixcsum``). Returns ``(packets in, packets out)``.

    Why: tcpreplay cuts longer frames (offload-sized segments in captures taken on the sending host),
    so heron would see a sequence gap that the file does not have."""
    data = src.read_bytes()
    if len(data) < 24:
        raise BenchError(f"{src}: not a pcap file")
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",
              b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}.get(magic)
    if endian is None:
        raise BenchError(f"{src}: not a classic pcap file")
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    if linktype != 1:
        raise BenchError(f"{src}: link type {linktype}; only Ethernet captures can be replayed onto lo")
    rec = struct.Struct(endian + "IIII")
    out = bytearray(data[:24])
    pos, n_in, n_out = 24, 0, 0
    while pos + 16 <= len(data):
        sec, frac, caplen, wirelen = rec.unpack_from(data, pos)
        frame = data[pos + 16: pos + 16 + caplen]
        pos += 16 + caplen
        if len(frame) < caplen:
            break  # a truncated last record: keep what is whole
        n_in += 1
        pieces = _split_frame(frame, max_frame) if caplen > max_frame and caplen == wirelen else [frame]
        for piece in pieces:
            out += rec.pack(sec, frac, len(piece), len(piece))
            out += piece
        n_out += len(pieces)
    dst.write_bytes(out)
    return n_in, n_out


def _split_frame(frame: bytes, max_frame: int) -> list[bytes]:
    if frame[12:14] != b"\x08\x00" or frame[23] != 6:  # not IPv4/TCP: leave it (tcpreplay will cut it)
        return [frame]
    ihl = (frame[14] & 0x0F) * 4
    tot_len = struct.unpack_from("!H", frame, 16)[0]
    tcp = 14 + ihl
    doff = (frame[tcp + 12] >> 4) * 4
    head = tcp + doff
    end = min(len(frame), 14 + tot_len)
    payload = frame[head:end]
    room = max_frame - head
    if room <= 0 or not payload:
        return [frame]
    seq = struct.unpack_from("!I", frame, tcp + 4)[0]
    flags = frame[tcp + 13]
    pieces = []
    for off in range(0, len(payload), room):
        chunk = payload[off: off + room]
        hdr = bytearray(frame[:head])
        struct.pack_into("!H", hdr, 16, ihl + doff + len(chunk))
        struct.pack_into("!I", hdr, tcp + 4, (seq + off) & 0xFFFFFFFF)
        if off + room < len(payload):
            hdr[tcp + 13] = flags & ~0x09  # FIN and PSH belong to the last piece
        pieces.append(bytes(hdr) + chunk)
    return pieces


def prepare(source: Path, cache: Path) -> Path:
    """The capture rewritten for lo (cached by the source's path, size and mtime)."""
    st = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|v1".encode()).hexdigest()[:10]
    final = cache / f"{source.stem}-{key}.lo.pcap"
    if final.exists():
        return final
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        v4 = Path(tmp) / "v4.pcap"
        split = Path(tmp) / "split.pcap"
        _run(["tcpdump", "-r", str(source), "-w", str(v4), "ip and tcp"], "tcpdump (IPv4 TCP filter)")
        n_in, n_out = split_oversized(v4, split)
        if n_in == 0:
            raise BenchError(f"{source}: no IPv4 TCP packets to replay")
        _run(["tcprewrite", "--pnat=0.0.0.0/0:127.0.0.0/8", f"--enet-smac={SMAC}", f"--enet-dmac={DMAC}",
              "--fixcsum", "-i", str(split), "-o", str(final) + ".tmp"], "tcprewrite")
        os.replace(str(final) + ".tmp", final)
    print(f"prepared {final}: {n_in} IPv4 TCP packets, {n_out - n_in} added by splitting oversized frames",
          file=sys.stderr)
    return final


def ground_truth(prepared: Path) -> dict[str, Any]:
    """``heron ingest --json`` of the prepared file (cached beside it)."""
    cached = prepared.with_suffix(".truth.json")
    if cached.exists():
        return json.loads(cached.read_text())
    proc = _run([*HERON, "ingest", str(prepared), "--no-retention", "--json"], "heron ingest", cwd=ROOT)
    truth = json.loads(proc.stdout)
    cached.write_text(json.dumps(truth))
    return truth


def synth_capture(mb: int, seed: int, cache: Path) -> Path:
    path = cache / f"synth-scale-{mb}mb-seed{seed}.pcap"
    if not path.exists():
        _run([sys.executable, "-m", "testdata.synth", "scale", "--mb", str(mb), "--seed", str(seed),
              "-o", str(path) + ".tmp.pcap"], "testdata.synth scale", cwd=ROOT)
        os.replace(str(path) + ".tmp.pcap", path)
    return path


# --------------------------------------------------------------------------------------------- one rung


def _wait_rusage(proc: subprocess.Popen, timeout: float) -> tuple[int, float]:
    """Wait for ``proc`` (killing it after ``timeout``) and return ``(exit code, CPU seconds)``; the CPU
    time includes every descendant it reaped (heron's reader and workers)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, ru.ru_utime + ru.ru_stime
        if time.monotonic() > deadline:
            proc.kill()
            deadline = float("inf")
        time.sleep(0.05)


def _status(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _flat(st: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group in st.get("pipeline", {}).get("counters", {}).values():
        out.update(group)
    return out


def _cpu_s(pid: int) -> float:
    """utime + stime of one live process, from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            pass
    return out


def _cpu_split(heron_pid: int, status: dict[str, Any]) -> dict[str, Any]:
    """CPU seconds so far of heron's main process (assembler + store), its reader and each worker."""
    workers = {w.get("pid"): w for w in status.get("pipeline", {}).get("workers", [])}
    split: dict[str, Any] = {"main": round(_cpu_s(heron_pid), 1), "reader": 0.0, "workers": []}
    for child in _children(heron_pid):
        if child in workers:
            split["workers"].append(round(_cpu_s(child), 1))
        else:
            split["reader"] = round(split["reader"] + _cpu_s(child), 1)
    return split


def _replay(prepared: Path, rate: str) -> dict[str, Any]:
    speed = ["--topspeed"] if rate == "top" else ["--mbps", rate]
    proc = subprocess.Popen(["tcpreplay", "-i", "lo", "--preload-pcap", *speed, str(prepared)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    rc, cpu = _wait_rusage(proc, 3600)
    m = re.search(r"Actual: (\d+) packets \((\d+) bytes\) sent in ([\d.]+) seconds", out)
    mbps = re.search(r"Rated: [\d.]+ Bps, ([\d.]+) Mbps", out)
    failed = re.search(r"Failed packets:\s+(\d+)", out)
    if rc != 0 or m is None:
        raise BenchError("tcpreplay: " + (out.strip().splitlines() or [f"exit {rc}"])[-1])
    return {"sent": int(m.group(1)), "bytes": int(m.group(2)), "seconds": float(m.group(3)),
            "mbps": float(mbps.group(1)) if mbps else 0.0, "failed": int(failed.group(1)) if failed else 0,
            "tcpreplay_cpu_s": round(cpu, 2)}


def _settle(proc: subprocess.Popen, status: Path) -> None:
    """Until heron's counters and queues stopped moving for ``SETTLE_S`` with every queue empty."""
    last: Any = None
    since = time.monotonic()
    deadline = since + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        st = _status(status)
        c = _flat(st)
        depths = tuple(q.get("depth", 0) for q in st.get("pipeline", {}).get("queues", []))
        sig = (c.get("packets_read"), c.get("calls_received"), c.get("rows_written.calls"), depths)
        now = time.monotonic()
        if sig != last:
            last, since = sig, now
        elif not any(depths) and now - since >= SETTLE_S:
            return
        time.sleep(0.25)


def run_rung(prepared: Path, rate: str, workers: int, bpf: str, truth: dict[str, Any], keep: Path | None,
             config: Path | None = None) -> dict[str, Any]:
    import duckdb

    with tempfile.TemporaryDirectory(prefix="heron-live-") as tmp:
        db = Path(tmp) / "live.duckdb"
        status = Path(tmp) / "status.json"
        errlog = Path(tmp) / "heron.err"
        with open(errlog, "w") as err:
            heron = subprocess.Popen([*HERON, "run", "-i", "lo", "--bpf-filter", bpf, "--workers", str(workers),
                                      "--db", str(db), "--status-file", str(status), "--port", "0",
                                      *(["--config", str(config)] if config else [])],
                                     cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 60
            while _status(status).get("state") != "running":
                if heron.poll() is not None or time.monotonic() > deadline:
                    raise BenchError("heron run did not start: " + errlog.read_text().strip()[-300:])
                time.sleep(0.1)
            load_before = os.getloadavg()[0]
            rep = _replay(prepared, rate)
            load_after = os.getloadavg()[0]
            t0 = time.monotonic()
            _settle(heron, status)
            drain_s = time.monotonic() - t0
            cpu_split = _cpu_split(heron.pid, _status(status))
        finally:
            if heron.poll() is None:
                heron.send_signal(signal.SIGINT)
        rc, heron_cpu = _wait_rusage(heron, DRAIN_TIMEOUT_S)
        if rc != 0:
            raise BenchError(f"heron run exited {rc}: " + errlog.read_text().strip()[-300:])
        con = duckdb.connect(str(db), read_only=True)
        try:
            calls = con.execute("SELECT count(*) FROM calls").fetchone()[0]
            counters = json.loads(con.execute("SELECT counters FROM runs").fetchone()[0])
        finally:
            con.close()
        if keep is not None:
            shutil.copy(errlog, keep / f"heron-{rate}.err")
    row = {
        "rate": rate, **rep, "load_before": round(load_before, 2), "load_after": round(load_after, 2),
        "packets_read": counters.get("packets_read", 0),
        "dropped_kernel": counters.get("packets_dropped_kernel", 0),
        "dropped_overload": counters.get("packets_dropped_overload", 0),
        "calls_stored": calls, "calls_expected": truth["calls"],
        "damaged_exchanges": counters.get("damaged_exchanges", 0),
        "tcp_gaps_skipped": counters.get("tcp_gaps_skipped", 0),
        "heron_cpu_s": round(heron_cpu, 2), "cpu_split": cpu_split, "drain_s": round(drain_s, 1),
    }
    row["ok"] = (row["dropped_kernel"] == 0 and row["dropped_overload"] == 0 and calls == truth["calls"]
                 and row["failed"] == 0)
    return row


# --------------------------------------------------------------------------------------------- report


def _machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model or 'unknown'}), kernel {os.uname().release}"


def _split_text(split: dict[str, Any]) -> str:
    return "/".join(f"{x:.1f}" for x in (split["main"], split["reader"], *split["workers"]))


def table(rows: list[dict[str, Any]], min_seconds: float) -> str:
    head = ("| rate asked | sent Mbit/s | replay s | kind | packets sent | read | kernel drops | overload drops "
            "| calls stored / expected | damaged | heron CPU s (main/reader/workers) | tcpreplay CPU s | load 1-min | result |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        kind = "sustained" if r["seconds"] >= min_seconds else "burst"
        lines.append(
            f"| {r['rate']} | {r['mbps']:.0f} | {r['seconds']:.1f} | {kind} | {r['sent']} | {r['packets_read']} "
            f"| {r['dropped_kernel']} | {r['dropped_overload']} | {r['calls_stored']} / {r['calls_expected']} "
            f"| {r['damaged_exchanges']} | {r['heron_cpu_s']:.1f} ({_split_text(r['cpu_split'])}) "
            f"| {r['tcpreplay_cpu_s']:.1f} "
            f"| {r['load_before']:.1f}→{r['load_after']:.1f} | {'pass' if r['ok'] else 'FAIL'} |")
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]], min_seconds: float) -> str:
    passed = [r for r in rows if r["ok"]]
    if not passed:
        return "no rate passed (drops or missing calls at every rate)"
    best = max(passed, key=lambda r: r["mbps"])
    kind = "sustained" if best["seconds"] >= min_seconds else f"a burst: shorter than {min_seconds:.0f} s, use a larger --mb"
    first_fail = next((r for r in rows if not r["ok"] and r["mbps"] > best["mbps"]), None)
    text = (f"highest rate with zero drops and all calls found: {best['mbps']:.0f} Mbit/s "
            f"({best['sent'] / max(best['seconds'], 1e-9):.0f} packets/s, {best['seconds']:.1f} s, {kind})")
    if first_fail is not None:
        text += (f"; next rung {first_fail['mbps']:.0f} Mbit/s lost {first_fail['dropped_kernel']} kernel + "
                 f"{first_fail['dropped_overload']} overload packets, {first_fail['calls_stored']}/"
                 f"{first_fail['calls_expected']} calls")
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=400, help="size of the synth scale capture (default 400)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--capture", type=Path, help="replay this Ethernet pcap/pcapng instead of a synth capture")
    ap.add_argument("--rates", default=DEFAULT_RATES, help=f"Mbit/s list, 'top' = --topspeed ({DEFAULT_RATES})")
    ap.add_argument("--workers", type=int, default=2, help="heron run --workers (default 2)")
    ap.add_argument("--bpf-filter", help=f"heron's kernel filter (default: tcp from {SMAC} to {DMAC})")
    ap.add_argument("--heron-config", type=Path, help="TOML of tunables for heron run (e.g. capture.buffer_bytes)")
    ap.add_argument("--min-seconds", type=float, default=20.0, help="a replay this long counts as sustained")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "heron-bench-live")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--keep-logs", type=Path, help="copy heron's stderr of every rung into this directory")
    args = ap.parse_args()
    try:
        if os.geteuid() != 0:
            raise BenchError("needs root: tcpreplay injects and heron captures packets on lo")
        missing = [t for t in ("tcpreplay", "tcprewrite", "tcpdump") if shutil.which(t) is None]
        if missing:
            raise BenchError(f"{', '.join(missing)} not found; install with: apt-get install tcpreplay tcpdump")
        rates = [r.strip() for r in args.rates.split(",") if r.strip()]
        if not rates or any(r != "top" and not re.fullmatch(r"\d+(\.\d+)?", r) for r in rates):
            raise BenchError(f"--rates: give Mbit/s numbers or 'top', not {args.rates!r}")
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
        source = args.capture if args.capture else synth_capture(args.mb, args.seed, args.cache_dir)
        if args.heron_config and not args.heron_config.exists():
            raise BenchError(f"{args.heron_config}: no such file")
        if not source.exists():
            raise BenchError(f"{source}: no such file")
        prepared = prepare(source, args.cache_dir)
        truth = ground_truth(prepared)
        bpf = args.bpf_filter or f"tcp and ether src {SMAC} and ether dst {DMAC}"
        print(f"machine: {_machine()}; load average now {os.getloadavg()[0]:.2f}", file=sys.stderr)
        print(f"capture: {prepared} ({prepared.stat().st_size / 1e6:.0f} MB, {truth['packets']} packets, "
              f"{truth['calls']} calls offline); heron run --workers {args.workers} --bpf-filter '{bpf}'",
              file=sys.stderr)
        rows = []
        for rate in rates:
            row = run_rung(prepared, rate, args.workers, bpf, truth, args.keep_logs, args.heron_config)
            rows.append(row)
            print(f"  {rate:>5}: {row['mbps']:.0f} Mbit/s for {row['seconds']:.1f} s, kernel drops "
                  f"{row['dropped_kernel']}, overload drops {row['dropped_overload']}, calls "
                  f"{row['calls_stored']}/{row['calls_expected']}, load {row['load_after']:.2f} -> "
                  f"{'pass' if row['ok'] else 'FAIL'}", file=sys.stderr)
    except BenchError as exc:
        print(f"bench_live_replay: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench_live_replay: interrupted", file=sys.stderr)
        return 130
    print(table(rows, args.min_seconds))
    print()
    print(verdict(rows, args.min_seconds))
    if args.json:
        args.json.write_text(json.dumps({"machine": _machine(), "capture": str(prepared), "truth": truth,
                                         "workers": args.workers, "bpf_filter": bpf, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
