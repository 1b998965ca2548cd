"""google-genai SDK against the mock (plus raw httpx for the JSON-array stream and the ?key= form).

usage: python testdata/clients/sdk_gemini.py http://127.0.0.1:PORT
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import GEMINI_KEY, base_url, run_tool, step  # noqa: E402

import httpx  # noqa: E402
from google import genai  # noqa: E402
from google.genai import types  # noqa: E402

BASE = base_url()
client = genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=BASE))
MODEL = "gemini-2.5-flash"


def get_weather(location: str) -> dict:
    """Current weather for a city.

    Args:
        location: City name, e.g. Paris.
    """
    return json.loads(run_tool("get_weather", {"location": location}))


WEATHER_DECL = types.FunctionDeclaration(
    name="get_weather", description="Current weather for a city",
    parameters=types.Schema(type="OBJECT", properties={"location": types.Schema(type="STRING")}, required=["location"]))
TIME_DECL = types.FunctionDeclaration(
    name="get_time", description="Current time in a timezone",
    parameters=types.Schema(type="OBJECT", properties={"timezone": types.Schema(type="STRING")}, required=["timezone"]))


def stream_text(prompt, **cfg):
    out = []
    for ch in client.models.generate_content_stream(model=MODEL, contents=prompt,
                                                    config=types.GenerateContentConfig(**cfg) if cfg else None):
        out.append(ch.text or "")
    return "".join(out)


def manual_loop(prompt: str, stream: bool):
    """Manual function-calling loop: functionCall parts (no ids) -> functionResponse parts -> final text."""
    cfg = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER_DECL, TIME_DECL])],
                                      automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
                                      system_instruction="You are a terse assistant used in a packet-capture test.")
    contents = [types.Content(role="user", parts=[types.Part(text=prompt)])]
    for _ in range(4):
        if stream:
            parts = []
            for ch in client.models.generate_content_stream(model=MODEL, contents=contents, config=cfg):
                if ch.candidates and ch.candidates[0].content and ch.candidates[0].content.parts:
                    parts += ch.candidates[0].content.parts
        else:
            r = client.models.generate_content(model=MODEL, contents=contents, config=cfg)
            parts = r.candidates[0].content.parts
        calls = [p.function_call for p in parts if p.function_call]
        if not calls:
            return "".join(p.text or "" for p in parts if not p.thought)
        contents.append(types.Content(role="model", parts=parts))
        contents.append(types.Content(role="user", parts=[
            types.Part.from_function_response(name=c.name, response=json.loads(run_tool(c.name, c.args)))
            for c in calls]))
    return "max steps"


step("generateContent")(lambda: client.models.generate_content(model=MODEL, contents="What is a mock server?").text)
step("streamGenerateContent alt=sse")(lambda: stream_text("Stream me a greeting."))
step("stream with thoughts")(lambda: stream_text(
    "Think, then greet. [scenario:thinking]",
    thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=512)))
step("automatic function calling (SDK-driven loop)")(lambda: client.models.generate_content(
    model=MODEL, contents="Weather in Paris? [scenario:tools]",
    config=types.GenerateContentConfig(tools=[get_weather])).text)
step("manual loop, parallel functionCalls, stream")(lambda: manual_loop("Weather and time. [scenario:parallel]", True))
step("manual loop, 2 steps, non-stream")(lambda: manual_loop("Two steps please. [scenario:tools:2,thinking]", False))
step("cached content tokens")(lambda: client.models.generate_content(
    model=MODEL, contents="Use the cache. [scenario:cache,thinking]").usage_metadata)
step("safety finish (refusal)")(lambda: client.models.generate_content(
    model=MODEL, contents="Forbidden. [scenario:refusal]").candidates[0].finish_reason)
step("prompt blocked")(lambda: client.models.generate_content(
    model=MODEL, contents="Blocked prompt. [scenario:blocked]").prompt_feedback)
step("MAX_TOKENS stream")(lambda: stream_text("Long essay. [scenario:length]", max_output_tokens=12))
step("gemini-2.5-pro utf8 stream")(lambda: "".join(ch.text or "" for ch in client.models.generate_content_stream(
    model="gemini-2.5-pro", contents="Many scripts. [scenario:utf8]")))

# raw HTTP forms that the SDK does not use
hx = httpx.Client(timeout=30, headers={"User-Agent": "google-genai-sdk/3.4.0 gl-python/3.11.7"})
body = {"contents": [{"role": "user", "parts": [{"text": "JSON array streaming please."}]}],
        "generationConfig": {"maxOutputTokens": 256}}


def raw_array():
    with hx.stream("POST", f"{BASE}/v1beta/models/{MODEL}:streamGenerateContent", json=body,
                   headers={"x-goog-api-key": GEMINI_KEY}) as r:
        data = b"".join(r.iter_bytes())
    return len(json.loads(data))


step("raw :streamGenerateContent JSON array (v1beta)")(raw_array)
step("raw :streamGenerateContent?alt=sse&key=... (key in query)")(lambda: hx.post(
    f"{BASE}/v1beta/models/gemini-2.0-flash:streamGenerateContent", params={"alt": "sse", "key": GEMINI_KEY},
    json={"contents": [{"parts": [{"text": "Key in the URL. [scenario:tools]"}]}],
          "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {
              "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}]}]}
).text.count("data:"))
step("raw :generateContent JSON array thinking (v1beta)")(lambda: hx.post(
    f"{BASE}/v1beta/models/{MODEL}:streamGenerateContent", headers={"x-goog-api-key": GEMINI_KEY},
    json={"contents": [{"role": "user", "parts": [{"text": "Array with thoughts. [scenario:thinking,cache]"}]}]}
).status_code)
print(json.dumps({"done": True}))
