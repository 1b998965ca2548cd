"""API-neutral description of one LLM call and helpers shared by the six wire renderers.

A :class:`CallPlan` says *what* happened (conversation, output text, tool calls, outcome, usage); each
renderer in this package turns it into the exact bytes its wire API would carry, plus the API-level
truth.  Keeping the plan neutral lets agent sessions and random mixes reuse every API.
"""
from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("stop", "length", "tool_use", "refusal", "http_429", "http_500", "stream_error")


@dataclass
class ToolCall:
    id: str | None
    name: str
    args: dict[str, Any]


@dataclass
class Msg:
    """One history message; ``role`` is user/assistant/tool."""

    role: str
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False


@dataclass
class Usage:
    input: int
    output: int
    cache_read: int = 0
    cache_creation: int = 0
    reasoning: int = 0


@dataclass
class CallPlan:
    """Everything a renderer needs; see module doc.  ``extra`` carries API/agent specific knobs."""

    api: str
    model: str
    stream: bool
    messages: list[Msg]
    usage: Usage
    outcome: str = "stop"
    system: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    served_model: str | None = None
    host: str | None = None
    path: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    resp_encoding: str | None = None
    req_encoding: str | None = None
    include_usage: bool = True
    interleave: bool = False
    ttfb_s: float = 0.4
    tpot_s: float = 0.02
    max_tokens: int = 4096
    rid: str = "0"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rendered:
    """Wire form of a call: request parts, response status/headers/timed units, API-level truth."""

    method: str
    path: str
    host: str
    req_headers: list[tuple[str, str]]
    req_body: Any
    status: int
    resp_headers: list[tuple[str, str]]
    units: list[tuple[float, bytes]]
    stream: bool
    truth: dict[str, Any]


def expected_finish(outcome: str, n_tool_calls: int) -> str:
    """wire-apis.md §2.2 normalized finish, with its precedence (error > aborted > tool_use > raw)."""
    if outcome in ("http_429", "http_500", "stream_error"):
        return "error"
    if n_tool_calls:
        return "tool_use"
    if outcome == "tool_use":
        # The raw value alone would decide (Responses `completed` → stop/other, Gemini STOP → stop …);
        # plans never ask for this, so refuse instead of guessing.
        raise ValueError("a tool_use plan without tool calls")
    return {"stop": "stop", "length": "length", "refusal": "content_filter", "tool_use": "tool_use"}[outcome]


def base_truth(plan: CallPlan, wire_api: str, status: int, raw: str | None, served: str | None,
               tool_calls: list[ToolCall], tokens: dict[str, int | None]) -> dict[str, Any]:
    t: dict[str, Any] = {
        "wire_api": wire_api,
        "model_requested": plan.model,
        "model": served if served is not None else plan.model,
        "is_stream": plan.stream,
        "status_code": status,
        "finish_reason_raw": raw,
        "finish": expected_finish(plan.outcome, len(tool_calls)),
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.args} for c in tool_calls],
        "usage_reported": any(v is not None for v in tokens.values()),
    }
    for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
              "cache_creation_1h_tokens", "reasoning_tokens"):
        t[k] = tokens.get(k)
    if plan.extra.get("agent"):
        t["agent"] = plan.extra["agent"]
    return t


def no_tokens() -> dict[str, int | None]:
    return {}


def words(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text)


def split_text(text: str, rng: random.Random, lo: int = 1, hi: int = 4) -> list[str]:
    """Split text into streaming deltas of 1–4 words (deterministic for a given rng state)."""
    ws = words(text)
    out: list[str] = []
    i = 0
    while i < len(ws):
        n = rng.randint(lo, hi)
        out.append("".join(ws[i:i + n]))
        i += n
    return out


def split_str(s: str, rng: random.Random, lo: int = 6, hi: int = 24) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(s):
        n = rng.randint(lo, hi)
        out.append(s[i:i + n])
        i += n
    return out or [""]


def interleave(lists: list[list[Any]], rng: random.Random, mix: bool) -> list[tuple[int, Any]]:
    """Merge per-call delta lists into one ``(index, item)`` sequence, round-robin-ish when ``mix``."""
    if not mix:
        return [(i, x) for i, lst in enumerate(lists) for x in lst]
    pos = [0] * len(lists)
    out: list[tuple[int, Any]] = []
    while any(p < len(lst) for p, lst in zip(pos, lists)):
        live = [i for i, lst in enumerate(lists) if pos[i] < len(lst)]
        i = rng.choice(live)
        out.append((i, lists[i][pos[i]]))
        pos[i] += 1
    return out


def timeline(n: int, plan: CallPlan, rng: random.Random) -> list[float]:
    """Delays (after request end) of ``n`` stream units: TTFB then ~TPOT spacing with jitter."""
    t = plan.ttfb_s
    out = []
    for i in range(n):
        out.append(round(t, 6))
        t += plan.tpot_s * rng.uniform(0.3, 2.2) if i else plan.tpot_s * rng.uniform(0.5, 3)
    return out


_ALNUM = string.ascii_letters + string.digits


def rand_token(rng: random.Random, n: int, alphabet: str = _ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def fake_anthropic_key(rng: random.Random) -> str:
    return f"sk-ant-api03-{rand_token(rng, 86, _ALNUM + '-_')}-{rand_token(rng, 6)}AA"


def fake_openai_key(rng: random.Random) -> str:
    return f"sk-proj-{rand_token(rng, 74, _ALNUM + '-_')}T3BlbkFJ{rand_token(rng, 74, _ALNUM + '-_')}"


def fake_google_key(rng: random.Random) -> str:
    return "AIza" + rand_token(rng, 35, _ALNUM + "-_")


def uuid4(rng: random.Random) -> str:
    h = "%032x" % rng.getrandbits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def args_json(args: dict[str, Any]) -> str:
    import orjson
    return orjson.dumps(args).decode()
