"""The pipeline-health view: per-file load status and the engine counters grouped by stage.

Counters come from the running loaders (live, while files are read) or, when browsing a database, from
the ``counters`` of its last ``runs`` row. Grouping uses ``heron_core.counters.by_stage``, the same
layout ``/api/pipeline`` serves, so the TUI and the console agree on what belongs to which stage.
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

_STAGE_ORDER = ("reader", "decode", "tcp", "http", "wire", "agents", "assembler", "store", "other")
_WARN = ("error", "dropped", "malformed", "failed", "truncated", "gaps", "damaged", "late", "unpaired")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def files_table(files: list[FileProgress]) -> Table:
    t = Table(title="Sources", title_justify="left", expand=True, box=None, padding=(0, 1),
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
        read = _mb(f.size) if f.status in ("ok", "truncated") else f"{_mb(f.bytes_read)} / {_mb(f.size)} " \
                                                                   f"({f.fraction:.0%})"
        t.add_row(f.path, f.source_id, status, read,
                  f"{f.packets:,}", f"{f.calls:,}", took)
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

    def text(self, width: int = 120) -> str:
        """Plain text of the view (for tests)."""
        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        console.print(getattr(self, "_group", ""))
        return console.export_text()
