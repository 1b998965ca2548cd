"""OpenAI wire APIs → normalized messages (interfaces.md §6.4).

openai-chat passes through (content parts joined, ``reasoning_content``/``reasoning`` → reasoning);
openai-responses folds items (``instructions`` and system/developer messages → system; consecutive
reasoning/message/tool-call items → one assistant message; ``*_call_output`` → tool messages);
openai-completions (and Ollama generate) become ``[system?, user: prompt, assistant: completion]``.
"""

from __future__ import annotations

from typing import Any

from heron_core.export.messages.common import (
    Message,
    Names,
    Trajectory,
    Unparseable,
    part_type,
    text_parts,
    tool_call,
    tool_def,
)
from heron_core.wire.common import as_list, canonical_tool_id
from heron_core.wire.openai_responses import (
    CLIENT_CALL_TYPES,
    SERVER_CALL_TYPES,
    _call_arguments,
    _call_id,
    _call_name,
    _item_type,
    _output_text,
)

# Custom (free-text) Responses tools: the call's arguments are {"input": text} (wire-apis.md §5).
_CUSTOM_TOOL_PARAMETERS = {"type": "object", "properties": {"input": {"type": "string"}},
                           "required": ["input"]}


def _chat_assistant(m: dict[str, Any], source: str) -> Message:
    msg = Message("assistant", source=source)
    msg.content = text_parts(m.get("content"), msg.dropped)
    if msg.content is None and isinstance(m.get("refusal"), str) and m["refusal"]:
        msg.content = m["refusal"]
    for key in ("reasoning_content", "reasoning"):
        if isinstance(m.get(key), str) and m[key]:
            msg.reasoning = m[key]
            break
    for tc in as_list(m.get("tool_calls")):
        if isinstance(tc, dict):
            fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
            msg.tool_calls.append(tool_call(tc.get("id"), fn.get("name"), fn.get("arguments")))
    return msg


def chat_request(req: dict[str, Any]) -> Trajectory:
    messages = req.get("messages")
    if not isinstance(messages, list):
        raise Unparseable("openai-chat request without a messages list")
    out: list[Message] = []
    names = Names()
    for m in messages:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if role == "assistant":
            msg = _chat_assistant(m, "request")
            names.add(msg)
        elif role in ("tool", "function"):
            tid = canonical_tool_id(m.get("tool_call_id")) if m.get("tool_call_id") is not None else None
            msg = Message("tool", tool_call_id=tid, name=names.name(tid, m.get("name")))
            msg.content = text_parts(m.get("content"), msg.dropped)
        else:
            msg = Message("system" if role in ("system", "developer") else "user")
            msg.content = text_parts(m.get("content"), msg.dropped)
        out.append(msg)
    tools = []
    for t in as_list(req.get("tools")):
        fn = t.get("function") if isinstance(t, dict) and isinstance(t.get("function"), dict) else None
        if fn is not None and (d := tool_def(fn.get("name"), fn.get("description"), fn.get("parameters"))):
            tools.append(d)
    for fn in as_list(req.get("functions")):  # legacy function calling
        if isinstance(fn, dict) and (d := tool_def(fn.get("name"), fn.get("description"),
                                                   fn.get("parameters"))):
            tools.append(d)
    return Trajectory(out, tools)


def choice0(obj: dict[str, Any]) -> dict[str, Any]:
    choices = [c for c in as_list(obj.get("choices")) if isinstance(c, dict)]
    return next((c for c in choices if c.get("index", 0) == 0), choices[0] if choices else {})


def chat_response(obj: dict[str, Any]) -> Message:
    message = choice0(obj).get("message")
    return _chat_assistant(message if isinstance(message, dict) else {}, "response")


# --- openai-responses --------------------------------------------------------------------------------


class _ResponsesItems:
    """Folds Responses items into messages: consecutive reasoning / assistant message / tool-call items
    merge into one assistant message; ``*_call_output`` items become tool messages."""

    def __init__(self, out: list[Message], names: Names, source: str) -> None:
        self.out, self.names, self.source = out, names, source
        self.cur: Message | None = None

    def _assistant(self) -> Message:
        if self.cur is None:
            self.cur = Message("assistant", source=self.source)
            self.out.append(self.cur)
        return self.cur

    def close(self) -> None:
        if self.cur is not None:
            self.names.add(self.cur)
            self.cur = None

    def item(self, it: Any) -> None:
        if not isinstance(it, dict):
            return
        itype = _item_type(it)
        role = it.get("role")
        if itype == "message" and role == "assistant":
            msg = self._assistant()
            text = text_parts(it.get("content"), msg.dropped)
            if text is not None:
                msg.content = text if msg.content is None else msg.content + "\n" + text
        elif itype == "reasoning":
            msg = self._assistant()
            texts = [p["text"] for key in ("summary", "content") for p in as_list(it.get(key))
                     if isinstance(p, dict) and isinstance(p.get("text"), str)]
            if texts:
                joined = "\n".join(texts)
                msg.reasoning = joined if msg.reasoning is None else msg.reasoning + "\n" + joined
        elif itype in CLIENT_CALL_TYPES:
            self._assistant().tool_calls.append(tool_call(_call_id(it), _call_name(it), _call_arguments(it)))
        elif itype in SERVER_CALL_TYPES:
            self._assistant().dropped.append(itype)
        elif itype == "message":
            self.close()
            msg = Message("system" if role in ("system", "developer") else "user", source=self.source)
            msg.content = text_parts(it.get("content"), msg.dropped)
            self.out.append(msg)
        elif isinstance(itype, str) and itype.endswith("_call_output"):
            self.close()
            tid = canonical_tool_id(_call_id(it))
            msg = Message("tool", tool_call_id=tid, name=self.names.name(tid), source=self.source,
                          is_error=it.get("status") == "failed")
            output = it.get("output")
            if itype == "computer_call_output":
                msg.dropped.append(part_type(output))
            else:
                msg.content = _output_text(output)
            self.out.append(msg)
        else:  # item_reference, mcp approvals, unknown items: nothing textual to keep
            target = self.cur if self.cur is not None else (self.out[-1] if self.out else None)
            if target is None:
                target = Message("user", source=self.source)
                self.out.append(target)
            target.dropped.append(itype or "item")


def responses_request(req: dict[str, Any]) -> Trajectory:
    raw = req.get("input")
    if not isinstance(raw, (str, list)):
        raise Unparseable("openai-responses request without input")
    out: list[Message] = []
    if isinstance(req.get("instructions"), str) and req["instructions"]:
        out.append(Message("system", req["instructions"]))
    names = Names()
    if isinstance(raw, str):
        out.append(Message("user", raw))
    else:
        folder = _ResponsesItems(out, names, "request")
        for it in raw:
            folder.item(it)
        folder.close()
    tools = []
    for t in as_list(req.get("tools")):
        if not isinstance(t, dict):
            continue
        if t.get("type") == "function" and (d := tool_def(t.get("name"), t.get("description"),
                                                          t.get("parameters"))):
            tools.append(d)
        elif t.get("type") == "custom" and (d := tool_def(t.get("name"), t.get("description"),
                                                         dict(_CUSTOM_TOOL_PARAMETERS))):
            tools.append(d)
    return Trajectory(out, tools)


def responses_response(obj: dict[str, Any]) -> Message:
    out: list[Message] = []
    folder = _ResponsesItems(out, Names(), "response")
    folder._assistant()
    for it in as_list(obj.get("output")):
        if isinstance(it, dict) and _item_type(it) == "message" and it.get("role") not in (None, "assistant"):
            continue  # a response only generates assistant items
        folder.item(it)
    msg = out[0]
    for extra in out[1:]:  # tool outputs never appear in an output list; keep any dropped counts
        msg.dropped.extend(extra.dropped)
    return msg


# --- prompt APIs (openai-completions, ollama generate) -----------------------------------------------


def prompt_pair(req: dict[str, Any], system: Any) -> Trajectory:
    """``[system?, user: prompt]``: the completion becomes the assistant message."""
    prompt = req.get("prompt")
    out: list[Message] = []
    if isinstance(system, str) and system:
        out.append(Message("system", system))
    user = Message("user")
    if isinstance(prompt, str):
        user.content = prompt
    elif isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        user.content = prompt[0]  # a prompt batch: only choice 0 is represented (wire-apis.md §9)
    elif prompt is not None:
        user.dropped.append("tokens")
    else:
        raise Unparseable("completion request without a prompt")
    user.dropped.extend("image" for _ in as_list(req.get("images")))
    out.append(user)
    return Trajectory(out, [])


def completions_request(req: dict[str, Any]) -> Trajectory:
    return prompt_pair(req, None)


def completions_response(obj: dict[str, Any]) -> Message:
    text = choice0(obj).get("text")
    return Message("assistant", text if isinstance(text, str) else None, source="response")
