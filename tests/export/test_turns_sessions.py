"""``export turns`` / ``export sessions``: §6.2/§6.3 key order and types, filters, CLI."""

from __future__ import annotations

import io
import os
import re
from collections import Counter
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from heron_core.export.sessions import SESSION_EXPORT_FIELDS, SessionFilters, export_sessions, session_state
from heron_core.export.turns import TURN_EXPORT_FIELDS, TurnFilters, export_turns
from heron_core.store.db import open_store
from heron_core.store.writer import StoreWriter

SPEC = Path(os.environ.get("HERON_SPEC_DIR", "/work/shared/spec")) / "interfaces.md"
T = 1_700_000_000.0


def spec_fields(heading: str) -> list[str]:
    text = SPEC.read_text(encoding="utf-8")
    start = text.index(heading)
    end = text.find("\n### ", start + len(heading))
    names: list[str] = []
    for line in text[start:end].splitlines():
        if line.startswith("| `"):
            names.extend(re.findall(r"`([a-z0-9_]+)`", line.split("|")[1]))
    return names


def _turn(i: int, **kw) -> dict:
    row = dict(turn_id=f"t{i}", session_id="s1", source_id="src", agent_kind="claude-cli", status="complete",
               end_reason="terminal", start=T + i * 10, end=T + i * 10 + 5, duration_ms=5000.0,
               first_response_ms=300.0, anchor_call_id=f"c{i}a", final_call_id=f"c{i}b",
               call_ids=[f"c{i}a", f"c{i}b"], user_input_preview="do it", final_answer_preview="done",
               finish="stop", finish_reason_raw="end_turn", error=None, wire_api="anthropic", server="10.0.0.2:443",
               client_ip="10.0.0.1", process={"pid": 1, "comm": "node", "exe": "/usr/bin/node"},
               models=["claude-sonnet-4"], subagents=[], tool_names=["Bash"], call_count=2, main_call_count=2,
               subagent_call_count=0, retry_count=0, input_tokens=10, input_total_tokens=1000,
               cache_read_tokens=900, cache_creation_tokens=0, reasoning_tokens=0, output_tokens=50,
               total_tokens=1050, cost_usd=0.01, cost_complete=True, tool_call_count=1, tool_error_count=0,
               tool_missing_count=0, insight_count=0, insight_kinds=None)
    row.update(kw)
    return row


def _session(sid: str, first: float, last: float, **kw) -> dict:
    row = dict(session_id=sid, native_session_id="n-" + sid, session_source="metadata", source_id="src",
               agent_kind="claude-cli", first_start=first, last_end=last, turn_count=2, turns_complete=2,
               turns_incomplete=0, turns_partial=0, call_count=4, auxiliary_call_count=1, first_turn_id="t1",
               last_turn_id="t2", first_user_input_preview="hi", models=["claude-sonnet-4"], subagents=None,
               input_total_tokens=2000, cache_read_tokens=1800, cache_creation_tokens=0, reasoning_tokens=0,
               output_tokens=100, total_tokens=2100, cost_usd=0.02, cost_complete=True, tool_call_count=2,
               tool_error_count=0, insight_count=0, server="10.0.0.2:443", client_ip="10.0.0.1", process=None)
    row.update(kw)
    return row


@pytest.fixture()
def store():
    st = open_store(None)
    w = StoreWriter(st, Counter())
    w.add_rows("turns", [_turn(1), _turn(2, status="incomplete", error={"source": "http", "type": "x",
                                                                        "message": "boom"}),
                         _turn(3, session_id="s2", models=["gpt-4o"], agent_kind="codex", status="partial")])
    w.add_rows("sessions", [_session("s1", T + 10, T + 25), _session("s2", T + 30, T + 35, agent_kind="codex",
                                                                          models=["gpt-4o"])])
    w.add_rows("calls", [dict(call_id="c3a", source_id="src", session_id="s2", wire_api="openai-responses")])
    w.close()
    return st


def _run(export, conn, filters=None) -> list[dict]:
    buf = io.BytesIO()
    n = export(conn, buf, filters)
    lines = buf.getvalue().splitlines()
    assert n == len(lines)
    return [orjson.loads(x) for x in lines]


@pytest.mark.skipif(not SPEC.exists(), reason="spec not available")
def test_key_order_matches_spec_tables():
    assert list(TURN_EXPORT_FIELDS) == spec_fields("### 6.2 `turns`")
    assert list(SESSION_EXPORT_FIELDS) == spec_fields("### 6.3 `sessions`")


def test_turn_records(store):
    recs = _run(export_turns, store.conn)
    assert [r["turn_id"] for r in recs] == ["t1", "t2", "t3"]
    r = recs[1]
    assert list(r) == list(TURN_EXPORT_FIELDS)
    assert r["error"] == {"source": "http", "type": "x", "message": "boom"}
    assert r["process"] == {"pid": 1, "comm": "node", "exe": "/usr/bin/node"}
    assert r["call_ids"] == ["c2a", "c2b"] and r["insight_kinds"] == [] and r["subagents"] == []
    assert r["start"] == T + 20 and r["cost_complete"] is True and r["total_tokens"] == 1050


def test_turn_filters(store):
    def ids(**kw) -> list[str]:
        return [r["turn_id"] for r in _run(export_turns, store.conn, TurnFilters(**kw))]

    assert ids(status="complete,partial") == ["t1", "t3"]
    assert ids(model="gpt-4o") == ["t3"] and ids(session="s1") == ["t1", "t2"]
    assert ids(since=T + 20, until=T + 30) == ["t2"] and ids(limit=1) == ["t1"]
    assert ids(agent_kind="codex", turn=["t3", "t1"]) == ["t3"]
    with pytest.raises(ValueError):
        ids(status="ok")


def test_session_records_state_idle(store):
    recs = _run(export_sessions, store.conn)
    assert [r["session_id"] for r in recs] == ["s1", "s2"]
    r = recs[0]
    assert list(r) == list(SESSION_EXPORT_FIELDS) and r["state"] == "idle"
    assert r["subagents"] == [] and r["process"] is None and r["models"] == ["claude-sonnet-4"]


def test_session_filters_and_live_state(store):
    def ids(**kw) -> list[str]:
        return [r["session_id"] for r in _run(export_sessions, store.conn, SessionFilters(**kw))]

    assert ids(since=T + 26) == ["s2"] and ids(until=T + 30) == ["s1"] and ids(since=T + 20, until=T + 31) == [
        "s1", "s2"]
    assert ids(turn="t3") == ["s2"] and ids(wire_api="openai-responses") == ["s2"] and ids(model="gpt-4o") == ["s2"]
    assert ids(status="idle") == ["s1", "s2"] and ids(status="active") == []
    assert ids(status="active", watermark=T + 600) == ["s1", "s2"]  # both ended within 600 s of it
    assert ids(status="idle", watermark=T + 630) == ["s1"]
    assert session_state(T + 25, T + 700) == "idle" and session_state(T + 25, None) == "idle"
    live = _run(export_sessions, store.conn, SessionFilters(watermark=T + 630))
    assert [r["state"] for r in live] == ["idle", "active"]
    with pytest.raises(ValueError):
        ids(status="closed")


def test_cli_commands(tmp_path, store):
    from heron_tui.cli import app

    path = tmp_path / "db.duckdb"
    st = open_store(str(path))
    w = StoreWriter(st, Counter())
    w.add_rows("turns", [_turn(1)])
    w.add_rows("sessions", [_session("s1", T, T + 5)])
    w.close()
    st.close()
    runner = CliRunner()
    res = runner.invoke(app, ["export", "turns", "--db", str(path), "--status", "complete"])
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.stdout.splitlines()[0])["turn_id"] == "t1"
    out = tmp_path / "s.jsonl"
    res = runner.invoke(app, ["export", "sessions", "--db", str(path), "-o", str(out)])
    assert res.exit_code == 0 and orjson.loads(out.read_bytes())["state"] == "idle"
    assert runner.invoke(app, ["export", "turns", "--db", str(path), "--status", "bad"]).exit_code == 2
    assert runner.invoke(app, ["export", "sessions", "--db", str(tmp_path / "nope.duckdb")]).exit_code == 1
