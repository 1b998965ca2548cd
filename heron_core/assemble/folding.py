"""Proxy-hop and mirror folding (agents-and-turns.md §9).

Every finished call waits ``fold.wait_s`` of event time; it is then compared with the calls still
waiting and with those released in the last 10 s, and the pair is decided *at the first release of
either leg*. These rules keep the result independent of arrival order and heartbeat cadence:

* Only what had happened by the release instant counts: a waiting call that ends after it is treated
  as still in flight (with a finer heartbeat it would not have arrived yet).
* The two legs of a proxy hop go to different servers (a gateway does not forward to itself); without
  this, identical answers of unrelated concurrent calls to one server would fold.
* The inner leg leaves from the host the outer leg went to (``fold.same_host``): its client address is
  the outer leg's server address, unless either is loopback or unknown (eBPF). Unrelated calls with the
  same answer — deterministic models, eval jobs, templated traffic — otherwise fold whenever their
  timing nests.
* A call that could still be the *inner* leg of an unfinished call (any call of its source in flight
  that started up to ``fold.start_window_s`` before it) is **held** until that call is released, at
  most 10 s past its own release time. The outer leg is therefore released first and picks its inner
  while the inner is still waiting, so an already released call never has to leave turn assembly.
  Roles given to already released calls are only the ones that keep participating (``proxy_in``,
  ``mirror_primary``); they reach the store through ``update_calls``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Iterator

from heron_core.config import Config
from heron_core.records import Call

from .state import PendingCall, Recent, SourceState

RECENT_S = 10.0
"""How long released calls stay matchable, and the longest hold of a possible inner leg (§9.1)."""

MIRROR_ROLES = ("mirror_primary", "mirror_secondary")
SECONDARY_ROLES = ("proxy_out", "mirror_secondary")
HOP_COLUMNS = ("hop_role", "hop_peer_call_id", "hop_overhead_ms")


def _loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1" or ip.startswith("::ffff:127.")


def same_host(outer_flow: tuple, inner_flow: tuple) -> bool:
    """Could the inner leg have been sent by the outer leg's server? Flows are ``flow_of`` tuples:
    ``(source, client_ip, client_port, server_ip, server_port)``, or a 3-tuple without addresses."""
    if len(outer_flow) != 5 or len(inner_flow) != 5:
        return True
    gateway, sender = outer_flow[3], inner_flow[1]
    return gateway == sender or _loopback(gateway) or _loopback(sender)


def is_error_call(call: Call) -> bool:
    return (call.status_code is not None and call.status_code >= 400) or call.finish in ("error", "aborted")


def content_keys(call: Call) -> tuple[tuple, ...]:
    """§9.2 content-match keys: two calls match when they share one. Model, wire API and finish are
    left out on purpose (gateways translate them)."""
    keys: list[tuple] = []
    if call.x_output_fingerprint:
        keys.append(("fp", call.x_output_fingerprint))
    out, inp = call.output_tokens or 0, call.input_total_tokens or 0
    if out > 0 and inp > 0:
        keys.append(("tok", out, inp))
    if is_error_call(call) and call.status_code is not None and isinstance(call.error, dict):
        msg = call.error.get("message")
        if isinstance(msg, str) and msg:
            keys.append(("err", call.status_code, msg))
    return tuple(keys)


def _overhead(
    outer_ttft: float | None, outer_e2e: float | None, inner_ttft: float | None, inner_e2e: float | None
) -> dict[str, float | None]:
    def d(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(a - b, 3)

    return {"ttft": d(outer_ttft, inner_ttft), "e2e": d(outer_e2e, inner_e2e)}


class _Cand:
    """A fold candidate: a waiting call or a recently released one, behind one interface.

    The fields that never change once a call has finished are copied into slots when the candidate is
    made: folding reads them for every candidate of every release (tens per release with repeated
    answers), and a property per access was a large share of the assembler's time."""

    __slots__ = ("call_id", "end_us", "flow", "pc", "rec", "server", "source_id", "start_us")

    def __init__(self, pc: PendingCall | None = None, rec: Recent | None = None) -> None:
        self.pc, self.rec = pc, rec
        if pc is not None:
            call = pc.call
            self.call_id, self.source_id, self.server = call.call_id, call.source_id, call.server
            self.flow, self.start_us, self.end_us = pc.flow, pc.start_us, pc.end_us
        else:
            assert rec is not None
            self.call_id, self.source_id, self.server = rec.call_id, rec.source_id, rec.server
            self.flow, self.start_us, self.end_us = rec.flow, rec.start_us, rec.end_us

    @property
    def role(self) -> str | None:
        return self.pc.call.hop_role if self.pc else self.rec.role  # type: ignore[union-attr]

    @property
    def has_inner(self) -> bool:
        return self.pc.has_inner if self.pc else self.rec.has_inner  # type: ignore[union-attr]


class _KeyIndex:
    """The candidates sharing one content key, sorted by ``(request start, call id)``.

    Folding only ever pairs calls that started close together (see ``Folder._candidates``), so a
    sorted list lets it look at the few calls in that window instead of every call that shares the key
    — with repeated answers, dozens per release on a busy capture, and the assembler is serial."""

    __slots__ = ("cands", "starts")

    def __init__(self) -> None:
        self.starts: list[tuple[int, str]] = []
        self.cands: list[_Cand] = []

    def put(self, cand: _Cand) -> None:
        key = (cand.start_us, cand.call_id)
        i = bisect_left(self.starts, key)
        if i < len(self.starts) and self.starts[i] == key:
            self.cands[i] = cand
        else:
            self.starts.insert(i, key)
            self.cands.insert(i, cand)

    def remove(self, start_us: int, call_id: str) -> None:
        key = (start_us, call_id)
        i = bisect_left(self.starts, key)
        if i < len(self.starts) and self.starts[i] == key:
            del self.starts[i]
            del self.cands[i]

    def window(self, lo: int, hi: int) -> list[_Cand]:
        """Candidates whose request started in ``[lo, hi]``."""
        starts = self.starts
        return self.cands[bisect_left(starts, (lo, "")) : bisect_left(starts, (hi + 1, ""))]


class Folder:
    """Content index over waiting and recently released calls, and the §9 decisions."""

    def __init__(self, cfg: Config, counters: Counter) -> None:
        self.wait_us = round(cfg.fold_wait_s * 1e6)
        self.window_us = round(cfg.fold_start_window_s * 1e6)
        self.tol_us = round(cfg.fold_end_tolerance_s * 1e6)
        self.mirror_us = round(cfg.fold_mirror_tolerance_s * 1e6)
        self.same_host = bool(cfg.fold_same_host)
        self.recent_us = int(RECENT_S * 1e6)
        self.counters = counters
        self._by_key: dict[tuple, _KeyIndex] = {}
        self._recent: dict[str, deque[Recent]] = {}

    # --- index ---------------------------------------------------------------------------------------

    def _index(self, cand: _Cand, keys: tuple[tuple, ...]) -> None:
        for k in keys:
            idx = self._by_key.get(k)
            if idx is None:
                idx = self._by_key[k] = _KeyIndex()
            idx.put(cand)

    def add_pending(self, pc: PendingCall) -> None:
        self._index(_Cand(pc=pc), pc.keys)

    def _unindex(self, call_id: str, start_us: int, keys: tuple[tuple, ...]) -> None:
        for k in keys:
            idx = self._by_key.get(k)
            if idx is not None:
                idx.remove(start_us, call_id)
                if not idx.starts:
                    del self._by_key[k]

    def released(self, pc: PendingCall, now: float) -> None:
        """``pc`` leaves the waiting set; it stays matchable as a recent call for ``RECENT_S``."""
        call = pc.call
        self._unindex(call.call_id, pc.start_us, pc.keys)
        if not pc.keys:
            return
        rec = Recent(
            call.call_id,
            call.source_id,
            pc.flow,
            call.server,
            pc.start_us,
            pc.end_us,
            pc.keys,
            call.hop_role,
            pc.has_inner,
            call.ttft_ms,
            call.e2e_ms,
        )
        q = self._recent.setdefault(call.source_id, deque())
        q.append(rec)
        self._index(_Cand(rec=rec), pc.keys)
        self.evict(call.source_id, now)

    def evict(self, source_id: str, now: float) -> None:
        q = self._recent.get(source_id)
        while q and q[0].end_us + self.wait_us + self.recent_us < now:
            rec = q.popleft()
            self._unindex(rec.call_id, rec.start_us, rec.keys)

    def _candidates(
        self, keys: tuple[tuple, ...], skip: str, end_us: int, now: float, lo: int, hi: int
    ) -> Iterator[_Cand]:
        """Calls sharing a content key with ``keys``: waiting ones that had ended by ``now``, and
        released ones that ended at most ``RECENT_S`` before ``end_us``. Sorted by id: deterministic.

        Only calls whose request started in ``[lo, hi]`` are returned. Every rule below pairs calls
        that started at most ``fold.start_window_s`` (outer/inner) or ``fold.mirror_tolerance_s``
        (mirrors) apart, and each caller passes exactly the range its own test accepts, so the bound
        changes no decision; it only spares sorting and testing calls that cannot match (identical
        answers repeat all over a busy capture)."""
        seen: dict[str, _Cand] = {}
        for k in keys:
            idx = self._by_key.get(k)
            if idx is None:
                continue
            for c in idx.window(lo, hi):
                cid = c.call_id
                if cid != skip and cid not in seen:
                    seen[cid] = c
        for cid in sorted(seen):
            c = seen[cid]
            if c.pc is not None and c.pc.end_us > now:
                continue
            if c.rec is not None and c.rec.end_us < end_us - self.recent_us:
                continue
            yield c

    # --- holds ---------------------------------------------------------------------------------------

    def hold_blocker(self, pc: PendingCall, src: SourceState, now: float) -> str | None:
        """The unreleased call ``pc`` must wait for (a possible outer leg), or None."""
        me = (pc.start_us, pc.call.call_id)
        lo = pc.start_us - self.window_us
        starts = src.starts
        i = bisect_left(starts, (lo, ""))
        while i < len(starts):
            s, cid = starts[i]
            i += 1
            if (s, cid) >= me:
                break
            u = src.unreleased.get(cid)
            if u is None:
                continue
            other = u.pending
            if other is None or other.end_us > now:
                return cid  # in flight at `now`: content unknown, it may be the outer leg
            if other.flow == pc.flow or other.has_inner or other.call.hop_role in MIRROR_ROLES:
                continue
            if pc.end_us > other.end_us + self.tol_us or other.call.server == pc.call.server:
                continue
            if self.same_host and not same_host(other.flow, pc.flow):
                continue
            if any(k in other.keys for k in pc.keys):
                return cid
        return None

    # --- decisions -----------------------------------------------------------------------------------

    def decide(self, pc: PendingCall, now: float) -> list[tuple]:
        """Fold ``pc`` (being released now) with its partners. Sets roles on waiting calls directly and
        returns ``update_calls`` rows ``(call_id, role, peer, overhead)`` for already released ones."""
        x = pc.call
        if x.hop_role in MIRROR_ROLES or not pc.keys:
            return []
        updates: list[tuple] = []
        if x.hop_role is None:
            if self._mirror(pc, now, updates):
                return updates
            self._as_inner(pc, now, updates)
        if not pc.has_inner and x.hop_role in (None, "proxy_out"):
            self._as_outer(pc, now)
        return updates

    def _set_role(self, call: Call, role: str, peer: str | None) -> None:
        if call.hop_role is None:
            call.hop_role = role
            self.counters[f"hops_folded.{role}"] += 1
        if call.hop_peer_call_id is None:
            call.hop_peer_call_id = peer

    def _mirror(self, pc: PendingCall, now: float, updates: list[tuple]) -> bool:
        x = pc.call
        best: tuple | None = None
        lo, hi = pc.start_us - self.mirror_us, pc.start_us + self.mirror_us  # the ``ds`` test below
        for c in self._candidates(pc.keys, x.call_id, pc.end_us, now, lo, hi):
            if c.role is not None or c.has_inner or c.flow == pc.flow:
                continue
            ds, de = abs(c.start_us - pc.start_us), abs(c.end_us - pc.end_us)
            if ds > self.mirror_us or de > self.mirror_us:
                continue
            x_primary = (x.source_id, x.call_id) < (c.source_id, c.call_id)
            if c.rec is not None and x_primary:
                continue  # a released call cannot become the hidden leg
            score = (ds + de, c.call_id)
            if best is None or score < best[0]:
                best = (score, c, x_primary)
        if best is None:
            return False
        _, c, x_primary = best
        x_role, c_role = (
            ("mirror_primary", "mirror_secondary") if x_primary else ("mirror_secondary", "mirror_primary")
        )
        self._set_role(x, x_role, c.call_id)
        if c.pc is not None:
            self._set_role(c.pc.call, c_role, x.call_id)
        else:
            c.rec.role = c_role  # type: ignore[union-attr]
            self.counters[f"hops_folded.{c_role}"] += 1
            updates.append((c.call_id, c_role, x.call_id, None))
        return True

    def _outer_ok(
        self, outer: _Cand, inner_start: int, inner_end: int, inner_flow: tuple, inner_server: str | None
    ) -> bool:
        if outer.flow == inner_flow or outer.has_inner or outer.role in MIRROR_ROLES:
            return False
        if inner_server is not None and outer.server == inner_server:
            return False  # a gateway never forwards to itself: same server means two separate calls
        if self.same_host and not same_host(outer.flow, inner_flow):
            return False
        return (
            outer.start_us <= inner_start <= outer.start_us + self.window_us
            and inner_end <= outer.end_us + self.tol_us
        )

    def _best_outer(
        self,
        keys: tuple[tuple, ...],
        call_id: str,
        start: int,
        end: int,
        flow: tuple,
        server: str | None,
        now: float,
        extra: _Cand | None = None,
    ) -> _Cand | None:
        """§9.4: among matching outers, the one with the latest request start wins (then the id)."""
        best: _Cand | None = None
        # _outer_ok accepts outers that started in [start - window, start]
        cands = list(self._candidates(keys, call_id, end, now, start - self.window_us, start))
        if extra is not None:
            cands.append(extra)
        for c in cands:
            if not self._outer_ok(c, start, end, flow, server):
                continue
            if best is None or (c.start_us, c.call_id) > (best.start_us, best.call_id):
                best = c
        return best

    def _as_inner(self, pc: PendingCall, now: float, updates: list[tuple]) -> None:
        x = pc.call
        o = self._best_outer(pc.keys, x.call_id, pc.start_us, pc.end_us, pc.flow, x.server, now)
        if o is None:
            return
        self._set_role(x, "proxy_out", o.call_id)
        if o.pc is not None:
            oc = o.pc.call
            o.pc.has_inner = True
            self._set_role(oc, "proxy_in", x.call_id)
            oc.hop_overhead_ms = _overhead(oc.ttft_ms, oc.e2e_ms, x.ttft_ms, x.e2e_ms)
        else:
            rec = o.rec
            assert rec is not None
            rec.has_inner = True
            role = None
            if rec.role is None:
                rec.role = role = "proxy_in"
                self.counters["hops_folded.proxy_in"] += 1
            updates.append(
                (
                    rec.call_id,
                    role,
                    x.call_id if role else None,
                    _overhead(rec.ttft_ms, rec.e2e_ms, x.ttft_ms, x.e2e_ms),
                )
            )

    def _as_outer(self, pc: PendingCall, now: float) -> None:
        x = pc.call
        me = _Cand(pc=pc)
        chosen: PendingCall | None = None
        # _outer_ok(me, …) accepts inners that started in [start, start + window]
        lo, hi = pc.start_us, pc.start_us + self.window_us
        for c in self._candidates(pc.keys, x.call_id, pc.end_us, now, lo, hi):
            if c.pc is None or c.role is not None or c.flow == pc.flow:
                continue
            if not self._outer_ok(me, c.start_us, c.end_us, c.flow, c.server):
                continue
            best = self._best_outer(
                c.pc.keys, c.call_id, c.start_us, c.end_us, c.flow, c.server, now, extra=me
            )
            if best is None or best.call_id != x.call_id:
                continue
            if chosen is None or (c.start_us, c.call_id) > (chosen.start_us, chosen.call.call_id):
                chosen = c.pc
        if chosen is None:
            return
        inner = chosen.call
        self._set_role(inner, "proxy_out", x.call_id)
        pc.has_inner = True
        self._set_role(x, "proxy_in", inner.call_id)
        x.hop_overhead_ms = _overhead(x.ttft_ms, x.e2e_ms, inner.ttft_ms, inner.e2e_ms)
