"""Accuracy harness: run the engine on a capture, match its calls to ground truth, score every field.

    python -m tests.e2e.accuracy FILE.pcap FILE.truth.jsonl [--all] [--workers N]

prints a per-field accuracy table and the list of mismatches, and exits 1 if a call is missing or any
field is wrong. The engine runs in process on an in-memory store; calls are read back through the
public ``calls`` export (interfaces.md §6.1) plus the exchange ``state`` column (the one asserted truth
field the calls export does not carry). Matching and judging use only the spec (``expectations``), never
engine helpers, so a bug shared by engine and judge cannot hide.

Matching: truth records and exported calls are grouped by client ip:port; within a connection each
truth record, in request order, takes the not yet matched call whose request time is closest to the
truth time (preferring the same path; ties go to the call whose request, then response, ended first,
then to the call agreeing on most fields), within ``MATCH_WINDOW_S``. A record left without a call is
"not found" and counts as wrong for every field it asserts.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

try:  # `python -m tests.e2e.accuracy` from the repository root, or pytest with pythonpath "."
    from tests.e2e.expectations import PSEUDO_ID, TOKEN_FIELDS, Expectation, is_pseudo_id, load_expectations
except ImportError:  # pragma: no cover - run as a plain script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.e2e.expectations import PSEUDO_ID, TOKEN_FIELDS, Expectation, is_pseudo_id, load_expectations

MATCH_WINDOW_S = 2.0
"""Largest |truth time − call time| for a match: wide enough for any engine timestamp bug to show up as
a field mismatch instead of a missing call, narrow enough not to pair different requests."""

FIELD_ORDER = (
    "found", "path", "wire_api", "operation", "model_requested", "model", "is_stream", "status_code",
    "finish_reason_raw", "finish", "tool_calls.ids", "tool_calls.names", "tool_calls.arguments",
    *TOKEN_FIELDS, "usage_estimated", "response_id", "error.source", "error.type", "request_start",
    "request_end", "response_start", "response_end", "state", "damaged", "damage",
)  # fmt: skip


# --- running the engine --------------------------------------------------------------------------------


def run_engine(pcap: str | Path, source_id: str | None = None, workers: int = 0) -> list[dict[str, Any]]:
    """Ingest one capture into an in-memory store; return its exported calls (§6.1 dicts) with the
    exchange's ``state`` added under ``_state``. ``workers`` > 0 runs the parallel engine (decode
    processes), which must give the same records (README.md §1, rule 1)."""
    from heron_core.config import Config
    from heron_core.engine import Engine
    from heron_core.export.calls import export_calls
    from heron_core.store.db import open_store

    store = open_store(None)
    try:
        engine = Engine(store, Config(), workers=workers) if workers else Engine(store, Config())
        sid = source_id or Path(pcap).stem
        result = engine.ingest([str(pcap)], [sid])
        failed = [f for f in result.files if f.status == "failed"]
        if failed:
            raise RuntimeError(f"{pcap}: {failed[0].error}")
        buf = io.BytesIO()
        export_calls(store.conn, buf)
        calls = [orjson.loads(line) for line in buf.getvalue().splitlines() if line]
        states = dict(store.cursor().execute("SELECT exchange_id, state FROM exchanges").fetchall())
    finally:
        store.close()
    for c in calls:
        c["_state"] = states.get(c["call_id"])
    return calls


# --- matching ------------------------------------------------------------------------------------------


def _conn_key(ip: str, port: int) -> tuple[str, int]:
    return ip.lower(), int(port)


def _call_server(call: dict[str, Any]) -> str | None:
    conn = call.get("connection")
    if not conn:
        return None
    ip = conn["server_ip"]
    return f"[{ip}]:{conn['server_port']}" if ":" in ip else f"{ip}:{conn['server_port']}"


def match_calls(
    expectations: list[Expectation], calls: list[dict[str, Any]]
) -> tuple[list[tuple[Expectation, dict[str, Any] | None]], list[dict[str, Any]]]:
    """Pair truth records with calls. Returns ``(pairs, unexpected)``: ``unexpected`` are calls on a
    server the truth covers that no LLM truth record claimed (false positives, or 'other' routes
    exported as calls)."""
    by_conn: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for c in calls:
        conn = c.get("connection")
        if conn:
            by_conn[_conn_key(conn["client_ip"], conn["client_port"])].append(c)
    used: set[str] = set()
    pairs: list[tuple[Expectation, dict[str, Any] | None]] = []
    llm = [e for e in expectations if e.is_llm]
    for exp in sorted(llm, key=lambda e: (e.client_ip, e.client_port, e.match_time, e.order)):
        best: dict[str, Any] | None = None
        best_cost: tuple[float, ...] = (2, math.inf, math.inf, math.inf, 0)
        for c in by_conn.get(_conn_key(exp.client_ip, exp.client_port), ()):
            if c["call_id"] in used:
                continue
            t = c.get(exp.match_field)
            if t is None:
                t = c.get("request_start")
            if t is None:
                continue
            dt = abs(t - exp.match_time)
            if dt > MATCH_WINDOW_S:
                continue
            # Pipelined requests can share a request_start (a reordered segment completes both at
            # once); their order on the connection is still that of their request_end, then of their
            # response_end (responses pair FIFO, capture-and-http.md §6.2). When even those are equal
            # (one packet completed both), the exported fields cannot order them: take the candidate
            # that agrees with the truth record on most fields.
            cost = (0 if c.get("path") == exp.path else 1, dt, c.get("request_end") or 0.0,
                    c.get("response_end") or 0.0, -_agreement(exp, c))
            if cost < best_cost:
                best, best_cost = c, cost
        if best is not None:
            used.add(best["call_id"])
        pairs.append((exp, best))
    # Non-LLM truth records ('other' routes) take part only here: a call on a server the truth covers
    # that no LLM record claimed is a false positive.
    servers = {e.server for e in expectations}
    unexpected = [c for c in calls if c["call_id"] not in used and _call_server(c) in servers]
    return pairs, unexpected


def _agreement(exp: Expectation, call: dict[str, Any]) -> int:
    """How many asserted fields the call gets right (the last tie-breaker of ``match_calls``)."""
    return sum(_same(name, v, actual_value(call, name), exp) for name, v in exp.fields.items())


# --- comparing -----------------------------------------------------------------------------------------


def actual_value(call: dict[str, Any], name: str) -> Any:
    """The call's value for an expectation field name (derived names included)."""
    if name == "state":
        return call.get("_state")
    if name in ("error.source", "error.type"):
        err = call.get("error")
        return None if err is None else err.get(name.split(".", 1)[1])
    if name.startswith("tool_calls."):
        part = name.split(".", 1)[1]
        return [t.get({"ids": "id", "names": "name", "arguments": "arguments"}[part]) for t in call["tool_calls"]]
    if name == "damage":
        return sorted(call.get("damage") or [])
    return call.get(name)


def _same(name: str, expected: Any, got: Any, exp: Expectation) -> bool:
    tol = exp.tolerances.get(name)
    if tol is not None:
        return got is not None and abs(got - expected) <= tol.seconds
    if name in ("request_start", "request_end", "response_end", "first_token"):
        # Exact to the µs: both sides are µs-grid epoch floats.
        return got is not None and expected is not None and round(got * 1e6) == round(expected * 1e6)
    if name == "tool_calls.ids":
        if not isinstance(got, list) or len(got) != len(expected):
            return False
        for e, g in zip(expected, got):
            if e == PSEUDO_ID:
                if not is_pseudo_id(g):
                    return False
            elif e != g:
                return False
        return len(set(got)) == len(got)
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    return expected == got


@dataclass(slots=True)
class Mismatch:
    key: str
    field: str
    expected: Any
    got: Any
    context: str


@dataclass
class Report:
    """Per-field tallies (asserted, right) and the mismatches, for one or more captures."""

    asserted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    right: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    mismatches: list[Mismatch] = field(default_factory=list)
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    calls_expected: int = 0
    calls_found: int = 0

    def add(self, name: str, ok: bool) -> None:
        self.asserted[name] += 1
        self.right[name] += ok

    def accuracy(self, name: str) -> float:
        n = self.asserted.get(name, 0)
        return 1.0 if n == 0 else self.right[name] / n

    def field_names(self) -> list[str]:
        known = [f for f in FIELD_ORDER if f in self.asserted]
        return known + sorted(f for f in self.asserted if f not in FIELD_ORDER)

    def worst(self) -> float:
        return min((self.accuracy(f) for f in self.field_names()), default=1.0)

    def merge(self, other: Report) -> None:
        for k, v in other.asserted.items():
            self.asserted[k] += v
        for k, v in other.right.items():
            self.right[k] += v
        self.mismatches += other.mismatches
        self.unexpected += other.unexpected
        self.calls_expected += other.calls_expected
        self.calls_found += other.calls_found


def score(pairs: list[tuple[Expectation, dict[str, Any] | None]], unexpected: list[dict[str, Any]]) -> Report:
    rep = Report(unexpected=list(unexpected))
    for exp, call in pairs:
        rep.calls_expected += 1
        ctx = f"{exp.fields.get('wire_api')} {exp.path}"
        rep.add("found", call is not None)
        if call is None:
            rep.mismatches.append(Mismatch(exp.key, "found", True, False, ctx))
            for name in exp.fields:
                rep.add(name, False)
            continue
        rep.calls_found += 1
        for name, expected in exp.fields.items():
            got = actual_value(call, name)
            ok = _same(name, expected, got, exp)
            rep.add(name, ok)
            if not ok:
                rep.mismatches.append(Mismatch(exp.key, name, expected, got, ctx))
    return rep


def evaluate(pcap: str | Path, truth: str | Path, workers: int = 0) -> Report:
    """Run the engine on ``pcap`` and score it against ``truth``."""
    exps = load_expectations(truth)
    calls = run_engine(pcap, workers=workers)
    pairs, unexpected = match_calls(exps, calls)
    return score(pairs, unexpected)


# --- output --------------------------------------------------------------------------------------------


def _short(v: Any, n: int = 160) -> str:
    s = orjson.dumps(v).decode() if not isinstance(v, str) else repr(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def format_report(rep: Report, title: str = "", max_mismatches: int | None = 200) -> str:
    lines = [title] if title else []
    lines.append(f"calls: {rep.calls_found}/{rep.calls_expected} found, {len(rep.unexpected)} unexpected")
    lines.append(f"{'field':<26} {'right':>7} {'asserted':>9} {'accuracy':>9}")
    for f in rep.field_names():
        lines.append(f"{f:<26} {rep.right[f]:>7} {rep.asserted[f]:>9} {100 * rep.accuracy(f):>8.2f}%")
    if rep.mismatches:
        lines.append(f"mismatches ({len(rep.mismatches)}):")
        for m in rep.mismatches[:max_mismatches]:
            lines.append(f"  {m.key} [{m.context}] {m.field}: expected {_short(m.expected)} got {_short(m.got)}")
        if max_mismatches is not None and len(rep.mismatches) > max_mismatches:
            lines.append(f"  … {len(rep.mismatches) - max_mismatches} more")
    for c in rep.unexpected[:50]:
        conn = c.get("connection") or {}
        lines.append(
            f"  unexpected call {c['call_id']} {conn.get('client_ip')}:{conn.get('client_port')} "
            f"{c.get('method')} {c.get('path')} {c.get('wire_api')}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.e2e.accuracy", description=__doc__.split("\n\n")[0])
    ap.add_argument("pcap")
    ap.add_argument("truth")
    ap.add_argument("--all", action="store_true", help="list every mismatch (default: the first 200)")
    ap.add_argument("--workers", type=int, default=0, help="decode processes (default 0: in process)")
    args = ap.parse_args(argv)
    rep = evaluate(args.pcap, args.truth, workers=args.workers)
    print(format_report(rep, title=f"{args.pcap} vs {args.truth}", max_mismatches=None if args.all else 200))
    return 0 if not rep.mismatches and not rep.unexpected else 1


if __name__ == "__main__":
    raise SystemExit(main())
