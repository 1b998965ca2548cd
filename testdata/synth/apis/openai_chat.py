"""OpenAI Chat Completions (``/v1/chat/completions``) and legacy Completions (wire-apis.md §4, §6)."""
from __future__ import annotations

import random
from typing import Any

import orjson

from ..httpwire import sse
from .common import CallPlan, Msg, Rendered, args_json, base_truth, interleave, rand_token, split_str, \
    split_text, timeline

_CREATED = 1767225600


def _messages(plan: CallPlan) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if plan.system:
        out.append({"role": "system", "content": plan.system})
    for m in plan.messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text})
        elif m.role == "assistant":
            d: dict[str, Any] = {"role": "assistant", "content": m.text or None}
            if m.tool_calls:
                d["tool_calls"] = [{"id": c.id, "type": "function",
                                    "function": {"name": c.name, "arguments": args_json(c.args)}}
                                   for c in m.tool_calls]
            out.append(d)
        else:
            out.append({"role": "user", "content": m.text})
    return out


def _error(plan: CallPlan, rng: random.Random, api: str, path: str, host: str, body: Any,
           hs: list[tuple[str, str]]) -> Rendered:
    status = 429 if plan.outcome == "http_429" else 500
    if status == 429:
        err = {"error": {"message": "Rate limit reached for requests", "type": "requests",
                         "param": None, "code": "rate_limit_exceeded"}}
        hs = hs + [("retry-after", str(rng.randint(1, 20))), ("x-ratelimit-remaining-requests", "0")]
    else:
        err = {"error": {"message": "The server had an error while processing your request.",
                         "type": "server_error", "param": None, "code": None}}
    truth = base_truth(plan, api, status, None, plan.model, [], {})
    return Rendered("POST", path, host, plan.headers, body, status, hs,
                    [(plan.ttfb_s, orjson.dumps(err))], False, truth)


def _usage(plan: CallPlan) -> tuple[dict[str, Any], dict[str, int | None]]:
    u = plan.usage
    raw = {"prompt_tokens": u.input, "completion_tokens": u.output, "total_tokens": u.input + u.output,
           "prompt_tokens_details": {"cached_tokens": u.cache_read, "audio_tokens": 0},
           "completion_tokens_details": {"reasoning_tokens": u.reasoning, "audio_tokens": 0,
                                         "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
    tokens = {"input_tokens": u.input, "output_tokens": u.output, "cache_read_tokens": u.cache_read,
              "cache_creation_tokens": None, "reasoning_tokens": u.reasoning}
    return raw, tokens


def _hs(rng: random.Random) -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), ("openai-organization", "user-" + rand_token(rng, 24).lower()),
            ("openai-processing-ms", str(rng.randint(80, 4000))), ("openai-version", "2020-10-01"),
            ("x-request-id", "req_" + rand_token(rng, 32, "0123456789abcdef")), ("server", "cloudflare")]


def render(plan: CallPlan, rng: random.Random) -> Rendered:
    served = plan.served_model or plan.model
    path = plan.path or "/v1/chat/completions"
    host = plan.host or "api.openai.com"
    body: dict[str, Any] = {"model": plan.model, "messages": _messages(plan)}
    if plan.tools:
        body["tools"] = [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                                           "parameters": t["parameters"]}} for t in plan.tools]
    body["max_completion_tokens"] = plan.max_tokens
    if plan.stream:
        body["stream"] = True
        if plan.include_usage:
            body["stream_options"] = {"include_usage": True}
    hs = _hs(rng)
    if plan.outcome in ("http_429", "http_500"):
        return _error(plan, rng, "openai-chat", path, host, body, hs)
    cid = "chatcmpl-" + rand_token(rng, 29)
    raw_usage, tokens = _usage(plan)
    calls = plan.tool_calls
    finish = {"stop": "stop", "length": "length", "tool_use": "tool_calls", "refusal": "stop",
              "stream_error": None}[plan.outcome]
    if not plan.stream:
        msg: dict[str, Any] = {"role": "assistant", "content": plan.text or None, "refusal": None,
                               "annotations": []}
        if plan.outcome == "refusal":
            msg["content"], msg["refusal"] = None, plan.text
        if calls:
            msg["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": args_json(c.args)}} for c in calls]
        resp = {"id": cid, "object": "chat.completion", "created": _CREATED, "model": served,
                "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}],
                "usage": raw_usage, "service_tier": "default", "system_fingerprint": "fp_" + rand_token(rng, 10)}
        truth = base_truth(plan, "openai-chat", 200, finish, served, calls, tokens)
        return Rendered("POST", path, host, plan.headers, body, 200, hs,
                        [(plan.ttfb_s + plan.tpot_s * plan.usage.output * 0.2, orjson.dumps(resp))], False, truth)
    fp = "fp_" + rand_token(rng, 10)

    def chunk(delta: dict[str, Any], fr: str | None = None, usage: Any = None, choices: bool = True) -> bytes:
        c: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": _CREATED, "model": served,
                             "service_tier": "default", "system_fingerprint": fp,
                             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": fr}]
                             if choices else []}
        if plan.include_usage:
            c["usage"] = usage
        return sse(None, c)

    ev = [chunk({"role": "assistant", "content": "", "refusal": None})]
    field = "refusal" if plan.outcome == "refusal" else "content"
    pieces = split_text(plan.text, rng) if plan.text else []
    if plan.outcome == "stream_error":
        pieces = pieces[: max(1, len(pieces) // 2)]
    ev += [chunk({field: p}) for p in pieces]
    if plan.outcome == "stream_error":
        ev.append(sse(None, {"error": {"message": "The server had an error while processing your request.",
                                       "type": "server_error", "param": None, "code": None}}))
        truth = base_truth(plan, "openai-chat", 200, None, served, [], {})
        return Rendered("POST", path, host, plan.headers, body, 200, _stream_hs(hs),
                        list(zip(timeline(len(ev), plan, rng), ev)), True, truth)
    if calls:
        heads = [chunk({"tool_calls": [{"index": k, "id": c.id, "type": "function",
                                        "function": {"name": c.name, "arguments": ""}}]})
                 for k, c in enumerate(calls)]
        lists = [split_str(args_json(c.args), rng) for c in calls]
        if plan.interleave:
            ev += heads
            for k, p in interleave(lists, rng, True):
                ev.append(chunk({"tool_calls": [{"index": k, "function": {"arguments": p}}]}))
        else:
            for k, (h, lst) in enumerate(zip(heads, lists)):
                ev.append(h)
                ev += [chunk({"tool_calls": [{"index": k, "function": {"arguments": p}}]}) for p in lst]
    ev.append(chunk({}, finish))
    if plan.include_usage:
        ev.append(chunk({}, None, raw_usage, choices=False))
    else:
        tokens = {}
    ev.append(b"data: [DONE]\n\n")
    truth = base_truth(plan, "openai-chat", 200, finish, served, calls, tokens)
    return Rendered("POST", path, host, plan.headers, body, 200, _stream_hs(hs),
                    list(zip(timeline(len(ev), plan, rng), ev)), True, truth)


def _stream_hs(hs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [("Content-Type", "text/event-stream; charset=utf-8")] + hs[1:]


def render_completions(plan: CallPlan, rng: random.Random) -> Rendered:
    """Legacy ``/v1/completions`` as served by vLLM / OpenAI."""
    served = plan.served_model or plan.model
    path = plan.path or "/v1/completions"
    host = plan.host or "vllm.internal:8000"
    prompt = "\n".join(m.text for m in plan.messages if m.role == "user")
    body: dict[str, Any] = {"model": plan.model, "prompt": prompt, "max_tokens": plan.max_tokens,
                            "temperature": 0.2}
    if plan.stream:
        body["stream"] = True
        if plan.include_usage:
            body["stream_options"] = {"include_usage": True}
    hs = [("Content-Type", "application/json"), ("server", "uvicorn")]
    if plan.outcome in ("http_429", "http_500"):
        return _error(plan, rng, "openai-completions", path, host, body, hs)
    cid = "cmpl-" + rand_token(rng, 32, "0123456789abcdef")
    u = plan.usage
    raw_usage = {"prompt_tokens": u.input, "completion_tokens": u.output, "total_tokens": u.input + u.output}
    tokens: dict[str, int | None] = {"input_tokens": u.input, "output_tokens": u.output,
                                     "cache_read_tokens": None, "cache_creation_tokens": None,
                                     "reasoning_tokens": None}
    finish = "length" if plan.outcome == "length" else "stop"
    if not plan.stream:
        resp = {"id": cid, "object": "text_completion", "created": _CREATED, "model": served,
                "choices": [{"index": 0, "text": plan.text, "logprobs": None, "finish_reason": finish,
                             "stop_reason": None, "prompt_logprobs": None}], "usage": raw_usage}
        truth = base_truth(plan, "openai-completions", 200, finish, served, [], tokens)
        return Rendered("POST", path, host, plan.headers, body, 200, hs,
                        [(plan.ttfb_s + plan.tpot_s * u.output * 0.2, orjson.dumps(resp))], False, truth)

    def chunk(text: str, fr: str | None) -> bytes:
        return sse(None, {"id": cid, "object": "text_completion", "created": _CREATED, "model": served,
                          "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": fr,
                                       "stop_reason": None}], "usage": None})

    pieces = split_text(plan.text, rng)
    ev = [chunk(p, None) for p in pieces[:-1]] + [chunk(pieces[-1] if pieces else "", finish)]
    if plan.include_usage:
        ev.append(sse(None, {"id": cid, "object": "text_completion", "created": _CREATED, "model": served,
                             "choices": [], "usage": raw_usage}))
    else:
        tokens = {}
    ev.append(b"data: [DONE]\n\n")
    truth = base_truth(plan, "openai-completions", 200, finish, served, [], tokens)
    return Rendered("POST", path, host, plan.headers, body, 200, _stream_hs(hs),
                    list(zip(timeline(len(ev), plan, rng), ev)), True, truth)
