"""Ollama native API: POST /api/chat, POST /api/generate (NDJSON stream or JSON), GET /api/tags, /api/version."""
from __future__ import annotations

import json
import time

from .common import Content, Ids, Plan, ReqInfo, http_date, iso_z, jdump, norm_usage, served_model, split_text


def reqinfo_chat(body: dict, body_len: int) -> ReqInfo:
    msgs = body.get("messages") or []
    info = ReqInfo(api="ollama", model=str(body.get("model") or "unknown"), stream=body.get("stream", True) is not False,
                   body_len=body_len, extra={"op": "chat"})
    for m in reversed(msgs):
        if m.get("role") == "user" and str(m.get("content") or "").strip():
            info.user_text = str(m["content"])
            break
    info.tool_results = [str(m.get("content") or "") for m in msgs if m.get("role") == "tool"]
    info.last_is_tool_result = bool(msgs) and msgs[-1].get("role") == "tool"
    for t in body.get("tools") or []:
        f = t.get("function") or {}
        if f.get("name"):
            info.tools.append((f["name"], f.get("parameters")))
    return info


def reqinfo_generate(body: dict, body_len: int) -> ReqInfo:
    return ReqInfo(api="ollama", model=str(body.get("model") or "unknown"), stream=body.get("stream", True) is not False,
                   body_len=body_len, user_text=str(body.get("prompt") or ""), extra={"op": "generate", "no_tools": True})


def headers(stream: bool) -> list:
    return [("Content-Type", "application/x-ndjson" if stream else "application/json; charset=utf-8"),
            ("Date", http_date())]


def error_plan(info: ReqInfo, ids: Ids, status: int) -> Plan:
    msg = {400: "invalid request: messages must not be empty",
           401: "unauthorized",
           404: f'model "{info.model}" not found, try pulling it first',
           429: "server busy, please try again.  maximum pending requests exceeded",
           503: "server busy, please try again.  maximum pending requests exceeded",
           529: "server busy, please try again.  maximum pending requests exceeded",
           }.get(status, "an error was encountered while running the model: unexpected EOF")
    if status == 529:
        status = 503
    data = jdump({"error": msg}).encode()
    reason = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
              503: "Service Unavailable"}.get(status, "Internal Server Error")
    return Plan(status=status, reason=reason, headers=headers(False), api="ollama", info=info,
                chunks=[(data, [("error", {"source": "http", "type": str(status), "message": msg})])])


def render(info: ReqInfo, c: Content, ids: Ids, scen: dict) -> Plan:
    model = served_model(info.model, scen, {})
    op = info.extra["op"]
    plan = Plan(status=200, reason="OK", headers=headers(info.stream), api="ollama", info=info, stream=info.stream,
                usage_style="ollama", delay=0.02)
    t0 = time.time()
    text = c.text or c.refusal
    done_reason = "length" if c.kind == "length" else "stop"
    calls = [{"function": {"name": tc["name"], "arguments": tc["arguments"]}} for tc in c.tool_calls]
    prompt_n, eval_n = c.input_total, c.output_tokens
    stats = {"total_duration": 900_000_000 + eval_n * 21_000_000, "load_duration": 48_211_334,
             "prompt_eval_count": prompt_n, "prompt_eval_duration": prompt_n * 410_000,
             "eval_count": eval_n, "eval_duration": eval_n * 19_800_000}
    u = {k: stats[k] for k in ("prompt_eval_count", "eval_count")}
    n = norm_usage("inclusive", prompt_n, 0, 0, eval_n, None)
    tool_ops = []
    for k, tc in enumerate(c.tool_calls):
        tool_ops += [("tool", k, None, tc["name"]), ("args", k, jdump(tc["arguments"]))]

    def ts(k):
        return iso_z(t0 + 0.02 * k, 9)

    if not info.stream:
        if op == "chat":
            msg = {"role": "assistant", "content": text}
            if c.reasoning:
                msg["thinking"] = c.reasoning
            if calls:
                msg["tool_calls"] = calls
            obj = {"model": model, "created_at": ts(0), "message": msg, "done_reason": done_reason, "done": True,
                   **stats}
        else:
            obj = {"model": model, "created_at": ts(0), "response": text}
            if c.reasoning:
                obj["thinking"] = c.reasoning
            obj.update({"done": True, "done_reason": done_reason, "context": [128006, 882, 128007, 271, 13347],
                        **stats})
        ops = [("model", model), ("usage", u, n), ("finish", done_reason), ("complete",)] + tool_ops
        if text:
            ops.append(("text", text))
        if c.reasoning:
            ops.append(("reasoning", c.reasoning))
        plan.chunks = [(jdump(obj, ascii=False).encode(), ops)]
        return plan

    k = [0]

    def line(obj, ops=()):
        plan.chunks.append(((jdump(obj, ascii=False) + "\n").encode(), list(ops)))
        k[0] += 1

    def piece_obj(content=None, thinking=None, tool_calls=None):
        if op == "chat":
            msg = {"role": "assistant", "content": content or ""}
            if thinking is not None:
                msg["thinking"] = thinking
            if tool_calls:
                msg["tool_calls"] = tool_calls
            return {"model": model, "created_at": ts(k[0]), "message": msg, "done": False}
        o = {"model": model, "created_at": ts(k[0]), "response": content or ""}
        if thinking is not None:
            o["thinking"] = thinking
        o["done"] = False
        return o

    first = [("model", model)]
    for piece in split_text(c.reasoning, 2):
        line(piece_obj(thinking=piece), [("reasoning", piece)] + first)
        first = []
    pieces = split_text(text, 1)
    midstream = "midstream_error" in scen or "failed" in scen
    for j, piece in enumerate(pieces):
        line(piece_obj(content=piece), [("text", piece)] + first)
        first = []
        if midstream and j == len(pieces) // 2:
            msg = "an error was encountered while running the model: unexpected EOF"
            line({"error": msg}, [("error", {"source": "stream", "type": "error", "message": msg})])
            return plan
    if calls:
        line(piece_obj(tool_calls=calls), tool_ops + first)
    final = piece_obj()
    final["done"] = True
    if op == "chat":
        final = {"model": model, "created_at": ts(k[0]), "message": {"role": "assistant", "content": ""},
                 "done_reason": done_reason, "done": True, **stats}
    else:
        final = {"model": model, "created_at": ts(k[0]), "response": "", "done": True, "done_reason": done_reason,
                 "context": [128006, 882, 128007, 271, 13347], **stats}
    line(final, [("usage", u, n), ("finish", done_reason), ("complete",)])
    return plan


def tags_body() -> bytes:
    models = []
    for name, size, fam, params, q in [("llama3.2:latest", 2019393189, "llama", "3.2B", "Q4_K_M"),
                                       ("qwen3:8b", 5225388164, "qwen3", "8.2B", "Q4_K_M"),
                                       ("gpt-oss:20b", 13780173724, "gptoss", "20.9B", "MXFP4")]:
        models.append({"name": name, "model": name, "modified_at": "2025-09-01T10:00:00.000000000Z", "size": size,
                       "digest": __import__("hashlib").sha256(name.encode()).hexdigest(),
                       "details": {"parent_model": "", "format": "gguf", "family": fam, "families": [fam],
                                   "parameter_size": params, "quantization_level": q}})
    return jdump({"models": models}).encode()
