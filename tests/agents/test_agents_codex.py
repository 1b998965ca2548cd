"""codex-cli profile: the §3.1 session sources in priority order, sub-agents (§7) and compaction (§8)."""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

from agent_helpers import codex_headers, output_message, responses_object, run

from heron_core import ids

PATH = "/v1/responses"
SID = "01a20954-fc29-7ce1-97c5-9e20dcad413d"
TURN = "01a20954-fc56-76a3-a87f-d43296367c2a"
PARENT = "01a20950-0000-7000-8000-00000000beef"
INSTRUCTIONS = (
    "You are a coding agent running in the Codex CLI, a terminal-based coding assistant. Codex CLI is "
    "an open source project led by OpenAI."
)

TURN_METADATA = {
    "installation_id": "6b694ffd-c7ed-4887-809b-f62a3240c4bc",
    "session_id": SID,
    "thread_id": SID,
    "agent_name": "/root",
    "turn_id": TURN,
    "window_id": f"{SID}:0",
    "window_number": 0,
    "context_window_id": "01a20954-fc2f-7072-bc87-d5708ceab9d0",
    "request_kind": "turn",
    "history_initialization": "new",
    "root_turn_id": TURN,
    "thread_source": "user",
    "turn_trigger": "exec",
    "sandbox": "none",
    "sandbox_mode": "danger-full-access",
    "turn_started_at_unix_ms": 1795452894299,
    "model": "gpt-5-codex",
}
TOOLS = [
    {
        "type": "function",
        "name": "exec_command",
        "description": "Runs a command in a PTY.",
        "strict": False,
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
    },
    {
        "type": "function",
        "name": "write_stdin",
        "description": "Writes characters to an exec session.",
        "strict": False,
        "parameters": {"type": "object", "properties": {"session_id": {"type": "number"}}},
    },
]
PROMPT_ITEMS = [
    {
        "type": "message",
        "id": "msg_1781a09f",
        "role": "developer",
        "content": [
            {
                "type": "input_text",
                "text": "<permissions instructions>sandbox: none</permissions instructions>",
            }
        ],
    },
    {
        "type": "message",
        "id": "msg_01a20954-fcf8",
        "role": "user",
        "content": [
            {
                "type": "input_text",
                "text": "<environment_context>\n  <cwd>/tmp/work</cwd>\n  <shell>bash</shell>\n"
                "</environment_context>",
            }
        ],
    },
    {
        "type": "message",
        "id": "msg_01a20954-fd15",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "Run the shell command `echo hi` and tell me its output."}
        ],
    },
]
FUNCTION_CALL = {
    "type": "function_call",
    "status": "completed",
    "id": "fc_4009b75c29266763fac44b416703ad38",
    "name": "exec_command",
    "arguments": '{"cmd":"echo hi"}',
    "call_id": "call_HXiHtLf1wmOnW0ohQ9Yk5VKW",
}
FUNCTION_OUTPUT = {
    "type": "function_call_output",
    "id": "fco_01a20954-fe4c",
    "call_id": "call_HXiHtLf1wmOnW0ohQ9Yk5VKW",
    "output": "Chunk ID: e26957\nWall time: 0.0000 seconds\nProcess exited with code 0\nOutput:\nhi\n",
}


def body(items: list[dict[str, Any]], client_metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {
        "model": "gpt-5-codex",
        "instructions": INSTRUCTIONS,
        "input": items,
        "tools": TOOLS,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
        "store": False,
        "stream": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": SID,
    }
    if client_metadata is not None:
        b["client_metadata"] = client_metadata
    return b


def tool_call_response() -> dict[str, Any]:
    return responses_object([dict(FUNCTION_CALL)])


def final_response() -> dict[str, Any]:
    return responses_object([output_message("The tool returned: hi. That completes the task.")])


def meta_json() -> str:
    return json.dumps(TURN_METADATA, separators=(",", ":"))


def test_turn_metadata_header_json_two_calls() -> None:
    c = Counter()
    hs = codex_headers([("x-codex-turn-metadata", meta_json()), ("session-id", SID), ("thread-id", SID)])
    call1 = run(PATH, body(PROMPT_ITEMS), c, headers=hs, response=tool_call_response())
    call2 = run(
        PATH,
        body([*PROMPT_ITEMS, FUNCTION_CALL, FUNCTION_OUTPUT]),
        c,
        headers=hs,
        exchange_id="ex-2",
        response=final_response(),
    )
    for call in (call1, call2):
        assert call.agent_kind == "codex-cli"
        assert (call.session_source, call.native_session_id, call.native_turn_id) == ("header", SID, TURN)
        assert call.session_id == ids.session_id("test", "codex-cli", SID)
        assert call.subagent is None and call.x_parent_hint is None
    assert (call1.x_user_turn_start, call1.x_terminal) == (True, False)
    assert (call2.x_user_turn_start, call2.x_terminal) == (False, True)
    assert c["calls_by_agent_kind.codex-cli"] == 2


def test_turn_metadata_header_base64_and_base64url() -> None:
    raw = meta_json().encode()
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
        call = run(
            PATH,
            body(PROMPT_ITEMS),
            headers=codex_headers([("x-codex-turn-metadata", encoded)]),
            response=final_response(),
        )
        assert (call.session_source, call.native_session_id, call.native_turn_id) == ("header", SID, TURN)


def test_client_metadata_only() -> None:
    cm = {
        "thread_id": SID,
        "x-codex-window-id": f"{SID}:0",
        "turn_id": TURN,
        "x-codex-installation-id": "6b694ffd-c7ed-4887-809b-f62a3240c4bc",
        "session_id": SID,
    }
    call = run(PATH, body(PROMPT_ITEMS, cm), headers=codex_headers(), response=final_response())
    assert (call.session_source, call.native_session_id, call.native_turn_id) == ("metadata", SID, TURN)


def test_client_metadata_nested_turn_metadata_only() -> None:
    cm = {"x-codex-window-id": f"{SID}:0", "x-codex-turn-metadata": meta_json()}
    call = run(PATH, body(PROMPT_ITEMS, cm), headers=codex_headers(), response=final_response())
    assert (call.session_source, call.native_session_id, call.native_turn_id) == ("metadata", SID, TURN)


def test_session_id_headers() -> None:
    for name in ("session-id", "session_id", "conversation_id"):
        call = run(PATH, body(PROMPT_ITEMS), headers=codex_headers([(name, SID)]), response=final_response())
        assert (call.session_source, call.native_session_id, call.native_turn_id) == ("header", SID, None), (
            name
        )


def test_tool_anchor_fallback_with_canonicalized_id() -> None:
    """No session id anywhere: the first function_call's call_id (canonical, §6.1) names the session."""
    c = Counter()
    fc = dict(FUNCTION_CALL, call_id="callHXiHtLf1wmOnW0ohQ9Yk5VKW")
    out = dict(FUNCTION_OUTPUT, call_id="callHXiHtLf1wmOnW0ohQ9Yk5VKW")
    call = run(PATH, body([*PROMPT_ITEMS, fc, out]), c, headers=codex_headers(), response=final_response())
    assert (call.session_source, call.native_session_id) == ("tool_anchor", "call_HXiHtLf1wmOnW0ohQ9Yk5VKW")
    assert c["tool_ids_canonicalized"] >= 1


def test_detected_by_originator_or_user_agent() -> None:
    only_originator = [("originator", "codex_cli_rs"), ("user-agent", "reqwest/0.12"), ("session_id", SID)]
    only_ua = [("user-agent", "codex-tui/0.63.0 (Mac OS 15.1; arm64)"), ("session_id", SID)]
    for hs in (only_originator, only_ua):
        call = run(PATH, body(PROMPT_ITEMS), headers=hs, response=final_response())
        assert call.agent_kind == "codex-cli"


def test_subagent_header_with_parent() -> None:
    c = Counter()
    hs = codex_headers(
        [
            ("x-codex-turn-metadata", meta_json()),
            ("x-openai-subagent", "review"),
            ("x-codex-parent-thread-id", PARENT),
        ]
    )
    call = run(PATH, body(PROMPT_ITEMS), c, headers=hs, response=final_response())
    assert (call.subagent, call.x_parent_hint) == ("review", PARENT)
    assert call.session_id == ids.session_id(
        "test", "codex-cli", SID
    )  # own key; the assembler maps the parent
    assert not call.is_auxiliary
    assert not call.x_user_turn_start and not call.x_terminal
    assert c["calls_subagent"] == 1


def test_subagent_from_metadata() -> None:
    meta = dict(TURN_METADATA, subagent_kind="collab_spawn", parent_thread_id=PARENT)
    hs = codex_headers([("x-codex-turn-metadata", json.dumps(meta))])
    call = run(PATH, body(PROMPT_ITEMS), headers=hs, response=final_response())
    assert (call.subagent, call.x_parent_hint) == ("collab_spawn", PARENT)


def test_compact_is_auxiliary_summarizer() -> None:
    c = Counter()
    hs = codex_headers([("x-codex-turn-metadata", meta_json()), ("x-openai-subagent", "compact")])
    items = [
        *PROMPT_ITEMS,
        FUNCTION_CALL,
        FUNCTION_OUTPUT,
        output_message("The tool returned: hi."),
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Summarize the conversation."}],
        },
    ]
    call = run(PATH, body(items), c, headers=hs, response=final_response())
    assert (call.is_auxiliary, call.auxiliary_kind, call.subagent) == (True, "summarizer", None)
    assert call.session_id == ids.session_id("test", "codex-cli", SID)
    assert not call.x_terminal
    assert c["calls_auxiliary"] == 1 and c["calls_subagent"] == 0
