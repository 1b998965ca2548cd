"""Keyset paging for the list endpoints (interfaces.md §7.1).

A page is ``ORDER BY <sort> {ASC|DESC} NULLS LAST, <id> {ASC|DESC} LIMIT n+1``; the cursor carries the
sort value and id of the last row shown, and the next page starts strictly after that pair. Unlike
``OFFSET`` this costs the same on page 1,000 as on page 1 and never repeats or skips a row when rows are
added in front of the cursor while someone pages (a live run does exactly that).

The cursor is opaque to clients: base64url of ``[sort, value, id, fingerprint]``. The fingerprint is a
hash of the query's filters, so a cursor replayed with other filters or another sort is refused (400)
instead of silently producing a page of a different list.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from heron_tui.api.common import finite, invalid

MAX_LIMIT = 1000
PAGING_PARAMS = frozenset({"cursor", "limit", "count"})


@dataclass(frozen=True, slots=True)
class Sort:
    """A parsed ``sort`` parameter: the API field, its SQL expression and the direction."""

    field: str
    sql: str
    desc: bool

    @property
    def text(self) -> str:
        return ("-" if self.desc else "") + self.field

    def order_by(self, id_sql: str) -> str:
        d = "DESC" if self.desc else "ASC"
        return f"{self.sql} {d} NULLS LAST, {id_sql} {d}"


def parse_sort(value: str | None, allowed: Mapping[str, str], default: str) -> Sort:
    """``field`` or ``-field`` among ``allowed`` (API field → SQL); 400 otherwise."""
    text = (value or default).strip()
    desc = text.startswith("-")
    name = text[1:] if desc or text.startswith("+") else text
    if name not in allowed:
        raise invalid(f"sort: {name!r} is not one of {', '.join(allowed)}")
    return Sort(name, allowed[name], desc)


def fingerprint(query: Sequence[tuple[str, str]], extra: str = "") -> str:
    """Hash of the query parameters that define the list (not the paging ones), order-independent."""
    items = sorted((k, v) for k, v in query if k not in PAGING_PARAMS)
    return hashlib.sha256(orjson.dumps([items, extra])).hexdigest()[:12]


def encode_cursor(sort: Sort, value: Any, row_id: Any, fp: str) -> str:
    raw = orjson.dumps([sort.text, finite(value), row_id, fp])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str, sort: Sort, fp: str) -> tuple[Any, Any]:
    """``(value, id)`` of the row the page starts after; 400 for a cursor of another list."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        s, value, row_id, cfp = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise invalid("cursor: not a cursor of this API") from None
    if s != sort.text or cfp != fp:
        raise invalid("cursor: it belongs to another query (filters or sort changed); start from page one")
    return value, row_id


def after_sql(sort: Sort, id_sql: str, value: Any, row_id: Any) -> tuple[str, list[Any]]:
    """Rows strictly after ``(value, id)`` in ``sort.order_by(id_sql)`` order (nulls last)."""
    op = "<" if sort.desc else ">"
    if value is None:
        return f"({sort.sql} IS NULL AND {id_sql} {op} ?)", [row_id]
    return (f"({sort.sql} {op} ? OR ({sort.sql} = ? AND {id_sql} {op} ?) OR {sort.sql} IS NULL)",
            [value, value, row_id])


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    cursor: str | None
    count: bool
    sort: Sort
    fp: str

    @property
    def first(self) -> bool:
        return self.cursor is None


def page_request(query: Sequence[tuple[str, str]], limit: int, cursor: str | None, count: bool, sort: Sort,
                 extra: str = "") -> PageRequest:
    if limit < 1 or limit > MAX_LIMIT:
        raise invalid(f"limit: must be between 1 and {MAX_LIMIT}")
    return PageRequest(limit, cursor or None, count, sort, fingerprint(query, extra))


def sql_page(cur: Any, *, columns: str, table: str, where: str, params: list[Any], id_sql: str,
             req: PageRequest, record: Callable[[tuple], dict[str, Any]]) -> dict[str, Any]:
    """One page of ``SELECT columns FROM table WHERE where`` as ``{items, next_cursor[, total]}``.

    ``record`` turns a selected row (``columns`` only) into the response item.

    Two steps (late materialization): the top-N runs over the sort column and the id only, then the
    page's rows are fetched whole. DuckDB's top-N otherwise carries every selected column of every
    scanned row — for the 80-column ``calls`` table ten times the cost of the sort itself. How the rows
    are fetched depends on where they lie (measured at 1M calls, CPU ms for 100 rows): rows close
    together, as a time order leaves them, are read by ``rowid`` range plus list (~10 ms, zonemaps skip
    the rest of the table); rows scattered over the table, as a sort by latency or cost leaves them, by
    an ``IN`` list of id literals, which DuckDB pushes into the scan so that only the vectors holding them
    are decompressed (~50 ms, against ~140 ms by ``rowid``). Both steps (and the count) run in one read
    transaction, so they see one snapshot while the writer keeps writing.
    """
    after = decode_cursor(req.cursor, req.sort, req.fp) if req.cursor is not None else None
    cur.execute("BEGIN TRANSACTION")
    try:
        keys = _page_keys(cur, table, where, list(params), id_sql, req.sort, req.limit + 1, after)
        more = len(keys) > req.limit
        keys = keys[:req.limit]
        rows = _fetch(cur, columns, table, id_sql, keys) if keys else {}
        total = (int(cur.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0])
                 if req.count else None)
    finally:
        cur.execute("COMMIT")
    out: dict[str, Any] = {
        "items": [record(rows[k[0]]) for k in keys if k[0] in rows],
        "next_cursor": encode_cursor(req.sort, keys[-1][1], keys[-1][0], req.fp) if more and keys else None,
    }
    if total is not None:
        out["total"] = total
    return out


def _page_keys(cur: Any, table: str, where: str, params: list[Any], id_sql: str, sort: Sort, n: int,
               after: tuple[Any, Any] | None) -> list[tuple]:
    """``(id, sort value, rowid)`` of the first ``n`` rows after ``after`` (the cursor's value and id) in
    ``sort.order_by(id_sql)`` order.

    Two steps, because a top-N that carries the id (a string, unique per row) through its heap, or a
    keyset condition that compares it (``value = ? AND id > ?`` inside an OR), makes DuckDB read the id
    of every row: ~3x the cost of a top-N over the sort column alone (~50 against ~15 ms CPU at 1M
    calls). So: (1) the ``n``-th value after the cursor's value, from the sort column alone (DuckDB pushes
    the heap's bound into the scan as it fills); (2) the rows between the cursor's value and that one —
    ``n`` rows plus ties — with the full keyset condition and order. Both bounds are plain range filters
    that DuckDB applies in the scan, so the id is read only for the rows in range. When the ``n``-th value
    is null (the page reaches the rows without a value) there is no bound: nulls are ordered by id, the
    plain way.
    """
    d = "DESC" if sort.desc else "ASC"
    op, strict = (">=", ">") if not sort.desc else ("<=", "<")
    cond, cparams = where, list(params)
    if after is not None:
        value, row_id = after
        extra, eparams = after_sql(sort, id_sql, value, row_id)
        cond, cparams = f"({where}) AND {extra}", cparams + eparams
        if value is None:  # in the null tail: only the id orders
            return _plain_keys(cur, table, cond, cparams, id_sql, sort, n)
        # rows after the cursor's value (its ties are in step 2); nulls come last
        first = f"({where}) AND ({sort.sql} {strict} ? OR {sort.sql} IS NULL)"
        fparams = list(params) + [value]
        lower, lparams = f" AND {sort.sql} {op} ?", [value]
    else:
        first, fparams, lower, lparams = where, list(params), "", []
    vals = cur.execute(f"SELECT {sort.sql} FROM {table} WHERE {first} ORDER BY {sort.sql} {d} NULLS LAST "
                       f"LIMIT ?", fparams + [n]).fetchall()
    if not vals:  # nothing after the cursor's value: at most its ties remain
        if after is None:
            return []
        bound = after[0]
    elif vals[-1][0] is None:
        return _plain_keys(cur, table, cond, cparams, id_sql, sort, n)
    else:  # the page lies between the cursor's value and this one (fewer than n rows: all of them)
        bound = vals[-1][0]
    upper = "<=" if not sort.desc else ">="
    return cur.execute(f"SELECT {id_sql}, {sort.sql}, rowid FROM {table} WHERE {cond}{lower} "
                       f"AND {sort.sql} {upper} ? ORDER BY {sort.order_by(id_sql)} LIMIT ?",
                       cparams + lparams + [bound, n]).fetchall()


def _plain_keys(cur: Any, table: str, cond: str, params: list[Any], id_sql: str, sort: Sort,
                n: int) -> list[tuple]:
    return cur.execute(f"SELECT {id_sql}, {sort.sql}, rowid FROM {table} WHERE {cond} "
                       f"ORDER BY {sort.order_by(id_sql)} LIMIT ?", params + [n]).fetchall()


VECTOR_ROWS = 2048
CLUSTERED_VECTORS = 8
"""A page whose rows lie in at most this many DuckDB vectors (2,048 rows) is fetched by rowid."""


def _fetch(cur: Any, columns: str, table: str, id_sql: str, keys: list[tuple]) -> dict[Any, tuple]:
    """``{id: row}`` of the page's rows (``keys``: ``(id, sort value, rowid)``), read the cheaper way."""
    rowids = [k[2] for k in keys]
    if len({r // VECTOR_ROWS for r in rowids}) <= CLUSTERED_VECTORS:
        sql = (f"SELECT {id_sql}, {columns} FROM {table} WHERE rowid BETWEEN ? AND ? "
               f"AND rowid = ANY(?::BIGINT[])")
        found = cur.execute(sql, [min(rowids), max(rowids), rowids]).fetchall()
    else:
        found = cur.execute(f"SELECT {id_sql}, {columns} FROM {table} WHERE {id_sql} IN "
                            f"({', '.join(_literal(k[0]) for k in keys)})").fetchall()
    return {r[0]: r[1:] for r in found}


def _literal(value: Any) -> str:
    """A SQL string literal (quotes doubled). Ids are text the store generated; anything that could not be
    a literal is refused rather than spliced."""
    text = str(value)
    if "\x00" in text:
        raise ValueError("an id with a NUL character cannot be paged")
    return "'" + text.replace("'", "''") + "'"


def _cmp(sort: Sort, id_key: str) -> Callable[[dict[str, Any], dict[str, Any]], int]:
    """Comparator of ``sort.order_by`` for records in memory (nulls last in both directions)."""
    sign = -1 if sort.desc else 1

    def cmp(a: dict[str, Any], b: dict[str, Any]) -> int:
        va, vb = a.get(sort.field), b.get(sort.field)
        if (va is None) != (vb is None):
            return 1 if va is None else -1
        if va is not None and va != vb:
            return sign * (1 if va > vb else -1)
        ia, ib = a.get(id_key), b.get(id_key)
        return 0 if ia == ib else sign * (1 if ia > ib else -1)
    return cmp


def memory_page(items: list[dict[str, Any]], req: PageRequest, id_key: str) -> dict[str, Any]:
    """The same paging over records already in memory (lists computed at query time, or merged from
    a table and a computed source)."""
    cmp = _cmp(req.sort, id_key)
    ordered = sorted(items, key=functools.cmp_to_key(cmp))
    if req.cursor is not None:
        value, row_id = decode_cursor(req.cursor, req.sort, req.fp)
        pivot = {req.sort.field: value, id_key: row_id}
        ordered = [r for r in ordered if cmp(r, pivot) > 0]
    page = ordered[:req.limit]
    more = len(ordered) > req.limit
    out: dict[str, Any] = {
        "items": page,
        "next_cursor": (encode_cursor(req.sort, page[-1].get(req.sort.field), page[-1].get(id_key), req.fp)
                        if more and page else None),
    }
    if req.count:
        out["total"] = len(items)
    return out


def merge_page(stored: dict[str, Any], computed: list[dict[str, Any]], req: PageRequest,
               id_key: str) -> dict[str, Any]:
    """Merge a ``sql_page`` result with records computed in memory into one page of the same order.

    ``stored`` holds the first ``limit`` stored rows after the cursor (and whether more follow), so the
    first ``limit`` of the merged, sorted union is exactly the page of the combined list.
    """
    cmp = _cmp(req.sort, id_key)
    rest = list(computed)
    if req.cursor is not None:
        value, row_id = decode_cursor(req.cursor, req.sort, req.fp)
        pivot = {req.sort.field: value, id_key: row_id}
        rest = [r for r in rest if cmp(r, pivot) > 0]
    merged = sorted(stored["items"] + rest, key=functools.cmp_to_key(cmp))
    page = merged[:req.limit]
    more = len(merged) > req.limit or stored["next_cursor"] is not None
    out: dict[str, Any] = {
        "items": page,
        "next_cursor": (encode_cursor(req.sort, page[-1].get(req.sort.field), page[-1].get(id_key), req.fp)
                        if more and page else None),
    }
    if req.count:
        out["total"] = stored.get("total", 0) + len(computed)
    return out
