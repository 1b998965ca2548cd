"""Random-but-seeded call plans for every wire API, with realistic clients, models, keys and contents."""
from __future__ import annotations

import random
from typing import Any

from .apis import OUTCOMES_BY_API, CallPlan, Msg, ToolCall, Usage
from .apis.common import fake_anthropic_key, fake_google_key, fake_openai_key, rand_token

TOOLS: list[dict[str, Any]] = [
    {"name": "get_weather", "description": "Get the current weather for a city.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                     "unit": {"type": "string", "enum": ["c", "f"]}},
                    "required": ["city"]}},
    {"name": "search_docs", "description": "Full-text search over the product documentation.",
     "parameters": {"type": "object", "properties": {"query": {"type": "string"},
                                                     "limit": {"type": "integer"}}, "required": ["query"]}},
    {"name": "run_sql", "description": "Run a read-only SQL query against the analytics warehouse.",
     "parameters": {"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]}},
]

PROMPTS = [
    "What's the weather like in Zürich and in São Paulo right now?",
    "Summarize the attached release notes in three bullet points.",
    "Write a haiku about TCP retransmissions.",
    "Explain the difference between a mutex and a semaphore, briefly.",
    "How many orders did we ship last week? Use the warehouse.",
    "Translate 'good morning, see you tomorrow' into Japanese and French.",
    "Find the docs page about configuring SSO with Okta.",
]

ANSWERS = [
    "Here is a short summary:\n\n- The parser now streams events incrementally.\n- Gzip and zstd bodies "
    "are decoded on the fly.\n- Retransmitted segments are ignored. ✅",
    "Packets cross the wire —\nsilence, then the same bytes twice:\nthe ACK was just late.",
    "A mutex gives exclusive ownership to one thread; a semaphore counts permits, so N threads may enter. "
    "Use a mutex for mutual exclusion and a semaphore for bounded resources.",
    "おはようございます、また明日。 / Bonjour, à demain ! Both are polite forms suitable for colleagues.",
    "Last week we shipped 1,284 orders, up 7.3 % from the week before. The busiest day was Wednesday.",
    "I could not find an exact match, but the SSO guide (Admin → Security → SAML) covers Okta step by step.",
]

THOUGHTS = "The user wants a concise answer. Let me check which facts are needed and keep it short."
REFUSAL = "I can't help with that request."

MODELS: dict[str, list[tuple[str, str]]] = {
    "anthropic": [("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),
                  ("claude-haiku-4-5", "claude-haiku-4-5-20251001"), ("claude-opus-4-1-20250805",
                                                                     "claude-opus-4-1-20250805")],
    "openai-chat": [("gpt-4.1", "gpt-4.1-2025-04-14"), ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")],
    "openai-responses": [("gpt-5", "gpt-5-2025-08-07"), ("gpt-5-mini", "gpt-5-mini-2025-08-07")],
    "gemini": [("gemini-2.5-flash", "gemini-2.5-flash"), ("gemini-2.5-pro", "gemini-2.5-pro")],
    "ollama": [("llama3.2:3b", "llama3.2:3b"), ("qwen3:8b", "qwen3:8b")],
    "openai-completions": [("Qwen/Qwen2.5-Coder-7B-Instruct", "Qwen/Qwen2.5-Coder-7B-Instruct")],
}

# (server ip v4, server ip v6, port, Host)
SERVERS: dict[str, tuple[str, str, int, str]] = {
    "anthropic": ("160.79.104.10", "2607:6bc0::10", 80, "api.anthropic.com"),
    "openai-chat": ("162.159.140.245", "2606:4700:4400::6812:2a8b", 80, "api.openai.com"),
    "openai-responses": ("162.159.140.245", "2606:4700:4400::6812:2a8b", 80, "api.openai.com"),
    "gemini": ("142.250.72.10", "2607:f8b0:4005:80c::200a", 80, "generativelanguage.googleapis.com"),
    "ollama": ("127.0.0.1", "::1", 11434, "localhost:11434"),
    "openai-completions": ("10.20.0.5", "fd00:20::5", 8000, "vllm.internal:8000"),
}


def client_headers(api: str, rng: random.Random) -> list[tuple[str, str]]:
    """Plain SDK headers (with fake but realistic-looking credentials) for one API."""
    stainless = [("X-Stainless-Lang", "python"), ("X-Stainless-Runtime", "CPython"),
                 ("X-Stainless-Runtime-Version", "3.11.7"), ("X-Stainless-OS", "Linux"),
                 ("X-Stainless-Arch", "x64")]
    if api == "anthropic":
        return [("Accept", "application/json"), ("User-Agent", "Anthropic/Python 0.75.0"),
                ("x-api-key", fake_anthropic_key(rng)), ("anthropic-version", "2023-06-01")] + stainless
    if api in ("openai-chat", "openai-responses"):
        return [("Accept", "application/json"), ("User-Agent", "OpenAI/Python 2.8.1"),
                ("Authorization", "Bearer " + fake_openai_key(rng))] + stainless
    if api == "gemini":
        return [("User-Agent", "google-genai-sdk/1.50.0 gl-python/3.11.7"),
                ("x-goog-api-client", "google-genai-sdk/1.50.0 gl-python/3.11.7"),
                ("x-goog-api-key", fake_google_key(rng))]
    if api == "ollama":
        return [("Accept", "application/json"), ("User-Agent", "ollama-python/0.6.1 (x86_64 linux) Python/3.11.7")]
    return [("Accept", "application/json"), ("User-Agent", "OpenAI/Python 1.109.1"),
            ("Authorization", "Bearer token-" + rand_token(rng, 24))]


def make_tool_call(api: str, rng: random.Random, tool: dict[str, Any]) -> ToolCall:
    name = tool["name"]
    args: dict[str, Any] = {
        "get_weather": {"city": rng.choice(["Zürich", "São Paulo", "Tokyo", "Paris"]), "unit": "c"},
        "search_docs": {"query": rng.choice(["sso okta", "rate limits", "webhooks"]), "limit": 5},
        "run_sql": {"sql": "SELECT count(*) FROM orders WHERE shipped_at >= now() - interval '7 days'"},
    }.get(name, {"input": "x"})
    if api == "anthropic":
        cid: str | None = "toolu_01" + rand_token(rng, 22)
    elif api in ("openai-chat",):
        cid = "call_" + rand_token(rng, 24)
    elif api == "openai-responses":
        cid = "call_" + rand_token(rng, 24)
    else:
        cid = None
    return ToolCall(cid, name, args)


def random_plan(api: str, rng: random.Random, *, outcome: str | None = None, stream: bool | None = None,
                allow_errors: bool = True) -> CallPlan:
    """A self-contained single call of ``api`` with a random outcome, streaming mode and encoding."""
    if outcome is None:
        weights = {"stop": 45, "tool_use": 25, "length": 5, "refusal": 3, "http_429": 6, "http_500": 4,
                   "stream_error": 4}
        allowed = [o for o in OUTCOMES_BY_API[api] if allow_errors or not o.startswith(("http", "stream"))]
        outcome = rng.choices(allowed, [weights[o] for o in allowed])[0]
    if stream is None:
        stream = rng.random() < 0.7
    if outcome == "stream_error":
        stream = True
    model, served = rng.choice(MODELS[api])
    ip4, ip6, port, host = SERVERS[api]
    text = rng.choice(ANSWERS)
    calls: list[ToolCall] = []
    tools = TOOLS if api != "openai-completions" and (outcome == "tool_use" or rng.random() < 0.5) else []
    if outcome == "tool_use":
        n = 1 if rng.random() < 0.6 else rng.randint(2, 3)
        # n calls starting at a random tool. (The end was once drawn separately from the start, so a
        # "tool_use" plan could get zero calls; both draws are kept so seeds keep their other choices.)
        first, _unused = rng.randrange(3), rng.randrange(3)
        calls = [make_tool_call(api, rng, TOOLS[i % len(TOOLS)]) for i in range(first, first + n)]
        text = "" if rng.random() < 0.5 else "Let me look that up."
    elif outcome == "refusal":
        text = REFUSAL
    thinking = THOUGHTS if api in ("anthropic", "openai-responses", "gemini", "ollama") and rng.random() < 0.25 \
        and outcome not in ("stream_error", "refusal") else ""
    out_tokens = max(1, len(text) // 4 + sum(len(str(c.args)) // 4 + 8 for c in calls))
    reasoning = len(thinking) // 4 if thinking and api != "anthropic" else 0
    cache_read = rng.choice([0, 0, rng.randint(1000, 40000)])
    usage = Usage(input=rng.randint(40, 6000) + (cache_read if api in ("openai-chat", "openai-responses",
                                                                      "gemini") else 0),
                  output=out_tokens + reasoning, cache_read=cache_read,
                  cache_creation=rng.choice([0, rng.randint(100, 5000)]) if api == "anthropic" else 0,
                  reasoning=reasoning)
    enc = rng.choices([None, "gzip", "br", "zstd"], [55, 20, 15, 10])[0]
    req_enc = rng.choice(["gzip", "zstd"]) if rng.random() < 0.08 else None
    extra: dict[str, Any] = {}
    if api == "gemini":
        extra["gemini_sse"] = rng.random() < 0.5
    if api == "ollama":
        extra["ollama_op"] = "generate" if rng.random() < 0.3 else "chat"
        extra["explicit_stream"] = rng.random() < 0.5
        enc = None
        if extra["ollama_op"] == "generate":
            calls, tools = [], []
            if outcome == "tool_use":
                outcome, text = "stop", rng.choice(ANSWERS)
    return CallPlan(api=api, model=model, served_model=served, stream=stream,
                    messages=[Msg("user", rng.choice(PROMPTS))], usage=usage, outcome=outcome,
                    system="You are a helpful assistant. Answer concisely." if rng.random() < 0.7 else None,
                    tools=tools, text=text, thinking=thinking, tool_calls=calls, host=host,
                    headers=client_headers(api, rng), resp_encoding=enc, req_encoding=req_enc,
                    include_usage=rng.random() < 0.75, interleave=len(calls) > 1 and rng.random() < 0.6,
                    ttfb_s=round(rng.uniform(0.15, 1.5), 3), tpot_s=round(rng.uniform(0.008, 0.04), 4),
                    max_tokens=rng.choice([1024, 4096, 8192]), rid=str(rng.getrandbits(32)), extra=extra)
