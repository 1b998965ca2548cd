"""Retry chains (agents-and-turns.md §12.2).

Two calls are attempts of one request when they share ``request_hash`` and client (source, client IP,
pid when known) and the later one starts within ``insight.retry_gap_s`` after the earlier one ended with
an error or abort. Calls are observed in release order (end + fold wait, then id), which is the order a
later attempt always comes in: it starts after the failed one ended, so it ends later too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from heron_core.config import Config
from heron_core.records import Call

from .folding import is_error_call
from .state import call_end_us, to_us

PRUNE_MARGIN_US = 3600 * 1_000_000


@dataclass(slots=True)
class Attempt:
    call_id: str
    start_us: int
    end_us: int
    request_start: float | None
    end: float
    status_code: int | None
    failed: bool
    retry_after_s: float | None
    total_tokens: int | None
    cost_usd: float | None


@dataclass(slots=True)
class Chain:
    """One logical request and its attempts; ``session_id`` is the first attempt's (the call the storm
    insight hangs on), set by the assembler once that call's session is known."""

    key: tuple
    source_id: str
    request_hash: str
    attempts: list[Attempt] = field(default_factory=list)
    session_id: str | None = None
    excluded: bool = False  # auxiliary first attempt: no insight (§8)

    @property
    def first_id(self) -> str:
        return self.attempts[0].call_id


def _attempt(call: Call) -> Attempt:
    rl = call.ratelimit if isinstance(call.ratelimit, dict) else {}
    ra = rl.get("retry_after_s")
    end_us = call_end_us(call)
    return Attempt(
        call.call_id,
        to_us(call.request_start) or 0,
        end_us,
        call.request_start,
        end_us / 1e6,
        call.status_code,
        is_error_call(call),
        ra if isinstance(ra, (int, float)) else None,
        call.total_tokens,
        call.cost_usd,
    )


class RetryTracker:
    """Sets ``attempt``/``retry_of`` on calls and keeps the chains that may still grow."""

    def __init__(self, cfg: Config) -> None:
        self.gap_us = round(cfg.insight_retry_gap_s * 1e6)
        self._chains: dict[tuple, Chain] = {}
        self._observed = 0

    def observe(self, call: Call, now: float) -> Chain | None:
        """Record ``call``; returns its chain (also for a first attempt that failed), else None."""
        if not call.request_hash or call.request_start is None:
            return None
        pid = call.process.pid if call.process is not None else None
        key = (call.source_id, call.client_ip, pid, call.request_hash)
        att = _attempt(call)
        ch = self._chains.get(key)
        self._observed += 1
        if self._observed % 512 == 0:
            self._prune(now)
        if ch is not None:
            last = ch.attempts[-1]
            if last.failed and last.end_us <= att.start_us <= last.end_us + self.gap_us:
                call.attempt = len(ch.attempts) + 1
                call.retry_of = ch.first_id
                call.x_user_turn_start = False  # §4: a retry never starts a user turn
                ch.attempts.append(att)
                if not att.failed:
                    del self._chains[key]  # answered: the chain cannot grow any more
                return ch
        if not att.failed:
            return None
        ch = Chain(key, call.source_id, call.request_hash, [att])
        self._chains[key] = ch
        return ch

    def _prune(self, now: float) -> None:
        """Forget chains that can no longer grow: a retry starts within the gap, and is released when it
        ends, so a margin of an hour covers any call still running (only failed requests are kept)."""
        horizon = self.gap_us + PRUNE_MARGIN_US
        dead = [k for k, ch in self._chains.items() if ch.attempts[-1].end_us + horizon < now]
        for k in dead:
            del self._chains[k]
