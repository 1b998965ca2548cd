"""All four SDK families against a mock bound to ::1.

usage: python testdata/clients/ipv6.py http://[::1]:PORT
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import ANTHROPIC_KEY, GEMINI_KEY, OPENAI_KEY, WEATHER_TOOL_SCHEMA, base_url, run_tool, step  # noqa: E402

import anthropic  # noqa: E402
import httpx  # noqa: E402
from google import genai  # noqa: E402
from google.genai import types  # noqa: E402
from openai import OpenAI  # noqa: E402

BASE = base_url()
oa = OpenAI(base_url=f"{BASE}/v1", api_key=OPENAI_KEY, max_retries=0)
an = anthropic.Anthropic(base_url=BASE, api_key=ANTHROPIC_KEY, max_retries=0)
gm = genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=BASE))


def anth_loop():
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER_TOOL_SCHEMA}]
    msgs = [{"role": "user", "content": "Weather over IPv6? [scenario:tools]"}]
    for _ in range(3):
        with an.messages.stream(model="claude-sonnet-4-6", max_tokens=512, tools=tools, messages=msgs) as s:
            m = s.get_final_message()
        uses = [b for b in m.content if b.type == "tool_use"]
        if not uses:
            return m.content[0].text
        msgs += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": b.id,
                                               "content": run_tool(b.name, b.input)} for b in uses]}]


step("openai chat stream over ::1")(lambda: "".join((c.choices[0].delta.content or "") for c in oa.chat.completions.create(
    model="gpt-4o", messages=[{"role": "user", "content": "Hello over IPv6."}], stream=True,
    stream_options={"include_usage": True}) if c.choices))
step("openai responses over ::1")(lambda: oa.responses.create(model="gpt-4.1", input="Responses over IPv6.").output_text)
step("anthropic agent loop over ::1")(anth_loop)
step("gemini stream over ::1")(lambda: "".join(c.text or "" for c in gm.models.generate_content_stream(
    model="gemini-2.5-flash", contents="Gemini over IPv6. [scenario:thinking]")))
step("ollama chat over ::1")(lambda: httpx.post(f"{BASE}/api/chat", json={
    "model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "Ollama over IPv6."}]}).json()["done_reason"])
print(json.dumps({"done": True}))
