"""claude-cli profile: session sources, sub-agents and auxiliary calls (agents-and-turns.md §3.1, §7, §8)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from agent_helpers import (
    CLAUDE_UA,
    anthropic_message,
    anthropic_tool_use_sse,
    claude_headers,
    run,
)

from heron_core import ids

PATH = "/v1/messages?beta=true"
SID = "966f3a65-08fd-454a-80a3-d2ef007be562"
DEVICE = "d49246159c2eb939a920af3c6b14951cf2ad2c9383327a27aa615b13c4f4afcd"
PROMPT = "Run the shell command `echo hi` with the Bash tool and tell me its output."
SYSTEM = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.83a; cc_entrypoint=sdk-cli;"},
    {
        "type": "text",
        "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
        "cache_control": {"type": "ephemeral"},
    },
    {
        "type": "text",
        "text": "\nYou are an agent working with the user toward their goals, using your own judgment "
        "along the way.",
        "cache_control": {"type": "ephemeral"},
    },
]


def _tool(name: str, desc: str, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "description": desc,
        "input_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": props,
            "required": list(props),
            "additionalProperties": False,
        },
    }


MAIN_TOOLS = [
    _tool(
        "Agent",
        "Launch a new agent to handle complex, multi-step tasks autonomously.",
        {
            "description": {"type": "string"},
            "prompt": {"type": "string"},
            "subagent_type": {"type": "string"},
        },
    ),
    _tool(
        "Bash",
        "Executes a given bash command and returns its output.",
        {"command": {"type": "string"}, "description": {"type": "string"}},
    ),
    _tool(
        "Edit",
        "Performs exact string replacements in files.",
        {"file_path": {"type": "string"}, "old_string": {"type": "string"}, "new_string": {"type": "string"}},
    ),
    _tool("Read", "Reads a file from the local filesystem.", {"file_path": {"type": "string"}}),
    _tool(
        "Write",
        "Writes a file to the local filesystem.",
        {"file_path": {"type": "string"}, "content": {"type": "string"}},
    ),
]
EXPLORE_TOOLS = [t for t in MAIN_TOOLS if t["name"] in ("Bash", "Read")] + [
    _tool("Grep", "A powerful search tool built on ripgrep.", {"pattern": {"type": "string"}}),
    _tool("Glob", "Fast file pattern matching tool.", {"pattern": {"type": "string"}}),
]


def user_id_json(session_id: str) -> str:
    return json.dumps(
        {"device_id": DEVICE, "account_uuid": "", "session_id": session_id}, separators=(",", ":")
    )


def first_user_message(prompt: str = PROMPT) -> dict[str, Any]:
    return {
        "role": "user",
        "content": [
            {
                "type": "text",
                "text": "<system-reminder>\n# Environment\nYou have been invoked in the following "
                "environment: \n - Primary working directory: /tmp/work\n - Platform: linux\n"
                "</system-reminder>",
            },
            {"type": "text", "text": "<system-reminder>\nToday's date is 2026-11-23.\n</system-reminder>"},
            {"type": "text", "text": prompt},
        ],
    }


TOOL_USE = {
    "type": "tool_use",
    "id": "toolu_01SUwQDbRBdBBX4YsELh7KSf",
    "name": "Bash",
    "input": {"command": "echo hi", "description": "Print hi"},
}
TOOL_RESULT_MSG = {
    "role": "user",
    "content": [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_01SUwQDbRBdBBX4YsELh7KSf",
            "content": "hi\n\n<system-reminder>\n<total_tokens>14978107 tokens left</total_tokens>\n"
            "</system-reminder>",
        }
    ],
}


def body(
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = None,
    user_id: str | None = None,
    system: Any = None,
    max_tokens: int = 32000,
    stream: bool = True,
) -> dict[str, Any]:
    b: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "messages": messages,
        "system": SYSTEM if system is None else system,
    }
    if tools is not None:
        b["tools"] = tools
    if user_id is not None:
        b["metadata"] = {"user_id": user_id}
    b.update(
        {"max_tokens": max_tokens, "thinking": {"type": "adaptive", "display": "omitted"}, "stream": stream}
    )
    return b


def test_session_header_two_calls_one_session() -> None:
    c = Counter()
    call1 = run(
        PATH,
        body([first_user_message()], tools=MAIN_TOOLS, user_id=user_id_json(SID)),
        c,
        headers=claude_headers(SID),
        sse=anthropic_tool_use_sse(
            "toolu_01SUwQDbRBdBBX4YsELh7KSf", "Bash", '{"command":"echo hi","description":"Print hi"}'
        ),
    )
    call2 = run(
        PATH,
        body(
            [first_user_message(), {"role": "assistant", "content": [TOOL_USE]}, TOOL_RESULT_MSG],
            tools=MAIN_TOOLS,
            user_id=user_id_json(SID),
        ),
        c,
        headers=claude_headers(SID),
        exchange_id="ex-2",
        response=anthropic_message([{"type": "text", "text": "The tool returned: hi."}], "end_turn"),
    )
    for call in (call1, call2):
        assert call.agent_kind == "claude-cli"
        assert call.session_source == "header"
        assert call.native_session_id == SID
        assert call.session_id == ids.session_id("test", "claude-cli", SID)
        assert call.subagent is None and not call.is_auxiliary
    assert (call1.x_user_turn_start, call1.x_terminal) == (True, False)
    assert call1.finish == "tool_use"
    assert (call2.x_user_turn_start, call2.x_terminal) == (False, True)
    assert call1.x_output_fingerprint and call2.x_output_fingerprint
    assert call1.x_output_fingerprint != call2.x_output_fingerprint
    assert c["calls_by_agent_kind.claude-cli"] == 2
    assert c["session_unresolved"] == 0


def test_metadata_user_id_json_string() -> None:
    call = run(
        PATH,
        body([first_user_message()], tools=MAIN_TOOLS, user_id=user_id_json(SID)),
        headers=claude_headers(None),
        response=anthropic_message([{"type": "text", "text": "hi"}], "end_turn"),
    )
    assert (call.agent_kind, call.session_source, call.native_session_id) == ("claude-cli", "metadata", SID)
    assert call.session_id == ids.session_id("test", "claude-cli", SID)


def test_metadata_user_id_legacy_form() -> None:
    legacy = f"user_{DEVICE}_account__session_{SID}"
    call = run(
        PATH,
        body([first_user_message()], tools=MAIN_TOOLS, user_id=legacy),
        headers=claude_headers(None),
        response=anthropic_message([{"type": "text", "text": "hi"}], "end_turn"),
    )
    assert (call.session_source, call.native_session_id) == ("metadata", SID)


def test_header_wins_over_metadata() -> None:
    other = "00000000-1111-2222-3333-444444444444"
    call = run(
        PATH,
        body([first_user_message()], tools=MAIN_TOOLS, user_id=user_id_json(other)),
        headers=claude_headers(SID),
        response=anthropic_message([{"type": "text", "text": "hi"}], "end_turn"),
    )
    assert (call.session_source, call.native_session_id) == ("header", SID)


def test_json_user_id_without_session_falls_back_to_tool_anchor() -> None:
    uid = json.dumps({"device_id": DEVICE, "account_uuid": ""})
    call = run(
        PATH,
        body(
            [first_user_message(), {"role": "assistant", "content": [TOOL_USE]}, TOOL_RESULT_MSG],
            tools=MAIN_TOOLS,
            user_id=uid,
        ),
        headers=claude_headers(None),
        response=anthropic_message([{"type": "text", "text": "hi"}], "end_turn"),
    )
    assert (call.session_source, call.native_session_id) == ("tool_anchor", "toolu_01SUwQDbRBdBBX4YsELh7KSf")


def test_no_session_source_is_unresolved() -> None:
    """claude-cli has no conversation fingerprint: a text-only call without header/metadata is unresolved."""
    c = Counter()
    call = run(
        PATH,
        body([first_user_message("hello")], tools=MAIN_TOOLS),
        c,
        headers=claude_headers(None),
        response=anthropic_message([{"type": "text", "text": "Hello!"}], "end_turn"),
    )
    assert call.agent_kind == "claude-cli"
    assert call.native_session_id is None and call.session_id is None and call.session_source is None
    assert c["session_unresolved"] == 1
    assert call.x_terminal and call.x_user_turn_start


def test_subagent_tools_without_task_or_agent() -> None:
    c = Counter()
    prompt = "Find every place where the HTTP parser handles chunked encoding and report file:line."
    call = run(
        PATH,
        body([first_user_message(prompt)], tools=EXPLORE_TOOLS, user_id=user_id_json(SID)),
        c,
        headers=claude_headers(SID),
        sse=anthropic_tool_use_sse("toolu_01Grep0000000000000000", "Grep", '{"pattern":"chunked"}'),
    )
    assert call.agent_kind == "claude-cli"
    assert call.subagent == "task"
    assert call.session_id == ids.session_id("test", "claude-cli", SID)  # shares the parent's session
    assert not call.is_auxiliary
    assert not call.x_user_turn_start  # sub-agents never start a turn, even with a fresh prompt
    assert c["calls_subagent"] == 1


def test_main_agent_with_legacy_task_tool() -> None:
    tools = [
        _tool(
            "Task", "Launch a new agent.", {"prompt": {"type": "string"}, "subagent_type": {"type": "string"}}
        ),
        *EXPLORE_TOOLS,
    ]
    call = run(
        PATH,
        body([first_user_message()], tools=tools),
        headers=claude_headers(SID),
        response=anthropic_message([{"type": "text", "text": "hi"}], "end_turn"),
    )
    assert call.subagent is None
    assert call.x_terminal


def test_title_call() -> None:
    c = Counter()
    system = [
        {
            "type": "text",
            "text": "Analyze if this message indicates a new conversation topic. If it does, "
            "extract a 2-3 word title that captures the new topic. Format your response "
            "as a JSON object with two fields: 'isNewTopic' (boolean) and 'title'.",
        }
    ]
    call = run(
        PATH,
        body([{"role": "user", "content": PROMPT}], system=system, max_tokens=512, user_id=user_id_json(SID)),
        c,
        headers=claude_headers(SID),
        response=anthropic_message(
            [{"type": "text", "text": '{"isNewTopic": true, "title": "Echo hi"}'}],
            "end_turn",
            model="claude-haiku-4-5-20251001",
        ),
    )
    assert (call.is_auxiliary, call.auxiliary_kind) == (True, "title")
    assert call.session_id == ids.session_id("test", "claude-cli", SID)  # aux calls keep their session
    assert not call.x_terminal and not call.x_user_turn_start
    assert call.subagent is None
    assert c["calls_auxiliary"] == 1


def test_summarizer_call() -> None:
    system = [
        {"type": "text", "text": "You are a helpful AI assistant tasked with summarizing conversations."}
    ]
    msgs = [
        first_user_message(),
        {"role": "assistant", "content": [TOOL_USE]},
        TOOL_RESULT_MSG,
        {"role": "user", "content": "Your task is to create a detailed summary of the conversation so far."},
    ]
    call = run(
        PATH,
        body(msgs, system=system, tools=[], user_id=user_id_json(SID)),
        headers=claude_headers(SID),
        response=anthropic_message(
            [{"type": "text", "text": "<summary>1. Primary Request…</summary>"}], "end_turn"
        ),
    )
    assert call.auxiliary_kind == "summarizer"
    assert not call.x_terminal


def test_probe_call_wins_over_title() -> None:
    call = run(
        PATH,
        body([{"role": "user", "content": "quota"}], max_tokens=1, stream=False),
        headers=claude_headers(SID),
        response=anthropic_message(
            [{"type": "text", "text": "#"}], "max_tokens", model="claude-haiku-4-5-20251001"
        ),
    )
    assert call.auxiliary_kind == "probe"
    assert not call.x_terminal


def test_security_monitor_call() -> None:
    system = [
        {
            "type": "text",
            "text": "You are a security monitor for autonomous AI coding agents. Review the "
            "proposed action and answer ALLOW or BLOCK.",
        }
    ]
    call = run(
        PATH,
        body(
            [{"role": "user", "content": "<action>Bash: rm -rf build/</action>"}],
            system=system,
            tools=EXPLORE_TOOLS,
            max_tokens=1024,
        ),
        headers=claude_headers(SID),
        response=anthropic_message([{"type": "text", "text": "ALLOW"}], "end_turn"),
    )
    assert call.auxiliary_kind == "security_monitor"
    assert call.subagent is None  # auxiliary wins over the sub-agent rule
    assert not call.x_terminal


def test_user_agent_prefix_is_required() -> None:
    hs = [
        (k, "node-fetch/1.0 claude-cli/2.1.330" if k == "User-Agent" else v) for k, v in claude_headers(SID)
    ]
    call = run(
        PATH,
        body([first_user_message()], tools=MAIN_TOOLS),
        headers=hs,
        response=anthropic_message([{"type": "text", "text": "hi"}], "end_turn"),
    )
    assert call.agent_kind == "generic"
    assert CLAUDE_UA.startswith("claude-cli/")
