"""Session resolution (agents-and-turns.md §3, §7): aliases, sub-agent linking, tentative conversations.

The worker gives each call the session id its own request and response imply. The assembler adds what
needs other calls:

* **Sub-agents by prompt match** (§7): a call that would open a new session and whose first user text
  equals a long string argument of another session's unresolved tool call becomes a sub-agent of that
  session; its own session key is aliased to the parent so its later calls follow. Claude Code
  sub-agents share the parent's session id and are only *named* here (``Task:<subagent_type>``).
* **Codex parent hints**: ``x_parent_hint`` is the parent's native session id.
* **Tentative conversations** (§3.3): generic text-only calls wait in a group until a call with an
  assistant message in its history confirms the key, else they stay plain calls.
* **Context deltas** (§12.6) between consecutive main-agent calls of a session, in request order.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from dataclasses import dataclass, field

from heron_core import ids
from heron_core.config import Config
from heron_core.records import Call
from heron_core.wire.common import preview

from .state import TOKEN_FIELDS, Alias, Member, SessionState, TentGroup, to_us
from .tools import ToolLinker, first_text_keys, spawn_name

PREVIEW_CHARS = 500
MAIN_SERIES_KEEP = 64
"""Main-agent calls remembered per session for context deltas (only the latest ones are ever needed)."""


@dataclass(slots=True)
class Resolution:
    kind: str  # 'none' | 'tentative' | 'session'
    session: SessionState | None = None
    confirmed: list[Member] = field(default_factory=list)  # tentative calls to place first


def make_member(call: Call) -> Member:
    """The compact turn/session view of a released call (after its session is resolved)."""
    end = next((t for t in (call.response_end, call.request_end, call.request_start) if t is not None), 0.0)
    main = call.subagent is None and not call.is_auxiliary
    tokens = tuple(getattr(call, f) for f in TOKEN_FIELDS)
    return Member(
        call_id=call.call_id,
        source_id=call.source_id,
        start_us=to_us(call.request_start) or 0,
        end_us=to_us(end) or 0,
        request_start=call.request_start or 0.0,
        end=end,
        main=main,
        subagent=call.subagent,
        agent_key=agent_key(call),
        auxiliary=call.is_auxiliary,
        user_start=main and call.x_user_turn_start and call.attempt <= 1,
        terminal=main and call.x_terminal,
        has_response=call.response_start is not None or call.status_code is not None,
        model=call.model,
        attempt=call.attempt,
        tokens=tokens,
        cost_usd=call.cost_usd,
        has_usage=call.input_total_tokens is not None or call.output_tokens is not None,
        finish=call.finish,
        finish_reason_raw=call.finish_reason_raw,
        error=call.error,
        wire_api=call.wire_api,
        server=call.server,
        client_ip=call.client_ip,
        process=call.process,
        ttft_ms=call.ttft_ms,
        user_preview=preview(call.user_text, PREVIEW_CHARS),
        answer_preview=preview(call.assistant_text, PREVIEW_CHARS) if main else None,
        input_total=call.input_total_tokens,
        agent_kind=call.agent_kind,
        native_session_id=call.native_session_id,
        session_source=call.session_source,
        session_id=call.session_id,
        parent_tool_call_id=call.parent_tool_call_id,
    )


def agent_key(call: Call) -> str:
    """Which agent of a session issued a call: '' for the main agent, else the spawning tool call id (or
    the sub-agent's name when the spawn is unknown). Scopes tool results and planner loops."""
    if call.subagent is None:
        return ""
    return call.parent_tool_call_id or call.subagent


class SessionBook:
    """Sessions, aliases and tentative groups of all sources (session ids are source-scoped)."""

    def __init__(self, cfg: Config, counters: Counter, tools: ToolLinker) -> None:
        self.cfg = cfg
        self.counters = counters
        self.tools = tools
        self.sessions: dict[str, SessionState] = {}
        self.aliases: dict[str, Alias] = {}
        self.tentative: dict[str, TentGroup] = {}

    # --- resolution ----------------------------------------------------------------------------------

    def resolve(self, call: Call) -> Resolution:
        """Decide the session of a released call and rewrite its session/sub-agent fields accordingly."""
        sid = call.session_id
        if sid is None or call.agent_kind is None:
            return Resolution("none")
        al = self.aliases.get(sid)
        if al is not None:
            self._apply(call, al)
            return Resolution("session", self._get(al.parent, call, redirected=True))
        if call.x_parent_hint and call.subagent is not None:
            psid = ids.session_id(call.source_id, call.agent_kind, call.x_parent_hint)
            if psid != sid:
                al = self.aliases[sid] = Alias(psid, call.subagent, None)
                self._apply(call, al)
                return Resolution(
                    "session", self._get(psid, call, redirected=True, native=call.x_parent_hint)
                )
        s = self.sessions.get(sid)
        if s is not None:
            self._name_claude_subagent(call, s)
            self._adopt_identity(s, call)
            return Resolution("session", s)
        parent = self._prompt_match(call)
        if parent is not None:
            return Resolution("session", parent)
        if call.x_tentative:
            return Resolution("tentative")
        group = self.tentative.pop(sid, None)
        s = self._get(sid, call)
        self._name_claude_subagent(call, s)
        return Resolution("session", s, group.members if group is not None else [])

    def _apply(self, call: Call, al: Alias) -> None:
        call.session_id = al.parent
        if not call.is_auxiliary:
            call.subagent = al.name
            call.parent_tool_call_id = al.parent_tool_call_id
        call.x_user_turn_start = False
        call.x_terminal = False

    def _get(self, sid: str, call: Call, redirected: bool = False, native: str | None = None) -> SessionState:
        s = self.sessions.get(sid)
        if s is None:
            s = self.sessions[sid] = SessionState(
                sid,
                call.source_id,
                call.agent_kind,
                native if redirected else call.native_session_id,
                call.session_source,
                identity_from_main=not redirected and call.subagent is None,
            )
            self.counters["sessions_created"] += 1
        elif not redirected:
            self._adopt_identity(s, call)
        return s

    def _adopt_identity(self, s: SessionState, call: Call) -> None:
        """A session first seen through a sub-agent takes its identity from its first main call."""
        if s.identity_from_main or call.subagent is not None or call.is_auxiliary:
            return
        s.agent_kind, s.native_session_id, s.session_source = (
            call.agent_kind,
            call.native_session_id,
            call.session_source,
        )
        s.identity_from_main = True
        s.dirty = True

    def _name_claude_subagent(self, call: Call, s: SessionState) -> None:
        """claude-cli sub-agents share the parent's session id: name them from the parent's unresolved
        ``Task``/``Agent`` call whose ``prompt`` equals their first user text (§7), else ``task``."""
        if call.agent_kind != "claude-cli" or call.subagent != "task":
            return
        keys = first_text_keys(call)
        for h, _ in keys:
            hit = s.sub_names.get(h)
            if hit is not None:
                call.subagent, call.parent_tool_call_id = hit
                return
        start = to_us(call.request_start) or 0
        for h, _ in keys:
            rec = self.tools.find_spawn(call.source_id, h, start, same_session=s.session_id)
            if rec is not None:
                hit = (spawn_name(rec), rec.tool_call_id)
                s.sub_names[h] = hit
                call.subagent, call.parent_tool_call_id = hit
                return

    def _prompt_match(self, call: Call) -> SessionState | None:
        """§7 "all": a would-be new session whose first user text equals a long string argument of an
        unresolved tool call of another session of the source → that session's sub-agent."""
        start = to_us(call.request_start) or 0
        for h, length in first_text_keys(call):
            if length < self.cfg.subagent_min_prompt_chars:
                continue
            rec = self.tools.find_spawn(call.source_id, h, start, other_than=call.session_id)
            if rec is None or rec.session_id not in self.sessions:
                continue
            al = Alias(rec.session_id, spawn_name(rec), rec.tool_call_id)
            self.aliases[call.session_id] = al  # type: ignore[index]
            self._apply(call, al)
            return self.sessions[rec.session_id]
        return None

    # --- tentative conversations (§3.3) ----------------------------------------------------------------

    def hold_tentative(self, m: Member) -> TentGroup:
        g = self.tentative.get(m.session_id)  # type: ignore[arg-type]
        if g is None:
            g = self.tentative[m.session_id] = TentGroup(m.session_id, m.source_id)  # type: ignore[index]
        g.members.append(m)
        g.last_end_us = max(g.last_end_us, m.end_us)
        return g

    def expire_tentative(self, sid: str, now: float) -> bool:
        g = self.tentative.get(sid)
        if g is None or g.last_end_us + int(self.cfg.turn_idle_timeout_s * 1e6) > now:
            return False
        del self.tentative[sid]
        return True

    # --- context deltas (§12.6) ----------------------------------------------------------------------

    @staticmethod
    def context_delta(s: SessionState, m: Member) -> tuple[str, int] | None:
        """Set ``m.context_delta`` against the previous main-agent call of the session (request order);
        returns ``(previous call id, previous input)`` when both inputs are known."""
        series = s.main_series
        i = bisect_left(series, m.key, key=lambda e: e[0])
        prev = series[i - 1] if i > 0 else None
        insort(series, (m.key, m.input_total, m.call_id), key=lambda e: e[0])
        if len(series) > MAIN_SERIES_KEEP:
            del series[0]
        if prev is None or prev[1] is None or m.input_total is None:
            m.context_delta = None
            return None
        m.context_delta = m.input_total - prev[1]
        return prev[2], prev[1]
