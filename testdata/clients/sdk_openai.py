"""OpenAI Python SDK against the mock: chat completions, responses, legacy completions.

usage: python testdata/clients/sdk_openai.py http://127.0.0.1:PORT
"""
from __future__ import annotations

import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from _common import OPENAI_KEY, OPENAI_KEY_2, TIME_TOOL_SCHEMA, WEATHER_TOOL_SCHEMA, base_url, run_tool, step  # noqa: E402

from openai import OpenAI  # noqa: E402

BASE = base_url()
client = OpenAI(base_url=f"{BASE}/v1", api_key=OPENAI_KEY, max_retries=0)
client2 = OpenAI(base_url=f"{BASE}/v1", api_key=OPENAI_KEY_2, max_retries=0, organization="org-MOCKORG000000000000000000")

CHAT_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                      "parameters": WEATHER_TOOL_SCHEMA}},
    {"type": "function", "function": {"name": "get_time", "description": "Current time in a timezone",
                                      "parameters": TIME_TOOL_SCHEMA}},
]
RESP_TOOLS = [{"type": "function", "name": t["function"]["name"], "description": t["function"]["description"],
               "parameters": t["function"]["parameters"]} for t in CHAT_TOOLS]
SYSTEM = "You are a terse assistant used in a packet-capture test."


def chat_stream_collect(cl, **kw):
    """Consume a chat stream, merging tool-call deltas by index, like an agent framework would."""
    text, calls, finish = "", {}, None
    for ch in cl.chat.completions.create(stream=True, **kw):
        if not ch.choices:
            continue
        d = ch.choices[0].delta
        text += d.content or ""
        for tc in d.tool_calls or []:
            c = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            c["id"] = c["id"] or tc.id
            if tc.function:
                c["name"] += tc.function.name or ""
                c["arguments"] += tc.function.arguments or ""
        finish = ch.choices[0].finish_reason or finish
    return text, [calls[i] for i in sorted(calls)], finish


def chat_agent_loop(cl, prompt: str, stream: bool, max_steps: int = 4):
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
    for _ in range(max_steps):
        if stream:
            text, calls, finish = chat_stream_collect(cl, model="gpt-4o", messages=msgs, tools=CHAT_TOOLS,
                                                      stream_options={"include_usage": True})
        else:
            r = cl.chat.completions.create(model="gpt-4o", messages=msgs, tools=CHAT_TOOLS)
            m = r.choices[0].message
            text, finish = m.content or "", r.choices[0].finish_reason
            calls = [{"id": t.id, "name": t.function.name, "arguments": t.function.arguments}
                     for t in m.tool_calls or []]
        if not calls:
            return text
        msgs.append({"role": "assistant", "content": text or None,
                     "tool_calls": [{"id": c["id"], "type": "function",
                                     "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]})
        for c in calls:
            msgs.append({"role": "tool", "tool_call_id": c["id"], "content": run_tool(c["name"], c["arguments"])})
    return "max steps"


def responses_agent_loop(cl, prompt: str, stream: bool, max_steps: int = 4, **kw):
    items = [{"role": "user", "content": prompt}]
    for _ in range(max_steps):
        if stream:
            final = None
            for ev in cl.responses.create(model="gpt-4.1", instructions=SYSTEM, input=items, tools=RESP_TOOLS,
                                          stream=True, **kw):
                if ev.type in ("response.completed", "response.incomplete", "response.failed"):
                    final = ev.response
            r = final
        else:
            r = cl.responses.create(model="gpt-4.1", instructions=SYSTEM, input=items, tools=RESP_TOOLS, **kw)
        calls = [o for o in r.output if o.type == "function_call"]
        if not calls:
            return r.output_text
        for o in r.output:
            items.append(o.model_dump(exclude_none=True))
        for c in calls:
            items.append({"type": "function_call_output", "call_id": c.call_id, "output": run_tool(c.name, c.arguments)})
    return "max steps"


# ----------------------------------------------------------------------------- chat completions
step("chat non-stream")(lambda: client.chat.completions.create(
    model="gpt-4o", messages=[{"role": "system", "content": SYSTEM},
                              {"role": "user", "content": "What is a mock server?"}]).choices[0].message.content)
step("chat stream, no usage")(lambda: chat_stream_collect(
    client, model="gpt-4o-mini", messages=[{"role": "user", "content": "Stream me a greeting."}])[0])
step("chat stream include_usage + reasoning_content")(lambda: chat_stream_collect(
    client, model="gpt-4o", stream_options={"include_usage": True},
    messages=[{"role": "user", "content": "Think first, then greet. [scenario:thinking]"}])[0])
step("chat agent loop, stream, 2 tool steps")(lambda: chat_agent_loop(
    client, "Weather in Paris, then in Tokyo? [scenario:tools:2]", stream=True))
step("chat agent loop, parallel tool calls (interleaved deltas), stream")(lambda: chat_agent_loop(
    client2, "Weather and time please. [scenario:parallel]", stream=True))
step("chat agent loop, parallel, non-stream")(lambda: chat_agent_loop(
    client, "Weather for two cities. [scenario:parallel]", stream=False))
step("chat refusal stream")(lambda: chat_stream_collect(
    client, model="gpt-4o", stream_options={"include_usage": True},
    messages=[{"role": "user", "content": "Do something forbidden. [scenario:refusal]"}]))
step("chat refusal non-stream")(lambda: client.chat.completions.create(
    model="gpt-4o", messages=[{"role": "user", "content": "Forbidden again. [scenario:refusal]"}]).choices[0].message.refusal)
step("chat length non-stream")(lambda: client.chat.completions.create(
    model="gpt-4o-mini", max_tokens=12,
    messages=[{"role": "user", "content": "Write a long essay. [scenario:length]"}]).choices[0].finish_reason)
step("chat cached tokens")(lambda: client2.chat.completions.create(
    model="gpt-4.1", messages=[{"role": "system", "content": SYSTEM * 20},
                               {"role": "user", "content": "Use the cache. [scenario:cache]"}]).usage)
step("chat utf8 stream")(lambda: chat_stream_collect(
    client, model="gpt-4o", stream_options={"include_usage": True},
    messages=[{"role": "user", "content": "Say something in many scripts. [scenario:utf8]"}])[0])

# ----------------------------------------------------------------------------- responses
step("responses non-stream")(lambda: client.responses.create(model="gpt-4.1", input="Say hello.").output_text)
step("responses stream")(lambda: [e.type for e in client.responses.create(
    model="gpt-4.1", input="Stream hello.", stream=True)][-1])
step("responses stream reasoning")(lambda: [e.type for e in client.responses.create(
    model="gpt-5", input="Think, then answer. [scenario:thinking]", stream=True,
    reasoning={"effort": "low", "summary": "auto"}, include=["reasoning.encrypted_content"], store=False)][-1])
step("responses agent loop, stream, function calls")(lambda: responses_agent_loop(
    client, "Weather in Paris please. [scenario:tools,thinking]", stream=True))
step("responses agent loop, parallel, non-stream")(lambda: responses_agent_loop(
    client2, "Two lookups. [scenario:parallel]", stream=False))
step("responses incomplete stream")(lambda: [e.type for e in client.responses.create(
    model="gpt-4.1", input="Long answer please. [scenario:incomplete]", stream=True, max_output_tokens=16)][-1])
step("responses failed stream")(lambda: [e.type for e in client.responses.create(
    model="gpt-4.1", input="This will fail. [scenario:failed]", stream=True)][-1])
step("responses refusal stream")(lambda: [e.type for e in client.responses.create(
    model="gpt-4.1", input="Refuse this. [scenario:refusal]", stream=True)][-1])
step("responses incomplete non-stream")(lambda: client.responses.create(
    model="gpt-4.1", input="Long again. [scenario:length]", max_output_tokens=16).status)

# ----------------------------------------------------------------------------- completions
step("completions non-stream")(lambda: client.completions.create(
    model="gpt-3.5-turbo-instruct", prompt="Once upon a time", max_tokens=32).choices[0].text)
step("completions stream include_usage")(lambda: "".join(c.choices[0].text for c in client.completions.create(
    model="gpt-3.5-turbo-instruct", prompt="Count to three:", stream=True, stream_options={"include_usage": True})
    if c.choices))
step("completions stream, no usage")(lambda: "".join(c.choices[0].text for c in client2.completions.create(
    model="gpt-3.5-turbo-instruct", prompt=["List colors:"], stream=True) if c.choices))


# ----------------------------------------------------------------------------- concurrent connections
def _par(i):
    cl = OpenAI(base_url=f"{BASE}/v1", api_key=OPENAI_KEY, max_retries=0)
    chat_stream_collect(cl, model="gpt-4o-mini", stream_options={"include_usage": True},
                        messages=[{"role": "user", "content": f"Concurrent request number {i}. [scenario:long]"}])


def concurrent():
    ts = [threading.Thread(target=_par, args=(i,)) for i in range(3)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    return "3 concurrent streams"


step("3 concurrent chat streams on 3 connections")(concurrent)
print(json.dumps({"done": True}))
