"""Tool-call ids and arguments (wire-apis.md §2.4, agents-and-turns.md §6).

Results are linked to the tool calls they answer by id, across calls and across wire APIs, so ids must
come out the same wherever they are read: from a response, or from the history a later request resends.

* ``canonical_tool_id``: the §6.1 repair of ids some SDKs mangle.
* Calls without an id (Gemini, Ollama, some local OpenAI-style servers) get a §6.2 **pseudo id**: a hash
  of the message's *signature* (its text, tool calls and data parts, in order) and the call's position.
  The ``*_signature`` functions render a message of each API; ``message_call_ids`` applies "own id,
  else pseudo id" to one message, and the ``*_call_ids`` functions do it for each API's message shape,
  for the wire decoders and the agents stage (request history) alike.
* ``pair_idless_results``: results that name no call id are paired with the previous message's calls.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from heron_core.records import ToolCall
from heron_core.wire.json_util import as_list, canonical_json, parse_json

_ID_FIX = re.compile(r"(call|toolu|fc|chatcmpl)([A-Za-z0-9]{8,})")


def canonical_tool_id(tool_id: Any, counters: Counter | None = None) -> str:
    """agents-and-turns.md §6.1: trim; ``call``/``toolu``/``fc``/``chatcmpl`` directly followed by ≥ 8
    ASCII letters/digits (and nothing else) gets the ``_`` some SDKs drop. Counted
    ``tool_ids_canonicalized`` when changed. Non-strings → their text (None → "")."""
    if tool_id is None:
        return ""
    s = (tool_id if isinstance(tool_id, str) else str(tool_id)).strip()
    m = _ID_FIX.fullmatch(s)
    if m is None or not m.group(2).isascii():
        return s
    if counters is not None:
        counters["tool_ids_canonicalized"] += 1
    return f"{m.group(1)}_{m.group(2)}"


def parse_tool_arguments(raw: Any) -> dict[str, Any]:
    """Tool arguments → always a JSON object (§2.4): dict as is; a string is parsed; an empty string or
    None → {}; a non-object JSON value → ``{"value": v}``; unparseable text → ``{"_unparsed": text}``."""
    if isinstance(raw, dict):
        return raw
    if raw is None:
        return {}
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        ok, value = parse_json(raw)
        if not ok:
            return {"_unparsed": raw}
        return value if isinstance(value, dict) else {"value": value}
    return {"value": raw}


def make_tool_call(tool_id: Any, name: Any, arguments: Any, counters: Counter | None = None) -> ToolCall:
    """A ``ToolCall`` with a canonical id and object arguments."""
    return ToolCall(id=canonical_tool_id(tool_id, counters), name=name if isinstance(name, str) else "",
                    arguments=parse_tool_arguments(arguments))


# --- pseudo ids (§6.2) ----------------------------------------------------------------------------------


def pseudo_signature(items: Iterable[tuple[Any, ...]]) -> str:
    """agents-and-turns.md §6.2 signature of one assistant/model message.

    ``items`` in order: ``("t", text)``, ``("f", name, args)`` or ``("d", mime, byte_length)``; callers leave
    out thought parts. Adjacent text merges; rendered ``t:<text>``, ``f:<name>:<canonical args>``,
    ``d:<mime>:<n>``, joined with ``\\n``.
    """
    lines: list[str] = []
    pending: list[str] | None = None
    for item in items:
        kind = item[0]
        if kind == "t":
            if pending is None:
                pending = []
            pending.append(item[1] or "")
            continue
        if pending is not None:
            lines.append("t:" + "".join(pending))
            pending = None
        if kind == "f":
            lines.append(f"f:{item[1]}:{canonical_json(parse_tool_arguments(item[2]))}")
        elif kind == "d":
            lines.append(f"d:{item[1]}:{item[2]}")
    if pending is not None:
        lines.append("t:" + "".join(pending))
    return "\n".join(lines)


def pseudo_tool_id(signature: str, k: int) -> str:
    """Id of the k-th (0-based) tool call of a message: ``tu-`` + first 16 hex of SHA-256(``signature#k``)."""
    return "tu-" + hashlib.sha256(f"{signature}#{k}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


def pseudo_tool_ids(signature: str, n: int) -> list[str]:
    """Pseudo ids of the ``n`` tool calls of a message with this signature, in order."""
    return [pseudo_tool_id(signature, k) for k in range(n)]


def message_call_ids(ids: list[Any], signature: Callable[[], str]) -> list[str]:
    """The ids of one message's tool calls, given what the wire sent for each (``ids``, in order): a
    non-blank string id as is, else the pseudo id of the k-th call. ``signature`` renders the message and
    is only called when some call has no id."""
    out: list[str] = []
    sig: str | None = None
    for k, tid in enumerate(ids):
        if not (isinstance(tid, str) and tid.strip()):
            if sig is None:
                sig = signature()
            tid = pseudo_tool_id(sig, k)
        out.append(tid)
    return out


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _b64_len(data: Any) -> int:
    """Decoded byte length of base64 text without decoding it."""
    if not isinstance(data, str):
        return 0
    s = data.strip()
    return max(0, len(s) * 3 // 4 - (s.endswith("=") + s.endswith("==")))


# --- per wire API -----------------------------------------------------------------------------------------


def openai_chat_message_calls(msg: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``[(id, name, arguments)]`` of an openai-chat assistant message's ``tool_calls`` (the legacy
    ``function_call`` when there are none). Id-less calls (some local servers, ``function_call``) get
    pseudo ids over the message's text and calls, so a resent history yields the same ids."""
    raw: list[tuple[Any, Any, Any]] = []
    for tc in as_list(msg.get("tool_calls")):
        if isinstance(tc, dict):
            fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
            raw.append((tc.get("id"), fn.get("name"), fn.get("arguments")))
    fc = msg.get("function_call")
    if isinstance(fc, dict) and not raw:
        raw.append((None, fc.get("name"), fc.get("arguments")))

    def signature() -> str:
        items: list[tuple[Any, ...]] = []
        if isinstance(msg.get("content"), str) and msg["content"]:
            items.append(("t", msg["content"]))
        items.extend(("f", n or "", a) for _i, n, a in raw)
        return pseudo_signature(items)

    ids = message_call_ids([r[0] for r in raw], signature)
    return [(tid, name, args) for tid, (_i, name, args) in zip(ids, raw)]


def gemini_parts_signature(parts: Any) -> str:
    """§6.2 signature of a Gemini ``content.parts`` list (``thought: true`` parts and
    ``thoughtSignature`` fields ignored; ``inlineData`` → ``d:<mime>:<decoded bytes>``;
    ``fileData`` → ``d:<mime>:<uri>``)."""
    items: list[tuple[Any, ...]] = []
    for p in parts if isinstance(parts, list) else ():
        if not isinstance(p, dict) or p.get("thought") is True:
            continue
        if isinstance(p.get("text"), str):
            items.append(("t", p["text"]))
        elif isinstance(p.get("functionCall"), dict):
            fc = p["functionCall"]
            items.append(("f", fc.get("name") or "", fc.get("args")))
        elif isinstance(p.get("inlineData"), dict):
            d = p["inlineData"]
            items.append(("d", d.get("mimeType") or "", _b64_len(d.get("data"))))
        elif isinstance(p.get("fileData"), dict):
            d = p["fileData"]
            items.append(("d", d.get("mimeType") or "", d.get("fileUri") or ""))
    return pseudo_signature(items)


def gemini_call_ids(parts: Any) -> list[tuple[str, str | None]]:
    """``[(id, name)]`` of the ``functionCall`` parts of one model message, in order: ``functionCall.id``
    when present, else the pseudo id of the k-th call (k counts function calls)."""
    fcs = [fc for p in as_list(parts) if isinstance(p, dict) and isinstance(fc := p.get("functionCall"), dict)]
    ids = message_call_ids([fc.get("id") for fc in fcs], lambda: gemini_parts_signature(parts))
    return [(tid, _name(fc.get("name"))) for tid, fc in zip(ids, fcs)]


def ollama_message_signature(message: Any) -> str:
    """§6.2 signature of an Ollama assistant message: ``content`` text, then ``images`` (``d:image:<n>``),
    then ``tool_calls`` in order (``thinking`` ignored)."""
    if not isinstance(message, dict):
        return ""
    items: list[tuple[Any, ...]] = []
    if isinstance(message.get("content"), str) and message["content"]:
        items.append(("t", message["content"]))
    for img in as_list(message.get("images")):
        items.append(("d", "image", _b64_len(img)))
    for tc in as_list(message.get("tool_calls")):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if isinstance(fn, dict):
            items.append(("f", fn.get("name") or "", fn.get("arguments")))
    return pseudo_signature(items)


def ollama_call_ids(message: Any) -> list[tuple[str, str | None]]:
    """``[(id, name)]`` of an assistant message's ``tool_calls``: the call's ``id`` when the server sent
    one (newer Ollama versions), else the pseudo id of the k-th call."""
    if not isinstance(message, dict):
        return []
    tcs = [tc for tc in as_list(message.get("tool_calls")) if isinstance(tc, dict)]
    ids = message_call_ids([tc.get("id") for tc in tcs], lambda: ollama_message_signature(message))
    out: list[tuple[str, str | None]] = []
    for tid, tc in zip(ids, tcs):
        fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
        out.append((tid, _name(fn.get("name"))))
    return out


def pair_idless_results(calls: list[tuple[str, str | None]],
                        result_names: list[str | None]) -> list[str | None]:
    """Pair id-less results with the calls ``[(id, name)]`` of the nearest preceding assistant message
    (§6.2): by name in order when every result has a name, else by position. None where nothing pairs."""
    out: list[str | None] = []
    if result_names and all(result_names):
        used: set[int] = set()
        for rname in result_names:
            hit = None
            for i, (_cid, cname) in enumerate(calls):
                if i not in used and cname == rname:
                    hit = i
                    break
            if hit is None:
                out.append(None)
            else:
                used.add(hit)
                out.append(calls[hit][0])
        return out
    return [calls[i][0] if i < len(calls) else None for i in range(len(result_names))]
