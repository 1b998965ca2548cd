"""Gemini decoding (wire-apis.md §7, §7.1) through ``decode_call``: SSE (``alt=sse``), JSON-array
streaming, whole bodies and the code-assist envelope, with literal bodies."""

from __future__ import annotations

import hashlib
from collections import Counter

from heron_core.records import BadUnit
from heron_core.wire.decode import decode_call

from .helpers import RESP_START, make_exchange, unit_ts
from .helpers_b import make_json_array_exchange, sse_data

MODEL = "gemini-2.5-pro"
STREAM_PATH = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
HOST = "generativelanguage.googleapis.com"

TOOLS = [{"functionDeclarations": [
    {"name": "read_file", "description": "Reads a file",
     "parameters": {"type": "OBJECT", "properties": {"path": {"type": "STRING"}}, "required": ["path"]}},
    {"name": "list_directory", "description": "Lists a directory",
     "parametersJsonSchema": {"type": "object", "properties": {"dir": {"type": "string"}}}},
]}, {"googleSearch": {}}]

REQUEST = {
    "contents": [{"role": "user", "parts": [{"text": "What is in a.py and the src dir?"}]}],
    "systemInstruction": {"role": "user", "parts": [{"text": "You are an interactive CLI agent."},
                                                    {"text": "Be terse."}]},
    "tools": TOOLS,
    "generationConfig": {"temperature": 0, "thinkingConfig": {"includeThoughts": True, "thinkingBudget": -1}},
}

PROMPT_ONLY = {"promptTokenCount": 1210, "totalTokenCount": 1210,
               "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1210}]}
FINAL_USAGE = {"promptTokenCount": 1210, "candidatesTokenCount": 58, "totalTokenCount": 1400,
               "cachedContentTokenCount": 1024, "thoughtsTokenCount": 132, "toolUsePromptTokenCount": 12,
               "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1210}]}


def chunk(parts: list | None, finish: str | None = None, usage: dict = PROMPT_ONLY, **cand) -> dict:
    c: dict = {"index": 0, **cand}
    if parts is not None:
        c["content"] = {"parts": parts, "role": "model"}
    if finish:
        c["finishReason"] = finish
    return {"candidates": [c], "usageMetadata": usage, "modelVersion": MODEL,
            "responseId": "mJ-faN2zBeGmz7IPsvKAoQ4"}


TOOL_STREAM = [
    chunk([{"text": "**Planning the reads**\n\nI'll read", "thought": True}]),
    chunk([{"text": " both.", "thought": True}]),
    chunk([{"text": "Let me "}]),
    chunk([{"text": "check.", "thoughtSignature": "CiQBVKhc7q"}]),
    chunk([{"functionCall": {"name": "read_file", "args": {"path": "a.py"}}},
           {"functionCall": {"name": "list_directory", "args": {"dir": "src"}}}], "STOP", FINAL_USAGE),
]


def expected_ids() -> list[str]:
    """agents-and-turns.md §6.2 computed by hand: non-thought parts, adjacent text merged."""
    sig = 't:Let me check.\nf:read_file:{"path":"a.py"}\nf:list_directory:{"dir":"src"}'
    return ["tu-" + hashlib.sha256(f"{sig}#{k}".encode()).hexdigest()[:16] for k in range(2)]


def _decode(path: str = STREAM_PATH, request=REQUEST, **kw):
    counters = Counter()
    ex = make_exchange(path, request, host=kw.pop("host", HOST), **kw)
    return decode_call(ex, counters), counters


def test_sse_stream_parallel_function_calls_without_ids():
    call, counters = _decode(sse=sse_data(*TOOL_STREAM))
    assert (call.wire_api, call.detected_by, call.operation, call.provider) == (
        "gemini", "route", "generate_content", "google")
    assert call.model_requested == MODEL and call.model == MODEL
    assert call.response_id == "mJ-faN2zBeGmz7IPsvKAoQ4"
    ids = expected_ids()
    assert [(t.id, t.name, t.arguments) for t in call.tool_calls] == [
        (ids[0], "read_file", {"path": "a.py"}), (ids[1], "list_directory", {"dir": "src"})]
    assert call.finish_reason_raw == "STOP" and call.finish == "tool_use" and call.ok  # STOP + functionCall
    assert call.assistant_text == "Let me check."
    assert call.x_reasoning == "**Planning the reads**\n\nI'll read both."
    # inclusive usage: output = candidates + thoughts; input_total = prompt + toolUsePrompt
    assert (call.input_tokens, call.cache_read_tokens, call.cache_creation_tokens, call.input_total_tokens,
            call.output_tokens, call.reasoning_tokens, call.total_tokens) == (1210, 1024, 0, 1222, 190, 132,
                                                                              1412)
    assert call.usage_raw == FINAL_USAGE
    assert call.first_token == unit_ts(0) / 1e6  # thought text counts
    obj = call.x_response_object
    assert obj["candidates"] == [{"content": {"parts": [
        {"text": "**Planning the reads**\n\nI'll read both.", "thought": True},
        {"text": "Let me check.", "thoughtSignature": "CiQBVKhc7q"},
        {"functionCall": {"name": "read_file", "args": {"path": "a.py"}}},
        {"functionCall": {"name": "list_directory", "args": {"dir": "src"}}}], "role": "model"},
        "finishReason": "STOP", "index": 0}]
    assert obj["usageMetadata"] == FINAL_USAGE and obj["modelVersion"] == MODEL
    assert call.output_preview == "Let me check." and counters["extract_errors"] == 0


def test_history_resent_gives_same_pseudo_ids_and_pairs_results():
    first, _ = _decode(sse=sse_data(*TOOL_STREAM))
    # gemini-cli resends the model turn as it accumulated it (pieces split differently, signature kept)
    # and answers with functionResponse parts in another order.
    req = dict(REQUEST, contents=REQUEST["contents"] + [
        {"role": "model", "parts": [
            {"text": "**Planning the reads**\n\nI'll read both.", "thought": True},
            {"text": "Let me check.", "thoughtSignature": "CiQBVKhc7q"},
            {"functionCall": {"name": "read_file", "args": {"path": "a.py"}}},
            {"functionCall": {"args": {"dir": "src"}, "name": "list_directory"}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "list_directory", "response": {"output": "main.py\nutil.py"}}},
            {"functionResponse": {"name": "read_file", "response": {"error": "File not found: a.py"}}}]},
    ])
    second, _ = _decode(sse=sse_data(chunk([{"text": "a.py is missing."}], "STOP", FINAL_USAGE)), request=req)
    ids = [t.id for t in first.tool_calls]
    assert [(r.tool_call_id, r.name, r.is_error_flag, r.content_text) for r in second.x_tool_results] == [
        (ids[1], "list_directory", False, "main.py\nutil.py"),
        (ids[0], "read_file", True, "File not found: a.py"),
    ]
    assert second.finish == "stop" and second.user_text is None  # last user content is results only
    assert second.x_first_user_text == "What is in a.py and the src dir?"


def test_results_pair_by_position_without_names_and_explicit_ids():
    req = {"contents": [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {}}},
                                    {"functionCall": {"name": "b", "args": {"x": 1}}}]},
        {"role": "user", "parts": [{"functionResponse": {"response": {"output": "A"}}},
                                   {"functionResponse": {"response": {"output": "B"}}}]},
        {"role": "model", "parts": [{"functionCall": {"id": "fc-7f3a", "name": "c", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"id": "fc-7f3a", "name": "c", "response": {"n": 2}}},
                                   {"text": "and now?"}]},
    ]}
    call, _ = _decode(path=f"/v1beta/models/{MODEL}:generateContent", request=req,
                      response=chunk([{"text": "ok"}], "STOP", FINAL_USAGE))
    sig = 'f:a:{}\nf:b:{"x":1}'
    ids = ["tu-" + hashlib.sha256(f"{sig}#{k}".encode()).hexdigest()[:16] for k in range(2)]
    assert [(r.tool_call_id, r.content_text) for r in call.x_tool_results] == [
        (ids[0], "A"), (ids[1], "B"), ("fc-7f3a", '{"n":2}')]
    assert call.user_text == "and now?"


def test_json_array_stream_text_merge_first_token():
    chunks = [chunk([{"text": ""}]), chunk([{"text": "Hello"}]), chunk([{"text": ", world"}]),
              chunk([{"text": "!"}], "STOP", FINAL_USAGE)]
    counters = Counter()
    ex = make_json_array_exchange(f"/v1beta/models/{MODEL}:streamGenerateContent", REQUEST, chunks, host=HOST)
    call = decode_call(ex, counters)
    assert call.is_stream and call.stream_format == "json-array"
    assert call.first_token == unit_ts(1) / 1e6  # the empty text part does not count
    assert call.assistant_text == "Hello, world!" and call.finish == "stop" and call.ok
    assert call.x_response_object["candidates"][0]["content"]["parts"] == [{"text": "Hello, world!"}]
    assert call.tool_calls == [] and call.x_reasoning is None


def test_json_array_stream_without_finish_reason_is_aborted():
    chunks = [chunk([{"text": "Hel"}]), BadUnit('{"candidates": [{"content": {"par'), chunk([{"text": "lo"}])]
    counters = Counter()
    ex = make_json_array_exchange(f"/v1beta/models/{MODEL}:streamGenerateContent", REQUEST, chunks, host=HOST,
                                  closed=False)
    call = decode_call(ex, counters)
    assert call.finish == "aborted" and call.error == {"source": "network", "type": "closed",
                                                       "message": "response ended before completion"}
    assert counters["extract_errors"] == 1 and call.assistant_text == "Hello"
    assert call.x_response_object["candidates"][0]["content"]["parts"] == [{"text": "Hello"}]
    assert call.input_tokens == 1210 and not call.usage_estimated


def test_stream_cut_by_reset():
    call, _ = _decode(sse=sse_data(*TOOL_STREAM[:3]), state="aborted", end_cause="reset")
    assert call.finish == "aborted" and call.error["type"] == "reset" and call.finish_reason_raw is None
    assert call.assistant_text == "Let me"
    assert call.x_response_object["candidates"][0].get("finishReason") is None


def test_safety_finish_is_content_filter():
    safety = {"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": [
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]}],
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12}, "modelVersion": MODEL,
        "responseId": "r1"}
    call, _ = _decode(sse=sse_data(safety))
    assert call.finish_reason_raw == "SAFETY" and call.finish == "content_filter"
    assert call.refusal == "SAFETY" and call.assistant_text is None and call.output_tokens is None
    assert call.first_token is None
    assert call.x_response_object["candidates"][0]["safetyRatings"][0]["blocked"] is True


def test_prompt_blocked_is_content_filter():
    body = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT",
                               "blockReasonMessage": "The prompt was blocked."},
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}, "modelVersion": MODEL}
    call, _ = _decode(path=f"/v1beta/models/{MODEL}:generateContent", response=body)
    assert call.finish_reason_raw == "blocked:PROHIBITED_CONTENT" and call.finish == "content_filter"
    assert call.refusal == "The prompt was blocked." and call.ok
    call, _ = _decode(sse=sse_data(body))  # streamed: the one chunk completes the stream
    assert call.finish == "content_filter" and call.x_response_object["promptFeedback"]["blockReason"]


def test_non_stream_ids_max_tokens_and_recitation():
    body = {"candidates": [{"content": {"parts": [
        {"text": "Reading"}, {"functionCall": {"id": "fc-001", "name": "read_file", "args": {"path": "b"}}}],
        "role": "model"}, "finishReason": "MAX_TOKENS", "index": 0, "avgLogprobs": -0.2}],
        "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 8, "totalTokenCount": 48},
        "modelVersion": "gemini-2.5-flash-preview-09-2025", "responseId": "r2"}
    call, _ = _decode(path=f"/v1beta/models/{MODEL}:generateContent", response=body)
    assert [(t.id, t.name) for t in call.tool_calls] == [("fc-001", "read_file")]
    assert call.finish_reason_raw == "MAX_TOKENS" and call.finish == "tool_use"  # tool calls win over raw
    assert call.model == "gemini-2.5-flash-preview-09-2025" and not call.is_stream
    assert call.first_token == RESP_START / 1e6 and call.x_response_object == body
    assert call.output_tokens == 8 and call.reasoning_tokens is None and call.total_tokens == 48
    call, _ = _decode(path=f"/v1beta/models/{MODEL}:generateContent", response={
        "candidates": [{"content": {"parts": [{"text": "Once upon"}], "role": "model"},
                        "finishReason": "RECITATION", "index": 0}], "modelVersion": MODEL})
    assert call.finish == "content_filter" and call.assistant_text == "Once upon"


def test_malformed_function_call_is_error():
    body = {"candidates": [{"content": {"parts": [], "role": "model"},
                            "finishReason": "MALFORMED_FUNCTION_CALL",
                            "finishMessage": "Malformed function call: read_file(path=)", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10}, "modelVersion": MODEL}
    call, _ = _decode(path=f"/v1beta/models/{MODEL}:generateContent", response=body)
    assert call.finish == "error" and not call.ok
    assert call.error == {"source": "stream", "type": "MALFORMED_FUNCTION_CALL",
                          "message": "Malformed function call: read_file(path=)"}


def test_error_chunk_inside_200_stream():
    err = {"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                     "status": "UNAVAILABLE"}}
    call, _ = _decode(sse=sse_data(TOOL_STREAM[2], err))
    assert call.finish == "error" and call.error == {
        "source": "stream", "type": "UNAVAILABLE",
            "message": "The model is overloaded. Please try again later."}
    assert call.assistant_text == "Let me" and call.input_tokens == 1210


def test_http_429_json_array_error_body():
    err = [{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                      "status": "RESOURCE_EXHAUSTED"}}]
    counters = Counter()
    ex = make_json_array_exchange(f"/v1beta/models/{MODEL}:streamGenerateContent", REQUEST, err, host=HOST,
                                  status=429, response_headers=[("Retry-After", "12")])
    ex.status_code = 429
    call = decode_call(ex, counters)
    assert call.finish == "error" and call.error == {
        "source": "http", "type": "RESOURCE_EXHAUSTED",
            "message": "Resource has been exhausted (e.g. check quota)."}
    assert call.first_token is None and counters["usage_missing"] == 0


def test_missing_usage_is_estimated():
    call, counters = _decode(sse=sse_data({"candidates": [{"content": {"parts": [{"text": "abcdefgh"}],
                                                                       "role": "model"},
                                                           "finishReason": "STOP", "index": 0}]}),
                             request={"contents": [{"parts": [{"text": "a" * 40}]}]})
    assert call.usage_estimated and call.output_tokens == 2 and call.input_total_tokens == 10
    assert call.user_text == "a" * 40 and counters["usage_estimated"] == 1  # role omitted → user


def test_request_extraction():
    call, _ = _decode(sse=sse_data(*TOOL_STREAM))
    assert call.x_system_text == "You are an interactive CLI agent.\nBe terse."
    assert call.user_text == "What is in a.py and the src dir?" and call.x_envelope is None
    assert call.x_tool_definitions == [
        {"name": "read_file", "description": "Reads a file",
         "parameters": TOOLS[0]["functionDeclarations"][0]["parameters"]},
        {"name": "list_directory", "description": "Lists a directory",
         "parameters": TOOLS[0]["functionDeclarations"][1]["parametersJsonSchema"]},
    ]


ENVELOPE_REQ = {
    "model": "gemini-2.5-pro",
    "project": "fluid-catfish-4h2k1",
    "user_prompt_id": "7c0e6b8a2f1d4########3",
    "request": {
        "contents": [{"role": "user", "parts": [{"text": "<session_context>cwd /repo</session_context>"}]},
                     {"role": "user", "parts": [{"text": "summarize README"}]}],
        "systemInstruction": {"role": "user", "parts": [{"text": "You are Gemini CLI."}]},
        "tools": TOOLS[:1],
        "generationConfig": {"temperature": 0, "topP": 1},
        "session_id": "5b7d3c1e-0a9f-4e2b-8c6d-1f2e3a4b5c6d",
    },
}


def env(inner: dict) -> dict:
    return {"response": inner, "traceId": "a3f9c1e0b2d84f67"}


def test_code_assist_envelope_stream():
    elements = [env(chunk([{"text": "The README "}])), env(chunk([{"text": "explains setup."}])),
                env(chunk([{"text": ""}], "STOP", FINAL_USAGE))]
    call, _ = _decode(path="/v1internal:streamGenerateContent?alt=sse", request=ENVELOPE_REQ,
                      host="cloudcode-pa.googleapis.com", sse=sse_data(*elements))
    assert call.wire_api == "gemini" and call.model_requested == "gemini-2.5-pro" and call.model == MODEL
    assert call.response_id == "a3f9c1e0b2d84f67"
    assert call.x_envelope == {"user_prompt_id": "7c0e6b8a2f1d4########3",
                               "session_id": "5b7d3c1e-0a9f-4e2b-8c6d-1f2e3a4b5c6d"}
    assert call.assistant_text == "The README explains setup." and call.finish == "stop"
    assert call.x_system_text == "You are Gemini CLI." and call.user_text == "summarize README"
    assert call.x_first_user_text == "<session_context>cwd /repo</session_context>"
    obj = call.x_response_object
    assert obj["traceId"] == "a3f9c1e0b2d84f67"
    assert obj["response"]["candidates"][0]["content"]["parts"] == [{"text": "The README explains setup."}]
    assert call.output_tokens == 190 and call.first_token == unit_ts(0) / 1e6


def test_code_assist_envelope_non_stream():
    body = env(chunk([{"functionCall": {"name": "read_file", "args": {"path": "README.md"}}}], "STOP",
                     FINAL_USAGE))
    call, _ = _decode(path="/v1internal:generateContent", request=ENVELOPE_REQ, response=body,
                      host="cloudcode-pa.googleapis.com")
    sig = 'f:read_file:{"path":"README.md"}'
    assert call.tool_calls[0].id == "tu-" + hashlib.sha256(f"{sig}#0".encode()).hexdigest()[:16]
    assert call.finish == "tool_use" and call.response_id == "a3f9c1e0b2d84f67"
    assert call.x_response_object == body


def test_array_body_not_split_is_a_stream_and_other_candidates_ignored():
    body = [chunk([{"text": "Hi"}]), {"candidates": [
        {"content": {"parts": [{"text": " there"}], "role": "model"}, "finishReason": "STOP", "index": 0},
        {"content": {"parts": [{"text": "Hello"}], "role": "model"}, "finishReason": "STOP", "index": 1}],
        "usageMetadata": FINAL_USAGE, "modelVersion": MODEL}]
    call, _ = _decode(path=f"/v1beta/models/{MODEL}:streamGenerateContent", response=body)
    assert call.is_stream and call.stream_format == "json-array" and call.first_token == RESP_START / 1e6
    assert call.assistant_text == "Hi there" and call.finish == "stop" and call.choices_ignored == 1
    assert [c["index"] for c in call.x_response_object["candidates"]] == [0, 1]
