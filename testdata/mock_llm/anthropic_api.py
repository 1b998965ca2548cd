"""Anthropic Messages API: POST /v1/messages (JSON and SSE)."""
from __future__ import annotations

import json
import time

from .common import (Content, Ids, Plan, ReqInfo, http_date, iso_z, jdump, norm_usage, served_model, split_n,
                     split_text)

MODELS = {
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-opus-4-5": "claude-opus-4-5-20251101",
}

ERRORS = {
    400: ("invalid_request_error", "messages: text content blocks must be non-empty"),
    401: ("authentication_error", "invalid x-api-key"),
    429: ("rate_limit_error", "This request would exceed the rate limit for your organization "
                              "(00000000-0000-0000-0000-000000000000) of 50,000 input tokens per minute. "
                              "For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the "
                              "response headers for current usage. Please reduce the prompt length or the maximum "
                              "tokens requested, or try again later. You may also contact sales at "
                              "https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def _text(content) -> str:
    if isinstance(content, str):
        return content
    out = []
    for b in content or []:
        if isinstance(b, dict) and b.get("type") == "text":
            out.append(b.get("text") or "")
    return "\n".join(out)


def _tool_result_text(block) -> str:
    c = block.get("content")
    if isinstance(c, str):
        return c
    return "\n".join(x.get("text", "") for x in c or [] if isinstance(x, dict))


def reqinfo(body: dict, body_len: int) -> ReqInfo:
    msgs = body.get("messages") or []
    info = ReqInfo(api="anthropic", model=str(body.get("model") or "unknown"), stream=bool(body.get("stream")),
                   body_len=body_len)
    for m in reversed(msgs):
        if m.get("role") == "user":
            t = _text(m.get("content"))
            if t.strip():
                info.user_text = t
                break
    for m in msgs:
        if m.get("role") == "user" and isinstance(m.get("content"), list):
            for b in m["content"]:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    info.tool_results.append(_tool_result_text(b))
    if msgs and msgs[-1].get("role") == "user" and isinstance(msgs[-1].get("content"), list):
        info.last_is_tool_result = any(isinstance(b, dict) and b.get("type") == "tool_result"
                                       for b in msgs[-1]["content"])
    for t in body.get("tools") or []:
        if isinstance(t, dict) and t.get("name") and t.get("type") in (None, "custom"):
            info.tools.append((t["name"], t.get("input_schema")))
    return info


def headers(ids: Ids, status: int, stream: bool, req_id: str) -> list:
    now = time.time()
    reset = iso_z(now + 1)
    h = [("Date", http_date(now)),
         ("Content-Type", "text/event-stream; charset=utf-8" if stream else "application/json"),
         ("Connection", "keep-alive")]
    if stream:
        h.append(("Cache-Control", "no-cache"))
    if status < 500:
        h += [("anthropic-ratelimit-input-tokens-limit", "2000000"),
              ("anthropic-ratelimit-input-tokens-remaining", "2000000" if status != 429 else "0"),
              ("anthropic-ratelimit-input-tokens-reset", reset),
              ("anthropic-ratelimit-output-tokens-limit", "400000"),
              ("anthropic-ratelimit-output-tokens-remaining", "400000"),
              ("anthropic-ratelimit-output-tokens-reset", reset),
              ("anthropic-ratelimit-requests-limit", "4000"),
              ("anthropic-ratelimit-requests-remaining", "3999" if status != 429 else "0"),
              ("anthropic-ratelimit-requests-reset", reset),
              ("anthropic-ratelimit-tokens-limit", "2400000"),
              ("anthropic-ratelimit-tokens-remaining", "2400000" if status != 429 else "0"),
              ("anthropic-ratelimit-tokens-reset", reset)]
    if status == 429:
        h.append(("retry-after", "1"))
    if status in (429, 500, 529):
        h.append(("x-should-retry", "true"))
    h += [("request-id", req_id),
          ("strict-transport-security", "max-age=31536000; includeSubDomains; preload"),
          ("anthropic-organization-id", "00000000-0000-4000-8000-000000000000"),
          ("via", "1.1 google"),
          ("cf-cache-status", "DYNAMIC"),
          ("X-Robots-Tag", "none"),
          ("Server", "cloudflare"),
          ("CF-RAY", ids.hex("cfray", 16) + "-SJC")]
    return h


def error_plan(info: ReqInfo, ids: Ids, status: int) -> Plan:
    etype, msg = ERRORS.get(status, ERRORS[500])
    req_id = "req_011C" + ids.b62("req", 20)
    body = {"type": "error", "error": {"type": etype, "message": msg}, "request_id": req_id}
    data = jdump(body).encode()
    err = {"source": "http", "type": etype, "message": msg}
    reason = {400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error",
              529: ""}.get(status, "Error")
    return Plan(status=status, reason=reason, headers=headers(ids, status, False, req_id), api="anthropic",
                info=info, chunks=[(data, [("error", err)])], extra_truth={"request_id": req_id})


def _usage(c: Content, output_tokens: int, with_cc: bool = True) -> tuple[dict, dict]:
    inp = c.input_total - c.cache_read - c.cache_creation
    u = {"input_tokens": inp, "cache_creation_input_tokens": c.cache_creation,
         "cache_read_input_tokens": c.cache_read}
    if with_cc:
        u["cache_creation"] = {"ephemeral_5m_input_tokens": c.cache_creation, "ephemeral_1h_input_tokens": 0}
    u["output_tokens"] = output_tokens
    if with_cc:
        u["service_tier"] = "standard"
    n = norm_usage("additive", inp, c.cache_read, c.cache_creation, output_tokens, None,
                   cache_1h=0)
    return u, n


def _blocks(c: Content, ids: Ids) -> list:
    blocks = []
    if c.reasoning:
        blocks.append({"type": "thinking", "thinking": c.reasoning, "signature": "Eu" + ids.b64("sig", 96)})
    text = c.text or c.refusal
    if text:
        blocks.append({"type": "text", "text": text})
    for tc in c.tool_calls:
        blocks.append({"type": "tool_use", "id": "toolu_01" + ids.b62("toolu", 22), "name": tc["name"],
                       "input": tc["arguments"]})
    return blocks


STOP = {"stop": "end_turn", "length": "max_tokens", "tool": "tool_use", "refusal": "refusal", "blocked": "refusal"}


def render(info: ReqInfo, c: Content, ids: Ids, scen: dict) -> Plan:
    model = served_model(info.model, scen, MODELS)
    msg_id = "msg_01" + ids.b62("msg", 22)
    req_id = "req_011C" + ids.b62("req", 20)
    blocks = _blocks(c, ids)
    stop = STOP[c.kind]
    plan = Plan(status=200, reason="OK", headers=headers(ids, 200, info.stream, req_id), api="anthropic",
                info=info, stream=info.stream, usage_style="additive",
                extra_truth={"request_id": req_id})
    if not info.stream:
        u, n = _usage(c, c.output_tokens)
        body = {"model": model, "id": msg_id, "type": "message", "role": "assistant", "content": blocks,
                "stop_reason": stop, "stop_sequence": None, "usage": u}
        ops = [("model", model), ("id", msg_id), ("usage", u, n), ("finish", stop), ("complete",)]
        for i, b in enumerate(blocks):
            if b["type"] == "thinking":
                ops.append(("reasoning", b["thinking"]))
            elif b["type"] == "text":
                ops.append(("text", b["text"]))
            else:
                ops.append(("tool", i, b["id"], b["name"]))
                ops.append(("args", i, jdump(b["input"])))
        plan.chunks = [(jdump(body).encode(), ops)]
        return plan

    ev = plan.chunks

    def add(name, data, ops=()):
        ev.append((f"event: {name}\ndata: {data if isinstance(data, str) else jdump(data, ascii=False)}\n\n"
                   .encode(), list(ops)))

    u0, n0 = _usage(c, 1)
    start_msg = {"model": model, "id": msg_id, "type": "message", "role": "assistant", "content": [],
                 "stop_reason": None, "stop_sequence": None, "usage": u0}
    add("message_start", {"type": "message_start", "message": start_msg},
        [("model", model), ("id", msg_id), ("usage", u0, n0)])
    midstream = "midstream_error" in scen or "failed" in scen
    for i, b in enumerate(blocks):
        if b["type"] == "thinking":
            add("content_block_start", {"type": "content_block_start", "index": i,
                                        "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
            if i == 0:
                add("ping", '{"type": "ping"}')
            for piece in split_text(b["thinking"], 3):
                add("content_block_delta", {"type": "content_block_delta", "index": i,
                                            "delta": {"type": "thinking_delta", "thinking": piece}},
                    [("reasoning", piece)])
            add("content_block_delta", {"type": "content_block_delta", "index": i,
                                        "delta": {"type": "signature_delta", "signature": b["signature"]}})
        elif b["type"] == "text":
            add("content_block_start", {"type": "content_block_start", "index": i,
                                        "content_block": {"type": "text", "text": ""}})
            if i == 0:
                add("ping", '{"type": "ping"}')
            pieces = split_text(b["text"], 2)
            for k, piece in enumerate(pieces):
                add("content_block_delta", {"type": "content_block_delta", "index": i,
                                            "delta": {"type": "text_delta", "text": piece}}, [("text", piece)])
                if midstream and k == len(pieces) // 2:
                    err = {"type": "overloaded_error", "message": "Overloaded"}
                    add("error", {"type": "error", "error": err, "request_id": req_id},
                        [("error", {"source": "stream", **err})])
                    return plan
        else:
            add("content_block_start", {"type": "content_block_start", "index": i,
                                        "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"],
                                                          "input": {}}},
                [("tool", i, b["id"], b["name"])])
            if i == 0:
                add("ping", '{"type": "ping"}')
            args = jdump(b["input"], ascii=False)
            for piece in [""] + split_n(args, 3):
                add("content_block_delta", {"type": "content_block_delta", "index": i,
                                            "delta": {"type": "input_json_delta", "partial_json": piece}},
                    [("args", i, piece)])
        add("content_block_stop", {"type": "content_block_stop", "index": i})
    u1, n1 = _usage(c, c.output_tokens, with_cc=False)
    add("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                          "usage": u1}, [("usage", u1, n1), ("finish", stop)])
    add("message_stop", {"type": "message_stop"}, [("complete",)])
    return plan
