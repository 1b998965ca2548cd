"""Reading the conversation history a request resends (agents-and-turns.md §3.2, §3.3).

Agents resend their whole history on every call, so the *first* assistant message of that history is
the same on every later call of a conversation. Its first tool-call id (the tool anchor) or its text (the
conversation fingerprint) therefore names the conversation without any header. This module finds that
message per wire API and, when the history has none yet, falls back to the response of the call itself,
which is exactly what the next call will resend.

Ids are made the same way the wire decoders make the response's ids (canonical ids, §6.2 pseudo ids for
id-less Gemini/Ollama/OpenAI-compatible calls), so a history message and the response it came from agree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from heron_core.records import Call
from heron_core.wire.common import as_list, canonical_tool_id, clean_text, content_text
from heron_core.wire.tool_ids import gemini_call_ids as wire_gemini_call_ids
from heron_core.wire.tool_ids import ollama_call_ids as wire_ollama_call_ids
from heron_core.wire.tool_ids import openai_chat_message_calls

# Responses API output items the client executes (kept equal to wire.openai_responses.CLIENT_CALL_TYPES,
# checked by a test) and the other item types a model response can contain.
RESPONSES_CLIENT_CALLS = frozenset(("function_call", "custom_tool_call", "local_shell_call", "shell_call",
                                    "apply_patch_call", "computer_call", "mcp_approval_request"))
_RESPONSES_MODEL_ITEMS = RESPONSES_CLIENT_CALLS | frozenset((
    "reasoning", "web_search_call", "file_search_call", "code_interpreter_call", "image_generation_call",
    "mcp_call", "mcp_list_tools"))


@dataclass(frozen=True, slots=True)
class FirstAssistant:
    """The first assistant message of a conversation, as far as §3.2/§3.3 need it.

    ``from_history``: found in the request (False: taken from this call's response because the history
    has no assistant message yet — the state that makes a generic text conversation tentative).
    ``tool_ids``: canonical ids of its tool calls, in order. ``text``: its visible text (§3.4), or None.
    """

    from_history: bool
    tool_ids: tuple[str, ...]
    text: str | None

    @property
    def anchor(self) -> str | None:
        return self.tool_ids[0] if self.tool_ids else None


def inner_request(call: Call) -> dict[str, Any] | None:
    """The parsed request, unwrapped from the Gemini code-assist envelope (wire-apis.md §7.1)."""
    req = call.x_request
    if not isinstance(req, dict):
        return None
    if call.wire_api == "gemini" and "contents" not in req and isinstance(req.get("request"), dict):
        return req["request"]
    return req


def is_chat_shaped(call: Call) -> bool:
    """A conversation API call: everything except openai-completions and ollama ``generate``."""
    if call.wire_api == "openai-completions" or not call.wire_api:
        return False
    return not (call.wire_api == "ollama" and call.operation == "text_completion")


# --- per wire API: ids of one assistant message's tool calls ------------------------------------------


def openai_chat_call_ids(msg: dict[str, Any]) -> list[str]:
    """Ids of an openai-chat assistant message's ``tool_calls`` (legacy ``function_call`` when there are
    none), made by the function wire.openai_chat uses (§6.2 pseudo ids for id-less calls)."""
    return [tid for tid, _name, _args in openai_chat_message_calls(msg)]


def gemini_call_ids(parts: Any) -> list[str]:
    """Ids of a Gemini model message's ``functionCall`` parts, as wire.gemini makes them."""
    return [tid for tid, _name in wire_gemini_call_ids(parts)]


def ollama_call_ids(msg: dict[str, Any]) -> list[str]:
    """Ids of an Ollama assistant message's ``tool_calls``, as wire.ollama makes them."""
    return [tid for tid, _name in wire_ollama_call_ids(msg)]


def _responses_item_type(item: dict[str, Any]) -> str | None:
    itype = item.get("type")
    if isinstance(itype, str):
        return itype
    return "message" if "role" in item else None


def _responses_call_id(item: dict[str, Any]) -> Any:
    cid = item.get("call_id")
    return cid if isinstance(cid, str) and cid.strip() else item.get("id")


# --- per wire API: the first assistant message of the history -----------------------------------------

Found = tuple[list[Any], str | None]
"""Raw tool ids (not yet canonical) and visible text of the first assistant message."""


def _first_anthropic(req: dict[str, Any]) -> Found | None:
    for m in as_list(req.get("messages")):
        if isinstance(m, dict) and m.get("role") == "assistant":
            content = m.get("content")
            ids = [b.get("id") for b in as_list(content)
                   if isinstance(b, dict) and b.get("type") == "tool_use"]
            return ids, clean_text(content_text(content))
    return None


def _first_openai_chat(req: dict[str, Any]) -> Found | None:
    for m in as_list(req.get("messages")):
        if isinstance(m, dict) and m.get("role") == "assistant":
            return openai_chat_call_ids(m), clean_text(content_text(m.get("content")))
    return None


def _first_ollama(req: dict[str, Any]) -> Found | None:
    for m in as_list(req.get("messages")):
        if isinstance(m, dict) and m.get("role") == "assistant":
            return ollama_call_ids(m), clean_text(content_text(m.get("content")))
    return None


def _first_gemini(req: dict[str, Any]) -> Found | None:
    for c in as_list(req.get("contents")):
        if isinstance(c, dict) and c.get("role") == "model":
            parts = c.get("parts")
            return gemini_call_ids(parts), clean_text(content_text(parts))
    return None


def _first_responses(req: dict[str, Any]) -> Found | None:
    """The items of the first model output: from the first assistant message or model item (reasoning,
    tool calls) up to the next user message. Its first client tool call, if any, is the anchor; its
    assistant messages' text is the text (the Responses API has no single "assistant message")."""
    items = req.get("input")
    if not isinstance(items, list):
        return None
    started = False
    ids: list[Any] = []
    texts: list[str] = []
    for it in items:
        if not isinstance(it, dict):
            continue
        itype = _responses_item_type(it)
        role = it.get("role") if itype == "message" else None
        if not started:
            if role == "assistant" or itype in _RESPONSES_MODEL_ITEMS:
                started = True
            else:
                continue
        if itype == "message" and role == "user":
            break
        if role == "assistant":
            text = content_text(it.get("content"))
            if text:
                texts.append(text)
        elif itype in RESPONSES_CLIENT_CALLS:
            ids.append(_responses_call_id(it))
    if not started:
        return None
    return ids, clean_text("\n".join(texts)) if texts else None


_FIRST = {
    "anthropic": _first_anthropic,
    "openai-chat": _first_openai_chat,
    "openai-responses": _first_responses,
    "gemini": _first_gemini,
    "ollama": _first_ollama,
}


def first_assistant(call: Call, counters: Counter | None = None) -> FirstAssistant | None:
    """§3.2: the first assistant message of the request history, else this call's response. None for
    calls that are not conversations (completions, generate) or whose request is not JSON."""
    if not is_chat_shaped(call):
        return None
    req = inner_request(call)
    finder = _FIRST.get(call.wire_api)
    if req is None or finder is None:
        return None
    found = finder(req)
    if found is not None:
        raw_ids, text = found
        # Only the anchor is counted: the other ids are never used, and the wire stage already counted
        # the ids it canonicalized itself (response tool calls, tool results).
        ids = [canonical_tool_id(t, counters if k == 0 else None) for k, t in enumerate(raw_ids)]
        return FirstAssistant(True, tuple(i for i in ids if i), text)
    return FirstAssistant(False, tuple(tc.id for tc in call.tool_calls if tc.id), call.assistant_text)
