"""``paging.sql_page`` finds its page in two steps (the n-th sort value, then the rows up to it): walking
every page must give exactly the list in ``ORDER BY value NULLS LAST, id`` order — with many ties, nulls,
cursors that land on a tie or in the null tail, filters, and pages of one row."""

from __future__ import annotations

import functools
import random

import duckdb
import pytest

from heron_tui.api.paging import Sort, _cmp, page_request, sql_page


def _table(seed: int, rows: int) -> duckdb.DuckDBPyConnection:
    rnd = random.Random(seed)
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (id VARCHAR PRIMARY KEY, v DOUBLE, k INTEGER)")
    data = []
    for i in range(rows):
        roll = rnd.random()
        v = None if roll < 0.2 else float(rnd.randrange(8)) if roll < 0.7 else rnd.random() * 100
        data.append((f"r{rnd.randrange(10**6):06d}-{i}", v, rnd.randrange(3)))
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", data)
    return conn


def _walk(conn: duckdb.DuckDBPyConnection, sort: Sort, limit: int, where: str) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(10_000):
        query = [("where", where)]
        req = page_request(query, limit, cursor, False, sort)
        page = sql_page(conn.cursor(), columns="id, v", table="t", where=where, params=[], id_sql="id", req=req,
                        record=lambda r: {"id": r[0], "v": r[1]})
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("desc", [False, True])
@pytest.mark.parametrize("limit", [1, 3, 17])
def test_walking_pages_gives_the_whole_list_in_order(seed, desc, limit):
    conn = _table(seed, 120)
    where = "k <> 1" if seed % 2 else "TRUE"
    sort = Sort("v", "v", desc)
    rows = [{"id": i, "v": v} for i, v in conn.execute(f"SELECT id, v FROM t WHERE {where}").fetchall()]
    expected = [r["id"] for r in sorted(rows, key=functools.cmp_to_key(_cmp(sort, "id")))]
    assert _walk(conn, sort, limit, where) == expected


def test_empty_and_single_value_lists():
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (id VARCHAR, v DOUBLE, k INTEGER)")
    assert _walk(conn, Sort("v", "v", True), 5, "TRUE") == []
    conn.executemany("INSERT INTO t VALUES (?, 1.0, 0)", [[f"x{i}"] for i in range(7)])
    assert _walk(conn, Sort("v", "v", True), 2, "TRUE") == [f"x{i}" for i in range(6, -1, -1)]
    conn.executemany("INSERT INTO t VALUES (?, NULL, 0)", [[f"n{i}"] for i in range(3)])
    assert _walk(conn, Sort("v", "v", False), 4, "TRUE") == [f"x{i}" for i in range(7)] + ["n0", "n1", "n2"]
