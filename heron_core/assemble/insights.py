"""Insight detectors (agents-and-turns.md §12.1–§12.3, §12.5, §12.6).

Each detector builds the *whole* insight record from the data it is given, so a repeated detection
with the same ``dedupe_key`` simply rewrites the row (``replace=True``): the stored row is the same
whatever the order the evidence came in. ``count`` is the amount of evidence of the kind: occurrences
(planner loop), attempts (retry storm), calls (model substitution), 1 (stalled tool, context growth).
Rate-limit pressure (§12.4) is computed at query time, not here.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from heron_core import ids
from heron_core.config import Config
from heron_core.records import Call

from .retries import Chain
from .state import Member, ToolRec, call_end_us

MAX_CALL_IDS = 20


@dataclass(slots=True)
class Insight:
    dedupe_key: str
    kind: str
    severity: str
    source_id: str
    session_id: str | None
    turn_id: str | None
    call_ids: list[str]
    first_seen: float | None
    last_seen: float | None
    count: int
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "insight_id": ids.uuid5("insight", self.dedupe_key),
            "kind": self.kind,
            "severity": self.severity,
            "source_id": self.source_id,
            "session_id": self.session_id,
            "turn_id": self.turn_id,
            "call_ids": self.call_ids[-MAX_CALL_IDS:],
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "count": self.count,
            "summary": self.summary,
            "details": self.details,
            "dedupe_key": self.dedupe_key,
        }


# --- §12.3 model substitution ---------------------------------------------------------------------------

_SUFFIX = re.compile(
    r"(?:-\d{8}|-\d{4}-\d{2}-\d{2}|@\d{8}|-(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])|-latest|:latest)$"
)


def normalize_model(name: str) -> str:
    """Lowercase, provider prefix dropped (up to the last ``/``), trailing date/alias suffixes dropped
    (``-YYYYMMDD``, ``-YYYY-MM-DD``, ``@YYYYMMDD``, ``-MMDD``, ``-latest``, ``:latest``)."""
    s = name.strip().lower().rsplit("/", 1)[-1]
    while True:
        t = _SUFFIX.sub("", s)
        if t == s:
            return s
        s = t


def is_substitution(requested: str | None, served: str | None, aliases: dict[str, str]) -> bool:
    if not requested or not served or "unknown" in (requested.lower(), served.lower()):
        return False
    nr, ns = normalize_model(requested), normalize_model(served)
    if nr == ns:
        return False
    table = {k.strip().lower(): v for k, v in aliases.items()}
    for a, b in ((requested, served), (served, requested)):
        target = table.get(a.strip().lower()) or table.get(normalize_model(a))
        if isinstance(target, str) and normalize_model(target) == normalize_model(b):
            return False
    return True


class SubstitutionBook:
    """One row per (source, server, requested, served), counting calls."""

    def __init__(self, cfg: Config) -> None:
        self.aliases = dict(cfg.insight_model_aliases or {})
        self._rows: dict[str, Insight] = {}

    def observe(self, call: Call) -> Insight | None:
        if not is_substitution(call.model_requested, call.model, self.aliases):
            return None
        key = f"model_substitution|{call.source_id}|{call.server}|{call.model_requested}|{call.model}"
        ins = self._rows.get(key)
        end = call_end_us(call) / 1e6
        if ins is None:
            ins = self._rows[key] = Insight(
                key,
                "model_substitution",
                "warning",
                call.source_id,
                None,
                None,
                [],
                call.request_start,
                end,
                0,
                "",
                {
                    "server": call.server,
                    "requested": call.model_requested,
                    "served": call.model,
                    "requested_normalized": normalize_model(call.model_requested),
                    "served_normalized": normalize_model(call.model),
                },
            )
        ins.count += 1
        ins.call_ids = (ins.call_ids + [call.call_id])[-MAX_CALL_IDS:]
        if call.request_start is not None and (ins.first_seen is None or call.request_start < ins.first_seen):
            ins.first_seen = call.request_start
        if ins.last_seen is None or end > ins.last_seen:
            ins.last_seen = end
        ins.details["calls"] = ins.count
        ins.summary = (
            f"requested {call.model_requested} but {call.model} answered "
            f"({ins.count} call{'s' if ins.count != 1 else ''} to {call.server})"
        )
        return ins


# --- §12.2 retry storm -----------------------------------------------------------------------------------


def retry_storm(chain: Chain, session_id: str | None) -> Insight | None:
    """≥ 3 attempts → warning; ≥ 6, or a retry sooner than a 429's Retry-After → critical. A chain of two
    that ignored Retry-After is raised too (critical): that client behaviour is the storm's cause."""
    atts = chain.attempts
    early = False
    for prev, cur in itertools.pairwise(atts):
        if (
            prev.status_code == 429
            and prev.retry_after_s is not None
            and cur.start_us - prev.end_us < prev.retry_after_s * 1e6
        ):
            early = True
    n = len(atts)
    if n < 3 and not early:
        return None
    failed = [a for a in atts if a.failed]
    costs = [a.cost_usd for a in failed if a.cost_usd is not None]
    span = (atts[-1].end_us - atts[0].start_us) / 1e6
    details = {
        "attempts": n,
        "statuses": [a.status_code for a in atts],
        "span_s": round(span, 3),
        "retry_after_s": [a.retry_after_s for a in atts if a.retry_after_s is not None],
        "retried_before_retry_after": early,
        "failed_tokens": sum(a.total_tokens or 0 for a in failed),
        "failed_cost_usd": round(sum(costs), 10) if costs else None,
        "request_hash": chain.request_hash,
    }
    summary = f"{n} attempts of one request in {span:.1f} s" + (
        " (retried before Retry-After)" if early else ""
    )
    return Insight(
        f"retry_storm|{chain.first_id}",
        "retry_storm",
        "critical" if n >= 6 or early else "warning",
        chain.source_id,
        session_id,
        None,
        [a.call_id for a in atts],
        atts[0].request_start,
        atts[-1].end,
        n,
        summary,
        details,
    )


# --- §12.5 stalled tool ----------------------------------------------------------------------------------


def stalled_tool(rec: ToolRec, cfg: Config, missing_at: float | None = None) -> Insight | None:
    """A resolved tool call that waited ≥ ``stall_info_s`` (info) / ``stall_warn_s`` (warning); a tool call
    left ``missing`` by an idle turn (warning)."""
    if rec.status == "missing":
        if missing_at is None:
            return None
        severity, summary = "warning", f"tool {rec.name} never got a result (turn closed idle)"
    else:
        if rec.wait_ms is None:
            return None
        if rec.wait_ms >= cfg.insight_stall_warn_s * 1000:
            severity = "warning"
        elif rec.wait_ms >= cfg.insight_stall_info_s * 1000:
            severity = "info"
        else:
            return None
        summary = f"tool {rec.name} took {rec.wait_ms / 1000:.0f} s to return"
    call_ids = [rec.call_id] + ([rec.result_call_id] if rec.result_call_id else [])
    return Insight(
        f"stalled_tool|{rec.call_id}|{rec.tool_call_id}",
        "stalled_tool",
        severity,
        rec.source_id,
        rec.session_id,
        rec.turn_id,
        call_ids,
        rec.issued_at,
        rec.result_at if rec.result_at is not None else missing_at,
        1,
        summary,
        {
            "tool_call_id": rec.tool_call_id,
            "name": rec.name,
            "status": rec.status,
            "wait_ms": rec.wait_ms,
            "arguments_preview": rec.args_preview,
            "subagent": rec.subagent,
        },
    )


# --- §12.6 context growth --------------------------------------------------------------------------------


def context_growth(
    m: Member, prev_id: str, prev_input: int, added: list[dict[str, Any]], cfg: Config
) -> Insight | None:
    delta = m.context_delta
    if delta is None or m.input_total is None:
        return None
    if delta >= cfg.insight_context_jump_tokens:
        summary = f"context grew by {delta} tokens in one call"
        details: dict[str, Any] = {
            "delta_tokens": delta,
            "previous_tokens": prev_input,
            "tokens": m.input_total,
            "added": added or [{"kind": "messages"}],
        }
    elif prev_input > 0 and m.input_total * 2 <= prev_input:
        pct = round(100 * (prev_input - m.input_total) / prev_input)
        summary = f"context dropped by {pct}% (history compacted)"
        details = {
            "compaction": True,
            "delta_tokens": delta,
            "previous_tokens": prev_input,
            "tokens": m.input_total,
        }
    else:
        return None
    return Insight(
        f"context_growth|{m.call_id}",
        "context_growth",
        "info",
        m.source_id,
        m.session_id,
        None,
        [prev_id, m.call_id],
        m.request_start,
        m.end,
        1,
        summary,
        details,
    )


# --- §12.1 planner loop ----------------------------------------------------------------------------------


def _alternating_runs(sigs: list[str]) -> list[tuple[int, int]]:
    """Maximal runs ``A,B,A,B…`` (A ≠ B) of length ≥ 4, as inclusive index ranges."""
    runs: list[tuple[int, int]] = []
    i, n = 0, len(sigs)
    while i < n - 1:
        if sigs[i] == sigs[i + 1]:
            i += 1
            continue
        j = i + 1
        while j + 1 < n and sigs[j + 1] == sigs[j - 1] and sigs[j + 1] != sigs[j]:
            j += 1
        if j - i + 1 >= 4:
            runs.append((i, j))
        i = max(i + 1, j)
    return runs


def _loop_figures(
    members: Iterable[Member],
) -> tuple[list[str], float | None, float | None, int, float | None]:
    ms = sorted({m.call_id: m for m in members}.values(), key=lambda m: m.key)
    costs = [m.cost_usd for m in ms if m.cost_usd is not None]
    return (
        [m.call_id for m in ms],
        min(m.request_start for m in ms),
        max(m.end for m in ms),
        sum(m.tokens[6] or 0 for m in ms),
        round(sum(costs), 10) if costs else None,
    )


def planner_loops(
    turn_id: str, members: list[Member], cfg: Config, source_id: str, session_id: str | None
) -> list[Insight]:
    """§12.1 per agent (main and each sub-agent): repeats and A,B,A,B oscillations of tool signatures.
    Repeats of signatures that are part of a detected oscillation are not raised again (same loop)."""
    by_agent: dict[str, list[tuple[ToolRec, Member]]] = {}
    for m in members:
        for rec in sorted(m.tools, key=lambda r: r.seq):
            by_agent.setdefault(m.agent_key, []).append((rec, m))
    out: list[Insight] = []
    reps = cfg.insight_loop_repeats
    for agent in sorted(by_agent):
        seq = by_agent[agent]
        sigs = [r.sig for r, _ in seq]
        label = seq[0][1].subagent or "main"
        oscillating: set[str] = set()
        pairs: dict[tuple[str, str], list[int]] = {}
        for a, b in _alternating_runs(sigs):
            pair = tuple(sorted((sigs[a], sigs[a + 1])))
            pairs.setdefault(pair, []).extend(range(a, b + 1))  # type: ignore[arg-type]
        for pair, idx in sorted(pairs.items()):
            oscillating.update(pair)
            names = [next(r.name for r, _ in seq if r.sig == s) for s in pair]
            call_ids, first, last, tokens, cost = _loop_figures(seq[i][1] for i in idx)
            out.append(
                Insight(
                    f"planner_loop|{turn_id}|{agent}|{pair[0]}|{pair[1]}",
                    "planner_loop",
                    "warning",
                    source_id,
                    session_id,
                    turn_id,
                    call_ids,
                    first,
                    last,
                    len(idx),
                    f"{names[0]} and {names[1]} alternate {len(idx)} times",
                    {
                        "pattern": "oscillation",
                        "agent": label,
                        "tools": names,
                        "signatures": list(pair),
                        "arguments_preview": [
                            next(r.args_preview for r, _ in seq if r.sig == s) for s in pair
                        ],
                        "occurrences": len(idx),
                        "tokens": tokens,
                        "cost_usd": cost,
                    },
                )
            )
        for sig, n in sorted(Counter(sigs).items()):
            if n < reps or sig in oscillating:
                continue
            hits = [(r, m) for r, m in seq if r.sig == sig]
            call_ids, first, last, tokens, cost = _loop_figures(m for _, m in hits)
            name = hits[0][0].name
            out.append(
                Insight(
                    f"planner_loop|{turn_id}|{agent}|{sig}",
                    "planner_loop",
                    "critical" if n >= 2 * reps else "warning",
                    source_id,
                    session_id,
                    turn_id,
                    call_ids,
                    first,
                    last,
                    n,
                    f"{name} called {n} times with the same arguments",
                    {
                        "pattern": "repeat",
                        "agent": label,
                        "tool": name,
                        "signature": sig,
                        "arguments_preview": hits[0][0].args_preview,
                        "occurrences": n,
                        "tokens": tokens,
                        "cost_usd": cost,
                    },
                )
            )
    return out
