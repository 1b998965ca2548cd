"""Writer: batched INSERT OR IGNORE, counters, generic rows, replaces, updates, failure handling."""

from __future__ import annotations

import dataclasses
from collections import Counter

import orjson
import pytest
from store_helpers import make_call, make_exchange

from heron_core.bodies import body_rows, decompress_body
from heron_core.config import Config
from heron_core.records import Call
from heron_core.store import schema
from heron_core.store.db import open_store
from heron_core.store.rows import call_row, dump_json, exchange_row, mapping_row
from heron_core.store.writer import StoreWriter


@pytest.fixture()
def store():
    st = open_store(None)
    yield st
    st.close()


def _count(st, table: str) -> int:
    return st.conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def _reference_call_row(c: Call) -> tuple:
    """Independent, slow conversion by field name — checks the hand-written tuple in rows.py."""
    out = []
    for f in dataclasses.fields(Call):
        if f.name.startswith("x_"):
            continue
        v = getattr(c, f.name)
        if f.name == "process":
            out += [v.pid, v.comm, v.exe] if v else [None, None, None]
            continue
        if f.name == "tool_calls":
            v = orjson.dumps([dataclasses.asdict(t) for t in v]).decode()
        elif dict(schema.CALLS.columns)[f.name] == "JSON":
            v = None if v is None else orjson.dumps(v).decode()
        out.append(v)
    return tuple(out)


def test_call_row_matches_reference_conversion():
    for c in (make_call(), Call("id", "src"), make_call(3, process=None, client_ip=None, error={"a": 1})):
        assert call_row(c) == _reference_call_row(c)


def test_exchange_row_units_and_derived_columns():
    ex = make_exchange()
    row = dict(zip(schema.EXCHANGES.column_names, exchange_row(ex, True)))
    assert row["request_start"] == 1_700_000_000.123456 and row["response_end"] == 1_700_000_002.000001
    assert row["first_token"] is None  # stream: decided by the wire stage
    assert orjson.loads(row["request_headers"])[0] == ["Host", "api.anthropic.com"]
    assert row["request_content_type"] == "application/json"
    assert row["response_content_type"] == "text/event-stream"
    assert row["request_content_encoding"] is None and row["response_content_encoding"] == "gzip"
    assert row["host"] == "api.anthropic.com" and row["stream_events"] == 1
    assert row["damage"] == ["gap", "truncated"] and row["damaged"] and row["is_llm"]
    assert row["process_pid"] is None
    # non-streaming 2xx: first_token = response_start; explicit value wins
    plain = make_exchange(stream_format=None, stream_units=[])
    assert exchange_row(plain, False)[schema.EXCHANGES.index_of("first_token")] == 1_700_000_000.5
    assert exchange_row(ex, True, first_token=1.5)[schema.EXCHANGES.index_of("first_token")] == 1.5


def test_rows_written_and_read_back(store):
    c = Counter()
    w = StoreWriter(store, c)
    ex = make_exchange()
    call = make_call(x_response_object={"ok": True})
    w.add_exchange(ex, True, call.first_token)
    w.add_call(call)
    rows = body_rows(ex, call, Config())
    w.add_bodies(rows)
    assert _count(store, "calls") == 0  # buffered until flush
    w.flush()
    assert c["rows_written.exchanges"] == 1 and c["rows_written.calls"] == 1
    assert c["rows_written.bodies"] == 3 and c["flushes"] == 1 and c["duplicates_skipped"] == 0
    assert c["body_bytes_stored"] == sum(r.stored_bytes for r in rows)
    got = store.conn.execute("SELECT * FROM calls").fetchall()[0]
    assert got[: schema.CALLS.index_of("error")] == call_row(call)[: schema.CALLS.index_of("error")]
    (data, codec) = store.conn.execute(
        "SELECT data, codec FROM bodies WHERE part = 'request'").fetchall()[0]
    assert decompress_body(codec, data) == ex.request_body
    ft = store.conn.execute("SELECT first_token FROM exchanges").fetchall()[0][0]
    assert ft == call.first_token


def test_insert_or_ignore_counts_duplicates(store):
    c = Counter()
    w = StoreWriter(store, c)
    for i in range(5):
        w.add_call(make_call(i))
    w.add_call(make_call(0, model="other"))  # duplicate key inside the same batch: first wins
    w.flush()
    assert _count(store, "calls") == 5 and c["duplicates_skipped"] == 1
    for i in range(7):  # re-ingest: 5 old + 2 new
        w.add_call(make_call(i))
    w.flush()
    assert _count(store, "calls") == 7
    assert c["duplicates_skipped"] == 6 and c["rows_written.calls"] == 7
    first = make_call(0)
    assert store.conn.execute(
        "SELECT model FROM calls WHERE call_id = ?", [first.call_id]).fetchall() == [(first.model,)]


def test_batches_flush_automatically(store):
    c = Counter()
    w = StoreWriter(store, c, batch_rows=3)
    for i in range(7):
        w.add_call(make_call(i))
    assert _count(store, "calls") == 6 and c["flushes"] == 2 and w.pending_rows == 1
    w.close()
    assert _count(store, "calls") == 7


def test_generic_rows_dicts_and_tuples(store):
    c = Counter()
    w = StoreWriter(store, c)
    turn = {"turn_id": "t1", "session_id": "s1", "source_id": "cap", "agent_kind": "claude-cli",
            "status": "complete", "start": 1.0, "end": 2.5, "call_ids": ("a", "b"),
            "process": make_call().process, "error": {"type": "x"}, "models": ["m"], "cost_complete": True}
    w.add_rows("turns", [turn])
    w.add_rows("sessions", [mapping_row("sessions", {"session_id": "s1", "models": ["m"]})])
    w.add_rows("tool_calls", [{"call_id": "a", "tool_call_id": "toolu_1", "seq": 0,
                               "arguments": {"cmd": "ls"}, "result_status": "pending"}])
    w.add_rows("insights", [{"insight_id": "i1", "kind": "loop", "call_ids": ["a"], "dedupe_key": "k1",
                             "details": {"n": 3}, "count": 1}])
    w.add_rows("runs", [{"run_id": "r1", "argv": ["heron", "ingest"], "counters": {"flushes": 1}}])
    w.flush()
    assert c["rows_written.turns"] == 1 and c["rows_written.runs"] == 1
    got = store.conn.execute('SELECT "end", call_ids, process, error FROM turns').fetchall()[0]
    assert got[0] == 2.5 and got[1] == ["a", "b"]
    assert orjson.loads(got[2]) == {"pid": 4242, "comm": "node", "exe": "/usr/bin/node"}
    assert orjson.loads(got[3]) == {"type": "x"}
    with pytest.raises(KeyError, match="nonsense"):
        w.add_rows("turns", [{"turn_id": "t2", "nonsense": 1}])
    with pytest.raises(ValueError):
        w.add_rows("turns", [("t2", "too few")])
    with pytest.raises(ValueError):
        w.add_rows("no_such_table", [])


def test_replace_rows_overwrite_and_last_wins(store):
    c = Counter()
    w = StoreWriter(store, c)
    w.add_rows("turns", [{"turn_id": "t1", "status": "in_progress", "call_count": 1}])
    w.add_rows("turns", [{"turn_id": "t1", "status": "complete", "call_count": 2}], replace=True)
    w.add_rows("turns", [{"turn_id": "t1", "status": "complete", "call_count": 3}], replace=True)
    w.flush()  # insert applies first, then the last replace
    assert store.conn.execute("SELECT status, call_count FROM turns").fetchall() == [("complete", 3)]
    w.add_rows("insights", [{"insight_id": "i1", "dedupe_key": "k", "count": 1}])
    w.flush()
    update = {"insight_id": "i1", "dedupe_key": "k", "count": 5, "last_seen": 9.0}
    w.add_rows("insights", [update], replace=True)
    w.flush()
    assert store.conn.execute("SELECT count, last_seen FROM insights").fetchall() == [(5, 9.0)]
    assert c["duplicates_skipped"] == 0


def test_update_calls_fills_turn_and_session(store):
    c = Counter()
    w = StoreWriter(store, c)
    calls = [make_call(i, session_id=None, turn_id=None) for i in range(3)]
    for call in calls[:2]:
        w.add_call(call)
    w.flush()
    w.add_call(calls[2])  # still buffered: the update in the same flush must see it
    w.update_calls([(calls[0].call_id, "turn-A", "sess-A"), (calls[1].call_id, "turn-B", None)])
    w.update_calls([(calls[2].call_id, "turn-C", None)])
    w.update_calls([(calls[1].call_id, None, "sess-B")])  # merges with the pending turn-B
    w.update_calls([("no-such-call", "turn-X", None)])
    w.flush()
    got = dict((r[0], r[1:]) for r in store.conn.execute(
        "SELECT call_id, turn_id, session_id FROM calls").fetchall())
    assert got[calls[0].call_id] == ("turn-A", "sess-A")
    assert got[calls[1].call_id] == ("turn-B", "sess-B")
    assert got[calls[2].call_id] == ("turn-C", None)
    w.update_calls([(calls[0].call_id, None, None)])  # None never clears
    w.flush()
    assert store.conn.execute("SELECT turn_id FROM calls WHERE call_id = ?",
                              [calls[0].call_id]).fetchall() == [("turn-A",)]
    with pytest.raises(ValueError):
        w.update_calls([("x", "y")], columns=("call_id",))
    assert c["flush_errors"] == 0


def test_update_other_table_with_composite_key(store):
    w = StoreWriter(store, Counter())
    w.add_rows("tool_calls", [{"call_id": "a", "tool_call_id": "t1", "result_status": "pending"},
                              {"call_id": "a", "tool_call_id": "t2", "result_status": "pending"}])
    w.update_rows("tool_calls", [("a", "t2", "ok", 12.5)], columns=("result_status", "wait_ms"))
    w.flush()
    assert store.conn.execute(
        "SELECT tool_call_id, result_status, wait_ms FROM tool_calls ORDER BY 1").fetchall() == [
        ("t1", "pending", None), ("t2", "ok", 12.5)]


def test_bad_row_is_retried_and_only_it_is_dropped(store):
    c = Counter()
    w = StoreWriter(store, c)
    for i in range(4):
        w.add_call(make_call(i))
    w.add_call(make_call(9, client_port=1 << 40))  # does not fit INTEGER
    w.flush()
    assert _count(store, "calls") == 4
    assert c["flush_errors"] == 1 and c["store_rows_failed"] == 1 and c["rows_written.calls"] == 4
    assert c["duplicates_skipped"] == 0


def test_bodies_counters_and_byte_threshold(store):
    c = Counter()
    w = StoreWriter(store, c, batch_body_bytes=1)
    ex = make_exchange(request_body=b"q" * 100_000, request_body_bytes=100_000)
    w.add_bodies(body_rows(ex, None, Config()))  # over the byte threshold: flushed at once
    assert _count(store, "bodies") == 2 and c["bodies_capped"] == 1


def test_json_dump_handles_odd_values():
    assert dump_json(None) is None
    assert orjson.loads(dump_json({1: {"a"}})) == {"1": ["a"]}
    assert orjson.loads(dump_json({"big": 2**70})) == {"big": 2**70}
    process = orjson.loads(dump_json(make_call().process))
    assert process == {"pid": 4242, "comm": "node", "exe": "/usr/bin/node"}


def test_file_store_rows_survive_reopen(tmp_path):
    db = tmp_path / "h.duckdb"
    with open_store(db) as st:
        c = Counter()
        w = StoreWriter(st, c)
        w.add_call(make_call())
        w.close()
        assert c["db_bytes"] > 0
    with open_store(db, read_only=True) as st:
        assert _count(st, "calls") == 1


# --- per-table batches and the writer thread ---------------------------------------------------------


def _rows(st, table: str, order: str) -> list[tuple]:
    return st.conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def _feed(w: StoreWriter, n: int) -> None:
    """Calls, their exchanges and bodies, turn-id updates and replaced session rows: every kind of write."""
    for i in range(n):
        call = make_call(i)
        ex = make_exchange(exchange_id=call.call_id, request_body=b"q" * (50 + i), request_body_bytes=50 + i)
        w.add_exchange(ex, True)
        w.add_bodies(body_rows(ex, call, Config()))
        w.add_call(call)
        w.update_calls([(call.call_id, f"turn-{i // 3}")], ("turn_id",))
        w.add_rows("sessions", [{"session_id": f"s{i % 4}", "call_count": i}], replace=True)


def test_background_writer_stores_what_the_synchronous_one_stores():
    results = []
    for background in (False, True):
        st = open_store(None)
        c = Counter()
        w = StoreWriter(st, c, batch_rows=7, background=background)
        _feed(w, 40)
        w.flush()
        assert w._thread is None  # no thread outlives a flush
        results.append(({t: _rows(st, t, o) for t, o in (("calls", "call_id"), ("exchanges", "exchange_id"),
                                                        ("bodies", "exchange_id, part"), ("sessions", "session_id"))},
                         {k: v for k, v in c.items() if k not in ("flush_ms_p95", "db_bytes")}))
        st.close()
    (sync_rows, sync_c), (bg_rows, bg_c) = results
    assert bg_rows == sync_rows and len(sync_rows["calls"]) == 40
    assert {r[4] for r in sync_rows["calls"]} == {f"turn-{i // 3}" for i in range(40)}  # updates after inserts
    assert bg_c == sync_c and bg_c["rows_written.calls"] == 40


def test_a_full_table_is_written_alone():
    st = open_store(None)
    try:
        c = Counter()
        w = StoreWriter(st, c, batch_rows=3)
        for i in range(3):
            w.add_rows("sessions", [{"session_id": f"s{i}"}], replace=True)
        w.add_call(make_call(0))
        w.add_call(make_call(1))
        w.add_call(make_call(2))  # calls full: only calls go out
        assert _count(st, "calls") == 3 and _count(st, "sessions") == 3  # sessions filled up first
        w.add_call(make_call(3))
        w.add_rows("sessions", [{"session_id": "s9"}], replace=True)
        assert _count(st, "calls") == 3 and _count(st, "sessions") == 3 and w.pending_rows == 2
        w.flush()
        assert _count(st, "calls") == 4 and _count(st, "sessions") == 4
    finally:
        st.close()


def test_calls_are_written_when_their_text_fills_a_batch(monkeypatch):
    from heron_core.store import writer as writer_mod

    monkeypatch.setattr(writer_mod, "BATCH_CALL_TEXT", 10_000)
    st = open_store(None)
    try:
        w = StoreWriter(st, Counter())
        w.add_call(make_call(0, user_text="u" * 6_000))
        assert _count(st, "calls") == 0
        w.add_call(make_call(1, user_text="u" * 6_000))  # 12,000 characters pending: written
        assert _count(st, "calls") == 2 and w.pending_rows == 0
    finally:
        st.close()


def test_background_failures_are_counted_in_the_callers_counters():
    st = open_store(None)
    try:
        c = Counter()
        w = StoreWriter(st, c, background=True)
        w.add_call(make_call(0))
        w.add_call(make_call(9, client_port=1 << 40))  # does not fit INTEGER
        w.flush()
        assert c["flush_errors"] == 1 and c["store_rows_failed"] == 1 and c["rows_written.calls"] == 1
        assert c["flushes"] == 1
    finally:
        st.close()


def test_abandon_drops_queued_batches_and_stops_the_thread():
    st = open_store(None)
    try:
        c = Counter()
        w = StoreWriter(st, c, batch_rows=1, background=True)
        for i in range(5):
            w.add_call(make_call(i))  # each call is a batch of its own
        w.abandon()
        assert w._thread is None
        written = _count(st, "calls")
        assert 0 <= written <= 5
        w.abandon()  # nothing running: a no-op
        w.add_call(make_call(7))
        w.flush()  # the writer is still usable
        assert _count(st, "calls") == written + 1
    finally:
        st.close()
