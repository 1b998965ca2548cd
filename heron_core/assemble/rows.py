"""Turn and session rows (interfaces.md §6.2, §6.3; metrics.md §5 roll-ups) and the writer sink.

Rows are rebuilt whole from the retained members or running totals each time they change and written
with ``replace=True``, so the stored row is always the latest complete picture whatever path led to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from heron_core.records import Call, Exchange

from .state import TOKEN_FIELDS, Member, SessionAgg, SessionState
from .tools import TOOL_UPDATE_COLUMNS

SESSION_TOKEN_FIELDS = TOKEN_FIELDS[1:]  # sessions have no wire-level input_tokens (§6.3)


class Sink:
    """The store writer behind a None-safe facade (``writer=None`` is a dry run)."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def exchange(self, ex: Exchange, call: Call | None, bodies: list) -> None:
        if self.writer is None:
            return
        self.writer.add_exchange(ex, call is not None, call.first_token if call is not None else None)
        if bodies:
            self.writer.add_bodies(bodies)

    def call(self, call: Call) -> None:
        if self.writer is not None:
            self.writer.add_call(call)

    def update_calls(self, rows: Sequence[tuple], columns: Sequence[str]) -> None:
        if self.writer is not None and rows:
            self.writer.update_calls(rows, columns)

    def tools(self, rows: list[dict[str, Any]]) -> None:
        if self.writer is not None and rows:
            self.writer.add_rows("tool_calls", rows)

    def tool_updates(self, rows: Sequence[tuple]) -> None:
        if self.writer is not None and rows:
            self.writer.update_rows("tool_calls", rows, TOOL_UPDATE_COLUMNS)

    def replace(self, table: str, row: dict[str, Any]) -> None:
        if self.writer is not None:
            self.writer.add_rows(table, [row], replace=True)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()


def _ordered_unique(values: Iterable[str | None]) -> list[str]:
    out: dict[str, None] = {}
    for v in values:
        if v and v != "unknown":
            out.setdefault(v, None)
    return list(out)


def _sum(values: Iterable[int | float | None]) -> int | float | None:
    total = None
    for v in values:
        if v is not None:
            total = v if total is None else total + v
    return total


def cost_figures(members: Iterable[Member]) -> tuple[float | None, bool]:
    """Σ cost and completeness: incomplete when a counted call with usage has no cost (metrics.md §5)."""
    total: float | None = None
    complete = True
    for m in members:
        if m.cost_usd is not None:
            total = m.cost_usd if total is None else total + m.cost_usd
        elif m.has_usage:
            complete = False
    return (round(total, 10) if total is not None else None), complete


def final_call(members: Sequence[Member]) -> Member | None:
    """The closing terminal call, else the last main-agent call that got a response."""
    for m in reversed(members):
        if m.terminal:
            return m
    for m in reversed(members):
        if m.main and m.has_response:
            return m
    return None


def turn_row(
    turn_id: str,
    s: SessionState,
    members: Sequence[Member],
    anchor: Member,
    status: str,
    end_reason: str | None,
    insight_kinds: dict[str, str],
) -> dict[str, Any]:
    """Every §6.2 field of a turn from its members (sorted by key)."""
    start = min(m.request_start for m in members)
    end = max(m.end for m in members)
    fin = final_call(members)
    tools = [r for m in members for r in sorted(m.tools, key=lambda r: r.seq)]
    cost, complete = cost_figures(members)
    row: dict[str, Any] = {
        "turn_id": turn_id,
        "session_id": s.session_id,
        "source_id": s.source_id,
        "agent_kind": s.agent_kind,
        "status": status,
        "end_reason": end_reason,
        "start": start,
        "end": end,
        "duration_ms": round((end - start) * 1000, 3),
        "first_response_ms": anchor.ttft_ms,
        "anchor_call_id": anchor.call_id,
        "final_call_id": fin.call_id if fin is not None else None,
        "call_ids": [m.call_id for m in members],
        "user_input_preview": anchor.user_preview if anchor.user_start else None,
        "final_answer_preview": fin.answer_preview if fin is not None else None,
        "finish": fin.finish if fin is not None else None,
        "finish_reason_raw": fin.finish_reason_raw if fin is not None else None,
        "error": fin.error if fin is not None else None,
        "wire_api": anchor.wire_api,
        "server": anchor.server,
        "client_ip": anchor.client_ip,
        "process": anchor.process,
        "models": _ordered_unique(m.model for m in members),
        "subagents": _ordered_unique(m.subagent for m in members),
        "tool_names": _ordered_unique(r.name for r in tools),
        "call_count": len(members),
        "main_call_count": sum(1 for m in members if m.main),
        "subagent_call_count": sum(1 for m in members if m.subagent is not None),
        "retry_count": sum(1 for m in members if m.attempt > 1),
        "cost_usd": cost,
        "cost_complete": complete,
        "tool_call_count": len(tools),
        "tool_error_count": sum(1 for r in tools if r.status == "error"),
        "tool_missing_count": sum(1 for r in tools if r.status == "missing"),
        "insight_count": len(insight_kinds),
        "insight_kinds": sorted(set(insight_kinds.values())),
    }
    for i, f in enumerate(TOKEN_FIELDS):
        row[f] = _sum(m.tokens[i] for m in members)
    return row


# --- sessions ----------------------------------------------------------------------------------------------


def agg_add_call(agg: SessionAgg, m: Member) -> None:
    """Count a call (auxiliary calls included, hop legs never reach here) in its session's totals."""
    if agg.first_key is None or m.key < agg.first_key:
        agg.first_key = m.key
        agg.first_start = m.request_start
        agg.server, agg.client_ip, agg.process = m.server, m.client_ip, m.process
    if agg.last_end is None or m.end > agg.last_end:
        agg.last_end = m.end
    agg.call_count += 1
    agg.auxiliary_call_count += 1 if m.auxiliary else 0
    for i, f in enumerate(TOKEN_FIELDS):
        v = m.tokens[i]
        if v is not None and f in SESSION_TOKEN_FIELDS:
            agg.tokens[f] = agg.tokens.get(f, 0) + v
    if m.cost_usd is not None:
        agg.cost_usd = m.cost_usd if agg.cost_usd is None else agg.cost_usd + m.cost_usd
    elif m.has_usage:
        agg.cost_complete = False
    if m.model and m.model != "unknown" and (m.model not in agg.models or m.key < agg.models[m.model]):
        agg.models[m.model] = m.key
    if m.subagent and (m.subagent not in agg.subagents or m.key < agg.subagents[m.subagent]):
        agg.subagents[m.subagent] = m.key


def agg_add_turn(
    agg: SessionAgg,
    start_key: tuple,
    turn_id: str,
    preview: str | None,
    status: str,
    old_status: str | None = None,
) -> None:
    if old_status is not None:
        agg.turn_counts[old_status] -= 1
    agg.turn_counts[status] = agg.turn_counts.get(status, 0) + 1
    if old_status is None:
        if agg.first_turn is None or start_key < agg.first_turn[0]:
            agg.first_turn = (start_key, turn_id, preview)
        if agg.last_turn is None or start_key > agg.last_turn[0]:
            agg.last_turn = (start_key, turn_id)


def session_row(s: SessionState) -> dict[str, Any]:
    """Every §6.3 field except the computed ``state``."""
    a = s.agg
    tc = a.turn_counts
    row: dict[str, Any] = {
        "session_id": s.session_id,
        "native_session_id": s.native_session_id,
        "session_source": s.session_source,
        "source_id": s.source_id,
        "agent_kind": s.agent_kind,
        "first_start": a.first_start,
        "last_end": a.last_end,
        "turn_count": sum(tc.values()),
        "turns_complete": tc.get("complete", 0),
        "turns_incomplete": tc.get("incomplete", 0),
        "turns_partial": tc.get("partial", 0),
        "call_count": a.call_count,
        "auxiliary_call_count": a.auxiliary_call_count,
        "first_turn_id": a.first_turn[1] if a.first_turn else None,
        "last_turn_id": a.last_turn[1] if a.last_turn else None,
        "first_user_input_preview": a.first_turn[2] if a.first_turn else None,
        "models": [k for k, _ in sorted(a.models.items(), key=lambda kv: kv[1])],
        "subagents": [k for k, _ in sorted(a.subagents.items(), key=lambda kv: kv[1])],
        "cost_usd": round(a.cost_usd, 10) if a.cost_usd is not None else None,
        "cost_complete": a.cost_complete,
        "tool_call_count": a.tool_call_count,
        "tool_error_count": a.tool_error_count,
        "insight_count": len(a.insight_keys),
        "server": a.server,
        "client_ip": a.client_ip,
        "process": a.process,
    }
    for f in SESSION_TOKEN_FIELDS:
        row[f] = a.tokens.get(f)
    return row
