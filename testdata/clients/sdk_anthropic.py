"""Anthropic Python SDK against the mock: messages (JSON, SSE, stream helper), thinking, tools, cache.

usage: python testdata/clients/sdk_anthropic.py http://127.0.0.1:PORT
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import ANTHROPIC_KEY, TIME_TOOL_SCHEMA, WEATHER_TOOL_SCHEMA, base_url, run_tool, step  # noqa: E402

import anthropic  # noqa: E402

BASE = base_url()
client = anthropic.Anthropic(base_url=BASE, api_key=ANTHROPIC_KEY, max_retries=0)
client2 = anthropic.Anthropic(base_url=BASE, api_key=ANTHROPIC_KEY, max_retries=0)
MODEL = "claude-sonnet-4-6"
TOOLS = [{"name": "get_weather", "description": "Current weather for a city", "input_schema": WEATHER_TOOL_SCHEMA},
         {"name": "get_time", "description": "Current time in a timezone", "input_schema": TIME_TOOL_SCHEMA}]
SYSTEM = "You are a terse assistant used in a packet-capture test."


def agent_loop(cl, prompt: str, stream: bool, max_steps: int = 4, error_on_second: bool = False, **kw):
    msgs = [{"role": "user", "content": prompt}]
    for _ in range(max_steps):
        if stream:
            with cl.messages.stream(model=MODEL, max_tokens=1024, system=SYSTEM, tools=TOOLS, messages=msgs, **kw) as s:
                msg = s.get_final_message()
        else:
            msg = cl.messages.create(model=MODEL, max_tokens=1024, system=SYSTEM, tools=TOOLS, messages=msgs, **kw)
        uses = [b for b in msg.content if b.type == "tool_use"]
        if not uses:
            return "".join(b.text for b in msg.content if b.type == "text")
        msgs.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]})
        results = []
        for k, b in enumerate(uses):
            r = {"type": "tool_result", "tool_use_id": b.id, "content": run_tool(b.name, b.input)}
            if error_on_second and k == 1:
                r = {"type": "tool_result", "tool_use_id": b.id, "content": "Error: timezone service unreachable",
                     "is_error": True}
            results.append(r)
        msgs.append({"role": "user", "content": results})
    return "max steps"


def raw_stream(cl, prompt, **kw):
    out = []
    for ev in cl.messages.create(model=MODEL, max_tokens=1024, stream=True,
                                 messages=[{"role": "user", "content": prompt}], **kw):
        if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
            out.append(ev.delta.text)
    return "".join(out)


step("messages non-stream")(lambda: client.messages.create(
    model=MODEL, max_tokens=256, system=SYSTEM,
    messages=[{"role": "user", "content": "What is a mock server?"}]).content[0].text)
step("messages stream=True")(lambda: raw_stream(client, "Stream me a greeting."))
step("messages.stream helper + thinking")(lambda: client.messages.stream(
    model=MODEL, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
    messages=[{"role": "user", "content": "Think, then greet. [scenario:thinking]"}]).__enter__().get_final_message().content[-1].text)
step("agent loop stream, 2 tool steps")(lambda: agent_loop(client, "Weather in Paris then Tokyo. [scenario:tools:2]",
                                                           stream=True))
step("agent loop, 2 parallel tool_use, one tool error, non-stream")(lambda: agent_loop(
    client2, "Weather and time. [scenario:parallel]", stream=False, error_on_second=True))
step("agent loop, parallel + thinking, stream")(lambda: agent_loop(
    client, "Weather and time with thinking. [scenario:parallel,thinking]", stream=True,
    thinking={"type": "enabled", "budget_tokens": 1024}))
step("prompt cache (cache_control)")(lambda: client.messages.create(
    model=MODEL, max_tokens=256,
    system=[{"type": "text", "text": SYSTEM * 30, "cache_control": {"type": "ephemeral"}}],
    messages=[{"role": "user", "content": "Use the cache. [scenario:cache]"}]).usage)
step("prompt cache stream")(lambda: raw_stream(
    client2, "Cache again, streamed. [scenario:cache]",
    system=[{"type": "text", "text": SYSTEM * 30, "cache_control": {"type": "ephemeral"}}]))
step("refusal stream")(lambda: raw_stream(client, "Do something forbidden. [scenario:refusal]"))
step("max_tokens non-stream")(lambda: client.messages.create(
    model="claude-haiku-4-5", max_tokens=10,
    messages=[{"role": "user", "content": "Write a long essay. [scenario:length]"}]).stop_reason)
step("utf8 stream")(lambda: raw_stream(client, "Many scripts please. [scenario:utf8]"))
step("long stream, haiku")(lambda: raw_stream(client2, "A longer answer. [scenario:long]", ))
step("model substitution")(lambda: client.messages.create(
    model="claude-opus-4-7", max_tokens=64,
    messages=[{"role": "user", "content": "Which model are you? [scenario:substitute]"}]).model)
print(json.dumps({"done": True}))
