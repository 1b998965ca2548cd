"""The stored records depend only on the data: not on the arrival order of messages between watermarks,
the heartbeat (watermark) cadence or how many workers interleave their output (README.md §1 rule 1)."""

from __future__ import annotations

import copy

import pytest
from asm_helpers import Harness, mk_call, tc, tr

from heron_core.config import Config

PROXY_OUT = ("10.0.0.5", 50000)


def scenario() -> list:
    claude = {"native": "sess-A"}
    prompt = "Look through the repository and list every TODO comment"
    goal = "Summarize the release notes of version two in three bullet points"
    hermes = {"kind": "hermes", "native": "tu-herm", "client": ("10.0.0.3", 41000)}
    child = {"kind": "generic", "native": "conv-child", "client": ("10.0.0.3", 41001)}
    calls = [
        # session A, turn 1: tools, a Task sub-agent, a loop, a substituted model
        mk_call(
            "a01",
            0,
            2,
            user_start=True,
            tools=[
                tc("toolu_1", "Read", path="x"),
                tc("toolu_t", "Task", prompt=prompt, subagent_type="Explore"),
            ],
            in_tok=20_000,
            requested="claude-sonnet-4-5",
            model="claude-haiku-4-5",
            **claude,
        ),
        mk_call(
            "s01",
            2.5,
            1.5,
            subagent="task",
            first_user=prompt,
            tools=[tc("toolu_s1", "Grep", q="TODO")],
            **claude,
        ),
        mk_call(
            "s02",
            4.2,
            1.0,
            subagent="task",
            first_user=prompt,
            tools=[tc("toolu_s2", "Grep", q="TODO")],
            results=[tr("toolu_s1", "a.py:1")],
            **claude,
        ),
        mk_call(
            "s03",
            5.4,
            1.0,
            subagent="task",
            first_user=prompt,
            tools=[tc("toolu_s3", "Grep", q="TODO")],
            results=[tr("toolu_s2", "a.py:1")],
            **claude,
        ),
        mk_call(
            "s04",
            6.6,
            0.8,
            subagent="task",
            first_user=prompt,
            results=[tr("toolu_s3", "a.py:1")],
            text="1 TODO",
            **claude,
        ),
        mk_call(
            "a02",
            2.1,
            0.7,
            results=[tr("toolu_1", "Error: no such file")],
            tools=[tc("toolu_2", "Bash", c="ls")],
            in_tok=90_000,
            **claude,
        ),
        mk_call(
            "a03",
            7.6,
            1.2,
            results=[tr("toolu_t", "1 TODO"), tr("toolu_2", "a.py")],
            in_tok=30_000,
            text="One TODO.",
            **claude,
        ),
        mk_call("x01", 3.0, 0.2, aux="title", model="claude-haiku-4-5", cost=0.0001, **claude),
        # session A, turn 2 interrupted by turn 3, which retries through three 429s
        mk_call("a04", 20, 1, user_start=True, tools=[tc("toolu_3", "Bash", c="sleep")], **claude),
        mk_call("a05", 25, 0.3, user_start=True, status=429, request_hash="RH", retry_after=5.0, **claude),
        mk_call("a06", 27, 0.3, user_start=True, status=429, request_hash="RH", **claude),
        mk_call("a07", 29, 0.3, user_start=True, status=429, request_hash="RH", **claude),
        mk_call("a08", 31, 2.0, user_start=True, request_hash="RH", text="done", **claude),
        # session A after an idle gap (idle timeout 60 s): turn 4, tool never answered → drain/missing
        mk_call("a09", 120, 1, user_start=True, tools=[tc("toolu_4", "Bash", c="x")], **claude),
        # hermes session with a prompt-matched sub-agent, interleaved with session A
        mk_call("h01", 1.0, 1.0, user_start=True, tools=[tc("call_d", "delegate_task", goal=goal)], **hermes),
        mk_call(
            "k01", 2.5, 1.0, user_start=True, first_user=goal, tools=[tc("call_k", "search", q="v2")], **child
        ),
        mk_call(
            "k02", 3.9, 1.0, first_user=goal, results=[tr("call_k", "notes")], text="- a\n- b\n- c", **child
        ),
        mk_call("h02", 5.2, 1.0, results=[tr("call_d", "- a\n- b\n- c")], text="Here", **hermes),
        # a proxy hop (outer ends last) and a mirror pair in one more session
        mk_call(
            "p-out",
            40,
            3,
            user_start=True,
            native="sess-P",
            fingerprint="P",
            client=("10.0.0.8", 42000),
            server=("10.0.0.5", 4000),
        ),
        mk_call(
            "p-in",
            40.05,
            2.9,
            native="up",
            kind="generic",
            fingerprint="P",
            client=PROXY_OUT,
            server=("10.0.0.9", 443),
            model="gpt-4o",
        ),
        mk_call("m-2", 50, 1, user_start=True, native="sess-P", fingerprint="M", client=("10.0.0.8", 42001)),
        mk_call(
            "m-1",
            50.0004,
            1.0002,
            user_start=True,
            native="sess-P",
            fingerprint="M",
            client=("172.16.0.8", 42001),
        ),
        # tentative generic conversations: one confirmed, one never
        mk_call("g01", 60, 1, user_start=True, tentative=True, kind="generic", native="conv-G"),
        mk_call("g02", 70, 1, user_start=True, kind="generic", native="conv-G"),
        mk_call("g09", 65, 1, user_start=True, tentative=True, kind="generic", native="conv-H"),
        # codex sub-agent by parent hint
        mk_call(
            "cx1",
            80,
            1,
            user_start=True,
            tools=[tc("call_cx", "spawn", t="r")],
            kind="codex-cli",
            native="th-1",
            client=("10.0.0.4", 43000),
        ),
        mk_call(
            "cx2",
            82,
            1,
            kind="codex-cli",
            native="th-2",
            subagent="review",
            parent_hint="th-1",
            client=("10.0.0.4", 43001),
            text="ok",
        ),
        mk_call(
            "cx3",
            84,
            1,
            results=[tr("call_cx", "ok")],
            kind="codex-cli",
            native="th-1",
            client=("10.0.0.4", 43000),
        ),
        # a plain call without any session
        mk_call("z01", 90, 1, kind=None, native=None),
    ]
    for i, c in enumerate(calls):  # distinct usage, as real calls have (equal usage is a fold key, §9.2)
        if c.output_tokens is not None and c.call_id not in ("p-out", "p-in", "m-1", "m-2"):
            c.output_tokens = 100 + i
            c.total_tokens = (c.input_total_tokens or 0) + c.output_tokens
    return calls


TABLES = {
    "turns": "turn_id",
    "sessions": "session_id",
    "tool_calls": "call_id, tool_call_id",
    "insights": "insight_id",
    "calls": "call_id",
}


def snapshot(step: float | None, seed: int | None) -> dict:
    h = Harness(Config(turn_idle_timeout_s=60))
    h.play(copy.deepcopy(scenario()), step=step, seed=seed)
    return {t: h.rows(t, order=k) for t, k in TABLES.items()}


@pytest.fixture(scope="module")
def reference() -> dict:
    return snapshot(1.0, None)


def test_reference_scenario_is_what_we_expect(reference):
    turns = reference["turns"]
    by_anchor = {t["anchor_call_id"]: t for t in turns}
    assert by_anchor["a01"]["call_ids"] == ["a01", "a02", "s01", "s02", "s03", "s04", "a03"]
    assert by_anchor["a01"]["subagents"] == ["Task:Explore"] and by_anchor["a01"]["status"] == "complete"
    assert (by_anchor["a04"]["status"], by_anchor["a04"]["end_reason"]) == ("incomplete", "interrupted")
    assert (
        by_anchor["a05"]["call_ids"] == ["a05", "a06", "a07", "a08"] and by_anchor["a05"]["retry_count"] == 3
    )
    assert (by_anchor["a09"]["status"], by_anchor["a09"]["end_reason"]) == ("incomplete", "drain")
    assert by_anchor["h01"]["call_ids"] == ["h01", "k01", "k02", "h02"]
    assert by_anchor["p-out"]["call_ids"] == ["p-out"] and by_anchor["m-1"]["call_ids"] == ["m-1"]
    assert by_anchor["g01"]["status"] == "complete" and "g09" not in by_anchor
    assert by_anchor["cx1"]["call_ids"] == ["cx1", "cx2", "cx3"]
    kinds = sorted({i["kind"] for i in reference["insights"]})
    assert kinds == ["context_growth", "model_substitution", "planner_loop", "retry_storm"]
    calls = {c["call_id"]: c for c in reference["calls"]}
    assert calls["p-in"]["hop_role"] == "proxy_out" and calls["m-2"]["hop_role"] == "mirror_secondary"
    assert calls["a08"]["attempt"] == 4 and calls["z01"]["session_id"] is None


@pytest.mark.parametrize(
    "step,seed",
    [
        (0.05, 1),
        (0.3, 2),
        (1.0, 3),
        (2.7, 4),
        (7.0, 5),
        (17.0, 6),
        (45.0, 7),
        (None, 8),
        (None, None),
    ],
)
def test_same_records_whatever_the_order_and_cadence(reference, step, seed):
    got = snapshot(step, seed)
    for table in TABLES:
        assert got[table] == reference[table], table


def random_scenario(seed: int) -> list:
    """Several interleaved sessions with tools, sub-agents, retries, interruptions, idle gaps and hops."""
    import random

    rng = random.Random(seed)
    calls: list = []
    n = 0

    def nid() -> str:
        nonlocal n
        n += 1
        return f"r{seed}-{n:04d}"

    for si in range(rng.randint(2, 5)):
        kw = {"native": f"S{si}", "client": (f"10.1.{si}.1", 40000 + si)}
        t = rng.uniform(0, 20)
        pending: list[str] = []
        for _turn in range(rng.randint(1, 5)):
            if rng.random() < 0.15:
                t += rng.uniform(61, 200)  # idle gap
            steps = rng.randint(1, 5)
            results = [tr(x, rng.choice(["ok", "Error: bad", "fine"])) for x in pending]
            for k in range(steps):
                last = k == steps - 1
                ntools = 0 if last else rng.randint(1, 3)
                tools = [
                    tc(f"tu{nid()}", rng.choice(["Read", "Bash", "Grep"]), a=rng.randint(0, 2))
                    for _ in range(ntools)
                ]
                dur = rng.uniform(0.2, 4)
                cid = nid()
                if rng.random() < 0.1:  # a failed attempt first, retried
                    calls.append(
                        mk_call(
                            cid + "x",
                            t,
                            0.2,
                            status=429,
                            request_hash=cid,
                            user_start=k == 0,
                            retry_after=rng.choice([None, 0.5, 10.0]),
                            **kw,
                        )
                    )
                    t += rng.uniform(0.3, 3)
                c = mk_call(
                    cid,
                    t,
                    dur,
                    user_start=k == 0,
                    tools=tools,
                    results=results,
                    request_hash=cid,
                    in_tok=rng.randint(1000, 90_000),
                    out_tok=rng.randint(1, 5000),
                    finish=None if not last or rng.random() > 0.2 else "tool_use",
                    **kw,
                )
                calls.append(c)
                if rng.random() < 0.15:  # this call went through a proxy: inner leg nested inside
                    inner = copy.deepcopy(c)
                    inner.call_id = c.call_id + "-in"
                    inner.client_ip, inner.client_port = "10.9.9.9", 50000 + n
                    inner.request_start += 0.01
                    inner.response_end -= 0.005
                    calls.append(inner)
                if tools and rng.random() < 0.2:  # a sub-agent spawned by the first tool call
                    prompt = f"sub-agent prompt number {nid()} with enough characters"
                    tools[0].name, tools[0].arguments = "Task", {"prompt": prompt, "subagent_type": "gp"}
                    st = t + dur + 0.1
                    for _j in range(rng.randint(1, 3)):
                        sd = rng.uniform(0.2, 2)
                        calls.append(
                            mk_call(
                                nid(),
                                st,
                                sd,
                                subagent="task",
                                first_user=prompt,
                                out_tok=rng.randint(1, 999),
                                **kw,
                            )
                        )
                        st += sd + 0.05
                    t = st
                pending = [x.id for x in tools]
                results = [tr(x, rng.choice(["ok", "Traceback (most recent call last)"])) for x in pending]
                t += dur + rng.uniform(0.05, 3)
            if rng.random() < 0.2:
                t += rng.uniform(0, 2)  # the next user prompt may interrupt
    return calls


@pytest.mark.parametrize("scenario_seed", [1, 2, 3, 4, 5])
def test_random_scenarios_are_deterministic(scenario_seed):
    base = random_scenario(scenario_seed)

    def snap(step, seed):
        h = Harness(Config(turn_idle_timeout_s=60))
        h.play(copy.deepcopy(base), step=step, seed=seed)
        return {t: h.rows(t, order=k) for t, k in TABLES.items()}, h.counters

    ref, counters = snap(1.0, None)
    assert ref["turns"] and counters["calls_late"] == 0
    for step, seed in ((0.1, 11), (3.3, 12), (25.0, 13), (None, 14)):
        got, _ = snap(step, seed)
        for table in TABLES:
            assert got[table] == ref[table], (table, step, seed)
