"""Per-call agent classification (agents-and-turns.md §2–§8), run in the decode worker right after
``decode_call``.

It is stateless: everything is decided from the one exchange and its decoded call, so workers can run it
in parallel and the assembler (which holds the state: sessions, turns, tentative conversations, hops)
only has to read the fields set here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from heron_core import ids
from heron_core.records import Call, Exchange

from .fingerprint import conversation_key, output_fingerprint
from .history import FirstAssistant, first_assistant, is_chat_shaped
from .predicates import is_terminal_finish, is_user_turn_start
from .profiles import auxiliary_kind, claude_is_subagent, codex_subagent_name, detect_profile
from .sessions import WireSession, claude_session, codex_session, gemini_session, opencode_session

# Which fallbacks each profile may use after its wire sources (§3.1 priority lists).
_USES_CONVERSATION = frozenset(("gemini-cli", "opencode", "openclaw", "hermes", "generic"))


def _wire_session(kind: str | None, call: Call, ex: Exchange) -> WireSession:
    if kind == "claude-cli":
        return claude_session(call, ex)
    if kind == "codex-cli":
        return codex_session(call, ex)
    if kind == "gemini-cli":
        return gemini_session(call)
    if kind == "opencode":
        return opencode_session(ex)
    return WireSession()


def _conversation(call: Call, first: FirstAssistant | None) -> str | None:
    """§3.3 key, only when the first assistant message has no tool call (else the anchor names it)."""
    if first is None or first.anchor is not None:
        return None
    return conversation_key(call.x_system_text, call.x_first_user_text, first.text)


def classify_call(call: Call, ex: Exchange, counters: Counter) -> None:
    """Set the agent, session, turn-boundary, sub-agent, auxiliary and fingerprint fields of ``call``.

    Never raises: the request and response are untrusted, and one odd body must not stop the worker (an
    unexpected error is counted ``extract_errors`` and the call keeps what was set so far).
    """
    try:
        _classify(call, ex, counters)
    except Exception:  # noqa: BLE001 - untrusted input
        counters["extract_errors"] += 1


def _classify(call: Call, ex: Exchange, counters: Counter) -> None:
    kind = detect_profile(call, ex)
    wire = _wire_session(kind, call, ex)
    first: FirstAssistant | None = None
    native, source = wire.native_session_id, wire.session_source
    if native is None and (kind is not None or is_chat_shaped(call)):
        first = first_assistant(call, counters)
        if first is not None and first.anchor is not None:
            native, source = first.anchor, "tool_anchor"
        elif kind is None or kind in _USES_CONVERSATION:
            key = _conversation(call, first)
            if key is not None:
                native, source = key, "conversation"
        if kind is None and native is not None:
            kind = "generic"

    call.agent_kind = kind
    call.native_session_id = native if kind is not None else None
    call.session_source = source if kind is not None else None
    call.session_id = ids.session_id(call.source_id, kind, native) if kind and native else None
    call.native_turn_id = wire.native_turn_id
    call.x_tentative = bool(kind == "generic" and source == "conversation" and first is not None
                            and not first.from_history)

    # sub-agents and auxiliary calls (§7, §8): auxiliary first, an auxiliary call is never a sub-agent
    aux = auxiliary_kind(kind, call, wire.subagent)
    call.is_auxiliary = aux is not None
    call.auxiliary_kind = aux
    call.subagent = None
    call.x_parent_hint = None
    if kind == "codex-cli":
        call.x_parent_hint = wire.parent_hint
        if aux is None:
            call.subagent = codex_subagent_name(wire.subagent, wire.parent_hint)
    elif kind == "claude-cli" and aux is None and claude_is_subagent(call):
        call.subagent = "task"  # the assembler names it by prompt match (Task/Agent subagent_type)

    # turn boundaries (§4, §5): only main-agent calls start or end turns
    main = call.subagent is None and not call.is_auxiliary
    call.x_user_turn_start = main and is_user_turn_start(call)
    call.x_terminal = main and is_terminal_finish(call)
    call.x_output_fingerprint = output_fingerprint(call)

    if kind is not None:
        counters[f"calls_by_agent_kind.{kind}"] += 1
        if native is None:
            counters["session_unresolved"] += 1
    if call.is_auxiliary:
        counters["calls_auxiliary"] += 1
    if call.subagent is not None:
        counters["calls_subagent"] += 1


def request_session_id(ex: Exchange, wire_api: str, operation: str, req: Any) -> str | None:
    """The session id ``classify_call`` will give this call, when the request alone determines it
    (§2: ``CallStarted`` carries it so the assembler knows which sessions have calls in flight).

    Known from the request: header, metadata and envelope ids, and a tool anchor already in the history.
    None otherwise (first call of a conversation, conversation fingerprints, which need the decoded
    texts, and calls no named profile claims without a history anchor). Whenever it is not None it
    equals the final ``session_id``: every input it reads is one ``classify_call`` reads the same way.
    """
    try:
        call = Call(call_id=ex.exchange_id, source_id=ex.source_id, wire_api=wire_api, operation=operation,
                    x_request=req)
        kind = detect_profile(call, ex)
        native = _wire_session(kind, call, ex).native_session_id
        if native is None:
            first = first_assistant(call)
            if first is None or not first.from_history or first.anchor is None:
                return None
            native = first.anchor
            kind = kind or "generic"
        if kind is None:
            return None
        return ids.session_id(ex.source_id, kind, native)
    except Exception:  # noqa: BLE001 - untrusted input; the final classification still runs
        return None
