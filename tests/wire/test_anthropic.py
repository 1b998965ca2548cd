"""Anthropic Messages decoding (wire-apis.md §3) through ``decode_call``, with literal bodies."""

from __future__ import annotations

import json
from collections import Counter

from heron_core.wire.decode import decode_call

from .helpers import RESP_START, T0, make_exchange, unit_ts

REQUEST = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 32000,
    "stream": True,
    "system": [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": "Be concise.", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nAs you answer, use CLAUDE.md.\n</system-reminder>"},
            {"type": "text", "text": "List the files and read README.md"},
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should list.", "signature": "EqQBCkYIARgC"},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "Bash",
             "input": {"command": "ls"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu01A09q90qw90lq917835lq9",
             "content": [{"type": "text", "text": "README.md\nsetup.py"}]},
            {"type": "text", "text": "<system-reminder>todo list is empty</system-reminder>"},
        ]},
    ],
    "tools": [
        {"name": "Bash", "description": "Run a shell command",
         "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
    ],
    "metadata": {"user_id": "user_abc_account_x_session_5f1e"},
}


def sse(*events: tuple[str, dict]) -> str:
    """Anthropic-style SSE text: ``event: <name>`` then ``data: <json>`` and a blank line."""
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


MESSAGE_START = ("message_start", {"type": "message_start", "message": {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "content": [],
    "model": "claude-sonnet-4-5-20250929", "stop_reason": None, "stop_sequence": None,
    "usage": {"input_tokens": 3, "cache_creation_input_tokens": 2048, "cache_read_input_tokens": 15000,
              "cache_creation": {"ephemeral_5m_input_tokens": 2048, "ephemeral_1h_input_tokens": 0},
              "output_tokens": 1, "service_tier": "standard"}}})
PING = ("ping", {"type": "ping"})

PARALLEL_TOOLS = sse(
    MESSAGE_START,
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
    PING,
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "thinking_delta", "thinking": "Read both "}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "thinking_delta", "thinking": "files."}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "signature_delta", "signature": "EqQBCkYIARgCKkBx"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1,
                             "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "text_delta", "text": "Reading both."}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {
        "type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "Read", "input": {}}}),
    ("content_block_start", {"type": "content_block_start", "index": 3, "content_block": {
        "type": "tool_use", "id": "toolu_01VJ6X6X6X6X6X6X6X6X6X6X", "name": "Read", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2,
                             "delta": {"type": "input_json_delta", "partial_json": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 3,
                             "delta": {"type": "input_json_delta", "partial_json": "{\"file_path\": \"/r"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2,
                             "delta": {"type": "input_json_delta", "partial_json": "{\"file_path\": \"/r"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2,
                             "delta": {"type": "input_json_delta", "partial_json": "epo/README.md\"}"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 3,
                             "delta": {"type": "input_json_delta", "partial_json": "epo/setup.py\"}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 3}),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                       "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                                 "output_tokens": 187}}),
    ("message_stop", {"type": "message_stop"}),
)


def _decode(**kw):
    counters = Counter()
    ex = make_exchange("/v1/messages", kw.pop("request", REQUEST), host="api.anthropic.com",
                       request_headers=[("Content-Type", "application/json"), ("anthropic-version", "2023-06-01")],
                       **kw)
    return decode_call(ex, counters), counters


def test_stream_parallel_tool_use_interleaved():
    call, counters = _decode(sse=PARALLEL_TOOLS)
    assert call.wire_api == "anthropic" and call.detected_by == "route" and call.operation == "chat"
    assert call.provider == "anthropic" and call.model == "claude-sonnet-4-5-20250929"
    assert call.response_id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert [(t.id, t.name, t.arguments) for t in call.tool_calls] == [
        ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "Read", {"file_path": "/repo/README.md"}),
        ("toolu_01VJ6X6X6X6X6X6X6X6X6X6X", "Read", {"file_path": "/repo/setup.py"}),
    ]
    assert call.tool_call_count == 2 and call.finish == "tool_use" and call.finish_reason_raw == "tool_use"
    assert call.ok and call.error is None
    assert call.assistant_text == "Reading both." and call.x_reasoning == "Read both files."
    # usage: message_start input/cache kept (delta zeros ignored), output replaced
    assert (call.input_tokens, call.cache_read_tokens, call.cache_creation_tokens, call.cache_creation_1h_tokens,
            call.input_total_tokens, call.output_tokens, call.total_tokens) == (3, 15000, 2048, 0, 17051, 187, 17238)
    assert call.usage_raw["output_tokens"] == 187 and call.usage_raw["input_tokens"] == 3
    assert not call.usage_estimated
    # first token: first thinking delta (unit 3: message_start, block start, ping, delta)
    assert call.first_token == unit_ts(3) / 1e6
    assert call.ttft_ms == (unit_ts(3) - T0) / 1000
    obj = call.x_response_object
    assert obj["type"] == "message" and obj["stop_reason"] == "tool_use"
    assert [b["type"] for b in obj["content"]] == ["thinking", "text", "tool_use", "tool_use"]
    assert obj["content"][0]["signature"] == "EqQBCkYIARgCKkBx"
    assert obj["content"][3]["input"] == {"file_path": "/repo/setup.py"}
    assert obj["usage"]["cache_read_input_tokens"] == 15000
    assert call.output_preview == "Reading both."
    assert counters["calls_detected.anthropic"] == 1 and counters["detected_by_route"] == 1


def test_request_extraction():
    call, _ = _decode(sse=PARALLEL_TOOLS)
    assert call.x_system_text == ("You are Claude Code, Anthropic's official CLI for Claude.\nBe concise.")
    assert call.x_first_user_text == "List the files and read README.md"
    assert call.user_text is None and call.input_preview is None  # last user message: tool result + reminder
    [res] = call.x_tool_results
    assert res.tool_call_id == "toolu_01A09q90qw90lq917835lq9"  # canonicalized
    assert res.content_text == "README.md\nsetup.py" and res.name == "Bash" and not res.is_error_flag
    assert res.bytes == len("README.md\nsetup.py")
    assert call.x_tool_definitions == [
        {"name": "Bash", "description": "Run a shell command", "parameters": REQUEST["tools"][0]["input_schema"]},
        {"name": "web_search", "description": None, "parameters": None},
    ]
    assert call.x_request == REQUEST and call.model_requested == "claude-sonnet-4-5-20250929"


def test_text_stream_first_token_whitespace_and_tpot():
    body = sse(
        MESSAGE_START,
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "\n"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hello!"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 11}}),
        ("message_stop", {"type": "message_stop"}),
    )
    req = {"model": "claude-haiku-4-5", "max_tokens": 512, "stream": True,
           "messages": [{"role": "user", "content": "Say hello"}]}
    call, _ = _decode(sse=body, request=req)
    assert call.first_token == unit_ts(3) / 1e6  # whitespace counts, empty string does not
    assert call.finish == "stop" and call.assistant_text == "Hello!"
    assert call.user_text == "Say hello" and call.input_preview == "Say hello"
    end = unit_ts(7) + 1_000
    assert call.tpot_ms == (end - unit_ts(3)) / 1000 / 10
    assert call.gen_ms == (end - unit_ts(3)) / 1000
    assert call.first_chunk_ms == (unit_ts(0) - T0) / 1000
    assert call.head_ms == (RESP_START - T0) / 1000


def test_first_token_tool_use_start():
    body = sse(MESSAGE_START, PING,
               ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
                   "type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {}}}))
    call, _ = _decode(sse=body)
    assert call.first_token == unit_ts(2) / 1e6


def test_cut_stream_partial_object():
    body = sse(
        MESSAGE_START,
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Let me write"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_01Cut", "name": "Write", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": "{\"file_path\": \"/tmp/a"}}),
    )
    call, counters = _decode(sse=body, state="aborted", end_cause="reset")
    assert call.finish == "aborted" and not call.ok
    assert call.error == {"source": "network", "type": "reset", "message": "connection reset"}
    assert call.tool_calls[0].arguments == {"_unparsed": "{\"file_path\": \"/tmp/a"}
    obj = call.x_response_object
    assert obj["content"][0]["text"] == "Let me write" and obj["stop_reason"] is None
    assert obj["content"][1]["input"] == {"_unparsed": "{\"file_path\": \"/tmp/a"}
    assert call.tpot_ms is None
    # usage from message_start is kept; nothing is estimated for an aborted call
    assert call.input_tokens == 3 and not call.usage_estimated


def test_missing_message_stop_on_clean_close_is_aborted():
    body = sse(MESSAGE_START,
               ("content_block_start", {"type": "content_block_start", "index": 0,
                                        "content_block": {"type": "text", "text": ""}}),
               ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": "Hi"}}))
    call, _ = _decode(sse=body)
    assert call.finish == "aborted" and call.error["source"] == "network" and call.error["type"] == "closed"


def test_message_delta_with_stop_reason_is_completion_marker():
    body = sse(MESSAGE_START,
               ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                  "usage": {"output_tokens": 1}}))
    call, _ = _decode(sse=body)
    assert call.finish == "stop"


def test_error_event_inside_200_stream():
    body = sse(
        MESSAGE_START,
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Partial"}}),
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )
    call, _ = _decode(sse=body)
    assert call.finish == "error" and not call.ok
    assert call.error == {"source": "stream", "type": "overloaded_error", "message": "Overloaded"}
    assert call.assistant_text == "Partial" and call.input_tokens == 3


def test_orphan_delta_counted():
    body = sse(
        MESSAGE_START,
        ("content_block_delta", {"type": "content_block_delta", "index": 5,
                                 "delta": {"type": "text_delta", "text": "lost"}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
        ("message_stop", {"type": "message_stop"}),
    )
    call, counters = _decode(sse=body)
    assert call.x_stream_orphan_deltas == 1 and counters["stream_orphan_deltas"] == 1
    assert call.assistant_text is None and call.first_token is None and call.ttft_ms is None


NON_STREAM = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
    "model": "claude-opus-4-1-20250805",
    "content": [
        {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {"query": "weather"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": []},
        {"type": "text", "text": "It is sunny."},
    ],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 2095, "output_tokens": 503, "cache_read_input_tokens": 0,
              "cache_creation_input_tokens": 0, "server_tool_use": {"web_search_requests": 1}},
}


def test_non_stream_with_server_tool():
    req = dict(REQUEST, stream=False)
    call, _ = _decode(response=NON_STREAM, request=req)
    assert not call.is_stream and call.finish == "stop" and call.ok
    assert call.server_tool_count == 1 and call.tool_calls == []
    assert call.first_token == RESP_START / 1e6 and call.ttft_ms == call.head_ms
    assert call.input_total_tokens == 2095 and call.total_tokens == 2598
    assert call.x_response_object == NON_STREAM and call.tpot_ms is None
    assert call.model == "claude-opus-4-1-20250805" and call.model_requested == "claude-sonnet-4-5-20250929"


def test_refusal_and_pause_turn():
    msg = dict(NON_STREAM, content=[], stop_reason="refusal")
    call, _ = _decode(response=msg)
    assert call.finish == "content_filter" and call.refusal is None
    msg = dict(NON_STREAM, content=[{"type": "text", "text": "I can't help with that."}], stop_reason="refusal")
    call, _ = _decode(response=msg)
    assert call.finish == "content_filter" and call.refusal == "I can't help with that."
    msg = dict(NON_STREAM, stop_reason="pause_turn")
    call, _ = _decode(response=msg)
    assert call.finish == "other" and call.finish_reason_raw == "pause_turn"


def test_max_tokens_and_redacted_thinking():
    msg = dict(NON_STREAM, content=[{"type": "redacted_thinking", "data": "EmwKAhgBEgy3"},
                                    {"type": "text", "text": "Partial ans"}], stop_reason="max_tokens")
    call, _ = _decode(response=msg)
    assert call.finish == "length" and call.x_reasoning is None and call.assistant_text == "Partial ans"


def test_http_529_overloaded():
    err = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011"}'
    call, counters = _decode(response=err, status=529,
                             response_headers=[("retry-after", "7"),
                                               ("anthropic-ratelimit-requests-limit", "4000"),
                                               ("anthropic-ratelimit-requests-remaining", "3999"),
                                               ("anthropic-ratelimit-requests-reset", "2025-01-01T00:00:01Z")])
    assert call.finish == "error" and not call.ok and call.status_code == 529
    assert call.error == {"source": "http", "type": "overloaded_error", "message": "Overloaded"}
    assert call.first_token is None and call.ttft_ms is None and call.tpot_ms is None
    assert call.ratelimit == {"limit_requests": 4000, "remaining_requests": 3999, "limit_tokens": None,
                              "remaining_tokens": None, "reset": "2025-01-01T00:00:01Z", "retry_after_s": 7.0}
    assert call.x_response_object["error"]["type"] == "overloaded_error"
    assert counters["usage_missing"] == 0  # not a 2xx


def test_non_stream_bad_json_is_parse_error():
    call, _ = _decode(response=b'{"id": "msg_1", "type": "mess')
    assert call.finish == "error" and call.error["source"] == "parse" and call.error["type"] == "bad_json"
    call, _ = _decode(response=b'{"id": "msg_1", "type": "mess', damage={"truncated"})
    assert call.error["type"] == "truncated"


def test_stream_without_usage_is_estimated():
    body = sse(
        ("message_start", {"type": "message_start", "message": {"id": "msg_x", "type": "message",
                                                                 "role": "assistant", "content": [],
                                                                 "model": "claude-x"}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "abcdefgh"}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
        ("message_stop", {"type": "message_stop"}),
    )
    req = {"model": "claude-x", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "a" * 40}]}
    call, counters = _decode(sse=body, request=req)
    assert call.usage_estimated and call.usage_raw is None
    assert call.output_tokens == 2 and call.input_total_tokens == 10
    assert counters["usage_missing"] == 1 and counters["usage_estimated"] == 1


def test_multibyte_text_citations_and_streamed_server_tool():
    body = sse(
        MESSAGE_START,
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta", "partial_json": "{\"query\": \"café\"}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "text", "text": "", "citations": []}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "citations_delta", "citation": {
                                     "type": "web_search_result_location", "url": "https://x.test",
                                     "cited_text": "…"}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "text_delta", "text": "Caf"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "text_delta", "text": "é ☕ 🎉"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 30, "server_tool_use": {"web_search_requests": 1}}}),
        ("message_stop", {"type": "message_stop"}),
    )
    call, _ = _decode(sse=body)
    assert call.server_tool_count == 1 and call.tool_calls == [] and call.finish == "stop"
    assert call.assistant_text == "Café ☕ 🎉"
    blocks = call.x_response_object["content"]
    assert blocks[0]["input"] == {"query": "café"} and blocks[1]["citations"][0]["url"] == "https://x.test"
    # a server_tool_use start is not a first-token event; the first partial_json delta is
    assert call.first_token == unit_ts(2) / 1e6
    assert call.usage_raw["server_tool_use"] == {"web_search_requests": 1}


def test_tool_result_error_flag_and_string_content():
    req = {"model": "claude-x", "max_tokens": 100, "messages": [
        {"role": "user", "content": "run it"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01Z", "name": "Bash",
                                           "input": {"command": "false"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01Z", "is_error": True,
                                      "content": "<tool_use_error>Exit code 1</tool_use_error>"},
                                     {"type": "text", "text": "why did it fail?"}]}]}
    call, _ = _decode(request=req, response=NON_STREAM)
    [res] = call.x_tool_results
    assert res.is_error_flag and res.name == "Bash" and res.content_text.startswith("<tool_use_error>")
    assert call.user_text == "why did it fail?" and call.x_first_user_text == "run it"
    assert call.x_system_text is None
