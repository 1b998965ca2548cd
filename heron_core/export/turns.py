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

from heron_core.export.filters import RecordFilters, in_list, join_conds, stream_records, values, with_limit
from heron_core.store.schema import JSON, TURNS, VARCHAR_LIST, Table, quote

TURN_EXPORT_FIELDS: tuple[str, ...] = TURNS.column_names
"""The §6.2 keys in export order (the table follows the spec table)."""

TURN_STATUSES = ("complete", "incomplete", "partial")


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


@dataclass(slots=True)
class TurnFilters(RecordFilters):
    """The export filters of interfaces.md §1.2 applied to turns. ``since``/``until`` bound ``start``
    (half-open); ``model`` matches any model the turn used; ``status`` takes turn statuses (complete,
    incomplete, partial); ``session``/``turn`` are ids. Multi-value fields take a list or commas."""

    def where(self) -> tuple[str, list[Any]]:
        """``(SQL condition, parameters)``; raises ``ValueError`` (a usage error) on a bad value."""
        conds: list[str] = []
        params: list[Any] = []
        self.time_range('"start"', '"start"', conds, params)
        self.id_columns((("source_id", self.source_id), ("agent_kind", self.agent_kind),
                         ("session_id", self.session), ("turn_id", self.turn), ("wire_api", self.wire_api)),
                        conds, params)
        models = values(self.model)
        if models:
            conds.append("list_has_any(models, ?::VARCHAR[])")
            params.append(models)
        statuses = values(self.status)
        if statuses:
            bad = [s for s in statuses if s not in TURN_STATUSES]
            if bad:
                raise ValueError(f"invalid status {bad[0]!r} for turns: use {', '.join(TURN_STATUSES)}")
            conds.append(in_list("status", statuses, params))
        return join_conds(conds), params

    def query(self) -> tuple[str, list[Any]]:
        """The export query, ordered by ``start`` then ``turn_id`` (stable, repeatable)."""
        where, params = self.where()
        cols = ", ".join(quote(c) for c in TURNS.column_names)
        sql = f'SELECT {cols} FROM turns WHERE {where} ORDER BY "start" NULLS LAST, turn_id'
        return with_limit(sql, params, self.limit)


def export_turns(conn: duckdb.DuckDBPyConnection, out: BinaryIO, filters: TurnFilters | None = None) -> int:
    """Write matching turns to ``out`` as JSONL (§6.2); returns the number of records written."""
    sql, params = (filters or TurnFilters()).query()
    return stream_records(conn, out, sql, params, turn_record)
