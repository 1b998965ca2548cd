"""Ollama ``/api/chat`` → normalized messages (interfaces.md §6.4): pass-through, ``thinking`` →
reasoning, id-less tool calls get §6.2 pseudo ids and id-less ``tool`` messages pair with the nearest
preceding assistant message's calls (by ``tool_name``, else by position). ``/api/generate`` is a
prompt pair (``openai.prompt_pair``)."""

from __future__ import annotations

from typing import Any

from heron_core.export.messages.common import (
    Message,
    Names,
    Trajectory,
    text_parts,
    tool_call,
    tool_def,
)
from heron_core.export.messages.openai import prompt_pair
from heron_core.wire import ollama as ollama_wire
from heron_core.wire.common import as_list, canonical_tool_id, pair_idless_results


def _ollama_assistant(m: dict[str, Any], source: str) -> Message:
    msg = Message("assistant", source=source)
    if isinstance(m.get("content"), str):
        msg.content = m["content"]
    if isinstance(m.get("thinking"), str) and m["thinking"]:
        msg.reasoning = m["thinking"]
    msg.dropped.extend("image" for _ in as_list(m.get("images")))
    ids = iter(ollama_wire.message_call_ids(m))
    for tc in as_list(m.get("tool_calls")):
        if isinstance(tc, dict):
            fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
            tid, _name = next(ids, ("", None))
            msg.tool_calls.append(tool_call(tid, fn.get("name"), fn.get("arguments")))
    return msg


def request(req: dict[str, Any]) -> Trajectory:
    messages = req.get("messages")
    if not isinstance(messages, list):
        return prompt_pair(req, req.get("system"))
    out: list[Message] = []
    calls: list[tuple[str, str | None]] = []
    pending: list[Message] = []
    names = Names()

    def flush() -> None:
        for m, tid in zip(pending, pair_idless_results(calls, [m.name for m in pending])):
            m.tool_call_id = canonical_tool_id(tid) if tid else None
            m.name = names.name(m.tool_call_id, m.name)
        pending.clear()

    for m in messages:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if role == "assistant":
            flush()
            msg = _ollama_assistant(m, "request")
            names.add(msg)
            calls = ollama_wire.message_call_ids(m)
        elif role == "tool":
            given = m.get("tool_name") or m.get("name")
            tid = m.get("tool_call_id")
            has_id = isinstance(tid, str) and bool(tid.strip())
            msg = Message("tool", tool_call_id=canonical_tool_id(tid) if has_id else None,
                          name=given if isinstance(given, str) and given else None)
            msg.content = text_parts(m.get("content"), msg.dropped)
            if has_id:
                msg.name = names.name(msg.tool_call_id, msg.name)
            else:
                pending.append(msg)
        else:
            msg = Message("system" if role == "system" else "user")
            msg.content = text_parts(m.get("content"), msg.dropped)
            msg.dropped.extend("image" for _ in as_list(m.get("images")))
        out.append(msg)
    flush()
    tools = []
    for t in as_list(req.get("tools")):
        fn = t.get("function") if isinstance(t, dict) and isinstance(t.get("function"), dict) else t
        if isinstance(fn, dict):
            d = tool_def(fn.get("name"), fn.get("description"), fn.get("parameters"))
            if d:
                tools.append(d)
    return Trajectory(out, tools)


def response(obj: dict[str, Any]) -> Message:
    if isinstance(obj.get("message"), dict):
        return _ollama_assistant(obj["message"], "response")
    msg = Message("assistant", source="response")
    if isinstance(obj.get("response"), str):
        msg.content = obj["response"]
    if isinstance(obj.get("thinking"), str) and obj["thinking"]:
        msg.reasoning = obj["thinking"]
    return msg
