"""Gemini API: POST /v1(beta)/models/{model}:generateContent and :streamGenerateContent (?alt=sse or JSON array)."""
from __future__ import annotations

import json

from .common import Content, Ids, Plan, ReqInfo, http_date, jdump, norm_usage, served_model, split_text

ERRORS = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "API key not valid. Please pass a valid API key."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
                      "https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
}
REASONS = {400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error",
           503: "Service Unavailable"}


def reqinfo(body: dict, body_len: int, model: str, stream: bool) -> ReqInfo:
    info = ReqInfo(api="gemini", model=model, stream=stream, body_len=body_len)
    contents = body.get("contents") or []
    for ct in reversed(contents):
        if ct.get("role", "user") == "user":
            t = "\n".join(p.get("text", "") for p in ct.get("parts") or [] if "text" in p and not p.get("thought"))
            if t.strip():
                info.user_text = t
                break
    for ct in contents:
        for p in ct.get("parts") or []:
            fr = p.get("functionResponse") or p.get("function_response")
            if fr:
                info.tool_results.append(jdump(fr.get("response")))
    if contents:
        info.last_is_tool_result = any("functionResponse" in p or "function_response" in p
                                       for p in contents[-1].get("parts") or [])
    for t in body.get("tools") or []:
        for fd in t.get("functionDeclarations") or t.get("function_declarations") or []:
            schema = fd.get("parameters") or fd.get("parametersJsonSchema") or fd.get("parameters_json_schema")
            info.tools.append((fd["name"], schema))
    return info


def headers(ids: Ids, stream: bool, status: int = 200) -> list:
    return [("Content-Type", "text/event-stream" if stream else "application/json; charset=UTF-8"),
            ("Vary", "Origin"), ("Vary", "X-Origin"), ("Vary", "Referer"),
            ("Date", http_date()),
            ("Server", "scaffolding on HTTPServer2"),
            ("X-XSS-Protection", "0"),
            ("X-Frame-Options", "SAMEORIGIN"),
            ("X-Content-Type-Options", "nosniff"),
            ("Server-Timing", f"gfet4t7; dur={200 + int(ids.hex('dur', 4), 16) % 900}"),
            ("Alt-Svc", 'h3=":443"; ma=2592000,h3-29=":443"; ma=2592000')]


def error_plan(info: ReqInfo, ids: Ids, status: int, sse: bool = False) -> Plan:
    if status == 529:
        status = 503
    st, msg = ERRORS.get(status, ERRORS[500])
    e = {"code": status, "message": msg, "status": st}
    if status == 429:
        e["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]
    data = (json.dumps({"error": e}, indent=2) + "\n").encode()
    return Plan(status=status, reason=REASONS.get(status, "Error"), headers=headers(ids, False, status),
                api="gemini", info=info, chunked=True,
                chunks=[(data, [("error", {"source": "http", "type": st, "message": msg})])])


def _usage(c: Content, cand_tokens: int, thoughts: int, final: bool) -> tuple[dict, dict]:
    u = {"promptTokenCount": c.input_total}
    if cand_tokens or final:
        u["candidatesTokenCount"] = cand_tokens
    u["totalTokenCount"] = c.input_total + cand_tokens + thoughts
    if c.cache_read:
        u["cachedContentTokenCount"] = c.cache_read
    u["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": c.input_total}]
    if c.cache_read:
        u["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": c.cache_read}]
    if thoughts:
        u["thoughtsTokenCount"] = thoughts
    out = cand_tokens + thoughts if "candidatesTokenCount" in u or thoughts else None
    n = norm_usage("inclusive", c.input_total, c.cache_read or None, 0, out, thoughts or None)
    return u, n


FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool": "STOP", "refusal": "SAFETY"}
SAFETY_RATINGS = [{"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
                  {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
                  {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                  {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"}]


def render(info: ReqInfo, c: Content, ids: Ids, scen: dict, sse: bool) -> Plan:
    model = served_model(info.model, scen, {})
    rid = ids.b64("rid", 16).replace("+", "").replace("/", "").rstrip("=")[:22]
    plan = Plan(status=200, reason="OK", headers=headers(ids, info.stream and sse), api="gemini", info=info,
                stream=info.stream, chunked=True)
    thoughts = c.reasoning_tokens
    cand_total = c.output_tokens - thoughts
    parts = []
    if c.reasoning:
        parts.append({"text": c.reasoning, "thought": True})
    if c.text:
        parts.append({"text": c.text})
    sig = ids.b64("tsig", 72)
    for k, tc in enumerate(c.tool_calls):
        p = {"functionCall": {"name": tc["name"], "args": tc["arguments"]}}
        if k == 0:
            p["thoughtSignature"] = sig
        parts.append(p)
    tool_ops = []
    for k, tc in enumerate(c.tool_calls):
        tool_ops += [("tool", k, None, tc["name"]), ("args", k, jdump(tc["arguments"]))]

    if c.kind == "blocked":
        u, n = _usage(c, 0, 0, True)
        u.pop("candidatesTokenCount", None)
        n = dict(n, output_tokens=None)  # no candidates, no count: absent stays null (§2.3)
        obj = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": SAFETY_RATINGS},
               "usageMetadata": u, "modelVersion": model, "responseId": rid}
        objs = [(obj, [("model", model), ("id", rid), ("usage", u, n), ("finish", "blocked:SAFETY"), ("complete",)])]
    elif not info.stream:
        u, n = _usage(c, cand_total, thoughts, True)
        cand = {"content": {"parts": parts, "role": "model"}, "finishReason": FINISH[c.kind], "index": 0}
        if c.kind == "refusal":
            cand = {"finishReason": "SAFETY", "index": 0, "safetyRatings": SAFETY_RATINGS}
        obj = {"candidates": [cand], "usageMetadata": u, "modelVersion": model, "responseId": rid}
        ops = [("model", model), ("id", rid), ("usage", u, n), ("finish", FINISH[c.kind]), ("complete",)]
        if c.reasoning:
            ops.append(("reasoning", c.reasoning))
        if c.text:
            ops.append(("text", c.text))
        objs = [(obj, ops + tool_ops)]
    else:
        objs = []
        out_so_far = 0
        chunks_parts = []   # (part, ops, tokens)
        for piece in split_text(c.reasoning, 6):
            chunks_parts.append(({"text": piece, "thought": True}, [("reasoning", piece)], 0))
        for piece in split_text(c.text, 4):
            chunks_parts.append(({"text": piece}, [("text", piece)], 0))
        if c.tool_calls:
            fc_parts = [p for p in parts if "functionCall" in p]
            chunks_parts.append((fc_parts, tool_ops, 0))
        if not chunks_parts:
            chunks_parts.append(({"text": ""}, [], 0))
        midstream = "midstream_error" in scen or "failed" in scen
        for k, (p, ops, _) in enumerate(chunks_parts):
            last = k == len(chunks_parts) - 1
            frac_c = cand_total if last else (cand_total * (k + 1)) // (len(chunks_parts) + 1)
            u, n = _usage(c, frac_c, thoughts, last)
            cand = {"content": {"parts": p if isinstance(p, list) else [p], "role": "model"}, "index": 0}
            o = {"candidates": [cand], "usageMetadata": u, "modelVersion": model, "responseId": rid}
            oops = list(ops) + [("usage", u, n)]
            if k == 0:
                oops += [("model", model), ("id", rid)]
            if last:
                cand["finishReason"] = FINISH[c.kind]
                if c.kind == "refusal":
                    cand["safetyRatings"] = SAFETY_RATINGS
                oops += [("finish", FINISH[c.kind]), ("complete",)]
            objs.append((o, oops))
            if midstream and k == len(chunks_parts) // 2 and not last:
                st, msg = ERRORS[500]
                objs.append(({"error": {"code": 500, "message": msg, "status": st}},
                              [("error", {"source": "stream", "type": st, "message": msg})]))
                break
        if c.kind == "refusal":
            # safety stop: a final chunk with no content
            u, n = _usage(c, 0, 0, True)
            objs = [({"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": SAFETY_RATINGS}],
                      "usageMetadata": u, "modelVersion": model, "responseId": rid},
                     [("model", model), ("id", rid), ("usage", u, n), ("finish", "SAFETY"), ("complete",)])]
    plan.extra_truth = {"gemini_framing": ("sse" if sse else "json-array") if info.stream else "json"}
    if not info.stream:
        o, ops = objs[0]
        plan.chunks = [((json.dumps(o, indent=2, ensure_ascii=False) + "\n").encode(), ops)]
    elif sse:
        plan.chunks = [(f"data: {jdump(o, ascii=False)}\r\n\r\n".encode(), ops) for o, ops in objs]
    else:
        out = []
        for k, (o, ops) in enumerate(objs):
            prefix = "[" if k == 0 else ",\r\n"
            out.append(((prefix + json.dumps(o, indent=2, ensure_ascii=False) + "\n").encode(), ops))
        out.append((b"]", []))
        plan.chunks = out
    return plan
