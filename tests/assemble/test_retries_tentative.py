"""Retry chains and retry storms (§12.2); tentative generic conversations (§3.3)."""

from __future__ import annotations

from asm_helpers import Harness, mk_call, sid


def _chain(n_fail: int, gap: float = 2.0, ok_last: bool = True, **kw):
    calls = []
    t = 0.0
    for i in range(n_fail):
        calls.append(mk_call(f"r{i:02d}", t, 0.5, status=429, request_hash="H", user_start=(i == 0), **kw))
        t += 0.5 + gap
    if ok_last:
        calls.append(mk_call(f"r{n_fail:02d}", t, 1.0, request_hash="H", user_start=True, **kw))
    return calls


def test_retry_chain_attempts_and_storm_warning():
    h = Harness()
    h.play(_chain(2))
    rows = [h.call(f"r{i:02d}") for i in range(3)]
    assert [r["attempt"] for r in rows] == [1, 2, 3]
    assert [r["retry_of"] for r in rows] == [None, "r00", "r00"]
    (ins,) = h.insights("retry_storm")
    (t,) = h.turns()
    assert ins["severity"] == "warning" and ins["count"] == 3 and ins["call_ids"] == ["r00", "r01", "r02"]
    assert ins["turn_id"] == t["turn_id"] and ins["session_id"] == sid("n1")
    assert ins["first_seen"] == 1_700_000_000.0 and ins["last_seen"] == 1_700_000_006.0
    assert '"statuses":[429,429,200]' in ins["details"]
    assert t["retry_count"] == 2 and t["insight_count"] == 1 and t["insight_kinds"] == ["retry_storm"]
    assert t["call_ids"] == ["r00", "r01", "r02"] and t["status"] == "complete"
    assert h.rows("sessions")[0]["insight_count"] == 1


def test_long_chain_is_critical():
    h = Harness()
    h.play(_chain(6))
    (ins,) = h.insights("retry_storm")
    assert ins["severity"] == "critical" and ins["count"] == 7


def test_retry_sooner_than_retry_after_is_critical():
    h = Harness()
    h.play(_chain(1, gap=1.0, retry_after=30.0))
    (ins,) = h.insights("retry_storm")
    assert ins["severity"] == "critical" and ins["count"] == 2
    assert '"retried_before_retry_after":true' in ins["details"]


def test_two_attempts_respecting_retry_after_raise_nothing():
    h = Harness()
    h.play(_chain(1, gap=2.0, retry_after=1.0))
    assert h.call("r01")["attempt"] == 2 and h.insights("retry_storm") == []


def test_no_chain_across_clients_or_beyond_the_gap_or_after_success():
    h = Harness()
    h.play(
        [
            mk_call("a0", 0, 0.5, status=429, request_hash="H", pid=1),
            mk_call("a1", 1, 0.5, status=429, request_hash="H", pid=2),  # another process
            mk_call("b0", 10, 0.5, status=500, request_hash="K"),
            mk_call("b1", 200, 0.5, request_hash="K"),  # 189.5 s later > insight.retry_gap_s
            mk_call("c0", 300, 0.5, request_hash="L"),
            mk_call("c1", 302, 0.5, request_hash="L"),  # the earlier one succeeded: not a retry
        ]
    )
    assert all(h.call(c)["attempt"] == 1 for c in ("a0", "a1", "b0", "b1", "c0", "c1"))


def test_tentative_conversation_confirmed_retroactively():
    h = Harness()
    key = {"kind": "generic", "native": "conv-abc"}
    h.play(
        [
            mk_call("g01", 0, 1, user_start=True, tentative=True, **key),
            mk_call("g02", 30, 1, user_start=True, **key),  # history now holds the first answer: confirmed
        ]
    )
    g1 = h.call("g01")
    assert g1["agent_kind"] == "generic" and g1["session_id"] == sid("conv-abc", "generic")
    assert g1["native_session_id"] == "conv-abc" and g1["session_source"] == "header"
    assert h.call("g02")["context_delta_tokens"] == 0
    turns = h.turns()
    assert [t["call_ids"] for t in turns] == [["g01"], ["g02"]]
    assert all(t["status"] == "complete" for t in turns) and g1["turn_id"] == turns[0]["turn_id"]
    (s,) = h.rows("sessions")
    assert s["turn_count"] == 2 and s["call_count"] == 2 and s["first_turn_id"] == turns[0]["turn_id"]


def test_tentative_never_confirmed_stays_plain():
    h = Harness()
    key = {"kind": "generic", "native": "conv-one-shot"}
    h.play(
        [
            mk_call("g01", 0, 1, user_start=True, tentative=True, **key),
            mk_call("g02", 5, 1, user_start=True, tentative=True, **key),
        ]
    )
    for cid in ("g01", "g02"):
        row = h.call(cid)
        assert row["agent_kind"] is None and row["session_id"] is None and row["turn_id"] is None
    assert h.turns() == [] and h.rows("sessions") == []


def test_tentative_expires_after_idle_timeout():
    from heron_core.config import Config

    h = Harness(Config(turn_idle_timeout_s=60))
    key = {"kind": "generic", "native": "conv-late"}
    h.play(
        [
            mk_call("g01", 0, 1, user_start=True, tentative=True, **key),
            mk_call("g02", 100, 1, user_start=True, **key),
        ],
        step=5.0,
    )
    assert h.call("g01")["session_id"] is None
    assert h.call("g02")["session_id"] == sid("conv-late", "generic")
    assert [t["call_ids"] for t in h.turns()] == [["g02"]]


def test_auxiliary_retries_get_attempts_but_no_storm():
    h = Harness()
    h.play(_chain(3, aux="title"))
    assert [h.call(f"r{i:02d}")["attempt"] for i in range(4)] == [1, 2, 3, 4]
    assert h.insights("retry_storm") == [] and h.turns() == []
