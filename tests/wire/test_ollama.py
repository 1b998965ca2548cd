"""Ollama native API decoding (wire-apis.md §8) through ``decode_call``, with literal NDJSON lines."""

from __future__ import annotations

import hashlib
from collections import Counter

from heron_core.records import BadUnit
from heron_core.wire.decode import decode_call

from .helpers import RESP_START, make_exchange, unit_ts
from .helpers_b import ndjson_body

MODEL = "qwen3:8b"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
CHAT_REQ = {
    "model": MODEL,
    "messages": [{"role": "system", "content": "You are a helpful assistant."},
                 {"role": "user", "content": "Weather in Paris and Lyon?"}],
    "tools": TOOLS,
    "options": {"temperature": 0.7, "num_ctx": 8192},
}
COUNTS = {"total_duration": 4812345678, "load_duration": 21345678, "prompt_eval_count": 187,
          "prompt_eval_duration": 312345678, "eval_count": 96, "eval_duration": 4412345678}


def line(n: int, message: dict | None = None, done: bool = False, **kw) -> dict:
    obj: dict = {"model": MODEL, "created_at": f"2025-10-01T10:00:0{n}.{n * 137:06d}Z"}
    if message is not None:
        obj["message"] = {"role": "assistant", **message}
    obj["done"] = done
    obj.update(kw)
    return obj


TOOL_CALLS = [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
              {"function": {"name": "get_weather", "arguments": {"city": "Lyon"}}}]
TOOL_STREAM = [
    line(0, {"content": "", "thinking": "The user"}),
    line(1, {"content": "", "thinking": " wants two cities."}),
    line(2, {"content": "", "tool_calls": TOOL_CALLS}),
    line(3, {"content": ""}, True, done_reason="stop", **COUNTS),
]


def expected_ids() -> list[str]:
    """agents-and-turns.md §6.2 by hand: no content text, two calls."""
    sig = 'f:get_weather:{"city":"Paris"}\nf:get_weather:{"city":"Lyon"}'
    return ["tu-" + hashlib.sha256(f"{sig}#{k}".encode()).hexdigest()[:16] for k in range(2)]


def _decode(path: str = "/api/chat", request=CHAT_REQ, **kw):
    counters = Counter()
    ex = make_exchange(path, request, host=kw.pop("host", "localhost:11434"), **kw)
    return decode_call(ex, counters), counters


def test_stream_tool_calls_without_ids():
    call, counters = _decode(ndjson=TOOL_STREAM)
    assert (call.wire_api, call.detected_by, call.operation, call.provider) == ("ollama", "route", "chat",
                                                                                None)
    assert call.is_stream and call.stream_format == "ndjson" and call.model == MODEL
    ids = expected_ids()
    assert [(t.id, t.name, t.arguments) for t in call.tool_calls] == [
        (ids[0], "get_weather", {"city": "Paris"}), (ids[1], "get_weather", {"city": "Lyon"})]
    assert call.finish_reason_raw == "stop" and call.finish == "tool_use" and call.ok
    assert call.x_reasoning == "The user wants two cities." and call.assistant_text is None
    assert (call.input_tokens, call.input_total_tokens, call.output_tokens, call.cache_read_tokens,
            call.cache_creation_tokens, call.total_tokens) == (187, 187, 96, 0, 0, 283)
    assert call.usage_raw == COUNTS  # durations (ns) kept
    assert call.first_token == unit_ts(0) / 1e6  # thinking counts
    obj = call.x_response_object
    assert obj["message"] == {"role": "assistant", "content": "", "thinking": "The user wants two cities.",
                              "tool_calls": TOOL_CALLS}
    assert obj["done"] is True and obj["done_reason"] == "stop" and obj["eval_count"] == 96
    assert obj["created_at"] == TOOL_STREAM[0]["created_at"]
    assert call.output_preview == '→ get_weather({"city":"Paris"})' and counters["extract_errors"] == 0
    assert call.x_system_text == "You are a helpful assistant."
    assert call.user_text == "Weather in Paris and Lyon?"
    assert call.x_tool_definitions == [{"name": "get_weather", "description": "Get the weather for a city",
                                        "parameters": TOOLS[0]["function"]["parameters"]}]


def test_history_resent_pairs_tool_messages_by_name():
    req = dict(CHAT_REQ, messages=CHAT_REQ["messages"] + [
        {"role": "assistant", "content": "", "thinking": "The user wants two cities.", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"function": {"name": "get_weather", "arguments": {"city": "Lyon"}}}]},
        {"role": "tool", "content": "Paris: 18°C, cloudy", "tool_name": "get_weather"},
        {"role": "tool", "content": "{\"error\": \"timeout\", \"exit_code\": 2}", "tool_name": "get_weather"},
    ])
    final = [line(0, {"content": "Paris is 18°C."}), line(1, {"content": ""}, True, done_reason="stop",
                                                          **COUNTS)]
    call, _ = _decode(request=req, ndjson=final)
    ids = expected_ids()
    assert [(r.tool_call_id, r.name, r.is_error_flag, r.content_text) for r in call.x_tool_results] == [
        (ids[0], "get_weather", False, "Paris: 18°C, cloudy"),
        (ids[1], "get_weather", True, "{\"error\": \"timeout\", \"exit_code\": 2}"),
    ]
    assert call.finish == "stop" and call.assistant_text == "Paris is 18°C."


def test_tool_messages_by_position_and_with_ids():
    req = {"model": MODEL, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "Sure.", "tool_calls": [
            {"function": {"name": "a", "arguments": {}}}, {"function": {"name": "b",
                                                                        "arguments": {"x": 1}}}]},
        {"role": "tool", "content": "A"}, {"role": "tool", "content": "B"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_k2m9x1", "function": {"index": 0, "name": "c", "arguments": {}}}]},
        {"role": "tool", "content": "C", "tool_call_id": "call_k2m9x1", "tool_name": "c"},
    ]}
    call, _ = _decode(request=req, response=line(0, {"content": "done"}, True, done_reason="stop", **COUNTS))
    sig = 't:Sure.\nf:a:{}\nf:b:{"x":1}'
    ids = ["tu-" + hashlib.sha256(f"{sig}#{k}".encode()).hexdigest()[:16] for k in range(2)]
    assert [(r.tool_call_id, r.content_text) for r in call.x_tool_results] == [
        (ids[0], "A"), (ids[1], "B"), ("call_k2m9x1", "C")]


def test_response_tool_call_with_id_is_kept():
    body = line(0, {"content": "", "tool_calls": [
        {"id": "call_9x8y7z6w", "function": {"index": 0, "name": "get_weather",
                                             "arguments": {"city": "Nice"}}}]},
        True, done_reason="stop", **COUNTS)
    call, _ = _decode(response=body, request=dict(CHAT_REQ, stream=False))
    assert [(t.id, t.arguments) for t in call.tool_calls] == [("call_9x8y7z6w", {"city": "Nice"})]
    assert not call.is_stream and call.x_response_object == body and call.first_token == RESP_START / 1e6


def test_generate_stream():
    req = {"model": "llama3.2", "prompt": "Why is the sky blue?", "system": "Answer in one sentence."}
    lines = [
        {"model": "llama3.2", "created_at": "2025-10-01T10:00:00.1Z", "response": "", "thinking": "Rayleigh",
         "done": False},
        {"model": "llama3.2", "created_at": "2025-10-01T10:00:00.2Z", "response": "Rayleigh", "done": False},
        {"model": "llama3.2", "created_at": "2025-10-01T10:00:00.3Z", "response": " scattering.",
         "done": False},
        {"model": "llama3.2", "created_at": "2025-10-01T10:00:00.4Z", "response": "", "done": True,
         "done_reason": "stop", "context": [128006, 9125, 128007], **COUNTS},
    ]
    call, _ = _decode(path="/api/generate", request=req, ndjson=lines)
    assert call.operation == "text_completion" and call.model == "llama3.2"
    assert call.assistant_text == "Rayleigh scattering." and call.x_reasoning == "Rayleigh"
    assert call.user_text == "Why is the sky blue?" == call.x_first_user_text
    assert call.x_system_text == "Answer in one sentence."
    assert call.finish == "stop" and call.first_token == unit_ts(0) / 1e6
    obj = call.x_response_object
    assert obj["response"] == "Rayleigh scattering." and obj["thinking"] == "Rayleigh"
    assert obj["context"] == [128006, 9125, 128007] and "message" not in obj


def test_no_done_line_is_aborted():
    call, _ = _decode(ndjson=TOOL_STREAM[:2])
    assert call.finish == "aborted" and call.error["type"] == "closed" and call.finish_reason_raw is None
    assert call.x_response_object["done"] is False and call.x_reasoning == "The user wants two cities."
    call, _ = _decode(ndjson=TOOL_STREAM[:3], state="aborted", end_cause="expired")
    assert call.finish == "aborted" and call.error["type"] == "expired"
    assert len(call.tool_calls) == 2 and not call.usage_estimated


def test_error_line_mid_stream():
    lines = [line(0, {"content": "Paris is"}),
             {"error": "an error was encountered while running the model: unexpected EOF"}]
    call, _ = _decode(ndjson=lines)
    assert call.finish == "error" and not call.ok and call.finish_reason_raw is None
    assert call.error == {"source": "stream", "type": "error",
                          "message": "an error was encountered while running the model: unexpected EOF"}
    assert call.assistant_text == "Paris is"


def test_several_lines_in_json_body_is_a_stream():
    lines = [line(0, {"content": "Hi"}), line(1, {"content": " there"}),
             line(2, {"content": ""}, True, done_reason="stop", **COUNTS)]
    call, _ = _decode(response=ndjson_body(*lines), request={"model": MODEL, "messages": [
        {"role": "user", "content": "hello"}]})
    assert call.is_stream and call.stream_format == "ndjson" and call.assistant_text == "Hi there"
    assert call.finish == "stop" and call.first_token == RESP_START / 1e6


def test_length_and_load_done_reasons():
    call, _ = _decode(response=line(0, {"content": "Long"}, True, done_reason="length", **COUNTS))
    assert call.finish_reason_raw == "length" and call.finish == "length"
    call, _ = _decode(response=line(0, {"content": ""}, True, done_reason="load"),
                      request={"model": MODEL, "messages": []})
    assert call.finish == "other" and call.finish_reason_raw == "load"


def test_http_404_model_not_found():
    call, counters = _decode(response={"error": "model \"qwen9\" not found, try pulling it first"},
                             status=404)
    assert call.finish == "error" and call.error == {
        "source": "http", "type": "error", "message": "model \"qwen9\" not found, try pulling it first"}
    assert call.first_token is None and counters["usage_missing"] == 0


def test_missing_counts_estimated_from_content_lines_and_bad_line():
    lines = [line(0, {"content": "a"}), BadUnit("{\"model\": \"qwen3:8b\", \"mess"), line(1,
                                                                                          {"content": "b"}),
             line(2, {"content": "c"}), line(3, {"content": ""}, True, done_reason="stop")]
    call, counters = _decode(ndjson=lines, request={"model": MODEL, "messages": [{"role": "user",
                                                                                  "content": "x" * 8}]})
    assert call.usage_raw is None and call.usage_estimated
    assert call.output_tokens == 3 and call.input_total_tokens == 2  # 3 content lines; ceil(8/4)
    assert counters["extract_errors"] == 1 and call.assistant_text == "abc"


def test_whitespace_counts_empty_does_not():
    lines = [line(0, {"content": ""}), line(1, {"content": "\n"}), line(2, {"content": "ok"}),
             line(3, {"content": ""}, True, done_reason="stop", **COUNTS)]
    call, _ = _decode(ndjson=lines)
    assert call.first_token == unit_ts(1) / 1e6 and call.assistant_text == "ok"
