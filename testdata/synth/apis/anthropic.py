"""Anthropic Messages API (``POST /v1/messages``), streaming SSE and whole JSON (wire-apis.md §3)."""
from __future__ import annotations

import random
from typing import Any

import orjson

from ..httpwire import sse
from .common import CallPlan, Msg, Rendered, args_json, base_truth, interleave, rand_token, split_str, \
    split_text, timeline


def _messages(msgs: list[Msg]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in msgs:
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id,
                     "content": m.text, **({"is_error": True} if m.is_error else {})}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list) \
                    and out[-1]["content"] and out[-1]["content"][0].get("type") == "tool_result":
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.role == "assistant":
            content: list[dict[str, Any]] = []
            if m.text:
                content.append({"type": "text", "text": m.text})
            for c in m.tool_calls:
                content.append({"type": "tool_use", "id": c.id, "name": c.name, "input": c.args})
            out.append({"role": "assistant", "content": content})
        else:
            out.append({"role": "user", "content": [{"type": "text", "text": m.text}]})
    return out


def request_body(plan: CallPlan) -> dict[str, Any]:
    body: dict[str, Any] = {"model": plan.model, "max_tokens": plan.max_tokens,
                            "messages": _messages(plan.messages)}
    if plan.system:
        body["system"] = [{"type": "text", "text": plan.system,
                           "cache_control": {"type": "ephemeral"}}]
    if plan.tools:
        body["tools"] = [{"name": t["name"], "description": t["description"],
                          "input_schema": t["parameters"]} for t in plan.tools]
    if "metadata_user_id" in plan.extra:
        body["metadata"] = {"user_id": plan.extra["metadata_user_id"]}
    if plan.thinking:
        body["thinking"] = {"type": "enabled", "budget_tokens": 2048}
    if plan.stream:
        body["stream"] = True
    return body


def render(plan: CallPlan, rng: random.Random) -> Rendered:
    served = plan.served_model or plan.model
    msg_id = "msg_01" + rand_token(rng, 22)
    rid = "req_011C" + rand_token(rng, 20)
    u = plan.usage
    hs = [("Content-Type", "application/json"), ("request-id", rid),
          ("anthropic-organization-id", "7f3c1b2a-0d4e-4c55-9a61-2b8e5e1d0c33"), ("via", "1.1 google"),
          ("cf-ray", rand_token(rng, 16, "0123456789abcdef") + "-SJC"), ("server", "cloudflare")]
    body = request_body(plan)
    path = plan.path or "/v1/messages"
    host = plan.host or "api.anthropic.com"
    if plan.outcome in ("http_429", "http_500"):
        status = 429 if plan.outcome == "http_429" else rng.choice([500, 529])
        etype = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}[status]
        err = {"type": "error", "error": {"type": etype, "message": "Overloaded" if status == 529 else
                                          "This request would exceed your rate limit."},
               "request_id": rid}
        if status == 429:
            hs += [("retry-after", str(rng.randint(1, 30))), ("x-should-retry", "true")]
        truth = base_truth(plan, "anthropic", status, None, plan.model, [], {})
        return Rendered("POST", path, host, plan.headers, body, status, hs,
                        [(plan.ttfb_s, orjson.dumps(err))], False, truth)
    stop = {"stop": "end_turn", "length": "max_tokens", "tool_use": "tool_use", "refusal": "refusal",
            "stream_error": None}[plan.outcome]
    usage_full = {"input_tokens": u.input, "cache_creation_input_tokens": u.cache_creation,
                  "cache_read_input_tokens": u.cache_read,
                  "cache_creation": {"ephemeral_5m_input_tokens": u.cache_creation,
                                     "ephemeral_1h_input_tokens": 0},
                  "output_tokens": u.output, "service_tier": "standard"}
    tokens = {"input_tokens": u.input, "output_tokens": u.output, "cache_read_tokens": u.cache_read,
              "cache_creation_tokens": u.cache_creation, "cache_creation_1h_tokens": 0, "reasoning_tokens": None}
    calls = plan.tool_calls
    if not plan.stream:
        content: list[dict[str, Any]] = []
        if plan.thinking:
            content.append({"type": "thinking", "thinking": plan.thinking, "signature": rand_token(rng, 64)})
        if plan.text:
            content.append({"type": "text", "text": plan.text})
        for c in calls:
            content.append({"type": "tool_use", "id": c.id, "name": c.name, "input": c.args})
        resp = {"id": msg_id, "type": "message", "role": "assistant", "model": served, "content": content,
                "stop_reason": stop, "stop_sequence": None, "usage": usage_full}
        delay = plan.ttfb_s + plan.tpot_s * u.output * 0.2
        truth = base_truth(plan, "anthropic", 200, stop, served, calls, tokens)
        return Rendered("POST", path, host, plan.headers, body, 200, hs, [(delay, orjson.dumps(resp))],
                        False, truth)
    ev: list[bytes] = []
    start_usage = dict(usage_full, output_tokens=1)
    ev.append(sse("message_start", {"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": served, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": start_usage}}))
    idx = 0
    if plan.thinking:
        ev.append(sse("content_block_start", {"type": "content_block_start", "index": idx,
                                              "content_block": {"type": "thinking", "thinking": "",
                                                                "signature": ""}}))
        for p in split_text(plan.thinking, rng):
            ev.append(sse("content_block_delta", {"type": "content_block_delta", "index": idx,
                                                  "delta": {"type": "thinking_delta", "thinking": p}}))
        ev.append(sse("content_block_delta", {"type": "content_block_delta", "index": idx,
                                              "delta": {"type": "signature_delta",
                                                        "signature": rand_token(rng, 64)}}))
        ev.append(sse("content_block_stop", {"type": "content_block_stop", "index": idx}))
        idx += 1
    if plan.text:
        ev.append(sse("content_block_start", {"type": "content_block_start", "index": idx,
                                              "content_block": {"type": "text", "text": ""}}))
        if len(ev) == 2:
            ev.append(sse("ping", {"type": "ping"}))
        pieces = split_text(plan.text, rng)
        cut = len(pieces) // 2 if plan.outcome == "stream_error" else len(pieces)
        for p in pieces[:cut]:
            ev.append(sse("content_block_delta", {"type": "content_block_delta", "index": idx,
                                                  "delta": {"type": "text_delta", "text": p}}))
        if plan.outcome == "stream_error":
            ev.append(sse("error", {"type": "error", "error": {"type": "overloaded_error",
                                                               "message": "Overloaded"}}))
            tokens["output_tokens"] = 1
            truth = base_truth(plan, "anthropic", 200, None, served, [], tokens)
            return Rendered("POST", path, host, plan.headers, body, 200,
                            _stream_headers(hs), list(zip(timeline(len(ev), plan, rng), ev)), True, truth)
        ev.append(sse("content_block_stop", {"type": "content_block_stop", "index": idx}))
        idx += 1
    first_tool = idx
    for k, c in enumerate(calls):
        ev.append(sse("content_block_start", {"type": "content_block_start", "index": first_tool + k,
                                              "content_block": {"type": "tool_use", "id": c.id,
                                                                "name": c.name, "input": {}}}))
        if not plan.interleave:
            ev.extend(_tool_deltas(first_tool + k, split_str(args_json(c.args), rng)))
            ev.append(sse("content_block_stop", {"type": "content_block_stop", "index": first_tool + k}))
    if plan.interleave and calls:
        lists = [split_str(args_json(c.args), rng) for c in calls]
        for k, piece in interleave(lists, rng, True):
            ev.extend(_tool_deltas(first_tool + k, [piece]))
        for k in range(len(calls)):
            ev.append(sse("content_block_stop", {"type": "content_block_stop", "index": first_tool + k}))
    ev.append(sse("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": stop, "stop_sequence": None},
                                    "usage": {"input_tokens": u.input,
                                              "cache_creation_input_tokens": u.cache_creation,
                                              "cache_read_input_tokens": u.cache_read,
                                              "output_tokens": u.output}}))
    ev.append(sse("message_stop", {"type": "message_stop"}))
    truth = base_truth(plan, "anthropic", 200, stop, served, calls, tokens)
    return Rendered("POST", path, host, plan.headers, body, 200, _stream_headers(hs),
                    list(zip(timeline(len(ev), plan, rng), ev)), True, truth)


def _tool_deltas(index: int, pieces: list[str]) -> list[bytes]:
    return [sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                        "delta": {"type": "input_json_delta", "partial_json": p}})
            for p in pieces]


def _stream_headers(hs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache")] + hs[1:]
