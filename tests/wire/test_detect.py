"""Detection (wire-apis.md §1): route table with exclusions, shape pass rules, response refinement."""

from __future__ import annotations

import pytest

from heron_core.records import SseEvent
from heron_core.wire.detect import detect, detect_request, refine_by_response, route_api, shape_api

from .helpers import make_exchange


@pytest.mark.parametrize("path, api", [
    ("/v1/messages", "anthropic"),
    ("/anthropic/v1/messages", "anthropic"),
    ("/v1/messages?beta=true", "anthropic"),
    ("/v1/messages/count_tokens", None),
    ("/v1/messages/batches", None),
    ("/v1/messages/batches/msgbatch_01/results", None),
    ("/v1/responses", "openai-responses"),
    ("/openai/v1/responses", "openai-responses"),
    ("/backend-api/codex/responses", "openai-responses"),
    ("/v1/chat/completions", "openai-chat"),
    ("/openai/deployments/gpt4o/chat/completions", "openai-chat"),
    ("/api/v1/chat/completions", "openai-chat"),
    ("/v1/completions", "openai-completions"),
    ("/v1beta/models/gemini-2.5-pro:generateContent", "gemini"),
    ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", "gemini"),
    ("/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash:streamGenerateContent",
     "gemini"),
    ("/v1internal:generateContent", "gemini"),
    ("/v1internal:streamGenerateContent", "gemini"),
    ("/v1beta/models/gemini-2.5-pro:countTokens", None),
    ("/v1beta/models/text-embedding-004:embedContent", None),
    ("/v1/foo:generateContent", None),
    ("/api/chat", "ollama"),
    ("/api/generate", "ollama"),
    ("/api/tags", None),
    ("/v1/embeddings", None),
])
def test_route_table(path, api):
    assert route_api(path) == api


def test_route_requires_json_object_with_model():
    ex = make_exchange("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    d = detect(ex)
    assert (d.wire_api, d.detected_by, d.operation) == ("openai-chat", "route", "chat")
    # no model: falls through to the shape pass, which needs a model for chat → not LLM
    ex = make_exchange("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
    assert detect(ex) is None
    # gemini needs no model in the body
    ex = make_exchange("/v1beta/models/gemini-2.5-pro:generateContent",
                       {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    assert detect_request(ex) == ("gemini", "route")
    # not a JSON object
    assert detect(make_exchange("/v1/messages", [1, 2])) is None
    assert detect(make_exchange("/v1/messages", b"model=claude")) is None


def test_only_post():
    ex = make_exchange("/v1/messages", {"model": "claude-sonnet-4-5", "messages": []}, method="GET")
    assert detect(ex) is None


def test_ollama_operations():
    d = detect(make_exchange("/api/generate", {"model": "llama3.2", "prompt": "Why is the sky blue?"}))
    assert (d.wire_api, d.operation) == ("ollama", "text_completion")
    d = detect(make_exchange("/api/chat", {"model": "llama3.2", "messages": []}))
    assert (d.wire_api, d.operation) == ("ollama", "chat")


def test_operations():
    assert detect(make_exchange("/v1/completions", {"model": "m", "prompt": "x"})).operation == "text_completion"
    assert detect(make_exchange("/v1beta/models/g:generateContent", {"contents": []})).operation == "generate_content"


MSGS = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("req, headers, api", [
    ({"model": "claude-x", "messages": MSGS, "system": "be nice"}, [], "anthropic"),
    ({"model": "claude-x", "messages": MSGS, "stop_sequences": ["\n\nHuman:"]}, [], "anthropic"),
    ({"model": "claude-x", "messages": MSGS}, [("anthropic-version", "2023-06-01")], "anthropic"),
    ({"model": "x", "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}]}, [], "anthropic"),
    ({"model": "x", "messages": [{"role": "assistant", "content": [
        {"type": "thinking", "thinking": "...", "signature": "s"}]}]}, [], "anthropic"),
    # anthropic signals but an `input` key: not anthropic (responses wins only without messages) → chat
    ({"model": "x", "messages": MSGS, "system": "s", "input": "y"}, [], "openai-chat"),
    ({"model": "gpt-5", "input": "hello"}, [], "openai-responses"),
    ({"model": "gpt-5", "input": [{"role": "user", "content": "hi"}], "instructions": "x"}, [], "openai-responses"),
    ({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, [], "gemini"),
    ({"model": "gemini-2.5-pro", "project": "p", "request": {"contents": [{"role": "user", "parts": []}]}}, [],
     "gemini"),
    ({"project": "p", "request": {"contents": [{"role": "user"}]}}, [], None),  # envelope needs model
    ({"contents": []}, [], None),
    ({"model": "gpt-4o", "messages": MSGS}, [], "openai-chat"),
    ({"model": "gpt-4o", "messages": []}, [], None),
    ({"model": "davinci-002", "prompt": "Say this is a test"}, [], "openai-completions"),
    ({"model": "x"}, [], None),
    ({"query": "weather"}, [], None),
])
def test_shape_rules(req, headers, api):
    ex = make_exchange("/proxy", req, request_headers=[("Content-Type", "application/json")] + headers)
    assert shape_api(req, ex) == api
    d = detect(ex)
    assert (d.wire_api, d.detected_by) == (api, "shape") if api else d is None


def test_shape_pass_media_type():
    req = {"model": "gpt-4o", "messages": MSGS}
    assert detect(make_exchange("/x", req, request_headers=[("Content-Type", "application/json; charset=utf-8")]))
    assert detect(make_exchange("/x", req, request_headers=[])) is not None  # absent, body starts with {
    assert detect(make_exchange("/x", req, request_headers=[("Content-Type", "text/plain")])) is None
    assert detect(make_exchange("/x", b"  " + b'{"model":"m","prompt":"p"}', request_headers=[])) is not None


def test_route_body_without_model_goes_to_shape_pass():
    ex = make_exchange("/v1/messages", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    d = detect(ex)
    assert (d.wire_api, d.detected_by) == ("gemini", "shape")


@pytest.mark.parametrize("kw, api", [
    (dict(response={"id": "msg_1", "type": "message", "role": "assistant", "content": []}), "anthropic"),
    (dict(sse="event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n"), "anthropic"),
    (dict(response={"id": "resp_1", "object": "response", "status": "completed"}), "openai-responses"),
    (dict(sse="event: response.created\ndata: {\"type\":\"response.created\",\"response\":{}}\n\n"),
     "openai-responses"),
    (dict(response={"id": "c", "object": "chat.completion", "choices": []}), "openai-chat"),
    (dict(sse='data: {"id":"c","object":"chat.completion.chunk","choices":[]}\n\ndata: [DONE]\n\n'),
     "openai-chat"),
    (dict(response={"id": "c", "object": "text_completion", "choices": []}), "openai-completions"),
    (dict(ndjson=[{"model": "llama3.2", "message": {"role": "assistant", "content": "Hi"}, "done": False}]),
     "ollama"),
    (dict(response={"model": "llama3.2", "response": "Hi", "done": True}), "ollama"),
    (dict(response={"candidates": [], "modelVersion": "gemini-2.5-pro"}), "gemini"),
    (dict(response=[{"candidates": []}]), "gemini"),
    (dict(response={"response": {"candidates": []}, "traceId": "t"}), "gemini"),
    (dict(response={"error": {"message": "nope"}}, status=400), None),
    (dict(response=b"not json"), None),
])
def test_refine_by_response(kw, api):
    ex = make_exchange("/x", {"model": "m", "messages": MSGS}, **kw)
    assert refine_by_response(ex) == api


def test_refine_ignores_ping_before_message_start():
    ex = make_exchange("/x", {"model": "m", "messages": MSGS})
    ex.stream_format = "sse"
    ex.stream_units = [(1, SseEvent("ping", '{"type": "ping"}', None)),
                       (2, SseEvent(None, '{"type":"message_start","message":{}}', None))]
    assert refine_by_response(ex) == "anthropic"
