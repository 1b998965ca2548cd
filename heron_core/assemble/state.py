"""The assembler's in-memory records (agents-and-turns.md §9–§12).

Nothing here keeps a ``Call``: once a call is released its row is written and only the compact
``Member`` (what turns, sessions and insights still need) and ``ToolRec`` (what later result linking
still needs) stay in memory, so a long capture costs memory per *open* turn, not per call.

Time inside the assembler is integer microseconds (``*_us``) like the rest of the engine, so sums such as
``response_end + fold.wait_s`` never round differently between runs; float epoch seconds are kept beside
them only where a stored row reports them unchanged.
"""

from __future__ import annotations

import heapq
from bisect import insort
from dataclasses import dataclass, field
from typing import Any

from heron_core.records import Call, Process

INF = float("inf")
"""Watermark of a drained source (EndOfSource): every scheduled event is due."""

TOKEN_FIELDS = (
    "input_tokens",
    "input_total_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "output_tokens",
    "total_tokens",
)

# Event kinds, in the order they run when due at the same instant: releases first (a call that ends at
# the very instant a turn would close is then already a member), then turn checks, then expiries.
EV_RELEASE = 0
EV_DROP = 1
EV_CHECK = 2
EV_TENTATIVE = 3


def to_us(t: float | None) -> int | None:
    """Epoch seconds (as the wire stage made them from µs) → the exact integer µs again."""
    return None if t is None else int(t * 1_000_000 + 0.5)


def to_s(us: float) -> float:
    return us / 1_000_000


def flow_of(call: Call) -> tuple:
    """Connection identity for "calls of one flow never fold" (§9.6). Without a 5-tuple (eBPF) the
    call is its own flow: two legs of one hop are never the same TLS connection."""
    if call.client_ip is None or call.server_ip is None:
        return (call.source_id, "call", call.call_id)
    return (call.source_id, call.client_ip, call.client_port, call.server_ip, call.server_port)


def call_end_us(call: Call) -> int:
    """When the call was over as far as the capture knows: response end, else request end/start."""
    for t in (call.response_end, call.request_end, call.request_start):
        if t is not None:
            return to_us(t)  # type: ignore[return-value]
    return 0


# --- calls waiting for release (§9) --------------------------------------------------------------------


@dataclass(slots=True)
class PendingCall:
    """A finished call waiting ``fold.wait_s`` (and possibly a hold) before it is released."""

    call: Call
    start_us: int
    end_us: int
    release_us: int  # end + fold.wait_s (or the source clock for a late arrival)
    deadline_us: int  # the latest release: holds for a possible outer leg end here
    flow: tuple
    keys: tuple[tuple, ...]  # content-match keys (folding.content_keys)
    deadline_pushed: bool = False
    has_inner: bool = False


@dataclass(slots=True)
class Unreleased:
    """A call the assembler knows about but has not released: in flight (``CallStarted``) or pending.

    ``hint`` is the session id the request alone determined (when ``CallStarted`` carries one); a
    pending call knows its worker session id once it has finished."""

    call_id: str
    start_us: int | None
    hint: str | None = None
    pending: PendingCall | None = None


@dataclass(slots=True)
class Recent:
    """A released call kept ~10 s of event time for folding against calls released after it."""

    call_id: str
    source_id: str
    flow: tuple
    server: str | None
    start_us: int
    end_us: int
    keys: tuple[tuple, ...]
    role: str | None
    has_inner: bool
    ttft_ms: float | None
    e2e_ms: float | None


# --- turn members, tools, turns ---------------------------------------------------------------------


@dataclass(slots=True)
class ToolRec:
    """One client tool call (a ``tool_calls`` row) while its result or its turn may still change it."""

    call_id: str
    tool_call_id: str
    source_id: str
    session_id: str | None
    subagent: str | None
    agent_key: str
    seq: int
    name: str
    sig: str  # name + '#' + SHA-256(canonical arguments)[:16] (planner loops)
    args_preview: str
    issued_at: float | None
    issued_us: int
    spawn: tuple[tuple[str, str], ...] = ()  # (sha1 of a long string argument, argument name)
    subagent_type: str | None = None
    status: str = "pending"
    result_call_id: str | None = None
    result_at: float | None = None
    wait_ms: float | None = None
    turn_id: str | None = None
    turn: Any = None  # FinalTurn once finalized (while retained)


@dataclass(slots=True)
class Member:
    """What a released call contributes to its turn and session (no payload)."""

    call_id: str
    source_id: str
    start_us: int
    end_us: int
    request_start: float
    end: float
    main: bool
    subagent: str | None
    agent_key: str
    auxiliary: bool
    user_start: bool
    terminal: bool
    has_response: bool
    model: str | None
    attempt: int
    tokens: tuple[int | None, ...]
    cost_usd: float | None
    has_usage: bool
    finish: str | None
    finish_reason_raw: str | None
    error: dict[str, Any] | None
    wire_api: str
    server: str | None
    client_ip: str | None
    process: Process | None
    ttft_ms: float | None
    user_preview: str | None
    answer_preview: str | None
    input_total: int | None
    agent_kind: str | None = None
    native_session_id: str | None = None
    session_source: str | None = None
    session_id: str | None = None
    parent_tool_call_id: str | None = None
    context_delta: int | None = None
    tools: list[ToolRec] = field(default_factory=list)
    insight_keys: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[int, str]:
        return (self.start_us, self.call_id)


@dataclass(slots=True)
class FinalTurn:
    """A finalized turn, kept (with its members) while late calls and late tool results may amend it."""

    turn_id: str
    session_id: str
    anchor_id: str
    members: list[Member]
    status: str
    end_reason: str
    bound_key: tuple  # members have key <= bound_key (inclusive) or < bound_key
    bound_incl: bool
    insight_keys: dict[str, str] = field(default_factory=dict)  # dedupe_key -> kind

    @property
    def start_key(self) -> tuple[int, str]:
        return self.members[0].key

    @property
    def end_us(self) -> int:
        return max(m.end_us for m in self.members)

    def covers(self, key: tuple[int, str]) -> bool:
        if key < self.start_key:
            return False
        return key <= self.bound_key if self.bound_incl else key < self.bound_key


# --- sessions ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SessionAgg:
    """Running totals for the §6.3 row (everything except the turn list itself)."""

    first_key: tuple | None = None
    first_start: float | None = None
    last_end: float | None = None
    server: str | None = None
    client_ip: str | None = None
    process: Process | None = None
    call_count: int = 0
    auxiliary_call_count: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    cost_complete: bool = True
    models: dict[str, tuple] = field(default_factory=dict)  # name -> first key
    subagents: dict[str, tuple] = field(default_factory=dict)
    turn_counts: dict[str, int] = field(default_factory=dict)  # status -> finalized turns
    first_turn: tuple | None = None  # (start_key, turn_id, user preview)
    last_turn: tuple | None = None
    tool_call_count: int = 0
    tool_error_count: int = 0
    insight_keys: set[str] = field(default_factory=set)


@dataclass(slots=True)
class SessionState:
    session_id: str
    source_id: str
    agent_kind: str | None
    native_session_id: str | None
    session_source: str | None
    identity_from_main: bool = False
    open: list[Member] = field(default_factory=list)  # unfinalized members, sorted by key
    open_by_id: dict[str, Member] = field(default_factory=dict)
    finals: list[FinalTurn] = field(default_factory=list)  # retained, sorted by start key
    final_by_call: dict[str, FinalTurn] = field(default_factory=dict)
    final_bound: tuple | None = None
    final_incl: bool = True
    pending_tools: dict[tuple[str, str], ToolRec] = field(default_factory=dict)
    sub_names: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    main_series: list[tuple[tuple, int | None]] = field(default_factory=list)
    agg: SessionAgg = field(default_factory=SessionAgg)
    check_at: int | float | None = None
    dirty: bool = True

    def insert_open(self, m: Member) -> None:
        insort(self.open, m, key=lambda x: x.key)
        self.open_by_id[m.call_id] = m


@dataclass(slots=True)
class Alias:
    """A sub-agent's own session key redirected to its parent session (§7)."""

    parent: str
    name: str
    parent_tool_call_id: str | None


@dataclass(slots=True)
class TentGroup:
    """Calls of a generic text-only conversation not confirmed yet (§3.3), in release order."""

    session_id: str
    source_id: str
    members: list[Member] = field(default_factory=list)
    last_end_us: int = 0


# --- sources and the event queue ------------------------------------------------------------------------


@dataclass
class SourceState:
    """Per-source event time and everything that is scheduled against it."""

    source_id: str
    wm: float = 0  # µs; INF once drained
    clock: float = 0  # the watermark already processed: a late record is scheduled no earlier
    final_us: float = INF  # last event time of the data (set at drain: idle vs drain)
    max_data_us: int = 0
    next_emit_us: float = 0  # event time of the next session-row write
    drained: bool = False
    heap: list = field(default_factory=list)
    pending: dict[str, PendingCall] = field(default_factory=dict)
    unreleased: dict[str, Unreleased] = field(default_factory=dict)
    starts: list[tuple[int, str]] = field(default_factory=list)  # sorted (start_us, call_id) of unreleased
    waiters: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # blocker -> [(kind, id)]

    def push(self, at: float, kind: int, tiebreak: tuple, ident: str) -> None:
        heapq.heappush(self.heap, (at, kind, tiebreak, ident))

    def add_unreleased(self, u: Unreleased) -> None:
        old = self.unreleased.get(u.call_id)
        if old is not None:
            if old.start_us is not None and u.start_us is None:
                u.start_us = old.start_us
            if u.hint is None:
                u.hint = old.hint
            self._drop_start(old)
        self.unreleased[u.call_id] = u
        if u.start_us is not None:
            insort(self.starts, (u.start_us, u.call_id))

    def remove_unreleased(self, call_id: str) -> None:
        old = self.unreleased.pop(call_id, None)
        if old is not None:
            self._drop_start(old)

    def _drop_start(self, u: Unreleased) -> None:
        if u.start_us is None:
            return
        from bisect import bisect_left

        i = bisect_left(self.starts, (u.start_us, u.call_id))
        if i < len(self.starts) and self.starts[i] == (u.start_us, u.call_id):
            del self.starts[i]
