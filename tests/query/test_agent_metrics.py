"""Agent-layer metrics (metrics.md §4) and rate-limit pressure (agents-and-turns.md §12.4)."""

from __future__ import annotations

import pytest
from metrics_helpers import B, Builder

from heron_core.query.metrics import MetricFilters, agents, context_growth, rate_limit_pressure, tools

DAY = MetricFilters(since=B, until=B + 86400)


def _turn(i: int, status: str, duration_ms: float, **kw) -> dict:
    row = dict(turn_id=f"t{i}", session_id=kw.pop("session_id", "s1"), source_id="src", agent_kind="claude-cli",
               status=status, end_reason="terminal", start=B + i, end=B + i + duration_ms / 1000,
               duration_ms=duration_ms, call_count=2, main_call_count=2, subagent_call_count=0,
               tool_call_count=0, total_tokens=1000, cost_usd=0.5, models=["m1"])
    row.update(kw)
    return row


def _agents_store() -> Builder:
    b = Builder()
    b.rows("turns",
           _turn(1, "complete", 500.0, call_count=1, first_response_ms=100.0, tool_call_count=2, total_tokens=100,
                 cost_usd=0.1),
           _turn(2, "complete", 1000.0, call_count=3, subagent_call_count=1, first_response_ms=200.0,
                 tool_call_count=1, total_tokens=200, cost_usd=0.2),
           _turn(3, "complete", 7000.0, call_count=5, subagent_call_count=2, first_response_ms=300.0,
                 total_tokens=300, cost_usd=None),
           _turn(4, "incomplete", 3_600_000.0, call_count=1, first_response_ms=400.0, total_tokens=400,
                 cost_usd=0.4),
           _turn(5, "partial", 20.0, call_count=10, total_tokens=10_000),
           _turn(6, "complete", 90_000.0, agent_kind=None, call_count=2))
    b.rows("tool_calls",
           dict(call_id="c1", tool_call_id="a", turn_id="t1", session_id="s1", name="Bash", result_status="ok",
                wait_ms=100.0, issued_at=B + 1),
           dict(call_id="c1", tool_call_id="b", turn_id="t1", session_id="s1", name="Bash", result_status="error",
                wait_ms=300.0, issued_at=B + 1),
           dict(call_id="c2", tool_call_id="c", turn_id="t2", session_id="s1", name="Read", result_status="missing",
                issued_at=B + 2),
           dict(call_id="c2", tool_call_id="d", turn_id="t2", session_id="s1", name="Bash", result_status="ok",
                wait_ms=200.0, issued_at=B + 2),
           dict(call_id="c9", tool_call_id="e", turn_id="t5", session_id="s1", name="Bash", result_status="pending",
                issued_at=B + 5))
    b.rows("sessions", dict(session_id="s1", source_id="src", agent_kind="claude-cli", first_start=B,
                            last_end=B + 10))
    b.rows("insights",
           dict(insight_id="i1", kind="planner_loop", severity="warning", source_id="src", first_seen=B + 1,
                last_seen=B + 2, count=3, dedupe_key="k1"),
           dict(insight_id="i2", kind="planner_loop", severity="warning", source_id="src", first_seen=B + 3,
                last_seen=B + 4, count=1, dedupe_key="k2"),
           dict(insight_id="i3", kind="stalled_tool", severity="info", source_id="src", first_seen=B + 3,
                last_seen=B + 4, count=1, dedupe_key="k3"))
    return b


def test_agents_per_kind_defaults():
    res = agents(_agents_store().conn, DAY)
    rows = {r["agent_kind"]: r for r in res["rows"]}
    assert list(rows) == ["claude-cli", "none"]
    r = rows["claude-cli"]
    assert r["turns"] == 4 and r["turns_by_status"] == {"complete": 3, "incomplete": 1}
    # durations over complete turns only: 500, 1000, 7000
    assert r["turn_duration_ms"] == pytest.approx({"p50": 1000.0, "p90": 5800.0, "p95": 6400.0, "p99": 6880.0,
                                                   "avg": 8500 / 3, "max": 7000.0, "n": 3})
    hist = {h["bucket"]: h["count"] for h in r["turn_duration_histogram"]}
    assert hist == {"<1s": 1, "1-5s": 1, "5-15s": 1, "15-60s": 0, "1-5min": 0, "5-15min": 0, "15-60min": 0,
                    ">=1h": 0}
    assert r["calls_per_turn"] == pytest.approx({"avg": 2.5, "p50": 2.0, "p95": 4.7, "max": 5})
    assert r["subagent_call_share"] == 3 / 10
    assert r["first_response_ms"] == pytest.approx({"p50": 250.0, "p95": 385.0})
    assert r["tool_calls"] == 3 and r["tool_calls_per_turn"] == {"avg": 0.75}
    assert r["tool_success_rate"] == 2 / 3 and r["tool_missing"] == 1
    assert r["turn_tokens"] == pytest.approx({"avg": 250.0, "p95": 385.0})
    assert r["turn_cost_usd"] == pytest.approx({"avg": 0.7 / 3, "p95": 0.38, "sum": 0.7})
    assert rows["none"]["turns"] == 1 and rows["none"]["turn_duration_histogram"][4]["count"] == 1
    assert res["insights_by_kind"] == {"planner_loop": {"rows": 2, "count": 4}, "stalled_tool": {"rows": 1,
                                                                                                 "count": 1}}


def test_agents_include_partial_and_incomplete():
    res = agents(_agents_store().conn, DAY, include_partial=True, include_incomplete=True)
    r = next(r for r in res["rows"] if r["agent_kind"] == "claude-cli")
    assert r["turns"] == 5 and r["turns_by_status"] == {"complete": 3, "incomplete": 1, "partial": 1}
    assert r["turn_duration_ms"]["n"] == 4 and r["turn_duration_ms"]["max"] == 3_600_000.0
    assert r["turn_duration_histogram"][-1]["count"] == 1  # exactly 1 h counts as >= 1 h
    assert r["calls_per_turn"]["max"] == 10
    only = agents(_agents_store().conn, MetricFilters(since=B, until=B + 86400, agent_kind="none"))
    assert [r["agent_kind"] for r in only["rows"]] == ["none"]


def test_tools_per_name():
    rows = tools(_agents_store().conn, DAY)["rows"]
    assert rows == [
        {"name": "Bash", "count": 4, "errors": 1, "missing": 0, "success_rate": 2 / 3,
         "wait_ms": {"p50": 200.0, "p95": pytest.approx(290.0)}},
        {"name": "Read", "count": 1, "errors": 0, "missing": 1, "success_rate": None,
         "wait_ms": {"p50": None, "p95": None}},
    ]
    assert tools(_agents_store().conn, MetricFilters(agent_kind="codex"))["rows"] == []
    assert len(tools(_agents_store().conn, MetricFilters(agent_kind="claude-cli"))["rows"]) == 2
    assert tools(_agents_store().conn, MetricFilters(since=B + 2))["rows"][0]["count"] == 2


def test_context_growth_main_agent_calls_only():
    b = Builder()
    b.call(0, 1, session_id="s", input_total_tokens=1000)
    b.call(2, 3, session_id="s", input_total_tokens=5000, context_delta_tokens=4000)
    b.call(2.5, 3, session_id="s", subagent="Explore", input_total_tokens=99)
    b.call(2.6, 3, session_id="s", is_auxiliary=True, input_total_tokens=98)
    b.call(2.7, 3, session_id="s", hop_role="proxy_out", input_total_tokens=97)
    b.call(4, 5, session_id="s", input_total_tokens=2000, context_delta_tokens=-3000)
    pts = context_growth(b.conn, "s")["points"]
    assert [(p["index"], p["input_total_tokens"], p["context_delta_tokens"]) for p in pts] == [
        (0, 1000, None), (1, 5000, 4000), (2, 2000, -3000)]


def test_rate_limit_pressure_windows_and_severity():
    b = Builder()
    # server A, model m1: minute 0 has 10 calls with 1 429 (10 %) → warning
    for i in range(10):
        b.call(i, i + 0.5, server="A", status_code=429 if i == 0 else 200,
               ratelimit={"retry_after_s": 3.0} if i == 0 else None)
    # server A, model m2: minute 1 has 6 calls, 3 429s (50 %) → critical
    for i in range(6):
        b.call(60 + i, 60.5 + i, server="A", model="m2", status_code=429 if i < 3 else 200)
    # server B: 4 calls all 429 — below the 5-call minimum
    for i in range(4):
        b.call(i, i + 0.5, server="B", status_code=429)
    # server C: 10 calls, no 429 in its window, and 9 % elsewhere
    for i in range(11):
        b.call(120 + i, 121 + i, server="C", status_code=429 if i == 0 else 200)
    out = rate_limit_pressure(b.conn, MetricFilters(since=B, until=B + 3600), share=0.10)
    assert [(d["details"]["server"], d["details"]["model"], d["severity"]) for d in out] == [
        ("A", "m1", "warning"), ("A", "m2", "critical")]
    w = out[0]
    assert w["kind"] == "rate_limit_pressure" and w["count"] == 1 and len(w["call_ids"]) == 1
    assert w["first_seen"] == B and w["last_seen"] == B + 60
    assert w["details"]["windows"] == [{"start": B, "calls": 10, "rate_limited": 1, "share": 0.1}]
    assert w["details"]["retry_after_s"] == 3.0 and w["dedupe_key"] == "rate_limit_pressure|A|m1"
    assert out[1]["details"]["peak_share"] == 0.5 and len(out[1]["call_ids"]) == 3
    assert rate_limit_pressure(b.conn, MetricFilters(since=B, until=B + 3600), share=0.6) == []
