"""Fixtures of the REST API tests: a store of every test capture run through the real engine, clients
with and without a token, a hand-made store for sub-agents and capped bodies, and a fake running engine
for the live-run behaviour (in-progress turns, in-flight calls, sources, events)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from heron_core.config import Config
from heron_core.engine import Engine
from heron_core.messages import CallStarted
from heron_core.store.db import open_store
from heron_tui.api import create_app

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted((ROOT / "testdata" / "captures").glob("*.pcap"))
TOKEN = "s3cret-token"


def ingest(paths: list[Path], store: Any = None) -> Any:
    store = store if store is not None else open_store(None)
    Engine(store, Config()).ingest([str(p) for p in paths], [p.stem for p in paths])
    return store


@pytest.fixture(scope="session")
def capture_store():
    """All of testdata/captures through the engine: calls, hop pairs, turns, sessions, tools, insights."""
    store = ingest(CAPTURES)
    yield store
    store.close()


@pytest.fixture(scope="session")
def client(capture_store):
    return TestClient(create_app(capture_store))


@pytest.fixture(scope="session")
def auth_client(capture_store):
    return TestClient(create_app(capture_store, token=TOKEN))


class FakePipeline:
    """The pipeline surface the API reads (watermarks, drained sources, spec, result)."""

    class spec:
        kind = "live"

    class result:
        outcomes: tuple[Any, ...] = ()

    def __init__(self, marks: dict[str, int | None], drained: set[str] | None = None) -> None:
        self.marks = marks
        self.drained = drained or set()

    def watermarks(self) -> dict[str, int | None]:
        return dict(self.marks)

    def drained_sources(self) -> set[str]:
        return set(self.drained)


class FakeAssembler:
    def __init__(self) -> None:
        self.turns: list[dict[str, Any]] = []
        self.flight: list[CallStarted] = []

    def open_turns(self) -> list[dict[str, Any]]:
        return list(self.turns)

    def in_flight(self) -> list[CallStarted]:
        return list(self.flight)


class FakeEngine:
    """A running engine as the API sees it: ``pipeline``, ``assembler``, ``cfg``, ``pipeline_snapshot``."""

    def __init__(self, watermark_s: float, source_id: str = "live0") -> None:
        self.cfg = Config()
        self.pipeline = FakePipeline({source_id: int(watermark_s * 1e6)})
        self.assembler = FakeAssembler()
        self.counters: Counter = Counter(packets_read=10)
        self.snapshots = 0

    def pipeline_snapshot(self, tracker: Any = None) -> dict[str, Any]:
        from heron_core.parallel.stats import HealthTracker, snapshot

        self.snapshots += 1
        return snapshot(self.counters.copy(), [], [], tracker or HealthTracker(), lossy=True)


ANTHROPIC_REQ = {"model": "m-1", "system": "You are terse.", "max_tokens": 100,
                 "tools": [{"name": "Task", "description": "spawn", "input_schema": {"type": "object"}}],
                 "messages": [{"role": "user", "content": "explore the repo"}]}


def _resp(text: str | None = None, tool: tuple[str, str] | None = None) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text:
        content.append({"type": "text", "text": text})
    if tool:
        content.append({"type": "tool_use", "id": tool[0], "name": tool[1], "input": {"prompt": "look"}})
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "m-1", "content": content,
            "stop_reason": "tool_use" if tool else "end_turn", "usage": {"input_tokens": 10, "output_tokens": 5}}


@pytest.fixture(scope="session")
def agent_store():
    """A hand-made store: a turn whose main call spawns a sub-agent through a Task tool call (tool span →
    sub-agent span), a session whose id came from a header (conversation id), one in a tool-anchored
    session (none), a call without a turn, and a capped body."""
    from heron_core.records import ToolCall
    from tests.export.store_builder import StoreBuilder

    b = StoreBuilder()
    task = ToolCall("toolu_task", "Task", {"prompt": "look"})
    read = ToolCall("toolu_read", "Read", {"path": "/etc/hosts"})
    c1 = b.add_call("c1", "anthropic", ANTHROPIC_REQ, _resp(tool=("toolu_task", "Task")), start=0.0,
                    tool_calls=[task], tool_call_count=1, finish="tool_use", finish_reason_raw="tool_use",
                    native_session_id="native-1", session_source="header", response_id="msg_1",
                    provider="anthropic", operation="chat", cache_read_tokens=40, reasoning_tokens=3)
    c2 = b.add_call("c2", "anthropic", ANTHROPIC_REQ, _resp(tool=("toolu_read", "Read")), start=1.5,
                    subagent="Explore", parent_tool_call_id="toolu_task", tool_calls=[read], tool_call_count=1,
                    finish="tool_use")
    c3 = b.add_call("c3", "anthropic", ANTHROPIC_REQ, _resp("found it"), start=3.0, subagent="Explore",
                    parent_tool_call_id="toolu_task")
    c4 = b.add_call("c4", "anthropic", ANTHROPIC_REQ, _resp("all done"), start=5.0)
    b.add_tool_call(c1, task, 0, result=c4, turn_id="t1")
    b.add_tool_call(c2, read, 0, result=c3, status="error", turn_id="t1")
    b.add_turn("t1", [c1, c2, c3, c4], session_id="s-1")
    e1 = b.add_call("e1", "anthropic", ANTHROPIC_REQ, None, start=10.0, status_code=529, ok=False,
                    finish="error", error={"source": "http", "type": "overloaded_error", "message": "Overloaded"},
                    session_id="s-2", ttft=None)
    b.add_turn("t2", [e1], session_id="s-2", status="incomplete", final=e1)
    b.add_call("lone", "openai-chat", {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]},
               {"id": "x", "choices": [{"message": {"role": "assistant", "content": "yo"}}]}, start=20.0,
               session_id=None, provider=None, host="10.0.0.9:8000", server="10.0.0.9:8000", server_ip="10.0.0.9",
               server_port=8000)
    b.add_call("big", "anthropic", {"pad": "x" * 5000}, _resp("y" * 5000), start=30.0, cap=512, session_id=None)
    for sid, src in (("s-1", "header"), ("s-2", "tool_anchor")):
        b.writer.add_rows("sessions", [{"session_id": sid, "native_session_id": "native-" + sid,
                                        "session_source": src, "source_id": "src", "agent_kind": "claude-cli",
                                        "first_start": 1.0, "last_end": 2.0, "turn_count": 1}])
    b.flush()
    yield b.store
    b.store.close()
