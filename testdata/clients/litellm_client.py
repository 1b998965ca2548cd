"""Clients talking to a litellm proxy (127.0.0.1:4000) that forwards to the mock (two-hop traffic).

usage: python testdata/clients/litellm_client.py http://127.0.0.1:4000
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import LITELLM_MASTER_KEY, WEATHER_TOOL_SCHEMA, base_url, run_tool, step  # noqa: E402

import anthropic  # noqa: E402
from openai import OpenAI  # noqa: E402

BASE = base_url()
oa = OpenAI(base_url=BASE, api_key=LITELLM_MASTER_KEY, max_retries=0)
an = anthropic.Anthropic(base_url=BASE, api_key=LITELLM_MASTER_KEY, max_retries=0)
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                           "parameters": WEATHER_TOOL_SCHEMA}}]


def chat_stream(model, prompt):
    return "".join((c.choices[0].delta.content or "") for c in oa.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], stream=True,
        stream_options={"include_usage": True}) if c.choices)


def chat_loop(model, prompt):
    msgs = [{"role": "user", "content": prompt}]
    for _ in range(3):
        r = oa.chat.completions.create(model=model, messages=msgs, tools=TOOLS)
        m = r.choices[0].message
        if not m.tool_calls:
            return m.content
        msgs.append(m.model_dump(exclude_none=True))
        for t in m.tool_calls:
            msgs.append({"role": "tool", "tool_call_id": t.id, "content": run_tool(t.function.name, t.function.arguments)})


step("chat -> openai upstream")(lambda: oa.chat.completions.create(
    model="gpt-4o", messages=[{"role": "user", "content": "Hello through the proxy."}]).choices[0].message.content)
step("chat stream -> openai upstream")(lambda: chat_stream("gpt-4o", "Streaming through the proxy. [scenario:thinking]"))
step("chat tool loop -> anthropic upstream (translated)")(lambda: chat_loop("claude-sonnet", "Weather via proxy? [scenario:tools]"))
step("chat stream -> anthropic upstream (translated)")(lambda: chat_stream("claude-sonnet", "Stream via Anthropic. [scenario:cache]"))
step("anthropic /v1/messages -> anthropic upstream")(lambda: an.messages.create(
    model="claude-sonnet", max_tokens=256, messages=[{"role": "user", "content": "Messages via proxy."}]).content[0].text)
step("anthropic /v1/messages stream -> anthropic upstream")(lambda: an.messages.stream(
    model="claude-sonnet", max_tokens=256, messages=[{"role": "user", "content": "Streamed messages via proxy."}]
).__enter__().get_final_text())
step("responses -> openai upstream")(lambda: oa.responses.create(model="gpt-4o", input="Responses via proxy.").output_text)
step("chat -> ollama upstream")(lambda: oa.chat.completions.create(
    model="llama3.2", messages=[{"role": "user", "content": "Ollama via proxy."}]).choices[0].message.content)
step("chat -> openai upstream 429 (proxy error mapping)")(lambda: oa.chat.completions.create(
    model="gpt-4o", messages=[{"role": "user", "content": "Upstream limited. [scenario:error429]"}]).choices[0].message.content)
print(json.dumps({"done": True}))
