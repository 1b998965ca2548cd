"""common.py: finish table, usage styles, tool arguments and ids, pseudo ids, errors, text helpers."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from heron_core.records import BadUnit, Call, Exchange, SseEvent
from heron_core.wire import common as c

# --- finish -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, finish", [
    ("tool_use", "tool_use"), ("tool_calls", "tool_use"), ("function_call", "tool_use"),
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("stop", "stop"), ("eos", "stop"), ("STOP", "stop"),
    ("completed", "stop"),
    ("max_tokens", "length"), ("length", "length"), ("model_context_window_exceeded", "length"),
    ("MAX_TOKENS", "length"), ("incomplete:max_output_tokens", "length"),
    ("refusal", "content_filter"), ("content_filter", "content_filter"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("BLOCKLIST", "content_filter"), ("PROHIBITED_CONTENT", "content_filter"),
    ("SPII", "content_filter"), ("IMAGE_SAFETY", "content_filter"), ("incomplete:content_filter", "content_filter"),
    ("blocked:SAFETY", "content_filter"), ("blocked:OTHER", "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "error"), ("UNEXPECTED_TOOL_CALL", "error"), ("failed", "error"),
    ("failed:server_error", "error"),
    ("cancelled", "aborted"), ("abort", "aborted"), ("cut", "aborted"),
    ("pause_turn", "other"), ("OTHER", "other"), ("LANGUAGE", "other"), ("FINISH_REASON_UNSPECIFIED", "other"),
    ("load", "other"), ("unload", "other"), (None, "other"), ("something_new", "other"),
])
def test_finish_table(raw, finish):
    assert c.map_finish_raw(raw) == finish


def _ex(**kw) -> Exchange:
    base = dict(exchange_id="e", source_id="s", ordinal=0, client_ip=None, client_port=None, server_ip=None,
                server_port=None, status_code=200)
    base.update(kw)
    return Exchange(**base)


def test_outcome_precedence():
    call = Call("c", "s", finish_reason_raw="end_turn")
    call.tool_calls.append(c.make_tool_call("toolu_01", "Read", {}))
    c.set_outcome(call, _ex(), completed=True)
    assert call.finish == "tool_use" and call.error is None
    # aborted beats tool_use
    c.set_outcome(call, _ex(state="aborted", end_cause="reset"), completed=True)
    assert call.finish == "aborted"
    assert call.error == {"source": "network", "type": "reset", "message": "connection reset"}
    # error beats aborted
    call.error = None
    c.set_outcome(call, _ex(status_code=529, state="aborted", end_cause="reset",
                            response_body=b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'),
                  completed=False)
    assert call.finish == "error"
    assert call.error == {"source": "http", "type": "overloaded_error", "message": "Overloaded"}


def test_outcome_missing_marker_and_no_response():
    call = Call("c", "s", finish_reason_raw="stop")
    c.set_outcome(call, _ex(), completed=False)
    assert call.finish == "aborted" and call.error["type"] == "closed"
    call = Call("c", "s")
    c.set_outcome(call, _ex(status_code=None, state="no_response", end_cause="no_response"), completed=False)
    assert call.finish == "aborted" and call.error["type"] == "no_response"


def test_outcome_stream_error_and_refusal_only():
    call = Call("c", "s", finish_reason_raw="end_turn")
    call.error = {"source": "stream", "type": "overloaded_error", "message": "x"}
    c.set_outcome(call, _ex(), completed=True)
    assert call.finish == "error"
    call = Call("c", "s", finish_reason_raw="stop")
    c.set_outcome(call, _ex(), completed=True, refusal_only=True)
    assert call.finish == "content_filter"


# --- usage --------------------------------------------------------------------------------------------


def test_usage_anthropic_additive():
    u = {"input_tokens": 12, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 5000,
         "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
         "output_tokens": 40, "service_tier": "standard"}
    t = c.normalize_usage(u)
    assert t == {"input_tokens": 12, "cache_read_tokens": 5000, "cache_creation_tokens": 300,
                 "cache_creation_1h_tokens": 200, "input_total_tokens": 5312, "output_tokens": 40,
                 "reasoning_tokens": None, "total_tokens": 5352}


def test_usage_openai_inclusive_and_reasoning():
    u = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
         "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 256, "audio_tokens": 0}}
    t = c.normalize_usage(u)
    assert t["input_tokens"] == 1200 and t["input_total_tokens"] == 1200
    assert t["cache_read_tokens"] == 1024 and t["cache_creation_tokens"] == 0
    assert t["output_tokens"] == 300 and t["reasoning_tokens"] == 256 and t["total_tokens"] == 1500


def test_usage_openai_without_details_keeps_nulls():
    t = c.normalize_usage({"prompt_tokens": 9, "completion_tokens": 0, "total_tokens": 9})
    assert t["cache_read_tokens"] is None and t["reasoning_tokens"] is None
    assert t["output_tokens"] == 0 and t["total_tokens"] == 9


def test_usage_deepseek_cache_hit():
    t = c.normalize_usage({"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110,
                           "prompt_cache_hit_tokens": 64, "prompt_cache_miss_tokens": 36})
    assert t["cache_read_tokens"] == 64 and t["input_total_tokens"] == 100


def test_usage_responses():
    t = c.normalize_usage({"input_tokens": 500, "input_tokens_details": {"cached_tokens": 128},
                           "output_tokens": 50, "output_tokens_details": {"reasoning_tokens": 20},
                           "total_tokens": 550})
    assert t == {"input_tokens": 500, "cache_read_tokens": 128, "cache_creation_tokens": 0,
                 "cache_creation_1h_tokens": None, "input_total_tokens": 500, "output_tokens": 50,
                 "reasoning_tokens": 20, "total_tokens": 550}


def test_usage_gemini():
    t = c.normalize_usage({"promptTokenCount": 1000, "candidatesTokenCount": 40, "totalTokenCount": 1100,
                           "cachedContentTokenCount": 600, "thoughtsTokenCount": 60,
                           "toolUsePromptTokenCount": 7})
    assert t["input_tokens"] == 1000 and t["input_total_tokens"] == 1007
    assert t["output_tokens"] == 100 and t["reasoning_tokens"] == 60
    assert t["cache_read_tokens"] == 600 and t["cache_creation_tokens"] == 0
    assert t["total_tokens"] == 1107


def test_usage_ollama():
    t = c.normalize_usage({"done": True, "prompt_eval_count": 26, "eval_count": 290,
                           "total_duration": 4883583458, "eval_duration": 4289000000})
    assert t["input_tokens"] == t["input_total_tokens"] == 26 and t["output_tokens"] == 290
    assert t["cache_read_tokens"] == 0 and t["cache_creation_tokens"] == 0 and t["total_tokens"] == 316


def test_usage_mixed_anthropic_names_in_chat_and_gateway_names():
    # translating gateway: Anthropic names → additive
    t = c.normalize_usage({"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 90})
    assert t["input_total_tokens"] == 100 and t["cache_read_tokens"] == 90
    # LiteLLM-style: inclusive prompt_tokens with Anthropic cache names beside it
    t = c.normalize_usage({"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105,
                           "cache_read_input_tokens": 90, "cache_creation_input_tokens": 3})
    assert t["input_total_tokens"] == 100 and t["cache_read_tokens"] == 90 and t["cache_creation_tokens"] == 3


def test_usage_not_usage():
    assert c.normalize_usage(None) is None
    assert c.normalize_usage({"foo": 1}) is None
    call = Call("c", "s")
    assert c.apply_usage(call, {"foo": 1}) is False and call.usage_raw is None


def test_estimate_usage():
    req = {"model": "m", "system": "abcd" * 10,
           "messages": [{"role": "user", "content": [{"type": "text", "text": "x" * 40}]}]}
    call = Call("c", "s", assistant_text="y" * 9)
    c.estimate_usage(call, req)
    assert call.input_total_tokens == 20 and call.output_tokens == 3 and call.total_tokens == 23
    assert call.cache_read_tokens == 0 and call.cache_creation_tokens == 0 and call.usage_estimated
    assert call.usage_raw is None
    c.estimate_usage(call, req, content_units=7)
    assert call.output_tokens == 7


def test_request_text_chars_skips_binary_and_ids():
    req = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 1000}},
        {"type": "text", "text": "hello"}]}]}
    assert c.request_text_chars(req) == 5
    assert c.request_text_chars({"model": "m", "request": {"contents": [{"role": "user", "parts": [
        {"text": "hi"}, {"inlineData": {"mimeType": "image/png", "data": "QUJD"}}]}]}}) == 2


# --- tools --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, out", [
    ({"a": 1}, {"a": 1}),
    ('{"path": "/tmp/x"}', {"path": "/tmp/x"}),
    ("", {}),
    (None, {}),
    ("[1, 2]", {"value": [1, 2]}),
    ("42", {"value": 42}),
    ('{"path": "/tm', {"_unparsed": '{"path": "/tm'}),
    ([1], {"value": [1]}),
])
def test_parse_tool_arguments(raw, out):
    assert c.parse_tool_arguments(raw) == out


@pytest.mark.parametrize("raw, out", [
    ("calld9c1e2f3a4b5", "call_d9c1e2f3a4b5"),
    ("toolu01ABCDEFGHJK", "toolu_01ABCDEFGHJK"),
    ("fc0a1b2c3d4e", "fc_0a1b2c3d4e"),
    ("chatcmplABCDEFGH12", "chatcmpl_ABCDEFGH12"),
    ("  call_abc12345  ", "call_abc12345"),
    ("call_abc12345", "call_abc12345"),
    ("callabc", "callabc"),            # fewer than 8 characters
    ("callabcdefgh-x", "callabcdefgh-x"),  # something else follows
    ("tu-0123456789abcdef", "tu-0123456789abcdef"),
    (None, ""),
])
def test_canonical_tool_id(raw, out):
    assert c.canonical_tool_id(raw) == out


def test_canonical_tool_id_counts():
    counters = Counter()
    c.canonical_tool_id("calld9c1e2f3a4b5", counters)
    c.canonical_tool_id("call_d9c1e2f3a4b5", counters)
    assert counters["tool_ids_canonicalized"] == 1


def test_make_tool_result_head_and_bytes():
    text = "é" * 3000  # 6000 bytes
    r = c.make_tool_result("toolu01ABCDEFGHJK", [{"type": "text", "text": text}, {"type": "image"}], True, "Read")
    assert r.tool_call_id == "toolu_01ABCDEFGHJK" and r.is_error_flag and r.name == "Read"
    assert r.bytes == 6000 + len("\n[image]")
    assert len(r.content_text.encode()) == 2048 and r.content_text == "é" * 1024


def test_result_flag_from_output():
    assert c.result_flag_from_output('{"output": "boom", "metadata": {"exit_code": 2}}')
    assert c.result_flag_from_output('{"exit_code": 1}')
    assert not c.result_flag_from_output('{"metadata": {"exit_code": 0}}')
    assert not c.result_flag_from_output("exit code 1")


def test_canonical_json():
    assert c.canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == '{"a":{"c":"é","d":[1,2]},"b":1}'


def test_pseudo_ids_spec_formula():
    parts = [{"text": "Let me "}, {"text": "check.", "thoughtSignature": "sig"},
             {"text": "thinking...", "thought": True},
             {"functionCall": {"name": "read_file", "args": {"path": "a.py", "limit": 10}}},
             {"inlineData": {"mimeType": "image/png", "data": "QUJDRA=="}},
             {"functionCall": {"name": "ls", "args": {}}}]
    sig = c.gemini_parts_signature(parts)
    assert sig == 't:Let me check.\nf:read_file:{"limit":10,"path":"a.py"}\nd:image/png:4\nf:ls:{}'
    ids = c.pseudo_tool_ids(sig, 2)
    assert ids[1] == "tu-" + hashlib.sha256((sig + "#1").encode()).hexdigest()[:16]
    # the same message resent (arguments in another key order, signature fields changed) → same ids
    resent = [{"text": "Let me check."}, {"functionCall": {"name": "read_file", "args": {"limit": 10, "path": "a.py"}}},
              {"inlineData": {"mimeType": "image/png", "data": "QUJDRA=="}}, {"functionCall": {"name": "ls"}}]
    assert c.pseudo_tool_ids(c.gemini_parts_signature(resent), 2) == ids


def test_ollama_signature():
    msg = {"role": "assistant", "content": "", "thinking": "hmm",
           "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}
    assert c.ollama_message_signature(msg) == 'f:get_weather:{"city":"Paris"}'


def test_pair_idless_results():
    calls = [("tu-a", "read"), ("tu-b", "ls"), ("tu-c", "read")]
    assert c.pair_idless_results(calls, ["ls", "read", "read"]) == ["tu-b", "tu-a", "tu-c"]
    assert c.pair_idless_results(calls, [None, None]) == ["tu-a", "tu-b"]
    assert c.pair_idless_results(calls, ["grep"]) == [None]


# --- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status, body, etype, msg", [
    (529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}',
     "overloaded_error", "Overloaded"),
    (429, b'{"error":{"message":"Rate limit reached for gpt-4o","type":"tokens","param":null,'
          b'"code":"rate_limit_exceeded"}}', "tokens", "Rate limit reached for gpt-4o"),
    (401, b'{"error":{"message":"Incorrect API key provided","type":null,"code":"invalid_api_key"}}',
     "invalid_api_key", "Incorrect API key provided"),
    (429, b'{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}',
     "RESOURCE_EXHAUSTED", "Resource has been exhausted"),
    (400, b'[{"error":{"code":400,"message":"API key not valid","status":"INVALID_ARGUMENT"}}]',
     "INVALID_ARGUMENT", "API key not valid"),
    (404, b'{"error":"model \\"llama9\\" not found, try pulling it first"}', "error",
     'model "llama9" not found, try pulling it first'),
    (502, b"<html>Bad Gateway</html>", "http_502", "<html>Bad Gateway</html>"),
    (500, b"", "http_500", "Internal Server Error"),
])
def test_http_error_shapes(status, body, etype, msg):
    assert c.http_error(status, body, "Internal Server Error") == {"source": "http", "type": etype, "message": msg}


def test_stream_and_parse_errors():
    assert c.stream_error({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}) == {
        "source": "stream", "type": "overloaded_error", "message": "Overloaded"}
    assert c.stream_error({"type": "error", "code": "server_error", "message": "boom", "param": None}) == {
        "source": "stream", "type": "server_error", "message": "boom"}
    assert c.parse_error(_ex())["type"] == "bad_json"
    assert c.parse_error(_ex(damage={"body_too_large"}))["type"] == "truncated"


# --- stream units -------------------------------------------------------------------------------------


def test_iter_stream_json():
    counters = Counter()
    units = [(1, SseEvent(None, '{"a":1}', None)), (2, SseEvent(None, "not json", None)),
             (3, SseEvent(None, "[DONE]", None)), (4, {"done": True}), (5, BadUnit("{oops")),
             (6, SseEvent("ping", "", None))]
    out = list(c.iter_stream_json(units, counters))
    assert out == [(1, {"a": 1}, None), (3, c.DONE, None), (4, {"done": True}, None)]
    assert counters["extract_errors"] == 2


# --- text ---------------------------------------------------------------------------------------------


def test_text_helpers():
    t = "<system-reminder>\nDo things.\n</system-reminder>\nFix the bug<system-reminder>x</system-reminder>"
    assert c.strip_system_reminders(t) == "\nFix the bug"
    assert c.clean_text(t) == "Fix the bug"
    assert c.clean_text("<system-reminder>only</system-reminder>  ") is None
    assert c.content_text([{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "input_text", "text": "b"},
                           {"type": "thinking", "thinking": "z"}, {"text": "c"}, {"text": "t", "thought": True}]) == "a\nb\nc"
    assert c.content_text("plain") == "plain" and c.content_text(None) == ""


def test_previews():
    assert c.preview("a\n\n  b") == "a b"
    long = c.preview("x" * 1000)
    assert len(long) == 300 and long.endswith("…")
    assert c.preview("   ") is None
    assert c.tool_call_preview("Bash", {"command": "ls -la"}) == '→ Bash({"command":"ls -la"})'
    p = c.tool_call_preview("Write", {"content": "y" * 1000})
    assert len(p) == 300 and p.endswith("…)")
    call = Call("c", "s", user_text="hello", refusal="I can't help with that.")
    c.set_previews(call)
    assert call.input_preview == "hello" and call.output_preview == "I can't help with that."
