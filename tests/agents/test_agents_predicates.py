"""User-turn-start (§4) and terminal (§5) predicates for the six wire APIs, and their main-agent gating."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from agent_helpers import make_exchange

from heron_core.agents import classify_call
from heron_core.agents.predicates import is_terminal_finish, is_user_turn_start
from heron_core.records import Call
from heron_core.wire.decode import decode_call

IMG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def call_for(wire_api: str, req: Any, operation: str = "chat", finish: str = "stop") -> Call:
    return Call(
        call_id="c1", source_id="test", wire_api=wire_api, operation=operation, x_request=req, finish=finish
    )


U = {"role": "user", "content": "Fix the failing test in tests/test_parser.py"}

CASES: list[tuple[str, str, Any, bool]] = [
    # anthropic
    ("anthropic", "user text", {"messages": [U]}, True),
    (
        "anthropic",
        "user text blocks",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                        {"type": "text", "text": "go"},
                    ],
                }
            ]
        },
        True,
    ),
    (
        "anthropic",
        "tool_result last",
        {
            "messages": [
                U,
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_01A", "name": "Read", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "file text"}],
                },
            ]
        },
        False,
    ),
    (
        "anthropic",
        "tool_result plus text",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "ok"},
                        {"type": "text", "text": "also fix the lint"},
                    ],
                }
            ]
        },
        False,
    ),
    (
        "anthropic",
        "only a system reminder",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": "<system-reminder>\nToday's date is 2026-11-23.\n</system-reminder>",
                        }
                    ],
                }
            ]
        },
        False,
    ),
    (
        "anthropic",
        "image only",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": IMG_B64},
                        }
                    ],
                }
            ]
        },
        True,
    ),
    (
        "anthropic",
        "document only",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "document", "source": {"type": "url", "url": "https://example.test/a.pdf"}}
                    ],
                }
            ]
        },
        True,
    ),
    (
        "anthropic",
        "trailing system skipped",
        {"messages": [U, {"role": "system", "content": "be brief"}]},
        True,
    ),
    ("anthropic", "assistant prefill last", {"messages": [U, {"role": "assistant", "content": "{"}]}, False),
    ("anthropic", "no messages", {"messages": []}, False),
    # openai-chat
    ("openai-chat", "user text", {"messages": [{"role": "system", "content": "sys"}, U]}, True),
    (
        "openai-chat",
        "tool last",
        {
            "messages": [
                U,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "42"},
            ]
        },
        False,
    ),
    (
        "openai-chat",
        "legacy function last",
        {"messages": [U, {"role": "function", "name": "f", "content": "42"}]},
        False,
    ),
    (
        "openai-chat",
        "image part only",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + IMG_B64}}
                    ],
                }
            ]
        },
        True,
    ),
    ("openai-chat", "blank user text", {"messages": [{"role": "user", "content": "   "}]}, False),
    ("openai-chat", "assistant last", {"messages": [U, {"role": "assistant", "content": "Sure"}]}, False),
    # openai-responses
    ("openai-responses", "string input", {"input": "Say hello"}, True),
    (
        "openai-responses",
        "user message last",
        {
            "input": [
                {
                    "type": "message",
                    "role": "developer",
                    "content": [{"type": "input_text", "text": "rules"}],
                },
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello"}]},
            ]
        },
        True,
    ),
    ("openai-responses", "typeless user item", {"input": [{"role": "user", "content": "hi"}]}, True),
    (
        "openai-responses",
        "function_call_output last",
        {
            "input": [
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "run ls"}]},
                {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
            ]
        },
        False,
    ),
    (
        "openai-responses",
        "custom_tool_call_output last",
        {"input": [{"type": "custom_tool_call_output", "call_id": "call_2", "output": "done"}]},
        False,
    ),
    (
        "openai-responses",
        "function_call last",
        {"input": [{"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{}"}]},
        False,
    ),
    (
        "openai-responses",
        "reasoning last",
        {"input": [{"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"}]},
        False,
    ),
    # gemini (bare and code-assist envelope)
    ("gemini", "user text", {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}, True),
    ("gemini", "role omitted", {"contents": [{"parts": [{"text": "hello"}]}]}, True),
    (
        "gemini",
        "functionResponse only",
        {
            "contents": [
                {"role": "user", "parts": [{"text": "list files"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "ls", "args": {}}}]},
                {
                    "role": "user",
                    "parts": [{"functionResponse": {"name": "ls", "response": {"output": "a"}}}],
                },
            ]
        },
        False,
    ),
    (
        "gemini",
        "inlineData",
        {
            "contents": [
                {"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": IMG_B64}}]}
            ]
        },
        True,
    ),
    (
        "gemini",
        "fileData",
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [{"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/a.pdf"}}],
                }
            ]
        },
        True,
    ),
    ("gemini", "blank text", {"contents": [{"role": "user", "parts": [{"text": "  \n"}]}]}, False),
    (
        "gemini",
        "model last",
        {
            "contents": [
                {"role": "user", "parts": [{"text": "hi"}]},
                {"role": "model", "parts": [{"text": "Hello"}]},
            ]
        },
        False,
    ),
    (
        "gemini",
        "envelope",
        {
            "model": "gemini-2.5-pro",
            "user_prompt_id": "abc########1",
            "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        },
        True,
    ),
    # ollama chat
    ("ollama", "user text", {"model": "llama3.2", "messages": [U]}, True),
    (
        "ollama",
        "images only",
        {"model": "llava", "messages": [{"role": "user", "content": "", "images": [IMG_B64]}]},
        True,
    ),
    (
        "ollama",
        "tool last",
        {
            "model": "llama3.2",
            "messages": [
                U,
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
                },
                {"role": "tool", "content": "12 C", "tool_name": "get_weather"},
            ],
        },
        False,
    ),
]


@pytest.mark.parametrize(("api", "label", "req", "expected"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_user_turn_start(api: str, label: str, req: Any, expected: bool) -> None:
    assert is_user_turn_start(call_for(api, req)) is expected


def test_completions_and_generate_always_start() -> None:
    assert is_user_turn_start(call_for("openai-completions", {"prompt": ""}, "text_completion"))
    assert is_user_turn_start(call_for("ollama", {"prompt": "Why?"}, "text_completion"))
    assert is_user_turn_start(call_for("openai-completions", None, "text_completion"))


def test_non_json_request_is_not_a_start() -> None:
    assert not is_user_turn_start(call_for("anthropic", None))


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("stop", True),
        ("length", True),
        ("content_filter", True),
        ("tool_use", False),
        ("error", False),
        ("aborted", False),
        ("other", False),
    ],
)
def test_terminal_finish(finish: str, expected: bool) -> None:
    assert is_terminal_finish(call_for("openai-chat", {}, finish=finish)) is expected


def test_terminal_needs_main_agent() -> None:
    """Through classify_call: a stop from a sub-agent or an auxiliary call never ends the turn."""
    ex = make_exchange(
        "/v1/responses",
        {"model": "gpt-5-codex", "input": "review the diff"},
        headers=[("originator", "codex_exec"), ("x-openai-subagent", "review"), ("session_id", "s1")],
        response={
            "id": "resp_1",
            "object": "response",
            "status": "completed",
            "model": "gpt-5-codex",
            "output": [
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "LGTM"}]}
            ],
        },
    )
    c = Counter()
    call = decode_call(ex, c)
    assert call is not None and call.finish == "stop"
    classify_call(call, ex, c)
    assert call.subagent == "review"
    assert not call.x_terminal and not call.x_user_turn_start


def test_tool_use_with_stop_raw_is_not_terminal() -> None:
    """A server reporting finish_reason 'stop' with tool calls: finish is already tool_use (§5)."""
    ex = make_exchange(
        "/v1/chat/completions",
        {"model": "qwen3", "messages": [{"role": "user", "content": "ls"}]},
        response={
            "id": "x",
            "object": "chat.completion",
            "model": "qwen3",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [
                            {
                                "id": "call_q1",
                                "type": "function",
                                "function": {"name": "shell", "arguments": '{"cmd":"ls"}'},
                            }
                        ],
                    },
                }
            ],
        },
    )
    c = Counter()
    call = decode_call(ex, c)
    assert call is not None
    classify_call(call, ex, c)
    assert call.finish == "tool_use" and not call.x_terminal
    assert call.x_user_turn_start
