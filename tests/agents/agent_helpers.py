"""Builders for agent-classification tests: hand-made exchanges with the headers and bodies real clients
send, run through ``decode_call`` and ``classify_call`` exactly as the decode worker does.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from heron_core.agents import classify_call
from heron_core.records import Call, Exchange, SseEvent
from heron_core.wire.decode import decode_call

T0 = 1_795_452_889_851_412  # request_start, µs
SOURCE = "test"

CLAUDE_UA = "claude-cli/2.1.330 (external, sdk-cli)"
CODEX_UA = "codex_exec/0.169.0 (Debian 12.0.0; x86_64) dumb (codex_exec; 0.169.0)"


def claude_headers(session_id: str | None = None) -> list[tuple[str, str]]:
    """Claude Code 2.1.330's request head (claude_code.pcap), optionally without the session header."""
    hs = [("Accept", "application/json"), ("Content-Type", "application/json"), ("User-Agent", CLAUDE_UA)]
    if session_id is not None:
        hs.append(("X-Claude-Code-Session-Id", session_id))
    hs += [
        ("X-Stainless-Lang", "js"),
        ("X-Stainless-Package-Version", "0.128.0"),
        ("X-Stainless-Retry-Count", "0"),
        ("X-Stainless-Runtime", "node"),
        ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"),
        ("anthropic-dangerous-direct-browser-access", "true"),
        ("anthropic-version", "2023-06-01"),
        ("x-api-key", "[REDACTED:1a2b3c4d]"),
        ("x-app", "cli"),
        ("Connection", "keep-alive"),
    ]
    return hs


def codex_headers(extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """Codex 0.169.0's request head without its session headers (tests add the ones they exercise)."""
    return [
        ("x-codex-beta-features", "remote_compaction_v2"),
        ("accept", "text/event-stream"),
        ("content-type", "application/json"),
        ("authorization", "Bearer [REDACTED:0f0e0d0c]"),
        ("originator", "codex_exec"),
        ("user-agent", CODEX_UA),
        *(extra or []),
    ]


def make_exchange(
    path: str,
    request: Any,
    *,
    headers: list[tuple[str, str]] | None = None,
    response: Any = None,
    sse: list[tuple[str | None, Any]] | None = None,
    ndjson: list[Any] | None = None,
    status: int = 200,
    host: str = "127.0.0.1:18109",
    exchange_id: str = "ex-1",
    start_us: int = T0,
) -> Exchange:
    """An exchange as the HTTP stage hands it over: bodies decoded, stream split into units."""
    req = request if isinstance(request, bytes) else orjson.dumps(request)
    hs = [("Host", host), *(headers if headers is not None else [("Content-Type", "application/json")])]
    ex = Exchange(
        exchange_id=exchange_id,
        source_id=SOURCE,
        ordinal=0,
        client_ip="127.0.0.1",
        client_port=40996,
        server_ip="127.0.0.1",
        server_port=18109,
        method="POST",
        path=path,
        http_version="HTTP/1.1",
        request_headers=hs,
        request_body=req,
        request_body_bytes=len(req),
        request_wire_bytes=len(req) + 600,
        request_start=start_us,
        request_end=start_us + 1_000,
        status_code=status,
        response_start=start_us + 80_000,
    )
    if sse is not None:
        units = [
            SseEvent(ev, data if isinstance(data, str) else orjson.dumps(data).decode(), None)
            for ev, data in sse
        ]
        ex.stream_format = "sse"
        ex.stream_units = [(start_us + 90_000 + 5_000 * i, u) for i, u in enumerate(units)]
        ex.response_body = "".join(
            (f"event: {u.event}\n" if u.event else "") + f"data: {u.data}\n\n" for u in units
        ).encode()
        ex.response_headers = [("Content-Type", "text/event-stream")]
        ex.first_chunk = ex.stream_units[0][0]
    elif ndjson is not None:
        ex.stream_format = "ndjson"
        ex.stream_units = [(start_us + 90_000 + 5_000 * i, u) for i, u in enumerate(ndjson)]
        ex.response_body = b"\n".join(orjson.dumps(u) for u in ndjson)
        ex.response_headers = [("Content-Type", "application/x-ndjson")]
    else:
        ex.response_body = orjson.dumps(response) if response is not None else b""
        ex.response_headers = [("Content-Type", "application/json")]
    ex.response_body_bytes = len(ex.response_body)
    ex.response_end = start_us + 300_000
    return ex


def classify(ex: Exchange, counters: Counter | None = None) -> Call:
    """decode_call + classify_call, as the decode worker runs them."""
    c = counters if counters is not None else Counter()
    call = decode_call(ex, c)
    assert call is not None, "exchange not detected as an LLM call"
    classify_call(call, ex, c)
    return call


def run(path: str, request: Any, counters: Counter | None = None, **kw: Any) -> Call:
    return classify(make_exchange(path, request, **kw), counters)


def anthropic_message(
    content: list[dict[str, Any]],
    stop_reason: str,
    msg_id: str = "msg_01UYk0MdHt70lM7xFYhqF4Xq",
    model: str = "claude-sonnet-4-6",
) -> dict[str, Any]:
    """A non-streamed Anthropic ``message`` response."""
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 2197,
            "cache_creation_input_tokens": 6590,
            "cache_read_input_tokens": 13180,
            "output_tokens": 12,
        },
    }


def anthropic_tool_use_sse(tool_id: str, name: str, args_json: str) -> list[tuple[str | None, Any]]:
    """The SSE events of a streamed Anthropic response that calls one tool (claude_code.pcap, call 1)."""
    return [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_01gkcUYk9PWzgZNfa6d9ZxYz",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-6",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 2188,
                        "cache_creation_input_tokens": 6561,
                        "cache_read_input_tokens": 13123,
                        "output_tokens": 1,
                    },
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": args_json},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 21},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def chat_completion(
    content: str | None, tool_calls: list[dict[str, Any]] | None = None, finish: str = "stop"
) -> dict[str, Any]:
    """A non-streamed openai-chat ``chat.completion`` response."""
    msg: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-ba9eybVcVCXblIQY8P2DwrdO7BpqS",
        "object": "chat.completion",
        "created": 1795452844,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": msg, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": 57, "completion_tokens": 17, "total_tokens": 74},
    }


def responses_object(output: list[dict[str, Any]], resp_id: str = "resp_cd03d3d494e68b51") -> dict[str, Any]:
    """A completed, non-streamed Responses ``response`` object."""
    return {
        "id": resp_id,
        "object": "response",
        "created_at": 1795452894,
        "status": "completed",
        "model": "gpt-5-codex",
        "output": output,
        "usage": {
            "input_tokens": 9991,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 38,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 10029,
        },
    }


def output_message(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_6c87",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def gemini_response(parts: list[dict[str, Any]], finish: str = "STOP") -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
        "usageMetadata": {"promptTokenCount": 812, "candidatesTokenCount": 24, "totalTokenCount": 836},
        "modelVersion": "gemini-2.5-pro",
        "responseId": "x2MhaZ3tKqXjnvgP",
    }
