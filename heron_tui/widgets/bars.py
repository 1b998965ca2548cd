"""The one-line bars around the lists: view tabs on top, status at the bottom.

Both are plain ``Static``s re-rendered from a small state object on each poll; the status bar carries
what a user glancing at an SSH session needs: where the data comes from, how many rows, the filter,
follow mode, load progress or — capturing live — packets/s, drops and event-time lag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.widgets import Static

from .format import tokens

VIEWS: tuple[tuple[str, str], ...] = (
    ("turns", "Turns"), ("sessions", "Sessions"), ("calls", "Calls"), ("insights", "Insights"),
    ("services", "Services"), ("pipeline", "Pipeline"),
)


class ViewTabs(Static):
    DEFAULT_CSS = """
    ViewTabs { height: 1; background: $panel; color: $text-muted; }
    """

    def show(self, active: str, counts: dict[str, int], title: str = "heron") -> None:
        """Tab labels with row counts; below 100 columns, short labels and compact counts."""
        wide = self.size.width >= 100
        parts = [f"[b reverse] {title} [/]"] if wide else []
        for n, (key, label) in enumerate(VIEWS, 1):
            count = counts.get(key)
            if count is None:
                num = ""
            else:
                num = f" {count:,}" if wide else f" {tokens(count)}"
            name = label if wide else _SHORT.get(key, label)
            style = "b reverse " if key == active else ""
            parts.append(f"[{style}@click=app.view('{key}')] {n} {name}{num} [/]")
        self.update("".join(parts) if not wide else " ".join(parts))


_SHORT = {"sessions": "Sess", "insights": "Ins", "services": "Svc", "pipeline": "Pipe"}


@dataclass
class Status:
    source: str = ""
    view: str = "turns"
    shown: int | None = None
    total: int | None = None
    calls: int = 0
    filter_text: str = ""
    filter_on: bool = True
    follow: bool = False
    follow_active: bool = False
    marks: int = 0
    loading: bool = False
    progress: float = 1.0
    load_text: str = ""
    extras: list[str] = field(default_factory=list)
    live: str = ""  # a live capture's state: 'running' (green dot), 'starting', 'stopped', 'failed'


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $primary-background; color: $text; }
    """

    def show(self, s: Status) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f" {s.source} ", style="bold")
        sep = " │ "
        if s.shown is not None:
            t.append(sep)
            if s.total is not None and s.total != s.shown:
                t.append(f"{s.shown:,} of {s.total:,} {s.view}")
            else:
                t.append(f"{s.shown:,} {s.view}")
        t.append(sep + f"{s.calls:,} calls")
        if s.filter_text:
            t.append(sep)
            t.append("filter " + ("on" if s.filter_on else "off"), style="bold" if s.filter_on else "dim")
        if s.marks:
            t.append(sep + f"{s.marks} marked")
        if s.follow:
            t.append(sep)
            t.append("follow" if s.follow_active else "follow (paused)", style="bold" if s.follow_active else "dim")
        t.append(sep)
        if s.live:
            t.append("● ", style=_LIVE_STYLE.get(s.live, "bold"))
        if s.loading:
            t.append(_bar(s.progress) + " ", style="bold")
        t.append(s.load_text)
        for e in s.extras:
            t.append(sep + e)
        self.update(t)


_LIVE_STYLE = {"running": "bold green", "starting": "bold yellow", "stopped": "bold", "failed": "bold red"}


def _bar(fraction: float, width: int = 10) -> str:
    full = int(max(0.0, min(1.0, fraction)) * width)
    return "█" * full + "░" * (width - full) + f" {fraction * 100:3.0f}%"
