"""Agent profiles: detection (agents-and-turns.md §3.1), sub-agents (§7) and auxiliary calls (§8).

Named agents are recognized by what they always send: a User-Agent or ``originator`` header for the CLIs,
and a characteristic set of tool names for OpenClaw and Hermes (which use ordinary SDKs and no telling
header). ``generic`` is not decided here: it needs the conversation history (classify.py).
"""

from __future__ import annotations

import re
from typing import Any

from heron_core.records import Call, Exchange
from heron_core.wire.common import as_int, as_list

from .history import inner_request
from .sessions import generation_config, text

OPENCLAW_TOOLS = frozenset(("sessions_spawn", "sessions_yield", "subagents", "sessions_list",
                            "sessions_history", "sessions_send", "session_status"))
HERMES_TOOLS = frozenset(("skill_view", "skill_manage", "skills_list", "delegate_task", "session_search",
                          "cronjob"))
OPENCLAW_SUMMARIZER_PREFIX = "You are a context summarization assistant."
CLAUDE_SECURITY_MONITOR = "You are a security monitor for autonomous AI coding agents"
CLAUDE_SPAWN_TOOLS = frozenset(("Task", "Agent"))

# "summarizing conversations", "summarize the conversation", "a summary of the conversation so far",
# "conversation summary": Claude Code's compaction prompts.
_SUMMARIZE = re.compile(
    r"summar(?:y|ies|i[sz]e[sd]?|i[sz]ing|i[sz]ation)\b[^.\n]{0,60}?\bconversations?\b"
    r"|\bconversations?\b[^.\n]{0,20}?\bsummar",
    re.IGNORECASE,
)


def tool_names(call: Call) -> list[str]:
    """Names of the tools the request defines: the decoder's ``x_tool_definitions``, else read from the
    raw request (``name``, ``function.name`` or Gemini ``functionDeclarations``)."""
    names = [d.get("name") for d in call.x_tool_definitions if isinstance(d, dict)]
    out = [n for n in names if isinstance(n, str) and n]
    if out:
        return out
    req = inner_request(call)
    for t in as_list(req.get("tools") if req is not None else None):
        if not isinstance(t, dict):
            continue
        decls = t.get("functionDeclarations") or t.get("function_declarations")
        if isinstance(decls, list):
            out.extend(d["name"] for d in decls if isinstance(d, dict) and isinstance(d.get("name"), str))
            continue
        fn = t.get("function")
        fn = fn if isinstance(fn, dict) else t
        if isinstance(fn.get("name"), str):
            out.append(fn["name"])
    return out


def has_tools(call: Call) -> bool:
    """The request defines at least one tool ("tools absent or []" is the negation)."""
    if tool_names(call):
        return True
    req = inner_request(call)
    return bool(as_list(req.get("tools"))) if req is not None else False


def _ua(ex: Exchange) -> str:
    return (ex.header("user-agent") or "").strip()


def detect_profile(call: Call, ex: Exchange) -> str | None:
    """The first named profile of §3.1 whose detection rule matches, or None (``generic`` is decided by
    the caller from the conversation history)."""
    ua = _ua(ex)
    if ua.startswith("claude-cli/"):
        return "claude-cli"
    originator = (ex.header("originator") or "").strip()
    if originator.startswith("codex") or ua.startswith(("codex_", "codex-")):
        return "codex-cli"
    if ua.startswith("GeminiCLI/"):
        return "gemini-cli"
    if ua.startswith("opencode/"):
        return "opencode"
    names = set(tool_names(call))
    if len(names & OPENCLAW_TOOLS) >= 2:
        return "openclaw"
    system = (call.x_system_text or "").lstrip()
    if system.startswith(OPENCLAW_SUMMARIZER_PREFIX) and not has_tools(call):
        return "openclaw"
    if len(names & HERMES_TOOLS) >= 2:
        return "hermes"
    return None


# --- auxiliary calls (§8) ------------------------------------------------------------------------------


def _max_tokens(call: Call) -> int | None:
    req = call.x_request
    return as_int(req.get("max_tokens")) if isinstance(req, dict) else None


def auxiliary_kind(kind: str | None, call: Call, codex_subagent: str | None = None) -> str | None:
    """§8 table, first match per profile; None when the call is not auxiliary."""
    if kind == "claude-cli":
        system = call.x_system_text or ""
        if CLAUDE_SECURITY_MONITOR in system:
            return "security_monitor"
        mt = _max_tokens(call)
        if mt is not None and mt <= 1:
            return "probe"
        if not has_tools(call):
            return "summarizer" if _SUMMARIZE.search(system) else "title"
        return None
    if kind == "codex-cli":
        return "summarizer" if (codex_subagent or "").lower() == "compact" else None
    if kind == "openclaw":
        return None if has_tools(call) else "summarizer"
    if kind == "gemini-cli":
        mime = generation_config(call).get("responseMimeType")
        if not has_tools(call) and isinstance(mime, str) and mime.strip().lower() == "application/json":
            return "other"
    return None


# --- sub-agents (§7) -----------------------------------------------------------------------------------


def claude_is_subagent(call: Call) -> bool:
    """Claude Code sub-agents get the tool set of their type, never the spawning tool (sub-agents cannot
    spawn sub-agents), while the main agent always has ``Task`` (older) or ``Agent`` (newer)."""
    names = tool_names(call)
    return bool(names) and not (CLAUDE_SPAWN_TOOLS & set(names))


def codex_subagent_name(subagent: Any, parent_hint: str | None) -> str | None:
    """Sub-agent name from the header/metadata value (``compact`` is auxiliary, not a sub-agent); a parent
    thread id without a name still marks a sub-agent."""
    name = text(subagent)
    if name is not None and name.lower() == "compact":
        return None
    if name is None and parent_hint is not None:
        return "subagent"
    return name
