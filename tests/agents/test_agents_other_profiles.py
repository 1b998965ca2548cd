"""gemini-cli, opencode, openclaw and hermes profiles (agents-and-turns.md §3.1, §8)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from agent_helpers import chat_completion, gemini_response, run

from heron_core import ids

# --- gemini-cli (code-assist envelope) ----------------------------------------------------------------

GEMINI_PATH = "/v1internal:generateContent"
GEMINI_UA = "GeminiCLI/0.9.0/gemini-2.5-pro (linux; x64)"
GEMINI_HEADERS = [
    ("User-Agent", GEMINI_UA),
    ("Content-Type", "application/json"),
    ("Authorization", "Bearer [REDACTED:99aa88bb]"),
    ("x-goog-api-client", "gl-node/22.19.0"),
]
GEMINI_TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "run_shell_command",
                "description": "Executes a given shell command as `bash -c <command>`.",
                "parametersJsonSchema": {
                    "type": "object",
                    "properties": {"command": {"type": "string"}},
                    "required": ["command"],
                },
            },
            {
                "name": "read_file",
                "description": "Reads and returns the content of a specified file.",
                "parametersJsonSchema": {
                    "type": "object",
                    "properties": {"absolute_path": {"type": "string"}},
                },
            },
        ]
    }
]
GEMINI_SYSTEM = {
    "role": "user",
    "parts": [{"text": "You are an interactive CLI agent specializing in software engineering tasks."}],
}
USER_CONTENT = {
    "role": "user",
    "parts": [
        {
            "text": "This is the Gemini CLI. We are setting up the context for our "
            "chat.\nToday's date is Monday, November 23, 2026."
        },
        {"text": "List the files in this directory."},
    ],
}


def envelope(
    contents: list[dict[str, Any]],
    user_prompt_id: str,
    session_id: str | None = None,
    tools: Any = GEMINI_TOOLS,
    generation_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    req: dict[str, Any] = {
        "contents": contents,
        "systemInstruction": GEMINI_SYSTEM,
        "generationConfig": generation_config
        or {"temperature": 0, "topP": 1, "thinkingConfig": {"includeThoughts": True}},
    }
    if tools is not None:
        req["tools"] = tools
    if session_id is not None:
        req["session_id"] = session_id
    return {
        "model": "gemini-2.5-pro",
        "project": "heron-test-project",
        "user_prompt_id": user_prompt_id,
        "request": req,
    }


def wrapped(resp: dict[str, Any]) -> dict[str, Any]:
    return {"response": resp, "traceId": "7c6b1e0f2a9d4e33"}


def test_gemini_user_prompt_id_prefix_and_counter() -> None:
    c = Counter()
    call = run(
        GEMINI_PATH,
        envelope([USER_CONTENT], "abc########3"),
        c,
        headers=GEMINI_HEADERS,
        host="cloudcode-pa.googleapis.com",
        response=wrapped(gemini_response([{"text": "There are two files: a.txt and b.txt."}])),
    )
    assert call.wire_api == "gemini"
    assert call.agent_kind == "gemini-cli"
    assert (call.session_source, call.native_session_id, call.native_turn_id) == ("envelope", "abc", "3")
    assert call.session_id == ids.session_id("test", "gemini-cli", "abc")
    assert call.x_user_turn_start and call.x_terminal
    assert c["calls_by_agent_kind.gemini-cli"] == 1


def test_gemini_request_session_id_wins() -> None:
    sid = "5e3f1c2a-8d7b-4a6e-9f01-23456789abcd"
    call = run(
        GEMINI_PATH,
        envelope([USER_CONTENT], f"{sid}########1", session_id=sid),
        headers=GEMINI_HEADERS,
        response=wrapped(gemini_response([{"text": "ok"}])),
    )
    assert (call.session_source, call.native_session_id, call.native_turn_id) == ("envelope", sid, "1")


def test_gemini_function_call_anchor_is_stable() -> None:
    """No envelope session: the pseudo id of the first model functionCall is the session on both calls."""
    fc_part = {
        "functionCall": {"name": "run_shell_command", "args": {"command": "ls"}},
        "thoughtSignature": "CiQBVKhc7r4=",
    }
    call1 = run(
        GEMINI_PATH,
        envelope([USER_CONTENT], "no-separator-id"),
        headers=GEMINI_HEADERS,
        response=wrapped(gemini_response([fc_part])),
    )
    contents2 = [
        USER_CONTENT,
        {"role": "model", "parts": [fc_part]},
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "run_shell_command", "response": {"output": "a.txt\nb.txt"}}}
            ],
        },
    ]
    call2 = run(
        GEMINI_PATH,
        envelope(contents2, "no-separator-id"),
        headers=GEMINI_HEADERS,
        exchange_id="ex-2",
        response=wrapped(gemini_response([{"text": "There are two files."}])),
    )
    assert call1.session_source == call2.session_source == "tool_anchor"
    assert call1.native_session_id == call2.native_session_id == call1.tool_calls[0].id
    assert call1.native_session_id.startswith("tu-")
    assert (call1.x_user_turn_start, call2.x_user_turn_start) == (True, False)
    assert (call1.x_terminal, call2.x_terminal) == (False, True)


def test_gemini_json_helper_is_auxiliary_other() -> None:
    cfg = {
        "temperature": 0,
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object", "properties": {"next_speaker": {"type": "string"}}},
    }
    call = run(
        GEMINI_PATH,
        envelope(
            [
                USER_CONTENT,
                {"role": "model", "parts": [{"text": "Done."}]},
                {"role": "user", "parts": [{"text": "Who should speak next?"}]},
            ],
            "abc########3",
            tools=None,
            generation_config=cfg,
        ),
        headers=GEMINI_HEADERS,
        response=wrapped(gemini_response([{"text": '{"next_speaker":"user"}'}])),
    )
    assert (call.agent_kind, call.is_auxiliary, call.auxiliary_kind) == ("gemini-cli", True, "other")
    assert call.native_session_id == "abc"
    assert not call.x_terminal and not call.x_user_turn_start


# --- opencode ------------------------------------------------------------------------------------------

CHAT_PATH = "/v1/chat/completions"
OC_TOOLS = [
    {
        "type": "function",
        "function": {"name": n, "description": d, "parameters": {"type": "object", "properties": {}}},
    }
    for n, d in (("bash", "Executes a bash command"), ("read", "Reads a file"), ("edit", "Edits a file"))
]


def opencode_headers(affinity: str | None) -> list[tuple[str, str]]:
    hs = [
        ("User-Agent", "opencode/1.0.63 ai-sdk/provider-utils/3.0.9 runtime/bun/1.3.0"),
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer [REDACTED:12345678]"),
    ]
    if affinity is not None:
        hs.append(("x-session-affinity", affinity))
    return hs


def oc_body(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": "gpt-4.1",
        "messages": [
            {
                "role": "system",
                "content": "You are opencode, an interactive CLI "
                "tool that helps users with software "
                "engineering tasks.",
            },
            *messages,
        ],
        "tools": OC_TOOLS,
        "tool_choice": "auto",
        "stream": False,
    }


def test_opencode_session_affinity_header() -> None:
    sid = "ses_5a2f0c1d9ffeJq3yVq1Zt7mKc2"
    call = run(
        CHAT_PATH,
        oc_body([{"role": "user", "content": "what does this repo do?"}]),
        headers=opencode_headers(sid),
        response=chat_completion("It is a packet-capture tool."),
    )
    assert (call.agent_kind, call.session_source, call.native_session_id) == ("opencode", "header", sid)
    assert call.session_id == ids.session_id("test", "opencode", sid)


def test_opencode_without_header_uses_conversation() -> None:
    call = run(
        CHAT_PATH,
        oc_body([{"role": "user", "content": "what does this repo do?"}]),
        headers=opencode_headers(None),
        response=chat_completion("It is a packet-capture tool."),
    )
    assert (call.agent_kind, call.session_source) == ("opencode", "conversation")
    assert call.native_session_id.startswith("conv-")
    assert not call.x_tentative  # tentative applies to generic only


# --- openclaw / hermes (tool fingerprints) ---------------------------------------------------------------


def fn_tools(*names: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": n,
                "description": f"{n} tool",
                "parameters": {"type": "object", "properties": {}},
            },
        }
        for n in names
    ]


def test_openclaw_tool_fingerprint() -> None:
    tools = fn_tools("read", "write", "exec", "sessions_spawn", "sessions_list", "sessions_send", "web_fetch")
    call = run(
        CHAT_PATH,
        {
            "model": "claude-opus-4-6",
            "messages": [
                {"role": "system", "content": "You are a personal assistant running inside OpenClaw."},
                {"role": "user", "content": "Check my calendar for tomorrow."},
            ],
            "tools": tools,
        },
        headers=[("Content-Type", "application/json"), ("User-Agent", "OpenAI/JS 5.12.2")],
        response=chat_completion(
            None,
            [
                {
                    "id": "call_Xy12ab34cd56ef78",
                    "type": "function",
                    "function": {"name": "exec", "arguments": '{"command":"gcal tomorrow"}'},
                }
            ],
            "tool_calls",
        ),
    )
    assert (call.agent_kind, call.session_source, call.native_session_id) == (
        "openclaw",
        "tool_anchor",
        "call_Xy12ab34cd56ef78",
    )
    assert not call.is_auxiliary


def test_openclaw_summarizer() -> None:
    call = run(
        CHAT_PATH,
        {
            "model": "claude-opus-4-6",
            "messages": [
                {
                    "role": "system",
                    "content": "You are a context summarization assistant. Summarize the conversation.",
                },
                {"role": "user", "content": "<conversation>user: hi\nassistant: hello</conversation>"},
            ],
        },
        headers=[("Content-Type", "application/json")],
        response=chat_completion("The user greeted the assistant."),
    )
    assert (call.agent_kind, call.is_auxiliary, call.auxiliary_kind) == ("openclaw", True, "summarizer")


def test_single_openclaw_tool_is_not_enough() -> None:
    call = run(
        CHAT_PATH,
        {
            "model": "gpt-4.1",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": fn_tools("sessions_list", "read"),
        },
        headers=[("Content-Type", "application/json")],
        response=chat_completion("Hello!"),
    )
    assert call.agent_kind == "generic"


def test_hermes_tool_fingerprint() -> None:
    tools = fn_tools("terminal", "read_file", "skill_view", "skills_list", "delegate_task", "memory")
    msgs = [
        {
            "role": "system",
            "content": "You are Hermes Agent, an intelligent AI assistant created by Nous Research.",
        },
        {"role": "user", "content": "What skills do you have?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "call_hm0001abcdef",
                    "type": "function",
                    "function": {"name": "skills_list", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_hm0001abcdef", "content": '{"skills": ["arxiv", "github"]}'},
    ]
    c = Counter()
    call = run(
        CHAT_PATH,
        {"model": "hermes-4-405b", "messages": msgs, "tools": tools},
        c,
        headers=[("Content-Type", "application/json")],
        response=chat_completion("I have arxiv and github skills."),
    )
    assert (call.agent_kind, call.session_source, call.native_session_id) == (
        "hermes",
        "tool_anchor",
        "call_hm0001abcdef",
    )
    assert call.x_terminal and not call.x_user_turn_start
    assert c["calls_by_agent_kind.hermes"] == 1
