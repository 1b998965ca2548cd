"""Ollama native API: ``/api/chat`` and ``/api/generate``, NDJSON streams (wire-apis.md §8)."""
from __future__ import annotations

import random
from typing import Any

import orjson

from .common import CallPlan, Rendered, base_truth, split_text, timeline

_TS = "2026-01-01T00:00:{:02d}.{:06d}Z"


def render(plan: CallPlan, rng: random.Random) -> Rendered:
    served = plan.served_model or plan.model
    op = plan.extra.get("ollama_op", "chat")
    path = plan.path or f"/api/{op}"
    host = plan.host or "localhost:11434"
    body: dict[str, Any] = {"model": plan.model}
    if op == "chat":
        msgs: list[dict[str, Any]] = [{"role": "system", "content": plan.system}] if plan.system else []
        for m in plan.messages:
            if m.role == "tool":
                msgs.append({"role": "tool", "content": m.text, "tool_name": m.tool_name})
            elif m.role == "assistant":
                d: dict[str, Any] = {"role": "assistant", "content": m.text}
                if m.tool_calls:
                    d["tool_calls"] = [{"function": {"name": c.name, "arguments": c.args}} for c in m.tool_calls]
                msgs.append(d)
            else:
                msgs.append({"role": "user", "content": m.text})
        body["messages"] = msgs
        if plan.tools:
            body["tools"] = [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                                               "parameters": t["parameters"]}} for t in plan.tools]
    else:
        body["prompt"] = "\n".join(m.text for m in plan.messages if m.role == "user")
        if plan.system:
            body["system"] = plan.system
    if not plan.stream:
        body["stream"] = False
    elif plan.extra.get("explicit_stream"):
        body["stream"] = True
    body["options"] = {"temperature": 0.7, "num_ctx": 8192}
    if plan.outcome in ("http_429", "http_500"):
        status = 500 if plan.outcome == "http_500" else 429
        err = {"error": "model runner has unexpectedly stopped, this may be due to resource limitations"
               if status == 500 else "server busy, please try again.  maximum pending requests exceeded"}
        truth = base_truth(plan, "ollama", status, None, plan.model, [], {})
        return Rendered("POST", path, host, plan.headers, body, status,
                        [("Content-Type", "application/json; charset=utf-8")],
                        [(plan.ttfb_s, orjson.dumps(err))], False, truth)
    u = plan.usage
    done_reason = "length" if plan.outcome == "length" else "stop"
    final_counts = {"total_duration": 4_812_345_678, "load_duration": 21_345_678,
                    "prompt_eval_count": u.input, "prompt_eval_duration": 312_345_678,
                    "eval_count": u.output, "eval_duration": 4_412_345_678}
    tokens = {"input_tokens": u.input, "output_tokens": u.output, "cache_read_tokens": None,
              "cache_creation_tokens": None, "reasoning_tokens": None}
    calls = plan.tool_calls if op == "chat" else []
    tc = [{"function": {"name": c.name, "arguments": c.args}} for c in calls]
    n = [0]

    def ts() -> str:
        n[0] += 1
        return _TS.format(n[0] // 50 % 60, (n[0] * 20011) % 1_000_000)

    truth = base_truth(plan, "ollama", 200, done_reason if plan.outcome != "stream_error" else None,
                       served, calls, tokens if plan.outcome != "stream_error" else {})
    for c in truth["tool_calls"]:
        c["id"] = None
    if not plan.stream:
        if op == "chat":
            msg: dict[str, Any] = {"role": "assistant", "content": plan.text}
            if plan.thinking:
                msg["thinking"] = plan.thinking
            if tc:
                msg["tool_calls"] = tc
            obj = {"model": served, "created_at": ts(), "message": msg, "done": True, "done_reason": done_reason,
                   **final_counts}
        else:
            obj = {"model": served, "created_at": ts(), "response": plan.text, "done": True,
                   "done_reason": done_reason, "context": [1, 2, 3], **final_counts}
        return Rendered("POST", path, host, plan.headers, body, 200,
                        [("Content-Type", "application/json; charset=utf-8")],
                        [(plan.ttfb_s + plan.tpot_s * u.output * 0.2, orjson.dumps(obj))], False, truth)
    lines: list[bytes] = []

    def line(o: dict[str, Any]) -> None:
        lines.append(orjson.dumps(o) + b"\n")

    key = "message" if op == "chat" else "response"
    for field, text in (("thinking", plan.thinking), ("content", plan.text)):
        pieces = split_text(text, rng) if text else []
        if plan.outcome == "stream_error":
            pieces = pieces[: max(1, len(pieces) // 2)]
        for p in pieces:
            if op == "chat":
                line({"model": served, "created_at": ts(), key: {"role": "assistant", "content": "",
                                                                 field: p} if field == "thinking" else
                      {"role": "assistant", "content": p}, "done": False})
            else:
                line({"model": served, "created_at": ts(), "response": "" if field == "thinking" else p,
                      **({"thinking": p} if field == "thinking" else {}), "done": False})
    if plan.outcome == "stream_error":
        line({"error": "an error was encountered while running the model: unexpected EOF"})
    else:
        if tc:
            line({"model": served, "created_at": ts(), "message": {"role": "assistant", "content": "",
                                                                   "tool_calls": tc}, "done": False})
        last: dict[str, Any] = {"model": served, "created_at": ts()}
        last.update({"message": {"role": "assistant", "content": ""}} if op == "chat" else {"response": ""})
        last.update({"done": True, "done_reason": done_reason, **final_counts})
        line(last)
    return Rendered("POST", path, host, plan.headers, body, 200, [("Content-Type", "application/x-ndjson")],
                    list(zip(timeline(len(lines), plan, rng), lines)), True, truth)
