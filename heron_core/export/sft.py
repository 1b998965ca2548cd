"""``heron export sft``: agent trajectories as supervised fine-tuning records (interfaces.md §6.4).

Agents resend their whole history on every call, so a turn's trajectory is simply the normalized
request of its final call plus the assistant message of that call's rebuilt ``response_object``; no
stitching of calls is needed. Normalization of the six wire APIs lives in ``sft_messages`` (shared with
the call-detail conversation view).

``--scope session`` exports one record per history *segment*: the turns of a session are walked in
order and each turn's trajectory normally extends the previous one; when it does not (the agent
compacted or summarized its history), the previous trajectory closes a segment. ``--include-subagents``
adds each sub-agent conversation of a turn as its own record, found the same way (chains of calls whose
histories extend one another).

Nothing here fails the batch: a turn that cannot be exported is counted under one of the skip reasons
and, with ``report``, written as ``{turn_id, session_id, reason}``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import duckdb
import orjson
import zstandard

from heron_core.bodies import decompress_body
from heron_core.export.turns import TurnFilters
from heron_core.export.messages import (
    Message,
    Trajectory,
    Unparseable,
    sft_message,
    sft_tool,
    trajectory,
)
from heron_core.store.schema import quote
from heron_core.wire.common import strip_system_reminders

FORMAT = "heron-sft/1"
SKIP_REASONS = ("no_final_call", "body_truncated", "body_missing", "unparseable", "damaged")
SCOPES = ("turn", "session")
_TURN_COLUMNS = ("turn_id", "session_id", "source_id", "agent_kind", "status", "start", "end",
                 "final_call_id", "call_count", "input_total_tokens", "output_tokens", "cost_usd")
_CALL_COLUMNS = ("call_id", "source_id", "session_id", "agent_kind", "wire_api", "model", "finish", "damaged",
                 "subagent", "parent_tool_call_id", "request_start", "response_end", "input_total_tokens",
                 "output_tokens", "cost_usd")
_NOT_FINAL = frozenset(("tool_use", "error", "aborted"))
_WS = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class SftResult:
    exported: int
    skipped: dict[str, int]

    def summary(self) -> str:
        """``exported N, skipped M (reason: n, …)`` — the CLI's stderr line."""
        total = sum(self.skipped.values())
        text = f"exported {self.exported}, skipped {total}"
        if total:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in self.skipped.items() if v) + ")"
        return text


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _Traj:
    """One exportable trajectory and what ``_meta`` needs about the call that produced it."""

    traj: Trajectory
    call: dict[str, Any]
    keys: list[tuple] = field(default_factory=list)


# --- selection ---------------------------------------------------------------------------------------


def turn_where(filters: Any) -> tuple[str, list[Any]]:
    """The export filters (interfaces.md §1.2) applied to turns, as ``TurnFilters`` applies them
    (``since``/``until`` bound the turn's ``start``, ``model`` any model the turn used, ``status`` turn
    statuses). Accepts ``CallFilters`` or any object with those attribute names; raises ``ValueError``
    (a usage error) on a bad value."""
    if filters is None:
        return "TRUE", []
    names = ("since", "until", "source_id", "agent_kind", "session", "turn", "model", "wire_api", "status")
    kw = {n: getattr(filters, n, None) for n in names}
    if isinstance(kw["status"], int):
        kw["status"] = str(kw["status"])
    return TurnFilters(**kw).where()


def _turns(conn: duckdb.DuckDBPyConnection, where: str, params: list[Any], limit: int | None) -> list[dict]:
    cols = ", ".join(quote(c) for c in _TURN_COLUMNS)
    sql = f"SELECT {cols} FROM turns WHERE {where} ORDER BY \"start\", turn_id"
    if limit is not None:
        if int(limit) < 0:
            raise ValueError(f"invalid limit {limit!r}")
        sql += f" LIMIT {int(limit)}"
    cur = conn.cursor()
    try:
        return [dict(zip(_TURN_COLUMNS, r)) for r in cur.execute(sql, params).fetchall()]
    finally:
        cur.close()


def _calls(cur: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[dict[str, Any]]:
    cols = ", ".join(quote(c) for c in _CALL_COLUMNS)
    cur.execute(f"SELECT {cols} FROM calls WHERE {where} ORDER BY request_start NULLS LAST, call_id", params)
    return [dict(zip(_CALL_COLUMNS, r)) for r in cur.fetchall()]


# --- one call → trajectory ---------------------------------------------------------------------------


def _json_part(cur: duckdb.DuckDBPyConnection, call_id: str, part: str) -> Any:
    row = cur.execute("SELECT codec, data, truncated, is_text FROM bodies WHERE exchange_id = ? AND part = ?",
                      [call_id, part]).fetchone()
    if row is None:
        raise _Skip("body_missing")
    codec, data, truncated, is_text = row
    if truncated:
        raise _Skip("body_truncated")
    if not is_text:
        raise _Skip("unparseable")
    try:
        return orjson.loads(decompress_body(codec, bytes(data)))
    except (ValueError, zstandard.ZstdError):  # bad JSON, unknown codec, corrupt frame
        raise _Skip("unparseable") from None


def _load(cur: duckdb.DuckDBPyConnection, call: dict[str, Any] | None) -> _Traj:
    """The call's trajectory, or ``_Skip`` with the reason it has none."""
    if call is None:
        raise _Skip("no_final_call")
    if call.get("damaged"):
        raise _Skip("damaged")
    req = _json_part(cur, call["call_id"], "request")
    obj = _json_part(cur, call["call_id"], "response_object")
    try:
        traj = trajectory(call.get("wire_api") or "", req, obj)
    except Unparseable:
        raise _Skip("unparseable") from None
    return _Traj(traj, call, [_key(m) for m in traj.messages if m.role != "system"])


def _norm(text: str | None) -> str | None:
    if not text:
        return None
    return _WS.sub(" ", strip_system_reminders(text)).strip() or None


def _key(m: Message) -> tuple:
    """What must match for a later history to count as extending an earlier one: role, visible text
    (reminders and whitespace ignored: agents re-inject reminders) and tool-call ids. Reasoning is left
    out: several clients drop or re-sign thinking when they resend it."""
    return (m.role, _norm(m.content), tuple(tc.id for tc in m.tool_calls), m.tool_call_id)


def extends(earlier: Sequence[tuple], later: Sequence[tuple]) -> bool:
    """True when ``later``'s history starts with all of ``earlier``'s (system messages excluded)."""
    return len(earlier) <= len(later) and list(later[: len(earlier)]) == list(earlier)


# --- records -----------------------------------------------------------------------------------------


def _sum(values: Iterable[Any]) -> Any:
    vals = [v for v in values if v is not None]
    return sum(vals) if vals else None


def _record(t: _Traj, meta: dict[str, Any]) -> bytes:
    rec: dict[str, Any] = {"messages": [sft_message(m) for m in t.traj.messages]}
    if t.traj.tools:
        rec["tools"] = [sft_tool(x) for x in t.traj.tools]
    meta["dropped_parts"] = t.traj.dropped_parts
    rec["_meta"] = meta
    return orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)


def _meta(scope: str, turns: list[dict[str, Any]], t: _Traj, *, segment: int | None, subagent: str | None,
          calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``_meta`` in the §6.4 key order. Totals come from the turns, or from ``calls`` for a sub-agent
    conversation (its own calls only)."""
    first, last, call = turns[0], turns[-1], t.call
    meta: dict[str, Any] = {"format": FORMAT, "scope": scope,
                            "source_id": call.get("source_id") or first["source_id"],
                            "session_id": first["session_id"]}
    if scope == "turn":
        meta["turn_id"] = first["turn_id"]
    else:
        meta["turn_ids"] = [x["turn_id"] for x in turns]
    if calls is None:
        complete = all(x["status"] == "complete" for x in turns)
        totals = turns
        start, end = first["start"], last["end"]
        call_count = _sum(x["call_count"] for x in turns) or 0
    else:
        complete = call.get("finish") not in _NOT_FINAL
        totals = calls
        start = min((c["request_start"] for c in calls if c["request_start"] is not None), default=None)
        end = max((c["response_end"] for c in calls if c["response_end"] is not None), default=None)
        call_count = len(calls)
    meta.update(
        final_call_id=call["call_id"], agent_kind=call.get("agent_kind") or first["agent_kind"],
        wire_api=call.get("wire_api"), model=call.get("model"), finish=call.get("finish"), complete=complete,
        segment=segment, subagent=subagent, call_count=call_count,
        input_total_tokens=_sum(x["input_total_tokens"] for x in totals),
        output_tokens=_sum(x["output_tokens"] for x in totals),
        cost_usd=_sum(x["cost_usd"] for x in totals), start=start, end=end,
    )
    return meta


class _Exporter:
    """State of one export run: output, report, counts. One per ``export_sft`` call."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, out: BinaryIO, report: BinaryIO | None,
                 include_incomplete: bool, include_subagents: bool) -> None:
        self.cur = conn.cursor()
        self.out, self.report = out, report
        self.include_incomplete, self.include_subagents = include_incomplete, include_subagents
        self.exported = 0
        self.skipped: Counter[str] = Counter()

    def close(self) -> None:
        self.cur.close()

    def skip(self, turn: dict[str, Any], reason: str) -> None:
        self.skipped[reason] += 1
        if self.report is not None:
            self.report.write(orjson.dumps({"turn_id": turn["turn_id"], "session_id": turn["session_id"],
                                            "reason": reason}, option=orjson.OPT_APPEND_NEWLINE))

    def write(self, t: _Traj, meta: dict[str, Any]) -> None:
        self.out.write(_record(t, meta))
        self.exported += 1

    def eligible(self, turn: dict[str, Any]) -> bool:
        return bool(turn["final_call_id"]) and (turn["status"] == "complete" or self.include_incomplete)

    def final_call(self, turn: dict[str, Any]) -> _Traj:
        if not self.eligible(turn):
            raise _Skip("no_final_call")
        calls = _calls(self.cur, "call_id = ?", [turn["final_call_id"]])
        return _load(self.cur, calls[0] if calls else None)

    # --- scopes ---

    def turn(self, turn: dict[str, Any]) -> None:
        try:
            t = self.final_call(turn)
        except _Skip as s:
            self.skip(turn, s.reason)
        else:
            self.write(t, _meta("turn", [turn], t, segment=None, subagent=None))
        self.subagents("turn", turn)

    def session(self, turns: list[dict[str, Any]]) -> None:
        """Segments of one session's history (compaction splits them); see the module docstring. A
        failing intermediate turn is covered by the later histories and is not counted; a failing last
        turn is (its final call is the one the session's trajectory would come from)."""
        eligible = [x for x in turns if self.eligible(x)]
        if not eligible:
            self.skip(turns[-1], "no_final_call")
        segment: list[dict[str, Any]] = []
        current: _Traj | None = None
        index = 0
        for i, turn in enumerate(eligible):
            try:
                t = self.final_call(turn)
            except _Skip as s:
                if i == len(eligible) - 1:
                    self.skip(turn, s.reason)
                continue
            if current is not None and not extends(current.keys, t.keys):
                self.write(current, _meta("session", segment, current, segment=index, subagent=None))
                index += 1
                segment = []
            segment.append(turn)
            current = t
        if current is not None:
            self.write(current, _meta("session", segment, current, segment=index, subagent=None))
        for turn in turns:
            self.subagents("session", turn)

    def subagents(self, scope: str, turn: dict[str, Any]) -> None:
        """Each sub-agent conversation of the turn: calls grouped by (name, spawning tool call), then
        split into chains of extending histories (parallel sub-agents of one name stay apart); one
        record per chain, from its last call."""
        if not self.include_subagents:
            return
        calls = _calls(self.cur, "turn_id = ? AND subagent IS NOT NULL", [turn["turn_id"]])
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for c in calls:
            groups.setdefault((c["subagent"], c["parent_tool_call_id"]), []).append(c)
        for (name, _parent), members in groups.items():
            chains: list[tuple[_Traj, list[dict[str, Any]]]] = []
            reason = None
            for c in members:
                try:
                    t = _load(self.cur, c)
                except _Skip as s:
                    reason = s.reason
                    continue
                for k, (prev, chain_calls) in enumerate(chains):
                    if extends(prev.keys, t.keys):
                        chains[k] = (t, chain_calls + [c])
                        break
                else:
                    chains.append((t, [c]))
            if not chains and reason is not None:
                self.skip(turn, reason)
            for t, chain_calls in chains:
                self.write(t, _meta(scope, [turn], t, segment=None,
                                    subagent=name, calls=chain_calls))


def export_sft(
    conn: duckdb.DuckDBPyConnection,
    out: BinaryIO,
    *,
    turn_ids: Sequence[str] | None = None,
    session_ids: Sequence[str] | None = None,
    filters: Any = None,
    scope: str = "turn",
    include_incomplete: bool = False,
    include_subagents: bool = False,
    report: BinaryIO | None = None,
) -> SftResult:
    """Write SFT records (JSONL) for the selected turns or sessions; returns the counts.

    Selection: ``turn_ids`` and/or ``session_ids`` restrict, ``filters`` (``CallFilters`` fields, applied
    to turns by ``turn_where``) narrow further; ``filters.limit`` caps the number of turns. With
    ``scope='session'`` every session that has a selected turn is exported whole. Raises ``ValueError``
    for a bad scope or filter value (usage errors); data problems are skips, never exceptions.
    """
    if scope not in SCOPES:
        raise ValueError(f"invalid scope {scope!r}: use turn or session")
    where, params = turn_where(filters)
    if turn_ids is not None:
        where += " AND turn_id IN (SELECT UNNEST(?::VARCHAR[]))"
        params.append(list(turn_ids))
    if session_ids is not None:
        where += " AND session_id IN (SELECT UNNEST(?::VARCHAR[]))"
        params.append(list(session_ids))
    limit = getattr(filters, "limit", None)
    selected = _turns(conn, where, params, limit)
    ex = _Exporter(conn, out, report, include_incomplete, include_subagents)
    try:
        if scope == "turn":
            for turn in selected:
                ex.turn(turn)
        else:
            sessions = list(dict.fromkeys(t["session_id"] for t in selected))
            for sid in sessions:
                ex.session(_turns(conn, "session_id = ?", [sid], None))
    finally:
        ex.close()
    skipped = {r: ex.skipped[r] for r in SKIP_REASONS if ex.skipped[r]}
    return SftResult(ex.exported, skipped)
