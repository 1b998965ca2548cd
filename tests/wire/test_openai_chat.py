"""OpenAI Chat Completions decoding (wire-apis.md §4) through ``decode_call``, with literal bodies."""

from __future__ import annotations

from collections import Counter

from heron_core.wire.common import pseudo_signature, pseudo_tool_id
from heron_core.wire.decode import decode_call

from .helpers import RESP_START, make_exchange, unit_ts

REQUEST = {
    "model": "gpt-4o",
    "stream": True,
    "stream_options": {"include_usage": True},
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "text", "text": "What's the weather in Paris and Rome?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a1b2c3d4e5f6", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "calla1b2c3d4e5f6", "content": "18C, sunny"},
        {"role": "user", "content": "And tomorrow?"},
    ],
    "tools": [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
}

# Real OpenAI chunk layout: role chunk with empty content, content chunks, finish chunk, then the
# include_usage chunk with empty choices, then [DONE].
TEXT_STREAM = (
    'data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,'
    '"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,'
    '"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    'data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,'
    '"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,'
    '"delta":{"content":" "},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    'data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,'
    '"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,'
    '"delta":{"content":"Tomorrow: rain."},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    'data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,'
    '"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,'
    '"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n'
    'data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,'
    '"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":[],'
    '"usage":{"prompt_tokens":120,"completion_tokens":6,"total_tokens":126,"prompt_tokens_details":'
    '{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    '"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}\n\n'
    'data: [DONE]\n\n'
)

_H = '"id":"chatcmpl-9x","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06"'
PARALLEL_TOOLS = (
    f'data: {{{_H},"choices":[{{"index":0,"delta":{{"role":"assistant","content":null,"tool_calls":[{{"index":0,'
    '"id":"call_Paris00000000001","type":"function","function":{"name":"get_weather","arguments":""}}],'
    '"refusal":null},"finish_reason":null}]}\n\n'
    f'data: {{{_H},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":1,"id":"call_Rome000000000001",'
    '"type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}\n\n'
    f'data: {{{_H},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":1,"function":{{"arguments":'
    '"{\\"city\\": \\"Ro"}}]},"finish_reason":null}]}\n\n'
    f'data: {{{_H},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":0,"function":{{"arguments":'
    '"{\\"city\\": \\"Pa"}}]},"finish_reason":null}]}\n\n'
    f'data: {{{_H},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":0,"function":{{"arguments":'
    '"ris\\"}"}}]},"finish_reason":null}]}\n\n'
    f'data: {{{_H},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":1,"function":{{"arguments":'
    '"me\\"}"}}]},"finish_reason":null}]}\n\n'
    f'data: {{{_H},"choices":[{{"index":0,"delta":{{}},"finish_reason":"tool_calls"}}]}}\n\n'
    f'data: {{{_H},"choices":[],"usage":{{"prompt_tokens":80,"completion_tokens":40,"total_tokens":120}}}}\n\n'
    'data: [DONE]\n\n'
)


def _decode(request=REQUEST, path="/v1/chat/completions", host="api.openai.com", **kw):
    counters = Counter()
    call = decode_call(make_exchange(path, request, host=host, **kw), counters)
    return call, counters


def test_text_stream_with_include_usage():
    call, counters = _decode(sse=TEXT_STREAM)
    assert (call.wire_api, call.operation, call.provider) == ("openai-chat", "chat", "openai")
    assert call.model == "gpt-4o-2024-08-06" and call.model_requested == "gpt-4o"
    assert call.response_id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    assert call.assistant_text == "Tomorrow: rain." and call.finish == "stop" and call.ok
    assert call.first_token == unit_ts(1) / 1e6  # " " counts; the role chunk's "" does not
    assert (call.input_tokens, call.input_total_tokens, call.cache_read_tokens, call.cache_creation_tokens,
            call.output_tokens, call.reasoning_tokens, call.total_tokens) == (120, 120, 0, 0, 6, 0, 126)
    assert call.usage_raw["prompt_tokens"] == 120 and not call.usage_estimated
    end = unit_ts(5) + 1_000
    assert call.tpot_ms == (end - unit_ts(1)) / 1000 / 5
    obj = call.x_response_object
    assert obj == {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": " Tomorrow: rain.", "refusal": None},
                     "finish_reason": "stop"}],
        "usage": call.usage_raw, "system_fingerprint": "fp_eb9dce56a8", "service_tier": "default"}
    assert call.choices_ignored is None and counters["extract_errors"] == 0


def test_request_extraction():
    call, _ = _decode(sse=TEXT_STREAM)
    assert call.x_system_text == "You are a helpful assistant."
    assert call.x_first_user_text == "What's the weather in Paris and Rome?"
    assert call.user_text == "And tomorrow?" and call.input_preview == "And tomorrow?"
    [res] = call.x_tool_results
    assert (res.tool_call_id, res.name, res.content_text, res.is_error_flag) == (
        "call_a1b2c3d4e5f6", "get_weather", "18C, sunny", False)
    assert call.x_tool_definitions == [{"name": "get_weather", "description": "Weather for a city",
                                        "parameters": REQUEST["tools"][0]["function"]["parameters"]}]


def test_parallel_tool_calls_interleaved():
    call, _ = _decode(sse=PARALLEL_TOOLS)
    assert [(t.id, t.name, t.arguments) for t in call.tool_calls] == [
        ("call_Paris00000000001", "get_weather", {"city": "Paris"}),
        ("call_Rome000000000001", "get_weather", {"city": "Rome"}),
    ]
    assert call.finish == "tool_use" and call.finish_reason_raw == "tool_calls"
    assert call.first_token == unit_ts(0) / 1e6  # tool-call name in the first chunk
    tcs = call.x_response_object["choices"][0]["message"]["tool_calls"]
    assert tcs[1]["function"]["arguments"] == '{"city": "Rome"}'
    assert call.output_preview == '→ get_weather({"city":"Paris"})' and call.assistant_text is None


def test_stop_with_tool_calls_is_tool_use():
    resp = {"id": "chatcmpl-1", "object": "chat.completion", "model": "qwen2.5-coder",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_0", "type": "function", "function": {"name": "ls", "arguments": {"path": "."}}}]},
                "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
    call, _ = _decode(request=dict(REQUEST, stream=False), response=resp, host="localhost:8000")
    assert call.finish == "tool_use" and call.finish_reason_raw == "stop"
    assert call.tool_calls[0].arguments == {"path": "."} and call.provider is None


def test_idless_tool_calls_get_pseudo_ids():
    msg = {"role": "assistant", "content": None, "tool_calls": [
        {"type": "function", "function": {"name": "ls", "arguments": "{}"}},
        {"type": "function", "function": {"name": "cat", "arguments": "{\"f\": \"a\"}"}}]}
    resp = {"id": "x", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls"}]}
    call, _ = _decode(request=dict(REQUEST, stream=False), response=resp)
    sig = pseudo_signature([("f", "ls", "{}"), ("f", "cat", '{"f": "a"}')])
    assert [t.id for t in call.tool_calls] == [pseudo_tool_id(sig, 0), pseudo_tool_id(sig, 1)]


def test_stream_without_usage_is_estimated_from_chunks():
    body = "".join(
        f'data: {{{_H},"choices":[{{"index":0,"delta":{{"content":"{w}"}},"finish_reason":null}}]}}\n\n'
        for w in ("", "Hel", "lo", " there"))
    body += f'data: {{{_H},"choices":[{{"index":0,"delta":{{}},"finish_reason":"stop"}}]}}\n\ndata: [DONE]\n\n'
    req = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "x" * 20}]}
    call, counters = _decode(request=req, sse=body)
    assert call.usage_raw is None and call.usage_estimated
    assert call.output_tokens == 3 and call.input_total_tokens == 5 and call.total_tokens == 8
    assert call.cache_read_tokens == 0
    assert counters["usage_missing"] == 1 and counters["usage_estimated"] == 1
    assert call.tpot_ms is not None


def test_refusal_stream():
    body = (f'data: {{{_H},"choices":[{{"index":0,"delta":{{"role":"assistant","content":null,"refusal":""}},'
            '"finish_reason":null}]}\n\n'
            f'data: {{{_H},"choices":[{{"index":0,"delta":{{"refusal":"I\'m sorry, I can\'t help with that."}},'
            '"finish_reason":null}]}\n\n'
            f'data: {{{_H},"choices":[{{"index":0,"delta":{{}},"finish_reason":"stop"}}]}}\n\ndata: [DONE]\n\n')
    call, _ = _decode(sse=body)
    assert call.refusal == "I'm sorry, I can't help with that." and call.finish == "content_filter"
    assert call.first_token == unit_ts(1) / 1e6
    assert call.output_preview == "I'm sorry, I can't help with that."


def test_reasoning_content_first_token_and_usage_repeated_every_chunk():
    body = (
        'data: {"id":"a","object":"chat.completion.chunk","model":"deepseek-reasoner","choices":[{"index":0,'
        '"delta":{"role":"assistant","content":null,"reasoning_content":"Think"},"finish_reason":null}],'
        '"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11}}\n\n'
        'data: {"id":"a","object":"chat.completion.chunk","model":"deepseek-reasoner","choices":[{"index":0,'
        '"delta":{"content":"Answer"},"finish_reason":"stop"}],'
        '"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,"prompt_cache_hit_tokens":8,'
        '"prompt_cache_miss_tokens":2,"completion_tokens_details":{"reasoning_tokens":1}}}\n\n'
        'data: [DONE]\n\n')
    call, _ = _decode(sse=body, host="api.deepseek.com")
    assert call.provider == "deepseek" and call.first_token == unit_ts(0) / 1e6
    assert call.x_reasoning == "Think" and call.assistant_text == "Answer"
    assert call.output_tokens == 2 and call.cache_read_tokens == 8 and call.reasoning_tokens == 1
    assert call.x_response_object["choices"][0]["message"]["reasoning_content"] == "Think"


def test_anthropic_usage_names_inside_chat_response():
    resp = {"id": "chatcmpl-gw", "object": "chat.completion", "model": "claude-sonnet-4-5",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"input_tokens": 5, "output_tokens": 7, "cache_read_input_tokens": 1000,
                      "cache_creation_input_tokens": 20}}
    call, _ = _decode(request=dict(REQUEST, stream=False), response=resp, host="gateway.internal")
    assert (call.input_tokens, call.cache_read_tokens, call.cache_creation_tokens, call.input_total_tokens,
            call.total_tokens) == (5, 1000, 20, 1025, 1032)


def test_n_greater_than_one():
    resp = {"id": "c", "object": "chat.completion", "model": "gpt-4o", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "A"}, "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": "B"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
    call, _ = _decode(request=dict(REQUEST, stream=False, n=2), response=resp)
    assert call.assistant_text == "A" and call.finish == "stop" and call.choices_ignored == 1
    body = (f'data: {{{_H},"choices":[{{"index":0,"delta":{{"content":"A"}},"finish_reason":null}}]}}\n\n'
            f'data: {{{_H},"choices":[{{"index":1,"delta":{{"content":"B"}},"finish_reason":null}}]}}\n\n'
            f'data: {{{_H},"choices":[{{"index":2,"delta":{{"content":"C"}},"finish_reason":null}}]}}\n\n'
            'data: [DONE]\n\n')
    call, _ = _decode(request=dict(REQUEST, n=3), sse=body)
    assert call.assistant_text == "A" and call.choices_ignored == 2


def test_error_chunk_mid_stream_keeps_partial_output():
    body = (f'data: {{{_H},"choices":[{{"index":0,"delta":{{"content":"Par"}},"finish_reason":null}}]}}\n\n'
            'data: {"error":{"message":"The server had an error while processing your request.",'
            '"type":"server_error","param":null,"code":null}}\n\n')
    call, _ = _decode(sse=body)
    assert call.finish == "error" and call.error == {
        "source": "stream", "type": "server_error",
        "message": "The server had an error while processing your request."}
    assert call.assistant_text == "Par" and not call.ok


def test_named_error_event_and_ignored_named_events():
    body = ('event: keepalive\ndata: {"choices":[{"index":0,"delta":{"content":"ignored"}}]}\n\n'
            f'data: {{{_H},"choices":[{{"index":0,"delta":{{"content":"Hi"}},"finish_reason":null}}]}}\n\n'
            'event: error\ndata: {"message":"upstream timeout","code":"timeout"}\n\n')
    call, _ = _decode(sse=body)
    assert call.assistant_text == "Hi" and call.error["source"] == "stream" and call.error["type"] == "timeout"


def test_unparseable_chunk_counted_and_skipped():
    body = (f'data: {{{_H},"choices":[{{"index":0,"delta":{{"content":"A"}},"finish_reason":null}}]}}\n\n'
            'data: {"id": broken\n\n'
            f'data: {{{_H},"choices":[{{"index":0,"delta":{{"content":"B"}},"finish_reason":"stop"}}]}}\n\n'
            'data: [DONE]\n\n')
    call, counters = _decode(sse=body)
    assert call.assistant_text == "AB" and call.finish == "stop" and counters["extract_errors"] == 1


def test_cut_stream_partial_object_and_unparsed_arguments():
    cut = PARALLEL_TOOLS.split('data: {"id":"chatcmpl-9x","object":"chat.completion.chunk","created":1741569952,'
                               '"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
                               '"function":{"arguments":"ris')[0]
    call, _ = _decode(sse=cut, state="aborted", end_cause="gap", damage={"gap"})
    assert call.finish == "aborted" and call.error == {"source": "network", "type": "gap", "message": "capture gap"}
    assert call.tool_calls[0].arguments == {"_unparsed": '{"city": "Pa'}
    assert call.tool_calls[1].arguments == {"_unparsed": '{"city": "Ro'}
    assert call.x_response_object["choices"][0]["finish_reason"] is None
    assert call.damaged and call.damage == ["gap"] and call.tpot_ms is None and not call.usage_estimated


def test_missing_done_is_aborted():
    call, _ = _decode(sse=TEXT_STREAM.replace("data: [DONE]\n\n", ""))
    assert call.finish == "aborted" and call.error["type"] == "closed"
    assert call.output_tokens == 6  # usage that arrived is kept


def test_http_429_with_ratelimit_headers():
    body = (b'{"error":{"message":"Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM)",'
            b'"type":"tokens","param":null,"code":"rate_limit_exceeded"}}')
    call, _ = _decode(response=body, status=429, response_headers=[
        ("x-ratelimit-limit-requests", "10000"), ("x-ratelimit-remaining-requests", "9999"),
        ("x-ratelimit-limit-tokens", "30000"), ("x-ratelimit-remaining-tokens", "0"),
        ("x-ratelimit-reset-requests", "6ms"), ("x-ratelimit-reset-tokens", "1m2s"), ("retry-after-ms", "1500")])
    assert call.error["type"] == "tokens" and call.finish == "error" and call.first_token is None
    assert call.ratelimit == {"limit_requests": 10000, "remaining_requests": 9999, "limit_tokens": 30000,
                              "remaining_tokens": 0, "reset": "6ms", "retry_after_s": 1.5}


def test_non_stream_timing():
    resp = {"id": "c", "object": "chat.completion", "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 20, "total_tokens": 23}}
    call, _ = _decode(request=dict(REQUEST, stream=False), response=resp)
    assert call.finish == "length" and call.first_token == RESP_START / 1e6 and call.tpot_ms is None
    assert call.first_chunk is None and call.first_chunk_ms is None
