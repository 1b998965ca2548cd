"""The assembler: the single, stateful consumer of the decode workers' messages (agents-and-turns.md §9–§12).

**Event time only.** Nothing is decided when a message arrives: arrivals only record facts and
schedule events at times computed from the data (``response_end + fold.wait_s`` for a release, a
turn's due time, a tentative group's expiry). A ``Watermark`` runs every event of its source up to it,
in ``(time, kind, data key)`` order, and each event only looks at what had happened by its own time. So
the stored records do not depend on the arrival order of messages between watermarks, on the heartbeat
cadence or on the worker count — only a record that arrives after the watermark passed its completion
time (a *late* record) is handled at the current watermark instead (§10.3 amendments).

``EndOfSource`` first runs the source up to the last event time seen in its data (so "idle" and "drain"
do not depend on where the last heartbeat fell), drops in-flight calls that will never finish, then
runs everything else as drain (watermark +∞).

Per released call, in order: folding (§9), retry chain (§12.2), session and sub-agent resolution
(§3, §7), context delta, call row, tool-result linking (§11), turn membership (§10), insights (§12).
"""

from __future__ import annotations

import heapq
from collections import Counter
from typing import Any

from heron_core import ids
from heron_core.config import Config
from heron_core.messages import CallStarted, ExchangeFinished
from heron_core.records import Call, EndOfSource, Watermark

from .folding import HOP_COLUMNS, RECENT_S, SECONDARY_ROLES, Folder, content_keys
from .insights import SubstitutionBook, context_growth, retry_storm, stalled_tool
from .keeper import TurnKeeper
from .retries import RetryTracker
from .rows import Sink, agg_add_call, session_row
from .sessions import SessionBook, make_member
from .state import (
    EV_CHECK,
    EV_DROP,
    EV_RELEASE,
    EV_TENTATIVE,
    INF,
    Member,
    PendingCall,
    SessionState,
    SourceState,
    Unreleased,
    call_end_us,
    flow_of,
    to_us,
)
from .tools import ToolLinker

TENTATIVE_COLUMNS = (
    "agent_kind",
    "native_session_id",
    "session_source",
    "session_id",
    "context_delta_tokens",
)
SESSION_EMIT_US = 2_000_000
"""Session rows of changed sessions are written at most every 2 s of event time (and at drain)."""
_ANY = object()  # an unreleased call whose session is not known yet: it may join any session
_NONE = object()  # an unreleased call that will join no turn


class Assembler:
    """Consumes ``ExchangeFinished``/``CallStarted``/``Watermark``/``EndOfSource`` messages.

    ``writer`` is a ``StoreWriter`` (None for a dry run). Live view for the front ends: ``open_turns()``
    and ``in_flight()``.
    """

    def __init__(self, writer: Any, counters: Counter | None = None, cfg: Config | None = None) -> None:
        self.writer = writer
        self.cfg = cfg = cfg if cfg is not None else Config()
        self.counters = counters if counters is not None else Counter()
        self.sink = Sink(writer)
        self.wait_us = round(cfg.fold_wait_s * 1e6)
        self.hold_us = int(RECENT_S * 1e6)
        self.idle_us = round(cfg.turn_idle_timeout_s * 1e6)
        self.retain_us = round(
            (max(cfg.tcp_pending_timeout_s, cfg.tcp_idle_timeout_s) + 2 * cfg.turn_idle_timeout_s) * 1e6
        )
        self.sources: dict[str, SourceState] = {}
        self._in_flight: dict[str, CallStarted] = {}
        self.folder = Folder(cfg, self.counters)
        self.retries = RetryTracker(cfg)
        self.tools = ToolLinker(cfg, self.retain_us)
        self.book = SessionBook(cfg, self.counters, self.tools)
        self.subst = SubstitutionBook(cfg)
        self.keeper = TurnKeeper(
            cfg,
            self.counters,
            self.sink,
            self.tools,
            self.retain_us,
            self._blocker,
            self._schedule,
            self._wait_on,
        )
        self._touched: dict[str, SessionState] = {}
        self._active: dict[str, SessionState] = {}

    # --- messages ------------------------------------------------------------------------------------

    def __call__(self, msg: Any) -> None:
        t = type(msg)
        if t is ExchangeFinished:
            self._finished(msg)
        elif t is CallStarted:
            self._started(msg)
        elif t is Watermark:
            src = self._src(msg.source_id)
            if not src.drained and msg.ts_us > src.wm:
                src.wm = msg.ts_us
                self._pump(src)
        elif t is EndOfSource:
            self._end(msg.source_id)

    def _src(self, source_id: str) -> SourceState:
        src = self.sources.get(source_id)
        if src is None:
            src = self.sources[source_id] = SourceState(source_id)
        return src

    def _started(self, msg: CallStarted) -> None:
        src = self._src(msg.source_id)
        if msg.call_id in src.pending:
            return
        self._in_flight[msg.call_id] = msg
        start = msg.request_start_us or None
        if start is not None:
            src.max_data_us = max(src.max_data_us, start)
        src.add_unreleased(Unreleased(msg.call_id, start, getattr(msg, "session_id", None)))

    def _finished(self, msg: ExchangeFinished) -> None:
        ex, call = msg.exchange, msg.call
        c = self.counters
        c["exchanges"] += 1
        if ex.damage:
            c["damaged_exchanges"] += 1
        self.sink.exchange(ex, call, msg.bodies)
        src = self._src(ex.source_id)
        for t in (ex.request_start, ex.request_end, ex.response_end):
            if t is not None and t > src.max_data_us:
                src.max_data_us = t
        self._in_flight.pop(ex.exchange_id, None)
        if call is None:
            if ex.exchange_id in src.unreleased:  # announced as a call, decoded as none: stop waiting
                end = ex.response_end or ex.request_end or ex.request_start or 0
                at = max(end + self.wait_us, src.clock)
                src.push(at, EV_DROP, (at,), ex.exchange_id)
            return
        c["calls_received"] += 1
        c[f"calls_by_wire_api.{call.wire_api}"] += 1
        start_us = to_us(call.request_start)
        end_us = call_end_us(call)
        rel = max(end_us + self.wait_us, src.clock)
        pc = PendingCall(
            call, start_us or 0, end_us, rel, rel + self.hold_us, flow_of(call), content_keys(call)
        )
        src.pending[call.call_id] = pc
        # hint stays what CallStarted said: the in-flight view must not depend on when this arrived
        src.add_unreleased(Unreleased(call.call_id, start_us, None, pc))
        self.folder.add_pending(pc)
        src.push(rel, EV_RELEASE, (rel, call.call_id), call.call_id)

    def _end(self, source_id: str) -> None:
        src = self._src(source_id)
        if src.drained:
            return
        final = max(src.wm, src.max_data_us)
        src.wm = final
        self._pump(src)
        for cid, u in list(src.unreleased.items()):
            if u.pending is None:  # announced, never finished: it never will
                src.remove_unreleased(cid)
                self._in_flight.pop(cid, None)
                self._wake(src, cid, final)
        src.final_us = final
        src.drained = True
        src.wm = INF
        self._pump(src)
        for s in list(self.book.sessions.values()):
            if s.source_id == source_id and (s.pending_tools or s.finals):
                self.keeper.drain(s)
                self._touch(s)
        self._emit_sessions(True)
        self.sink.flush()

    # --- the event loop --------------------------------------------------------------------------------

    def _pump(self, src: SourceState) -> None:
        heap = src.heap
        while heap and heap[0][0] <= src.wm:
            at, kind, _, ident = heapq.heappop(heap)
            if kind == EV_RELEASE:
                self._release(src, ident, at)
            elif kind == EV_DROP:
                src.remove_unreleased(ident)
                self._wake(src, ident, at)
            elif kind == EV_CHECK:
                s = self.book.sessions.get(ident)
                if s is not None and s.check_at == at:
                    s.check_at = None
                    self._touch(s)
                    self.keeper.check(src, s, at)
            elif kind == EV_TENTATIVE:
                self.book.expire_tentative(ident, at)
        src.clock = max(src.clock, src.wm)
        if src.wm != INF:
            self.folder.evict(src.source_id, src.wm)
        force = src.wm >= src.next_emit_us
        if force:
            src.next_emit_us = src.wm + SESSION_EMIT_US
        self._emit_sessions(force)

    def _schedule(self, src: SourceState, s: SessionState, at: float) -> None:
        if s.check_at is None or at < s.check_at:
            s.check_at = at
            src.push(at, EV_CHECK, (s.session_id,), s.session_id)

    def _wait_on(self, src: SourceState, blocker: str, s: SessionState) -> None:
        lst = src.waiters.setdefault(blocker, [])
        if (EV_CHECK, s.session_id) not in lst:
            lst.append((EV_CHECK, s.session_id))

    def _wake(self, src: SourceState, call_id: str, now: float) -> None:
        for kind, ident in src.waiters.pop(call_id, ()):
            if kind == EV_CHECK:
                s = self.book.sessions.get(ident)
                if s is not None:
                    self._schedule(src, s, now)
            else:
                pc = src.pending.get(ident)
                if pc is not None:
                    src.push(now, EV_RELEASE, (pc.release_us, ident), ident)

    def _target(self, u: Unreleased, now: float) -> object:
        """The session an unreleased call will join, as far as was known at ``now``."""
        pc = u.pending
        sessions, aliases = self.book.sessions, self.book.aliases
        if pc is not None and pc.end_us <= now:
            call = pc.call
            if call.hop_role in SECONDARY_ROLES or call.is_auxiliary or call.session_id is None:
                return _NONE
            sid = call.session_id
            if call.x_parent_hint and call.subagent is not None and call.agent_kind:
                sid = ids.session_id(call.source_id, call.agent_kind, call.x_parent_hint)
        elif u.hint is not None:
            sid = u.hint
        else:
            return _ANY
        al = aliases.get(sid)
        if al is not None:
            return al.parent
        return sid if sid in sessions else _ANY

    def _blocker(self, src: SourceState, s: SessionState, thr: int, now: float, due: float) -> str | None:
        """An unreleased call that started by ``thr`` and may belong to session ``s``. A call in flight
        whose session nobody can tell yet blocks only ``turn.idle_timeout_s`` past the due time, so one
        hung request cannot hold every turn of its source until the TCP stage gives up on it."""
        patient = now < due + self.idle_us
        for start, cid in src.starts:
            if start > thr:
                break
            u = src.unreleased.get(cid)
            if u is None:
                continue
            tgt = self._target(u, now)
            if tgt == s.session_id:
                return cid
            if tgt is _ANY and (patient or (u.pending is not None and u.pending.end_us <= now)):
                return cid
        return None

    # --- release ---------------------------------------------------------------------------------------

    def _release(self, src: SourceState, cid: str, now: float) -> None:
        pc = src.pending.get(cid)
        if pc is None:
            return
        if now < pc.deadline_us:
            blocker = self.folder.hold_blocker(pc, src, now)
            if blocker is not None:
                lst = src.waiters.setdefault(blocker, [])
                if (EV_RELEASE, cid) not in lst:
                    lst.append((EV_RELEASE, cid))
                if not pc.deadline_pushed:
                    pc.deadline_pushed = True
                    src.push(pc.deadline_us, EV_RELEASE, (pc.release_us, cid), cid)
                return
        updates = self.folder.decide(pc, now)
        self.sink.update_calls(updates, HOP_COLUMNS)
        del src.pending[cid]
        src.remove_unreleased(cid)
        self.folder.released(pc, now)
        self._wake(src, cid, now)
        self._process(src, pc.call, now)

    def _process(self, src: SourceState, call: Call, now: float) -> None:
        if call.hop_role in SECONDARY_ROLES:
            call.session_id = None  # the hidden leg of a hop joins no session (§9.6)
            self.sink.call(call)
            return
        chain = self.retries.observe(call, now)
        res = self.book.resolve(call)
        m = make_member(call)
        s = res.session
        if res.kind == "tentative":
            call.agent_kind = call.native_session_id = call.session_source = call.session_id = None
            g = self.book.hold_tentative(m)
            src.push(g.last_end_us + self.idle_us, EV_TENTATIVE, (m.session_id,), m.session_id)  # type: ignore[arg-type]
        ctx = None
        if s is not None:
            self._touch(s)
            for tm in res.confirmed:
                self._confirm(src, s, tm, now)
            if m.main:
                ctx = self.book.context_delta(s, m)
                call.context_delta_tokens = m.context_delta
        self.sink.call(call)
        linking = s if s is not None and not m.auxiliary else None
        added: list[dict[str, Any]] = []
        if linking is not None:
            for rec, row in self.tools.resolve(call, linking, m.agent_key, now):
                self.sink.tool_updates([row])
                if rec.status == "error":
                    linking.agg.tool_error_count += 1
                added.append({"tool": rec.name, "bytes": row[7]})
                self.keeper.tool_changed(linking, rec)
                ins = stalled_tool(rec, self.cfg)
                if ins is not None:
                    self.keeper.emit(ins, linking, attach=rec.call_id)
        rows = self.tools.issue(call, m, linking)
        self.sink.tools(rows)
        if s is not None:
            s.agg.tool_call_count += len(rows)
            agg_add_call(s.agg, m)
            if not m.auxiliary:
                self.keeper.place(src, s, m, now)
        if chain is not None:
            self._storm(chain, call, m, s)
        if m.auxiliary:
            return  # auxiliary calls are excluded from insights (§8)
        sub = self.subst.observe(call)
        if sub is not None:
            self.keeper.emit(sub)
        if ctx is not None and s is not None:
            added.sort(key=lambda a: (-(a["bytes"] or 0), a["tool"]))
            ins = context_growth(m, ctx[0], ctx[1], added[:10], self.cfg)
            if ins is not None:
                self.keeper.emit(ins, s, attach=m.call_id)

    def _storm(self, chain: Any, call: Call, m: Member, s: SessionState | None) -> None:
        if call.attempt == 1:
            chain.session_id = s.session_id if s is not None else None
            chain.excluded = m.auxiliary
            return
        ins = retry_storm(chain, chain.session_id)
        if ins is None or chain.excluded:
            return
        first = self.book.sessions.get(chain.session_id) if chain.session_id else None
        if first is not None:
            self._touch(first)
        self.keeper.emit(ins, first, attach=chain.first_id if first is not None else None)

    def _confirm(self, src: SourceState, s: SessionState, tm: Member, now: float) -> None:
        """A tentative call of a conversation that was just confirmed joins its session retroactively."""
        ctx = self.book.context_delta(s, tm) if tm.main else None
        self.sink.update_calls(
            [
                (
                    tm.call_id,
                    tm.agent_kind,
                    tm.native_session_id,
                    tm.session_source,
                    tm.session_id,
                    tm.context_delta,
                )
            ],
            TENTATIVE_COLUMNS,
        )
        agg_add_call(s.agg, tm)
        self.keeper.place(src, s, tm, now)
        if ctx is not None:
            ins = context_growth(tm, ctx[0], ctx[1], [], self.cfg)
            if ins is not None:
                self.keeper.emit(ins, s, attach=tm.call_id)

    # --- sessions and gauges ---------------------------------------------------------------------------

    def _touch(self, s: SessionState) -> None:
        self._touched[s.session_id] = s

    def _emit_sessions(self, write: bool) -> None:
        """Track the sessions with open turns; with ``write``, store the rows of changed sessions."""
        for sid, s in self._touched.items():
            if write and s.dirty:
                s.dirty = False
                if self.writer is not None:
                    self.sink.replace("sessions", session_row(s))
            if s.open:
                self._active[sid] = s
            else:
                self._active.pop(sid, None)
        if write:
            self._touched.clear()
        self.counters["sessions_active"] = len(self._active)
        self.counters["turns_open"] = sum(self.keeper.open_run_count(s) for s in self._active.values())

    # --- live view -------------------------------------------------------------------------------------

    def open_turns(self) -> list[dict[str, Any]]:
        """In-progress turns (every §6.2 field so far, ``status = 'in_progress'``), oldest first."""
        rows: list[dict[str, Any]] = []
        for s in self._active.values():
            rows.extend(self.keeper.live_rows(s))
        return sorted(rows, key=lambda r: (r["start"], r["turn_id"]))

    def in_flight(self) -> list[CallStarted]:
        """Calls whose request was read and whose response has not finished yet."""
        return sorted(self._in_flight.values(), key=lambda c: (c.request_start_us, c.call_id))

    def pending_calls(self) -> list[Call]:
        """Calls whose response finished but that are not released (stored) yet: the folding wait. With
        ``in_flight()`` and the stored rows, every call seen so far (a live list has no gap)."""
        return [pc.call for src in self.sources.values() for pc in src.pending.values()]
