"""Tool-result linking (§11) and sub-agents (§7): Task prompt match, generic prompt match, codex hints."""

from __future__ import annotations

import pytest
from asm_helpers import Harness, mk_call, sid, tc, tr

from heron_core import ids
from heron_core.assemble.tools import result_is_error
from heron_core.records import ToolResult


@pytest.mark.parametrize(
    "text,flag,expected",
    [
        ("all good", False, False),
        ("anything", True, True),
        ("Error: file missing", False, True),
        ("  error something broke", False, True),
        ("Exception: boom", False, True),
        ("FATAL: cannot", False, True),
        ("Traceback (most recent call last):\n  File x", False, True),
        ("<tool_use_error>bad input</tool_use_error>", False, True),
        ("bash: foo: command not found", False, True),
        ("cat: x: No such file or directory", False, True),
        ("open: Permission denied", False, True),
        ("process exited with code 2", False, True),
        ("Exit status: 1", False, True),
        ("exit code 0", False, False),
        ('{"output": "x", "metadata": {"exit_code": 1}}', False, True),
        ('{"output": "x", "exit_code": 0}', False, False),
        ("the word errors appears here", False, False),
    ],
)
def test_result_error_heuristics(text, flag, expected):
    assert result_is_error(ToolResult("t", text, flag, len(text))) is expected


def test_tool_rows_ok_error_missing():
    h = Harness()
    h.play(
        [
            mk_call(
                "c01",
                0,
                1,
                user_start=True,
                tools=[
                    tc("toolu_ok", "Read", path="a"),
                    tc("toolu_err", "Bash", command="x"),
                    tc("toolu_heur", "Bash", command="y"),
                    tc("toolu_miss", "Grep", pattern="z"),
                ],
            ),
            mk_call(
                "c02",
                3,
                1,
                tools=[tc("toolu_2", "Read", path="b")],
                results=[
                    tr("toolu_ok", "contents"),
                    tr("toolu_err", "failed", error=True),
                    tr("toolu_heur", "Traceback (most recent call last): ..."),
                ],
            ),
            # toolu_ok resent in a later history: the first occurrence already resolved it
            mk_call("c03", 5, 1, results=[tr("toolu_ok", "contents"), tr("toolu_2", "b")], text="fin"),
        ]
    )
    ok, err, heur, miss = (h.tool(x) for x in ("toolu_ok", "toolu_err", "toolu_heur", "toolu_miss"))
    assert (ok["result_status"], ok["result_call_id"], ok["wait_ms"]) == ("ok", "c02", 2000.0)
    assert ok["result_at"] == 1_700_000_003.0 and ok["issued_at"] == 1_700_000_001.0
    assert ok["result_preview"] == "contents" and ok["result_bytes"] == 8 and ok["seq"] == 0
    assert ok["arguments"] == '{"path":"a"}' and ok["name"] == "Read" and ok["args_hash"]
    assert err["result_status"] == "error" and heur["result_status"] == "error"
    assert miss["result_status"] == "missing"  # never answered: missing once the source drained
    (t,) = h.turns()
    assert t["tool_call_count"] == 5 and t["tool_error_count"] == 2 and t["tool_missing_count"] == 1
    assert all(r["turn_id"] == t["turn_id"] for r in h.rows("tool_calls"))
    assert h.rows("sessions")[0]["tool_error_count"] == 2


def test_pending_tool_becomes_missing_at_drain_end():
    h = Harness()
    h.play(
        [
            mk_call("c01", 0, 1, user_start=True, tools=[tc("t1", "A"), tc("t2", "B")]),
            mk_call("c02", 2, 1, results=[tr("t1")]),
        ]
    )
    assert h.tool("t2")["result_status"] == "missing"
    (t,) = h.turns()
    assert t["status"] == "complete" and t["tool_missing_count"] == 1


def test_tool_results_are_scoped_per_agent():
    """A result in a sub-agent call does not resolve the main agent's tool call with the same id."""
    h = Harness()
    h.play(
        [
            mk_call("c01", 0, 1, user_start=True, tools=[tc("tu-same", "Read", path="a")]),
            mk_call(
                "s01", 2, 1, subagent="task", first_user="other", results=[tr("tu-same", "sub")], text="x"
            ),
            mk_call("c02", 4, 1, results=[tr("tu-same", "main")]),
        ]
    )
    assert h.tool("tu-same")["result_call_id"] == "c02"


def test_claude_task_subagent_named_by_prompt():
    prompt = "Find every call site of parse_config and summarize them"
    h = Harness()
    h.play(
        [
            mk_call(
                "c01",
                0,
                1,
                user_start=True,
                tools=[tc("toolu_task", "Task", description="find", prompt=prompt, subagent_type="Explore")],
            ),
            mk_call(
                "s01", 2, 1, subagent="task", first_user=prompt, tools=[tc("toolu_s1", "Grep", pattern="p")]
            ),
            mk_call(
                "s02",
                4,
                1,
                subagent="task",
                first_user=prompt,
                results=[tr("toolu_s1", "x.py")],
                text="found 3",
            ),
            mk_call("c02", 6, 1, results=[tr("toolu_task", "found 3")], text="There are 3 call sites."),
        ]
    )
    (t,) = h.turns()
    assert t["call_ids"] == ["c01", "s01", "s02", "c02"] and t["subagents"] == ["Task:Explore"]
    assert t["subagent_call_count"] == 2 and t["main_call_count"] == 2 and t["final_call_id"] == "c02"
    assert t["final_answer_preview"] == "There are 3 call sites."
    for cid in ("s01", "s02"):
        row = h.call(cid)
        assert row["subagent"] == "Task:Explore" and row["parent_tool_call_id"] == "toolu_task"
        assert row["turn_id"] == t["turn_id"] and row["context_delta_tokens"] is None
    assert h.tool("toolu_s1")["result_status"] == "ok" and h.tool("toolu_s1")["subagent"] == "Task:Explore"
    assert h.rows("sessions")[0]["subagents"] == ["Task:Explore"]


def test_claude_subagent_without_matching_task_keeps_task_name():
    h = Harness()
    h.play(
        [
            mk_call("c01", 0, 1, user_start=True, tools=[tc("toolu_task", "Task", prompt="A")]),
            mk_call("s01", 2, 1, subagent="task", first_user="B", text="x"),
            mk_call("c02", 4, 1, results=[tr("toolu_task")]),
        ]
    )
    assert h.call("s01")["subagent"] == "task" and h.call("s01")["parent_tool_call_id"] is None


def test_generic_prompt_match_links_new_session_as_subagent():
    goal = "Write a haiku about packet captures, five seven five"
    h = Harness()
    parent = {"kind": "hermes", "native": "tu-anchor"}
    child = {"kind": "generic", "native": "conv-child"}
    h.play(
        [
            mk_call(
                "p01", 0, 1, user_start=True, tools=[tc("call_d1", "delegate_task", goal=goal)], **parent
            ),
            mk_call(
                "k01", 2, 1, user_start=True, first_user=goal, tools=[tc("call_k1", "search", q="x")], **child
            ),
            mk_call(
                "k02", 4, 1, user_start=False, first_user=goal, results=[tr("call_k1")], text="haiku", **child
            ),
            mk_call("p02", 6, 1, results=[tr("call_d1", "haiku")], text="Here it is", **parent),
        ]
    )
    (t,) = h.turns()
    assert t["session_id"] == sid("tu-anchor", "hermes")
    assert t["call_ids"] == ["p01", "k01", "k02", "p02"] and t["subagents"] == ["delegate_task"]
    for cid in ("k01", "k02"):
        row = h.call(cid)
        assert row["session_id"] == sid("tu-anchor", "hermes") and row["subagent"] == "delegate_task"
        assert row["parent_tool_call_id"] == "call_d1" and row["native_session_id"] == "conv-child"
    assert len(h.rows("sessions")) == 1 and h.counters["sessions_created"] == 1


def test_prompt_match_needs_min_chars_and_an_unresolved_call():
    h = Harness()
    h.play(
        [
            mk_call(
                "p01",
                0,
                1,
                user_start=True,
                tools=[tc("call_d1", "delegate_task", goal="short")],
                kind="hermes",
                native="a",
            ),
            mk_call("k01", 2, 1, user_start=True, first_user="short", kind="generic", native="conv-b"),
        ]
    )
    assert h.call("k01")["session_id"] == sid("conv-b", "generic") and h.call("k01")["subagent"] is None
    assert len(h.rows("sessions")) == 2


def test_codex_parent_hint_links_subagent():
    h = Harness()
    parent = sid("thread-main", "codex-cli")
    h.play(
        [
            mk_call(
                "c01",
                0,
                1,
                user_start=True,
                tools=[tc("call_1", "spawn_agent", task="review")],
                kind="codex-cli",
                native="thread-main",
                wire_api="openai-responses",
            ),
            mk_call(
                "r01",
                2,
                1,
                kind="codex-cli",
                native="thread-sub",
                subagent="review",
                parent_hint="thread-main",
                text="lgtm",
                wire_api="openai-responses",
            ),
            mk_call(
                "c02",
                4,
                1,
                results=[tr("call_1", "lgtm")],
                kind="codex-cli",
                native="thread-main",
                wire_api="openai-responses",
            ),
        ]
    )
    (t,) = h.turns()
    assert (
        t["session_id"] == parent and t["call_ids"] == ["c01", "r01", "c02"] and t["subagents"] == ["review"]
    )
    assert h.call("r01")["session_id"] == parent
    assert [r["session_id"] for r in h.rows("sessions")] == [parent]
    assert t["turn_id"] == ids.turn_id(parent, "c01")
