"""HTTP errors with SDK retry chains, mid-stream errors, cut (FIN) and reset (RST) streams.

usage: python testdata/clients/errors_retries.py http://127.0.0.1:PORT
"""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import ANTHROPIC_KEY, GEMINI_KEY, OPENAI_KEY, base_url, step  # noqa: E402

import anthropic  # noqa: E402
import httpx  # noqa: E402
from google import genai  # noqa: E402
from google.genai import types  # noqa: E402
from openai import OpenAI  # noqa: E402

BASE = base_url()
oa3 = OpenAI(base_url=f"{BASE}/v1", api_key=OPENAI_KEY, max_retries=3)
oa2 = OpenAI(base_url=f"{BASE}/v1", api_key=OPENAI_KEY, max_retries=2)
oa0 = OpenAI(base_url=f"{BASE}/v1", api_key=OPENAI_KEY, max_retries=0)
an2 = anthropic.Anthropic(base_url=BASE, api_key=ANTHROPIC_KEY, max_retries=2)
an1 = anthropic.Anthropic(base_url=BASE, api_key=ANTHROPIC_KEY, max_retries=1)
an0 = anthropic.Anthropic(base_url=BASE, api_key=ANTHROPIC_KEY, max_retries=0)
gem = genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(
    base_url=BASE, retry_options=types.HttpRetryOptions(attempts=3, initial_delay=0.2, max_delay=1.0,
                                                        http_status_codes=[429, 503])))
gem0 = genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=BASE))
AM = "claude-sonnet-4-6"


def chat(cl, prompt, stream=False, **kw):
    msgs = [{"role": "user", "content": prompt}]
    if stream:
        return "".join((c.choices[0].delta.content or "") for c in cl.chat.completions.create(
            model="gpt-4o", messages=msgs, stream=True, **kw) if c.choices)
    return cl.chat.completions.create(model="gpt-4o", messages=msgs, **kw).choices[0].message.content


def amsg(cl, prompt, stream=False, **kw):
    msgs = [{"role": "user", "content": prompt}]
    if stream:
        out = []
        for ev in cl.messages.create(model=AM, max_tokens=512, messages=msgs, stream=True, **kw):
            if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                out.append(ev.delta.text)
        return "".join(out)
    return cl.messages.create(model=AM, max_tokens=512, messages=msgs, **kw).content[0].text


# ---- retry chains (429 / 529 / 503 / 500) -----------------------------------------------------
step("openai chat: 429, 429, then 200 (SDK retries, retry-after 1s)")(lambda: chat(oa3, "Retry me. [scenario:retry429]"))
step("openai chat: 429 x3, SDK gives up (RateLimitError)")(lambda: chat(oa2, "Always limited. [scenario:error429]"))
step("openai responses stream: 500 x2, gives up")(lambda: list(OpenAI(
    base_url=f"{BASE}/v1", api_key=OPENAI_KEY, max_retries=1).responses.create(
    model="gpt-4.1", input="Server error. [scenario:error500]", stream=True)))
step("openai chat: 400 (no retry)")(lambda: chat(oa3, "Bad request. [scenario:error400]"))
step("openai chat: 401 (no retry)")(lambda: chat(oa3, "Bad key. [scenario:error401]"))
step("anthropic: 529 then 200")(lambda: amsg(an2, "Overloaded once. [scenario:retry529:1]", stream=True))
step("anthropic: 529 x3, gives up (OverloadedError)")(lambda: amsg(an2, "Always overloaded. [scenario:error529]"))
step("anthropic: 429 x2 then 200, stream")(lambda: amsg(an2, "Rate limited twice. [scenario:retry429]", stream=True))
step("anthropic: 400")(lambda: amsg(an2, "Invalid. [scenario:error400]"))
step("gemini: 429 x2 then 200 (HttpRetryOptions)")(lambda: gem.models.generate_content(
    model="gemini-2.5-flash", contents="Quota. [scenario:retry429]").text)
step("gemini: 503 x3, gives up")(lambda: gem.models.generate_content(
    model="gemini-2.5-flash", contents="Unavailable. [scenario:error529]").text)
step("gemini: 400 stream")(lambda: list(gem0.models.generate_content_stream(
    model="gemini-2.5-flash", contents="Invalid. [scenario:error400]")))


def ollama_retry():
    hx = httpx.Client(base_url=BASE, timeout=30, headers={"User-Agent": "ollama-python/0.6.0 (x86_64 linux) Python/3.11.7"})
    for attempt in range(4):
        r = hx.post("/api/chat", json={"model": "llama3.2", "stream": False, "messages": [
            {"role": "user", "content": "Busy server. [scenario:retry529:2]"}]})
        if r.status_code < 400:
            return r.json()["message"]["content"]
        time.sleep(0.3)
    return r.status_code


step("ollama: 503 x2 then 200 (client-side retry loop)")(ollama_retry)

# ---- mid-stream errors (HTTP 200) -------------------------------------------------------------
step("anthropic midstream error event")(lambda: amsg(an0, "Fail midway. [scenario:midstream_error]", stream=True))
step("openai chat midstream {error} chunk")(lambda: chat(oa0, "Fail midway. [scenario:midstream_error]", stream=True,
                                                         stream_options={"include_usage": True}))
step("openai responses error event")(lambda: [e.type for e in oa0.responses.create(
    model="gpt-4.1", input="Fail midway. [scenario:midstream_error]", stream=True)])
step("gemini midstream error chunk")(lambda: "".join(c.text or "" for c in gem0.models.generate_content_stream(
    model="gemini-2.5-flash", contents="Fail midway. [scenario:midstream_error]")))


def ollama_stream(prompt, path="/api/chat"):
    hx = httpx.Client(base_url=BASE, timeout=30)
    body = ({"model": "llama3.2", "messages": [{"role": "user", "content": prompt}]} if path == "/api/chat"
            else {"model": "llama3.2", "prompt": prompt})
    with hx.stream("POST", path, json=body) as r:
        return [json.loads(l) for l in r.iter_lines() if l.strip()][-1]


step("ollama midstream error line")(lambda: ollama_stream("Fail midway. [scenario:midstream_error]"))

# ---- cut / reset connections --------------------------------------------------------------------
step("openai chat stream cut (FIN)")(lambda: chat(oa0, "Cut me. [scenario:cut]", stream=True,
                                                  stream_options={"include_usage": True}))
step("openai chat parallel tools stream cut (partial args)")(lambda: chat(
    oa0, "Cut tools. [scenario:parallel,cut]", stream=True,
    tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]))
step("openai responses stream reset (RST)")(lambda: [e.type for e in oa0.responses.create(
    model="gpt-4.1", input="Reset me. [scenario:reset,long]", stream=True)])
step("anthropic stream cut (FIN)")(lambda: amsg(an0, "Cut me. [scenario:cut,long]", stream=True))
step("anthropic non-stream cut, SDK retries once (2 aborted attempts)")(lambda: amsg(an1, "Cut JSON. [scenario:cut]"))
step("gemini stream reset (RST)")(lambda: "".join(c.text or "" for c in gem0.models.generate_content_stream(
    model="gemini-2.5-flash", contents="Reset me. [scenario:reset,long]")))
step("ollama generate stream cut")(lambda: ollama_stream("Cut me. [scenario:cut,long]", "/api/generate"))
step("completions stream cut")(lambda: "".join(c.choices[0].text for c in oa0.completions.create(
    model="gpt-3.5-turbo-instruct", prompt="Cut me. [scenario:cut,long]", stream=True) if c.choices))
print(json.dumps({"done": True}))
