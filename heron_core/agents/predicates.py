"""Turn-boundary predicates (agents-and-turns.md §4, §5).

A turn starts with a fresh user message and ends with a main-agent answer that is not a tool call. Both
are decided from one call alone (the request's last input message, the response's normalized finish), so
the assembler can cut turns without looking at message contents again.
"""

from __future__ import annotations

from typing import Any

from heron_core.records import Call
from heron_core.wire.common import as_list, clean_text, content_text

from .history import inner_request

TERMINAL_FINISHES = frozenset(("stop", "length", "content_filter"))

_ANTHROPIC_MEDIA = frozenset(("image", "document"))
# openai-chat / Responses parts that carry user media. Files are included (spec names images only): a
# user message holding only a PDF is still a fresh prompt.
_OPENAI_MEDIA = frozenset(("image_url", "image", "input_image", "file", "input_file"))


def _visible(text: str | None) -> bool:
    return clean_text(text) is not None


def _anthropic_start(req: dict[str, Any]) -> bool:
    messages = [m for m in as_list(req.get("messages")) if isinstance(m, dict)]
    while messages and messages[-1].get("role") == "system":
        messages.pop()
    if not messages or messages[-1].get("role") != "user":
        return False
    content = messages[-1].get("content")
    if isinstance(content, str):
        return _visible(content)
    blocks = [b for b in as_list(content) if isinstance(b, dict)]
    if any(b.get("type") == "tool_result" for b in blocks):
        return False
    return _visible(content_text(blocks)) or any(b.get("type") in _ANTHROPIC_MEDIA for b in blocks)


def _chat_start(req: dict[str, Any]) -> bool:
    """openai-chat and ollama chat: last message is a user message with text or media."""
    messages = [m for m in as_list(req.get("messages")) if isinstance(m, dict)]
    if not messages or messages[-1].get("role") != "user":
        return False
    last = messages[-1]
    content = last.get("content")
    if _visible(content_text(content)):
        return True
    if as_list(last.get("images")):  # ollama
        return True
    return any(isinstance(p, dict) and p.get("type") in _OPENAI_MEDIA for p in as_list(content))


def _responses_start(req: dict[str, Any]) -> bool:
    inp = req.get("input")
    if isinstance(inp, str):
        return True
    items = [it for it in as_list(inp) if isinstance(it, dict)]
    if not items:
        return False
    last = items[-1]
    itype = last.get("type")
    if itype is None and "role" in last:
        itype = "message"
    return itype == "message" and last.get("role") == "user"


def _gemini_start(req: dict[str, Any]) -> bool:
    contents = [c for c in as_list(req.get("contents")) if isinstance(c, dict)]
    if not contents:
        return False
    last = contents[-1]
    if last.get("role") not in (None, "user"):  # role may be omitted for the user (single-turn)
        return False
    for p in as_list(last.get("parts")):
        if not isinstance(p, dict) or p.get("thought") is True:
            continue
        if isinstance(p.get("text"), str) and _visible(p["text"]):
            return True
        if isinstance(p.get("inlineData"), dict) or isinstance(p.get("fileData"), dict):
            return True
    return False


def is_user_turn_start(call: Call) -> bool:
    """§4: the call's last input message is a fresh user message (per wire API). Pure predicate: it does
    not look at sub-agent/auxiliary status or retries (classify and the assembler gate it)."""
    api = call.wire_api
    if api == "openai-completions" or (api == "ollama" and call.operation == "text_completion"):
        return True
    req = inner_request(call)
    if req is None:
        return False
    if api == "anthropic":
        return _anthropic_start(req)
    if api in ("openai-chat", "ollama"):
        return _chat_start(req)
    if api == "openai-responses":
        return _responses_start(req)
    if api == "gemini":
        return _gemini_start(req)
    return False


def is_terminal_finish(call: Call) -> bool:
    """§5 without the main-agent condition: the normalized finish ends a turn. ``finish`` is already
    ``tool_use`` whenever client tool calls are present, so no per-API override is needed."""
    return call.finish in TERMINAL_FINISHES
