"""Cell formatting shared by the lists, the metrics pane and the plain (non-TTY) table.

Every number is squeezed into a few cells with its unit (``1.25s``, ``12.3k``, ``$0.0123``) so the key
columns fit an 80-column terminal; each formatter also returns a style role (``error``, ``warn``,
``good``, ``dim`` or ``""``) that the widget maps to theme colours, so no colour is hard-coded here.
"""

from __future__ import annotations

import time
from typing import Any

from rich.cells import cell_len, set_cell_size

Cell = tuple[str, str]  # (text, style role)


def ms(v: float | None) -> str:
    if v is None:
        return ""
    v = float(v)
    if v < 1000:
        return f"{v:.0f}ms"
    s = v / 1000
    if s < 10:
        return f"{s:.2f}s"
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def tokens(v: float | None) -> str:
    if v is None:
        return ""
    v = float(v)
    if v < 1000:
        return f"{v:.0f}"
    if v < 10_000:
        return f"{v / 1000:.1f}k"
    if v < 1_000_000:
        return f"{v / 1000:.0f}k"
    return f"{v / 1e6:.1f}M"


def usd(v: float | None) -> str:
    if v is None:
        return ""
    v = float(v)
    if v == 0:
        return "$0"
    if v < 1:
        return f"${v:.4f}"
    if v < 1000:
        return f"${v:.2f}"
    return f"${v:,.0f}"


def pct(v: float | None) -> str:
    if v is None:
        return ""
    v = float(v) * 100
    return f"{v:.1f}%" if v < 10 else f"{v:.0f}%"


def clock(ts: float | None) -> str:
    if ts is None:
        return ""
    return time.strftime("%H:%M:%S", time.localtime(float(ts)))


def rate(v: float | None) -> str:
    if v is None:
        return ""
    v = float(v)
    if v >= 1000:
        return f"{v / 1000:.1f}k"
    if v >= 10:
        return f"{v:.0f}"
    return f"{v:.2f}" if v < 1 else f"{v:.1f}"


def one_line(text: Any) -> str:
    if text is None:
        return ""
    return " ".join(str(text).split())


_TSTATUS = {"complete": "good", "incomplete": "warn", "partial": "dim", "in_progress": "accent"}
_SEVERITY = {"critical": "error", "warning": "warn", "info": "dim"}


def cell(kind: str, value: Any) -> Cell:
    """Text and style role of one value of a column ``kind`` (see ``heron_core.query.lists.Column``)."""
    if value is None:
        return "", ""
    if kind == "time":
        return clock(value), "dim"
    if kind == "ms":
        return ms(value), ""
    if kind == "tokens":
        return tokens(value), ""
    if kind == "usd":
        return usd(value), ""
    if kind == "pct":
        return pct(value), "error" if value and value >= 0.1 else ""
    if kind == "int":
        return str(int(value)), ""
    if kind == "status":
        code = int(value)
        return str(code), "error" if code >= 400 else ""
    if kind == "tstatus":
        return str(value), _TSTATUS.get(str(value), "")
    if kind == "severity":
        return str(value), _SEVERITY.get(str(value), "")
    if kind == "id":
        return str(value)[:8], "dim"
    if value == "in_progress":  # a call in flight (finish) during a live capture
        return "in_progress", "accent"
    return one_line(value), ""


def fit(text: str, width: int, right: bool = False) -> str:
    """Pad or cut to exactly ``width`` terminal cells (an ellipsis marks a cut); wide characters in
    previews (CJK, emoji) count as two cells."""
    if width <= 0:
        return ""
    n = cell_len(text)
    if n > width:
        return set_cell_size(text, width - 1) + "…" if width > 1 else set_cell_size(text, 1)
    pad = " " * (width - n)
    return pad + text if right else text + pad
