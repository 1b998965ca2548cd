"""generic profile (§3.1–§3.3), one-shot calls, and the output fingerprint (§9.2)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from agent_helpers import anthropic_message, chat_completion, run

from heron_core import ids
from heron_core.agents.fingerprint import conversation_key

CHAT_PATH = "/v1/chat/completions"
SDK_HEADERS = [
    ("Content-Type", "application/json"),
    ("User-Agent", "OpenAI/Python 2.54.0"),
    ("X-Stainless-Lang", "python"),
    ("X-Stainless-Package-Version", "2.54.0"),
    ("Authorization", "Bearer [REDACTED:a1b2c3d4]"),
]
WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
SYSTEM = {"role": "system", "content": "You are a weather assistant."}
USER1 = {"role": "user", "content": "What's the weather in Paris and Tokyo?"}
CALLS = [
    {
        "id": "call_ut71XEH3BjeGo6lXJlH8Deew",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'},
    },
    {
        "id": "call_WusG3J70T2QGG2fzwZEXzO1P",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Tokyo", "unit": "c"}'},
    },
]


def chat(messages: list[dict[str, Any]], tools: bool = True) -> dict[str, Any]:
    b: dict[str, Any] = {"messages": messages, "model": "gpt-4.1", "temperature": 0.2}
    if tools:
        b["tools"] = WEATHER_TOOLS
    return b


def test_tool_anchor_conversation_across_two_calls() -> None:
    c = Counter()
    call1 = run(
        CHAT_PATH,
        chat([SYSTEM, USER1]),
        c,
        headers=SDK_HEADERS,
        response=chat_completion(None, CALLS, "tool_calls"),
    )
    history = [
        SYSTEM,
        USER1,
        {"role": "assistant", "content": None, "tool_calls": CALLS},
        {"role": "tool", "tool_call_id": CALLS[0]["id"], "content": "12 °C, cloudy"},
        {"role": "tool", "tool_call_id": CALLS[1]["id"], "content": "18 °C, sunny"},
    ]
    call2 = run(
        CHAT_PATH,
        chat(history),
        c,
        headers=SDK_HEADERS,
        exchange_id="ex-2",
        response=chat_completion("Paris: 12 °C and cloudy. Tokyo: 18 °C and sunny."),
    )
    anchor = CALLS[0]["id"]
    for call in (call1, call2):
        assert (call.agent_kind, call.session_source, call.native_session_id) == (
            "generic",
            "tool_anchor",
            anchor,
        )
        assert call.session_id == ids.session_id("test", "generic", anchor)
        assert not call.x_tentative
    assert (call1.x_user_turn_start, call1.x_terminal) == (True, False)
    assert (call2.x_user_turn_start, call2.x_terminal) == (False, True)
    assert c["calls_by_agent_kind.generic"] == 2


def test_text_only_conversation_tentative_then_confirmed() -> None:
    answer = "Paris is the capital of France."
    call1 = run(
        CHAT_PATH,
        chat([SYSTEM, {"role": "user", "content": "What is the capital of France?"}], False),
        headers=SDK_HEADERS,
        response=chat_completion(answer),
    )
    call2 = run(
        CHAT_PATH,
        chat(
            [
                SYSTEM,
                {"role": "user", "content": "What is the capital of France?"},
                {"role": "assistant", "content": answer},
                {"role": "user", "content": "And of Italy?"},
            ],
            False,
        ),
        headers=SDK_HEADERS,
        exchange_id="ex-2",
        response=chat_completion("Rome."),
    )
    assert call1.agent_kind == call2.agent_kind == "generic"
    assert call1.session_source == call2.session_source == "conversation"
    assert call1.native_session_id == call2.native_session_id
    assert call1.native_session_id == conversation_key(
        "You are a weather assistant.", "What is the capital of France?", answer
    )
    assert call1.session_id == call2.session_id
    assert call1.x_tentative and not call2.x_tentative
    assert call1.x_user_turn_start and call2.x_user_turn_start  # each user message is a turn


def test_one_shot_sdk_call_stays_tentative() -> None:
    """A single Anthropic SDK call: generic and tentative, so the assembler releases it as a plain call
    unless a later call confirms the conversation."""
    call = run(
        "/v1/messages",
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": "What is a mock server?"}],
        },
        headers=[
            ("Content-Type", "application/json"),
            ("User-Agent", "Anthropic/Python 0.71.0"),
            ("anthropic-version", "2023-06-01"),
        ],
        response=anthropic_message([{"type": "text", "text": "A stand-in for a real server."}], "end_turn"),
    )
    assert call.agent_kind == "generic" and call.x_tentative
    assert call.subagent is None and not call.is_auxiliary


def test_completions_and_ollama_generate_are_not_agents() -> None:
    c = Counter()
    call = run(
        "/v1/completions",
        {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "max_tokens": 5},
        c,
        headers=SDK_HEADERS,
        response={
            "id": "cmpl-1",
            "object": "text_completion",
            "created": 1,
            "model": "gpt-3.5-turbo-instruct",
            "choices": [{"index": 0, "text": "Hi!", "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4},
        },
    )
    assert call.wire_api == "openai-completions"
    assert (call.agent_kind, call.session_id, call.native_session_id, call.session_source) == (None,) * 4
    assert call.x_user_turn_start and call.x_terminal  # predicates still hold for non-agent calls
    assert call.x_output_fingerprint is not None  # hop folding applies to every call
    gen = run(
        "/api/generate",
        {"model": "llama3.2", "prompt": "Why is the sky blue?", "stream": False},
        c,
        headers=[("Content-Type", "application/json")],
        host="127.0.0.1:11434",
        response={
            "model": "llama3.2",
            "created_at": "2026-11-23T10:00:00Z",
            "response": "Rayleigh.",
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 8,
            "eval_count": 3,
        },
    )
    assert gen.wire_api == "ollama" and gen.operation == "text_completion"
    assert gen.agent_kind is None
    assert sum(v for k, v in c.items() if k.startswith("calls_by_agent_kind")) == 0


def test_request_without_any_text_gets_no_session() -> None:
    call = run(
        CHAT_PATH,
        {"model": "gpt-4.1", "messages": []},
        headers=SDK_HEADERS,
        status=400,
        response={"error": {"message": "messages must not be empty", "type": "invalid_request"}},
    )
    assert call.agent_kind is None and call.session_id is None


# --- output fingerprint ------------------------------------------------------------------------------------


def test_output_fingerprint_equal_across_gateway_translation() -> None:
    """The client leg (openai-chat) and the upstream leg (anthropic) of one proxied call: same text and
    tool calls, different ids, models and wire APIs → same fingerprint."""
    outer = run(
        CHAT_PATH,
        chat([USER1]),
        headers=SDK_HEADERS,
        response=chat_completion(
            "Let me check.",
            [
                {
                    "id": "toolu_01Uixi2pLKwATxO5LedqizZs",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"unit":"c","city":"Paris"}'},
                }
            ],
            "tool_calls",
        ),
    )
    inner = run(
        "/v1/messages",
        {"model": "claude-sonnet-4-6", "max_tokens": 4096, "messages": [USER1]},
        headers=[("Content-Type", "application/json"), ("User-Agent", "litellm/1.106.2")],
        response=anthropic_message(
            [
                {"type": "text", "text": "Let me check."},
                {
                    "type": "tool_use",
                    "id": "toolu_01Uixi2pLKwATxO5LedqizZs",
                    "name": "get_weather",
                    "input": {"city": "Paris", "unit": "c"},
                },
            ],
            "tool_use",
        ),
    )
    assert outer.x_output_fingerprint == inner.x_output_fingerprint
    assert len(outer.x_output_fingerprint) == 64
    other = run(
        CHAT_PATH,
        chat([USER1]),
        headers=SDK_HEADERS,
        response=chat_completion(
            "Let me check.",
            [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"unit":"c","city":"Tokyo"}'},
                }
            ],
            "tool_calls",
        ),
    )
    assert other.x_output_fingerprint != outer.x_output_fingerprint


def test_output_fingerprint_none_without_output() -> None:
    call = run(
        CHAT_PATH,
        chat([USER1]),
        headers=SDK_HEADERS,
        status=429,
        response={"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}},
    )
    assert call.x_output_fingerprint is None
    assert call.x_tentative and not call.x_terminal
