"""OpenAI Responses API (``/v1/responses``, Codex ``/backend-api/codex/responses``), wire-apis.md §5."""
from __future__ import annotations

import random
from typing import Any

import orjson

from ..httpwire import sse
from .common import CallPlan, Rendered, args_json, base_truth, rand_token, split_str, split_text, timeline

_CREATED = 1767225600


def _input(plan: CallPlan) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in plan.messages:
        if m.role == "tool":
            out.append({"type": "function_call_output", "call_id": m.tool_call_id, "output": m.text})
        elif m.role == "assistant":
            if m.text:
                out.append({"type": "message", "role": "assistant",
                            "content": [{"type": "output_text", "text": m.text}]})
            for c in m.tool_calls:
                out.append({"type": "function_call", "name": c.name, "arguments": args_json(c.args),
                            "call_id": c.id})
        else:
            out.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": m.text}]})
    return out


def request_body(plan: CallPlan) -> dict[str, Any]:
    body: dict[str, Any] = {"model": plan.model}
    if plan.system:
        body["instructions"] = plan.system
    body["input"] = _input(plan)
    if plan.tools:
        body["tools"] = [{"type": "function", "name": t["name"], "description": t["description"],
                          "strict": False, "parameters": t["parameters"]} for t in plan.tools]
        body["tool_choice"] = "auto"
        body["parallel_tool_calls"] = True
    body["reasoning"] = {"effort": "medium", "summary": "auto"} if plan.thinking else None
    body["store"] = False
    body["stream"] = plan.stream
    body["include"] = ["reasoning.encrypted_content"] if plan.thinking else []
    if "prompt_cache_key" in plan.extra:
        body["prompt_cache_key"] = plan.extra["prompt_cache_key"]
    if "client_metadata" in plan.extra:
        body["client_metadata"] = plan.extra["client_metadata"]
    return body


def render(plan: CallPlan, rng: random.Random) -> Rendered:
    served = plan.served_model or plan.model
    path = plan.path or "/v1/responses"
    host = plan.host or "api.openai.com"
    body = request_body(plan)
    hs = [("Content-Type", "application/json"), ("x-request-id", "req_" + rand_token(rng, 32, "0123456789abcdef")),
          ("openai-processing-ms", str(rng.randint(80, 4000))), ("server", "cloudflare")]
    if plan.outcome in ("http_429", "http_500"):
        status = 429 if plan.outcome == "http_429" else 500
        err = {"error": {"message": "Rate limit reached" if status == 429 else "An error occurred while processing "
                         "your request.", "type": "rate_limit_exceeded" if status == 429 else "server_error",
                         "param": None, "code": "rate_limit_exceeded" if status == 429 else "server_error"}}
        if status == 429:
            hs.append(("retry-after", str(rng.randint(1, 30))))
        truth = base_truth(plan, "openai-responses", status, None, plan.model, [], {})
        return Rendered("POST", path, host, plan.headers, body, status, hs,
                        [(plan.ttfb_s, orjson.dumps(err))], False, truth)
    u = plan.usage
    rid = "resp_" + rand_token(rng, 48, "0123456789abcdef")
    usage = {"input_tokens": u.input, "input_tokens_details": {"cached_tokens": u.cache_read},
             "output_tokens": u.output, "output_tokens_details": {"reasoning_tokens": u.reasoning},
             "total_tokens": u.input + u.output}
    tokens = {"input_tokens": u.input, "output_tokens": u.output, "cache_read_tokens": u.cache_read,
              "cache_creation_tokens": None, "reasoning_tokens": u.reasoning}
    items: list[dict[str, Any]] = []
    if plan.thinking:
        items.append({"id": "rs_" + rand_token(rng, 40, "0123456789abcdef"), "type": "reasoning",
                      "summary": [{"type": "summary_text", "text": plan.thinking}],
                      "encrypted_content": "gAAAAA" + rand_token(rng, 120)})
    if plan.text:
        part = ({"type": "refusal", "refusal": plan.text} if plan.outcome == "refusal"
                else {"type": "output_text", "text": plan.text, "annotations": [], "logprobs": []})
        items.append({"id": "msg_" + rand_token(rng, 40, "0123456789abcdef"), "type": "message",
                      "status": "completed", "role": "assistant", "content": [part]})
    for c in plan.tool_calls:
        items.append({"id": "fc_" + rand_token(rng, 40, "0123456789abcdef"), "type": "function_call",
                      "status": "completed", "arguments": args_json(c.args), "call_id": c.id, "name": c.name})
    status, raw = "completed", "completed"
    incomplete = None
    error = None
    if plan.outcome == "length":
        status, raw, incomplete = "incomplete", "incomplete:max_output_tokens", {"reason": "max_output_tokens"}
    elif plan.outcome == "stream_error":
        status, raw = "failed", "failed:server_error"
        error = {"code": "server_error", "message": "An error occurred while processing your request."}

    def resp_obj(st: str, output: list[dict[str, Any]], usage_: Any) -> dict[str, Any]:
        return {"id": rid, "object": "response", "created_at": _CREATED, "status": st, "background": False,
                "error": error if st == "failed" else None, "incomplete_details": incomplete,
                "instructions": plan.system, "max_output_tokens": None, "model": served, "output": output,
                "parallel_tool_calls": True, "previous_response_id": None, "store": False,
                "tool_choice": "auto", "usage": usage_}
    if not plan.stream:
        truth = base_truth(plan, "openai-responses", 200, raw, served, plan.tool_calls, tokens)
        return Rendered("POST", path, host, plan.headers, body, 200, hs,
                        [(plan.ttfb_s + plan.tpot_s * u.output * 0.2,
                          orjson.dumps(resp_obj(status, items, usage)))], False, truth)
    seq = 0
    ev: list[bytes] = []

    def emit(etype: str, **kw: Any) -> None:
        nonlocal seq
        ev.append(sse(etype, {"type": etype, "sequence_number": seq, **kw}))
        seq += 1

    emit("response.created", response=resp_obj("in_progress", [], None))
    emit("response.in_progress", response=resp_obj("in_progress", [], None))
    done_items: list[dict[str, Any]] = []
    for oi, item in enumerate(items):
        if plan.outcome == "stream_error" and item["type"] != "reasoning":
            text = item["content"][0].get("text", "")
            added = dict(item, status="in_progress", content=[])
            emit("response.output_item.added", output_index=oi, item=added)
            emit("response.content_part.added", item_id=item["id"], output_index=oi, content_index=0,
                 part={"type": "output_text", "text": "", "annotations": []})
            for p in split_text(text, rng)[:3]:
                emit("response.output_text.delta", item_id=item["id"], output_index=oi, content_index=0,
                     delta=p, logprobs=[])
            break
        _emit_item(emit, oi, item, rng)
        done_items.append(item)
    if plan.outcome == "stream_error":
        emit("response.failed", response=resp_obj("failed", done_items, None))
        tokens = {}
    else:
        final = "response.incomplete" if status == "incomplete" else "response.completed"
        emit(final, response=resp_obj(status, items, usage))
    truth = base_truth(plan, "openai-responses", 200, raw, served,
                       plan.tool_calls if plan.outcome != "stream_error" else [], tokens)
    return Rendered("POST", path, host, plan.headers, body, 200,
                    [("Content-Type", "text/event-stream; charset=utf-8")] + hs[1:],
                    list(zip(timeline(len(ev), plan, rng), ev)), True, truth)


def _emit_item(emit: Any, oi: int, item: dict[str, Any], rng: random.Random) -> None:
    t = item["type"]
    if t == "reasoning":
        emit("response.output_item.added", output_index=oi,
             item={"id": item["id"], "type": "reasoning", "summary": []})
        emit("response.reasoning_summary_part.added", item_id=item["id"], output_index=oi, summary_index=0,
             part={"type": "summary_text", "text": ""})
        for p in split_text(item["summary"][0]["text"], rng):
            emit("response.reasoning_summary_text.delta", item_id=item["id"], output_index=oi,
                 summary_index=0, delta=p)
        emit("response.reasoning_summary_text.done", item_id=item["id"], output_index=oi, summary_index=0,
             text=item["summary"][0]["text"])
    elif t == "message":
        part = item["content"][0]
        emit("response.output_item.added", output_index=oi, item=dict(item, status="in_progress", content=[]))
        empty = {"type": part["type"], part["type"] if part["type"] == "refusal" else "text": ""}
        emit("response.content_part.added", item_id=item["id"], output_index=oi, content_index=0, part=empty)
        if part["type"] == "refusal":
            for p in split_text(part["refusal"], rng):
                emit("response.refusal.delta", item_id=item["id"], output_index=oi, content_index=0, delta=p)
            emit("response.refusal.done", item_id=item["id"], output_index=oi, content_index=0,
                 refusal=part["refusal"])
        else:
            for p in split_text(part["text"], rng):
                emit("response.output_text.delta", item_id=item["id"], output_index=oi, content_index=0,
                     delta=p, logprobs=[])
            emit("response.output_text.done", item_id=item["id"], output_index=oi, content_index=0,
                 text=part["text"], logprobs=[])
        emit("response.content_part.done", item_id=item["id"], output_index=oi, content_index=0, part=part)
    else:
        emit("response.output_item.added", output_index=oi, item=dict(item, status="in_progress", arguments=""))
        for p in split_str(item["arguments"], rng):
            emit("response.function_call_arguments.delta", item_id=item["id"], output_index=oi, delta=p)
        emit("response.function_call_arguments.done", item_id=item["id"], output_index=oi,
             arguments=item["arguments"])
    emit("response.output_item.done", output_index=oi, item=item)
