"""Compressed bodies and concurrency: gzip/br responses (JSON and SSE), gzip/zstd request bodies, several APIs on
several connections at once, and multi-byte UTF-8 split across HTTP chunks.

usage: python testdata/clients/mixed_gzip.py http://127.0.0.1:PORT
"""
from __future__ import annotations

import gzip
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
from _common import ANTHROPIC_KEY, GEMINI_KEY, OPENAI_KEY, base_url, step  # noqa: E402

import anthropic  # noqa: E402
import httpx  # noqa: E402
import zstandard  # noqa: E402
from google import genai  # noqa: E402
from google.genai import types  # noqa: E402
from openai import OpenAI  # noqa: E402

BASE = base_url()
AM = "claude-sonnet-4-6"


def oa():
    return OpenAI(base_url=f"{BASE}/v1", api_key=OPENAI_KEY, max_retries=0)


def an():
    return anthropic.Anthropic(base_url=BASE, api_key=ANTHROPIC_KEY, max_retries=0)


_keep = []


def gem():
    # keep a reference: a google-genai Client closes its HTTP client when garbage-collected
    c = genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=BASE))
    _keep.append(c)
    return c


def chat_stream(prompt, model="gpt-4o"):
    return "".join((c.choices[0].delta.content or "") for c in oa().chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], stream=True,
        stream_options={"include_usage": True}) if c.choices)


def anth_stream(prompt):
    with an().messages.stream(model=AM, max_tokens=512, messages=[{"role": "user", "content": prompt}]) as s:
        return s.get_final_text()


JOBS = {
    "openai chat JSON gzip": lambda: oa().chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Compressed JSON. [scenario:gzip]"}]).choices[0].message.content,
    "openai chat SSE gzip": lambda: chat_stream("Compressed stream. [scenario:gzip,tools]"),
    "openai chat SSE br": lambda: chat_stream("Brotli stream. [scenario:br,thinking]"),
    "openai responses SSE gzip": lambda: [e.type for e in oa().responses.create(
        model="gpt-4.1", input="Compressed responses stream. [scenario:gzip,thinking]", stream=True)][-1],
    "anthropic JSON br": lambda: an().messages.create(
        model=AM, max_tokens=256, messages=[{"role": "user", "content": "Brotli JSON. [scenario:br,cache]"}]).content[0].text,
    "anthropic SSE gzip": lambda: anth_stream("Compressed SSE. [scenario:gzip,long]"),
    "gemini JSON gzip": lambda: gem().models.generate_content(
        model="gemini-2.5-flash", contents="Compressed. [scenario:gzip,thinking]").text,
    "gemini SSE gzip": lambda: "".join(c.text or "" for c in gem().models.generate_content_stream(
        model="gemini-2.5-flash", contents="Compressed SSE. [scenario:gzip,long]")),
    "chat utf8 split chunks": lambda: chat_stream("Split characters. [scenario:utf8]"),
    "anthropic utf8 split chunks": lambda: anth_stream("Split characters. [scenario:utf8]"),
}

with ThreadPoolExecutor(max_workers=4) as ex:
    futs = {name: ex.submit(fn) for name, fn in JOBS.items()}
    for name, f in futs.items():
        step(f"concurrent: {name}")(f.result)


# ---- compressed REQUEST bodies (raw httpx) -------------------------------------------------------
hx = httpx.Client(timeout=30)


def gz_request():
    body = json.dumps({"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": "My request body is gzip-compressed."}]}).encode()
    with hx.stream("POST", f"{BASE}/v1/chat/completions", content=gzip.compress(body, mtime=0),
                   headers={"Content-Type": "application/json", "Content-Encoding": "gzip",
                            "Authorization": f"Bearer {OPENAI_KEY}", "User-Agent": "OpenAI/Python 3.54.0"}) as r:
        return sum(1 for _ in r.iter_lines())


def zstd_request():
    body = json.dumps({"model": AM, "max_tokens": 256, "stream": True,
                       "messages": [{"role": "user", "content": "My request body is zstd-compressed. [scenario:gzip]"}]}).encode()
    with hx.stream("POST", f"{BASE}/v1/messages", content=zstandard.ZstdCompressor().compress(body),
                   headers={"Content-Type": "application/json", "Content-Encoding": "zstd",
                            "Accept-Encoding": "gzip, deflate, br, zstd",
                            "x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01",
                            "User-Agent": "claude-cli/2.1.330 (external, sdk-cli)"}) as r:
        return sum(1 for _ in r.iter_lines())


step("chat request body Content-Encoding: gzip")(gz_request)
step("anthropic request body Content-Encoding: zstd, gzip SSE response")(zstd_request)
print(json.dumps({"done": True}))
