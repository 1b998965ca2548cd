"""Proxy-hop and mirror folding (agents-and-turns.md §9)."""

from __future__ import annotations

from asm_helpers import Harness, mk_call, sid

from heron_core.config import Config

CLIENT = ("10.0.0.1", 40000)
PROXY = ("10.0.0.5", 4000)
PROXY_OUT = ("10.0.0.5", 50000)
UPSTREAM = ("10.0.0.9", 443)


def _hop(inner_start: float = 0.05, inner_dur: float = 2.9, outer_dur: float = 3.0, fp: str = "same"):
    outer = mk_call(
        "out1",
        0,
        outer_dur,
        user_start=True,
        client=CLIENT,
        server=PROXY,
        model="claude-sonnet-4-5-20250929",
        requested="claude-sonnet-4-5",
        fingerprint=fp,
    )
    inner = mk_call(
        "in01",
        inner_start,
        inner_dur,
        user_start=True,
        kind="generic",
        native="conv-up",
        client=PROXY_OUT,
        server=UPSTREAM,
        wire_api="openai-chat",
        model="gpt-4o-2024-08-06",
        requested="gpt-4o",
        fingerprint=fp,
    )
    inner.ttft_ms = 250.0
    return outer, inner


def test_litellm_style_proxy_hop():
    h = Harness()
    outer, inner = _hop()
    h.play([outer, inner], step=0.25)
    o, i = h.call("out1"), h.call("in01")
    assert (o["hop_role"], o["hop_peer_call_id"]) == ("proxy_in", "in01")
    assert (i["hop_role"], i["hop_peer_call_id"]) == ("proxy_out", "out1")
    assert o["hop_overhead_ms"] == '{"ttft":50.0,"e2e":100.0}'
    assert i["session_id"] is None and i["turn_id"] is None
    (t,) = h.turns()
    assert t["call_ids"] == ["out1"] and t["models"] == ["claude-sonnet-4-5-20250929"]
    assert [s["session_id"] for s in h.rows("sessions")] == [sid("n1")]
    assert h.counters["hops_folded.proxy_in"] == 1 and h.counters["hops_folded.proxy_out"] == 1
    assert h.insights("model_substitution") == []  # the translated inner leg raises nothing


def test_outer_ending_first_within_tolerance():
    h = Harness()
    outer, inner = _hop(inner_dur=2.955)  # inner ends 5 ms after the outer (capture jitter)
    h.play([outer, inner], step=0.1)
    assert h.call("out1")["hop_role"] == "proxy_in" and h.call("in01")["hop_role"] == "proxy_out"


def test_slow_outer_holds_the_inner_leg():
    """The outer leg is still in flight when the inner one is due: the inner waits for it."""
    h = Harness()
    outer, inner = _hop(inner_dur=1.0, outer_dur=6.0)
    h.play([outer, inner], step=0.5)
    assert h.call("out1")["hop_role"] == "proxy_in" and h.call("in01")["hop_role"] == "proxy_out"
    assert len(h.turns()) == 1 and h.turns()[0]["call_ids"] == ["out1"]


def test_no_fold_when_content_differs_or_times_do_not_nest():
    h = Harness()
    outer, inner = _hop()
    inner.x_output_fingerprint = "different"
    inner.output_tokens = 7
    late_inner = mk_call("in02", 2.5, 0.2, client=PROXY_OUT, server=UPSTREAM, fingerprint="same", native="x")
    h.play([outer, inner, late_inner])
    assert all(h.call(c)["hop_role"] is None for c in ("out1", "in01"))
    assert h.call("in02")["hop_role"] is None  # starts > fold.start_window_s after the outer


def test_calls_of_one_flow_never_fold():
    h = Harness()
    a = mk_call("a1", 0, 3, fingerprint="same", client=CLIENT, server=PROXY)
    b = mk_call("b1", 0.0002, 3.0001, fingerprint="same", client=CLIENT, server=PROXY)  # mirror-close times
    h.play([a, b])
    assert h.call("a1")["hop_role"] is None and h.call("b1")["hop_role"] is None


def test_identical_answers_to_one_server_are_not_a_hop():
    h = Harness()
    a = mk_call("a1", 0, 3, fingerprint="OK", client=("10.0.0.1", 40000), server=UPSTREAM)
    b = mk_call("b1", 0.5, 2, fingerprint="OK", client=("10.0.0.2", 40000), server=UPSTREAM, native="n2")
    h.play([a, b])
    assert h.call("a1")["hop_role"] is None and h.call("b1")["hop_role"] is None


def test_token_and_error_content_match():
    h = Harness()
    a = mk_call("a1", 0, 3, fingerprint=None, in_tok=5000, out_tok=321, client=CLIENT, server=PROXY)
    b = mk_call(
        "b1",
        0.1,
        2.8,
        fingerprint=None,
        in_tok=5000,
        out_tok=321,
        client=PROXY_OUT,
        server=UPSTREAM,
        native="up",
    )
    e1 = mk_call(
        "e1",
        10,
        0.5,
        status=503,
        client=CLIENT,
        server=PROXY,
        error={"source": "http", "type": "overloaded", "message": "upstream overloaded"},
    )
    e2 = mk_call(
        "e2",
        10.1,
        0.3,
        status=503,
        client=PROXY_OUT,
        server=UPSTREAM,
        native="up",
        error={"source": "http", "type": "x", "message": "upstream overloaded"},
    )
    h.play([a, b, e1, e2])
    assert h.call("b1")["hop_role"] == "proxy_out" and h.call("e2")["hop_role"] == "proxy_out"


def test_mirror_pair():
    h = Harness()
    a = mk_call("m-b", 0, 2, user_start=True, fingerprint="mirror", client=("192.168.1.10", 40000))
    b = mk_call("m-a", 0.0005, 2.0003, user_start=True, fingerprint="mirror", client=("10.9.0.1", 40000))
    h.play([a, b])
    assert (h.call("m-a")["hop_role"], h.call("m-a")["hop_peer_call_id"]) == ("mirror_primary", "m-b")
    assert (h.call("m-b")["hop_role"], h.call("m-b")["hop_peer_call_id"]) == ("mirror_secondary", "m-a")
    (t,) = h.turns()
    assert t["call_ids"] == ["m-a"]
    assert h.counters["hops_folded.mirror_primary"] == 1 and h.counters["hops_folded.mirror_secondary"] == 1


def test_inner_leg_must_leave_from_the_outer_legs_server():
    """fold.same_host: identical nested answers from a host that is not the gateway are two calls (an
    eval job asking two replicas the same question), and fold again when the check is switched off."""
    for same_host, role in ((True, None), (False, "proxy_out")):
        h = Harness(cfg=Config(fold_same_host=same_host))
        a = mk_call("a1", 0, 3, user_start=True, fingerprint="OK", client=CLIENT, server=PROXY)
        b = mk_call("b1", 0.05, 2.9, fingerprint="OK", client=("10.0.0.2", 40000), server=UPSTREAM, native="n2")
        h.play([a, b], step=0.25)
        assert h.call("b1")["hop_role"] == role, same_host


def test_loopback_on_either_side_may_be_the_gateway_host():
    """A local gateway (client → 127.0.0.1:4000 → remote upstream) and a gateway forwarding to a model
    server on its own loopback (remote client → gateway → 127.0.0.1:8000) both fold."""
    local_gw = (mk_call("a1", 0, 3, user_start=True, fingerprint="OK", client=("127.0.0.1", 40000),
                        server=("127.0.0.1", 4000)),
                mk_call("b1", 0.05, 2.9, fingerprint="OK", client=("10.0.0.2", 50000), server=UPSTREAM, native="x"))
    local_upstream = (mk_call("a1", 0, 3, user_start=True, fingerprint="OK", client=CLIENT, server=PROXY),
                      mk_call("b1", 0.05, 2.9, fingerprint="OK", client=("127.0.0.1", 50000),
                              server=("127.0.0.1", 8000), native="x"))
    for pair in (local_gw, local_upstream):
        h = Harness()
        h.play(list(pair), step=0.25)
        assert (h.call("a1")["hop_role"], h.call("b1")["hop_role"]) == ("proxy_in", "proxy_out")


def test_nested_chain_of_three_legs():
    h = Harness()
    a = mk_call("leg-a", 0, 4, user_start=True, fingerprint="fp", client=CLIENT, server=PROXY)
    m = mk_call("leg-m", 0.1, 3.8, fingerprint="fp", client=PROXY_OUT, server=("10.0.0.7", 8080), native="m")
    b = mk_call("leg-b", 0.2, 3.6, fingerprint="fp", client=("10.0.0.7", 33000), server=UPSTREAM, native="b")
    h.play([a, m, b], step=0.5)
    assert (h.call("leg-a")["hop_role"], h.call("leg-a")["hop_peer_call_id"]) == ("proxy_in", "leg-m")
    assert (h.call("leg-m")["hop_role"], h.call("leg-m")["hop_peer_call_id"]) == ("proxy_out", "leg-a")
    assert (h.call("leg-b")["hop_role"], h.call("leg-b")["hop_peer_call_id"]) == ("proxy_out", "leg-m")
    assert h.call("leg-m")["hop_overhead_ms"] is not None
    assert h.turns()[0]["call_ids"] == ["leg-a"]


def test_late_inner_leg_updates_the_released_outer():
    """An inner leg that arrives after its outer was released still folds; the outer's row is updated."""
    h = Harness()
    outer, inner = _hop()
    h.play([outer], step=0.5, end=False)
    h.wm(4.5)  # the outer (ended at 3.0) is released and written
    h.send(inner)  # arrives late: the watermark already passed its end
    h.wm(6)
    h.end()
    o, i = h.call("out1"), h.call("in01")
    assert (o["hop_role"], o["hop_peer_call_id"]) == ("proxy_in", "in01")
    assert o["hop_overhead_ms"] == '{"ttft":50.0,"e2e":100.0}'
    assert i["hop_role"] == "proxy_out" and i["session_id"] is None
    assert [t["call_ids"] for t in h.turns()] == [["out1"]]


def test_candidate_index_returns_the_start_window_in_order():
    import random

    from heron_core.assemble.folding import _Cand, _KeyIndex
    from heron_core.assemble.state import Recent

    def cand(cid: str, start: int) -> _Cand:
        return _Cand(rec=Recent(cid, "s", ("f",), None, start, start + 5, (), None, False, None, None))

    rng = random.Random(5)
    idx, live = _KeyIndex(), {}
    for step in range(400):
        cid = f"c{rng.randint(0, 60):02d}"
        if cid in live and rng.random() < 0.5:
            idx.remove(live.pop(cid), cid)
        elif cid not in live:
            live[cid] = rng.randint(0, 50)
            idx.put(cand(cid, live[cid]))
        lo = rng.randint(-5, 50)
        hi = lo + rng.randint(0, 20)
        got = [(c.start_us, c.call_id) for c in idx.window(lo, hi)]
        assert got == sorted((s, c) for c, s in live.items() if lo <= s <= hi), step
    idx.put(cand("c99", 7))
    idx.put(cand("c99", 7))  # the same call again replaces, never duplicates
    assert [c.call_id for c in idx.window(7, 7)].count("c99") == 1


def test_many_identical_answers_fold_only_the_nested_pair():
    """Repeated answers share every content key: only the pair that nests in time and crosses servers
    folds, however many look-alikes are in the index (these overlap each other but never nest: each
    ends after every one that started before it)."""
    h = Harness()
    outer, inner = _hop()
    others = [mk_call(f"o{i:03d}", 5 + 0.4 * i, 10.0, user_start=True, native=f"n{i}",
                      client=(f"10.1.0.{i}", 40000), server=("10.0.0.7", 443), fingerprint="same")
              for i in range(100)]
    h.play([outer, inner, *others], step=0.25)
    assert h.call("out1")["hop_role"] == "proxy_in" and h.call("in01")["hop_role"] == "proxy_out"
    assert all(h.call(c.call_id)["hop_role"] is None for c in others)
