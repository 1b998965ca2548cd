"""Turn assembly (agents-and-turns.md §10–§11): membership, statuses, finalization, amendments."""

from __future__ import annotations

from asm_helpers import Harness, mk_call, sid, tc, tr

from heron_core import ids
from heron_core.config import Config


def _two_turns() -> list:
    return [
        mk_call("c01", 0, 2, user_start=True, tools=[tc("toolu_a1", "Read", path="a.py")], in_tok=1000),
        mk_call("c02", 3, 2, results=[tr("toolu_a1", "print('x')")], in_tok=1200, text="done: x"),
        mk_call("c03", 10, 1, user_start=True, tools=[tc("toolu_b1", "Bash", command="ls")], in_tok=1500),
        mk_call("c04", 12, 1, results=[tr("toolu_b1", "a.py")], in_tok=1600),
    ]


def test_multi_turn_session_rows():
    h = Harness()
    h.play(_two_turns(), step=0.5)
    turns = h.turns()
    s = sid("n1")
    assert [t["turn_id"] for t in turns] == [ids.turn_id(s, "c01"), ids.turn_id(s, "c03")]
    t1, t2 = turns
    assert t1["status"] == "complete" and t1["end_reason"] == "terminal"
    assert t1["call_ids"] == ["c01", "c02"] and t1["anchor_call_id"] == "c01" and t1["final_call_id"] == "c02"
    assert t1["user_input_preview"] == "question c01" and t1["final_answer_preview"] == "done: x"
    assert t1["finish"] == "stop" and t1["finish_reason_raw"] == "end_turn"
    assert t1["input_tokens"] == 2200 and t1["output_tokens"] == 200 and t1["total_tokens"] == 2400
    assert abs(t1["cost_usd"] - 0.02) < 1e-9 and t1["cost_complete"] is True
    assert t1["start"] == 1_700_000_000.0 and t1["end"] == 1_700_000_005.0 and t1["duration_ms"] == 5000.0
    assert t1["first_response_ms"] == 300.0
    assert t1["tool_names"] == ["Read"] and t1["tool_call_count"] == 1 and t1["tool_error_count"] == 0
    assert t1["models"] == ["claude-sonnet-4-5"] and t1["subagents"] == []
    assert t1["call_count"] == 2 and t1["main_call_count"] == 2 and t1["subagent_call_count"] == 0
    assert t1["agent_kind"] == "claude-cli" and t1["session_id"] == s and t1["source_id"] == "cap"
    assert t1["wire_api"] == "anthropic" and t1["server"] == "10.0.0.2:443" and t1["client_ip"] == "10.0.0.1"
    assert t2["status"] == "complete" and t2["call_ids"] == ["c03", "c04"]
    # call rows: turn and session filled; context deltas between main calls
    assert h.call("c02")["turn_id"] == t1["turn_id"] and h.call("c04")["turn_id"] == t2["turn_id"]
    assert h.call("c01")["context_delta_tokens"] is None and h.call("c02")["context_delta_tokens"] == 200
    sess = h.rows("sessions")
    assert len(sess) == 1
    r = sess[0]
    assert r["turn_count"] == 2 and r["turns_complete"] == 2 and r["call_count"] == 4
    assert r["first_turn_id"] == t1["turn_id"] and r["last_turn_id"] == t2["turn_id"]
    assert r["first_user_input_preview"] == "question c01" and r["native_session_id"] == "n1"
    assert r["input_total_tokens"] == 5300 and r["tool_call_count"] == 2 and r["agent_kind"] == "claude-cli"
    assert h.counters["turns_finalized.complete"] == 2 and h.counters["sessions_created"] == 1
    assert h.counters["turns_open"] == 0 and h.counters["calls_received"] == 4


def test_interrupted_turn():
    h = Harness()
    h.play(
        [
            mk_call("c01", 0, 1, user_start=True, tools=[tc("toolu_1", "Bash", command="sleep 100")]),
            mk_call("c02", 5, 1, user_start=True),  # the user interrupted and typed a new prompt
        ]
    )
    t1, t2 = h.turns()
    assert (t1["status"], t1["end_reason"], t1["call_ids"]) == ("incomplete", "interrupted", ["c01"])
    assert t1["final_call_id"] == "c01" and t1["final_answer_preview"] is None
    assert (t2["status"], t2["end_reason"]) == ("complete", "terminal")
    assert h.tool("toolu_1")["result_status"] == "missing"  # nothing resolved it before the drain


def test_partial_turn_without_user_start():
    h = Harness()
    h.play(
        [
            mk_call("c01", 0, 1, results=[tr("toolu_x", "ok")], tools=[tc("toolu_2", "Read", path="b")]),
            mk_call("c02", 2, 1, results=[tr("toolu_2", "b")]),
        ]
    )
    (t,) = h.turns()
    assert (t["status"], t["end_reason"]) == ("partial", "terminal")
    assert t["anchor_call_id"] == "c01" and t["user_input_preview"] is None
    assert h.rows("sessions")[0]["turns_partial"] == 1


def test_idle_timeout_closes_turn_and_later_call_opens_new_one():
    h = Harness(Config(turn_idle_timeout_s=60))
    calls = [mk_call("c01", 0, 1, user_start=True, tools=[tc("toolu_1", "Bash", command="make")])]
    h.play(calls, step=1.0, end=False, until=30)
    assert h.turns() == [] and len(h.asm.open_turns()) == 1
    h.wm(70)  # 60 s without activity after the call ended at 1 s
    (t,) = h.turns()
    assert (t["status"], t["end_reason"], t["tool_missing_count"]) == ("incomplete", "idle", 1)
    assert h.tool("toolu_1")["result_status"] == "missing"
    (st,) = h.insights("stalled_tool")
    assert st["severity"] == "warning" and st["turn_id"] == t["turn_id"]
    assert h.counters["turns_finalized.incomplete"] == 1 and t["insight_kinds"] == ["stalled_tool"]
    # the tool finally returns after 200 s: a new (partial) turn; the old tool call resolves, stall warning
    late = mk_call("c02", 200, 1, results=[tr("toolu_1", "built")])
    h.send(late)
    h.end()
    turns = h.turns()
    assert [x["status"] for x in turns] == ["incomplete", "partial"]
    assert turns[0]["tool_missing_count"] == 0 and turns[0]["call_ids"] == ["c01"]
    tool = h.tool("toolu_1")
    assert tool["result_status"] == "ok" and tool["result_call_id"] == "c02" and tool["wait_ms"] == 199000.0
    (st,) = h.insights("stalled_tool")
    # the stored row is the latest evidence: resolved after 199 s (stall_info_s 120 ≤ wait < stall_warn_s 600)
    assert (
        st["severity"] == "info" and st["turn_id"] == turns[0]["turn_id"] and st["call_ids"] == ["c01", "c02"]
    )
    assert h.rows("sessions")[0]["insight_count"] == 1


def test_drain_closes_open_run():
    h = Harness()
    h.play([mk_call("c01", 0, 1, user_start=True, tools=[tc("toolu_1", "Bash", command="x")])])
    (t,) = h.turns()
    assert (t["status"], t["end_reason"]) == ("incomplete", "drain")
    assert h.tool("toolu_1")["result_status"] == "missing"
    assert h.insights("stalled_tool") == []  # missing at drain is not a stall


def test_idle_before_drain_is_idle_whatever_the_heartbeat():
    """Idle vs drain depends on the data's last event time, not on where the last heartbeat fell."""
    results = []
    for step in (1.0, 50.0, None):
        h = Harness(Config(turn_idle_timeout_s=60))
        h.play(
            [
                mk_call("c01", 0, 1, user_start=True, tools=[tc("toolu_1", "Bash", command="x")]),
                mk_call("o01", 100, 1, native="other", user_start=True),
            ],
            step=step,
        )
        results.append([(t["call_ids"], t["end_reason"]) for t in h.turns()])
    assert results[0] == results[1] == results[2]
    assert results[0][0] == (["c01"], "idle")


def test_late_call_amends_finalized_turn_and_never_splits():
    h = Harness()
    calls = [
        mk_call("c01", 0, 1, user_start=True, tools=[tc("toolu_1", "Read", path="a")]),
        mk_call("c03", 4, 1, results=[tr("toolu_1", "a")]),
    ]
    h.play(calls, end=False)
    h.wm(20)
    (t,) = h.turns()
    assert t["call_ids"] == ["c01", "c03"]
    # a call that started inside the turn arrives after it was finalized; it is a main terminal
    late = mk_call("c02", 2, 1, user_start=False, text="late answer")
    h.send(late)
    h.wm(30)
    h.end()
    (t2,) = h.turns()
    assert t2["turn_id"] == t["turn_id"] and t2["call_ids"] == ["c01", "c02", "c03"]
    assert t2["final_call_id"] == "c03" and t2["status"] == "complete"
    assert h.call("c02")["turn_id"] == t["turn_id"]
    assert h.counters["turns_amended"] == 1 and h.counters["calls_late"] == 1


def test_inflight_call_holds_finalization():
    """A call in flight that started before the terminal keeps the turn open (no amendment needed)."""
    h = Harness()
    sub = mk_call("c02", 1.5, 30, subagent="task", first_user="x")
    h.started(sub)
    h.play(
        [
            mk_call("c01", 0, 1, user_start=True, tools=[tc("t1", "Task", prompt="x")]),
            mk_call("c03", 2, 1),
            mk_call("c04", 5, 1, user_start=True),
        ],
        end=False,
        until=10,
    )
    assert h.turns() == []
    h.finished(sub)
    h.wm(40)
    (t, t2) = h.turns()
    assert t["call_ids"] == ["c01", "c02", "c03"] and t2["call_ids"] == ["c04"]
    assert h.counters["turns_amended"] == 0 and h.counters["calls_late"] == 0
    h.end()


def test_auxiliary_calls_keep_session_but_join_no_turn():
    h = Harness()
    h.play(
        [
            mk_call("c01", 0, 1, user_start=True),
            mk_call("a01", 0.5, 0.2, aux="title", model="claude-haiku-4-5", cost=0.001, in_tok=50, out_tok=5),
        ]
    )
    (t,) = h.turns()
    assert t["call_ids"] == ["c01"]
    assert h.call("a01")["turn_id"] is None and h.call("a01")["session_id"] == sid("n1")
    s = h.rows("sessions")[0]
    assert s["call_count"] == 2 and s["auxiliary_call_count"] == 1
    assert abs(s["cost_usd"] - 0.011) < 1e-9 and s["models"] == ["claude-sonnet-4-5", "claude-haiku-4-5"]


def test_cost_incomplete_when_a_call_with_usage_has_no_cost():
    h = Harness()
    h.play(
        [
            mk_call("c01", 0, 1, user_start=True, tools=[tc("t1", "X")], cost=None),
            mk_call("c02", 2, 1, results=[tr("t1")]),
        ]
    )
    (t,) = h.turns()
    assert t["cost_complete"] is False and abs(t["cost_usd"] - 0.01) < 1e-9


def test_retry_is_never_a_user_turn_start():
    h = Harness()
    h.play(
        [
            mk_call("c01", 0, 1, user_start=True, status=429, request_hash="same"),
            mk_call("c02", 2, 1, user_start=True, request_hash="same"),
        ]
    )
    (t,) = h.turns()
    assert t["call_ids"] == ["c01", "c02"] and t["retry_count"] == 1 and t["status"] == "complete"


def test_live_view_open_turns_and_in_flight():
    h = Harness()
    c1 = mk_call("c01", 0, 1, user_start=True, tools=[tc("toolu_1", "Read", path="a")])
    c2 = mk_call("c02", 3, 5, results=[tr("toolu_1", "a")])
    h.play([c1], end=False, until=2.5)
    h.started(c2)
    (live,) = h.asm.open_turns()
    assert live["status"] == "in_progress" and live["end_reason"] is None
    assert live["turn_id"] == ids.turn_id(sid("n1"), "c01") and live["call_ids"] == ["c01"]
    assert live["tool_names"] == ["Read"] and live["user_input_preview"] == "question c01"
    (fl,) = h.asm.in_flight()
    assert fl.call_id == "c02"
    assert h.turns() == []


def test_memory_stays_bounded():
    """Payloads are dropped at release; finalized turns are forgotten after the retention."""
    h = Harness()
    calls = []
    for i in range(120):
        calls.append(mk_call(f"c{i:03d}", i * 100.0, 1, user_start=True))
    h.play(calls, step=10.0, end=False)
    s = h.asm.book.sessions[sid("n1")]
    retain_s = h.asm.retain_us / 1e6
    assert len(s.finals) <= retain_s / 100 + 2
    assert not h.asm.sources["cap"].pending and all(not hasattr(m, "x_request") for m in s.open)
    h.end()
    assert len(h.turns()) == 120


def test_late_call_between_finalized_turns_is_a_turn_of_its_own():
    h = Harness()
    h.play([mk_call("c01", 0, 1, user_start=True), mk_call("c03", 10, 1, user_start=True)], end=False)
    h.wm(20)
    h.send(mk_call("c02", 5, 1, results=[tr("x")], tools=[tc("t9", "Read", path="z")]))
    h.wm(30)
    h.end()
    turns = h.turns()
    assert [t["call_ids"] for t in turns] == [["c01"], ["c02"], ["c03"]]
    assert (turns[1]["status"], turns[1]["end_reason"]) == ("partial", "interrupted")
    assert h.call("c02")["turn_id"] == turns[1]["turn_id"] == ids.turn_id(sid("n1"), "c02")


def test_late_call_older_than_the_retention_joins_no_turn():
    h = Harness(Config(tcp_pending_timeout_s=10, tcp_idle_timeout_s=10, turn_idle_timeout_s=5))
    h.play([mk_call("c01", 0, 3, user_start=True, tools=[tc("t1", "A")]), mk_call("c02", 4, 1)], end=False)
    h.wm(100)  # retention = 10 + 2 × 5 = 20 s: the turn is forgotten
    assert h.asm.book.sessions[sid("n1")].finals == []
    h.send(mk_call("c00", 1, 1, results=[tr("t1")]))
    h.end()
    assert [t["call_ids"] for t in h.turns()] == [["c01", "c02"]]
    assert h.call("c00")["turn_id"] is None and h.call("c00")["session_id"] == sid("n1")
    assert h.counters["calls_late"] == 1 and h.rows("sessions")[0]["call_count"] == 3
