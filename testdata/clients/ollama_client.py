"""Ollama native API over httpx (the wire shape of the ollama-python client).

usage: python testdata/clients/ollama_client.py http://127.0.0.1:PORT
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import WEATHER_TOOL_SCHEMA, base_url, run_tool, step  # noqa: E402

import httpx  # noqa: E402

BASE = base_url()
UA = "ollama-python/0.6.0 (x86_64 linux) Python/3.11.7"
hx = httpx.Client(base_url=BASE, timeout=30,
                  headers={"User-Agent": UA, "Accept": "application/json", "Content-Type": "application/json"})
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                           "parameters": WEATHER_TOOL_SCHEMA}}]


def ndjson(path: str, body: dict) -> list:
    with hx.stream("POST", path, json=body) as r:
        return [json.loads(line) for line in r.iter_lines() if line.strip()]


def chat_stream(msgs, **kw):
    lines = ndjson("/api/chat", {"model": "llama3.2", "messages": msgs, **kw})
    content = "".join(l.get("message", {}).get("content", "") for l in lines)
    calls = [c for l in lines for c in l.get("message", {}).get("tool_calls") or []]
    return content, calls, lines[-1]


def agent_loop(prompt: str, stream: bool):
    msgs = [{"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": prompt}]
    for _ in range(4):
        if stream:
            content, calls, _ = chat_stream(msgs, tools=TOOLS)
        else:
            r = hx.post("/api/chat", json={"model": "qwen3:8b", "messages": msgs, "tools": TOOLS, "stream": False}).json()
            content, calls = r["message"]["content"], r["message"].get("tool_calls") or []
        if not calls:
            return content
        msgs.append({"role": "assistant", "content": content, "tool_calls": calls})
        for c in calls:
            f = c["function"]
            msgs.append({"role": "tool", "content": run_tool(f["name"], f["arguments"]), "tool_name": f["name"]})
    return "max steps"


step("GET /api/version")(lambda: hx.get("/api/version").json())
step("GET /api/tags")(lambda: len(hx.get("/api/tags").json()["models"]))
step("chat stream (stream absent = true)")(lambda: chat_stream([{"role": "user", "content": "Hello there!"}])[0])
step("chat non-stream")(lambda: hx.post("/api/chat", json={
    "model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "What is a mock server?"}]}).json()["message"]["content"])
step("chat agent loop stream, tools")(lambda: agent_loop("Weather in Paris? [scenario:tools]", stream=True))
step("chat agent loop non-stream, parallel tools")(lambda: agent_loop("Two cities. [scenario:parallel]", stream=False))
step("chat thinking stream")(lambda: chat_stream([{"role": "user", "content": "Think first. [scenario:thinking]"}],
                                                 think=True)[0])
step("chat length (num_predict)")(lambda: hx.post("/api/chat", json={
    "model": "llama3.2", "stream": False, "options": {"num_predict": 8},
    "messages": [{"role": "user", "content": "Long essay. [scenario:length]"}]}).json()["done_reason"])
step("generate stream")(lambda: "".join(l.get("response", "") for l in ndjson(
    "/api/generate", {"model": "llama3.2", "prompt": "Why is the sky blue?"})))
step("generate non-stream")(lambda: hx.post("/api/generate", json={
    "model": "llama3.2", "prompt": "Complete: the quick brown", "stream": False, "system": "Be brief."}).json()["response"])
step("generate thinking stream (gpt-oss)")(lambda: len(ndjson(
    "/api/generate", {"model": "gpt-oss:20b", "prompt": "Reason first. [scenario:thinking]", "think": True})))
step("generate utf8 stream")(lambda: "".join(l.get("response", "") for l in ndjson(
    "/api/generate", {"model": "llama3.2", "prompt": "Many scripts. [scenario:utf8]"})))
print(json.dumps({"done": True}))
