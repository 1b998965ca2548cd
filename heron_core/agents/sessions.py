"""Session ids the clients send on the wire (agents-and-turns.md §3.1): headers, body metadata and the
Gemini code-assist envelope.

These are the strong sources, tried before the tool anchor and the conversation fingerprint. Every
value comes from an untrusted body or header, so each reader returns None rather than raising and only
accepts non-blank strings.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from heron_core.records import Call, Exchange
from heron_core.wire.common import parse_json

from .history import inner_request

USER_PROMPT_SEPARATOR = "########"


@dataclass(slots=True)
class WireSession:
    """A session key found on the wire, where it came from, and what else the client said about it."""

    native_session_id: str | None = None
    session_source: str | None = None  # 'header' | 'metadata' | 'envelope'
    native_turn_id: str | None = None
    subagent: str | None = None
    parent_hint: str | None = None


def text(value: Any) -> str | None:
    """A non-blank string, trimmed; anything else → None."""
    if isinstance(value, str):
        s = value.strip()
        return s or None
    return None


def json_object(data: Any) -> dict[str, Any] | None:
    """``data`` as a JSON object (a dict is taken as is), else None."""
    if isinstance(data, dict):
        return data
    if not isinstance(data, (str, bytes)):
        return None
    ok, value = parse_json(data)
    return value if ok and isinstance(value, dict) else None


def json_or_base64_object(value: Any) -> dict[str, Any] | None:
    """A JSON object given as JSON text, or as base64 / base64url of JSON text (padding optional)."""
    obj = json_object(value)
    if obj is not None or not isinstance(value, str):
        return obj
    s = value.strip()
    padded = s + "=" * (-len(s) % 4)
    for decode in (lambda v: base64.b64decode(v, validate=True), base64.urlsafe_b64decode):
        try:
            raw = decode(padded)
        except (binascii.Error, ValueError):
            continue
        obj = json_object(raw)
        if obj is not None:
            return obj
    return None


def _first(*values: Any) -> str | None:
    for v in values:
        t = text(v)
        if t is not None:
            return t
    return None


# --- claude-cli ----------------------------------------------------------------------------------------


def claude_user_id_session(user_id: Any) -> str | None:
    """Session id inside Claude Code's ``metadata.user_id``: the ``session_id`` of the JSON object it
    holds (current versions), else the text after the last ``_session_`` (legacy
    ``user_<hash>_account_<uuid>_session_<uuid>``)."""
    s = text(user_id)
    if s is None:
        return None
    obj = json_object(s) if s.startswith("{") else None
    if obj is not None:
        return text(obj.get("session_id"))
    i = s.rfind("_session_")
    return text(s[i + len("_session_"):]) if i >= 0 else None


def claude_session(call: Call, ex: Exchange) -> WireSession:
    """Header ``X-Claude-Code-Session-Id``, then body ``metadata.user_id``."""
    sid = text(ex.header("x-claude-code-session-id"))
    if sid is not None:
        return WireSession(sid, "header")
    req = call.x_request
    meta = req.get("metadata") if isinstance(req, dict) else None
    if isinstance(meta, dict):
        sid = claude_user_id_session(meta.get("user_id"))
        if sid is not None:
            return WireSession(sid, "metadata")
    return WireSession()


# --- codex-cli -----------------------------------------------------------------------------------------


def codex_session(call: Call, ex: Exchange) -> WireSession:
    """Codex sends the same metadata three ways (header ``x-codex-turn-metadata``, body
    ``client_metadata`` and the JSON copy inside it) and the session id also in plain headers; versions
    differ in which they send, so all are read in the §3.1 priority order. Sub-agent name and parent
    thread come from the ``x-openai-subagent`` / ``x-codex-parent-thread-id`` headers or the same metadata
    (``subagent_kind``, ``parent_thread_id``)."""
    header_meta = json_or_base64_object(ex.header("x-codex-turn-metadata")) or {}
    req = call.x_request
    cm = req.get("client_metadata") if isinstance(req, dict) else None
    cm = cm if isinstance(cm, dict) else {}
    cm_meta = json_or_base64_object(cm.get("x-codex-turn-metadata")) or {}
    out = WireSession()
    sid = text(header_meta.get("session_id"))
    if sid is not None:
        out.native_session_id, out.session_source = sid, "header"
    else:
        sid = _first(cm.get("session_id"), cm_meta.get("session_id"))
        if sid is not None:
            out.native_session_id, out.session_source = sid, "metadata"
        else:
            sid = _first(ex.header("session_id"), ex.header("session-id"), ex.header("conversation_id"))
            if sid is not None:
                out.native_session_id, out.session_source = sid, "header"
    out.native_turn_id = _first(header_meta.get("turn_id"), cm.get("turn_id"), cm_meta.get("turn_id"))
    out.subagent = _first(ex.header("x-openai-subagent"), header_meta.get("subagent_kind"),
                          cm.get("subagent_kind"), cm_meta.get("subagent_kind"), cm.get("x-openai-subagent"))
    out.parent_hint = _first(ex.header("x-codex-parent-thread-id"), header_meta.get("parent_thread_id"),
                             cm.get("parent_thread_id"), cm_meta.get("parent_thread_id"),
                             cm.get("x-codex-parent-thread-id"))
    return out


# --- gemini-cli ----------------------------------------------------------------------------------------


def gemini_envelope(call: Call) -> dict[str, Any] | None:
    """``{user_prompt_id, session_id}`` of the code-assist envelope: what the gemini decoder put in
    ``x_envelope``, else read from the request (so classification does not depend on decoder details)."""
    if isinstance(call.x_envelope, dict):
        return call.x_envelope
    req = call.x_request
    if not isinstance(req, dict) or "contents" in req or not isinstance(req.get("request"), dict):
        return None
    return {"user_prompt_id": req.get("user_prompt_id"), "session_id": req["request"].get("session_id")}


def gemini_session(call: Call) -> WireSession:
    """Envelope ``request.session_id``, then ``user_prompt_id`` up to ``########`` (gemini-cli writes
    ``<session>########<prompt counter>``; the counter is the native turn id). A ``user_prompt_id``
    without the separator is not used as a session: it is not known to be stable across prompts."""
    env = gemini_envelope(call)
    if env is None:
        return WireSession()
    out = WireSession()
    upid = text(env.get("user_prompt_id"))
    prefix: str | None = None
    if upid is not None and USER_PROMPT_SEPARATOR in upid:
        head, _, counter = upid.partition(USER_PROMPT_SEPARATOR)
        prefix = text(head)
        out.native_turn_id = text(counter)
    sid = text(env.get("session_id")) or prefix
    if sid is not None:
        out.native_session_id, out.session_source = sid, "envelope"
    return out


# --- opencode ------------------------------------------------------------------------------------------


def opencode_session(ex: Exchange) -> WireSession:
    """Header ``x-session-affinity`` (opencode's sticky-routing key, one per session)."""
    sid = text(ex.header("x-session-affinity"))
    return WireSession(sid, "header") if sid is not None else WireSession()


def generation_config(call: Call) -> dict[str, Any]:
    """Gemini ``generationConfig`` (inside the envelope when there is one), or {}."""
    req = inner_request(call)
    cfg = req.get("generationConfig") if req is not None else None
    return cfg if isinstance(cfg, dict) else {}
