"""anthropic Messages → normalized messages (interfaces.md §6.4): ``system`` → first system message;
each ``tool_result`` block → a tool message, then the remaining user text as a user message;
``thinking`` → reasoning; ``tool_use`` → tool calls; ``input_schema`` → parameters."""

from __future__ import annotations

from typing import Any

from heron_core.export.messages.common import (
    Message,
    Names,
    Trajectory,
    Unparseable,
    close_user,
    join,
    part_type,
    text_parts,
    tool_call,
    tool_def,
)
from heron_core.wire.common import as_list, canonical_tool_id


def _anthropic_assistant(content: Any, source: str) -> Message:
    msg = Message("assistant", source=source)
    if isinstance(content, str):
        msg.content = content
        return msg
    texts: list[str] = []
    thinking: list[str] = []
    for b in as_list(content):
        btype = b.get("type") if isinstance(b, dict) else None
        if btype == "text" and isinstance(b.get("text"), str):
            texts.append(b["text"])
        elif btype == "thinking" and isinstance(b.get("thinking"), str):
            thinking.append(b["thinking"])
        elif btype == "tool_use":
            msg.tool_calls.append(tool_call(b.get("id"), b.get("name"), b.get("input")))
        else:
            msg.dropped.append(part_type(b))
    msg.content, msg.reasoning = join(texts), join(thinking)
    return msg


def request(req: dict[str, Any]) -> Trajectory:
    messages = req.get("messages")
    if not isinstance(messages, list):
        raise Unparseable("anthropic request without a messages list")
    out: list[Message] = []
    system = req.get("system")
    if system is not None:
        sysmsg = Message("system")
        sysmsg.content = text_parts(system, sysmsg.dropped)
        if sysmsg.content is not None or sysmsg.dropped:  # "system": [] sends no system prompt
            out.append(sysmsg)
    names = Names()
    for m in messages:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if m.get("role") == "assistant":
            msg = _anthropic_assistant(content, "request")
            names.add(msg)
            out.append(msg)
            continue
        if isinstance(content, str) or content is None:
            out.append(Message("user", content))
            continue
        user = Message("user")
        texts: list[str] = []
        for b in as_list(content):
            btype = b.get("type") if isinstance(b, dict) else None
            if btype == "tool_result":
                tid = canonical_tool_id(b.get("tool_use_id"))
                tool = Message("tool", tool_call_id=tid, name=names.name(tid),
                               is_error=b.get("is_error") is True)
                tool.content = text_parts(b.get("content"), tool.dropped)
                out.append(tool)
            elif btype == "text" and isinstance(b.get("text"), str):
                texts.append(b["text"])
            elif isinstance(b, str):
                texts.append(b)
            else:
                user.dropped.append(part_type(b))
        user.content = join(texts)
        close_user(out, user, had_results=any(isinstance(b, dict) and b.get("type") == "tool_result"
                                               for b in content))
    tools = [
        t for t in (
            tool_def(d.get("name"), d.get("description"), d.get("input_schema"))
            for d in as_list(req.get("tools"))
            if isinstance(d, dict) and ("input_schema" in d or d.get("type") in (None, "custom"))
        ) if t
    ]
    return Trajectory(out, tools)


def response(obj: dict[str, Any]) -> Message:
    return _anthropic_assistant(obj.get("content"), "response")
