"""Content fingerprints: the conversation key of text-only conversations (agents-and-turns.md §3.3) and
the output fingerprint used to fold proxy hops (§9.2).
"""

from __future__ import annotations

import hashlib

from heron_core.records import Call
from heron_core.wire.common import canonical_json, clean_text

UNIT_SEP = "\x1f"
_RECORD_SEP = "\x1e"


def conversation_key(system_text: str | None, first_user_text: str | None,
                     first_assistant_text: str | None) -> str | None:
    """``conv-`` + first 16 hex of SHA-256(system ␟ first user ␟ first assistant), texts cleaned (§3.4);
    the assistant part is left out when there is none.

    None when there is neither user nor assistant text: a key made of the system prompt alone would put
    every call of an application with that prompt into one conversation.
    """
    system = clean_text(system_text) or ""
    user = clean_text(first_user_text) or ""
    assistant = clean_text(first_assistant_text)
    if not user and not assistant:
        return None
    parts = [system, user]
    if assistant:
        parts.append(assistant)
    digest = hashlib.sha256(UNIT_SEP.join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return "conv-" + digest[:16]


def _squash(text: str) -> str:
    """Whitespace removed entirely: gateways that translate between wire APIs join text blocks with
    ``\\n`` or with nothing, and re-indent nothing else, so this keeps the two legs of one hop equal."""
    return "".join(text.split())


def output_fingerprint(call: Call) -> str | None:
    """SHA-256 hex of the visible output (text, else refusal) and the tool calls' names and canonical
    arguments, in order; None when the response produced none of these. Model, wire API and ids are left
    out on purpose: a gateway rewrites all three."""
    text = call.assistant_text or call.refusal or ""
    squashed = _squash(text)
    if not squashed and not call.tool_calls:
        return None
    parts = [squashed]
    parts.extend(f"{tc.name}{_RECORD_SEP}{canonical_json(tc.arguments)}" for tc in call.tool_calls)
    return hashlib.sha256(UNIT_SEP.join(parts).encode("utf-8", "surrogatepass")).hexdigest()
