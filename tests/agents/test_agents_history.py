"""First-assistant-message extraction (§3.2): ids agree with the wire decoders, per-API shapes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from agent_helpers import chat_completion, make_exchange, run

from heron_core.agents import classify_call
from heron_core.agents.history import (
    RESPONSES_CLIENT_CALLS,
    first_assistant,
    gemini_call_ids,
    ollama_call_ids,
    openai_chat_call_ids,
)
from heron_core.records import Call
from heron_core.wire import gemini as wire_gemini
from heron_core.wire import ollama as wire_ollama
from heron_core.wire import openai_responses
from heron_core.wire.decode import decode_call


def call_for(wire_api: str, req: Any, **kw: Any) -> Call:
    return Call(call_id="c1", source_id="test", wire_api=wire_api, operation="chat", x_request=req, **kw)


def test_responses_client_call_types_match_decoder() -> None:
    assert RESPONSES_CLIENT_CALLS == openai_responses.CLIENT_CALL_TYPES


def test_gemini_ids_match_decoder() -> None:
    parts = [
        {"text": "I'll check both."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo"}}, "thoughtSignature": "Cs0B"},
        {"functionCall": {"id": "fc-explicit", "name": "noop", "args": {}}},
    ]
    assert gemini_call_ids(parts) == [tid for tid, _name in wire_gemini.message_call_ids(parts)]
    assert gemini_call_ids(parts)[2] == "fc-explicit"


def test_ollama_ids_match_decoder() -> None:
    msg = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"function": {"index": 1, "name": "get_weather", "arguments": {"city": "Tokyo"}}},
        ],
    }
    assert ollama_call_ids(msg) == [tid for tid, _name in wire_ollama.message_call_ids(msg)]


def test_openai_chat_idless_ids_match_decoder() -> None:
    """A local server that sends tool calls without ids: the history message resent on the next call
    yields the pseudo ids the decoder gave the response."""
    msg = {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
        ],
    }
    ex = make_exchange(
        "/v1/chat/completions",
        {"model": "qwen3", "messages": [{"role": "user", "content": "w?"}]},
        response={
            "id": "x",
            "object": "chat.completion",
            "model": "qwen3",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": msg}],
        },
    )
    call = decode_call(ex, Counter())
    assert call is not None
    assert openai_chat_call_ids(msg) == [tc.id for tc in call.tool_calls]


def test_ollama_pseudo_anchor_stable_across_calls() -> None:
    asked = {"role": "user", "content": "What's the weather in Paris?"}
    resp_msg = {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
    }
    call1 = run(
        "/api/chat",
        {
            "model": "llama3.2",
            "messages": [asked],
            "stream": False,
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
        },
        headers=[("Content-Type", "application/json"), ("User-Agent", "ollama-python/0.6.0")],
        host="127.0.0.1:11434",
        response={
            "model": "llama3.2",
            "created_at": "2026-11-23T10:00:00Z",
            "message": resp_msg,
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 120,
            "eval_count": 18,
        },
    )
    call2 = run(
        "/api/chat",
        {
            "model": "llama3.2",
            "messages": [asked, resp_msg, {"role": "tool", "content": "12 C", "tool_name": "get_weather"}],
            "stream": False,
        },
        headers=[("Content-Type", "application/json")],
        host="127.0.0.1:11434",
        exchange_id="ex-2",
        response={
            "model": "llama3.2",
            "created_at": "2026-11-23T10:00:01Z",
            "message": {"role": "assistant", "content": "It is 12 C in Paris."},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 150,
            "eval_count": 9,
        },
    )
    assert call1.native_session_id == call2.native_session_id == call1.tool_calls[0].id
    assert call1.native_session_id.startswith("tu-")
    assert call1.session_id == call2.session_id


def test_anthropic_first_assistant_text_and_ids() -> None:
    req = {
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_01A", "name": "Read", "input": {}},
                    {"type": "tool_use", "id": "toolu_01B", "name": "Read", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "x"}],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_01C", "name": "Bash", "input": {}}],
            },
        ]
    }
    fa = first_assistant(call_for("anthropic", req))
    assert fa is not None and fa.from_history
    assert fa.tool_ids == ("toolu_01A", "toolu_01B") and fa.anchor == "toolu_01A"
    assert fa.text == "Let me look."


def test_responses_first_output_group() -> None:
    """The first model output runs from the first model item to the next user message: its first
    client tool call is the anchor even after a reasoning item and an assistant message."""
    items = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Running it."}]},
        {"type": "custom_tool_call", "call_id": "call_patch01", "name": "apply_patch", "input": "*** Begin"},
        {"type": "custom_tool_call_output", "call_id": "call_patch01", "output": "ok"},
        {"type": "function_call", "call_id": "call_later", "name": "shell", "arguments": "{}"},
    ]
    fa = first_assistant(call_for("openai-responses", {"input": items}))
    assert fa is not None and fa.anchor == "call_patch01"
    text_first = [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello!"}]},
        {"type": "message", "role": "user", "content": "run ls"},
        {"type": "local_shell_call", "call_id": "call_ls", "action": {"command": ["ls"]}},
    ]
    fa = first_assistant(call_for("openai-responses", {"input": text_first}))
    assert fa is not None and fa.anchor is None and fa.text == "Hello!"


def test_response_used_when_history_has_no_assistant() -> None:
    call = run(
        "/v1/chat/completions",
        {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]},
        response=chat_completion("Hello! How can I help?"),
    )
    fa = first_assistant(call)
    assert (
        fa is not None and not fa.from_history and fa.text == "Hello! How can I help?" and fa.anchor is None
    )


def test_garbage_request_never_raises() -> None:
    """Odd shapes are skipped, not errors: classify_call counts nothing in extract_errors for them."""
    for body in (
        {"messages": "nope"},
        {"messages": [1, None, {"role": "assistant", "content": 5}]},
        {"input": {"x": 1}},
        {"input": [None, {"type": 3}, {"role": "assistant", "content": 7}]},
        {"contents": [{"role": "model", "parts": "x"}]},
        {"request": {"contents": 5}},
    ):
        for path in (
            "/v1/messages",
            "/v1/chat/completions",
            "/v1/responses",
            "/v1beta/models/gemini-2.5-pro:generateContent",
            "/api/chat",
        ):
            for ua in ("GeminiCLI/0.9.0", "claude-cli/2.1.330", "codex_exec/0.169.0", "python-httpx/0.28"):
                ex = make_exchange(
                    path,
                    body,
                    response={"weird": True},
                    headers=[
                        ("Content-Type", "application/json"),
                        ("User-Agent", ua),
                        ("x-codex-turn-metadata", "%%%not-base64%%%"),
                    ],
                )
                call = decode_call(ex, Counter())
                if call is None:
                    continue
                c = Counter()
                classify_call(call, ex, c)
                assert c["extract_errors"] == 0, (path, body, ua)
