"""``heron export sessions``: §6.3 session records as JSONL, read from the store (interfaces.md §6.3).

The ``sessions`` table holds every §6.3 field except the computed ``state``, which is inserted after
``last_end``: ``active`` when the session saw activity within ``turn.idle_timeout_s`` of the live
watermark, else ``idle`` — always ``idle`` for a finished database (no watermark).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import duckdb

from heron_core.export.filters import RecordFilters, in_list, join_conds, stream_records, values, with_limit
from heron_core.export.turns import record_plan
from heron_core.store.schema import SESSIONS, quote

SESSION_EXPORT_FIELDS: tuple[str, ...] = (
    *SESSIONS.column_names[:SESSIONS.index_of("last_end") + 1], "state",
    *SESSIONS.column_names[SESSIONS.index_of("last_end") + 1:],
)
"""The §6.3 keys in export order."""

SESSION_STATES = ("active", "idle")
_STORED = tuple(k for k in SESSION_EXPORT_FIELDS if k != "state")
_PLAN = record_plan(SESSIONS, _STORED)
_LAST_END = SESSIONS.index_of("last_end")


def session_state(last_end: float | None, watermark: float | None, idle_timeout_s: float = 600.0) -> str:
    """``active`` when ``last_end`` is within ``idle_timeout_s`` of the live ``watermark``, else ``idle``."""
    if watermark is None or last_end is None:
        return "idle"
    return "active" if last_end >= watermark - idle_timeout_s else "idle"


def session_record(row: Sequence[Any], watermark: float | None = None,
                   idle_timeout_s: float = 600.0) -> dict[str, Any]:
    """A ``SELECT *`` row of ``sessions`` → the §6.3 record (dict in key order, ``state`` computed)."""
    out: dict[str, Any] = {}
    for key, get in _PLAN:
        out[key] = get(row)
        if key == "last_end":
            out["state"] = session_state(row[_LAST_END], watermark, idle_timeout_s)
    return out


@dataclass(slots=True)
class SessionFilters(RecordFilters):
    """The export filters of interfaces.md §1.2 applied to sessions. ``since``/``until`` select sessions
    overlapping the range (``last_end ≥ since``, ``first_start < until``); ``turn`` selects the session of
    that turn; ``model`` any model the session used; ``wire_api`` sessions with a call of that API;
    ``status`` takes states (``active``, ``idle``), evaluated against ``watermark`` (None: finished)."""

    watermark: float | None = None
    idle_timeout_s: float = 600.0

    def where(self) -> tuple[str, list[Any]]:
        """``(SQL condition, parameters)``; raises ``ValueError`` (a usage error) on a bad value."""
        conds: list[str] = []
        params: list[Any] = []
        self.time_range("coalesce(last_end, first_start)", "first_start", conds, params)
        self.id_columns((("source_id", self.source_id), ("agent_kind", self.agent_kind),
                         ("session_id", self.session)), conds, params)
        turns = values(self.turn)
        if turns:
            conds.append(f"session_id IN (SELECT session_id FROM turns WHERE {in_list('turn_id', turns, params)})")
        models = values(self.model)
        if models:
            conds.append("list_has_any(models, ?::VARCHAR[])")
            params.append(models)
        apis = values(self.wire_api)
        if apis:
            conds.append(f"session_id IN (SELECT session_id FROM calls WHERE {in_list('wire_api', apis, params)})")
        states = values(self.status)
        if states:
            bad = [s for s in states if s not in SESSION_STATES]
            if bad:
                raise ValueError(f"invalid status {bad[0]!r} for sessions: use {', '.join(SESSION_STATES)}")
            if self.watermark is None:
                conds.append("TRUE" if "idle" in states else "FALSE")
            elif set(states) != set(SESSION_STATES):
                active = "coalesce(last_end >= ?, false)"
                conds.append(active if states[0] == "active" else f"NOT {active}")
                params.append(self.watermark - self.idle_timeout_s)
        return join_conds(conds), params

    def query(self) -> tuple[str, list[Any]]:
        """The export query, ordered by ``first_start`` then ``session_id`` (stable, repeatable)."""
        where, params = self.where()
        cols = ", ".join(quote(c) for c in SESSIONS.column_names)
        sql = f"SELECT {cols} FROM sessions WHERE {where} ORDER BY first_start NULLS LAST, session_id"
        return with_limit(sql, params, self.limit)


def export_sessions(conn: duckdb.DuckDBPyConnection, out: BinaryIO, filters: SessionFilters | None = None) -> int:
    """Write matching sessions to ``out`` as JSONL (§6.3); returns the number of records written."""
    f = filters or SessionFilters()
    sql, params = f.query()
    return stream_records(conn, out, sql, params,
                          lambda r: session_record(r, f.watermark, f.idle_timeout_s))
