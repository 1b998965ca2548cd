"""Legacy completions decoding (wire-apis.md §6) through ``decode_call``, with literal bodies."""

from __future__ import annotations

from collections import Counter

from heron_core.wire.decode import decode_call

from .helpers import RESP_START, make_exchange, unit_ts

REQUEST = {"model": "Qwen/Qwen2.5-7B-Instruct", "prompt": "def fib(n):", "max_tokens": 64, "temperature": 0,
           "stream": True, "stream_options": {"include_usage": True}}

# vLLM's layout: text chunks, a finish chunk with stop_reason, the include_usage chunk, [DONE].
VLLM_STREAM = (
    'data: {"id":"cmpl-8a1f","object":"text_completion","created":1741569952,"model":"Qwen/Qwen2.5-7B-Instruct",'
    '"choices":[{"index":0,"text":"\\n","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}\n\n'
    'data: {"id":"cmpl-8a1f","object":"text_completion","created":1741569952,"model":"Qwen/Qwen2.5-7B-Instruct",'
    '"choices":[{"index":0,"text":"    if n < 2:","logprobs":null,"finish_reason":null,"stop_reason":null}],'
    '"usage":null}\n\n'
    'data: {"id":"cmpl-8a1f","object":"text_completion","created":1741569952,"model":"Qwen/Qwen2.5-7B-Instruct",'
    '"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":null}\n\n'
    'data: {"id":"cmpl-8a1f","object":"text_completion","created":1741569952,"model":"Qwen/Qwen2.5-7B-Instruct",'
    '"choices":[],"usage":{"prompt_tokens":5,"total_tokens":69,"completion_tokens":64}}\n\n'
    'data: [DONE]\n\n'
)


def _decode(request=REQUEST, host="localhost:8000", **kw):
    counters = Counter()
    return decode_call(make_exchange("/v1/completions", request, host=host, **kw), counters), counters


def test_vllm_stream():
    call, counters = _decode(sse=VLLM_STREAM)
    assert (call.wire_api, call.operation, call.provider) == ("openai-completions", "text_completion", None)
    assert call.response_id == "cmpl-8a1f" and call.model == "Qwen/Qwen2.5-7B-Instruct"
    assert call.first_token == unit_ts(0) / 1e6  # "\n" is whitespace and counts
    assert call.assistant_text == "if n < 2:" and call.finish == "length" and call.ok
    assert (call.input_total_tokens, call.output_tokens, call.total_tokens) == (5, 64, 69)
    assert call.user_text == "def fib(n):" and call.input_preview == "def fib(n):"
    assert call.tool_calls == [] and call.x_tool_definitions == []
    assert call.x_response_object == {
        "id": "cmpl-8a1f", "object": "text_completion", "created": 1741569952,
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "choices": [{"index": 0, "text": "\n    if n < 2:", "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 5, "total_tokens": 69, "completion_tokens": 64}}
    assert call.tpot_ms == (unit_ts(4) + 1_000 - unit_ts(0)) / 1000 / 63


def test_vllm_abort_is_aborted_without_network_error():
    body = ('data: {"id":"cmpl-1","object":"text_completion","model":"m","choices":[{"index":0,"text":"x",'
            '"finish_reason":null}]}\n\n'
            'data: {"id":"cmpl-1","object":"text_completion","model":"m","choices":[{"index":0,"text":"",'
            '"finish_reason":"abort"}]}\n\n'
            'data: [DONE]\n\n')
    call, counters = _decode(sse=body)
    assert call.finish == "aborted" and call.finish_reason_raw == "abort" and call.error is None
    assert not call.ok and not call.usage_estimated and counters["usage_missing"] == 1


def test_stream_without_usage_estimated_from_chunks():
    body = ''.join(f'data: {{"id":"c","object":"text_completion","model":"m","choices":[{{"index":0,"text":"{t}",'
                   '"finish_reason":null}]}\n\n' for t in ("a", "", "b", "c"))
    body += 'data: {"id":"c","object":"text_completion","model":"m","choices":[{"index":0,"text":"",' \
            '"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    call, _ = _decode(request=dict(REQUEST, prompt="x" * 8), sse=body)
    assert call.usage_estimated and call.output_tokens == 3 and call.input_total_tokens == 2


def test_non_stream_openai_with_n_and_list_prompt():
    resp = {"id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7", "object": "text_completion", "created": 1589478378,
            "model": "gpt-3.5-turbo-instruct",
            "choices": [{"text": "\n\nThis is indeed a test", "index": 0, "logprobs": None, "finish_reason": "length"},
                        {"text": "\n\nYes", "index": 1, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}
    req = {"model": "gpt-3.5-turbo-instruct", "prompt": ["Say this is a test", "Other"], "n": 1}
    call, _ = _decode(request=req, response=resp, host="api.openai.com")
    assert call.provider == "openai" and call.assistant_text == "This is indeed a test"
    assert call.finish == "length" and call.choices_ignored == 1 and call.user_text == "Say this is a test"
    assert call.first_token == RESP_START / 1e6 and call.x_response_object == resp


def test_token_array_prompt_preview():
    resp = {"id": "c", "object": "text_completion", "model": "m",
            "choices": [{"index": 0, "text": "ok", "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}}
    call, _ = _decode(request={"model": "m", "prompt": [1, 2, 3, 4]}, response=resp)
    assert call.input_preview == "[4 tokens]"
    call, _ = _decode(request={"model": "m", "prompt": [[1, 2], [3]]}, response=resp)
    assert call.input_preview == "[2 tokens]"


def test_content_filter_and_error_chunk():
    resp = {"id": "c", "object": "text_completion", "model": "m",
            "choices": [{"index": 0, "text": "", "finish_reason": "content_filter"}]}
    call, _ = _decode(request=dict(REQUEST, stream=False), response=resp)
    assert call.finish == "content_filter"
    body = ('data: {"id":"c","object":"text_completion","model":"m","choices":[{"index":0,"text":"x"}]}\n\n'
            'data: {"error":{"object":"error","message":"out of memory","type":"InternalServerError","code":500}}\n\n')
    call, _ = _decode(sse=body)
    assert call.finish == "error" and call.error == {"source": "stream", "type": "InternalServerError",
                                                     "message": "out of memory"}
    assert call.assistant_text == "x"


def test_cut_stream():
    call, _ = _decode(sse=VLLM_STREAM.split("data: [DONE]")[0].split('data: {"id":"cmpl-8a1f","object":'
                                                                      '"text_completion","created":1741569952,'
                                                                      '"model":"Qwen/Qwen2.5-7B-Instruct",'
                                                                      '"choices":[{"index":0,"text":""')[0],
                      state="aborted", end_cause="expired")
    assert call.finish == "aborted" and call.error["type"] == "expired"
    assert call.x_response_object["choices"][0]["text"] == "\n    if n < 2:"


def test_http_error_vllm():
    body = b'{"object":"error","message":"The model `foo` does not exist.","type":"NotFoundError","param":null,"code":404}'
    call, _ = _decode(request=dict(REQUEST, model="foo"), response=body, status=404)
    assert call.finish == "error" and call.error == {"source": "http", "type": "NotFoundError",
                                                     "message": "The model `foo` does not exist."}
