"""decode_call: detection and refinement wiring, common fields, timing, hashes, rate limits, robustness."""

from __future__ import annotations

import hashlib
from collections import Counter

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heron_core.records import SseEvent, us_to_s
from heron_core.wire import decode as decode_mod
from heron_core.wire.decode import decode_call, detect_request, model_requested, provider_for_host, request_hash

from .helpers import REQ_END, RESP_START, T0, make_exchange

CHAT_REQ = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
CHAT_RESP = {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10}}


def test_not_llm_exchanges():
    counters = Counter()
    assert decode_call(make_exchange("/v1/models", None, method="GET"), counters) is None
    assert decode_call(make_exchange("/upload", {"file": "x"}), counters) is None
    assert counters["exchanges_not_llm"] == 2


@pytest.mark.parametrize("path, req", [
    # Claude Code's token counting: chat-shaped body with anthropic-version, still excluded
    ("/v1/messages/count_tokens", {"model": "claude-x", "system": "s", "messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/messages/batches", {"requests": [{"custom_id": "a", "params": {"model": "claude-x", "messages": []}}]}),
    ("/v1beta/models/gemini-2.5-pro:countTokens", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
    ("/v1beta/models/text-embedding-004:embedContent", {"content": {"parts": [{"text": "hi"}]}}),
])
def test_excluded_routes_are_not_llm(path, req):
    counters = Counter()
    ex = make_exchange(path, req, request_headers=[("Content-Type", "application/json"),
                                                   ("anthropic-version", "2023-06-01")])
    assert decode_call(ex, counters) is None and counters["exchanges_not_llm"] == 1


def test_common_fields():
    counters = Counter()
    ex = make_exchange("/v1/chat/completions", CHAT_REQ, response=CHAT_RESP, host="api.openai.com",
                       damage={"decode_error"})
    call = decode_call(ex, counters)
    assert call.call_id == "ex-1" and call.source_id == "test"
    assert (call.client_ip, call.client_port, call.server_ip, call.server_port) == ("10.0.0.2", 50000, "10.0.0.1", 443)
    assert call.server == "10.0.0.1:443" and call.host == "api.openai.com" and call.method == "POST"
    assert call.path == "/v1/chat/completions" and call.status_code == 200
    assert (call.wire_api, call.operation, call.detected_by, call.provider) == ("openai-chat", "chat", "route", "openai")
    assert call.model_requested == "gpt-4o-mini" and call.model == "gpt-4o-mini-2024-07-18"
    assert not call.is_stream and call.stream_format is None
    assert call.request_start == us_to_s(T0) and call.request_end == us_to_s(REQ_END)
    assert call.response_start == us_to_s(RESP_START) and call.first_token == call.response_start
    assert call.upload_ms == (REQ_END - T0) / 1000 and call.head_ms == (RESP_START - T0) / 1000
    assert call.ttft_ms == call.head_ms and call.e2e_ms == (ex.response_end - T0) / 1000
    assert call.gen_ms == (ex.response_end - RESP_START) / 1000 and call.tpot_ms is None
    assert call.ok and call.finish == "stop" and call.tool_call_count == 0
    assert call.request_body_bytes == ex.request_body_bytes and call.response_wire_bytes == ex.response_wire_bytes
    assert call.damaged and call.damage == ["decode_error"]
    assert call.x_request == CHAT_REQ and call.ratelimit is None
    assert call.input_preview == "Hi" and call.output_preview == "Hello!"
    assert counters == Counter({"detected_by_route": 1, "calls_detected.openai-chat": 1})


def test_shape_detection_refined_by_response():
    counters = Counter()
    # gateway path, OpenAI-looking body, but the server answers in Anthropic's SSE format
    sse = ('event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
           '"role":"assistant","content":[],"model":"claude-x","usage":{"input_tokens":5,"output_tokens":1}}}\n\n'
           'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":'
           '{"type":"text","text":""}}\n\n'
           'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":'
           '{"type":"text_delta","text":"Hi"}}\n\n'
           'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
           '"usage":{"output_tokens":2}}\n\n'
           'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    call = decode_call(make_exchange("/proxy/llm", dict(CHAT_REQ, stream=True), sse=sse), counters)
    assert (call.wire_api, call.detected_by) == ("anthropic", "response")
    assert call.assistant_text == "Hi" and call.finish == "stop" and call.output_tokens == 2
    assert counters["detected_by_shape"] == 1 and counters["refined_by_response"] == 1
    assert counters["calls_detected.anthropic"] == 1 and counters["calls_detected.openai-chat"] == 0


def test_route_detection_is_never_refined():
    counters = Counter()
    resp = {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "x"}
    call = decode_call(make_exchange("/v1/chat/completions", CHAT_REQ, response=resp), counters)
    assert call.wire_api == "openai-chat" and counters["refined_by_response"] == 0


def test_shape_detection_same_api_is_not_refined():
    counters = Counter()
    call = decode_call(make_exchange("/gw", CHAT_REQ, response=CHAT_RESP), counters)
    assert (call.wire_api, call.detected_by) == ("openai-chat", "shape") and counters["refined_by_response"] == 0


def test_missing_module_returns_minimal_call(monkeypatch):
    monkeypatch.setitem(decode_mod._MODULES, "gemini", "heron_core.wire._no_such_module")
    counters = Counter()
    ex = make_exchange("/v1beta/models/gemini-2.5-flash:generateContent",
                       {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                       response={"candidates": []}, host="generativelanguage.googleapis.com")
    call = decode_call(ex, counters)
    assert call is not None and call.wire_api == "gemini" and call.operation == "generate_content"
    assert call.model_requested == "gemini-2.5-flash" and call.model == "gemini-2.5-flash"
    assert call.provider == "google" and counters["extract_errors"] == 1
    assert call.finish == "other" and call.request_hash


def test_module_exception_is_counted_and_call_kept(monkeypatch):
    import heron_core.wire.openai_chat as oc

    def boom(ex, req, call, counters):
        call.response_id = "partial"
        raise KeyError("unexpected")

    monkeypatch.setattr(oc, "decode", boom)
    counters = Counter()
    call = decode_call(make_exchange("/v1/chat/completions", CHAT_REQ, response=CHAT_RESP), counters)
    assert call.response_id == "partial" and counters["extract_errors"] == 1
    assert call.finish == "other" and call.ok
    call = decode_call(make_exchange("/v1/chat/completions", CHAT_REQ, status=None, state="no_response",
                                     end_cause="no_response"), counters)
    assert call.finish == "aborted" and call.error["type"] == "no_response"


def test_no_response():
    counters = Counter()
    ex = make_exchange("/v1/chat/completions", CHAT_REQ, status=None, state="no_response", end_cause="no_response")
    call = decode_call(ex, counters)
    assert call.finish == "aborted" and not call.ok and call.status_code is None
    assert call.error == {"source": "network", "type": "no_response", "message": "no response"}
    assert call.first_token is None and call.ttft_ms is None and call.head_ms is None
    assert call.e2e_ms == (ex.response_end - T0) / 1000
    assert counters["usage_missing"] == 0


@pytest.mark.parametrize("host, provider", [
    ("api.anthropic.com", "anthropic"), ("API.OpenAI.com:443", "openai"), ("chatgpt.com", "openai"),
    ("generativelanguage.googleapis.com", "google"), ("cloudcode-pa.googleapis.com", "google"),
    ("us-central1-aiplatform.googleapis.com", "google"), ("myres.openai.azure.com", "azure"),
    ("openrouter.ai", "openrouter"), ("api.deepseek.com", "deepseek"), ("localhost:11434", None),
    ("10.0.0.5:8000", None), ("[::1]:8080", None), (None, None), ("litellm.internal", None),
])
def test_provider_for_host(host, provider):
    assert provider_for_host(host) == provider


@pytest.mark.parametrize("api, path, req, model", [
    ("gemini", "/v1beta/models/gemini-2.5-pro:streamGenerateContent", {}, "gemini-2.5-pro"),
    ("gemini", "/v1/projects/p/locations/l/publishers/google/models/gemini-2.0-flash-001:generateContent", {},
     "gemini-2.0-flash-001"),
    ("gemini", "/v1internal:streamGenerateContent", {"model": "gemini-2.5-pro", "request": {}}, "gemini-2.5-pro"),
    ("gemini", "/gw", {"model": "models/gemini-2.5-pro"}, "gemini-2.5-pro"),
    ("anthropic", "/v1/messages", {"model": "claude-opus-4-1"}, "claude-opus-4-1"),
    ("openai-chat", "/v1/chat/completions", {}, "unknown"),
])
def test_model_requested(api, path, req, model):
    assert model_requested(api, path, req) == model


def test_request_hash():
    stream = {"model": "claude-x", "stream": True, "stream_options": {"include_usage": True},
              "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    plain = {"max_tokens": 10, "messages": [{"content": "hi", "role": "user"}], "model": "claude-x"}
    h = request_hash(orjson.dumps(stream), stream)
    assert h == request_hash(orjson.dumps(plain), plain) and len(h) == 16
    expected = hashlib.sha256(b'{"max_tokens":10,"messages":[{"content":"hi","role":"user"}],"model":"claude-x"}')
    assert h == expected.hexdigest()[:16]
    assert request_hash(b"x", None) == hashlib.sha256(b"x").hexdigest()[:16]
    other = dict(plain, max_tokens=11)
    assert request_hash(b"", other) != h


def test_retry_after_http_date():
    ex = make_exchange("/v1/chat/completions", CHAT_REQ, status=503, response=b"busy", response_headers=[
        ("Date", "Wed, 21 Oct 2015 07:28:00 GMT"), ("Retry-After", "Wed, 21 Oct 2015 07:28:30 GMT")])
    call = decode_call(ex, Counter())
    assert call.ratelimit["retry_after_s"] == 30.0
    assert call.error == {"source": "http", "type": "http_503", "message": "busy"}


def test_detect_request_for_call_started():
    assert detect_request(make_exchange("/v1/messages", {"model": "claude-x", "messages": []})) == (
        "anthropic", "route")
    assert detect_request(make_exchange("/gw", CHAT_REQ)) == ("openai-chat", "shape")
    assert detect_request(make_exchange("/gw", {"hello": 1})) is None


def test_usage_missing_counted_but_not_estimated_for_errors():
    counters = Counter()
    sse = 'data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,' \
          '"delta":{"content":"x"}}]}\n\ndata: {"error":{"message":"boom","type":"server_error"}}\n\n'
    call = decode_call(make_exchange("/v1/chat/completions", CHAT_REQ, sse=sse), counters)
    assert call.finish == "error" and not call.usage_estimated and call.output_tokens is None
    assert counters["usage_missing"] == 1 and counters["usage_estimated"] == 0


# --- robustness: odd but well-formed JSON never makes a module raise ------------------------------------

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=5),
                    st.sampled_from(["text_delta", "tool_use", "input_json_delta", "message_start",
                                     "content_block_delta", "content_block_start", "stop", "[DONE]"]))
_json = st.recursive(_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["type", "index", "delta", "content_block", "message", "choices", "usage",
                                     "text", "id", "name", "partial_json", "tool_calls", "function",
                                     "arguments", "content", "finish_reason", "error", "model"]),
                    inner, max_size=5)), max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(["/v1/messages", "/v1/chat/completions", "/v1/completions"]),
       request=st.dictionaries(st.sampled_from(["messages", "system", "tools", "prompt", "stream"]), _json,
                               max_size=4),
       events=st.lists(st.tuples(st.sampled_from([None, "message_start", "content_block_delta", "error"]), _json),
                       max_size=8),
       status=st.sampled_from([200, 200, 429]))
def test_modules_never_raise_on_odd_json(path, request, events, status):
    counters = Counter()
    req = dict(request, model="m")
    ex = make_exchange(path, req, sse="", status=status)
    ex.stream_units = [(T0 + i, SseEvent(name, orjson.dumps(data).decode(), None))
                       for i, (name, data) in enumerate(events)]
    call = decode_call(ex, counters)
    assert call is not None and counters["extract_errors"] == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(["/v1/messages", "/v1/chat/completions", "/v1/completions"]),
       response=_json, status=st.sampled_from([200, 500]))
def test_modules_never_raise_on_odd_whole_bodies(path, response, status):
    counters = Counter()
    ex = make_exchange(path, {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                       response=orjson.dumps(response), status=status)
    call = decode_call(ex, counters)
    assert call is not None and counters["extract_errors"] == 0
