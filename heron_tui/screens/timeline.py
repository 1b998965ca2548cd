"""The turn timeline: which rows to show, in which order and depth, and their bars.

Kept free of widgets so the layout rules are testable on their own: one row per call in start order;
under each call the tool calls it issued, each a *wait* bar from ``issued_at`` (the issuing response's
end) to ``result_at`` (the request that carried the result); sub-agent calls nest under the tool call
that spawned them (``parent_tool_call_id``, else the spawning-looking tool whose wait contains the
sub-agent's start).

Bars share one time scale, the turn's ``start``→``end`` over ``width`` cells: ``░`` is the wait for the
first token, ``┃`` marks ``first_token``, ``█`` the generation, ``✕`` ends an aborted call; tool waits
are ``─`` (resolved) or ``╌`` (pending/missing, drawn to the turn's end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from heron_tui.screens import fmt

WAIT, MARK, GEN, ABORT, TOOL, TOOL_OPEN = "░", "┃", "█", "✕", "─", "╌"
_SPAWN_TOOLS = frozenset(("task", "agent", "delegate_task", "sessions_spawn", "spawn_agent"))


@dataclass(slots=True)
class Row:
    """One timeline row. ``kind``: ``call`` or ``tool``; ``key``: the DataTable row key (a call id, or
    ``tool:<call_id>:<tool_call_id>``); ``call_id``: the call to open on enter."""

    kind: str
    key: str
    depth: int
    call_id: str | None
    label: Text
    bar: Text
    model: str = ""
    status: Text = field(default_factory=Text)
    ttft: str = ""
    duration: str = ""
    tokens: str = ""
    cost: str = ""


def call_style(call: dict[str, Any]) -> str:
    """Errors red, aborted magenta, retries (attempt > 1) yellow, sub-agents cyan, the rest green."""
    if call.get("finish") == "aborted":
        return "magenta"
    status = call.get("status_code")
    if call.get("finish") == "error" or (status is not None and status >= 400) or call.get("error"):
        return "red"
    if (call.get("attempt") or 1) > 1:
        return "yellow"
    if call.get("subagent"):
        return "cyan"
    return "green"


class Scale:
    """Epoch seconds → cell column over ``[t0, t1]``."""

    def __init__(self, t0: float, t1: float, width: int) -> None:
        self.t0, self.width = t0, max(4, width)
        self.span = max(t1 - t0, 1e-6)

    def col(self, t: float | None, default: int = 0) -> int:
        if t is None:
            return default
        return max(0, min(self.width, round((t - self.t0) / self.span * self.width)))

    def cells(self, start: float | None, end: float | None) -> tuple[int, int]:
        """``[s, e)`` with at least one cell, inside the width."""
        s = min(self.col(start), self.width - 1)
        e = max(self.col(end, s + 1), s + 1)
        return s, min(e, self.width)


def call_bar(call: dict[str, Any], scale: Scale) -> Text:
    s, e = scale.cells(call.get("request_start"), call.get("response_end") or call.get("request_end"))
    ft = call.get("first_token")
    mark = min(max(scale.col(ft), s), e - 1) if ft is not None else None
    cells = []
    for i in range(s, e):
        if mark is None:
            cells.append(GEN if call.get("ok") else WAIT)
        elif i < mark:
            cells.append(WAIT)
        elif i == mark:
            cells.append(MARK)
        else:
            cells.append(GEN)
    if call.get("finish") == "aborted":
        cells[-1] = ABORT
    text = Text(" " * s)
    text.append("".join(cells), style=call_style(call))
    text.append(" " * (scale.width - e))
    return text


def tool_bar(tool: dict[str, Any], scale: Scale, turn_end: float) -> Text:
    resolved = tool.get("result_at") is not None
    s, e = scale.cells(tool.get("issued_at"), tool.get("result_at") if resolved else turn_end)
    status = tool.get("result_status")
    style = "red" if status == "error" else ("yellow" if status == "missing" else "grey58")
    text = Text(" " * s)
    text.append((TOOL if resolved else TOOL_OPEN) * (e - s), style=style)
    text.append(" " * (scale.width - e))
    return text


def _spawner(sub: dict[str, Any], tools: list[dict[str, Any]], turn_end: float) -> tuple[str, str] | None:
    """The tool call that most likely spawned an unlinked sub-agent call: a main-agent tool whose wait
    contains the call's start, preferring spawn-like names or the sub-agent's own name."""
    start = sub.get("request_start")
    if start is None:
        return None
    best: tuple[int, float, tuple[str, str]] | None = None
    for t in tools:
        if t.get("subagent") or t.get("issued_at") is None:
            continue
        end = t.get("result_at") or turn_end
        if not (t["issued_at"] <= start <= end):
            continue
        name = (t.get("name") or "").lower()
        rank = 0 if name in _SPAWN_TOOLS or name == (sub.get("subagent") or "").lower() else 1
        cand = (rank, -t["issued_at"], (t["call_id"], t["tool_call_id"]))
        if best is None or cand < best:
            best = cand
    return best[2] if best else None


def build_rows(detail: dict[str, Any], width: int = 48) -> list[Row]:
    """Timeline rows of a ``turn_detail`` result (see the module docstring)."""
    turn, calls, tools = detail["turn"], detail["calls"], detail["tool_calls"]
    starts = [c["request_start"] for c in calls if c.get("request_start") is not None]
    ends = [c.get("response_end") or c.get("request_end") for c in calls]
    t0 = turn.get("start") if turn.get("start") is not None else min(starts, default=0.0)
    t1 = turn.get("end") if turn.get("end") is not None else max((e for e in ends if e), default=t0 + 1)
    scale = Scale(t0, t1, width)

    by_call: dict[str, list[dict[str, Any]]] = {}
    known: set[tuple[str, str]] = set()
    for t in sorted(tools, key=lambda t: (t.get("seq") or 0)):
        by_call.setdefault(t["call_id"], []).append(t)
        known.add((t["call_id"], t["tool_call_id"]))
    by_tool_id = {t["tool_call_id"]: (t["call_id"], t["tool_call_id"]) for t in tools}
    children: dict[tuple[str, str], list[dict[str, Any]]] = {}
    top: list[dict[str, Any]] = []
    for c in calls:
        parent = None
        if c.get("subagent"):
            parent = by_tool_id.get(c.get("parent_tool_call_id") or "") or _spawner(c, tools, t1)
            if parent is not None and parent[0] == c["call_id"]:  # never under its own tool call
                parent = None
        if parent is not None and parent in known:
            children.setdefault(parent, []).append(c)
        else:
            top.append(c)

    rows: list[Row] = []
    seen: set[str] = set()

    def emit(call: dict[str, Any], depth: int) -> None:
        if call["call_id"] in seen:  # a malformed parent chain must not loop
            return
        seen.add(call["call_id"])
        rows.append(_call_row(call, depth, scale))
        for t in by_call.get(call["call_id"], []):
            rows.append(_tool_row(t, depth + 1, scale, t1))
            for child in children.get((t["call_id"], t["tool_call_id"]), []):
                emit(child, depth + 2)

    for c in top:
        emit(c, 1 if c.get("subagent") else 0)
    return rows


def _call_row(call: dict[str, Any], depth: int, scale: Scale) -> Row:
    style = call_style(call)
    label = Text("  " * depth)
    label.append("● ", style=style)
    label.append(call.get("subagent") or "main", style="bold" if not call.get("subagent") else "")
    attempt = call.get("attempt") or 1
    if attempt > 1:
        label.append(f" ↻{attempt}", style="yellow")
    status = Text()
    if call.get("status_code") is not None:
        status.append(f"{call['status_code']} ")
    status.append(call.get("finish") or "", style=style if style in ("red", "magenta", "yellow") else "")
    tin, tout = call.get("input_total_tokens"), call.get("output_tokens")
    return Row(
        kind="call", key=call["call_id"], depth=depth, call_id=call["call_id"], label=label,
        bar=call_bar(call, scale), model=call.get("model") or "", status=status,
        ttft=fmt.ms(call.get("ttft_ms")),
        duration=fmt.ms(call.get("e2e_ms")), tokens=f"{fmt.tokens(tin)}/{fmt.tokens(tout)}",
        cost=fmt.cost(call.get("cost_usd")),
    )


def _tool_row(tool: dict[str, Any], depth: int, scale: Scale, turn_end: float) -> Row:
    status = tool.get("result_status") or "pending"
    style = "red" if status == "error" else ("yellow" if status == "missing" else "")
    label = Text("  " * depth)
    label.append("⚙ ", style="grey58")
    label.append(tool.get("name") or "?")
    return Row(
        kind="tool", key=f"tool:{tool['call_id']}:{tool['tool_call_id']}", depth=depth,
        call_id=tool.get("result_call_id") or tool["call_id"], label=label,
        bar=tool_bar(tool, scale, turn_end),
        status=Text(status, style=style), duration=fmt.ms(tool.get("wait_ms")),
    )


def axis(t0: float, t1: float, width: int) -> str:
    """The bar column's header: ``0`` at the left, the turn's duration at the right."""
    right = fmt.ms((t1 - t0) * 1000)
    return "0" + right.rjust(max(1, width - 1))
