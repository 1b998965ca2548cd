"""Anthropic Messages API (wire-apis.md §3).

The streamed response is rebuilt into the non-streaming ``message`` object first, then the same code
reads that object as for a non-streamed response, so both paths fill the call identically.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from heron_core.records import Call, Exchange
from heron_core.wire.json_util import response_json
from heron_core.wire.common import (
    apply_usage,
    as_list,
    canonical_tool_id,
    clean_text,
    content_text,
    iter_stream_json,
    make_tool_call,
    make_tool_result,
    parse_error,
    parse_tool_arguments,
    set_outcome,
    stream_error,
    tool_definition,
)

_INPUT_USAGE_FIELDS = frozenset(("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                                 "cache_creation"))


# --- request -----------------------------------------------------------------------------------------


def _system_text(system: Any) -> str | None:
    text = content_text(system)
    return text or None


def decode_request(req: dict[str, Any], call: Call, counters: Counter) -> None:
    """System text, first/last user text, tool results (named from the history's tool_use blocks) and
    tool definitions."""
    call.x_system_text = _system_text(req.get("system"))
    messages = req.get("messages")
    if not isinstance(messages, list):
        messages = []
    names: dict[str, str] = {}
    first_user: str | None = None
    last_user: str | None = None
    seen_user = False
    results = []
    for m in messages:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        role = m.get("role")
        if role == "assistant" and isinstance(content, list):
            for b in content:
                if isinstance(b, dict) and b.get("type") == "tool_use" and isinstance(b.get("id"), str):
                    name = b.get("name")
                    names[canonical_tool_id(b["id"])] = name if isinstance(name, str) else None
        elif role == "user":
            text = clean_text(content_text(content))
            if not seen_user:
                first_user = text
                seen_user = True
            last_user = text
            if isinstance(content, list):
                for b in content:
                    if isinstance(b, dict) and b.get("type") == "tool_result":
                        res = make_tool_result(b.get("tool_use_id"), b.get("content"),
                                               b.get("is_error") is True, None, counters)
                        res.name = names.get(res.tool_call_id)
                        results.append(res)
    call.x_first_user_text = first_user
    call.user_text = last_user
    call.x_tool_results = results
    tools = req.get("tools")
    call.x_tool_definitions = [
        tool_definition(t.get("name"), t.get("description"), t.get("input_schema"))
        for t in (tools if isinstance(tools, list) else ())
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    ]


# --- response ----------------------------------------------------------------------------------------


def apply_message(msg: dict[str, Any], call: Call, counters: Counter) -> None:
    """Fill the call from a (possibly rebuilt) non-streaming ``message`` object."""
    if isinstance(msg.get("id"), str) and msg["id"]:
        call.response_id = msg["id"]
    if isinstance(msg.get("model"), str) and msg["model"]:
        call.model = msg["model"]
    texts: list[str] = []
    thinking: list[str] = []
    for b in as_list(msg.get("content")):
        if not isinstance(b, dict):
            continue
        btype = b.get("type")
        if btype == "text" and isinstance(b.get("text"), str):
            texts.append(b["text"])
        elif btype == "thinking" and isinstance(b.get("thinking"), str):
            thinking.append(b["thinking"])
        elif btype == "tool_use":
            call.tool_calls.append(make_tool_call(b.get("id"), b.get("name"), b.get("input"), counters))
        elif btype == "server_tool_use":
            call.server_tool_count += 1
    call.assistant_text = clean_text("\n".join(texts)) if texts else None
    call.x_reasoning = "\n".join(thinking) if thinking else None
    raw = msg.get("stop_reason")
    call.finish_reason_raw = raw if isinstance(raw, str) else None
    if raw == "refusal":  # the text streamed before the classifier stopped the answer, if any
        call.refusal = call.assistant_text
    apply_usage(call, msg.get("usage"))


def _merge_usage(usage: dict[str, Any], delta: dict[str, Any]) -> None:
    """§3 usage merge: a present field replaces the earlier value, except input and cache fields, which
    replace only when > 0 (message_delta often repeats them as 0)."""
    for k, v in delta.items():
        if v is None:
            continue
        if k in _INPUT_USAGE_FIELDS:
            if isinstance(v, dict):
                if any(isinstance(x, (int, float)) and x > 0 for x in v.values()):
                    usage[k] = v
            elif isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
                usage[k] = v
            elif k not in usage:
                usage[k] = v
        else:
            usage[k] = v


class _Rebuild:
    """Accumulates the SSE events of one response."""

    def __init__(self) -> None:
        self.msg: dict[str, Any] = {}
        self.usage: dict[str, Any] | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.json_parts: dict[int, list[str]] = {}
        self.stop_reason: Any = None
        self.stop_sequence: Any = None
        self.completed = False
        self.first_token: int | None = None
        self.error: dict[str, Any] | None = None

    def _close_block(self, index: int) -> None:
        parts = self.json_parts.pop(index, None)
        block = self.blocks.get(index)
        if parts is None or block is None:
            return
        text = "".join(parts)
        if text.strip():
            block["input"] = parse_tool_arguments(text)
        elif not isinstance(block.get("input"), dict):
            block["input"] = {}

    def event(self, ts: int, data: Any, event_name: str | None, call: Call, counters: Counter) -> None:
        if not isinstance(data, dict):
            return
        etype = data.get("type") or event_name
        if etype == "message_start":
            msg = data.get("message")
            if isinstance(msg, dict):
                self.msg = {k: v for k, v in msg.items() if k != "content"}
                if isinstance(msg.get("usage"), dict):
                    self.usage = dict(msg["usage"])
        elif etype == "content_block_start":
            index, block = data.get("index"), data.get("content_block")
            if not isinstance(index, int) or not isinstance(block, dict):
                return
            self.blocks[index] = dict(block)
            btype = block.get("type")
            if btype in ("tool_use", "server_tool_use"):
                self.json_parts[index] = []
                if btype == "tool_use" and block.get("name") and self.first_token is None:
                    self.first_token = ts
        elif etype == "content_block_delta":
            self._delta(ts, data, call, counters)
        elif etype == "content_block_stop":
            if isinstance(data.get("index"), int):
                self._close_block(data["index"])
        elif etype == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict):
                if delta.get("stop_reason") is not None:
                    self.stop_reason = delta["stop_reason"]
                    self.completed = True
                if "stop_sequence" in delta:
                    self.stop_sequence = delta["stop_sequence"]
            usage = data.get("usage")
            if isinstance(usage, dict):
                if self.usage is None:
                    self.usage = {}
                _merge_usage(self.usage, usage)
        elif etype == "message_stop":
            self.completed = True
        elif etype == "error":
            self.error = stream_error(data)

    def _delta(self, ts: int, data: dict[str, Any], call: Call, counters: Counter) -> None:
        index, delta = data.get("index"), data.get("delta")
        if not isinstance(delta, dict):
            return
        block = self.blocks.get(index) if isinstance(index, int) else None
        if block is None:
            call.x_stream_orphan_deltas += 1
            counters["stream_orphan_deltas"] += 1
            return
        dtype = delta.get("type")
        piece: Any = None
        if dtype == "text_delta":
            piece = delta.get("text")
            if isinstance(piece, str):
                block["text"] = (block.get("text") or "") + piece
        elif dtype == "thinking_delta":
            piece = delta.get("thinking")
            if isinstance(piece, str):
                block["thinking"] = (block.get("thinking") or "") + piece
        elif dtype == "input_json_delta":
            piece = delta.get("partial_json")
            if isinstance(piece, str):
                self.json_parts.setdefault(index, []).append(piece)
        elif dtype == "signature_delta":
            sig = delta.get("signature")
            if isinstance(sig, str):
                block["signature"] = (block.get("signature") or "") + sig
        elif dtype == "citations_delta":
            if delta.get("citation") is not None:
                block.setdefault("citations", []).append(delta["citation"])
        if isinstance(piece, str) and piece and self.first_token is None:
            self.first_token = ts

    def message(self) -> dict[str, Any]:
        """The non-streaming message shape; unfinished tool inputs are parsed as far as they got."""
        for index in list(self.json_parts):
            self._close_block(index)
        msg: dict[str, Any] = {"id": self.msg.get("id"), "type": "message", "role": "assistant",
                               "model": self.msg.get("model")}
        msg.update({k: v for k, v in self.msg.items() if k not in msg and k not in ("usage", "stop_reason",
                                                                                    "stop_sequence")})
        msg["content"] = [self.blocks[i] for i in sorted(self.blocks)]
        msg["stop_reason"] = self.stop_reason if self.stop_reason is not None else self.msg.get("stop_reason")
        msg["stop_sequence"] = self.stop_sequence if self.stop_sequence is not None else self.msg.get(
            "stop_sequence")
        msg["usage"] = self.usage
        return msg


def decode(ex: Exchange, req: dict[str, Any], call: Call, counters: Counter) -> int | None:
    """Fill the call from the request and the (streamed or whole) response; returns first_token ts_us."""
    decode_request(req, call, counters)
    status = ex.status_code
    first_token: int | None = None
    if ex.is_stream and (status is None or status < 400):
        rb = _Rebuild()
        for ts, data, event_name in iter_stream_json(ex.stream_units, counters):
            rb.event(ts, data, event_name, call, counters)
        msg = rb.message()
        call.x_response_object = msg
        call.error = rb.error
        apply_message(msg, call, counters)
        first_token = rb.first_token
        completed = rb.completed
    else:
        obj, completed = response_json(ex, call)
        if status is not None and status < 400:
            if completed and obj.get("type") == "error":
                call.error = stream_error(obj)
            elif completed:
                apply_message(obj, call, counters)
            elif ex.state == "complete" and 200 <= status < 300:
                call.error = parse_error(ex)
    refusal_only = call.refusal is not None and call.assistant_text is None and not call.tool_calls
    set_outcome(call, ex, completed=completed, refusal_only=refusal_only)
    return first_token
