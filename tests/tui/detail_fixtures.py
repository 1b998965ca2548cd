"""Stores and a host app for the detail-screen tests.

``timeline_store`` is a hand-made turn with every timeline feature (tool waits, a sub-agent spawned by a
tool, an error, a retry, a missing tool result, an aborted call); ``anthropic_store`` one streamed
anthropic call with thinking and tools, stored exactly as an ingest stores it. Both are deterministic,
so they also back the snapshot tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.screen import Screen

from heron_core.records import ToolCall
from tests.export.store_builder import StoreBuilder

ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "stream": True,
    "system": [{"type": "text", "text": "You are a coding agent."}],
    "tools": [{"name": "Read", "description": "read a file", "input_schema": {"type": "object"}}],
    "messages": [{"role": "user", "content": "What is in README.md?"}],
}
ANTHROPIC_RESPONSE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "I should read the file first.", "signature": "c2ln"},
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_01READ", "name": "Read", "input": {"path": "README.md"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 50, "output_tokens": 20},
}
ANTHROPIC_SSE = "".join(
    f"event: {name}\ndata: {data}\n\n"
    for name, data in [
        (
            "message_start",
            '{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant",'
            '"model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":50,"output_tokens":1}}}',
        ),
        (
            "content_block_start",
            '{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}',
        ),
        (
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta",'
            '"thinking":"I should read the file first."}}',
        ),
        ("content_block_stop", '{"type":"content_block_stop","index":0}'),
        (
            "content_block_start",
            '{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}',
        ),
        (
            "content_block_delta",
            '{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me look."}}',
        ),
        ("content_block_stop", '{"type":"content_block_stop","index":1}'),
        (
            "content_block_start",
            '{"type":"content_block_start","index":2,"content_block":{"type":"tool_use",'
            '"id":"toolu_01READ","name":"Read","input":{}}}',
        ),
        (
            "content_block_delta",
            '{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta",'
            '"partial_json":"{\\"path\\": \\"README.md\\"}"}}',
        ),
        ("content_block_stop", '{"type":"content_block_stop","index":2}'),
        (
            "message_delta",
            '{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":20}}',
        ),
        ("message_stop", '{"type":"message_stop"}'),
    ]
)


def anthropic_store(**kw: Any) -> StoreBuilder:
    b = StoreBuilder()
    call = b.add_call(
        "call-anthropic-1",
        "anthropic",
        ANTHROPIC_REQUEST,
        ANTHROPIC_RESPONSE,
        raw_response=ANTHROPIC_SSE,
        stream_format="sse",
        finish="tool_use",
        finish_reason_raw="tool_use",
        model="claude-sonnet-4-5",
        duration=2.0,
        ttft=0.6,
        tool_calls=[ToolCall("toolu_01READ", "Read", {"path": "README.md"})],
        tool_call_count=1,
        response_headers=[("Content-Type", "text/event-stream"), ("request-id", "req_1")],
        **kw,
    )
    b.add_turn("turn-anthropic", [call], status="incomplete")
    return b.flush()


CHAT = {"model": "m", "messages": [{"role": "user", "content": "go"}]}
ANSWER = {"choices": [{"message": {"role": "assistant", "content": "ok"}}]}


def timeline_store() -> StoreBuilder:
    """Turn ``t-1`` over 10 s: m1 issues Task + Read; sub-agent calls s1, s2 run under Task; m2 fails
    (529); m3 retries it and issues Bash, whose result never comes; m4 is aborted."""
    b = StoreBuilder()
    task, read, bash = (
        ToolCall("toolu_task", "Task", {"prompt": "explore"}),
        ToolCall("toolu_read", "Read", {"path": "a"}),
        ToolCall("toolu_bash", "Bash", {"c": "x"}),
    )
    m1 = b.add_call(
        "m1",
        "anthropic",
        CHAT,
        ANSWER,
        start=0.0,
        duration=1.0,
        ttft=0.4,
        finish="tool_use",
        tool_calls=[task, read],
    )
    s1 = b.add_call(
        "s1",
        "anthropic",
        CHAT,
        ANSWER,
        start=1.5,
        duration=1.5,
        ttft=0.25,
        subagent="Explore",
        parent_tool_call_id="toolu_task",
        finish="tool_use",
    )
    s2 = b.add_call("s2", "anthropic", CHAT, ANSWER, start=3.5, duration=1.0, ttft=0.5, subagent="Explore")
    m2 = b.add_call(
        "m2",
        "anthropic",
        CHAT,
        None,
        start=5.0,
        duration=1.0,
        ttft=None,
        status_code=529,
        finish="error",
        ok=False,
        raw_response=b'{"type":"error"}',
        error={"source": "http", "type": "overloaded_error", "message": "Overloaded"},
    )
    m3 = b.add_call(
        "m3",
        "anthropic",
        CHAT,
        ANSWER,
        start=6.5,
        duration=1.0,
        ttft=0.3,
        attempt=2,
        retry_of="m2",
        finish="tool_use",
        tool_calls=[bash],
    )
    m4 = b.add_call(
        "m4",
        "anthropic",
        CHAT,
        ANSWER,
        start=8.0,
        duration=2.0,
        ttft=0.5,
        finish="aborted",
        ok=False,
        error={"source": "network", "type": "reset", "message": "connection reset"},
    )
    b.add_turn(
        "t-1",
        [m1, s1, s2, m2, m3, m4],
        status="incomplete",
        final=m4,
        user_input_preview="fix the bug",
        final_answer_preview=None,
        first_response_ms=400.0,
    )
    b.add_tool_call(m1, task, 0, result=m2, turn_id="t-1")
    b.add_tool_call(m1, read, 1, result=m2, turn_id="t-1")
    b.add_tool_call(m3, bash, 0, status="missing", turn_id="t-1")
    b.add_insight("i-1", "retry_storm", "warning", "3 attempts of one request", ["m2", "m3"], turn_id="t-1")
    b.add_insight("i-2", "stalled_tool", "info", "Bash never returned", ["m3"], turn_id="t-1")
    return b.flush()


class Host(App):
    """A bare app that shows one screen, as the real app pushes it."""

    def __init__(self, make_screen: Callable[[], Screen]) -> None:
        super().__init__()
        self._make_screen = make_screen

    def on_mount(self) -> None:
        self.push_screen(self._make_screen())
