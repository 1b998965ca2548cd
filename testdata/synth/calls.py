"""Glue between rendered API calls and the TCP packetizer: HTTP framing into :class:`ExchangeSpec`.

Also builds the non-LLM exchanges (``GET /health``, ``GET /v1/models``) that real captures contain and
the engine must store but not count as calls.
"""
from __future__ import annotations

import random

import orjson

from . import httpwire
from .apis import CallPlan, render
from .tcpflow import ExchangeSpec


def llm_exchange(plan: CallPlan, rng: random.Random, *, think_s: float = 0.02,
                 chunked_request: bool = False) -> ExchangeSpec:
    """Render ``plan`` and frame it as HTTP/1.1; the exchange's ``truth`` holds the API-level truth."""
    r = render(plan, rng)
    req = httpwire.request(r.method, r.path, r.host, r.req_headers, r.req_body,
                           encoding=plan.req_encoding, chunked=chunked_request)
    chunks, framing = httpwire.response(r.status, r.resp_headers + [("Date", "Thu, 01 Jan 2026 00:00:00 GMT")],
                                        r.units, stream=r.stream, encoding=plan.resp_encoding)
    truth = dict(r.truth)
    path, _, query = r.path.partition("?")
    truth.update({"method": r.method, "path": path, "query": query or None, "host": r.host,
                  "request_encoding": plan.req_encoding, "response_encoding": plan.resp_encoding,
                  "is_stream": response_is_stream(r.resp_headers, path, query)})
    return ExchangeSpec(request=req, response_chunks=chunks, think_s=think_s, truth=truth, framing=framing)


_STREAM_MEDIA = ("text/event-stream", "application/x-ndjson", "application/jsonl")


def response_is_stream(resp_headers: list[tuple[str, str]], path: str, query: str) -> bool:
    """capture-and-http.md §6.5: streamed when the response media type is SSE/NDJSON, or the request was a
    Gemini ``:streamGenerateContent`` without ``alt=sse`` (JSON array). It follows the response actually
    sent, not the request's wish: an HTTP error answering a streaming request is a plain JSON body."""
    ctype = next((v for k, v in resp_headers if k.lower() == "content-type"), "")
    if ctype.split(";", 1)[0].strip().lower() in _STREAM_MEDIA:
        return True
    return path.endswith(":streamGenerateContent") and "alt=sse" not in query.split("&")


def other_exchange(kind: str, host: str, rng: random.Random, headers: list[tuple[str, str]] | None = None,
                   think_s: float = 0.01) -> ExchangeSpec:
    """A non-LLM exchange: ``health`` (GET /health) or ``models`` (GET /v1/models)."""
    hs = list(headers or []) + [("Accept", "*/*")]
    if kind == "health":
        req = httpwire.request("GET", "/health", host, hs)
        body = b'{"status":"ok"}'
    else:
        req = httpwire.request("GET", "/v1/models", host, hs)
        body = orjson.dumps({"object": "list", "data": [
            {"id": m, "object": "model", "created": 1767225600, "owned_by": "system"}
            for m in ("gpt-4.1", "gpt-4.1-mini", "o4-mini", "gpt-5")]})
    chunks, framing = httpwire.response(200, [("Content-Type", "application/json")],
                                        [(0.002 + rng.random() * 0.01, body)], stream=False)
    return ExchangeSpec(request=req, response_chunks=chunks, think_s=think_s, truth=None, framing=framing)
