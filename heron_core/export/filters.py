"""The record filters every export shares (interfaces.md §1.2), and the JSONL streaming loop.

Calls, turns, sessions, SFT and OTLP exports take the same ten filters; what differs per record kind is
which column ``since``/``until`` bound and how ``model``/``status`` match. ``RecordFilters`` holds the
fields and the common conditions; each export's subclass adds its own. Values come from the CLI (comma
lists) or the API (lists), so multi-value fields accept both. A bad value raises ``ValueError``, which
front ends report as a usage error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO

import duckdb
import orjson

from heron_core.store.schema import quote

BATCH = 1000
"""Rows fetched per round trip while streaming: constant Python memory for an export of any size."""

Multi = str | Sequence[str] | None


def parse_time(value: float | int | str) -> float:
    """``--since``/``--until``: epoch seconds or RFC 3339 (``Z`` or offset; no offset = UTC)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        t = float(value)
    else:
        s = str(value).strip()
        try:
            t = float(s)
        except ValueError:
            try:
                dt = datetime.fromisoformat(s.upper())
            except ValueError:
                raise ValueError(f"invalid time {value!r}: use epoch seconds or RFC 3339") from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            t = dt.timestamp()
    if not math.isfinite(t):
        raise ValueError(f"invalid time {value!r}")
    return t


def values(v: Multi) -> list[str]:
    """Multi-value filter: a list, or comma-separated text (the API accepts both, like the CLI)."""
    if v is None:
        return []
    items = [v] if isinstance(v, str) else list(v)
    return [p.strip() for item in items for p in str(item).split(",") if p.strip()]


def in_list(column: str, vals: list[str], params: list[Any]) -> str:
    """``column IN (?, …)`` with ``vals`` appended to ``params``."""
    params.extend(vals)
    return f"{quote(column)} IN ({', '.join('?' * len(vals))})"


def with_limit(sql: str, params: list[Any], limit: int | None) -> tuple[str, list[Any]]:
    if limit is not None:
        if int(limit) < 0:
            raise ValueError(f"invalid limit {limit!r}")
        sql += " LIMIT ?"
        params.append(int(limit))
    return sql, params


def join_conds(conds: list[str]) -> str:
    return " AND ".join(conds) if conds else "TRUE"


@dataclass(slots=True)
class RecordFilters:
    """The ten filters of interfaces.md §1.2; subclasses say what each means for their records."""

    since: float | str | None = None
    until: float | str | None = None
    source_id: Multi = None
    agent_kind: Multi = None
    session: Multi = None
    turn: Multi = None
    model: Multi = None
    wire_api: Multi = None
    status: Multi | int = None
    limit: int | None = None

    def time_range(self, since_expr: str, until_expr: str, conds: list[str], params: list[Any]) -> None:
        """Half-open range: ``since_expr >= since`` and ``until_expr < until``."""
        if self.since is not None:
            conds.append(f"{since_expr} >= ?")
            params.append(parse_time(self.since))
        if self.until is not None:
            conds.append(f"{until_expr} < ?")
            params.append(parse_time(self.until))

    def id_columns(self, pairs: Sequence[tuple[str, Multi]], conds: list[str], params: list[Any]) -> None:
        """``column IN (…)`` for every ``(column, filter value)`` pair that has values."""
        for column, value in pairs:
            vals = values(value)
            if vals:
                conds.append(in_list(column, vals, params))

    def kwargs(self) -> dict[str, Any]:
        """The ten filter values, to build another kind's filters from these."""
        return {name: getattr(self, name) for name in RecordFilters.__dataclass_fields__}


def stream_records(conn: duckdb.DuckDBPyConnection, out: BinaryIO, sql: str, params: list[Any],
                   record: Callable[[Sequence[Any]], dict[str, Any]]) -> int:
    """Run ``sql`` on an own cursor and write one JSON line per row; returns the number written.

    An own cursor lets an export run beside the writer and other readers of the same connection."""
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
