"""SFT export (interfaces.md §6.4): _meta, skips with reasons, selection, session scope with
compaction, sub-agents, and ``heron export sft`` end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from heron_core.export.calls import CallFilters
from heron_core.export.sft import FORMAT, SftResult, extends
from tests.export.sft_helpers import export, one_call_turn
from tests.export.store_builder import StoreBuilder

ROOT = Path(__file__).resolve().parents[2]

# --- meta, skips, selection ---------------------------------------------------------------------------

CHAT_REQ = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
CHAT_RESP = {"choices": [{"message": {"role": "assistant", "content": "a"}}]}


def test_meta_fields_in_order():
    b = StoreBuilder()
    c1 = b.add_call("c-1", "openai-chat", CHAT_REQ, CHAT_RESP, finish="tool_use", cost_usd=0.5)
    c2 = b.add_call("c-2", "openai-chat", CHAT_REQ, CHAT_RESP, start=2.0, model="m-2", output_tokens=7)
    b.add_turn("t-1", [c1, c2])
    (rec,), res, _ = export(b)
    meta = rec["_meta"]
    assert list(meta) == [
        "format",
        "scope",
        "source_id",
        "session_id",
        "turn_id",
        "final_call_id",
        "agent_kind",
        "wire_api",
        "model",
        "finish",
        "complete",
        "segment",
        "subagent",
        "call_count",
        "input_total_tokens",
        "output_tokens",
        "cost_usd",
        "start",
        "end",
        "dropped_parts",
    ]
    assert meta["format"] == FORMAT == "heron-sft/1"
    assert (meta["scope"], meta["turn_id"], meta["final_call_id"], meta["model"]) == (
        "turn",
        "t-1",
        "c-2",
        "m-2",
    )
    assert (meta["complete"], meta["segment"], meta["subagent"], meta["call_count"]) == (True, None, None, 2)
    assert (meta["input_total_tokens"], meta["output_tokens"]) == (200, 17)
    assert meta["cost_usd"] == pytest.approx(0.501)
    assert meta["start"] == c1.request_start and meta["end"] == c2.response_end


def test_skips_with_reasons_never_fail_the_batch():
    b = StoreBuilder()
    one_call_turn(b, "openai-chat", CHAT_REQ, CHAT_RESP, turn="ok")
    big = {"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}
    one_call_turn(b, "openai-chat", big, CHAT_RESP, turn="truncated", cap=1000)
    one_call_turn(b, "openai-chat", CHAT_REQ, None, turn="missing", raw_response=b"{}")
    one_call_turn(b, "openai-chat", b"not json", CHAT_RESP, turn="garbage")
    one_call_turn(b, "openai-chat", {"model": "m", "prompt": "no messages"}, CHAT_RESP, turn="shape")
    one_call_turn(b, "openai-chat", CHAT_REQ, CHAT_RESP, turn="damaged", damaged=True, damage=["gap"])
    inc = b.add_call("c-inc", "openai-chat", CHAT_REQ, CHAT_RESP, finish="aborted")
    b.add_turn("incomplete", [inc], status="incomplete")
    records, res, report = export(b)
    assert [r["_meta"]["turn_id"] for r in records] == ["ok"]
    assert res.exported == 1
    assert res.skipped == {
        "no_final_call": 1,
        "body_truncated": 1,
        "body_missing": 1,
        "unparseable": 2,
        "damaged": 1,
    }
    assert {(r["turn_id"], r["reason"]) for r in report} == {
        ("truncated", "body_truncated"),
        ("missing", "body_missing"),
        ("garbage", "unparseable"),
        ("shape", "unparseable"),
        ("damaged", "damaged"),
        ("incomplete", "no_final_call"),
    }
    assert all(r["session_id"] == "s-1" and list(r) == ["turn_id", "session_id", "reason"] for r in report)
    assert res.summary().startswith("exported 1, skipped 6 (no_final_call: 1, body_truncated: 1")


def test_include_incomplete_and_no_final_call():
    b = StoreBuilder()
    inc = b.add_call("c-inc", "openai-chat", CHAT_REQ, CHAT_RESP, finish="tool_use")
    b.add_turn("incomplete", [inc], status="incomplete")
    b.add_turn(
        "nofinal",
        [b.add_call("c-nf", "openai-chat", CHAT_REQ, CHAT_RESP, start=9)],
        status="partial",
        final_call_id=None,
    )
    records, res, _ = export(b, include_incomplete=True)
    assert [r["_meta"]["turn_id"] for r in records] == ["incomplete"]
    assert records[0]["_meta"]["complete"] is False
    assert res.skipped == {"no_final_call": 1}


def test_selection_by_ids_and_filters():
    b = StoreBuilder()
    for i in range(4):
        one_call_turn(b, "openai-chat", CHAT_REQ, CHAT_RESP, turn=f"t-{i}", start=10.0 * i)
    assert [r["_meta"]["turn_id"] for r in export(b, turn_ids=["t-2", "t-0"])[0]] == ["t-0", "t-2"]
    assert [r["_meta"]["turn_id"] for r in export(b, filters=CallFilters(limit=2))[0]] == ["t-0", "t-1"]
    since = CallFilters(since=1_700_000_015.0, status="complete")
    assert [r["_meta"]["turn_id"] for r in export(b, filters=since)[0]] == ["t-2", "t-3"]
    assert export(b, session_ids=["other"])[1] == SftResult(0, {})
    with pytest.raises(ValueError):
        export(b, filters=CallFilters(status="5xx"))
    with pytest.raises(ValueError):
        export(b, scope="call")


# --- session scope and sub-agents ---------------------------------------------------------------------


def _chat(history: list[tuple[str, str]]) -> dict:
    return {"model": "m", "messages": [{"role": r, "content": c} for r, c in history]}


def _answer(text: str) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


def test_session_scope_compaction_makes_two_segments():
    b = StoreBuilder()
    h1 = [("system", "S"), ("user", "u1")]
    h2 = h1 + [("assistant", "a1"), ("user", "u2 <system-reminder>r</system-reminder>")]
    h3 = [("system", "S"), ("user", "Summary of the conversation so far"), ("user", "u3")]
    h4 = h3 + [("assistant", "a3"), ("user", "u4")]
    turns = []
    for i, (h, a) in enumerate([(h1, "a1"), (h2, "a2"), (h3, "a3"), (h4, "a4")]):
        call = b.add_call(f"c-{i}", "openai-chat", _chat(h), _answer(a), start=10.0 * i)
        turns.append(b.add_turn(f"t-{i}", [call]))
    records, res, _ = export(b, scope="session")
    assert res == SftResult(2, {})
    seg0, seg1 = records
    assert (seg0["_meta"]["segment"], seg0["_meta"]["turn_ids"], seg0["_meta"]["final_call_id"]) == (
        0,
        ["t-0", "t-1"],
        "c-1",
    )
    assert (seg1["_meta"]["segment"], seg1["_meta"]["turn_ids"], seg1["_meta"]["final_call_id"]) == (
        1,
        ["t-2", "t-3"],
        "c-3",
    )
    assert "turn_id" not in seg0["_meta"] and seg0["_meta"]["scope"] == "session"
    assert [m["content"] for m in seg0["messages"]] == [
        "S",
        "u1",
        "a1",
        "u2 <system-reminder>r</system-reminder>",
        "a2",
    ]
    assert [m["content"] for m in seg1["messages"]][-2:] == ["u4", "a4"]
    assert seg1["_meta"]["call_count"] == 2 and seg1["_meta"]["start"] == turns[2]["start"]
    # turn scope: one record per turn
    assert export(b)[1] == SftResult(4, {})


def test_session_scope_skips_when_last_turn_unusable():
    b = StoreBuilder()
    c0 = b.add_call("c-0", "openai-chat", _chat([("user", "u1")]), _answer("a1"))
    b.add_turn("t-0", [c0])
    c1 = b.add_call("c-1", "openai-chat", b"{broken", _answer("a2"), start=5)
    b.add_turn("t-1", [c1])
    records, res, report = export(b, scope="session")
    assert [r["_meta"]["turn_ids"] for r in records] == [["t-0"]]
    assert res.skipped == {"unparseable": 1} and report[0]["turn_id"] == "t-1"


def test_include_subagents_separate_records():
    b = StoreBuilder()
    m1 = b.add_call(
        "m-1",
        "anthropic",
        {"model": "c", "messages": [{"role": "user", "content": "task"}]},
        {
            "content": [
                {"type": "tool_use", "id": "toolu_task", "name": "Task", "input": {"prompt": "explore"}}
            ]
        },
        finish="tool_use",
    )
    sub_h1 = {"model": "c", "messages": [{"role": "user", "content": "explore"}]}
    s1 = b.add_call(
        "s-1",
        "anthropic",
        sub_h1,
        {"content": [{"type": "tool_use", "id": "toolu_ls", "name": "LS", "input": {}}]},
        start=1,
        subagent="Explore",
        parent_tool_call_id="toolu_task",
        finish="tool_use",
    )
    sub_h2 = {
        "model": "c",
        "messages": sub_h1["messages"]
        + [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_ls", "name": "LS", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_ls", "content": "a b"}],
            },
        ],
    }
    s2 = b.add_call(
        "s-2",
        "anthropic",
        sub_h2,
        {"content": [{"type": "text", "text": "found a, b"}]},
        start=2,
        subagent="Explore",
        parent_tool_call_id="toolu_task",
        output_tokens=3,
    )
    m2 = b.add_call(
        "m-2",
        "anthropic",
        {"model": "c", "messages": [{"role": "user", "content": "task"}]},
        {"content": [{"type": "text", "text": "done"}]},
        start=3,
    )
    b.add_turn("t-1", [m1, s1, s2, m2])
    assert export(b)[1] == SftResult(1, {})
    records, res, _ = export(b, include_subagents=True)
    assert res == SftResult(2, {})
    main, sub = records
    assert main["_meta"]["subagent"] is None and main["_meta"]["final_call_id"] == "m-2"
    assert sub["_meta"]["subagent"] == "Explore" and sub["_meta"]["final_call_id"] == "s-2"
    assert (sub["_meta"]["call_count"], sub["_meta"]["output_tokens"], sub["_meta"]["turn_id"]) == (
        2,
        13,
        "t-1",
    )
    assert [m["role"] for m in sub["messages"]] == ["user", "assistant", "tool", "assistant"]


def test_extends_ignores_system_reminders_and_whitespace():
    assert extends([("user", "a", (), None)], [("user", "a", (), None), ("assistant", "b", (), None)])
    assert not extends([("user", "a", (), None), ("assistant", "b", (), None)], [("user", "a", (), None)])


# --- CLI end to end -----------------------------------------------------------------------------------


def _heron(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", "from heron_tui.cli import heron_main; heron_main()", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_export_sft_on_ingested_capture(tmp_path):
    """``heron ingest`` then ``heron export sft``: ≥ 95 % of the complete turns yield a trajectory."""
    pcap = tmp_path / "agent.pcap"
    db = tmp_path / "agent.duckdb"
    synth = subprocess.run(
        [sys.executable, "-m", "testdata.synth", "scenario", "agent_sessions", "-o", str(pcap)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert synth.returncode == 0, synth.stderr
    ing = _heron("ingest", str(pcap), "--db", str(db))
    assert ing.returncode == 0, ing.stderr
    import duckdb

    with duckdb.connect(str(db), read_only=True) as conn:
        complete = conn.execute("SELECT count(*) FROM turns WHERE status = 'complete'").fetchone()[0]
    if complete == 0:
        pytest.skip("the store has no turns yet (assembler not wired)")
    out, rep = tmp_path / "sft.jsonl", tmp_path / "report.jsonl"
    res = _heron("export", "sft", "--db", str(db), "-o", str(out), "--report", str(rep))
    assert res.returncode == 0, res.stderr
    lines = out.read_bytes().splitlines()
    assert res.stderr.strip().startswith(f"exported {len(lines)}, skipped ")
    assert len(lines) >= 0.95 * complete
    for line in lines:
        rec = orjson.loads(line)
        assert rec["_meta"]["format"] == FORMAT and rec["messages"][-1]["role"] == "assistant"
        for m in rec["messages"]:
            for tc in m.get("tool_calls", []):
                assert isinstance(tc["function"]["arguments"], dict)
    session = _heron("export", "sft", "--db", str(db), "--scope", "session", "--include-subagents")
    assert session.returncode == 0, session.stderr
    assert session.stdout.strip(), "session scope wrote nothing"


def test_cli_usage_errors(tmp_path):
    b = StoreBuilder(str(tmp_path / "x.duckdb"))
    one_call_turn(b, "openai-chat", CHAT_REQ, CHAT_RESP)
    b.flush()
    b.store.close()
    res = _heron("export", "sft", "--db", str(tmp_path / "x.duckdb"), "--scope", "weird")
    assert res.returncode == 2, res.stderr
    res = _heron("export", "sft", "--db", str(tmp_path / "x.duckdb"), "--status", "5xx")
    assert res.returncode == 2
    res = _heron("export", "sft", "--db", str(tmp_path / "x.duckdb"))
    assert res.returncode == 0 and res.stderr.strip() == "exported 1, skipped 0"
    assert orjson.loads(res.stdout)["messages"][-1] == {"role": "assistant", "content": "a"}
