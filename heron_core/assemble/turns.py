"""Turn membership and finalization rules (agents-and-turns.md §10, §11), as pure functions of the data.

Within a session, members sorted by ``(request_start, call_id)`` are cut into runs:

* **after** every main-agent terminal call,
* **before** every main-agent user-turn-start call, and
* **before** a call that starts more than ``turn.idle_timeout_s`` after everything earlier in its run
  had ended. This is the idle rule written as a data boundary: a run that saw no activity for the idle
  timeout is over, so a call after the silence opens a new run instead of amending the closed one,
  exactly as it would have with a watermark that advanced through the silence.

``closure`` says how a run ends, when it may be finalized (watermark) and up to which request start an
unreleased call still blocks it; the assembler applies it (``keeper.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .state import Member

KEY_MAX = "\U0010ffff"
"""Sorts after every call id: ``(t, KEY_MAX)`` is the last key at request start ``t``."""


@dataclass(slots=True, frozen=True)
class Closure:
    reason: str  # 'terminal' | 'interrupted' | 'idle' ('drain' is decided when it is applied)
    due_us: int  # watermark at which the run may be finalized
    block_thr_us: int  # an unreleased call with request start <= this may still belong to the run
    bound_key: tuple  # members of the finalized turn: key <= bound (inclusive) or < bound
    bound_incl: bool


def split_runs(members: Sequence[Member], idle_us: int) -> list[list[Member]]:
    runs: list[list[Member]] = []
    cur: list[Member] = []
    max_end = 0
    prev_terminal = False
    for m in members:
        if cur and (prev_terminal or m.user_start or m.start_us > max_end + idle_us):
            runs.append(cur)
            cur = []
        if not cur:
            max_end = m.end_us
        cur.append(m)
        max_end = max(max_end, m.end_us)
        prev_terminal = m.terminal
    if cur:
        runs.append(cur)
    return runs


def closure(run: Sequence[Member], nxt: Sequence[Member] | None, idle_us: int, grace_us: int) -> Closure:
    """§10.3: terminal → final at ``T.end + grace`` with nothing in flight started ≤ T; a following user
    start U → at ``U.start + grace`` with nothing in flight started before U; otherwise idle → at
    ``last activity + idle`` with nothing in flight started by then."""
    last = run[-1]
    if last.terminal:
        return Closure("terminal", last.end_us + grace_us, last.start_us, last.key, True)
    idle_at = max(m.end_us for m in run) + idle_us
    if nxt:
        first = nxt[0]
        if first.start_us <= idle_at and first.user_start:
            return Closure("interrupted", first.start_us + grace_us, first.start_us - 1, first.key, False)
    return Closure("idle", idle_at, idle_at, (idle_at, KEY_MAX), True)


def anchor_of(run: Sequence[Member]) -> Member:
    """The first main-agent user-turn-start call, else the first call (§10.2)."""
    for m in run:
        if m.user_start:
            return m
    return run[0]


def status_of(run: Sequence[Member], reason: str) -> str:
    """§11: ``partial`` without any user-turn start (even when a terminal closed it), else ``complete``
    when a terminal closed it, else ``incomplete``."""
    if not any(m.user_start for m in run):
        return "partial"
    return "complete" if reason == "terminal" else "incomplete"
