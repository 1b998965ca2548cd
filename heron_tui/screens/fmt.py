"""Small value formatters shared by the detail screens (durations, tokens, cost, previews).

Kept apart from the widgets so the screens and their tests agree on exactly how a value reads.
"""

from __future__ import annotations

from typing import Any


def ms(value: float | None) -> str:
    """``850 ms``, ``12.3 s``, ``4m05s``; ``–`` when unknown."""
    if value is None:
        return "–"
    if value < 1000:
        return f"{value:.0f} ms"
    s = value / 1000
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def tokens(value: int | None) -> str:
    """``950``, ``12.3k``, ``1.2M``; ``–`` when unknown."""
    if value is None:
        return "–"
    if value < 1000:
        return str(value)
    if value < 1_000_000:
        return f"{value / 1000:.1f}k"
    return f"{value / 1_000_000:.1f}M"


def cost(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "$0"
    if value < 0.01:
        return f"${value:.4f}"
    return f"${value:.2f}"


def nbytes(value: int | None) -> str:
    if value is None:
        return "–"
    if value < 1024:
        return f"{value} B"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} KiB"
    return f"{value / 1024 / 1024:.1f} MiB"


def one_line(text: Any, limit: int = 160) -> str:
    """A preview on one line: whitespace runs collapsed, cut with ``…``."""
    if not text:
        return ""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def short_id(value: str | None) -> str:
    return (value or "")[:8]
