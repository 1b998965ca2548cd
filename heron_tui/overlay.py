"""In-progress rows over the stored tables: the assembler's open turns and unfinished calls in the lists.

In-progress turns and in-flight calls live only in the assembler's memory (interfaces.md §2), yet the
list views are DuckDB queries (count, pages, keyset, filter, sort, search, row index). Rather than teach
each of those a second code path, a snapshot of the in-memory records (``LiveRows``) travels as Arrow
tables with the stored tables' columns, and a read through ``OverlayConn`` prefixes each statement with a
CTE of the table's own name::

    WITH turns AS (SELECT * FROM main.turns
                   UNION ALL BY NAME
                   SELECT * FROM heron_live_turns WHERE turn_id NOT IN (<stored ones among the live ids>))
    SELECT … FROM turns WHERE …                     -- the statement as the query layer wrote it

so everything written for the table — ``ListQuery``, the filter language's relation subqueries, the detail
screens — sees stored ∪ in-progress rows, filtered and sorted alike. A stored row wins over its live
version, so a turn that has just closed is never shown twice.

The snapshot is built on the engine's own thread right after a writer flush (``heron_tui.live``), the one
moment at which "stored" and "in memory" partition everything seen so far: every record is in the store,
in the snapshot, or in both (briefly, until the next snapshot) — never in neither, so rows do not blink.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from heron_core.store.rows import call_row, mapping_row
from heron_core.store.schema import TABLES, arrow_schema

log = logging.getLogger("heron.tui")

KEYS = {"turns": "turn_id", "calls": "call_id"}
"""The tables an overlay can extend, with their key column."""

IN_PROGRESS = "in_progress"
"""Turn status of an open run (agents-and-turns.md §11); also the ``finish`` shown for a call in flight."""

_WORD = {t: re.compile(rf"\b{t}\b", re.IGNORECASE) for t in KEYS}
_HEAD = re.compile(r"\s*(with\s+recursive\b|with\b|select\b|from\b|\()", re.IGNORECASE)


@dataclass(frozen=True)
class LiveRows:
    """Arrow tables of in-progress ``turns`` and unfinished ``calls`` (None when there are none)."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    ids: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def count(self, table: str) -> int:
        return len(self.ids.get(table, ()))

    def has(self, tables: tuple[str, ...]) -> bool:
        return any(self.ids.get(t) for t in tables)


EMPTY = LiveRows()


def _arrow(table: str, rows: list[tuple]) -> pa.Table:
    schema = arrow_schema(TABLES[table])
    columns = list(zip(*rows))
    return pa.Table.from_arrays([pa.array(col, type=f.type) for col, f in zip(columns, schema)], schema=schema)


def in_flight_row(c: Any) -> tuple:
    """A call whose response has not finished: what its request told (interfaces.md §2), ``finish``
    marking it in progress, every other column NULL."""
    return mapping_row("calls", {
        "call_id": c.call_id, "source_id": c.source_id, "session_id": getattr(c, "session_id", None),
        "wire_api": c.wire_api, "request_start": c.request_start_us / 1e6 if c.request_start_us else None,
        "finish": IN_PROGRESS,
    })


def build_live_rows(assembler: Any) -> LiveRows:
    """Snapshot of the assembler's in-memory records. Call on the engine's thread (the assembler is not
    thread-safe): open turns, calls in flight, and calls finished but waiting for the folding decision."""
    tables: dict[str, pa.Table] = {}
    ids: dict[str, tuple[str, ...]] = {}
    try:
        turns = [mapping_row("turns", t) for t in assembler.open_turns()]
    except KeyError as exc:  # a field the stored schema lacks: show stored rows only, say it once
        log.warning("in-progress turns not shown: %s", exc)
        turns = []
    pending = getattr(assembler, "pending_calls", list)()
    calls = [call_row(c) for c in pending]
    seen = {c.call_id for c in pending}
    calls += [in_flight_row(c) for c in assembler.in_flight() if c.call_id not in seen]
    for name, rows in (("turns", turns), ("calls", calls)):
        if rows:
            key = TABLES[name].index_of(KEYS[name])
            tables[name] = _arrow(name, rows)
            ids[name] = tuple(r[key] for r in rows)
    return LiveRows(tables, ids)


class OverlayConn:
    """A DuckDB cursor whose statements see ``live`` rows in ``tables`` (see the module doc).

    ``execute`` returns the wrapper, so ``conn.execute(...).fetchall()`` works as on a cursor; anything
    else is the cursor's. ``cursor()`` gives another wrapper, for code that opens its own cursor."""

    def __init__(self, cur: Any, live: LiveRows, tables: tuple[str, ...]) -> None:
        self._cur = cur
        self._live = live
        self._tables = tuple(t for t in tables if live.ids.get(t))
        self._registered = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)

    def cursor(self) -> OverlayConn:
        return OverlayConn(self._cur.cursor(), self._live, self._tables)

    def rewrite(self, sql: str, params: Any = None) -> tuple[str, list[Any]]:
        """The statement with the CTEs of the tables it names (unchanged when it names none)."""
        params = list(params) if params is not None else []
        used = [t for t in self._tables if _WORD[t].search(sql)]
        head = _HEAD.match(sql)
        if not used or head is None:
            return sql, params
        ctes, cte_params = [], []
        for t in used:
            key, ids = KEYS[t], self._live.ids[t]
            marks = ", ".join("?" * len(ids))
            ctes.append(f"{t} AS (SELECT * FROM main.{t} UNION ALL BY NAME SELECT * FROM heron_live_{t} "
                        f"WHERE {key} NOT IN (SELECT s.{key} FROM main.{t} s WHERE s.{key} IN ({marks})))")
            cte_params += ids
        word = head.group(1).lower()
        if word.startswith("with"):  # merge into the statement's own WITH
            sql = sql[: head.end()] + " " + ", ".join(ctes) + ", " + sql[head.end():].lstrip()
        else:
            sql = "WITH " + ", ".join(ctes) + " " + sql
        return sql, cte_params + params

    def execute(self, sql: str, params: Any = None) -> OverlayConn:
        sql, params = self.rewrite(sql, params)
        if not self._registered and self._tables:
            for t in self._tables:
                self._cur.register(f"heron_live_{t}", self._live.tables[t])
            self._registered = True
        self._cur.execute(sql, params)
        return self
