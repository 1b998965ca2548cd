"""Gemini ``generateContent`` / ``streamGenerateContent`` (wire-apis.md §7), on the public API, Vertex
paths and the code-assist envelope (§7.1, gemini-cli).

Streams (SSE with ``alt=sse``, else JSON-array elements) are rebuilt into one ``GenerateContentResponse``
(text parts merged per candidate, thought text apart), then read like a whole response. Gemini function
calls usually carry no id, so ids are §6.2 pseudo ids computed from the model message itself; the request
history uses the same function, so a model message resent later yields the same ids and its
``functionResponse`` parts pair with them.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from heron_core.records import Call, Exchange
from heron_core.wire.json_util import response_json
from heron_core.wire.common import (
    apply_usage,
    as_list,
    clean_text,
    content_text,
    iter_stream_json,
    make_tool_call,
    make_tool_result,
    map_finish_raw,
    pair_idless_results,
    parse_error,
    parse_json,
    result_flag_from_output,
    result_text,
    set_outcome,
    stream_error,
    tool_definition,
)
from heron_core.wire.tool_ids import gemini_call_ids

# Raw finish values that are a model-side error (§2.2 `error`); they get an error object so the call is
# not an error without a reason.
_MODEL_ERRORS = frozenset(("MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL"))
_TEXT_KEYS = frozenset(("text", "thought", "thoughtSignature"))


# --- ids shared by request history and response -------------------------------------------------------


message_call_ids = gemini_call_ids  # ``[(id, name)]`` of one model message's function calls (tool_ids.py)


# --- request -----------------------------------------------------------------------------------------


def unwrap_request(req: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The inner request and the §7.1 envelope fields (``{user_prompt_id, session_id}``), or the request
    itself and None when it is not an envelope."""
    inner = req.get("request")
    if isinstance(inner, dict) and "contents" not in req:
        return inner, {"user_prompt_id": req.get("user_prompt_id"), "session_id": inner.get("session_id")}
    return req, None


def _function_response(fr: dict[str, Any]) -> tuple[str, bool]:
    """Result text and error flag: gemini-cli sends ``{"output": text}`` or ``{"error": text}``; any
    other response object is kept as canonical JSON."""
    resp = fr.get("response")
    if isinstance(resp, dict) and len(resp) == 1:
        if isinstance(resp.get("output"), str):
            text = resp["output"]
            return text, result_flag_from_output(text)
        if resp.get("error"):
            return result_text(resp["error"]), True
    text = result_text(resp)
    return text, result_flag_from_output(text)


def _system_text(si: Any) -> str | None:
    if isinstance(si, str):
        return si or None
    if isinstance(si, dict):
        return content_text(si.get("parts")) or None
    return content_text(si) or None


def decode_request(req: dict[str, Any], call: Call, counters: Counter) -> None:
    """System text, first/last user text, tool results (``functionResponse`` parts; id-less ones paired
    with the calls of the nearest preceding model message, §6.2), tool definitions, envelope fields."""
    inner, envelope = unwrap_request(req)
    call.x_envelope = envelope
    call.x_system_text = _system_text(inner.get("systemInstruction"))
    first_user: str | None = None
    last_user: str | None = None
    seen_user = False
    results = []
    calls: list[tuple[str, str | None]] = []
    pending: list[tuple[Any, str | None]] = []  # id-less results since the last model message

    def flush() -> None:
        for (res, _name), tid in zip(pending, pair_idless_results(calls, [n for _r, n in pending])):
            res.tool_call_id = tid or ""
        pending.clear()

    for content in as_list(inner.get("contents")):
        if not isinstance(content, dict):
            continue
        parts = content.get("parts")
        if content.get("role") == "model":
            flush()
            calls = message_call_ids(parts)
            continue
        if content.get("role") in (None, "user"):
            text = clean_text(content_text(parts))
            if not seen_user:
                first_user, seen_user = text, True
            last_user = text
        for p in as_list(parts):
            fr = p.get("functionResponse") if isinstance(p, dict) else None
            if not isinstance(fr, dict):
                continue
            name = fr.get("name") if isinstance(fr.get("name"), str) else None
            text, is_error = _function_response(fr)
            tid = fr.get("id")
            has_id = isinstance(tid, str) and bool(tid.strip())
            res = make_tool_result(tid if has_id else "", text, is_error, name, counters)
            results.append(res)
            if not has_id:
                pending.append((res, name))
    flush()
    call.x_first_user_text = first_user
    call.user_text = last_user
    call.x_tool_results = results
    defs = []
    for t in as_list(inner.get("tools")):
        if not isinstance(t, dict):
            continue
        for fd in as_list(t.get("functionDeclarations") or t.get("function_declarations")):
            if isinstance(fd, dict) and isinstance(fd.get("name"), str):
                params = fd.get("parameters")
                if params is None:
                    params = fd.get("parametersJsonSchema")
                defs.append(tool_definition(fd["name"], fd.get("description"), params))
    call.x_tool_definitions = defs


# --- response ----------------------------------------------------------------------------------------


def _unwrap_response(obj: dict[str, Any]) -> tuple[dict[str, Any], Any, bool]:
    """``(inner response, traceId, is_envelope)`` for one body or stream element."""
    inner = obj.get("response")
    if isinstance(inner, dict) and "candidates" not in obj:
        return inner, obj.get("traceId"), True
    return obj, None, False


def _is_error(obj: Any) -> bool:
    return (isinstance(obj, dict) and bool(obj.get("error")) and "candidates" not in obj
            and "response" not in obj)


def _candidate0(cands: Any) -> tuple[dict[str, Any] | None, int]:
    """Candidate with index 0 (else the first) and the number of other candidates."""
    cands = [c for c in as_list(cands) if isinstance(c, dict)]
    if not cands:
        return None, 0
    pick = next((c for c in cands if c.get("index", 0) == 0), cands[0])
    return pick, len(cands) - 1


def apply_response(obj: dict[str, Any], call: Call, counters: Counter) -> None:
    """Fill the call from a (possibly rebuilt) response object, bare or in the §7.1 envelope."""
    inner, trace_id, _env = _unwrap_response(obj)
    if isinstance(inner.get("modelVersion"), str) and inner["modelVersion"]:
        call.model = inner["modelVersion"]
    rid = trace_id if isinstance(trace_id, str) and trace_id else inner.get("responseId")
    if isinstance(rid, str) and rid:
        call.response_id = rid
    cand, extra = _candidate0(inner.get("candidates"))
    if extra:
        call.choices_ignored = extra
    raw: str | None = None
    message: str | None = None
    if cand is not None:
        content = cand.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        texts: list[str] = []
        thoughts: list[str] = []
        for p in as_list(parts):
            if isinstance(p, dict) and isinstance(p.get("text"), str):
                (thoughts if p.get("thought") is True else texts).append(p["text"])
        ids = iter(message_call_ids(parts))
        for p in as_list(parts):
            fc = p.get("functionCall") if isinstance(p, dict) else None
            if isinstance(fc, dict):
                tid, name = next(ids)
                call.tool_calls.append(make_tool_call(tid, name, fc.get("args"), counters))
        # separate parts join with "\n" (§3.4); streamed pieces were already merged into one part
        call.assistant_text = clean_text("\n".join(texts)) if texts else None
        reasoning = "\n".join(t for t in thoughts if t)
        call.x_reasoning = reasoning or None
        fr = cand.get("finishReason")
        raw = fr if isinstance(fr, str) and fr else None
        message = cand.get("finishMessage") if isinstance(cand.get("finishMessage"), str) else None
    else:
        feedback = inner.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if isinstance(reason, str) and reason:
            raw = f"blocked:{reason}"
            msg = feedback.get("blockReasonMessage")
            message = msg if isinstance(msg, str) else None
    call.finish_reason_raw = raw
    if raw is not None and map_finish_raw(raw) == "content_filter":
        call.refusal = message or raw
    elif raw in _MODEL_ERRORS and call.error is None:
        call.error = {"source": "stream", "type": raw, "message": message}
    apply_usage(call, inner.get("usageMetadata"))


def _mergeable(part: dict[str, Any]) -> bool:
    return isinstance(part.get("text"), str) and set(part) <= _TEXT_KEYS


class _Rebuild:
    """Accumulates the partial responses of one stream (§7 stream rebuild)."""

    def __init__(self) -> None:
        self.cands: dict[int, dict[str, Any]] = {}
        self.head: dict[str, Any] = {}
        self.usage: Any = None
        self.feedback: Any = None
        self.trace_id: Any = None
        self.envelope = False
        self.finished = False
        self.error: dict[str, Any] | None = None
        self.first_token: int | None = None

    def chunk(self, ts: int, value: Any) -> None:
        if _is_error(value):
            self.error = value
            return
        if not isinstance(value, dict):
            return
        inner, trace_id, env = _unwrap_response(value)
        if env:
            self.envelope = True
            if trace_id:
                self.trace_id = trace_id
        for key in ("modelVersion", "responseId", "createTime"):
            if inner.get(key) and key not in self.head:
                self.head[key] = inner[key]
        if inner.get("usageMetadata") is not None:
            self.usage = inner["usageMetadata"]
        if inner.get("promptFeedback") is not None:
            self.feedback = inner["promptFeedback"]
            if isinstance(self.feedback, dict) and self.feedback.get("blockReason"):
                self.finished = True
        content_seen = False
        for cand in as_list(inner.get("candidates")):
            if isinstance(cand, dict):
                content_seen |= self._candidate(cand)
        if content_seen and self.first_token is None:
            self.first_token = ts

    def _candidate(self, cand: dict[str, Any]) -> bool:
        """Merge one partial candidate; True when it carried text or a function call (§2.6)."""
        idx = cand.get("index", 0)
        idx = idx if isinstance(idx, int) else 0
        acc = self.cands.setdefault(idx, {"parts": None, "role": None, "extra": {}})
        for k, v in cand.items():
            if k == "finishReason":
                if v is not None:
                    acc["extra"][k] = v
                    self.finished = True
            elif k not in ("content", "index") and v is not None:
                acc["extra"][k] = v
        content = cand.get("content")
        if not isinstance(content, dict):
            return False
        if acc["parts"] is None:
            acc["parts"] = []
        if isinstance(content.get("role"), str):
            acc["role"] = content["role"]
        carried = False
        parts: list[dict[str, Any]] = acc["parts"]
        for p in as_list(content.get("parts")):
            if not isinstance(p, dict):
                continue
            if (isinstance(p.get("text"), str) and p["text"]) or isinstance(p.get("functionCall"), dict):
                carried = True
            last = parts[-1] if parts else None
            if (last is not None and _mergeable(p) and _mergeable(last)
                    and (p.get("thought") is True) == (last.get("thought") is True)
                    and not (p.get("thoughtSignature") and last.get("thoughtSignature"))):
                last["text"] += p["text"]
                if p.get("thoughtSignature"):
                    last["thoughtSignature"] = p["thoughtSignature"]
            else:
                parts.append(copy.deepcopy(p))
        return carried

    def response(self) -> dict[str, Any]:
        """``{candidates, usageMetadata, modelVersion, responseId}`` (+ promptFeedback), wrapped in
        ``{response, traceId}`` for the code-assist envelope."""
        cands = []
        for idx in sorted(self.cands):
            acc = self.cands[idx]
            c: dict[str, Any] = {}
            if acc["parts"] is not None:
                c["content"] = {"parts": acc["parts"], "role": acc["role"] or "model"}
            c.update(acc["extra"])
            c["index"] = idx
            cands.append(c)
        obj: dict[str, Any] = {"candidates": cands}
        if self.feedback is not None:
            obj["promptFeedback"] = self.feedback
        obj["usageMetadata"] = self.usage
        obj["modelVersion"] = self.head.get("modelVersion")
        obj["responseId"] = self.head.get("responseId")
        if "createTime" in self.head:
            obj["createTime"] = self.head["createTime"]
        if self.envelope:
            return {"response": obj, "traceId": self.trace_id}
        return obj


def _array_body_units(ex: Exchange) -> list[tuple[int, Any]] | None:
    """A whole 2xx body that is a JSON array of objects → its elements as stream units (stamped
    ``response_start``, the only time known for them); None otherwise."""
    if ex.response_body.lstrip()[:1] != b"[":
        return None
    ok, arr = parse_json(ex.response_body)
    if not ok or not isinstance(arr, list) or not arr:
        return None
    ts = ex.response_start or 0
    return [(ts, v) for v in arr]


def decode(ex: Exchange, req: dict[str, Any], call: Call, counters: Counter) -> int | None:
    """Fill the call from the request and the (streamed or whole) response; returns first_token ts_us."""
    decode_request(req, call, counters)
    status = ex.status_code
    first_token: int | None = None
    units = _array_body_units(ex) if not ex.is_stream and status is not None and status < 400 else None
    if units is not None:  # a JSON-array stream delivered as one body (relabelled by a proxy)
        call.is_stream, call.stream_format = True, "json-array"
    elif ex.is_stream and (status is None or status < 400):
        units = ex.stream_units
    if units is not None:
        rb = _Rebuild()
        for ts, value, _event in iter_stream_json(units, counters):
            rb.chunk(ts, value)
        obj = rb.response()
        call.x_response_object = obj
        if rb.error is not None:
            call.error = stream_error(rb.error)
        apply_response(obj, call, counters)
        first_token = rb.first_token
        completed = rb.finished  # §7: complete only after a chunk with a finishReason
    else:
        obj, completed = response_json(ex, call)
        if status is not None and status < 400:
            if completed and _is_error(obj):
                call.error = stream_error(obj)
            elif completed:
                apply_response(obj, call, counters)
            elif ex.state == "complete" and 200 <= status < 300:
                call.error = parse_error(ex)
    refusal_only = call.refusal is not None and call.assistant_text is None and not call.tool_calls
    set_outcome(call, ex, completed=completed, refusal_only=refusal_only)
    return first_token

