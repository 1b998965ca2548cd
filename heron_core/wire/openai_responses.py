"""OpenAI Responses API (wire-apis.md §5), as served by OpenAI (``/v1/responses``), the ChatGPT Codex
backend (``/backend-api/codex/responses``), Azure and gateways.

A stream is rebuilt into the non-streaming ``response`` object first (§5 rebuild steps 1–4), then the same
code reads that object as for a whole response, so both paths fill the call identically. Every outcome —
completed, incomplete, failed, an ``error`` event without a terminal event, a cut stream — yields an
object with status, usage so far and whatever output arrived.
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
    canonical_json,
    canonical_tool_id,
    clean_text,
    content_text,
    iter_stream_json,
    make_tool_call,
    make_tool_result,
    parse_error,
    result_flag_from_output,
    result_text,
    set_outcome,
    stream_error,
    tool_definition,
)

# §5 Finish: output items that are client tool calls (the client executes them → finish tool_use).
CLIENT_CALL_TYPES = frozenset(("function_call", "custom_tool_call", "local_shell_call", "shell_call",
                               "apply_patch_call", "computer_call", "mcp_approval_request"))
# §2.4: executed by the server; counted in server_tool_count, never client tool calls.
SERVER_CALL_TYPES = frozenset(("web_search_call", "file_search_call", "code_interpreter_call",
                               "image_generation_call", "mcp_call"))
# Built-in client tools have no ``name`` on the item; these are the names agents know them by.
_BUILTIN_NAMES = {"local_shell_call": "local_shell", "shell_call": "shell", "apply_patch_call": "apply_patch",
                  "computer_call": "computer"}
# ``response.cancelled`` is not documented as a stream event; accepted defensively as terminal.
_TERMINAL = frozenset(("response.completed", "response.incomplete", "response.failed", "response.cancelled"))
_HEAD_EVENTS = frozenset(("response.created", "response.in_progress", "response.queued"))


# --- items shared by request and response -------------------------------------------------------------


def _item_type(item: dict[str, Any]) -> str | None:
    """An input item with ``role`` but no ``type`` is a message (§5 Request)."""
    itype = item.get("type")
    if isinstance(itype, str):
        return itype
    return "message" if "role" in item else None


def _call_id(item: dict[str, Any]) -> Any:
    """The tool-call id is ``call_id`` (not the item ``id``); items without one (``mcp_approval_request``)
    fall back to ``id``."""
    cid = item.get("call_id")
    return cid if isinstance(cid, str) and cid.strip() else item.get("id")


def _call_name(item: dict[str, Any]) -> str:
    name = item.get("name")
    if isinstance(name, str) and name:
        return name
    return _BUILTIN_NAMES.get(item.get("type") or "", "")


def _call_arguments(item: dict[str, Any]) -> Any:
    """§5 Tool calls: custom input → ``{"input": text}``; shell-like calls → their ``action``;
    apply_patch → its ``operation``; function calls and MCP approval requests → ``arguments``."""
    itype = item.get("type")
    if itype == "custom_tool_call":
        inp = item.get("input")
        return {"input": inp if isinstance(inp, str) else ""}
    if itype in ("local_shell_call", "shell_call", "computer_call"):
        action = item.get("action")
        return action if isinstance(action, dict) else {}
    if itype == "apply_patch_call":
        op = item.get("operation")
        return op if isinstance(op, dict) else {}
    return item.get("arguments")


# --- request -----------------------------------------------------------------------------------------


def _output_text(output: Any) -> str:
    """Tool output → text; structured outputs that have no text parts (shell_call_output's
    ``[{stdout, stderr, outcome}]``) fall back to canonical JSON rather than vanishing."""
    text = result_text(output)
    if not text and isinstance(output, list) and output:
        return canonical_json(output)
    return text


def decode_request(req: dict[str, Any], call: Call, counters: Counter) -> None:
    """System text (``instructions`` plus leading system/developer messages), first/last user text, tool
    results of ``*_call_output`` items (named from the history's call items) and tool definitions."""
    system: list[str] = []
    instructions = req.get("instructions")
    if isinstance(instructions, str) and instructions:
        system.append(instructions)
    raw_input = req.get("input")
    items = [{"type": "message", "role": "user", "content": raw_input}] if isinstance(raw_input, str) \
        else as_list(raw_input)
    names: dict[str, str] = {}
    results = []
    first_user: str | None = None
    last_user: str | None = None
    seen_user = False
    leading = True
    for it in items:
        if not isinstance(it, dict):
            continue
        itype = _item_type(it)
        if itype == "message":
            role = it.get("role")
            if role in ("system", "developer"):
                if leading:
                    text = content_text(it.get("content"))
                    if text:
                        system.append(text)
                continue
            leading = False
            if role == "user":
                text = clean_text(content_text(it.get("content")))
                if not seen_user:
                    first_user, seen_user = text, True
                last_user = text
            continue
        leading = False
        if itype in CLIENT_CALL_TYPES:
            names[canonical_tool_id(_call_id(it))] = _call_name(it)
        elif isinstance(itype, str) and itype.endswith("_call_output"):
            text = _output_text(it.get("output"))
            is_error = result_flag_from_output(text) or it.get("status") == "failed"
            res = make_tool_result(_call_id(it), text, is_error, None, counters)
            res.name = names.get(res.tool_call_id) or _BUILTIN_NAMES.get(itype[: -len("_output")])
            results.append(res)
    call.x_system_text = "\n".join(system) if system else None
    call.x_first_user_text = first_user
    call.user_text = last_user
    call.x_tool_results = results
    defs = []
    for t in as_list(req.get("tools")):
        if not isinstance(t, dict):
            continue
        ttype = t.get("type")
        if ttype == "custom":
            defs.append(tool_definition(t.get("name"), t.get("description"), t.get("format")))
        elif isinstance(t.get("name"), str):
            defs.append(tool_definition(t["name"], t.get("description"), t.get("parameters")))
        elif isinstance(ttype, str) and ttype:  # built-in tool (web_search, local_shell, …): named by type
            defs.append(tool_definition(ttype, None, None))
    call.x_tool_definitions = defs


# --- response ----------------------------------------------------------------------------------------


def _raw_status(obj: dict[str, Any]) -> str | None:
    """§2.2 raw value: ``status``, ``incomplete:<reason>`` or ``failed:<code>``."""
    status = obj.get("status")
    if not isinstance(status, str) or not status:
        return None
    if status == "incomplete":
        details = obj.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return f"incomplete:{reason}" if isinstance(reason, str) and reason else status
    if status == "failed":
        err = obj.get("error")
        code = err.get("code") if isinstance(err, dict) else None
        return f"failed:{code}" if isinstance(code, str) and code else status
    return status


def apply_response(obj: dict[str, Any], call: Call, counters: Counter) -> str | None:
    """Fill the call from a (possibly rebuilt) non-streaming ``response`` object. Returns the normalized
    finish for ``completed`` (``stop`` with a message item, else ``other``), or None to use the raw map."""
    if isinstance(obj.get("id"), str) and obj["id"]:
        call.response_id = obj["id"]
    if isinstance(obj.get("model"), str) and obj["model"]:
        call.model = obj["model"]
    texts: list[str] = []
    refusals: list[str] = []
    reasoning: list[str] = []
    has_message = False
    for item in as_list(obj.get("output")):
        if not isinstance(item, dict):
            continue
        itype = _item_type(item)
        if itype == "message":
            has_message = True
            for part in as_list(item.get("content")):
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                    refusals.append(part["refusal"])
                elif part.get("type") in ("output_text", "text") and isinstance(part.get("text"), str):
                    texts.append(part["text"])
        elif itype == "reasoning":
            for key in ("summary", "content"):
                for part in as_list(item.get(key)):
                    if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]:
                        reasoning.append(part["text"])
        elif itype in CLIENT_CALL_TYPES:
            call.tool_calls.append(make_tool_call(_call_id(item), _call_name(item), _call_arguments(item),
                                                  counters))
        elif itype in SERVER_CALL_TYPES:
            call.server_tool_count += 1
    call.assistant_text = clean_text("\n".join(texts)) if texts else None
    call.x_reasoning = "\n".join(reasoning) if reasoning else None
    refusal = "".join(refusals)
    call.refusal = refusal or None
    call.finish_reason_raw = _raw_status(obj)
    status = obj.get("status")
    if status == "failed":
        err = obj.get("error")
        if isinstance(err, dict) and err:
            call.error = stream_error({"error": err}, "failed")
        elif call.error is None:
            call.error = {"source": "stream", "type": "failed", "message": None}
    apply_usage(call, obj.get("usage"))
    if status == "completed":
        return "stop" if has_message else "other"
    return None


def _part(item: dict[str, Any], key: str, index: Any, template: dict[str, Any]) -> dict[str, Any]:
    """The part at ``item[key][index]``, created from ``template`` (padding the list) when missing."""
    parts = item.get(key)
    if not isinstance(parts, list):
        parts = item[key] = []
    i = index if isinstance(index, int) and index >= 0 else max(len(parts) - 1, 0)
    while len(parts) <= i:
        parts.append(copy.deepcopy(template))
    if not isinstance(parts[i], dict):
        parts[i] = copy.deepcopy(template)
    return parts[i]


def _append(target: dict[str, Any], key: str, piece: str) -> None:
    prev = target.get(key)
    target[key] = (prev if isinstance(prev, str) else "") + piece


# Deltas: event type → (item type for an implicit item, list key or None, part template, text field).
_DELTAS: dict[str, tuple[str, str | None, dict[str, Any], str]] = {
    "response.output_text.delta": ("message", "content",
                                   {"type": "output_text", "text": "", "annotations": []}, "text"),
    "response.refusal.delta": ("message", "content", {"type": "refusal", "refusal": ""}, "refusal"),
    "response.reasoning_text.delta": ("reasoning", "content", {"type": "reasoning_text", "text": ""}, "text"),
    "response.reasoning_summary_text.delta": ("reasoning", "summary", {"type": "summary_text", "text": ""},
                                              "text"),
    "response.function_call_arguments.delta": ("function_call", None, {}, "arguments"),
    "response.custom_tool_call_input.delta": ("custom_tool_call", None, {}, "input"),
}
# ``*.done`` events carrying the whole value: event type → (delta twin, field of the event).
_DONES = {
    "response.output_text.done": ("response.output_text.delta", "text"),
    "response.refusal.done": ("response.refusal.delta", "refusal"),
    "response.reasoning_text.done": ("response.reasoning_text.delta", "text"),
    "response.reasoning_summary_text.done": ("response.reasoning_summary_text.delta", "text"),
    "response.function_call_arguments.done": ("response.function_call_arguments.delta", "arguments"),
    "response.custom_tool_call_input.done": ("response.custom_tool_call_input.delta", "input"),
}
_PART_EVENTS = {
    "response.content_part.added": "content", "response.content_part.done": "content",
    "response.reasoning_summary_part.added": "summary", "response.reasoning_summary_part.done": "summary",
}


class _Rebuild:
    """Accumulates the SSE events of one response (§5 rebuild step 1: items keyed by ``output_index``)."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.items: dict[int, dict[str, Any]] = {}
        self.usage: Any = None
        self.terminal: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.first_token: int | None = None
        self.orphans = 0

    def _item(self, data: dict[str, Any], implicit_type: str) -> dict[str, Any]:
        """The item an event refers to: by ``output_index``, else by ``item_id``; an event for an item
        never added (gateways that skip ``output_item.added``) creates it and counts as an orphan, so its
        content is kept rather than lost."""
        oi = data.get("output_index")
        if isinstance(oi, int) and oi in self.items:
            return self.items[oi]
        iid = data.get("item_id")
        if iid:
            for item in self.items.values():
                if item.get("id") == iid:
                    return item
        self.orphans += 1
        if not isinstance(oi, int):
            oi = max(self.items, default=-1) + 1
        item: dict[str, Any] = {"id": iid, "type": implicit_type, "status": "in_progress"}
        if implicit_type == "message":
            item.update(role="assistant", content=[])
        self.items[oi] = item
        return item

    def _response(self, resp: Any) -> None:
        if isinstance(resp, dict) and resp.get("usage") is not None:
            self.usage = resp["usage"]

    def event(self, ts: int, data: Any, event_name: str | None) -> None:
        if not isinstance(data, dict):
            return
        etype = data.get("type") or event_name
        if not isinstance(etype, str) or self.terminal is not None:
            return
        if etype in _DELTAS:
            implicit, key, template, field = _DELTAS[etype]
            piece = data.get("delta")
            if not isinstance(piece, str):
                return
            item = self._item(data, implicit)
            index = data.get("summary_index" if key == "summary" else "content_index")
            _append(_part(item, key, index, template) if key else item, field, piece)
            if piece and self.first_token is None:
                self.first_token = ts
        elif etype in _DONES:
            twin, field = _DONES[etype]
            implicit, key, template, target = _DELTAS[twin]
            value = data.get(field)
            if isinstance(value, str):
                item = self._item(data, implicit)
                index = data.get("summary_index" if key == "summary" else "content_index")
                (_part(item, key, index, template) if key else item)[target] = value
        elif etype in _PART_EVENTS:
            part = data.get("part")
            if isinstance(part, dict):
                key = _PART_EVENTS[etype]
                item = self._item(data, "message" if key == "content" else "reasoning")
                index = data.get("summary_index" if key == "summary" else "content_index")
                slot = _part(item, key, index, {})
                if etype.endswith(".done") or not slot:
                    slot.clear()
                    slot.update(copy.deepcopy(part))
        elif etype in ("response.output_item.added", "response.output_item.done"):
            item, oi = data.get("item"), data.get("output_index")
            if not isinstance(item, dict):
                return
            if not isinstance(oi, int):
                iid = item.get("id")
                oi = next((i for i, it in self.items.items() if iid and it.get("id") == iid),
                          max(self.items, default=-1) + 1)
            self.items[oi] = copy.deepcopy(item)
            if (etype.endswith(".added") and item.get("type") in CLIENT_CALL_TYPES
                    and self.first_token is None):
                self.first_token = ts
        elif etype in _HEAD_EVENTS:
            resp = data.get("response")
            if isinstance(resp, dict):
                self.head = resp
                self._response(resp)
        elif etype in _TERMINAL:
            resp = data.get("response")
            self.terminal = copy.deepcopy(resp) if isinstance(resp, dict) else {}
            if etype == "response.failed" and "status" not in self.terminal:
                self.terminal["status"] = "failed"
            self._response(resp)
        elif etype == "error":
            self.error = data

    def response(self) -> dict[str, Any]:
        """The non-streaming ``response`` object (§5 rebuild steps 2–4)."""
        items = [self.items[i] for i in sorted(self.items)]
        if self.terminal is not None:
            obj = self.terminal
            output = as_list(obj.get("output"))
            if not output:
                obj["output"] = items
            elif obj.get("status") != "completed":
                # A failed/incomplete terminal may list only finished items; keep the partial ones too.
                ids = {it.get("id") for it in output if isinstance(it, dict)}
                obj["output"] = output + [it for it in items if it.get("id") not in ids]
            if obj.get("usage") is None and self.usage is not None:
                obj["usage"] = self.usage
            return obj
        obj = {"id": self.head.get("id"), "object": "response", "model": self.head.get("model"),
               "status": "incomplete", "output": items, "usage": self.usage}
        if self.error is not None:
            err = self.error.get("error") if isinstance(self.error.get("error"), dict) else self.error
            obj["status"] = "failed"
            obj["error"] = {"code": err.get("code") or err.get("type"), "message": err.get("message")}
        return obj


def decode(ex: Exchange, req: dict[str, Any], call: Call, counters: Counter) -> int | None:
    """Fill the call from the request and the (streamed or whole) response; returns first_token ts_us."""
    decode_request(req, call, counters)
    status = ex.status_code
    first_token: int | None = None
    mapped: str | None = None
    if ex.is_stream and (status is None or status < 400):
        rb = _Rebuild()
        for ts, data, event_name in iter_stream_json(ex.stream_units, counters):
            rb.event(ts, data, event_name)
        if rb.orphans:
            call.x_stream_orphan_deltas = rb.orphans
            counters["stream_orphan_deltas"] += rb.orphans
        obj = rb.response()
        call.x_response_object = obj
        if rb.error is not None:
            call.error = stream_error(rb.error)
        mapped = apply_response(obj, call, counters)
        if rb.terminal is None and rb.error is None:
            call.finish_reason_raw = "cut"  # §5 rebuild step 3
        first_token = rb.first_token
        completed = rb.terminal is not None
    else:
        obj, completed = response_json(ex, call)
        if status is not None and status < 400:
            if completed and obj.get("error") and obj.get("object") != "response" and "output" not in obj:
                call.error = stream_error(obj)
            elif completed:
                mapped = apply_response(obj, call, counters)
            elif ex.state == "complete" and 200 <= status < 300:
                call.error = parse_error(ex)
    refusal_only = call.refusal is not None and call.assistant_text is None and not call.tool_calls
    set_outcome(call, ex, completed=completed, refusal_only=refusal_only, mapped=mapped)
    return first_token
