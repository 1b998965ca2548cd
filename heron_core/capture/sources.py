"""Polled record sources: what the reader (or the single-process run loop) pulls records from.

A capture file is naturally an iterator, but a live interface or a ZMQ socket is not: the reader must
wake up every few tens of milliseconds without data, to flush partly filled worker batches, to emit
idle heartbeats and to notice a stop request. So every source the engine runs has the same small
polled interface (``RecordSource``): ``poll(timeout_s)`` returns the records that are ready (possibly
none, after at most about ``timeout_s``), ``finished`` says the source ended by itself (a file was read
to the end, with its ``EndOfSource`` already returned), and ``close()`` stops it early and returns the
``EndOfSource`` of every source id it still had open, so a stopped run drains like a finished one.

``SourceSpec`` is the picklable description of a source (what the CLI parsed); ``open_record_source``
turns it into a ``RecordSource`` in whichever process runs the reader.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Protocol

from heron_core.capture.pcapfile import CaptureFileError
from heron_core.capture.source import SourceRecord, open_file_source
from heron_core.config import Config
from heron_core.records import EndOfSource, Heartbeat

log = logging.getLogger("heron")

_FILE_CHUNK = 512
"""Records handed over per ``poll`` of a file: large enough that the per-poll overhead vanishes, small
enough that the reader looks at the wall clock (batch flushing, stop requests) every few milliseconds."""


class CaptureError(Exception):
    """A source that cannot be opened (no permission, no such interface, bind failure): one-line message.

    ``what`` names the option at fault (``-i lo``, ``--zmq tcp://…``) for the ``heron: error: what: why``
    line; ``usage`` marks errors in the option's value itself (a bad BPF expression), which exit 2."""

    def __init__(self, what: str, why: str, usage: bool = False) -> None:
        super().__init__(f"{what}: {why}")
        self.what = what
        self.why = why
        self.usage = usage


@dataclass
class SourceSpec:
    """What to read, as parsed from the command line; plain data so it pickles to a reader process.

    ``kind`` is ``files`` (``paths`` with their ``source_ids``), ``live`` (``iface``, ``bpf_filter``),
    ``zmq`` (``endpoint``) or ``ebpf`` (TLS plaintext from uprobes, restricted to ``ebpf_pids`` /
    ``ebpf_comms`` when given). ``replay_speed`` > 0 paces a file by its packet timestamps (wall clock only;
    event time stays the packet time)."""

    kind: str
    paths: list[str] = field(default_factory=list)
    source_ids: list[str] = field(default_factory=list)
    iface: str | None = None
    bpf_filter: str | None = None
    endpoint: str | None = None
    source_id: str | None = None
    replay_speed: float = 0.0
    capture_backend: str = "auto"  # live: 'auto' | 'pcapy' | 'afpacket'
    ebpf_pids: list[int] = field(default_factory=list)
    ebpf_comms: list[str] = field(default_factory=list)

    @property
    def lossless(self) -> bool:
        """Files are replayed without loss (blocking puts); live and ZMQ sources drop and count."""
        return self.kind == "files"

    def describe(self) -> str:
        if self.kind == "files":
            return ", ".join(self.paths)
        if self.kind == "live":
            return f"-i {self.iface}" + (f" ({self.bpf_filter})" if self.bpf_filter else "")
        if self.kind == "ebpf":
            sel = [f"pid {p}" for p in self.ebpf_pids] + [f"comm {c}" for c in self.ebpf_comms]
            return "--ebpf" + (f" ({', '.join(sel)})" if sel else "")
        return f"--zmq {self.endpoint}"


@dataclass
class FileOutcome:
    """Result of one file of a ``files`` source (the engine's ``FileResult`` is built from it)."""

    path: str
    source_id: str
    status: str  # 'ok' | 'truncated' | 'failed'
    packets: int = 0
    error: str | None = None


class RecordSource(Protocol):
    """A polled source of ``Segment``/``Heartbeat``/``EndOfSource`` records (see the module doc)."""

    finished: bool

    def poll(self, timeout_s: float) -> list[SourceRecord]: ...

    def close(self) -> list[SourceRecord]: ...


class FileSource:
    """One or more capture files read one after another, each its own source.

    Per-file results (``outcomes``) mirror the single-process engine: a file whose header cannot be
    read is ``failed`` and skipped, a truncated one ``truncated``. ``internal`` per-file counters are
    added to ``counters`` as the file is read, so the reader's periodic statistics stay current.
    With ``replay_speed`` > 0 records are released when the wall clock reaches their (scaled) packet
    time; ``poll`` then returns early, so the caller can flush batches while it waits.
    """

    def __init__(self, spec: SourceSpec, counters: Counter, cfg: Config) -> None:
        self.counters = counters
        self.cfg = cfg
        self.finished = False
        self.outcomes: list[FileOutcome] = []
        self._files = list(zip(spec.paths, spec.source_ids))
        self._next = 0
        self._it: Iterator[SourceRecord] | None = None
        self._current: tuple[str, str, int, int] | None = None  # path, source_id, packets/truncations before
        self._speed = spec.replay_speed if spec.replay_speed and spec.replay_speed > 0 else 0.0
        self._pace_origin: tuple[float, int] | None = None  # (wall monotonic, event ts_us) of the first packet
        self._held: SourceRecord | None = None  # paced record not yet due
        self.on_outcome: Callable[[FileOutcome], None] | None = None

    def _open_next(self) -> bool:
        while self._next < len(self._files):
            path, sid = self._files[self._next]
            self._next += 1
            try:
                self._it = open_file_source(path, sid, self.counters, self.cfg)
            except CaptureFileError as exc:
                self._outcome(FileOutcome(path, sid, "failed", error=str(exc)))
                continue
            except OSError as exc:
                self._outcome(FileOutcome(path, sid, "failed", error=exc.strerror or str(exc)))
                continue
            c = self.counters
            self._current = (path, sid, c["packets_read"], c["file_truncated"])
            self._pace_origin = None
            return True
        return False

    def _outcome(self, out: FileOutcome) -> None:
        self.outcomes.append(out)
        if self.on_outcome is not None:
            self.on_outcome(out)

    def _file_done(self) -> None:
        assert self._current is not None
        path, sid, pk0, tr0 = self._current
        c = self.counters
        status = "truncated" if c["file_truncated"] > tr0 else "ok"
        self._outcome(FileOutcome(path, sid, status, packets=c["packets_read"] - pk0))
        self._current = None
        self._it = None

    def poll(self, timeout_s: float) -> list[SourceRecord]:
        if self.finished:
            return []
        if self._it is None and not self._open_next():
            self.finished = True
            return []
        assert self._it is not None
        if self._speed:
            return self._paced(timeout_s)
        out = list(islice(self._it, _FILE_CHUNK))
        if out and type(out[-1]) is EndOfSource or not out:
            self._file_done()
        return out

    def _paced(self, timeout_s: float) -> list[SourceRecord]:
        """Release records whose scaled packet time has come; wait at most ``timeout_s`` for the next."""
        assert self._it is not None
        out: list[SourceRecord] = []
        deadline = time.monotonic() + max(0.0, timeout_s)
        while len(out) < _FILE_CHUNK:
            rec = self._held
            self._held = None
            if rec is None:
                rec = next(self._it, None)
                if rec is None:
                    self._file_done()
                    break
            ts = getattr(rec, "ts_us", None) if type(rec) is not EndOfSource else None
            if ts is not None:
                now = time.monotonic()
                if self._pace_origin is None:
                    self._pace_origin = (now, ts)
                due = self._pace_origin[0] + (ts - self._pace_origin[1]) / 1e6 / self._speed
                if due > now:
                    if out or due > deadline:
                        self._held = rec  # hand over what is ready; the caller flushes, then polls again
                        if not out:
                            time.sleep(max(0.0, deadline - now))
                        break
                    time.sleep(due - now)
            out.append(rec)
            if type(rec) is EndOfSource:
                self._file_done()
                break
        return out

    def close(self) -> list[SourceRecord]:
        """Stop early: the file being read ends here (``EndOfSource``), later files are not read."""
        out: list[SourceRecord] = []
        if self._current is not None:
            sid = self._current[1]
            if self._it is not None and hasattr(self._it, "close"):
                self._it.close()  # type: ignore[union-attr]
            self._file_done()
            out.append(EndOfSource(sid))
        self.finished = True
        return out


class EventClock:
    """Event time and heartbeat stamping of one live source (capture-and-http.md §2.6).

    The same rule as the file source: a heartbeat each time event time advanced ``heartbeat_s`` past
    the previous one, placed before the packet that crossed it. Live sources also get idle heartbeats
    (``idle``) when no packet arrived for ``heartbeat_s``; event time never goes back.
    """

    __slots__ = ("event_us", "hb_us", "last_hb", "last_idle_wall", "last_packet_wall", "source_id")

    def __init__(self, source_id: str, cfg: Config) -> None:
        self.source_id = source_id
        self.hb_us = max(1, round(cfg.capture_heartbeat_s * 1_000_000))
        self.event_us = 0
        self.last_hb: int | None = None  # None until the first packet or heartbeat sets the reference
        self.last_packet_wall = time.monotonic()
        self.last_idle_wall = 0.0

    def packet(self, ts_us: int) -> Heartbeat | None:
        """A packet at ``ts_us``: returns the heartbeat to emit before it, if event time crossed one."""
        last = self.last_hb
        if last is None:
            self.last_hb = self.event_us = ts_us
            return None
        self.event_us = max(self.event_us, ts_us)
        if ts_us - last >= self.hb_us:
            self.last_hb = ts_us
            return Heartbeat(self.source_id, ts_us)
        return None

    def heartbeat_at(self, ts_us: int) -> Heartbeat | None:
        """An explicit heartbeat (idle, or a probe's heartbeat frame) at ``ts_us``; never moves back."""
        t = max(self.event_us, ts_us)
        if self.last_hb is not None and t <= self.last_hb:
            return None
        self.last_hb = self.event_us = t
        return Heartbeat(self.source_id, t)

    def idle(self, now_mono: float, ts_us: int, idle_s: float) -> Heartbeat | None:
        """Idle heartbeat at ``ts_us`` when neither a packet nor an idle heartbeat came for ``idle_s``."""
        if now_mono - self.last_packet_wall < idle_s or now_mono - self.last_idle_wall < idle_s:
            return None
        self.last_idle_wall = now_mono
        return self.heartbeat_at(ts_us)


def open_record_source(
    spec: SourceSpec, counters: Counter, cfg: Config, saturated: Callable[[], bool] | None = None
) -> RecordSource:
    """Open the source of ``spec`` in the calling process; ``CaptureError`` if it cannot be opened.

    ``saturated`` tells a lossy source that the worker queues are full (ZMQ drops whole batches then).
    """
    if spec.kind == "files":
        return FileSource(spec, counters, cfg)
    if spec.kind == "live":
        from heron_core.capture.live import LiveSource

        return LiveSource(spec, counters, cfg)
    if spec.kind == "zmq":
        from heron_core.capture.zmq_source import ZmqSource

        return ZmqSource(spec, counters, cfg, saturated)
    if spec.kind == "ebpf":
        from heron_core.capture.ebpf import EbpfSource  # bcc is imported only for --ebpf

        return EbpfSource(spec, counters, cfg)
    raise ValueError(f"unknown source kind {spec.kind!r}")


def wall_us() -> int:
    """The wall clock in integer microseconds (the unit of event time)."""
    return time.time_ns() // 1000


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
