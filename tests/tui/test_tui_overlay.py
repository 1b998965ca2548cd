"""The live overlay (in-progress rows merged into list queries) and the live window of the sparklines,
on stores built by the real engine — deterministic, no UI, no timing."""

from __future__ import annotations

import pytest

from heron_core.query.filterlang import compile_filter
from heron_core.query.lists import CALLS, HIDDEN_HOPS, TURNS, ListQuery, compile_for, table_counts
from heron_core.query.sparks import calls_filter, compute
from heron_core.store.rows import mapping_row
from heron_core.store.schema import TABLES
from heron_tui.loader import StoreReader
from heron_tui.overlay import EMPTY, LiveRows, OverlayConn, _arrow, in_flight_row


def _turn_dicts(cur, where: str = "TRUE") -> list[dict]:
    res = cur.execute(f"SELECT * FROM turns WHERE {where} ORDER BY start, turn_id")
    cols = [d[0] for d in res.description]
    return [dict(zip(cols, r)) for r in res.fetchall()]


def _live(turns: list[dict] = (), calls: list[tuple] = ()) -> LiveRows:
    tables, ids = {}, {}
    rows = [mapping_row("turns", t) for t in turns]
    for name, rs in (("turns", rows), ("calls", list(calls))):
        if rs:
            key = TABLES[name].index_of("turn_id" if name == "turns" else "call_id")
            tables[name], ids[name] = _arrow(name, rs), tuple(r[key] for r in rs)
    return LiveRows(tables, ids)


def test_rewrite_adds_a_cte_only_where_the_table_is_named():
    live = _live(calls=[in_flight_row(type("C", (), {"call_id": "c1", "source_id": "s", "wire_api": "anthropic",
                                                     "request_start_us": 1_000_000})())])
    conn = OverlayConn(None, live, ("turns", "calls"))
    sql, params = conn.rewrite("SELECT count(*) FROM calls WHERE calls.model = ?", ["m"])
    assert sql.startswith("WITH calls AS (SELECT * FROM main.calls UNION ALL BY NAME SELECT * FROM heron_live_calls")
    assert params == ["c1", "m"]  # the CTE's ids come first: it comes first in the text
    sql, params = conn.rewrite("WITH x AS (SELECT 1) SELECT * FROM calls, x", None)
    assert sql.startswith("WITH calls AS (") and ", x AS (SELECT 1) SELECT * FROM calls, x" in sql
    assert conn.rewrite("SELECT count(*) FROM sessions", [1]) == ("SELECT count(*) FROM sessions", [1])
    assert conn.rewrite("PRAGMA version", None) == ("PRAGMA version", [])
    # turns has no live rows here: not wrapped even when named
    assert conn.rewrite("SELECT 1 FROM turns", None)[0] == "SELECT 1 FROM turns"


def test_in_progress_rows_merge_into_lists_and_the_stored_row_wins(demo_store):
    cur = demo_store.conn.cursor()
    stored = _turn_dicts(cur)
    closed = dict(stored[3])  # still in memory as in progress in this snapshot, already stored: stored wins
    closed["status"] = "in_progress"
    new = dict(stored[5], turn_id="00000000-0000-5000-8000-00000000abcd", status="in_progress", call_count=1)
    live = _live(turns=[closed, new])
    reader = StoreReader(demo_store.conn, lambda: live)
    q = ListQuery(TURNS)
    with reader.read(("turns",)) as c:
        rows = q.fetch(c, 0, 10_000)
        assert q.count(c) == len(stored) + 1 == len(rows)
        by_id = {r[0]: r for r in rows}
        status = 2 + [col.key for col in TURNS.columns].index("status")
        assert by_id[closed["turn_id"]][status] == stored[3]["status"]
        assert by_id[new["turn_id"]][status] == "in_progress"
        assert q.index_of(c, new["turn_id"]) is not None
        only = ListQuery(TURNS, compile_for(TURNS, "status == in_progress"))
        assert only.ids(c) == [new["turn_id"]]
        assert table_counts(c)["turns"] == len(stored) + 1
    with reader.read() as c:  # a read that names no table sees the store only
        assert ListQuery(TURNS).count(c) == len(stored)
    assert StoreReader(demo_store.conn, lambda: EMPTY).cursor(("turns",)).__class__ is not OverlayConn


def test_in_flight_calls_are_listed_with_request_fields(demo_store):
    c = type("C", (), {"call_id": "inflight-1", "source_id": "demo", "wire_api": "openai-chat",
                       "request_start_us": 1_767_225_700_000_000, "session_id": None})()
    live = _live(calls=[in_flight_row(c)])
    reader = StoreReader(demo_store.conn, lambda: live)
    keys = [col.key for col in CALLS.columns]
    with reader.read(("calls",)) as cur:
        q = ListQuery(CALLS)
        n_stored = demo_store.conn.cursor().execute(f"SELECT count(*) FROM calls WHERE {HIDDEN_HOPS}").fetchone()[0]
        assert q.count(cur) == n_stored + 1
        last = q.fetch(cur, n_stored, 10)[-1]  # the latest request start: the last row
        assert last[0] == "inflight-1" and last[2 + keys.index("finish")] == "in_progress"
        assert last[2 + keys.index("wire")] == "openai-chat" and last[2 + keys.index("status")] is None


def test_calls_filter_reads_the_filter_as_the_list_does(demo_store):
    cur = demo_store.conn.cursor()

    def n(where) -> int:
        return cur.execute(f"SELECT count(*) FROM calls WHERE {where.sql}", list(where.params)).fetchone()[0]

    turns = calls_filter("turns", "status == incomplete")
    want = cur.execute("SELECT count(*) FROM calls WHERE call_id IN (SELECT unnest(call_ids) FROM turns "
                       "WHERE status = 'incomplete')").fetchone()[0]
    assert n(turns) == want > 0
    sessions = calls_filter("sessions", "turns >= 2")
    assert n(sessions) == cur.execute("SELECT count(*) FROM calls WHERE session_id IN (SELECT session_id FROM "
                                      "sessions WHERE turn_count >= 2)").fetchone()[0]
    direct = calls_filter("calls", "status >= 500")
    assert n(direct) == n(compile_filter("status >= 500", "calls"))
    assert calls_filter("services", "model ~ gpt") is not None and calls_filter("turns", "  ") is None


def test_sparks_over_a_live_window_with_calls_in_flight(synth_store):
    cur = synth_store.conn.cursor()
    t_min, t_max = cur.execute(f"SELECT min(request_start), max(response_end) FROM calls WHERE {HIDDEN_HOPS}"
                               ).fetchone()
    t1 = t_max
    t0 = t1 - (t_max - t_min) / 3  # the last third: calls before it are outside, some overlap its start
    s = compute(cur, None, buckets=30, t0=t0, t1=t1)
    assert (s.t0, s.t1) == (t0, t1) and all(len(x.values) == 30 for x in s.series)
    n = cur.execute(f"SELECT count(*) FROM calls WHERE {HIDDEN_HOPS} AND request_start BETWEEN ? AND ?",
                    [t0, t1]).fetchone()[0]
    assert s.calls == n and s.get("calls_s").total == pytest.approx(n / (t1 - t0))
    assert sum(s.get("calls_s").values) * s.bucket_s == pytest.approx(n)
    busy = cur.execute(f"SELECT sum(least(response_end, ?) - greatest(request_start, ?)) FROM calls WHERE "
                       f"{HIDDEN_HOPS} AND request_start <= ? AND response_end >= ?", [t1, t0, t1, t0]).fetchone()[0]
    assert sum(s.get("active").values) * s.bucket_s == pytest.approx(busy, rel=1e-6)
    flying = [t1 - 10.0, t0 - 5.0]  # one started in the window, one before it: both active up to t1
    f = compute(cur, None, buckets=30, t0=t0, t1=t1, in_flight=flying)
    extra = 10.0 + (t1 - t0)
    assert sum(f.get("active").values) * f.bucket_s == pytest.approx(busy + extra, rel=1e-6)
    assert f.get("active").total == pytest.approx((busy + extra) / (t1 - t0))
    empty = compute(cur, compile_filter("agent == nobody", "calls"), buckets=30, t0=t0, t1=t1)
    assert empty.calls == 0 and empty.t0 == t0 and all(x.values == [0.0] * 30 for x in empty.series)
