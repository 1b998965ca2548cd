"""Truth-generator rules the accuracy harness (tests/e2e) found broken, pinned one by one.

Each test names the spec rule the synthesizer's truth must follow; each failed before the fix.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from testdata.synth.apis import OUTCOMES_BY_API
from testdata.synth.calls import llm_exchange
from testdata.synth.capture import WriteOptions
from testdata.synth.faults import REORDER_MAX_US, FaultConfig, FaultLog, apply_benign
from testdata.synth.frames import LinkSpec
from testdata.synth.mix import random_plan
from testdata.synth.scenarios import build_mix_conns, faults_mix
from testdata.synth.tcpflow import packetize


def _truth(tmp_path: Path, seed: int) -> list[dict]:
    truth = tmp_path / f"f{seed}.truth.jsonl"
    faults_mix(seed, str(tmp_path / f"f{seed}.pcap"), str(truth), WriteOptions(LinkSpec.named("ethernet")))
    return [json.loads(line) for line in truth.read_text().splitlines()]


@pytest.mark.parametrize("api", sorted(OUTCOMES_BY_API))
def test_tool_use_plans_carry_tool_calls(api: str) -> None:
    """wire-apis.md §2.2: finish tool_use means the response has client tool calls (a plan once drew its
    tool range so that it could be empty)."""
    for seed in range(300):
        plan = random_plan(api, random.Random(seed), outcome="tool_use")
        if plan.outcome == "tool_use":
            assert plan.tool_calls, (api, seed)


def test_http_error_answering_a_stream_request_is_not_a_stream() -> None:
    """capture-and-http.md §6.5: is_stream follows the response actually sent (JSON error body)."""
    for seed in range(40):
        plan = random_plan("openai-chat", random.Random(seed), outcome="http_429", stream=True)
        assert llm_exchange(plan, random.Random(seed)).truth["is_stream"] is False


def test_benign_faults_stay_benign() -> None:
    """Reordering only swaps close segments with no data of the other direction between them, and an
    overlapping retransmission only carries bytes the sender had already sent (§5.3, §5.4)."""
    rng = random.Random(7)
    conns = build_mix_conns(rng, 60)
    cfg = FaultConfig(reorder=1.0, retransmit=1.0)
    for c in conns:
        trace = packetize(c, rng)
        before = {id(s): (s.ts, s.d, s.off, s.length) for s in trace.segs}
        apply_benign(trace, cfg, rng, FaultLog())
        originals = [s for s in trace.segs if id(s) in before and s.length]
        for s in originals:  # maybe swapped: its bytes were due within the reorder window
            orig_ts = next(ts for ts, d, off, n in before.values() if n and d == s.d and off == s.off)
            assert abs(s.ts - orig_ts) <= REORDER_MAX_US
        for r in (s for s in trace.segs if id(s) not in before and s.length):  # retransmissions
            upto = max(s.off + s.length for s in originals if s.d == r.d and s.ts <= r.ts)
            assert r.off + r.length <= upto, "a retransmission carries bytes not yet sent"


@pytest.mark.parametrize("seed", [1, 9, 20, 26])
def test_faulted_truth_is_consistent(tmp_path: Path, seed: int) -> None:
    """Seeds that exposed truth bugs: a response before its request (reorder across seconds), a gap
    logged after the real hole (drop of an overlapping retransmission), aborted-before-any-byte
    reported as aborted, status of a response whose head never completed."""
    recs = _truth(tmp_path, seed)
    for r in recs:
        if r["response_end"] is not None:
            assert r["request_start"] <= r["response_end"], r
        assert r["response_end"] is not None, r  # every exchange ends (close, cut, expiry)
        if r["state"] == "no_response":
            assert r["status_code"] is None and r["is_stream"] is False
    by_conn: dict[tuple, list[dict]] = {}
    for r in recs:
        by_conn.setdefault((r["client_ip"], r["client_port"], r["flow_first_ts"]), []).append(r)
    for rs in by_conn.values():
        starts = [r["request_start"] for r in sorted(rs, key=lambda r: r["ordinal"])]
        assert starts == sorted(starts)
