"""Schema: every table and column of interfaces.md §3, types, keys, meta, version checks."""

from __future__ import annotations

import dataclasses

import duckdb
import pytest
from store_helpers import SPEC, spec_fields

from heron_core.export.calls import CALL_EXPORT_FIELDS
from heron_core.records import Call
from heron_core.store import schema
from heron_core.store.db import StoreError, open_store

CALL_EXTRAS = ["usage_raw", "user_text", "assistant_text", "hop_overhead_ms", "native_turn_id",
               "parent_tool_call_id", "choices_ignored"]


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute(f"DESCRIBE {table}").fetchall()]


def test_fresh_store_has_every_table_with_declared_columns():
    with open_store(None) as st:
        tables = {r[0] for r in st.conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert tables == {"calls", "exchanges", "bodies", "tool_calls", "turns", "sessions", "insights",
                          "runs", "meta"}
        for t in schema.TABLES.values():
            assert _columns(st.conn, t.name) == list(t.columns)


def test_primary_keys_and_unique():
    with open_store(None) as st:
        rows = st.conn.execute(
            "SELECT table_name, constraint_type, constraint_column_names FROM duckdb_constraints() "
            "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
        ).fetchall()
    pks = {t: tuple(cols) for t, kind, cols in rows if kind == "PRIMARY KEY"}
    assert pks == {
        "calls": ("call_id",), "exchanges": ("exchange_id",), "bodies": ("exchange_id", "part"),
        "tool_calls": ("call_id", "tool_call_id"), "turns": ("turn_id",), "sessions": ("session_id",),
        "insights": ("insight_id",), "runs": ("run_id",), "meta": ("key",),
    }
    assert ("insights", "UNIQUE", ["dedupe_key"]) in rows


def test_types_follow_section_3():
    types = {(t.name, c): typ for t in schema.TABLES.values() for c, typ in t.columns}
    for table in ("calls", "exchanges"):
        for c in ("client_port", "server_port", "process_pid"):
            assert types[(table, c)] == "INTEGER"
        for c in ("request_start", "request_end", "response_start", "first_chunk", "first_token",
                  "response_end"):
            assert types[(table, c)] == "DOUBLE"
        assert types[(table, "damage")] == "VARCHAR[]"
        assert types[(table, "status_code")] == "BIGINT"
    for c in ("error", "tool_calls", "ratelimit", "usage_raw", "hop_overhead_ms"):
        assert types[("calls", c)] == "JSON"
    assert types[("calls", "choices_ignored")] == "INTEGER"
    assert types[("exchanges", "request_headers")] == "JSON"
    assert types[("bodies", "data")] == "BLOB"
    assert types[("turns", "process")] == "JSON" and types[("turns", "call_ids")] == "VARCHAR[]"
    assert types[("insights", "call_ids")] == "VARCHAR[]"


def test_calls_columns_are_the_export_fields_flattened_plus_extras():
    expected: list[str] = []
    for f in CALL_EXPORT_FIELDS:
        if f == "connection":
            expected += ["client_ip", "client_port", "server_ip", "server_port"]
        elif f == "process":
            expected += ["process_pid", "process_comm", "process_exe"]
        else:
            expected.append(f)
    assert list(schema.CALLS.column_names) == expected + CALL_EXTRAS


def test_calls_columns_cover_every_stored_call_field():
    names = [f.name for f in dataclasses.fields(Call) if not f.name.startswith("x_")]
    flat = []
    for n in names:
        flat += ["process_pid", "process_comm", "process_exe"] if n == "process" else [n]
    assert flat == list(schema.CALLS.column_names)


@pytest.mark.skipif(not SPEC.exists(), reason="spec not available")
def test_turn_and_session_columns_match_spec_tables():
    assert list(schema.TURNS.column_names) == spec_fields("### 6.2 `turns`")
    sessions = [f for f in spec_fields("### 6.3 `sessions`") if f != "state"]
    assert list(schema.SESSIONS.column_names) == sessions


def test_meta_rows_on_fresh_store():
    with open_store(None, redaction=True) as st:
        meta = st.meta()
    assert meta["schema_version"] == "1"
    assert float(meta["created_at"]) > 1_600_000_000
    assert len(bytes.fromhex(meta["redaction_salt"])) == 16
    assert meta["redaction"] == "on"


def _set_version(path: str, version: int) -> None:
    con = duckdb.connect(path)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])
    con.close()


def test_newer_schema_version_is_a_clear_error(tmp_path):
    db = str(tmp_path / "h.duckdb")
    open_store(db).close()
    _set_version(db, 2)
    for ro in (False, True):
        with pytest.raises(StoreError, match="schema version 2, newer than this heron supports") as ei:
            open_store(db, read_only=ro)
        assert "\n" not in str(ei.value)


def test_older_schema_is_migrated_in_place(tmp_path, monkeypatch):
    db = str(tmp_path / "h.duckdb")
    open_store(db).close()
    con = duckdb.connect(db)
    con.execute("ALTER TABLE runs DROP COLUMN price_version")
    con.close()
    _set_version(db, 0)

    def v0_to_v1(conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute("ALTER TABLE runs ADD COLUMN price_version VARCHAR")

    with pytest.raises(StoreError, match="open it once without read-only"):
        open_store(db, read_only=True)
    monkeypatch.setitem(schema.MIGRATIONS, 0, v0_to_v1)
    with open_store(db) as st:
        assert st.schema_version == 1
        assert st.meta()["schema_version"] == "1"
        assert _columns(st.conn, "runs") == list(schema.RUNS.columns)


def test_older_schema_without_migration_step_is_an_error(tmp_path):
    db = str(tmp_path / "h.duckdb")
    open_store(db).close()
    _set_version(db, 0)
    with pytest.raises(StoreError, match="cannot migrate schema version 0"):
        open_store(db)
    # the failed migration rolled back: still version 0
    con = duckdb.connect(db, read_only=True)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchall() == [("0",)]
    con.close()
