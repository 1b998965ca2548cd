"""OpenAI APIs: POST /v1/chat/completions, /v1/responses, /v1/completions (JSON and SSE)."""
from __future__ import annotations

import json
import time

from .common import Content, Ids, Plan, ReqInfo, http_date, jdump, norm_usage, served_model, split_n, split_text

MODELS = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "o4-mini": "o4-mini-2025-04-16",
    "gpt-3.5-turbo-instruct": "gpt-3.5-turbo-instruct",
}

ERRORS = {
    400: {"message": "Invalid value for 'messages': expected an array with at least one message.",
          "type": "invalid_request_error", "param": "messages", "code": None},
    401: {"message": "Incorrect API key provided: sk-proj-********************FAKE. You can find your API key at "
                     "https://platform.openai.com/account/api-keys.",
          "type": "invalid_request_error", "param": None, "code": "invalid_api_key"},
    429: {"message": "Rate limit reached for {model} in organization org-MOCKORG000000000000000000 on requests per "
                     "min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms. Visit "
                     "https://platform.openai.com/account/rate-limits to learn more.",
          "type": "requests", "param": None, "code": "rate_limit_exceeded"},
    500: {"message": "The server had an error while processing your request. Sorry about that!",
          "type": "server_error", "param": None, "code": None},
    503: {"message": "The engine is currently overloaded, please try again later.",
          "type": "server_error", "param": None, "code": None},
}
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}


def _text(content) -> str:
    if isinstance(content, str):
        return content
    out = []
    for p in content or []:
        if isinstance(p, dict) and p.get("type") in ("text", "input_text", "output_text"):
            out.append(p.get("text") or "")
    return "\n".join(out)


def reqinfo_chat(body: dict, body_len: int) -> ReqInfo:
    msgs = body.get("messages") or []
    info = ReqInfo(api="openai-chat", model=str(body.get("model") or "unknown"), stream=bool(body.get("stream")),
                   body_len=body_len,
                   include_usage=bool((body.get("stream_options") or {}).get("include_usage")))
    for m in reversed(msgs):
        if m.get("role") == "user" and _text(m.get("content")).strip():
            info.user_text = _text(m.get("content"))
            break
    info.tool_results = [_text(m.get("content")) for m in msgs if m.get("role") in ("tool", "function")]
    info.last_is_tool_result = bool(msgs) and msgs[-1].get("role") in ("tool", "function")
    for t in body.get("tools") or []:
        f = t.get("function") or {}
        if f.get("name"):
            info.tools.append((f["name"], f.get("parameters")))
    return info


def reqinfo_responses(body: dict, body_len: int) -> ReqInfo:
    info = ReqInfo(api="openai-responses", model=str(body.get("model") or "unknown"),
                   stream=bool(body.get("stream")), body_len=body_len)
    inp = body.get("input")
    items = [{"type": "message", "role": "user", "content": inp}] if isinstance(inp, str) else (inp or [])
    for it in reversed(items):
        if (it.get("type") in (None, "message")) and it.get("role") == "user" and _text(it.get("content")).strip():
            info.user_text = _text(it.get("content"))
            break
    for it in items:
        if it.get("type") in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
            out = it.get("output")
            info.tool_results.append(out if isinstance(out, str) else json.dumps(out))
    info.last_is_tool_result = bool(items) and str(items[-1].get("type", "")).endswith("_output")
    for t in body.get("tools") or []:
        if t.get("type") == "function" and t.get("name"):
            info.tools.append((t["name"], t.get("parameters")))
    info.extra["include"] = body.get("include") or []
    return info


def reqinfo_completions(body: dict, body_len: int) -> ReqInfo:
    p = body.get("prompt")
    text = p if isinstance(p, str) else (" ".join(x for x in p if isinstance(x, str)) if isinstance(p, list) else "")
    return ReqInfo(api="openai-completions", model=str(body.get("model") or "unknown"),
                   stream=bool(body.get("stream")), body_len=body_len, user_text=text,
                   include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
                   extra={"no_tools": True})


def headers(ids: Ids, status: int, stream: bool, req_id: str, model: str) -> list:
    h = [("Date", http_date()),
         ("Content-Type", "text/event-stream; charset=utf-8" if stream else "application/json"),
         ("Connection", "keep-alive"),
         ("access-control-expose-headers", "X-Request-ID"),
         ("openai-organization", "user-mockorg0000000000000000"),
         ("openai-processing-ms", str(150 + int(ids.hex("ms", 4), 16) % 400)),
         ("openai-project", "proj_MockProject000000000000"),
         ("openai-version", "2020-10-01"),
         ("x-envoy-upstream-service-time", str(140 + int(ids.hex("env", 4), 16) % 400)),
         ("x-ratelimit-limit-requests", "10000"),
         ("x-ratelimit-limit-tokens", "30000000"),
         ("x-ratelimit-remaining-requests", "9999" if status != 429 else "0"),
         ("x-ratelimit-remaining-tokens", "29999950" if status != 429 else "0"),
         ("x-ratelimit-reset-requests", "6ms" if status != 429 else "1s"),
         ("x-ratelimit-reset-tokens", "0s"),
         ("x-request-id", req_id)]
    if status == 429:
        h += [("retry-after", "1"), ("retry-after-ms", "1000")]
    h += [("strict-transport-security", "max-age=31536000; includeSubDomains; preload"),
          ("cf-cache-status", "DYNAMIC"),
          ("set-cookie", "__cf_bm=" + ids.b62("cfbm", 43) + "-1700000000-1.0.1.1-" + ids.b62("cfbm2", 40)
           + "; path=/; expires=Thu, 01-Jan-2026 00:30:00 GMT; domain=.api.openai.com; HttpOnly; Secure; SameSite=None"),
          ("X-Content-Type-Options", "nosniff"),
          ("Server", "cloudflare"),
          ("CF-RAY", ids.hex("cfray", 16) + "-SJC"),
          ("alt-svc", 'h3=":443"; ma=86400')]
    return h


def error_plan(info: ReqInfo, ids: Ids, status: int) -> Plan:
    if status == 529:
        status = 503
    e = dict(ERRORS.get(status, ERRORS[500]))
    e["message"] = e["message"].replace("{model}", info.model)
    req_id = "req_" + ids.hex("req", 32)
    data = (json.dumps({"error": e}, indent=4) + "\n").encode()
    err = {"source": "http", "type": e["type"], "message": e["message"]}  # §2.5: error.type, not code
    return Plan(status=status, reason=REASONS.get(status, "Error"), headers=headers(ids, status, False, req_id,
                                                                                    info.model),
                api=info.api, info=info, chunks=[(data, [("error", err)])], extra_truth={"request_id": req_id})


# ------------------------------------------------------------------------------------------ chat completions

def _chat_usage(c: Content) -> tuple[dict, dict]:
    u = {"prompt_tokens": c.input_total, "completion_tokens": c.output_tokens,
         "total_tokens": c.input_total + c.output_tokens,
         "prompt_tokens_details": {"cached_tokens": c.cache_read, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": c.reasoning_tokens, "audio_tokens": 0,
                                       "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
    return u, norm_usage("inclusive", c.input_total, c.cache_read, 0, c.output_tokens, c.reasoning_tokens)


CHAT_FINISH = {"stop": "stop", "length": "length", "tool": "tool_calls", "refusal": "stop", "blocked": "content_filter"}


def render_chat(info: ReqInfo, c: Content, ids: Ids, scen: dict) -> Plan:
    model = served_model(info.model, scen, MODELS)
    cid = "chatcmpl-" + ids.b62("chatcmpl", 29)
    req_id = "req_" + ids.hex("req", 32)
    fp = "fp_" + ids.hex("fp", 10)
    created = int(time.time())
    fr = CHAT_FINISH[c.kind]
    calls = [{"id": "call_" + ids.b62("call", 24), "type": "function",
              "function": {"name": tc["name"], "arguments": jdump(tc["arguments"])}} for tc in c.tool_calls]
    plan = Plan(status=200, reason="OK", headers=headers(ids, 200, info.stream, req_id, model), api="openai-chat",
                info=info, stream=info.stream, extra_truth={"request_id": req_id})
    u, n = _chat_usage(c)
    if not info.stream:
        msg = {"role": "assistant", "content": c.text or None, "refusal": c.refusal or None, "annotations": []}
        if c.reasoning:
            msg["reasoning_content"] = c.reasoning
        if calls:
            msg["tool_calls"] = calls
        body = {"id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": fr}],
                "usage": u, "service_tier": "default", "system_fingerprint": fp}
        ops = [("model", model), ("id", cid), ("usage", u, n), ("finish", fr), ("complete",)]
        if c.text:
            ops.append(("text", c.text))
        if c.reasoning:
            ops.append(("reasoning", c.reasoning))
        if c.refusal:
            ops.append(("refusal", c.refusal))
        for i, call in enumerate(calls):
            ops += [("tool", i, call["id"], call["function"]["name"]), ("args", i, call["function"]["arguments"])]
        plan.chunks = [((json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode(), ops)]
        return plan

    def chunk(delta, finish=None, ops=(), choices=True, usage="none"):
        d = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
             "service_tier": "default", "system_fingerprint": fp,
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else []}
        if info.include_usage:
            d["usage"] = None if usage == "none" else usage
        plan.chunks.append((f"data: {jdump(d, ascii=False)}\n\n".encode(), list(ops)))

    first = {"role": "assistant", "content": "" if not calls or c.text else None, "refusal": None}
    chunk(first, ops=[("model", model), ("id", cid)])
    midstream = "midstream_error" in scen or "failed" in scen
    for piece in split_text(c.reasoning, 3):
        chunk({"reasoning_content": piece}, ops=[("reasoning", piece)])
    pieces = split_text(c.text, 2)
    for k, piece in enumerate(pieces):
        chunk({"content": piece}, ops=[("text", piece)])
        if midstream and k == len(pieces) // 2:
            e = ERRORS[500]
            plan.chunks.append((f"data: {jdump({'error': e})}\n\n".encode(),
                                [("error", {"source": "stream", "type": e["type"], "message": e["message"]})]))
            return plan
    for piece in split_text(c.refusal, 2):
        chunk({"refusal": piece}, ops=[("refusal", piece)])
    if calls:
        arg_pieces = [split_n(call["function"]["arguments"], 3) for call in calls]
        if len(calls) > 1:
            # parallel: announce every call, then interleave the argument deltas round-robin
            for i, call in enumerate(calls):
                chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                       "function": {"name": call["function"]["name"], "arguments": ""}}]},
                      ops=[("tool", i, call["id"], call["function"]["name"])])
            for k in range(max(len(p) for p in arg_pieces)):
                for i in range(len(calls)):
                    if k < len(arg_pieces[i]):
                        chunk({"tool_calls": [{"index": i, "function": {"arguments": arg_pieces[i][k]}}]},
                              ops=[("args", i, arg_pieces[i][k])])
        else:
            call = calls[0]
            chunk({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                   "function": {"name": call["function"]["name"], "arguments": ""}}]},
                  ops=[("tool", 0, call["id"], call["function"]["name"])])
            for piece in arg_pieces[0]:
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, ops=[("args", 0, piece)])
    chunk({}, finish=fr, ops=[("finish", fr)])
    if info.include_usage:
        chunk(None, choices=False, usage=u, ops=[("usage", u, n)])
    plan.chunks.append((b"data: [DONE]\n\n", [("complete",)]))
    return plan


# ------------------------------------------------------------------------------------------ completions

def render_completions(info: ReqInfo, c: Content, ids: Ids, scen: dict) -> Plan:
    model = served_model(info.model, scen, MODELS)
    cid = "cmpl-" + ids.b62("cmpl", 29)
    req_id = "req_" + ids.hex("req", 32)
    created = int(time.time())
    fr = "length" if c.kind == "length" else "stop"
    text = c.text or c.refusal
    u = {"prompt_tokens": c.input_total, "completion_tokens": c.output_tokens,
         "total_tokens": c.input_total + c.output_tokens}
    n = norm_usage("inclusive", c.input_total, None, 0, c.output_tokens, None)  # no prompt_tokens_details
    plan = Plan(status=200, reason="OK", headers=headers(ids, 200, info.stream, req_id, model),
                api="openai-completions", info=info, stream=info.stream, extra_truth={"request_id": req_id})
    if not info.stream:
        body = {"id": cid, "object": "text_completion", "created": created, "model": model,
                "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": fr}], "usage": u}
        plan.chunks = [((json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode(),
                        [("model", model), ("id", cid), ("text", text), ("usage", u, n), ("finish", fr),
                         ("complete",)])]
        return plan

    def chunk(text_piece, finish=None, ops=(), choices=True, usage="none"):
        d = {"id": cid, "object": "text_completion", "created": created,
             "choices": [{"text": text_piece, "index": 0, "logprobs": None, "finish_reason": finish}]
             if choices else [], "model": model, "system_fingerprint": None}
        if info.include_usage:
            d["usage"] = None if usage == "none" else usage
        plan.chunks.append((f"data: {jdump(d, ascii=False)}\n\n".encode(), list(ops)))

    first = True
    for piece in split_text(text, 2):
        chunk(piece, ops=[("text", piece)] + ([("model", model), ("id", cid)] if first else []))
        first = False
    chunk("", finish=fr, ops=[("finish", fr)])
    if info.include_usage:
        chunk(None, choices=False, usage=u, ops=[("usage", u, n)])
    plan.chunks.append((b"data: [DONE]\n\n", [("complete",)]))
    return plan


# ------------------------------------------------------------------------------------------ responses

def render_responses(info: ReqInfo, c: Content, ids: Ids, scen: dict, body: dict) -> Plan:
    model = served_model(info.model, scen, MODELS)
    rid = "resp_" + ids.hex("resp", 48)
    req_id = "req_" + ids.hex("req", 32)
    created = int(time.time())
    plan = Plan(status=200, reason="OK", headers=headers(ids, 200, info.stream, req_id, model),
                api="openai-responses", info=info, stream=info.stream, extra_truth={"request_id": req_id})
    incomplete = c.kind == "length"
    failed = "failed" in scen and info.stream
    status = "incomplete" if incomplete else "completed"
    if c.kind == "refusal" and not c.refusal:
        pass
    # output items
    items = []
    if c.reasoning:
        it = {"id": "rs_" + ids.hex("rs", 48), "type": "reasoning",
              "summary": [{"type": "summary_text", "text": c.reasoning}]}
        if "reasoning.encrypted_content" in info.extra.get("include", []):
            it["encrypted_content"] = "gAAAAA" + ids.b64("enc", 120)
        items.append(it)
    if c.text or c.refusal:
        part = ({"type": "output_text", "annotations": [], "logprobs": [], "text": c.text} if c.text
                else {"type": "refusal", "refusal": c.refusal})
        items.append({"id": "msg_" + ids.hex("msg", 48), "type": "message",
                      "status": "incomplete" if incomplete else "completed", "content": [part],
                      "role": "assistant"})
    for tc in c.tool_calls:
        items.append({"id": "fc_" + ids.hex("fc", 48), "type": "function_call", "status": "completed",
                      "arguments": jdump(tc["arguments"]), "call_id": "call_" + ids.b62("call", 24),
                      "name": tc["name"]})
    u = {"input_tokens": c.input_total, "input_tokens_details": {"cached_tokens": c.cache_read},
         "output_tokens": c.output_tokens, "output_tokens_details": {"reasoning_tokens": c.reasoning_tokens},
         "total_tokens": c.input_total + c.output_tokens}
    n = norm_usage("inclusive", c.input_total, c.cache_read, 0, c.output_tokens, c.reasoning_tokens)

    def resp(status_, output, usage, error=None, incomplete_details=None):
        return {"id": rid, "object": "response", "created_at": created, "status": status_, "background": False,
                "error": error, "incomplete_details": incomplete_details,
                "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
                "max_tool_calls": None, "model": model, "output": output, "parallel_tool_calls":
                    body.get("parallel_tool_calls", True), "previous_response_id": body.get("previous_response_id"),
                "prompt_cache_key": body.get("prompt_cache_key"),
                "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"),
                              "summary": (body.get("reasoning") or {}).get("summary")},
                "safety_identifier": None, "service_tier": "default", "store": body.get("store", True),
                "temperature": 1.0, "text": {"format": {"type": "text"}, "verbosity": "medium"},
                "tool_choice": "auto", "tools": body.get("tools") or [], "top_logprobs": 0, "top_p": 1.0,
                "truncation": "disabled", "usage": usage, "user": None, "metadata": {}}

    fin_raw = "incomplete:max_output_tokens" if incomplete else "completed"
    inc_details = {"reason": "max_output_tokens"} if incomplete else None

    def item_ops(items_):
        ops = []
        for i, it in enumerate(items_):
            if it["type"] == "reasoning":
                ops.append(("reasoning", it["summary"][0]["text"]))
            elif it["type"] == "message":
                p = it["content"][0]
                ops.append(("text", p["text"]) if p["type"] == "output_text" else ("refusal", p["refusal"]))
            elif it["type"] == "function_call":
                ops += [("tool", i, it["call_id"], it["name"]), ("args", i, it["arguments"])]
        return ops

    if not info.stream:
        r = resp(status, items, u, None, inc_details)
        ops = [("model", model), ("id", rid), ("usage", u, n), ("finish", fin_raw), ("complete",)] + item_ops(items)
        plan.chunks = [((json.dumps(r, indent=2, ensure_ascii=False) + "\n").encode(), ops)]
        return plan

    seq = [0]

    def add(d, ops=()):
        d = {"type": d.pop("type"), "sequence_number": seq[0], **d}
        seq[0] += 1
        plan.chunks.append((f"event: {d['type']}\ndata: {jdump(d, ascii=False)}\n\n".encode(), list(ops)))

    add({"type": "response.created", "response": resp("in_progress", [], None)}, [("model", model), ("id", rid)])
    add({"type": "response.in_progress", "response": resp("in_progress", [], None)})
    done_items = []
    for oi, it in enumerate(items):
        if it["type"] == "reasoning":
            add({"type": "response.output_item.added", "output_index": oi,
                 "item": {"id": it["id"], "type": "reasoning", "summary": []}})
            add({"type": "response.reasoning_summary_part.added", "item_id": it["id"], "output_index": oi,
                 "summary_index": 0, "part": {"type": "summary_text", "text": ""}})
            txt = it["summary"][0]["text"]
            for piece in split_text(txt, 3):
                add({"type": "response.reasoning_summary_text.delta", "item_id": it["id"], "output_index": oi,
                     "summary_index": 0, "delta": piece}, [("reasoning", piece)])
            add({"type": "response.reasoning_summary_text.done", "item_id": it["id"], "output_index": oi,
                 "summary_index": 0, "text": txt})
            add({"type": "response.reasoning_summary_part.done", "item_id": it["id"], "output_index": oi,
                 "summary_index": 0, "part": {"type": "summary_text", "text": txt}})
        elif it["type"] == "message":
            p = it["content"][0]
            add({"type": "response.output_item.added", "output_index": oi,
                 "item": {"id": it["id"], "type": "message", "status": "in_progress", "content": [],
                          "role": "assistant"}})
            empty = ({"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
                     if p["type"] == "output_text" else {"type": "refusal", "refusal": ""})
            add({"type": "response.content_part.added", "item_id": it["id"], "output_index": oi,
                 "content_index": 0, "part": empty})
            if p["type"] == "output_text":
                pieces = split_text(p["text"], 2)
                for k, piece in enumerate(pieces):
                    add({"type": "response.output_text.delta", "item_id": it["id"], "output_index": oi,
                         "content_index": 0, "delta": piece, "logprobs": []}, [("text", piece)])
                    if "midstream_error" in scen and k == len(pieces) // 2:
                        # wire-apis.md §5 rebuild 4: an error event without a terminal event is status
                        # failed, so the raw finish is failed:<code>.
                        add({"type": "error", "code": "server_error",
                             "message": "The server had an error while processing your request. Sorry about that!",
                             "param": None},
                            [("finish", "failed:server_error"), ("error", {"source": "stream", "type": "server_error",
                                        "message": "The server had an error while processing your request. "
                                                   "Sorry about that!"})])
                        return plan
                add({"type": "response.output_text.done", "item_id": it["id"], "output_index": oi,
                     "content_index": 0, "text": p["text"], "logprobs": []})
            else:
                for piece in split_text(p["refusal"], 2):
                    add({"type": "response.refusal.delta", "item_id": it["id"], "output_index": oi,
                         "content_index": 0, "delta": piece}, [("refusal", piece)])
                add({"type": "response.refusal.done", "item_id": it["id"], "output_index": oi,
                     "content_index": 0, "refusal": p["refusal"]})
            add({"type": "response.content_part.done", "item_id": it["id"], "output_index": oi,
                 "content_index": 0, "part": p})
            if failed:
                err = {"code": "server_error",
                       "message": "The model produced invalid content. Consider modifying your prompt if you are "
                                  "seeing this error persistently."}
                add({"type": "response.failed", "response": resp("failed", done_items + [
                    dict(it, status="incomplete")], None, err)},
                    [("finish", "failed:server_error"), ("complete",),
                     ("error", {"source": "stream", "type": err["code"], "message": err["message"]})])
                return plan
        else:
            add({"type": "response.output_item.added", "output_index": oi,
                 "item": {"id": it["id"], "type": "function_call", "status": "in_progress", "arguments": "",
                          "call_id": it["call_id"], "name": it["name"]}},
                [("tool", oi, it["call_id"], it["name"])])
            for piece in split_n(it["arguments"], 3):
                add({"type": "response.function_call_arguments.delta", "item_id": it["id"], "output_index": oi,
                     "delta": piece}, [("args", oi, piece)])
            add({"type": "response.function_call_arguments.done", "item_id": it["id"], "output_index": oi,
                 "arguments": it["arguments"]})
        add({"type": "response.output_item.done", "output_index": oi, "item": it})
        done_items.append(it)
    term = "response.incomplete" if incomplete else "response.completed"
    add({"type": term, "response": resp(status, items, u, None, inc_details)},
        [("usage", u, n), ("finish", fin_raw), ("complete",)])
    return plan
