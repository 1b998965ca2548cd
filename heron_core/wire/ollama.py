"""Ollama native API (wire-apis.md §8): ``/api/chat`` (operation ``chat``) and ``/api/generate``
(``text_completion``).

Ollama streams by default, so ``is_stream`` follows the response, not the request: NDJSON units from the
HTTP stage, or a whole body that holds several JSON lines (a proxy that relabelled the stream as JSON).
Lines are folded into one non-streaming object (content/response and thinking concatenated, tool calls
collected in order, the ``done`` line's counters kept). Ollama tool calls usually carry no id, so ids are
§6.2 pseudo ids of the assistant message; the request history uses the same function, so ``tool``
messages pair with the same ids when the conversation is resent.
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
    pair_idless_results,
    parse_error,
    parse_json,
    result_flag_from_output,
    result_text,
    set_outcome,
    stream_error,
    tool_definition,
)
from heron_core.wire.tool_ids import ollama_call_ids

# Counters of the ``done`` line that make up ``usage_raw`` (§8: durations in ns are kept there).
USAGE_KEYS = ("prompt_eval_count", "eval_count", "total_duration", "load_duration", "prompt_eval_duration",
              "eval_duration")


# --- ids shared by request history and response -------------------------------------------------------


message_call_ids = ollama_call_ids  # ``[(id, name)]`` of one assistant message's tool calls (tool_ids.py)


# --- request -----------------------------------------------------------------------------------------


def decode_request(req: dict[str, Any], call: Call, counters: Counter) -> None:
    """System text, first/last user text (generate: the prompt), tool results of ``tool`` messages
    (``tool_call_id`` when sent, else paired with the nearest preceding assistant message's calls by
    ``tool_name`` or position) and tool definitions."""
    system = req.get("system") if isinstance(req.get("system"), str) and req["system"] else None
    first_user: str | None = None
    last_user: str | None = None
    seen_user = False
    results = []
    calls: list[tuple[str, str | None]] = []
    pending: list[tuple[Any, str | None]] = []

    def flush() -> None:
        for (res, _n), tid in zip(pending, pair_idless_results(calls, [n for _r, n in pending])):
            res.tool_call_id = tid or ""
        pending.clear()

    for m in as_list(req.get("messages")):
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if role == "system":
            if system is None:
                system = content_text(m.get("content")) or None
        elif role == "user":
            text = clean_text(content_text(m.get("content")))
            if not seen_user:
                first_user, seen_user = text, True
            last_user = text
        elif role == "assistant":
            flush()
            calls = message_call_ids(m)
        elif role == "tool":
            name = m.get("tool_name") or m.get("name")
            name = name if isinstance(name, str) and name else None
            text = result_text(m.get("content"))
            tid = m.get("tool_call_id")
            has_id = isinstance(tid, str) and bool(tid.strip())
            res = make_tool_result(tid if has_id else "", text, result_flag_from_output(text), name, counters)
            results.append(res)
            if not has_id:
                pending.append((res, name))
    flush()
    prompt = req.get("prompt")
    if isinstance(prompt, str) and "messages" not in req:
        first_user = last_user = clean_text(prompt)
    call.x_system_text = system
    call.x_first_user_text = first_user
    call.user_text = last_user
    call.x_tool_results = results
    defs = []
    for t in as_list(req.get("tools")):
        if not isinstance(t, dict):
            continue
        fn = t.get("function") if isinstance(t.get("function"), dict) else t
        if isinstance(fn.get("name"), str):
            defs.append(tool_definition(fn["name"], fn.get("description"), fn.get("parameters")))
    call.x_tool_definitions = defs


# --- response ----------------------------------------------------------------------------------------


def _nonempty(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _is_error(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj.get("error")) and "message" not in obj and "response" not in obj


class _Rebuild:
    """Folds the lines of one response (a non-streamed body is a single line)."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.content: list[str] = []
        self.thinking: list[str] = []
        self.response: list[str] | None = None  # generate
        self.images: list[Any] = []
        self.tool_calls: list[Any] = []
        self.chat = False
        self.final: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.first_token: int | None = None
        self.content_units = 0

    def line(self, ts: int, obj: Any) -> None:
        if _is_error(obj):
            self.error = obj
            return
        if not isinstance(obj, dict):
            return
        for key in ("model", "created_at"):
            if key not in self.head and obj.get(key):
                self.head[key] = obj[key]
        carried = False
        msg = obj.get("message")
        if isinstance(msg, dict):
            self.chat = True
            if isinstance(msg.get("content"), str):
                self.content.append(msg["content"])
            if isinstance(msg.get("thinking"), str):
                self.thinking.append(msg["thinking"])
            calls = [tc for tc in as_list(msg.get("tool_calls")) if isinstance(tc, dict)]
            self.tool_calls.extend(copy.deepcopy(calls))
            self.images.extend(as_list(msg.get("images")))
            carried = _nonempty(msg.get("content")) or _nonempty(msg.get("thinking")) or bool(calls)
        if isinstance(obj.get("response"), str):
            if self.response is None:
                self.response = []
            self.response.append(obj["response"])
            carried = carried or obj["response"] != ""
        if isinstance(obj.get("thinking"), str):  # generate
            self.thinking.append(obj["thinking"])
            carried = carried or obj["thinking"] != ""
        if carried:
            self.content_units += 1
            if self.first_token is None:
                self.first_token = ts
        if obj.get("done") is True:
            self.final = obj

    def message(self) -> dict[str, Any]:
        """The assistant message of a chat response (also the §6.2 signature input)."""
        msg: dict[str, Any] = {"role": "assistant", "content": "".join(self.content)}
        if any(self.thinking):
            msg["thinking"] = "".join(self.thinking)
        if self.images:
            msg["images"] = self.images
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        return msg

    def obj(self) -> dict[str, Any]:
        """The non-streaming response shape: chat ``{model, created_at, message, done, done_reason, …}``,
        generate ``{model, created_at, response, thinking?, done, …}``."""
        out: dict[str, Any] = dict(self.head)
        if self.chat or self.response is None:
            out["message"] = self.message()
        else:
            out["response"] = "".join(self.response)
            if any(self.thinking):
                out["thinking"] = "".join(self.thinking)
        out["done"] = self.final is not None
        for k, v in (self.final or {}).items():
            if k not in ("model", "created_at", "message", "response", "thinking", "done"):
                out[k] = v
        return out

    def usage(self) -> dict[str, Any] | None:
        if self.final is None:
            return None
        usage = {k: self.final[k] for k in USAGE_KEYS if k in self.final}
        return usage or None


def _body_lines(body: bytes) -> list[Any] | None:
    """A whole body holding several JSON lines → the parsed lines; None when it is not that."""
    lines = [ln for ln in body.split(b"\n") if ln.strip()]
    if len(lines) < 2:
        return None
    out = []
    for ln in lines:
        ok, value = parse_json(ln)
        if not ok:
            return None
        out.append(value)
    return out


def _stream_units(ex: Exchange) -> list[tuple[int, Any]] | None:
    """The response as ``(ts_us, unit)`` lines: NDJSON units, or the lines of a several-line body (all
    stamped ``response_start``, the only time known for them); None for a single whole object."""
    if ex.is_stream:
        return ex.stream_units
    lines = _body_lines(ex.response_body) if ex.response_body else None
    if lines is None:
        return None
    ts = ex.response_start or 0
    return [(ts, v) for v in lines]


def count_content_units(ex: Exchange) -> int:
    """Content-bearing lines (§2.7 output estimate for streams without counters)."""
    units = _stream_units(ex)
    rb = _Rebuild()
    for ts, value, _ev in iter_stream_json(units or ()):
        rb.line(ts, value)
    return rb.content_units


def _apply(rb: _Rebuild, call: Call, counters: Counter) -> None:
    if isinstance(rb.head.get("model"), str) and rb.head["model"]:
        call.model = rb.head["model"]
    if rb.chat or rb.response is None:
        msg = rb.message()
        call.assistant_text = clean_text(msg["content"])
        for (tid, name), tc in zip(message_call_ids(msg), rb.tool_calls):
            fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
            call.tool_calls.append(make_tool_call(tid, name, fn.get("arguments"), counters))
    else:
        call.assistant_text = clean_text("".join(rb.response))
    thinking = "".join(rb.thinking)
    call.x_reasoning = thinking or None
    reason = rb.final.get("done_reason") if rb.final is not None else None
    call.finish_reason_raw = reason if isinstance(reason, str) and reason else None
    apply_usage(call, rb.usage())


def decode(ex: Exchange, req: dict[str, Any], call: Call, counters: Counter) -> int | None:
    """Fill the call from the request and the (streamed or whole) response; returns first_token ts_us."""
    decode_request(req, call, counters)
    status = ex.status_code
    first_token: int | None = None
    units = _stream_units(ex) if status is None or status < 400 else None
    if units is not None:
        if not ex.is_stream:  # several JSON lines in a body not labelled NDJSON
            call.is_stream, call.stream_format = True, "ndjson"
        rb = _Rebuild()
        for ts, value, _ev in iter_stream_json(units, counters):
            rb.line(ts, value)
        call.x_response_object = rb.obj()
        if rb.error is not None:
            call.error = stream_error(rb.error)
        _apply(rb, call, counters)
        first_token = rb.first_token
        completed = rb.final is not None
    else:
        obj, completed = response_json(ex, call)
        if status is not None and status < 400:
            if completed and _is_error(obj):
                call.error = stream_error(obj)
            elif completed:
                rb = _Rebuild()
                rb.line(ex.response_start or 0, obj)
                _apply(rb, call, counters)
                completed = rb.final is not None or obj.get("done") is None
            elif ex.state == "complete" and 200 <= status < 300:
                call.error = parse_error(ex)
    refusal_only = False  # Ollama has no refusal field
    set_outcome(call, ex, completed=completed, refusal_only=refusal_only)
    return first_token
