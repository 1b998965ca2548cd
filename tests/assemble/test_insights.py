"""Insights (§12.1, §12.3, §12.5, §12.6; retry storms are in test_retries_tentative.py)."""

from __future__ import annotations

import json

import pytest
from asm_helpers import Harness, mk_call, tc, tr

from heron_core import ids
from heron_core.assemble.insights import is_substitution, normalize_model
from heron_core.config import Config


def _loop_turn(sigs: list[tuple[str, dict]], subagent: str | None = None) -> list:
    """A turn whose calls issue one tool call each (name, args), each resolved by the next call."""
    calls = [mk_call("c00", 0, 1, user_start=True, tools=[tc("t00", sigs[0][0], **sigs[0][1])])]
    for i, (name, args) in enumerate(sigs[1:], start=1):
        calls.append(
            mk_call(
                f"c{i:02d}", i * 2, 1, tools=[tc(f"t{i:02d}", name, **args)], results=[tr(f"t{i - 1:02d}")]
            )
        )
    n = len(sigs)
    calls.append(mk_call(f"c{n:02d}", n * 2, 1, results=[tr(f"t{n - 1:02d}")], text="done"))
    return calls


def test_planner_loop_repeat():
    h = Harness()
    h.play(_loop_turn([("Read", {"path": "a"})] * 3 + [("Bash", {"command": "x"})]))
    (ins,) = h.insights("planner_loop")
    (t,) = h.turns()
    d = json.loads(ins["details"])
    assert ins["severity"] == "warning" and ins["count"] == 3 and ins["turn_id"] == t["turn_id"]
    assert d["pattern"] == "repeat" and d["tool"] == "Read" and d["occurrences"] == 3 and d["agent"] == "main"
    assert (
        d["arguments_preview"] == '{"path":"a"}' and d["tokens"] == 3300 and abs(d["cost_usd"] - 0.03) < 1e-9
    )
    assert ins["call_ids"] == ["c00", "c01", "c02"]
    assert ins["dedupe_key"].startswith(f"planner_loop|{t['turn_id']}|")
    assert ins["insight_id"] == ids.uuid5("insight", ins["dedupe_key"])
    assert t["insight_count"] == 1 and t["insight_kinds"] == ["planner_loop"]


def test_planner_loop_critical_at_twice_the_repeats():
    h = Harness()
    h.play(_loop_turn([("Read", {"path": "a"})] * 6))
    (ins,) = h.insights("planner_loop")
    assert ins["severity"] == "critical" and ins["count"] == 6


def test_no_planner_loop_below_threshold_or_with_other_arguments():
    h = Harness()
    h.play(
        _loop_turn(
            [
                ("Read", {"path": "a"}),
                ("Read", {"path": "a"}),
                ("Read", {"path": "b"}),
                ("Bash", {"command": "x"}),
            ]
        )
    )
    assert h.insights("planner_loop") == []


def test_planner_loop_oscillation():
    h = Harness()
    a, b = ("Read", {"path": "a"}), ("Edit", {"path": "a", "text": "x"})
    h.play(_loop_turn([a, b, a, b]))
    (ins,) = h.insights("planner_loop")
    d = json.loads(ins["details"])
    assert d["pattern"] == "oscillation" and sorted(d["tools"]) == ["Edit", "Read"] and ins["count"] == 4
    assert ins["severity"] == "warning"


def test_no_oscillation_for_three_alternations():
    h = Harness()
    a, b = ("Read", {"path": "a"}), ("Edit", {"path": "a", "text": "x"})
    h.play(_loop_turn([a, b, a, ("Bash", {"command": "y"})]))
    assert h.insights("planner_loop") == []


def test_planner_loop_is_per_agent():
    """Two agents each calling Read(a) twice is no loop; one sub-agent doing it three times is."""
    prompt = "Investigate the flaky test in the parser module"
    h = Harness()
    read = {"path": "a"}
    calls = [
        mk_call(
            "c00",
            0,
            1,
            user_start=True,
            tools=[tc("tk", "Task", prompt=prompt, subagent_type="Explore"), tc("m1", "Read", **read)],
        ),
        mk_call("c01", 2, 1, tools=[tc("m2", "Read", **read)], results=[tr("m1")]),
    ]
    for i in range(3):
        calls.append(
            mk_call(
                f"s{i}",
                4 + i * 2,
                1,
                subagent="task",
                first_user=prompt,
                tools=[tc(f"st{i}", "Read", **read)],
                results=[tr(f"st{i - 1}")] if i else [],
            )
        )
    calls.append(mk_call("c02", 12, 1, results=[tr("tk"), tr("m2")], text="done"))
    h.play(calls)
    (ins,) = h.insights("planner_loop")
    assert json.loads(ins["details"])["agent"] == "Task:Explore" and ins["call_ids"] == ["s0", "s1", "s2"]


@pytest.mark.parametrize(
    "name,norm",
    [
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("openai/GPT-4o-2024-08-06", "gpt-4o"),
        ("anthropic/claude-opus-4@20250514", "claude-opus-4"),
        ("gpt-4-0613", "gpt-4"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("llama3:latest", "llama3"),
        ("qwen3-coder", "qwen3-coder"),
    ],
)
def test_normalize_model(name, norm):
    assert normalize_model(name) == norm


def test_substitution_rules():
    assert is_substitution("gpt-4o", "gpt-4o-mini", {})
    assert not is_substitution("claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022", {})
    assert not is_substitution("gpt-4o", "unknown", {})
    assert not is_substitution("fast", "llama-3.1-8b-instruct", {"fast": "llama-3.1-8b-instruct"})
    assert not is_substitution("llama-3.1-8b-instruct", "fast", {"FAST": "llama-3.1-8b-instruct"})


def test_model_substitution_insight_counts_calls():
    h = Harness()
    h.play(
        [
            mk_call("c01", 0, 1, user_start=True, requested="gpt-4o", model="gpt-4o-mini-2024-07-18"),
            mk_call("c02", 5, 1, user_start=True, requested="gpt-4o", model="gpt-4o-mini-2024-07-18"),
            mk_call("c03", 9, 1, user_start=True, requested="gpt-4o", model="gpt-4o-2024-08-06"),
        ]
    )
    (ins,) = h.insights("model_substitution")
    assert ins["severity"] == "warning" and ins["count"] == 2 and ins["call_ids"] == ["c01", "c02"]
    assert ins["dedupe_key"] == "model_substitution|cap|10.0.0.2:443|gpt-4o|gpt-4o-mini-2024-07-18"
    assert ins["session_id"] is None and ins["turn_id"] is None


def test_model_alias_table_silences_substitution():
    h = Harness(Config(insight_model_aliases={"gpt-4o": "gpt-4o-mini"}))
    h.play([mk_call("c01", 0, 1, user_start=True, requested="gpt-4o", model="gpt-4o-mini-2024-07-18")])
    assert h.insights("model_substitution") == []


@pytest.mark.parametrize("wait,severity", [(5, None), (200, "info"), (700, "warning")])
def test_stalled_tool(wait, severity):
    h = Harness(Config(turn_idle_timeout_s=3600))
    h.play(
        [
            mk_call("c01", 0, 1, user_start=True, tools=[tc("t1", "Bash", command="deploy")]),
            mk_call("c02", 1 + wait, 1, results=[tr("t1", "ok")]),
        ],
        step=10.0,
    )
    found = h.insights("stalled_tool")
    if severity is None:
        assert found == []
    else:
        (ins,) = found
        (t,) = h.turns()
        assert ins["severity"] == severity and ins["turn_id"] == t["turn_id"]
        assert (
            ins["dedupe_key"] == "stalled_tool|c01|t1"
            and json.loads(ins["details"])["wait_ms"] == wait * 1000
        )


def test_context_growth_jump_and_compaction():
    h = Harness()
    h.play(
        [
            mk_call("c01", 0, 1, user_start=True, tools=[tc("t1", "Read", path="big.log")], in_tok=10_000),
            mk_call(
                "c02",
                2,
                1,
                results=[tr("t1", "x" * 100, nbytes=250_000)],
                tools=[tc("t2", "X")],
                in_tok=75_000,
            ),
            mk_call("c03", 4, 1, results=[tr("t2", "y")], in_tok=20_000, text="compacted"),
        ]
    )
    jump, drop = h.insights("context_growth")
    assert jump["call_ids"] == ["c01", "c02"] and jump["severity"] == "info"
    dj = json.loads(jump["details"])
    assert dj["delta_tokens"] == 65_000 and dj["added"] == [{"tool": "Read", "bytes": 250_000}]
    assert json.loads(drop["details"])["compaction"] is True and drop["call_ids"] == ["c02", "c03"]
    assert h.call("c03")["context_delta_tokens"] == -55_000
    (t,) = h.turns()
    assert t["insight_count"] == 2


def test_no_context_growth_for_small_changes():
    h = Harness()
    h.play(
        [
            mk_call("c01", 0, 1, user_start=True, tools=[tc("t1", "A")], in_tok=10_000),
            mk_call("c02", 2, 1, results=[tr("t1")], in_tok=12_000),
            mk_call("c03", 4, 1, user_start=True, in_tok=7_000),
        ]
    )
    assert h.insights("context_growth") == []
