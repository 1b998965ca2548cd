"""``heron export turns``: §6.2 turn records as JSONL, read from the store (interfaces.md §6, §6.2).

The ``turns`` table holds exactly the §6.2 fields in spec order, so a record is the row with JSON columns
(``error``, ``process``) parsed back into values and list columns never null. Rows stream from a DuckDB
cursor in batches (constant Python memory, like the calls export). ``turn_record`` is shared with the API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import duckdb
import orjson

from heron_core.export.calls import _values, parse_time
from heron_core.store.schema import JSON, TURNS, VARCHAR_LIST, Table, quote

TURN_EXPORT_FIELDS: tuple[str, ...] = TURNS.column_names
"""The §6.2 keys in export order (the table follows the spec table)."""

TURN_STATUSES = ("complete", "incomplete", "partial")
BATCH = 1000

Multi = str | Sequence[str] | None


def record_plan(table: Table, fields: Sequence[str]) -> list[tuple[str, Callable[[tuple], Any]]]:
    """One ``(key, getter)`` per field of a row selected as ``table``'s columns: JSON parsed, lists
    never null — computed once so each row is index lookups only."""
    types = dict(table.columns)
    pos = {c: i for i, c in enumerate(table.column_names)}
    plan: list[tuple[str, Callable[[tuple], Any]]] = []
    for key in fields:
        i = pos[key]
        if types[key] == JSON:
            plan.append((key, lambda r, i=i: None if r[i] is None else orjson.loads(r[i])))
        elif types[key] == VARCHAR_LIST:
            plan.append((key, lambda r, i=i: [] if r[i] is None else list(r[i])))
        else:
            plan.append((key, lambda r, i=i: r[i]))
    return plan


_PLAN = record_plan(TURNS, TURN_EXPORT_FIELDS)


def turn_record(row: Sequence[Any]) -> dict[str, Any]:
    """A ``SELECT *`` row of ``turns`` → the §6.2 record (dict in key order)."""
    return {key: get(row) for key, get in _PLAN}


def in_list(column: str, values: list[str], params: list[Any]) -> str:
    params.extend(values)
    return f"{quote(column)} IN ({', '.join('?' * len(values))})"


@dataclass(slots=True)
class TurnFilters:
    """The export filters of interfaces.md §1.2 applied to turns. ``since``/``until`` bound ``start``
    (half-open); ``model`` matches any model the turn used; ``status`` takes turn statuses (complete,
    incomplete, partial); ``session``/``turn`` are ids. Multi-value fields take a list or commas."""

    since: float | str | None = None
    until: float | str | None = None
    source_id: Multi = None
    agent_kind: Multi = None
    session: Multi = None
    turn: Multi = None
    model: Multi = None
    wire_api: Multi = None
    status: Multi = None
    limit: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        """``(SQL condition, parameters)``; raises ``ValueError`` (a usage error) on a bad value."""
        conds: list[str] = []
        params: list[Any] = []
        if self.since is not None:
            conds.append('"start" >= ?')
            params.append(parse_time(self.since))
        if self.until is not None:
            conds.append('"start" < ?')
            params.append(parse_time(self.until))
        for column, value in (("source_id", self.source_id), ("agent_kind", self.agent_kind),
                              ("session_id", self.session), ("turn_id", self.turn), ("wire_api", self.wire_api)):
            vals = _values(value)
            if vals:
                conds.append(in_list(column, vals, params))
        models = _values(self.model)
        if models:
            conds.append("list_has_any(models, ?::VARCHAR[])")
            params.append(models)
        statuses = _values(self.status)
        if statuses:
            bad = [s for s in statuses if s not in TURN_STATUSES]
            if bad:
                raise ValueError(f"invalid status {bad[0]!r} for turns: use {', '.join(TURN_STATUSES)}")
            conds.append(in_list("status", statuses, params))
        return (" AND ".join(conds) if conds else "TRUE"), params

    def query(self) -> tuple[str, list[Any]]:
        """The export query, ordered by ``start`` then ``turn_id`` (stable, repeatable)."""
        where, params = self.where()
        cols = ", ".join(quote(c) for c in TURNS.column_names)
        sql = f'SELECT {cols} FROM turns WHERE {where} ORDER BY "start" NULLS LAST, turn_id'
        return _limit(sql, params, self.limit)


def _limit(sql: str, params: list[Any], limit: int | None) -> tuple[str, list[Any]]:
    if limit is not None:
        if int(limit) < 0:
            raise ValueError(f"invalid limit {limit!r}")
        sql += " LIMIT ?"
        params.append(int(limit))
    return sql, params


def stream_records(conn: duckdb.DuckDBPyConnection, out: BinaryIO, sql: str, params: list[Any],
                   record: Callable[[Sequence[Any]], dict[str, Any]]) -> int:
    """Run ``sql`` on an own cursor and write one JSON line per row; returns the number written."""
    cur = conn.cursor()
    n = 0
    try:
        cur.execute(sql, params)
        while True:
            rows = cur.fetchmany(BATCH)
            if not rows:
                break
            out.write(b"".join(orjson.dumps(record(r), option=orjson.OPT_APPEND_NEWLINE) for r in rows))
            n += len(rows)
    finally:
        cur.close()
    return n


def export_turns(conn: duckdb.DuckDBPyConnection, out: BinaryIO, filters: TurnFilters | None = None) -> int:
    """Write matching turns to ``out`` as JSONL (§6.2); returns the number of records written."""
    sql, params = (filters or TurnFilters()).query()
    return stream_records(conn, out, sql, params, turn_record)
