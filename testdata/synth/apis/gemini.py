"""Gemini ``generateContent`` / ``streamGenerateContent`` (SSE with ``alt=sse``, else JSON array), §7."""
from __future__ import annotations

import random
from typing import Any

import orjson

from ..httpwire import sse
from .common import CallPlan, Rendered, base_truth, rand_token, split_text, timeline


def _contents(plan: CallPlan) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in plan.messages:
        if m.role == "tool":
            part = {"functionResponse": {"name": m.tool_name, "response": {"output": m.text}}}
            if out and out[-1]["role"] == "user" and "functionResponse" in out[-1]["parts"][0]:
                out[-1]["parts"].append(part)
            else:
                out.append({"role": "user", "parts": [part]})
        elif m.role == "assistant":
            parts: list[dict[str, Any]] = []
            if m.text:
                parts.append({"text": m.text})
            parts += [{"functionCall": {"name": c.name, "args": c.args}} for c in m.tool_calls]
            out.append({"role": "model", "parts": parts})
        else:
            out.append({"role": "user", "parts": [{"text": m.text}]})
    return out


def render(plan: CallPlan, rng: random.Random) -> Rendered:
    served = plan.served_model or plan.model
    sse_mode = plan.extra.get("gemini_sse", True)
    verb = "streamGenerateContent" if plan.stream else "generateContent"
    path = plan.path or f"/v1beta/models/{plan.model}:{verb}"
    if plan.stream and sse_mode:
        path += "?alt=sse"
    host = plan.host or "generativelanguage.googleapis.com"
    body: dict[str, Any] = {"contents": _contents(plan)}
    if plan.system:
        body["systemInstruction"] = {"parts": [{"text": plan.system}]}
    if plan.tools:
        body["tools"] = [{"functionDeclarations": [{"name": t["name"], "description": t["description"],
                                                    "parameters": t["parameters"]} for t in plan.tools]}]
    gen: dict[str, Any] = {"maxOutputTokens": plan.max_tokens, "temperature": 1}
    if plan.thinking:
        gen["thinkingConfig"] = {"thinkingBudget": 1024, "includeThoughts": True}
    body["generationConfig"] = gen
    hs = [("Content-Type", "application/json; charset=UTF-8"), ("Vary", "Origin"), ("Vary", "X-Origin"),
          ("Server", "scaffolding on HTTPServer2"), ("X-XSS-Protection", "0"), ("Server-Timing", "gfet4t7; dur=812")]
    if plan.outcome in ("http_429", "http_500"):
        status = 429 if plan.outcome == "http_429" else 500
        err = {"error": {"code": status, "message": "Resource has been exhausted (e.g. check quota)." if
                         status == 429 else "An internal error has occurred.",
                         "status": "RESOURCE_EXHAUSTED" if status == 429 else "INTERNAL"}}
        if status == 429:
            hs.append(("Retry-After", str(rng.randint(5, 60))))
        truth = base_truth(plan, "gemini", status, None, plan.model, [], {})
        return Rendered("POST", path, host, plan.headers, body, status, hs,
                        [(plan.ttfb_s, orjson.dumps(err))], False, truth)
    u = plan.usage
    usage: dict[str, Any] = {"promptTokenCount": u.input, "candidatesTokenCount": u.output - u.reasoning,
                             "totalTokenCount": u.input + u.output,
                             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": u.input}]}
    if u.cache_read:
        usage["cachedContentTokenCount"] = u.cache_read
    if u.reasoning:
        usage["thoughtsTokenCount"] = u.reasoning
    tokens = {"input_tokens": u.input, "output_tokens": u.output,
              "cache_read_tokens": u.cache_read if u.cache_read else None, "cache_creation_tokens": None,
              "reasoning_tokens": u.reasoning if u.reasoning else None}
    rid = rand_token(rng, 22)
    calls = plan.tool_calls
    if plan.outcome == "refusal":
        finish = "SAFETY"
    else:
        finish = {"stop": "STOP", "length": "MAX_TOKENS", "tool_use": "STOP"}[plan.outcome]
    fc_parts = [{"functionCall": {"name": c.name, "args": c.args}} for c in calls]
    text = "" if plan.outcome == "refusal" else plan.text

    def cand(parts: list[dict[str, Any]], fr: str | None) -> dict[str, Any]:
        c: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if fr:
            c["finishReason"] = fr
        if fr == "SAFETY":
            c = {"finishReason": "SAFETY", "index": 0, "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]}
        return c

    truth = base_truth(plan, "gemini", 200, finish, served, calls, tokens)
    for tc in truth["tool_calls"]:
        tc["id"] = None  # Gemini function calls carry no id on this wire
    if not plan.stream:
        parts = ([{"text": plan.thinking, "thought": True}] if plan.thinking else []) + \
            ([{"text": text}] if text else []) + fc_parts
        resp = {"candidates": [cand(parts, finish)], "usageMetadata": usage, "modelVersion": served,
                "responseId": rid}
        return Rendered("POST", path, host, plan.headers, body, 200, hs,
                        [(plan.ttfb_s + plan.tpot_s * u.output * 0.2, orjson.dumps(resp))], False, truth)
    chunks: list[dict[str, Any]] = []
    partial = {"promptTokenCount": u.input, "totalTokenCount": u.input,
               "promptTokensDetails": usage["promptTokensDetails"]}
    if plan.thinking:
        for p in split_text(plan.thinking, rng, 3, 8):
            chunks.append({"candidates": [cand([{"text": p, "thought": True}], None)],
                           "usageMetadata": partial, "modelVersion": served, "responseId": rid})
    for p in split_text(text, rng, 3, 8) if text else []:
        chunks.append({"candidates": [cand([{"text": p}], None)], "usageMetadata": partial,
                       "modelVersion": served, "responseId": rid})
    last_parts = fc_parts
    chunks.append({"candidates": [cand(last_parts, finish)], "usageMetadata": usage, "modelVersion": served,
                   "responseId": rid})
    if sse_mode:
        units = [sse(None, c).replace(b"\n\n", b"\r\n\r\n") for c in chunks]
        ctype = "text/event-stream"
    else:
        units = [(b"[" if i == 0 else b",\r\n") + orjson.dumps(c, option=orjson.OPT_INDENT_2)
                 for i, c in enumerate(chunks)]
        units[-1] += b"\n]"
        ctype = "application/json; charset=UTF-8"
    return Rendered("POST", path, host, plan.headers, body, 200, [("Content-Type", ctype)] + hs[1:],
                    list(zip(timeline(len(units), plan, rng), units)), True, truth)
