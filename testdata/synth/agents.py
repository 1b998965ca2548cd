"""Multi-turn, tool-using agent sessions: Claude Code (anthropic), Codex (responses), a generic SDK agent.

Each call resends the whole, growing history (assistant tool calls + tool results), with the headers the
real clients send, so the engine's agent/session/turn logic (agents-and-turns.md) can be checked against
the ``agent`` object of each truth line: ``{kind, session, turn, step, auxiliary}``.
"""
from __future__ import annotations

import random
from typing import Any

import orjson

from .apis import CallPlan, Msg, ToolCall, Usage
from .apis.common import fake_anthropic_key, fake_openai_key, rand_token, uuid4
from .calls import llm_exchange
from .capture import WriteOptions
from .faults import FaultLog
from .mix import TOOLS, client_headers
from .scenarios import BASE_US, Result, write_run
from .tcpflow import ConnSpec, ConnTrace, ExchangeSpec, packetize

CLAUDE_UA = "claude-cli/2.1.330 (external, sdk-cli)"
CODEX_UA = "codex_exec/0.63.0 (Ubuntu 24.04; x86_64) xterm-256color (codex_exec; 0.63.0)"
KEEPALIVE_S = 4.0  # idle time after which the client opens a new connection

CC_TOOLS = [{"name": n, "description": d, "parameters": {"type": "object", "properties": p, "required": list(p)}}
            for n, d, p in (
                ("Task", "Launch a new agent to handle complex, multi-step tasks.",
                 {"description": {"type": "string"}, "prompt": {"type": "string"},
                  "subagent_type": {"type": "string"}}),
                ("Bash", "Executes a given bash command.", {"command": {"type": "string"}}),
                ("Read", "Reads a file from the local filesystem.", {"file_path": {"type": "string"}}),
                ("Grep", "A powerful search tool built on ripgrep.", {"pattern": {"type": "string"}}),
                ("Edit", "Performs exact string replacements in files.",
                 {"file_path": {"type": "string"}, "old_string": {"type": "string"},
                  "new_string": {"type": "string"}}))]
CODEX_TOOLS = [{"name": "shell", "description": "Runs a shell command and returns its output.",
                "parameters": {"type": "object", "properties": {"command": {"type": "array",
                                                                            "items": {"type": "string"}},
                                                               "workdir": {"type": "string"}},
                               "required": ["command"]}},
               {"name": "update_plan", "description": "Updates the task plan.",
                "parameters": {"type": "object", "properties": {"plan": {"type": "array"}}}}]

# per agent: list of turns; each turn: user text, then steps (tool calls per step, final text)
SCRIPTS: dict[str, list[tuple[str, list[list[tuple[str, dict[str, Any]]]], str]]] = {
    "claude-cli": [
        ("Fix the failing test in tests/test_parser.py",
         [[("Read", {"file_path": "/repo/tests/test_parser.py"}), ("Grep", {"pattern": "def parse_chunk"})],
          [("Edit", {"file_path": "/repo/src/parser.py", "old_string": "size = int(line)",
                     "new_string": "size = int(line.split(b';')[0], 16)"})],
          [("Bash", {"command": "python -m pytest tests/test_parser.py -q"})]],
         "Fixed: chunk sizes are hexadecimal and may carry extensions. All 14 tests pass."),
        ("Now run the linter too",
         [[("Bash", {"command": "ruff check src tests"})]],
         "Ruff reports no issues."),
    ],
    "codex-cli": [
        ("List the biggest files in this repo and explain what they do",
         [[("shell", {"command": ["bash", "-lc", "du -ah . | sort -rh | head -5"], "workdir": "/repo"})],
          [("shell", {"command": ["bash", "-lc", "sed -n 1,40p src/engine.py"], "workdir": "/repo"})]],
         "The largest files are the engine (src/engine.py) and the test captures under testdata/."),
        ("Add a --verbose flag", [[("shell", {"command": ["bash", "-lc", "grep -n argparse -r src"],
                                             "workdir": "/repo"})]], "Added `--verbose` to the CLI parser."),
    ],
    "generic": [
        ("What's the weather in Paris and Tokyo?",
         [[("get_weather", {"city": "Paris", "unit": "c"}), ("get_weather", {"city": "Tokyo", "unit": "c"})]],
         "Paris: 12 °C and cloudy. Tokyo: 18 °C and sunny."),
        ("And in Zürich?", [[("get_weather", {"city": "Zürich", "unit": "c"})]], "Zürich: 9 °C, light rain."),
    ],
}


def _call_id(kind: str, rng: random.Random) -> str:
    return ("toolu_01" + rand_token(rng, 22)) if kind == "claude-cli" else ("call_" + rand_token(rng, 24))


def _session_plans(kind: str, rng: random.Random) -> list[tuple[CallPlan, float]]:
    """All calls of one session with the think time before each."""
    sid = uuid4(rng)
    plans: list[tuple[CallPlan, float]] = []
    history: list[Msg] = []
    cache = rng.randint(8000, 14000)
    if kind == "claude-cli":
        key = fake_anthropic_key(rng)
        headers = [("Accept", "application/json"),
                   ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14,"
                                      "fine-grained-tool-streaming-2025-05-14"),
                   ("anthropic-dangerous-direct-browser-access", "true"), ("anthropic-version", "2023-06-01"),
                   ("User-Agent", CLAUDE_UA), ("x-api-key", key), ("x-app", "cli"),
                   ("X-Claude-Code-Session-Id", sid), ("X-Stainless-Lang", "js"),
                   ("X-Stainless-Package-Version", "0.70.0"), ("X-Stainless-Runtime", "node"),
                   ("X-Stainless-Runtime-Version", "v22.19.0"), ("X-Stainless-Retry-Count", "0")]
        user_id = f"user_{rand_token(rng, 64, '0123456789abcdef')}_account__session_{sid}"
    elif kind == "codex-cli":
        headers = [("Accept", "text/event-stream"), ("User-Agent", CODEX_UA), ("originator", "codex_exec"),
                   ("Authorization", "Bearer " + fake_openai_key(rng)), ("session_id", sid), ("version", "0.63.0")]
    else:
        headers = client_headers("openai-chat", rng)
    api = {"claude-cli": "anthropic", "codex-cli": "openai-responses", "generic": "openai-chat"}[kind]
    anchor: str | None = None
    for turn, (user, steps, final) in enumerate(SCRIPTS[kind]):
        history.append(Msg("user", user))
        turn_id = uuid4(rng)
        if kind == "claude-cli" and turn == 0:
            title = CallPlan(api="anthropic", model="claude-haiku-4-5-20251001", stream=True,
                             messages=[Msg("user", user)], usage=Usage(180, 12), text="Fix failing parser test",
                             system="Analyze if this message indicates a new conversation topic. Please write "
                                    "a 5-10 word title.", headers=headers, host="api.anthropic.com",
                             path="/v1/messages?beta=true", max_tokens=512, ttfb_s=0.5,
                             extra={"metadata_user_id": user_id,
                                    "agent": {"kind": kind, "session": sid, "turn": turn, "step": -1,
                                              "auxiliary": True}})
            plans.append((title, rng.uniform(0.05, 0.3)))
        for step in range(len(steps) + 1):
            calls = [ToolCall(_call_id(kind, rng), n, a) for n, a in steps[step]] if step < len(steps) else []
            if anchor is None and calls:
                anchor = calls[0].id
            hs = list(headers)
            extra: dict[str, Any] = {"agent": {"kind": kind, "session": sid if kind != "generic" else anchor,
                                               "turn": turn, "step": step, "auxiliary": False}}
            if kind == "codex-cli":
                hs.append(("x-codex-turn-metadata", orjson.dumps({"session_id": sid, "turn_id": turn_id}).decode()))
                extra["prompt_cache_key"] = sid
                extra["agent"]["turn_id"] = turn_id
            if kind == "claude-cli":
                extra["metadata_user_id"] = user_id
            out = rng.randint(30, 400)
            plan = CallPlan(api=api, model={"anthropic": "claude-sonnet-4-5-20250929", "openai-responses": "gpt-5-codex",
                                            "openai-chat": "gpt-4.1"}[api],
                            served_model={"openai-responses": "gpt-5-codex", "openai-chat": "gpt-4.1-2025-04-14"}.get(api),
                            stream=kind != "generic" or rng.random() < 0.5, messages=list(history),
                            usage=Usage(input=rng.randint(3, 40) if api == "anthropic" else cache + rng.randint(200, 900),
                                        output=out, cache_read=cache, cache_creation=rng.randint(200, 1500)
                                        if api == "anthropic" else 0, reasoning=out // 3 if api != "anthropic" else 0),
                            outcome="tool_use" if calls else "stop",
                            system={"claude-cli": "You are Claude Code, Anthropic's official CLI for Claude.",
                                    "codex-cli": "You are Codex, based on GPT-5. You are running as a coding agent "
                                                 "in the Codex CLI on a user's computer.",
                                    "generic": "You are a weather assistant."}[kind],
                            tools={"claude-cli": CC_TOOLS, "codex-cli": CODEX_TOOLS, "generic": TOOLS}[kind],
                            text="" if calls and rng.random() < 0.5 else (final if not calls else "Let me check."),
                            thinking="I should inspect the relevant code first." if kind != "generic" and step == 0 else "",
                            tool_calls=calls, host={"anthropic": "api.anthropic.com", "openai-chat": "api.openai.com",
                                                    "openai-responses": "chatgpt.com"}[api],
                            path={"anthropic": "/v1/messages?beta=true",
                                  "openai-responses": "/backend-api/codex/responses"}.get(api),
                            headers=hs, resp_encoding=rng.choice([None, "gzip", "br"]) if api != "anthropic" else None,
                            req_encoding="zstd" if kind == "codex-cli" and rng.random() < 0.5 else None,
                            interleave=len(calls) > 1, ttfb_s=round(rng.uniform(0.6, 2.5), 3),
                            tpot_s=round(rng.uniform(0.01, 0.03), 4), max_tokens=32000, extra=extra)
            think = rng.uniform(8, 25) if step == 0 else rng.uniform(0.3, 6.0)
            plans.append((plan, think))
            cache += rng.randint(300, 2000)
            history.append(Msg("assistant", plan.text, tool_calls=calls))
            for c in calls:
                history.append(Msg("tool", f"(output of {c.name}: ok, {rng.randint(1, 200)} lines)",
                                   tool_call_id=c.id, tool_name=c.name))
    return plans


def agent_sessions(seed: int, out: str, truth: str | None, opts: WriteOptions, n_calls: int | None = None,
                   sessions_per_kind: int = 3) -> Result:
    """Several concurrent sessions per agent kind; connections reused while idle < KEEPALIVE_S."""
    rng = random.Random(f"agent_sessions:{seed}")
    traces: list[ConnTrace] = []
    port = 50000
    servers = {"anthropic": ("160.79.104.10", 80), "openai-responses": ("172.64.155.209", 80),
               "openai-chat": ("162.159.140.245", 80)}
    n = 0
    for kind in ("claude-cli", "codex-cli", "generic"):
        for s in range(sessions_per_kind):
            client = f"192.168.{1 + s}.{10 + n % 200}"
            n += 1
            t = BASE_US + int(rng.uniform(0, 30) * 1e6)
            pending: list[ExchangeSpec] = []
            plans = _session_plans(kind, rng)
            for i, (plan, think) in enumerate(plans):
                ex = llm_exchange(plan, rng, think_s=0.001 if not pending else think)
                if pending and think >= KEEPALIVE_S:
                    tr = _pack(pending, client, servers[plan.api], port, t, rng)
                    traces.append(tr)
                    port += 1
                    t = _end(tr) + int(think * 1e6)
                    pending = []
                    ex.think_s = 0.001
                pending.append(ex)
            if pending:
                traces.append(_pack(pending, client, servers[plans[-1][0].api], port, t, rng))
                port += 1
    return write_run(traces, [FaultLog() for _ in traces], rng, out, truth, opts)


def _pack(exs: list[ExchangeSpec], client: str, server: tuple[str, int], port: int, t: int,
          rng: random.Random) -> ConnTrace:
    spec = ConnSpec(client, port, server[0], server[1], exs, t, rtt_us=rng.randint(8000, 40000),
                    close="client_fin", isn_c=rng.getrandbits(32), isn_s=rng.getrandbits(32))
    return packetize(spec, rng)


def _end(tr: ConnTrace) -> int:
    return tr.segs[-1].ts
