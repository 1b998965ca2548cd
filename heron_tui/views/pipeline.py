"""The pipeline-health view: the source (files, live interface, probes), its health and the engine
counters grouped by stage.

Three feeds: file loaders (per-file progress and their counters, while files are read), a running
pipeline (``heron_tui.live.PipelineRun``: the snapshot ``GET /api/pipeline`` serves — health and its
reasons, per-source event time and lag, queue gauges, decode workers — refreshed as the capture runs),
or, when browsing a database, the ``counters`` of its last ``runs`` row. Grouping uses
``heron_core.counters.by_stage``, the same layout ``/api/pipeline`` serves, so the TUI and the console
agree on what belongs to which stage.
"""

from __future__ import annotations

import io
import time
from collections import Counter

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from heron_core.counters import by_stage
from heron_tui.loader import FileProgress
from heron_tui.widgets.format import clock, ms

_STAGE_ORDER = ("reader", "decode", "tcp", "http", "wire", "agents", "assembler", "store", "other")
_WARN = ("error", "dropped", "malformed", "failed", "truncated", "gaps", "damaged", "late", "unpaired")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def files_table(files: list[FileProgress]) -> Table:
    t = Table(title="Files", title_justify="left", expand=True, box=None, padding=(0, 1),
              header_style="bold")
    for name, kw in (("file", {"ratio": 3, "no_wrap": True, "overflow": "ellipsis"}), ("source", {}),
                     ("status", {}), ("read", {"justify": "right"}), ("packets", {"justify": "right"}),
                     ("calls", {"justify": "right"}), ("time", {"justify": "right"})):
        t.add_column(name, **kw)
    for f in files:
        status = Text(f.status, style={"failed": "bold red", "truncated": "yellow", "loading": "cyan",
                                       "ok": "green"}.get(f.status, ""))
        if f.error:
            status.append(f": {f.error}", style="red")
        took = ""
        if f.started:
            took = f"{((f.finished or time.time()) - f.started):.1f}s"
        if f.status in ("ok", "truncated"):
            read = _mb(f.size)
        elif f.status == "loading" and not f.bytes_read and f.packets:  # counted per mapped block: not yet
            read = f"… / {_mb(f.size)}"
        else:
            read = f"{_mb(f.bytes_read)} / {_mb(f.size)} ({f.fraction:.0%})"
        t.add_row(f.path, f.source_id, status, read,
                  f"{f.packets:,}", f"{f.calls:,}" if f.calls_known else "–", took)
    return t


def counters_table(counters: Counter) -> Table:
    t = Table(title="Pipeline counters", title_justify="left", expand=True, box=None, padding=(0, 1),
              header_style="bold")
    t.add_column("stage", style="bold", no_wrap=True)
    t.add_column("counters")
    grouped = by_stage(counters)
    for stage in sorted(grouped, key=lambda s: _STAGE_ORDER.index(s) if s in _STAGE_ORDER else 99):
        line = Text()
        for i, (name, value) in enumerate(grouped[stage].items()):
            if i:
                line.append("  ")
            bad = value and any(w in name for w in _WARN)
            line.append(f"{name} ", style="dim")
            line.append(f"{value:,}", style="bold yellow" if bad else "bold")
        t.add_row(stage, line)
    if not grouped:
        t.add_row("", Text("no counters (this database has no recorded run)", style="dim italic"))
    return t


_HEALTH_STYLE = {"ok": "bold green", "warning": "bold yellow", "critical": "bold red"}
_RUN_STYLE = {"running": "green", "starting": "cyan", "drained": "green", "stopped": "yellow", "failed": "bold red"}


def run_header(run) -> Text:
    """One line on the run: source, state, workers, health and why."""
    state = run.state
    snap = state.snapshot or {}
    t = Text()
    t.append("Source ", style="bold")
    t.append(run.describe())
    kind = "replay" if run.paced else ("capture" if run.live else "load")
    t.append(f"  {kind} ", style="dim")
    t.append(run.status, style=_RUN_STYLE.get(run.status, ""))
    workers = run.engine.workers
    t.append(f"  · {workers} decode worker{'s' if workers != 1 else ''}" if workers else "  · single process",
             style="dim")
    if run.paced:
        t.append(f" · ×{run.spec.replay_speed:g} speed", style="dim")
    health = snap.get("health")
    if health:
        t.append("  health ", style="dim")
        t.append(f" {health} ", style=_HEALTH_STYLE.get(health, "") + " reverse")
    if snap.get("reasons"):
        t.append("  " + ", ".join(snap["reasons"]), style="yellow")
    if run.error:
        t.append(f"\n{run.error}", style="bold red")
    return t


def sources_table(run) -> Table:
    """Per source id: running or drained, event time (watermark) and, for live sources, its lag."""
    state = run.state
    t = Table(title="Event time", title_justify="left", expand=True, box=None, padding=(0, 1),
              header_style="bold")
    for name, kw in (("source", {"ratio": 2}), ("state", {}), ("event time", {}),
                     ("lag", {"justify": "right"}), ("packets/s", {"justify": "right"}),
                     ("drops", {"justify": "right"})):
        t.add_column(name, **kw)
    now = time.time()
    marks = state.watermarks or {}
    if not marks:
        t.add_row(run.describe(), run.status, "–", "", "", "")
    for i, (sid, wm) in enumerate(sorted(marks.items())):
        drained = sid in state.drained
        lag = "" if drained or wm is None or run.paced else ms(max(0.0, now - wm) * 1000)
        pps = f"{state.pps:,.0f}" if i == 0 and state.pps is not None and run.running else ""
        drops = Text(f"{state.drops:,}", style="bold red" if state.drops else "") if i == 0 else ""
        t.add_row(sid, "drained" if drained else "running", clock(wm) if wm else "–", lag, pps, drops)
    return t


def queues_table(snap: dict) -> Table | None:
    queues = snap.get("queues") or []
    if not queues:
        return None
    t = Table(title="Queues", title_justify="left", expand=True, box=None, padding=(0, 1), header_style="bold")
    for name in ("queue", "depth", "high water", "blocked", "dropped"):
        t.add_column(name, justify="left" if name == "queue" else "right")
    for q in queues:
        cap = q.get("capacity") or 0
        fill = q.get("depth", 0) / cap if cap else 0.0
        depth = Text(f"{q.get('depth', 0)}/{cap}", style="bold red" if fill >= 0.9 else "")
        dropped = Text(f"{q.get('dropped', 0):,}", style="bold red" if q.get("dropped") else "")
        t.add_row(q["name"], depth, f"{q.get('high_water', 0)}", f"{q.get('blocked_s', 0.0):.1f}s", dropped)
    return t


def workers_table(snap: dict) -> Table | None:
    workers = snap.get("workers") or []
    if not workers:
        return None
    t = Table(title="Decode workers", title_justify="left", expand=True, box=None, padding=(0, 1),
              header_style="bold")
    for name in ("worker", "pid", "alive", "segments", "load", "cpu"):
        t.add_column(name, justify="left" if name in ("worker", "alive") else "right")
    for w in workers:
        alive = Text("yes" if w.get("alive") else "no", style="" if w.get("alive") else "bold red")
        t.add_row(str(w["index"]), str(w.get("pid") or ""), alive, f"{w.get('segments', 0):,}",
                  f"{(w.get('load') or 0) * 100:.0f}%", f"{w.get('cpu_s', 0.0):.1f}s")
    return t


class PipelineView(VerticalScroll, can_focus=True):
    DEFAULT_CSS = """
    PipelineView { height: 1fr; padding: 0 1; background: $surface; }
    PipelineView > Static { width: 100%; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="pipeline-body")

    def show(self, files: list[FileProgress], counters: Counter, note: str = "") -> None:
        parts: list = []
        if note:
            parts.append(Text(note, style="dim"))
        if files:
            parts.append(files_table(files))
            parts.append(Text(""))
        parts.append(counters_table(counters))
        self._group = Group(*parts)
        self.query_one("#pipeline-body", Static).update(self._group)

    def show_run(self, run) -> None:
        """A running (or finished) pipeline: header with health, files, sources, queues, workers, counters."""
        snap = run.state.snapshot or {}
        parts: list = [run_header(run), Text("")]
        if run.files:
            parts += [files_table(run.files), Text("")]
        if run.live or run.paced:
            parts += [sources_table(run), Text("")]
        for table in (queues_table(snap), workers_table(snap)):
            if table is not None:
                parts += [table, Text("")]
        parts.append(counters_table(run.counters()))
        self._group = Group(*parts)
        self.query_one("#pipeline-body", Static).update(self._group)

    def text(self, width: int = 120) -> str:
        """Plain text of the view (for tests)."""
        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        console.print(getattr(self, "_group", ""))
        return console.export_text()
