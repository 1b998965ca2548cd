"""End to end on real captures: pcap → TCP → HTTP → decode_call → classify_call.

The engine (``heron_core.engine.Engine``) cannot be used here yet: the decode worker does not call
``classify_call`` (worker.py is outside this package) and, at the time of writing, worker.py does not import
(``heron_core.bodies.BodyEncoder`` is missing). So the stages are driven directly, the way the worker
drives them, which tests exactly what classification sees.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from heron_core import ids
from heron_core.agents import classify_call, request_session_id
from heron_core.capture.source import open_file_source
from heron_core.config import Config
from heron_core.http.connection import HttpConnection
from heron_core.records import Call, EndOfSource, Exchange, Heartbeat, Segment
from heron_core.redact import Redactor
from heron_core.tcp.reassembly import TcpReassembler
from heron_core.wire.decode import decode_call
from heron_core.wire.detect import detect

CAPTURES = Path(__file__).resolve().parents[2] / "testdata" / "captures"


class _Sink:
    """ExchangeSink that keeps the finished exchanges."""

    def __init__(self) -> None:
        self.done: list[Exchange] = []

    def request_complete(self, ex: Exchange) -> None:
        pass

    def exchange_done(self, ex: Exchange) -> None:
        self.done.append(ex)


def classified_calls(
    name: str, counters: Counter, early: dict[str, str | None] | None = None, folder: Path = CAPTURES
) -> list[Call]:
    """Every LLM call of a capture, decoded and classified, in request order; ``early`` receives each
    call's request-only session id (what ``CallStarted`` would carry)."""
    path = folder / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    cfg = Config()
    redactor = Redactor(b"test-salt")
    sink = _Sink()
    tcp = TcpReassembler(lambda flow: HttpConnection(flow, sink, counters, cfg, redactor), counters, cfg)
    for item in open_file_source(str(path), name, counters, cfg):
        if isinstance(item, Segment):
            tcp.segment(item)
        elif isinstance(item, Heartbeat):
            tcp.watermark(item.source_id, item.ts_us)
        elif isinstance(item, EndOfSource):
            tcp.end_source(item.source_id)
    calls = []
    for ex in sorted(sink.done, key=lambda e: (e.request_start or 0, e.exchange_id)):
        d = detect(ex)
        key = None if d is None else request_session_id(ex, d.wire_api, d.operation, d.req)
        call = decode_call(ex, counters)
        if call is not None:
            if call.agent_kind is None:  # not yet classified by the worker
                classify_call(call, ex, counters)
            # the request-only key, when known, is always the final one
            assert key is None or key == call.session_id, (name, call.call_id)
            if early is not None:
                early[call.call_id] = key
            calls.append(call)
    return calls


def test_claude_code_capture_one_session() -> None:
    c = Counter()
    calls = classified_calls("claude_code.pcap", c)
    assert len(calls) == 2
    sid = "966f3a65-08fd-454a-80a3-d2ef007be562"
    for call in calls:
        assert call.agent_kind == "claude-cli"
        assert (call.session_source, call.native_session_id) == ("header", sid)
        assert call.subagent is None and not call.is_auxiliary
    assert calls[0].session_id == calls[1].session_id == ids.session_id("claude_code.pcap", "claude-cli", sid)
    assert [(x.x_user_turn_start, x.x_terminal) for x in calls] == [(True, False), (False, True)]
    assert c["calls_by_agent_kind.claude-cli"] == 2


@pytest.mark.parametrize("name", ["claude_code.pcap", "codex.pcap"])
def test_agent_session_known_from_request(name: str) -> None:
    """Header sessions are known when the request completes (CallStarted), before any response."""
    early: dict[str, str | None] = {}
    calls = classified_calls(name, Counter(), early)
    assert all(early[x.call_id] == x.session_id is not None for x in calls)


def test_sdk_captures_request_keys_agree() -> None:
    """Generic sessions: the request-only key exists only once the history holds the anchor, and then it
    is the final key (checked in classified_calls); first calls have none."""
    for name in ("sdk_openai.pcap", "sdk_anthropic.pcap", "sdk_gemini.pcap", "ollama.pcap"):
        early: dict[str, str | None] = {}
        calls = classified_calls(name, Counter(), early)
        anchored = [x for x in calls if x.session_source == "tool_anchor"]
        assert any(early[x.call_id] for x in anchored), name
        assert all(early[x.call_id] is None for x in calls if x.session_source == "conversation"), name


def test_codex_capture_one_session() -> None:
    c = Counter()
    calls = classified_calls("codex.pcap", c)
    assert len(calls) == 2
    sid = "01a20954-fc29-7ce1-97c5-9e20dcad413d"
    for call in calls:
        assert call.agent_kind == "codex-cli"
        assert (call.session_source, call.native_session_id) == ("header", sid)
        assert call.native_turn_id == "01a20954-fc56-76a3-a87f-d43296367c2a"
        assert call.subagent is None and not call.is_auxiliary
    assert calls[0].session_id == calls[1].session_id == ids.session_id("codex.pcap", "codex-cli", sid)
    assert [(x.x_user_turn_start, x.x_terminal) for x in calls] == [(True, False), (False, True)]


def test_litellm_proxy_legs_share_output_fingerprints() -> None:
    """Every client→proxy call with output has an upstream leg with the same output fingerprint, even
    where LiteLLM translated openai-chat into anthropic or ollama (the §9.2 content match)."""
    calls = classified_calls("litellm_proxy.pcap", Counter())
    outer = [x for x in calls if x.server_port == 4000 and x.x_output_fingerprint]
    inner = {x.x_output_fingerprint for x in calls if x.server_port != 4000}
    assert len(outer) >= 5
    assert all(x.x_output_fingerprint in inner for x in outer)


@pytest.mark.parametrize("seed", [1, 2])
def test_synth_agent_sessions_match_truth(tmp_path: Path, seed: int) -> None:
    """The synthesizer's agent_sessions scenario (Claude Code, Codex and a generic tool agent, several
    concurrent sessions, title calls) against its ground truth: kind, native session, auxiliary status
    and which calls open a turn."""
    import sys

    root = Path(__file__).resolve().parents[2]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from testdata.synth.__main__ import main as synth_main

    pcap, truth = tmp_path / "agents.pcap", tmp_path / "agents.truth.jsonl"
    assert (
        synth_main(
            ["scenario", "agent_sessions", "-o", str(pcap), "--truth", str(truth), "--seed", str(seed)]
        )
        == 0
    )
    lines = [orjson.loads(line) for line in truth.read_bytes().splitlines() if line.strip()]
    by_key = {(x["client_port"], round(x["request_start"], 6)): x["agent"] for x in lines}
    c = Counter()
    calls = classified_calls("agents.pcap", c, folder=tmp_path)
    assert len(calls) == len(lines)
    sessions: dict[str, set[str | None]] = {}
    for call in calls:
        agent = by_key[(call.client_port, round(call.request_start or 0, 6))]
        assert call.agent_kind == agent["kind"]
        assert call.native_session_id == agent["session"]
        assert call.is_auxiliary == agent["auxiliary"]
        if not agent["auxiliary"]:
            assert call.x_user_turn_start == (agent["step"] == 0)
        sessions.setdefault(agent["session"], set()).add(call.session_id)
    assert all(len(v) == 1 and None not in v for v in sessions.values())
    assert c["calls_auxiliary"] == sum(1 for x in lines if x["agent"]["auxiliary"])
