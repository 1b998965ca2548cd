"""gemini generateContent → normalized messages (interfaces.md §6.4): ``systemInstruction`` → system;
``model`` → assistant (thought text → reasoning); ``functionCall``/``functionResponse`` → tool calls and
tool messages with canonical or §6.2 pseudo ids. The code-assist envelope is unwrapped first."""

from __future__ import annotations

from typing import Any

from heron_core.export.messages.common import (
    Message,
    Trajectory,
    Unparseable,
    close_user,
    part_type,
    text_parts,
    tool_call,
    tool_def,
)
from heron_core.wire import gemini as gemini_wire
from heron_core.wire.common import as_list, canonical_tool_id, pair_idless_results, result_text


def _gemini_result(fr: dict[str, Any]) -> tuple[str, bool]:
    """Result text and error flag: gemini-cli sends ``{"output": text}`` or ``{"error": …}``; any other
    response object is kept as canonical JSON (as the wire decoder reads it)."""
    resp = fr.get("response")
    if isinstance(resp, dict) and len(resp) == 1:
        if isinstance(resp.get("output"), str):
            return resp["output"], False
        if resp.get("error"):
            return result_text(resp["error"]), True
    return result_text(resp), False


def _gemini_model(parts: Any, source: str) -> Message:
    msg = Message("assistant", source=source)
    texts: list[str] = []
    thoughts: list[str] = []
    ids = iter(gemini_wire.message_call_ids(parts))
    for p in as_list(parts):
        if not isinstance(p, dict):
            continue
        if isinstance(p.get("text"), str):
            (thoughts if p.get("thought") is True else texts).append(p["text"])
        elif isinstance(p.get("functionCall"), dict):
            fc = p["functionCall"]
            tid, _name = next(ids, ("", None))
            msg.tool_calls.append(tool_call(tid, fc.get("name"), fc.get("args")))
        else:
            msg.dropped.append(next((k for k in p if k not in ("thoughtSignature", "thought")), "part"))
    # Adjacent Gemini text parts are one text cut by the stream (the §6.2 signature merges them too).
    msg.content = "".join(texts) if texts else None
    msg.reasoning = "".join(thoughts) if thoughts else None
    return msg


def request(req: dict[str, Any]) -> Trajectory:
    inner, _envelope = gemini_wire.unwrap_request(req)
    contents = inner.get("contents")
    if not isinstance(contents, list):
        raise Unparseable("gemini request without contents")
    out: list[Message] = []
    si = inner.get("systemInstruction") or inner.get("system_instruction")
    if si is not None:
        sysmsg = Message("system")
        sysmsg.content = text_parts(si.get("parts") if isinstance(si, dict) else si, sysmsg.dropped)
        if sysmsg.content is not None or sysmsg.dropped:  # "system": [] sends no system prompt
            out.append(sysmsg)
    calls: list[tuple[str, str | None]] = []
    for content in contents:
        if not isinstance(content, dict):
            continue
        parts = content.get("parts")
        if content.get("role") == "model":
            out.append(_gemini_model(parts, "request"))
            calls = gemini_wire.message_call_ids(parts)
            continue
        user = Message("user")
        texts: list[str] = []
        tools: list[tuple[Message, bool]] = []  # (message, had an id)
        for p in as_list(parts):
            if isinstance(p, dict) and isinstance(p.get("text"), str):
                texts.append(p["text"])
            elif isinstance(p, dict) and isinstance(p.get("functionResponse"), dict):
                fr = p["functionResponse"]
                text, is_error = _gemini_result(fr)
                tid = fr.get("id") if isinstance(fr.get("id"), str) and fr["id"].strip() else None
                name = fr.get("name") if isinstance(fr.get("name"), str) else None
                tools.append((Message("tool", text, tool_call_id=canonical_tool_id(tid) if tid else None,
                                      name=name, is_error=is_error), tid is not None))
            else:
                user.dropped.append(part_type(p) if not isinstance(p, dict) else
                                    next((k for k in p if k != "thoughtSignature"), "part"))
        idless = [m for m, had in tools if not had]
        for m, tid in zip(idless, pair_idless_results(calls, [m.name for m in idless])):
            m.tool_call_id = canonical_tool_id(tid) if tid else None
        out.extend(m for m, _ in tools)
        user.content = "".join(texts) if texts else None
        close_user(out, user, had_results=bool(tools))
    tools_out = []
    for t in as_list(inner.get("tools")):
        if not isinstance(t, dict):
            continue
        for fd in as_list(t.get("functionDeclarations") or t.get("function_declarations")):
            if isinstance(fd, dict):
                params = fd.get("parameters")
                if params is None:
                    params = fd.get("parametersJsonSchema")
                if d := tool_def(fd.get("name"), fd.get("description"), params):
                    tools_out.append(d)
    return Trajectory(out, tools_out)


def response(obj: dict[str, Any]) -> Message:
    inner = obj.get("response") if isinstance(obj.get("response"), dict) and "candidates" not in obj else obj
    cands = [c for c in as_list(inner.get("candidates")) if isinstance(c, dict)]
    cand = next((c for c in cands if c.get("index", 0) == 0), cands[0] if cands else {})
    content = cand.get("content") if isinstance(cand.get("content"), dict) else {}
    return _gemini_model(content.get("parts"), "response")
