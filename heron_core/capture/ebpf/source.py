"""``EbpfSource``: the ``--ebpf`` record source — runs the agent and turns its frames into records.

Opening checks the prerequisites (``prereqs``), makes sure bcc has a kernel header tree (``headers``,
possibly downloading one), starts the agent under the Python that has bcc and waits until it reports
its probes attached (HELLO) or why it cannot (ERROR → ``CaptureError``, one line). Polling reads the
agent's pipe without blocking the reader longer than asked, converts events (``convert``), stamps
heartbeats like a live interface (``EventClock``) and keeps the ``ebpf_*`` counters current. Closing
asks the agent to stop (stdin EOF, then SIGTERM, then SIGKILL), converts what it still sends — the
events the ring buffer held — and ends the source.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import select
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from heron_core.capture.sources import CaptureError, EventClock, SourceSpec, wall_us
from heron_core.config import Config
from heron_core.records import EndOfSource

from . import frames as F
from . import headers, prereqs
from .convert import ChunkConverter

log = logging.getLogger("heron")

AGENT = Path(__file__).with_name("agent.py")
START_TIMEOUT_S = 180.0
"""Compiling with clang takes about a second on an idle machine, much longer on a loaded one."""
STOP_TIMEOUT_S = 10.0
RESCAN_S = 15.0
IDLE_SLACK_US = 50_000
_READ_MAX = 4 << 20
_REAP_S = 5.0
_STDERR_LINES = 30


class Agent:
    """The agent subprocess: its pipes, the frame splitter and the tail of its stderr."""

    def __init__(self, python: str, env: dict[str, str], pids: list[int], comms: list[str], check: bool = False,
                 rescan_s: float = RESCAN_S) -> None:
        # -E -s: nothing from heron's environment (PYTHONPATH of a venv, user site) leaks into the system
        # Python; -B: no bytecode written next to heron's files by another interpreter.
        cmd = [python, "-E", "-s", "-B", str(AGENT), "--ppid", str(os.getpid()), "--rescan", str(rescan_s)]
        for p in pids:
            cmd += ["--pid", str(p)]
        for c in comms:
            cmd += ["--comm", c]
        if check:
            cmd.append("--check")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        full_env.update(env)
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         env=full_env, close_fds=True)
        except OSError as exc:
            raise CaptureError("--ebpf", f"cannot start the eBPF agent with {python}: {exc.strerror}") from None
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.reader = F.FrameReader()
        self.eof = False
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._err_thread = threading.Thread(target=self._drain_stderr, name="ebpf-agent-stderr", daemon=True)
        self._err_thread.start()

    def _drain_stderr(self) -> None:
        """bcc and clang write diagnostics to stderr: keep them for error messages and ``-vv``."""
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.stderr_tail.append(line)
                log.debug("ebpf agent: %s", line)

    def read(self, timeout_s: float) -> list[tuple[int, bytes]]:
        """Frames available within ``timeout_s`` (all that is buffered, up to a few MiB)."""
        if self.eof:
            return []
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout_s))
        if not ready:
            return []
        chunks = []
        total = 0
        while total < _READ_MAX:
            try:
                data = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self.eof = True
                break
            chunks.append(data)
            total += len(data)
        if not chunks:
            return []
        try:
            return self.reader.feed(b"".join(chunks))
        except F.FrameError as exc:
            log.error("eBPF agent output is corrupt (%s); stopping it", exc)
            self.eof = True
            self.stop(force=True)
            return []

    def last_error_line(self) -> str:
        for line in reversed(self.stderr_tail):
            if line.strip():
                return line.strip()
        return "no message"

    def stop(self, force: bool = False) -> None:
        """Ask the agent to stop: stdin EOF (it drains and detaches), SIGTERM, SIGKILL if it hangs."""
        p = self.proc
        if p.poll() is not None:
            return
        try:
            if p.stdin is not None:
                p.stdin.close()
        except OSError:
            pass
        if force:
            p.kill()
            return
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

    def wait(self, timeout_s: float) -> int | None:
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None


def _start(spec_pids: list[int], spec_comms: list[str], check: bool = False) -> tuple[Agent, dict[str, Any],
                                                                                       list[tuple[int, bytes]]]:
    """Check prerequisites, prepare headers, start the agent and wait for its HELLO.

    Returns the agent, the HELLO document and the other frames read so far (target lists, stats)."""
    checks, python = prereqs.blocking_checks()
    for ch in checks:
        if ch.ok is False:
            raise CaptureError("--ebpf", ch.error())
    assert python is not None
    try:
        hs = headers.ensure()
    except headers.HeaderError as exc:
        raise CaptureError("--ebpf", str(exc)) from None
    agent = Agent(python, hs.env(), spec_pids, spec_comms, check=check)
    deadline = time.monotonic() + START_TIMEOUT_S
    held: list[tuple[int, bytes]] = []
    try:
        while True:
            frames = agent.read(0.2)
            for i, (ftype, body) in enumerate(frames):
                if ftype == F.HELLO:
                    return agent, json.loads(body), held + frames[i + 1:]
                if ftype == F.ERROR:
                    what, _, why = body.decode("utf-8", "replace").partition(": ")
                    raise CaptureError(what or "--ebpf", why or "the eBPF agent failed")
                if ftype == F.LOG:
                    log.warning("eBPF: %s", body.decode("utf-8", "replace"))
                else:
                    held.append((ftype, body))
            if agent.eof or agent.proc.poll() is not None:
                rc = agent.wait(5)
                raise CaptureError("--ebpf", f"the eBPF agent exited (status {rc}) before attaching: "
                                   f"{agent.last_error_line()}")
            if time.monotonic() > deadline:
                raise CaptureError("--ebpf", f"the eBPF agent did not attach within {START_TIMEOUT_S:.0f} s")
    except BaseException:
        agent.stop(force=True)
        agent.wait(5)
        raise


class EbpfSource:
    """The eBPF TLS source as a polled ``RecordSource`` (one source, id ``ebpf`` unless named)."""

    def __init__(self, spec: SourceSpec, counters: Counter, cfg: Config) -> None:
        self.source_id = spec.source_id or "ebpf"
        self.counters = counters
        self.finished = False
        self.agent, hello, early = _start(list(spec.ebpf_pids), list(spec.ebpf_comms))
        self.conv = ChunkConverter(self.source_id, int(hello.get("clock_offset_ns", 0)), counters)
        self.clock = EventClock(self.source_id, cfg)
        self._idle_s = cfg.capture_heartbeat_s
        self._next_reap = time.monotonic() + _REAP_S
        self._early = early
        log.info("eBPF: probes attached in %.1f s (agent pid %s)", hello.get("setup_s", 0.0), hello.get("pid"))

    def poll(self, timeout_s: float) -> list[Any]:
        if self.finished:
            return []
        out: list[Any] = []
        frames = self._early + self.agent.read(min(max(timeout_s, 0.0), 0.1))
        self._early = []
        now = time.monotonic()
        if frames:
            self._frames(frames, out)
        if not frames:
            hb = self.clock.idle(now, wall_us() - IDLE_SLACK_US, self._idle_s)
            if hb is not None:
                self.counters["heartbeats_emitted"] += 1
                out.append(hb)
        if now >= self._next_reap:
            self._next_reap = now + _REAP_S
            out += self.conv.reap(max(self.clock.event_us, wall_us() - IDLE_SLACK_US))
        if self.agent.eof:
            self._agent_gone(out)
        return out

    def _frames(self, frames: list[tuple[int, bytes]], out: list[Any]) -> None:
        c = self.counters
        conv = self.conv
        clock = self.clock
        decode = F.decode_event
        nev = nbytes = 0
        for ftype, body in frames:
            if ftype == F.EVENT:
                ev = decode(body)
                if ev is None:
                    c["read_errors"] += 1
                    continue
                nev += 1
                nbytes += len(ev.data)
                hb = clock.packet(conv.ts_us(ev.ts_ns))
                if hb is not None:
                    c["heartbeats_emitted"] += 1
                    out.append(hb)
                conv.event(ev, out)
                if ev.kind != F.KIND_CLOSE:
                    c["packets_read"] += 1
            elif ftype in (F.PROC, F.STATS, F.TARGETS):
                try:
                    self._document(ftype, json.loads(body))
                except (ValueError, TypeError, AttributeError, KeyError):
                    c["read_errors"] += 1  # not the agent's JSON: skip it, never stop the capture
            elif ftype == F.LOG:
                log.warning("eBPF: %s", body.decode("utf-8", "replace"))
            elif ftype == F.ERROR:
                log.error("eBPF agent: %s", body.decode("utf-8", "replace"))
        if nev:
            clock.last_packet_wall = time.monotonic()
            c["ebpf_events"] += nev
            c["bytes_read"] += nbytes

    def _document(self, ftype: int, d: dict[str, Any]) -> None:
        """A JSON frame: a process identity, the agent's counters or its target list."""
        c = self.counters
        if ftype == F.PROC:
            exe = d.get("exe")
            self.conv.identity(int(d["pid"]), str(d.get("comm") or ""), exe if isinstance(exe, str) else None)
        elif ftype == F.STATS:
            c["ebpf_events_lost"] = int(d.get("events_lost", 0))
            c["ebpf_chunks_dropped"] = int(d.get("chunks_dropped", 0))
            c["ebpf_uprobes_attached"] = int(d.get("probes", 0))
        else:
            c["ebpf_uprobes_attached"] = int(d.get("probes", 0))
            paths = [str(t.get("path")) for t in d.get("attached", [])]
            log.info("eBPF: %d probes on %s", c["ebpf_uprobes_attached"], ", ".join(paths) or "no TLS library yet")
            for f in d.get("failed", []):
                log.warning("eBPF: cannot attach: %s", f)

    def _agent_gone(self, out: list[Any]) -> None:
        """The agent exited on its own (crash, killed): the source ends here, with the reason logged."""
        rc = self.agent.wait(5)
        log.error("eBPF: the agent exited (status %s): %s; capture stopped", rc, self.agent.last_error_line())
        self.counters["ebpf_uprobes_attached"] = 0
        self.finished = True
        out.append(EndOfSource(self.source_id))

    def close(self) -> list[Any]:
        if self.finished:
            return []
        self.finished = True
        out: list[Any] = []
        agent = self.agent
        agent.stop()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while not agent.eof and time.monotonic() < deadline:  # what the ring buffer still held
            frames = agent.read(0.1)
            if frames:
                self._frames(frames, out)
        if agent.wait(max(0.1, deadline - time.monotonic())) is None:
            log.warning("eBPF: the agent did not stop in %.0f s; killing it (the kernel removes its probes)",
                        STOP_TIMEOUT_S)
            agent.stop(force=True)
            agent.wait(5)
        self.counters["ebpf_uprobes_attached"] = 0
        out.append(EndOfSource(self.source_id))
        return out


def trial() -> dict[str, Any]:
    """Compile and attach for real, then detach (``heron doctor``): ``{ok, detail, probes, targets}``."""
    t0 = time.monotonic()
    try:
        agent, _hello, frames = _start([], [], check=True)
    except CaptureError as exc:
        return {"ok": False, "detail": exc.why, "probes": 0, "targets": []}
    targets: list[dict[str, Any]] = []
    probes = 0
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while True:
        for ftype, body in frames:
            if ftype == F.TARGETS:
                d = json.loads(body)
                targets = d.get("attached", [])
                probes = int(d.get("probes", 0))
        if agent.eof or time.monotonic() > deadline:
            break
        frames = agent.read(0.1)
    agent.stop()
    agent.wait(STOP_TIMEOUT_S)
    return {"ok": True, "probes": probes, "targets": targets,
            "detail": f"compiled and attached {probes} probes to {len(targets)} file(s) in "
                      f"{time.monotonic() - t0:.1f} s, then detached"}
