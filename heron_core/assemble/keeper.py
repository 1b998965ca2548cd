"""Turn keeping: members in, finalized turns and their amendments out (agents-and-turns.md §10–§12).

The ``TurnKeeper`` applies the rules of ``turns.py`` in event time. A session's unfinalized members are
kept sorted; its oldest run is finalized once its closure is due and no unreleased call that could
still belong to it is left. Finalized turns stay in memory (members only, no payload) for
``retain_s`` of event time so a late call or a late tool result can amend them; after that only the
session's last boundary is kept, which is enough to recognise a late call.

Insights that hang on a call are written when the call's turn is finalized (their ``turn_id`` is only
known then); until then they live in ``pending`` and count in the live view.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from typing import Any

from heron_core import ids
from heron_core.config import Config

from .insights import Insight, planner_loops, stalled_tool
from .rows import Sink, agg_add_turn, turn_row
from .state import INF, FinalTurn, Member, SessionState, SourceState, ToolRec, to_s
from .tools import ToolLinker
from .turns import KEY_MAX, Closure, anchor_of, closure, split_runs, status_of

Blocker = Callable[[SourceState, SessionState, int, float, float], "str | None"]
Scheduler = Callable[[SourceState, SessionState, float], None]
Waiter = Callable[[SourceState, str, SessionState], None]


class TurnKeeper:
    def __init__(
        self,
        cfg: Config,
        counters: Counter,
        sink: Sink,
        tools: ToolLinker,
        retain_us: int,
        blocker: Blocker,
        schedule: Scheduler,
        wait_on: Waiter,
    ) -> None:
        self.cfg = cfg
        self.counters = counters
        self.sink = sink
        self.tools = tools
        self.retain_us = retain_us
        self.idle_us = round(cfg.turn_idle_timeout_s * 1e6)
        self.grace_us = round(cfg.turn_grace_s * 1e6)
        self.blocker = blocker
        self.schedule = schedule
        self.wait_on = wait_on
        self.seen: set[str] = set()
        self.pending: dict[str, Insight] = {}

    # --- placement -----------------------------------------------------------------------------------

    def place(self, src: SourceState, s: SessionState, m: Member, now: float) -> None:
        """A released member call: into the open region, or (late) into the finalized turn it falls in."""
        s.dirty = True
        self._prune(s, now)
        late = s.final_bound is not None and (
            m.key <= s.final_bound if s.final_incl else m.key < s.final_bound
        )
        if not late:
            s.insert_open(m)
            self.schedule(src, s, now)
            return
        self.counters["calls_late"] += 1
        i = bisect_right([f.start_key for f in s.finals], m.key) - 1
        ft = s.finals[i] if i >= 0 else None
        if ft is not None and ft.covers(m.key):
            self._amend(s, ft, m)
        elif s.finals and m.key > s.finals[0].start_key:
            self._standalone(s, m, i + 1)
        # else: older than every retained turn; the call keeps its session but joins no turn

    def _standalone(self, s: SessionState, m: Member, at: int) -> None:
        """A late call between finalized turns is a run of its own (bounded by their boundaries)."""
        nxt = s.finals[at] if at < len(s.finals) else None
        if m.terminal:
            reason = "terminal"
        elif nxt is not None and any(x.user_start for x in nxt.members[:1]):
            reason = "interrupted"
        else:
            reason = "idle"
        tid = ids.turn_id(s.session_id, m.call_id)
        ft = FinalTurn(tid, s.session_id, m.call_id, [m], status_of([m], reason), reason, m.key, True)
        s.finals.insert(at, ft)
        self._finish(s, ft, [m], now_missing=False)

    def _amend(self, s: SessionState, ft: FinalTurn, m: Member) -> None:
        """§10.3: a late call inside a finalized turn joins it (never splitting it) and the turn is
        re-emitted; its anchor, and therefore its id, stay as they were."""
        keys = [x.key for x in ft.members]
        ft.members.insert(bisect_right(keys, m.key), m)
        if ft.bound_incl and ft.bound_key[1] == KEY_MAX:  # idle bound moves with the new activity
            ft.bound_key = (max(x.end_us for x in ft.members) + self.idle_us, KEY_MAX)
            if s.finals and s.finals[-1] is ft:
                s.final_bound = ft.bound_key
        self.counters["turns_amended"] += 1
        old = ft.status
        ft.status = status_of(ft.members, ft.end_reason)
        if ft.status != old:
            self.counters[f"turns_finalized.{old}"] -= 1
            self.counters[f"turns_finalized.{ft.status}"] += 1
            agg_add_turn(s.agg, ft.start_key, ft.turn_id, None, ft.status, old_status=old)
        s.final_by_call[m.call_id] = ft
        self._link_members(s, ft, [m], missing_reason=None)
        self._loops(s, ft)
        self.emit_turn(s, ft)

    # --- finalization --------------------------------------------------------------------------------

    def check(self, src: SourceState, s: SessionState, now: float) -> None:
        """Finalize the session's runs that are due, oldest first; reschedule or wait otherwise. Past the
        source's last data time (drain) nothing is forgotten: the drain itself ends every run."""
        draining = now > src.final_us
        if not draining:
            self._prune(s, now)
            for rec in list(self.tools.expire(s, now)):
                if rec.status == "pending":
                    rec.status = "missing"
                    self.sink.tool_updates(
                        [(rec.call_id, rec.tool_call_id, None, None, None, None, "missing", None, None)]
                    )
                    self.tool_changed(s, rec)
        while s.open:
            runs = split_runs(s.open, self.idle_us)
            cl = closure(runs[0], runs[1] if len(runs) > 1 else None, self.idle_us, self.grace_us)
            if cl.due_us > now:
                self.schedule(src, s, cl.due_us)
                break
            blocker = self.blocker(src, s, cl.block_thr_us, now, cl.due_us)
            if blocker is not None:
                self.wait_on(src, blocker, s)
                if now < cl.due_us + self.idle_us:
                    self.schedule(src, s, cl.due_us + self.idle_us)
                break
            reason = "drain" if cl.reason == "idle" and cl.due_us > src.final_us else cl.reason
            self._finalize(s, runs[0], cl, reason)
        if not draining:
            self._housekeeping(src, s)

    def _housekeeping(self, src: SourceState, s: SessionState) -> None:
        """A later check that forgets retained turns and unresolved tool calls once they are too old,
        even for a session that never gets another call."""
        times = [f.end_us for f in s.finals[:1]] + [r.issued_us for r in s.pending_tools.values()]
        if times:
            self.schedule(src, s, min(times) + self.retain_us + 1)

    def _finalize(self, s: SessionState, run: list[Member], cl: Closure, reason: str) -> None:
        anchor = anchor_of(run)
        tid = ids.turn_id(s.session_id, anchor.call_id)
        ft = FinalTurn(
            tid,
            s.session_id,
            anchor.call_id,
            run,
            status_of(run, reason),
            reason,
            cl.bound_key,
            cl.bound_incl,
        )
        del s.open[: len(run)]
        for m in run:
            s.open_by_id.pop(m.call_id, None)
        s.final_bound, s.final_incl = cl.bound_key, cl.bound_incl
        s.finals.append(ft)
        self._finish(s, ft, run, now_missing=reason in ("idle", "drain"))

    def _finish(self, s: SessionState, ft: FinalTurn, run: list[Member], now_missing: bool) -> None:
        for m in run:
            s.final_by_call[m.call_id] = ft
        self._link_members(s, ft, run, missing_reason=ft.end_reason if now_missing else None)
        self._loops(s, ft)
        self.counters[f"turns_finalized.{ft.status}"] += 1
        anchor = next(m for m in ft.members if m.call_id == ft.anchor_id)
        agg_add_turn(
            s.agg, ft.start_key, ft.turn_id, anchor.user_preview if anchor.user_start else None, ft.status
        )
        self.emit_turn(s, ft)

    def _link_members(
        self, s: SessionState, ft: FinalTurn, run: list[Member], missing_reason: str | None
    ) -> None:
        """turn_id onto the member calls, their tool rows and their pending insights; tool calls still
        pending when the turn closes idle or at drain become ``missing`` (idle: a stalled-tool warning)."""
        self.sink.update_calls([(m.call_id, ft.turn_id) for m in run], ("turn_id",))
        ups: list[tuple] = []
        stalled: list[ToolRec] = []
        for m in run:
            for rec in m.tools:
                rec.turn_id, rec.turn = ft.turn_id, ft
                status = None
                if missing_reason is not None and rec.status == "pending":
                    rec.status = status = "missing"
                    self.tools.unspawn(rec)
                    if missing_reason == "idle":
                        stalled.append(rec)
                ups.append((rec.call_id, rec.tool_call_id, ft.turn_id, None, None, None, status, None, None))
            for key in m.insight_keys:
                ins = self.pending.pop(key, None)
                if ins is not None:
                    ins.turn_id = ft.turn_id
                    ft.insight_keys[key] = ins.kind
                    self.sink.replace("insights", ins.row())
        self.sink.tool_updates(ups)
        end = to_s(ft.end_us + self.idle_us)
        for rec in stalled:
            ins = stalled_tool(rec, self.cfg, missing_at=end)
            if ins is not None:
                s.agg.insight_keys.add(ins.dedupe_key)
                self._attach_final(ft, ins)

    def _attach_final(self, ft: FinalTurn, ins: Insight) -> None:
        ins.turn_id = ft.turn_id
        ft.insight_keys[ins.dedupe_key] = ins.kind
        self._count(ins)
        self.sink.replace("insights", ins.row())

    def _loops(self, s: SessionState, ft: FinalTurn) -> None:
        for ins in planner_loops(ft.turn_id, ft.members, self.cfg, s.source_id, s.session_id):
            s.agg.insight_keys.add(ins.dedupe_key)
            self._attach_final(ft, ins)

    def emit_turn(self, s: SessionState, ft: FinalTurn) -> None:
        anchor = next(m for m in ft.members if m.call_id == ft.anchor_id)
        self.sink.replace(
            "turns", turn_row(ft.turn_id, s, ft.members, anchor, ft.status, ft.end_reason, ft.insight_keys)
        )
        s.dirty = True

    def _prune(self, s: SessionState, now: float) -> None:
        """Forget finalized turns older than the retention (their boundary stays in ``final_bound``)."""
        while s.finals and s.finals[0].end_us + self.retain_us < now:
            ft = s.finals.pop(0)
            for m in ft.members:
                s.final_by_call.pop(m.call_id, None)
                for rec in m.tools:
                    rec.turn = None

    # --- insights --------------------------------------------------------------------------------------

    def _count(self, ins: Insight) -> None:
        if ins.dedupe_key not in self.seen:
            self.seen.add(ins.dedupe_key)
            self.counters["insights_raised"] += 1

    def emit(self, ins: Insight, s: SessionState | None = None, attach: str | None = None) -> None:
        """Write (or hold until its turn is known) an insight hanging on call ``attach`` of session ``s``."""
        self._count(ins)
        if s is not None:
            s.agg.insight_keys.add(ins.dedupe_key)
            s.dirty = True
            if attach is not None:
                m = s.open_by_id.get(attach)
                if m is not None:
                    if ins.dedupe_key not in m.insight_keys:
                        m.insight_keys.append(ins.dedupe_key)
                    self.pending[ins.dedupe_key] = ins
                    return
                ft = s.final_by_call.get(attach)
                if ft is not None:
                    ins.turn_id = ft.turn_id
                    if ins.dedupe_key not in ft.insight_keys:
                        ft.insight_keys[ins.dedupe_key] = ins.kind
                        self.emit_turn(s, ft)
        self.sink.replace("insights", ins.row())

    # --- tool results of finalized turns ---------------------------------------------------------------

    def tool_changed(self, s: SessionState, rec: ToolRec) -> None:
        """A tool call was resolved (or went missing at drain): re-emit its retained finalized turn."""
        ft = rec.turn
        if isinstance(ft, FinalTurn) and s.final_by_call.get(rec.call_id) is ft:
            self.emit_turn(s, ft)

    def drain(self, s: SessionState) -> None:
        """After the drain nothing can resolve what is still pending (those tool calls become ``missing``)
        and nothing can amend a turn: the session keeps only its totals."""
        for rec in list(s.pending_tools.values()):
            if rec.status == "pending":
                rec.status = "missing"
                self.sink.tool_updates(
                    [(rec.call_id, rec.tool_call_id, rec.turn_id, None, None, None, "missing", None, None)]
                )
                self.tool_changed(s, rec)
            self.tools.unspawn(rec)
        s.pending_tools.clear()
        while s.finals:
            self._prune(s, INF)

    # --- live view -------------------------------------------------------------------------------------

    def live_rows(self, s: SessionState) -> list[dict[str, Any]]:
        """The session's unfinalized runs as ``in_progress`` §6.2 records (never stored)."""
        out = []
        for run in split_runs(s.open, self.idle_us):
            anchor = anchor_of(run)
            tid = ids.turn_id(s.session_id, anchor.call_id)
            kinds = {k: self.pending[k].kind for m in run for k in m.insight_keys if k in self.pending}
            for ins in planner_loops(tid, run, self.cfg, s.source_id, s.session_id):
                kinds[ins.dedupe_key] = ins.kind
            out.append(turn_row(tid, s, run, anchor, "in_progress", None, kinds))
        return out

    def open_run_count(self, s: SessionState) -> int:
        return len(split_runs(s.open, self.idle_us)) if s.open else 0
