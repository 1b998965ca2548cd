"""heron's eBPF agent: compiles and attaches the TLS uprobes with bcc and streams events to heron.

Run by ``EbpfSource`` as ``<python with bcc> -E -s -B agent.py --ppid PID [--pid P]... [--comm C]...``.
It is a standalone script (stdlib + bcc; siblings ``frames``, ``targets``, ``elfsyms`` are imported as
top-level modules) because bcc is a distribution package for the *system* Python (Debian's
python3-bpfcc for /usr/bin/python3) while heron usually runs from a virtualenv of another Python.
See docs/ebpf.md for the design.

Lifecycle — probes never outlive heron:

* ``prctl(PR_SET_PDEATHSIG, SIGTERM)``: the kernel signals us when the process that started us dies,
  even by SIGKILL; stdin EOF (heron closed the pipe or died) and SIGTERM stop us too.
* Stopping consumes what the ring buffer still holds, then ``BPF.cleanup()`` detaches every probe.
* Probes are attached through the perf uprobe PMU, i.e. file descriptors: if this process is killed
  outright the kernel closes them and removes the probes (no tracefs entries are created).

Output: frames (``frames.py``) on stdout. Exit status 0 after a stop, 1 after an ERROR frame.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import threading
import time

import frames as F
from targets import Scanner, process_identity

_PR_SET_PDEATHSIG = 1
_POLL_MS = 100
_STATS_S = 1.0
_ENTRY_FN = {"SSL_write": "heron_write", "SSL_write_ex": "heron_write_ex", "SSL_read": "heron_read",
             "SSL_read_ex": "heron_read_ex"}
_CLOSE_FNS = ("SSL_shutdown", "SSL_free")


class Stop(Exception):
    """Raised by the signal handler outside the ring-buffer callback to leave the main loop."""


class State:
    """What the handlers share with the main loop (no module-level mutable state)."""

    def __init__(self) -> None:
        self.stop = False
        self.in_callback = False
        self.cleaning = False  # detaching: a second signal must not interrupt it


class Output:
    """Buffered frame writer on fd 1; a vanished reader (EPIPE) means heron is gone: stop."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def add(self, frame: bytes) -> None:
        self.parts.append(frame)

    def flush(self) -> None:
        if not self.parts:
            return
        data = b"".join(self.parts)
        self.parts = []
        view = memoryview(data)
        while view:
            n = os.write(1, view)
            view = view[n:]


def fail(out: Output, what: str, why: str) -> int:
    out.add(F.encode(F.ERROR, f"{what}: {why}".encode()))
    try:
        out.flush()
    except OSError:
        pass
    return 1


def watch_parent(ppid: int, state: State) -> None:
    """Die with the parent: PDEATHSIG, plus stdin EOF (a reader thread), for the rare race at start."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if ppid and os.getppid() != ppid:
        state.stop = True  # the parent died before prctl took effect

    def stdin_eof() -> None:
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        state.stop = True

    threading.Thread(target=stdin_eof, name="stdin-eof", daemon=True).start()


def clock_offset_ns() -> int:
    """realtime − monotonic, from the tightest of a few samples (bpf_ktime_get_ns is CLOCK_MONOTONIC)."""
    best = None
    for _ in range(5):
        m1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        r = time.clock_gettime_ns(time.CLOCK_REALTIME)
        m2 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        if best is None or m2 - m1 < best[0]:
            best = (m2 - m1, r - (m1 + m2) // 2)
    return best[1]


def detach(bpf, ev_names) -> None:
    """Remove uprobes by closing their perf event descriptors.

    bcc's own ``detach_uprobe``/``cleanup`` (0.26) close the descriptor and then also try to delete a
    tracefs ``uprobe_events`` entry; probes made through the perf uprobe PMU have none, and without a
    mounted tracefs that step fails and aborts the cleanup loop, leaving later probes attached until the
    process exits. Closing the descriptor is what detaches a PMU uprobe, so that is all we do."""
    from bcc import lib

    for ev_name in list(ev_names):
        fd = bpf.uprobe_fds.get(ev_name)
        if fd is None:
            continue
        lib.bpf_close_perf_event_fd(fd)
        if hasattr(bpf, "_del_uprobe_fd"):
            bpf._del_uprobe_fd(ev_name)  # also keeps bcc's probe quota right
        else:
            del bpf.uprobe_fds[ev_name]


class Prober:
    """The loaded program, its attachments per target inode, and process identities sent so far."""

    def __init__(self, bpf, out: Output, scanner: Scanner) -> None:
        self.bpf = bpf
        self.out = out
        self.scanner = scanner
        self.attached: dict = {}  # (dev, ino) -> ([bcc event names], kind, display path, symbols)
        self.failed: dict = {}  # (dev, ino) -> error (not retried until the inode changes)
        self.idents: dict[int, tuple[set[str], dict]] = {}  # pid -> (thread names seen, identity sent)
        self.probes = 0

    def rescan(self) -> None:
        """Attach to new targets, detach from inodes no process maps any more (linker-cache libraries
        stay: a process started later will map them)."""
        found = self.scanner.scan()
        changed = False
        for key, t in found.items():
            if key in self.attached or key in self.failed:
                continue
            before = set(self.bpf.uprobe_fds)
            try:
                for sym in sorted(t.symbols):
                    if sym in _ENTRY_FN:
                        self.bpf.attach_uprobe(name=t.path, sym=sym, fn_name=_ENTRY_FN[sym])
                        self.bpf.attach_uretprobe(name=t.path, sym=sym, fn_name="heron_ret")
                    elif sym in _CLOSE_FNS:
                        self.bpf.attach_uprobe(name=t.path, sym=sym, fn_name="heron_close")
            except Exception as exc:  # noqa: BLE001 - bcc raises bare Exception; one bad target is not fatal
                detach(self.bpf, set(self.bpf.uprobe_fds) - before)
                self.failed[key] = f"{t.display}: {exc}"
                self.out.add(F.encode(F.LOG, f"cannot attach to {t.display}: {exc}".encode()))
                changed = True
                continue
            done = sorted(set(self.bpf.uprobe_fds) - before)
            self.attached[key] = (done, t.kind, t.display, sorted(t.symbols))
            self.probes += len(done)
            changed = True
        for key in [k for k in self.attached if k not in found]:
            done = self.attached.pop(key)[0]
            detach(self.bpf, done)
            self.probes -= len(done)
            changed = True
        self.scanner.forget(found.keys())
        live = {int(p) for p in os.listdir(self.scanner.proc) if p.isdigit()}
        self.idents = {p: v for p, v in self.idents.items() if p in live}
        if changed:
            self.out.add(F.encode_json(F.TARGETS, {
                "attached": [{"path": v[2], "kind": v[1], "symbols": v[3]} for v in self.attached.values()],
                "failed": sorted(self.failed.values()), "probes": self.probes}))

    def identity(self, pid: int, comm: str) -> None:
        """Send ``{pid, comm, exe}`` before the first event of a process. It is read from ``/proc`` at
        once, while the process surely runs (a short-lived curl may be gone by the time heron decodes
        its events). A thread name not seen before for the pid (another thread, or an exec or pid
        reuse) reads it again; a PROC frame goes out only when the identity changed."""
        known = self.idents.get(pid)
        if known is not None and comm in known[0]:
            return
        ident = process_identity(self.scanner.proc, pid, comm)
        if known is None or known[1] != ident:
            self.out.add(F.encode_json(F.PROC, ident))
        self.idents[pid] = ((known[0] if known else set()) | {comm}, ident)

    def counters(self) -> dict:
        counts = self.bpf["counts"]
        total = [0, 0]
        for i in (0, 1):
            total[i] = int(sum(counts[ctypes.c_int(i)]))
        return {"events_lost": total[0], "chunks_dropped": total[1], "probes": self.probes}


def build(args):
    """Compile the program; returns the BPF object or raises with a message for the ERROR frame."""
    from bcc import BPF
    from bcc.utils import get_possible_cpus

    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "program.bpf.c"), encoding="utf-8") as fh:
        text = fh.read()

    filtering = bool(args.pid or args.comm)
    ncpu = max(get_possible_cpus()) + 1
    bpf = BPF(text=text, cflags=[f"-DHERON_FILTER={1 if filtering else 0}", f"-DHERON_NCPU={ncpu}",
                                 "-Wno-unused-function"])
    if filtering:
        pids = bpf["filter_pids"]
        for pid in args.pid:
            pids[ctypes.c_uint32(pid)] = ctypes.c_uint8(1)
        comms = bpf["filter_comms"]
        for name in args.comm:
            key = comms.Key()
            raw = name.encode()[:15]
            ctypes.memmove(ctypes.addressof(key), raw, len(raw))
            comms[key] = ctypes.c_uint8(1)
    return bpf


def explain(exc: BaseException) -> tuple[str, str]:
    """``(what, why)`` for a failure to compile or load (bcc raises bare Exceptions with long text)."""
    text = str(exc)
    low = text.lower()
    if "operation not permitted" in low or "permission denied" in low:
        return "--ebpf", "loading uprobes needs root or CAP_BPF + CAP_PERFMON (fix: run as root)"
    if "failed to compile" in low:
        return "--ebpf", ("bcc could not compile the probe program (kernel headers missing or unusable; "
                          "fix: set BCC_KERNEL_SOURCE=<header tree>, see docs/ebpf.md)")
    return "--ebpf", text.strip().splitlines()[-1] if text.strip() else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="heron-ebpf-agent")
    ap.add_argument("--ppid", type=int, default=0, help="die when this process dies")
    ap.add_argument("--pid", type=int, action="append", default=[], help="only this process (repeatable)")
    ap.add_argument("--comm", action="append", default=[], help="only this command name (repeatable)")
    ap.add_argument("--rescan", type=float, default=15.0, help="seconds between target scans")
    ap.add_argument("--check", action="store_true", help="compile, attach, report, detach and exit")
    args = ap.parse_args(argv)
    out = Output()
    state = State()
    watch_parent(args.ppid, state)

    def on_signal(_sig, _frame):
        state.stop = True
        if not state.in_callback and not state.cleaning:
            raise Stop

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the process group; heron decides
    try:
        import bcc  # noqa: F401
    except ImportError as exc:
        return fail(out, "--ebpf", f"bcc is not importable by {sys.executable} ({exc}) "
                    "(fix: apt-get install python3-bpfcc)")
    bpf = None
    try:
        t0 = time.monotonic()
        try:
            bpf = build(args)
        except Stop:
            return 0
        except Exception as exc:  # noqa: BLE001 - bcc raises bare Exception
            sys.stderr.write(f"{exc}\n")
            return fail(out, *explain(exc))
        prober = Prober(bpf, out, Scanner())
        prober.rescan()
        if prober.probes == 0 and prober.failed:
            first = next(iter(prober.failed.values()))
            return fail(out, "--ebpf", f"could not attach to any TLS library: {first}")
        if prober.probes == 0:
            out.add(F.encode(F.LOG, f"no TLS library found yet; rescanning every {args.rescan:g} s".encode()))
        compile_s = round(time.monotonic() - t0, 3)
        out.add(F.encode_json(F.HELLO, {"version": F.PROTOCOL_VERSION, "clock_offset_ns": clock_offset_ns(),
                                        "pid": os.getpid(), "setup_s": compile_s}))
        out.add(F.encode_json(F.STATS, prober.counters()))
        out.flush()
        if args.check:
            return 0
        return run(bpf, prober, out, state, args.rescan)
    except Stop:
        return 0
    except BrokenPipeError:
        return 0
    finally:
        state.cleaning = True
        if bpf is not None:
            try:
                detach(bpf, list(bpf.uprobe_fds))  # every probe goes before we exit (the kernel would too)
                bpf.cleanup()  # programs, maps, the compiled module
            except Exception:  # noqa: BLE001, S110
                pass


def run(bpf, prober: Prober, out: Output, state: State, rescan_s: float) -> int:
    header = F.EVENT_HEADER.size

    def on_event(_ctx, data, size):
        state.in_callback = True
        try:
            raw = ctypes.string_at(data, size)
            if size >= header:
                fields = F.EVENT_HEADER.unpack_from(raw)
                prober.identity(fields[3], fields[12].split(b"\0", 1)[0].decode("utf-8", "replace"))
            out.add(F.encode(F.EVENT, raw))
        finally:
            state.in_callback = False

    bpf["events"].open_ring_buffer(on_event)
    next_stats = time.monotonic() + _STATS_S
    next_scan = time.monotonic() + rescan_s
    last_stats = prober.counters()
    try:
        while not state.stop:
            bpf.ring_buffer_poll(_POLL_MS)
            now = time.monotonic()
            if now >= next_scan:
                next_scan = now + rescan_s
                prober.rescan()
            if now >= next_stats:
                next_stats = now + _STATS_S
                counters = prober.counters()
                if counters != last_stats:
                    last_stats = counters
                    out.add(F.encode_json(F.STATS, counters))
            out.flush()
    except Stop:
        pass
    # Drain: what the kernel already produced is delivered before the probes go.
    state.cleaning = True
    try:
        bpf.ring_buffer_consume()
        out.add(F.encode_json(F.STATS, prober.counters()))
        out.flush()
    except (Stop, OSError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
