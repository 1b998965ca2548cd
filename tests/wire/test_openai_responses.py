"""OpenAI Responses decoding (wire-apis.md §5) through ``decode_call``, with literal event sequences."""

from __future__ import annotations

import json
from collections import Counter

from heron_core.wire.decode import decode_call

from .helpers import RESP_START, make_exchange, unit_ts
from .helpers_b import sse_events

REQUEST = {
    "model": "gpt-5-codex",
    "instructions": "You are Codex, based on GPT-5. You are running as a coding agent in the Codex CLI.",
    "input": [
        {"type": "message", "role": "developer",
         "content": [{"type": "input_text", "text": "<permissions instructions>approval: on-request"}]},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text",
                      "text": "<environment_context>\n  <cwd>/repo</cwd>\n</environment_context>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text",
                                                         "text": "fix the failing test"}]},
        {"type": "reasoning", "id": "rs_0a1", "summary": [{"type": "summary_text", "text": "Look first."}],
         "encrypted_content": "gAAAAABo1"},
        {"type": "function_call", "name": "shell", "arguments": "{\"command\":[\"pytest\",\"-q\"]}",
         "call_id": "callAbCdEfGh12345678"},
        {"type": "function_call_output", "call_id": "call_AbCdEfGh12345678",
         "output": "{\"output\":\"1 failed\",\"metadata\":{\"exit_code\":1,\"duration_seconds\":0.8}}"},
        {"type": "custom_tool_call", "call_id": "call_patch1", "name": "apply_patch",
         "input": "*** Begin Patch\n*** End Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_patch1", "output": "Done!"},
        {"type": "local_shell_call", "call_id": "call_ls1", "status": "completed",
         "action": {"type": "exec", "command": ["ls"]}},
        {"type": "local_shell_call_output", "call_id": "call_ls1", "output": "README.md"},
    ],
    "tools": [
        {"type": "function", "name": "shell", "description": "Runs a shell command", "strict": False,
         "parameters": {"type": "object", "properties": {"command": {"type": "array"}},
                        "required": ["command"]}},
        {"type": "custom", "name": "apply_patch", "description": "Edit files",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: patch"}},
        {"type": "web_search"},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
}

RID = "resp_68c1f2a0b5d48190a1b2c3d4e5f60718"
USAGE = {"input_tokens": 9120, "input_tokens_details": {"cached_tokens": 8064}, "output_tokens": 412,
         "output_tokens_details": {"reasoning_tokens": 256}, "total_tokens": 9532}


def resp(status: str, output: list | None = None, usage: dict | None = None, **kw) -> dict:
    """A ``response`` object as the server embeds it in lifecycle events."""
    return {"id": RID, "object": "response", "created_at": 1760000000, "status": status, "background": False,
            "error": None, "incomplete_details": None, "instructions": REQUEST["instructions"],
            "max_output_tokens": None, "model": "gpt-5-codex", "output": output or [],
            "parallel_tool_calls": True, "previous_response_id": None, "store": False, "tool_choice": "auto",
            "usage": usage, **kw}


REASONING = {"id": "rs_68c1f2a1", "type": "reasoning", "summary": [
    {"type": "summary_text", "text": "**Inspecting tests**\n\nRun both."}], "encrypted_content": "gAAAAABo2"}
MESSAGE = {"id": "msg_68c1f2a2", "type": "message", "status": "completed", "role": "assistant",
           "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Running both."}]}
FC1 = {"id": "fc_68c1f2a3", "type": "function_call", "status": "completed",
       "arguments": "{\"command\":[\"pytest\",\"tests/a.py\"]}", "call_id": "call_Q1w2E3r4T5y6U7i8",
           "name": "shell"}
FC2 = {"id": "fc_68c1f2a4", "type": "function_call", "status": "completed",
       "arguments": "{\"command\":[\"cat\",\"b.py\"]}", "call_id": "callZ9x8C7v6B5n4M3", "name": "shell"}

CREATED = [
    {"type": "response.created", "response": resp("in_progress")},
    {"type": "response.in_progress", "response": resp("in_progress")},
]


def parallel_stream(final_output: list | None) -> str:
    """Reasoning summary, a message, then two function calls whose argument deltas interleave."""
    return sse_events(
        *CREATED,
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": "rs_68c1f2a1", "type": "reasoning", "summary": []}},
        {"type": "response.reasoning_summary_part.added", "item_id": "rs_68c1f2a1", "output_index": 0,
         "summary_index": 0, "part": {"type": "summary_text", "text": ""}},
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_68c1f2a1", "output_index": 0,
         "summary_index": 0, "delta": "**Inspecting tests**", "obfuscation": "x1"},
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_68c1f2a1", "output_index": 0,
         "summary_index": 0, "delta": "\n\nRun both.", "obfuscation": "x2"},
        {"type": "response.reasoning_summary_text.done", "item_id": "rs_68c1f2a1", "output_index": 0,
         "summary_index": 0, "text": "**Inspecting tests**\n\nRun both."},
        {"type": "response.reasoning_summary_part.done", "item_id": "rs_68c1f2a1", "output_index": 0,
         "summary_index": 0, "part": {"type": "summary_text", "text": "**Inspecting tests**\n\nRun both."}},
        {"type": "response.output_item.done", "output_index": 0, "item": REASONING},
        {"type": "response.output_item.added", "output_index": 1,
         "item": {"id": "msg_68c1f2a2", "type": "message", "status": "in_progress", "content": [],
                  "role": "assistant"}},
        {"type": "response.content_part.added", "item_id": "msg_68c1f2a2", "output_index": 1,
         "content_index": 0, "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}},
        {"type": "response.output_text.delta", "item_id": "msg_68c1f2a2", "output_index": 1,
         "content_index": 0, "delta": "Running ", "logprobs": []},
        {"type": "response.output_text.delta", "item_id": "msg_68c1f2a2", "output_index": 1,
         "content_index": 0, "delta": "both.", "logprobs": []},
        {"type": "response.output_text.done", "item_id": "msg_68c1f2a2", "output_index": 1,
         "content_index": 0, "text": "Running both.", "logprobs": []},
        {"type": "response.content_part.done", "item_id": "msg_68c1f2a2", "output_index": 1,
         "content_index": 0, "part": MESSAGE["content"][0]},
        {"type": "response.output_item.done", "output_index": 1, "item": MESSAGE},
        {"type": "response.output_item.added", "output_index": 2,
         "item": dict(FC1, status="in_progress", arguments="")},
        {"type": "response.output_item.added", "output_index": 3,
         "item": dict(FC2, status="in_progress", arguments="")},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_68c1f2a4", "output_index": 3,
         "delta": "{\"command\":[\"cat\","},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_68c1f2a3", "output_index": 2,
         "delta": "{\"command\":[\"pytest\","},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_68c1f2a4", "output_index": 3,
         "delta": "\"b.py\"]}"},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_68c1f2a3", "output_index": 2,
         "delta": "\"tests/a.py\"]}"},
        {"type": "response.completed", "response": resp("completed", final_output, USAGE)},
    )


def _decode(**kw):
    counters = Counter()
    ex = make_exchange(kw.pop("path", "/backend-api/codex/responses"), kw.pop("request", REQUEST),
                       host=kw.pop("host", "chatgpt.com"), **kw)
    return decode_call(ex, counters), counters


def test_stream_parallel_function_calls_interleaved():
    call, counters = _decode(sse=parallel_stream([REASONING, MESSAGE, FC1, FC2]))
    assert (call.wire_api, call.detected_by, call.operation, call.provider) == (
        "openai-responses", "route", "chat", "openai")
    assert call.model == "gpt-5-codex" and call.response_id == RID
    assert [(t.id, t.name, t.arguments) for t in call.tool_calls] == [
        ("call_Q1w2E3r4T5y6U7i8", "shell", {"command": ["pytest", "tests/a.py"]}),
        ("call_Z9x8C7v6B5n4M3", "shell", {"command": ["cat", "b.py"]}),  # canonicalized call_id, not fc_ id
    ]
    assert call.finish_reason_raw == "completed" and call.finish == "tool_use"
    assert call.ok and call.error is None
    assert call.assistant_text == "Running both." and call.x_reasoning == "**Inspecting tests**\n\nRun both."
    assert (call.input_tokens, call.cache_read_tokens, call.cache_creation_tokens, call.input_total_tokens,
            call.output_tokens, call.reasoning_tokens, call.total_tokens) == (9120, 8064, 0, 9120, 412, 256,
                                                                              9532)
    assert call.usage_raw == USAGE and not call.usage_estimated
    assert call.first_token == unit_ts(4) / 1e6  # first reasoning_summary_text.delta
    assert call.output_preview == "Running both." and call.server_tool_count == 0
    assert counters["calls_detected.openai-responses"] == 1 and counters["extract_errors"] == 0


def test_stream_terminal_without_output_uses_accumulated_items():
    call, _ = _decode(sse=parallel_stream([]))
    out = call.x_response_object["output"]
    assert [i["type"] for i in out] == ["reasoning", "message", "function_call", "function_call"]
    assert out[2]["arguments"] == "{\"command\":[\"pytest\",\"tests/a.py\"]}"  # grown by deltas
    assert out[1] == MESSAGE  # replaced by output_item.done
    assert call.x_response_object["status"] == "completed" and call.x_response_object["usage"] == USAGE
    assert [t.arguments for t in call.tool_calls] == [{"command": ["pytest", "tests/a.py"]},
                                                      {"command": ["cat", "b.py"]}]


def text_stream(*deltas: str, terminal: dict | None = None) -> str:
    events = [*CREATED,
              {"type": "response.output_item.added", "output_index": 0,
               "item": {"id": "msg_1", "type": "message", "status": "in_progress", "content": [],
                        "role": "assistant"}},
              {"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0,
               "content_index": 0, "part": {"type": "output_text", "annotations": [], "text": ""}}]
    events += [{"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
                "content_index": 0, "delta": d, "logprobs": []} for d in deltas]
    if terminal is not None:
        events.append(terminal)
    return sse_events(*events)


SIMPLE_REQ = {"model": "gpt-4.1", "input": "Say hi", "stream": True}


def test_text_stream_first_token_whitespace_and_string_input():
    item = dict(MESSAGE, id="msg_1", content=[{"type": "output_text", "annotations": [], "text": " Hi"}])
    body = text_stream("", " ", "Hi", terminal={"type": "response.completed",
                                               "response": resp("completed", [item], USAGE, model="gpt-4.1")})
    call, _ = _decode(sse=body, request=SIMPLE_REQ, path="/v1/responses", host="api.openai.com")
    assert call.first_token == unit_ts(5) / 1e6  # empty delta skipped, whitespace counts
    assert call.finish == "stop" and call.assistant_text == "Hi" and call.model == "gpt-4.1"
    assert call.user_text == "Say hi" == call.x_first_user_text and call.input_preview == "Say hi"
    assert call.x_system_text is None and call.x_tool_results == [] and call.x_tool_definitions == []


def test_stream_incomplete_max_output_tokens():
    partial = dict(MESSAGE, id="msg_1", status="incomplete",
                   content=[{"type": "output_text", "annotations": [], "text": "The answer is"}])
    usage = dict(USAGE, output_tokens=64, total_tokens=9184)
    body = text_stream("The answer", " is", terminal={
        "type": "response.incomplete",
        "response": resp("incomplete", [partial], usage, incomplete_details={"reason": "max_output_tokens"})})
    call, _ = _decode(sse=body)
    assert call.finish_reason_raw == "incomplete:max_output_tokens" and call.finish == "length"
    assert call.output_tokens == 64 and call.assistant_text == "The answer is"
    assert call.x_response_object["status"] == "incomplete" and call.ok


def test_stream_incomplete_content_filter():
    body = text_stream("I can", terminal={
        "type": "response.incomplete",
        "response": resp("incomplete", [], USAGE, incomplete_details={"reason": "content_filter"})})
    call, _ = _decode(sse=body)
    assert call.finish_reason_raw == "incomplete:content_filter" and call.finish == "content_filter"
    assert call.x_response_object["output"][0]["content"][0]["text"] == "I can"  # accumulated


def test_stream_failed_keeps_partial_output_and_usage():
    failed = resp("failed", [REASONING], {"input_tokens": 9120, "output_tokens": 30, "total_tokens": 9150,
                                          "input_tokens_details": {"cached_tokens": 0},
                                          "output_tokens_details": {"reasoning_tokens": 20}},
                  error={"code": "server_error",
                         "message": "An error occurred while processing your request."})
    body = sse_events(
        *CREATED,
        {"type": "response.output_item.added", "output_index": 0, "item": REASONING},
        {"type": "response.output_item.done", "output_index": 0, "item": REASONING},
        {"type": "response.output_item.added", "output_index": 1,
         "item": {"id": "msg_2", "type": "message", "status": "in_progress", "content": [],
                  "role": "assistant"}},
        {"type": "response.content_part.added", "item_id": "msg_2", "output_index": 1, "content_index": 0,
         "part": {"type": "output_text", "annotations": [], "text": ""}},
        {"type": "response.output_text.delta", "item_id": "msg_2", "output_index": 1, "content_index": 0,
         "delta": "Partial ", "logprobs": []},
        {"type": "response.failed", "response": failed},
    )
    call, _ = _decode(sse=body)
    assert call.finish_reason_raw == "failed:server_error" and call.finish == "error" and not call.ok
    assert call.error == {"source": "stream", "type": "server_error",
                          "message": "An error occurred while processing your request."}
    assert call.assistant_text == "Partial" and call.output_tokens == 30
    obj = call.x_response_object
    assert obj["status"] == "failed" and [i["id"] for i in obj["output"]] == ["rs_68c1f2a1", "msg_2"]


def test_error_event_without_terminal_is_failed():
    body = text_stream("Hel", terminal={"type": "error", "code": "rate_limit_exceeded",
                                        "message": "Rate limit reached for gpt-5", "param": None})
    call, _ = _decode(sse=body)
    assert call.finish == "error" and call.finish_reason_raw == "failed:rate_limit_exceeded"
    assert call.error == {"source": "stream", "type": "rate_limit_exceeded",
                          "message": "Rate limit reached for gpt-5"}
    obj = call.x_response_object
    assert obj["status"] == "failed" and obj["id"] == RID and obj["model"] == "gpt-5-codex"
    assert obj["error"] == {"code": "rate_limit_exceeded", "message": "Rate limit reached for gpt-5"}
    assert obj["output"][0]["content"][0]["text"] == "Hel" and call.assistant_text == "Hel"


def test_nested_error_event_shape():
    body = text_stream(terminal={"type": "error", "error": {"type": "server_error", "code": "server_error",
                                                            "message": "boom", "param": None}})
    call, _ = _decode(sse=body)
    assert call.error == {"source": "stream", "type": "server_error", "message": "boom"}
    assert call.finish == "error" and call.first_token is None


def test_cut_stream_rst_partial_object():
    body = sse_events(
        *CREATED,
        {"type": "response.output_item.added", "output_index": 0,
         "item": dict(FC1, status="in_progress", arguments="")},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_68c1f2a3", "output_index": 0,
         "delta": "{\"command\":[\"pyt"},
    )
    call, _ = _decode(sse=body, state="aborted", end_cause="reset")
    assert call.finish_reason_raw == "cut" and call.finish == "aborted" and not call.ok
    assert call.error == {"source": "network", "type": "reset", "message": "connection reset"}
    assert call.tool_calls[0].arguments == {"_unparsed": "{\"command\":[\"pyt"}
    assert call.tool_calls[0].id == "call_Q1w2E3r4T5y6U7i8"
    obj = call.x_response_object
    assert obj == {"id": RID, "object": "response", "model": "gpt-5-codex", "status": "incomplete",
                   "output": [dict(FC1, status="in_progress", arguments="{\"command\":[\"pyt")],
                       "usage": None}
    assert call.first_token == unit_ts(2) / 1e6  # output_item.added of a client tool call
    assert call.usage_raw is None and not call.usage_estimated  # aborted calls are not estimated


def test_clean_close_without_terminal_is_aborted():
    call, _ = _decode(sse=text_stream("Hi"))
    assert call.finish == "aborted" and call.finish_reason_raw == "cut" and call.error["type"] == "closed"


def test_orphan_delta_kept_and_counted():
    body = sse_events(*CREATED,
                      {"type": "response.output_text.delta", "item_id": "msg_9", "output_index": 0,
                       "content_index": 0, "delta": "Hello"},
                      {"type": "response.completed", "response": resp("completed", [], USAGE)})
    call, counters = _decode(sse=body)
    assert call.x_stream_orphan_deltas == 1 and counters["stream_orphan_deltas"] == 1
    assert call.assistant_text == "Hello" and call.finish == "stop"


def test_stream_without_usage_is_estimated():
    item = dict(MESSAGE, id="msg_1", content=[{"type": "output_text", "annotations": [], "text": "abcdefgh"}])
    body = text_stream("abcdefgh", terminal={"type": "response.completed", "response": resp("completed",
                                                                                            [item])})
    req = {"model": "gpt-4.1", "input": "a" * 40, "stream": True}
    call, counters = _decode(sse=body, request=req)
    assert call.usage_estimated and call.output_tokens == 2 and call.input_total_tokens == 10
    assert counters["usage_missing"] == 1


NON_STREAM = resp("completed", [
    {"id": "ws_1", "type": "web_search_call", "status": "completed",
     "action": {"type": "search", "query": "pytest fixtures"}},
    {"id": "rs_2", "type": "reasoning", "summary": [],
     "content": [{"type": "reasoning_text", "text": "Need a patch."}]},
    {"id": "ctc_1", "type": "custom_tool_call", "status": "completed", "call_id": "call_cP9",
     "name": "apply_patch",
     "input": "*** Begin Patch\n*** Update File: a.py\n*** End Patch"},
    {"id": "lsh_1", "type": "local_shell_call", "status": "completed", "call_id": "call_sh1",
     "action": {"type": "exec", "command": ["ls", "-la"], "env": {}, "working_directory": "/repo"}},
    {"id": "fc_3", "type": "function_call", "status": "completed", "call_id": "call_bad", "name": "shell",
     "arguments": "{\"command\": [\"ls\""},
], USAGE)


def test_non_stream_custom_local_shell_server_tool_unparseable():
    call, _ = _decode(response=NON_STREAM, request=dict(REQUEST, stream=False))
    assert not call.is_stream and call.first_token == RESP_START / 1e6
    assert [(t.id, t.name, t.arguments) for t in call.tool_calls] == [
        ("call_cP9", "apply_patch", {"input": "*** Begin Patch\n*** Update File: a.py\n*** End Patch"}),
        ("call_sh1", "local_shell", {"type": "exec", "command": ["ls", "-la"], "env": {},
                                     "working_directory": "/repo"}),
        ("call_bad", "shell", {"_unparsed": "{\"command\": [\"ls\""}),
    ]
    assert call.server_tool_count == 1 and call.finish == "tool_use" and call.tool_call_count == 3
    assert call.x_reasoning == "Need a patch." and call.assistant_text is None
    assert call.output_preview.startswith("→ apply_patch(") and call.x_response_object == NON_STREAM


def test_non_stream_refusal_is_content_filter():
    body = resp("completed", [{"id": "msg_r", "type": "message", "status": "completed", "role": "assistant",
                               "content": [{"type": "refusal", "refusal": "I can't help with that."}]}],
                                   USAGE)
    call, _ = _decode(response=body)
    assert call.finish == "content_filter" and call.refusal == "I can't help with that."
    assert call.finish_reason_raw == "completed" and call.output_preview == "I can't help with that."


def test_streamed_refusal():
    body = sse_events(
        *CREATED,
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": "msg_r", "type": "message", "status": "in_progress", "content": [],
                  "role": "assistant"}},
        {"type": "response.content_part.added", "item_id": "msg_r", "output_index": 0, "content_index": 0,
         "part": {"type": "refusal", "refusal": ""}},
        {"type": "response.refusal.delta", "item_id": "msg_r", "output_index": 0, "content_index": 0,
         "delta": "I can't"},
        {"type": "response.refusal.delta", "item_id": "msg_r", "output_index": 0, "content_index": 0,
         "delta": " help."},
        {"type": "response.refusal.done", "item_id": "msg_r", "output_index": 0, "content_index": 0,
         "refusal": "I can't help."},
        {"type": "response.completed", "response": resp("completed", [], USAGE)},
    )
    call, _ = _decode(sse=body)
    assert call.refusal == "I can't help." and call.finish == "content_filter"
    assert call.first_token == unit_ts(4) / 1e6


def test_completed_without_message_is_other_and_cancelled_is_aborted():
    body = resp("completed", [{"id": "rs_3", "type": "reasoning", "summary": []}], USAGE)
    call, _ = _decode(response=body)
    assert call.finish == "other" and call.finish_reason_raw == "completed"
    call, _ = _decode(response=resp("cancelled", [], None))
    assert call.finish == "aborted" and call.finish_reason_raw == "cancelled" and not call.ok


def test_custom_tool_call_stream_first_token_and_input():
    item = {"id": "ctc_9", "type": "custom_tool_call", "status": "in_progress", "call_id": "call_c9",
            "name": "apply_patch", "input": ""}
    body = sse_events(
        *CREATED,
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.custom_tool_call_input.delta", "item_id": "ctc_9", "output_index": 0,
         "delta": "*** Begin Patch\n"},
        {"type": "response.custom_tool_call_input.delta", "item_id": "ctc_9", "output_index": 0,
         "delta": "*** End Patch"},
        {"type": "response.custom_tool_call_input.done", "item_id": "ctc_9", "output_index": 0,
         "input": "*** Begin Patch\n*** End Patch"},
        {"type": "response.completed", "response": resp("completed", [], USAGE)},
    )
    call, _ = _decode(sse=body)
    assert [(t.id, t.name, t.arguments) for t in call.tool_calls] == [
        ("call_c9", "apply_patch", {"input": "*** Begin Patch\n*** End Patch"})]
    assert call.first_token == unit_ts(2) / 1e6 and call.finish == "tool_use"


def test_request_extraction():
    call, _ = _decode(sse=parallel_stream([MESSAGE]))
    assert call.x_system_text == REQUEST["instructions"] + "\n<permissions instructions>approval: on-request"
    assert call.x_first_user_text.startswith("<environment_context>")
    assert call.user_text == "fix the failing test"
    assert [(r.tool_call_id, r.name, r.is_error_flag, r.content_text) for r in call.x_tool_results] == [
        ("call_AbCdEfGh12345678", "shell", True, REQUEST["input"][5]["output"]),  # exit_code 1
        ("call_patch1", "apply_patch", False, "Done!"),
        ("call_ls1", "local_shell", False, "README.md"),
    ]
    assert call.x_tool_definitions == [
        {"name": "shell", "description": "Runs a shell command",
         "parameters": REQUEST["tools"][0]["parameters"]},
        {"name": "apply_patch", "description": "Edit files", "parameters": REQUEST["tools"][1]["format"]},
        {"name": "web_search", "description": None, "parameters": None},
    ]


def test_item_without_type_is_message_and_output_parts():
    req = {"model": "gpt-4.1", "input": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "input_text", "text": "look"},
                                     {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
        {"type": "function_call", "call_id": "call_x1", "name": "screenshot", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_x1",
         "output": [{"type": "input_text", "text": "captured"}, {"type": "input_image",
                                                                 "image_url": "data:…"}]},
    ]}
    call, _ = _decode(response=resp("completed", [MESSAGE], USAGE), request=req)
    assert call.x_system_text == "Be brief." and call.user_text == "look"
    [res] = call.x_tool_results
    assert res.content_text == "captured\n[input_image]" and res.name == "screenshot"


def test_http_429_and_shape_detection():
    err = {"error": {"message": "Rate limit reached for gpt-5 in organization org-x on tokens per min.",
                     "type": "tokens", "param": None, "code": "rate_limit_exceeded"}}
    call, _ = _decode(response=err, status=429, response_headers=[("retry-after", "3")])
    assert call.finish == "error" and call.error["source"] == "http" and call.error["type"] == "tokens"
    assert call.first_token is None and call.finish_reason_raw is None
    # a gateway path: detected by shape (model + input, no messages)
    call, counters = _decode(sse=parallel_stream([MESSAGE]), path="/gw/llm", host="gw.internal")
    assert (call.wire_api, call.detected_by) == ("openai-responses", "shape") and call.provider is None


def test_non_stream_bad_json():
    call, _ = _decode(response=b'{"id": "resp_1", "object": "resp')
    assert call.finish == "error" and call.error["source"] == "parse"


def test_sse_unparseable_event_counted():
    body = text_stream("ok", terminal={"type": "response.completed", "response": resp("completed", [],
                                                                                      USAGE)})
    body = body.replace("event: response.in_progress\ndata: {", "event: response.in_progress\ndata: {{", 1)
    call, counters = _decode(sse=body)
    assert counters["extract_errors"] == 1 and call.finish == "stop" and call.assistant_text == "ok"
    assert json.loads(json.dumps(call.x_response_object))["status"] == "completed"
