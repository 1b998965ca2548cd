"""Benchmark of the REST API list endpoints (interfaces.md §7) on a store of one million synthetic calls.

The store comes from ``bench_metrics.build_store`` (calls, turns, tool calls generated inside DuckDB in
seconds) plus one session row per 500 calls. Requests go through the whole HTTP stack in process
(``fastapi.testclient``): parameter parsing, the keyset query, §6 record building and JSON encoding.

For each case the first request is a warm-up; the rest are timed and the p50/p95 printed, as wall-clock
latency and as CPU time of the process (all threads): on a shared machine the wall clock mostly measures
the neighbours (the load average is printed), the CPU time what a request costs. "deep" pages
start from a cursor in the middle of the list (what following ``next_cursor`` for 5,000 pages reaches):
keyset paging makes them cost what page one costs.

Run: ``python benchmarks/bench_api.py [--calls N] [--db PATH] [--repeat R]``. Target: p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench_metrics import build_store
from fastapi.testclient import TestClient

from heron_core.store.db import open_store
from heron_tui.api import create_app
from heron_tui.api.paging import encode_cursor, fingerprint, parse_sort
from heron_tui.api.routes_calls import CALL_SORTS
from heron_tui.api.routes_turns import SESSION_SORTS, TURN_SORTS

_SESSIONS_SQL = """
INSERT INTO sessions (session_id, native_session_id, session_source, source_id, agent_kind, first_start, last_end,
    turn_count, turns_complete, turns_incomplete, turns_partial, call_count, auxiliary_call_count, first_turn_id,
    last_turn_id, models, input_total_tokens, output_tokens, total_tokens, cost_usd, cost_complete, tool_call_count,
    tool_error_count, insight_count, server)
SELECT session_id, session_id, 'header', 'bench', any_value(agent_kind), min(start), max("end"), count(*),
    count(*) FILTER (WHERE status = 'complete'), count(*) FILTER (WHERE status = 'incomplete'),
    count(*) FILTER (WHERE status = 'partial'), sum(call_count), 0, min(turn_id), max(turn_id), ['model-1'],
    sum(input_total_tokens), sum(output_tokens), sum(total_tokens), sum(cost_usd), true, sum(tool_call_count),
    sum(tool_error_count), 0, any_value(server)
FROM turns GROUP BY session_id
"""


def _deep_cursor(conn: Any, table: str, id_col: str, sort: str, allowed: dict[str, str], where: str,
                 query: list[tuple[str, str]]) -> str:
    """The cursor ``next_cursor`` would hold after walking to the middle of the list."""
    s = parse_sort(sort, allowed, sort)
    n = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]
    value, row_id = conn.execute(f"SELECT {s.sql}, {id_col} FROM {table} WHERE {where} "
                                 f"ORDER BY {s.order_by(id_col)} LIMIT 1 OFFSET ?", [n // 2]).fetchone()
    return encode_cursor(s, value, row_id, fingerprint(query))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--db", default=None, help="DuckDB file (default: in memory)")
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()

    store = open_store(args.db)
    conn = store.conn
    t = time.perf_counter()
    if conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 0:
        build_store(conn, args.calls)
    if conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0:  # e.g. a store from bench_metrics
        conn.execute(_SESSIONS_SQL)
    counts = {tb: conn.execute(f"SELECT count(*) FROM {tb}").fetchone()[0] for tb in ("calls", "turns", "sessions")}
    print(f"store: {counts} (built/opened in {time.perf_counter() - t:.1f} s), {os.cpu_count()} cpu(s)")

    client = TestClient(create_app(store))
    hidden = "coalesce(hop_role, '') NOT IN ('proxy_out', 'mirror_secondary')"
    cases: list[tuple[str, str, list[tuple[str, str]]]] = [
        ("calls, page 1 (-request_start)", "/api/calls", []),
        ("calls, page 1 (-ttft_ms)", "/api/calls", [("sort", "-ttft_ms")]),
        ("calls, filtered, -cost_usd", "/api/calls", [("wire_api", "anthropic"), ("model", "model-6"),
                                                      ("status_code", "200"), ("sort", "-cost_usd")]),
        ("calls, display filter", "/api/calls", [("filter", "ttft > 2s && model ~ 'model-1'")]),
        ("calls, page 1 + count", "/api/calls", [("count", "true")]),
        ("calls, 1000 per page", "/api/calls", [("limit", "1000")]),
        ("turns, page 1 (-start)", "/api/turns", []),
        ("turns, -duration_ms, complete", "/api/turns", [("sort", "-duration_ms"), ("status", "complete")]),
        ("sessions, page 1 (-last_end)", "/api/sessions", []),
        ("sessions, -cost_usd", "/api/sessions", [("sort", "-cost_usd")]),
    ]
    deep = [
        ("calls, deep page (-request_start)", "/api/calls", "calls", "call_id", "-request_start", CALL_SORTS,
         hidden, []),
        ("calls, deep page (e2e_ms)", "/api/calls", "calls", "call_id", "e2e_ms", CALL_SORTS, hidden,
         [("sort", "e2e_ms")]),
        ("turns, deep page (-start)", "/api/turns", "turns", "turn_id", "-start", TURN_SORTS,
         "status <> 'partial'", []),
        ("sessions, deep page (-last_end)", "/api/sessions", "sessions", "session_id", "-last_end", SESSION_SORTS,
         "TRUE", []),
    ]
    for name, path, table, id_col, sort, allowed, where, query in deep:
        cur = _deep_cursor(conn, table, id_col, sort, allowed, where, query)
        cases.append((name, path, query + [("cursor", cur)]))

    def pct(xs: list[float], q: float) -> float:
        xs = sorted(xs)
        return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]

    worst = worst_cpu = 0.0
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'case':36s} {'wall p50':>9s} {'wall p95':>9s} {'cpu p50':>8s} {'cpu p95':>8s} {'items':>6s}")
    for name, path, params in cases:
        r = client.get(path, params=params)
        assert r.status_code == 200, (name, r.text)
        items = len(r.json()["items"])
        walls, cpus = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            r = client.get(path, params=params)
            walls.append((time.perf_counter() - t0) * 1000)
            cpus.append((time.process_time() - c0) * 1000)
            assert r.status_code == 200
        p95, cpu95 = pct(walls, 0.95), pct(cpus, 0.95)
        worst, worst_cpu = max(worst, p95), max(worst_cpu, cpu95)
        flag = "" if p95 < 100 else "  (wall over 100 ms)"
        print(f"{name:36s} {statistics.median(walls):9.1f} {p95:9.1f} {statistics.median(cpus):8.1f} {cpu95:8.1f} "
              f"{items:6d}{flag}")
    print(f"worst p95: wall {worst:.1f} ms, cpu {worst_cpu:.1f} ms (target < 100 ms); "
          f"load average after: {os.getloadavg()[0]:.1f}")
    store.close()


if __name__ == "__main__":
    main()
