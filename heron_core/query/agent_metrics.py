"""Agent-layer metrics (metrics.md §4) and rate-limit pressure (agents-and-turns.md §12.4), UI-free.

Computed from ``turns`` and ``tool_calls`` (and ``calls`` for per-call series) at query time. Turns count
by their ``start``; ``partial`` turns are excluded unless ``include_partial``; ``in_progress`` turns are
never stored, so never here. Each function is one or two grouped aggregates (exact ``quantile_cont``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import duckdb
import orjson

from heron_core.query.metrics import QNAMES, QUANTILES, MetricFilters, _values

HISTOGRAM: tuple[tuple[str, float, float | None], ...] = (
    ("<1s", 0.0, 1_000.0),
    ("1-5s", 1_000.0, 5_000.0),
    ("5-15s", 5_000.0, 15_000.0),
    ("15-60s", 15_000.0, 60_000.0),
    ("1-5min", 60_000.0, 300_000.0),
    ("5-15min", 300_000.0, 900_000.0),
    ("15-60min", 900_000.0, 3_600_000.0),
    (">=1h", 3_600_000.0, None),
)
"""§4 ``turn_duration_histogram`` buckets: ``[lo, hi)`` in ms."""

_INSIGHT_NS = uuid.UUID("6f1c3b5e-8d2a-5c4e-9b7f-2a1d0e3c4b5a")
_Q = "[" + ", ".join(repr(q) for q in QUANTILES) + "]"


def _turn_where(f: MetricFilters, include_partial: bool, alias: str = "") -> tuple[str, list[Any]]:
    """Filters that apply to turns: range on ``start``, source, agent kind, session, wire API, server,
    model (any of the turn's models)."""
    p = f"{alias}." if alias else ""
    conds = [f"{p}status IN ('complete', 'incomplete'{', ' + repr('partial') if include_partial else ''})"]
    params: list[Any] = []
    t0, t1 = f.bounds()
    if t0 is not None:
        conds.append(f'{p}"start" >= ?')
        params.append(t0)
    if t1 is not None:
        conds.append(f'{p}"start" < ?')
        params.append(t1)
    for col, value in (("source_id", f.source_id), ("agent_kind", f.agent_kind), ("session_id", f.session_id),
                       ("wire_api", f.wire_api), ("server", f.server)):
        vals = _values(value)
        if not vals:
            continue
        ors = []
        if col == "agent_kind" and "none" in vals:
            vals = [v for v in vals if v != "none"]
            ors.append(f"{p}agent_kind IS NULL")
        if vals:
            ors.append(f"{p}{col} IN ({', '.join('?' * len(vals))})")
            params.extend(vals)
        conds.append("(" + " OR ".join(ors) + ")")
    models = _values(f.model)
    if models:
        conds.append(f"list_has_any({p}models, ?::VARCHAR[])")
        params.append(models)
    return " AND ".join(conds), params


def _q(qs: Sequence[float] | None, names: Sequence[str] = QNAMES) -> dict[str, float | None]:
    return {n: (None if qs is None else qs[QNAMES.index(n)]) for n in names}


def agents(conn: duckdb.DuckDBPyConnection, filters: MetricFilters | None = None, include_partial: bool = False,
           include_incomplete: bool = False) -> dict[str, Any]:
    """Per agent kind (null shown as ``none``): every §4 metric and the duration histogram, plus
    ``insights_by_kind`` for the range (``/api/metrics/agents``)."""
    f = filters or MetricFilters()
    where, params = _turn_where(f, include_partial)
    dur = "status = 'complete'" + (" OR status = 'incomplete'" if include_incomplete else "")
    hist = ", ".join(
        f"count(*) FILTER (WHERE ({dur}) AND duration_ms >= {lo}" + (f" AND duration_ms < {hi})" if hi else ")")
        + f" AS h{i}" for i, (_n, lo, hi) in enumerate(HISTOGRAM))
    sql = f"""
    SELECT coalesce(agent_kind, 'none') AS kind, count(*) AS turns,
        count(*) FILTER (WHERE status = 'complete') AS s_complete,
        count(*) FILTER (WHERE status = 'incomplete') AS s_incomplete,
        count(*) FILTER (WHERE status = 'partial') AS s_partial,
        quantile_cont(duration_ms, {_Q}) FILTER (WHERE {dur}) AS dur_q,
        avg(duration_ms) FILTER (WHERE {dur}) AS dur_avg, max(duration_ms) FILTER (WHERE {dur}) AS dur_max,
        count(duration_ms) FILTER (WHERE {dur}) AS dur_n, {hist},
        avg(call_count) AS cpt_avg, quantile_cont(call_count, {_Q}) AS cpt_q, max(call_count) AS cpt_max,
        sum(subagent_call_count) AS sub_calls, sum(call_count) AS all_calls,
        quantile_cont(first_response_ms, {_Q}) AS fr_q,
        sum(tool_call_count) AS tool_calls,
        avg(total_tokens) AS tok_avg, quantile_cont(total_tokens, {_Q}) AS tok_q,
        avg(cost_usd) AS cost_avg, quantile_cont(cost_usd, {_Q}) AS cost_q, sum(cost_usd) AS cost_sum
    FROM turns WHERE {where} GROUP BY 1 ORDER BY turns DESC, kind
    """
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        twhere, tparams = _turn_where(f, include_partial, alias="t")
        tools: dict[str, tuple[int, int, int]] = {
            k: (ok, err, miss) for k, ok, err, miss in cur.execute(f"""
            SELECT coalesce(t.agent_kind, 'none'), count(*) FILTER (WHERE c.result_status = 'ok'),
                   count(*) FILTER (WHERE c.result_status = 'error'),
                   count(*) FILTER (WHERE c.result_status = 'missing')
            FROM tool_calls c JOIN turns t ON c.turn_id = t.turn_id WHERE {twhere} GROUP BY 1""",
                                                         tparams).fetchall()}
        insights = _insights_by_kind(cur, f)
    finally:
        cur.close()
    out = []
    for r in rows:
        ok, err, miss = tools.get(r["kind"], (0, 0, 0))
        turns = r["turns"]
        out.append({
            "agent_kind": r["kind"],
            "turns": turns,
            "turns_by_status": {"complete": r["s_complete"], "incomplete": r["s_incomplete"],
                                **({"partial": r["s_partial"]} if include_partial else {})},
            "turn_duration_ms": {**_q(r["dur_q"]), "avg": r["dur_avg"], "max": r["dur_max"], "n": r["dur_n"]},
            "turn_duration_histogram": [{"bucket": n, "lo_ms": lo, "hi_ms": hi, "count": r[f"h{i}"]}
                                        for i, (n, lo, hi) in enumerate(HISTOGRAM)],
            "calls_per_turn": {"avg": r["cpt_avg"], **_q(r["cpt_q"], ("p50", "p95")), "max": r["cpt_max"]},
            "subagent_call_share": (r["sub_calls"] or 0) / r["all_calls"] if r["all_calls"] else None,
            "first_response_ms": _q(r["fr_q"], ("p50", "p95")),
            "tool_calls": r["tool_calls"] or 0,
            "tool_calls_per_turn": {"avg": (r["tool_calls"] or 0) / turns if turns else None},
            "tool_success_rate": ok / (ok + err) if ok + err else None,
            "tool_missing": miss,
            "turn_tokens": {"avg": r["tok_avg"], **_q(r["tok_q"], ("p95",))},
            "turn_cost_usd": {"avg": r["cost_avg"], **_q(r["cost_q"], ("p95",)), "sum": r["cost_sum"]},
        })
    return {"rows": out, "insights_by_kind": insights}


def _insights_by_kind(cur: duckdb.DuckDBPyConnection, f: MetricFilters) -> dict[str, dict[str, int]]:
    """Stored insight rows per kind whose ``last_seen`` is in the range: ``{kind: {rows, count}}``."""
    conds, params = ["TRUE"], []
    t0, t1 = f.bounds()
    if t0 is not None:
        conds.append("last_seen >= ?")
        params.append(t0)
    if t1 is not None:
        conds.append("first_seen < ?")
        params.append(t1)
    for col, value in (("source_id", f.source_id), ("session_id", f.session_id)):
        vals = _values(value)
        if vals:
            conds.append(f"{col} IN ({', '.join('?' * len(vals))})")
            params.extend(vals)
    rows = cur.execute(f"SELECT kind, count(*), sum(count) FROM insights WHERE {' AND '.join(conds)} "
                       "GROUP BY 1 ORDER BY 1", params).fetchall()
    return {k: {"rows": n, "count": int(c or 0)} for k, n, c in rows}


def tools(conn: duckdb.DuckDBPyConnection, filters: MetricFilters | None = None) -> dict[str, Any]:
    """Per tool name: ``count`` (issued), ``errors``, ``missing``, ``success_rate`` = ok / (ok + error),
    ``wait_ms.{p50,p95}`` over resolved calls (``/api/metrics/tools``). Range on ``issued_at``; the agent
    kind comes from the tool call's session."""
    f = filters or MetricFilters()
    conds, params = ["TRUE"], []
    t0, t1 = f.bounds()
    if t0 is not None:
        conds.append("c.issued_at >= ?")
        params.append(t0)
    if t1 is not None:
        conds.append("c.issued_at < ?")
        params.append(t1)
    sess = _values(f.session_id)
    if sess:
        conds.append(f"c.session_id IN ({', '.join('?' * len(sess))})")
        params.extend(sess)
    join = ""
    kinds = _values(f.agent_kind)
    srcs = _values(f.source_id)
    if kinds or srcs:
        join = " LEFT JOIN sessions s ON s.session_id = c.session_id"
        if kinds:
            ors = ["s.agent_kind IS NULL"] if "none" in kinds else []
            vals = [k for k in kinds if k != "none"]
            if vals:
                ors.append(f"s.agent_kind IN ({', '.join('?' * len(vals))})")
                params.extend(vals)
            conds.append("(" + " OR ".join(ors) + ")")
        if srcs:
            conds.append(f"s.source_id IN ({', '.join('?' * len(srcs))})")
            params.extend(srcs)
    sql = f"""
    SELECT c.name, count(*) AS n,
        count(*) FILTER (WHERE c.result_status = 'ok') AS ok,
        count(*) FILTER (WHERE c.result_status = 'error') AS err,
        count(*) FILTER (WHERE c.result_status = 'missing') AS miss,
        quantile_cont(c.wait_ms, [0.5, 0.95]) FILTER (WHERE c.result_status IN ('ok', 'error')) AS w
    FROM tool_calls c{join} WHERE {' AND '.join(conds)} GROUP BY 1 ORDER BY n DESC, c.name
    """
    cur = conn.cursor()
    try:
        rows = cur.execute(sql, params).fetchall()
    finally:
        cur.close()
    return {"rows": [{"name": name, "count": n, "errors": err, "missing": miss,
                      "success_rate": ok / (ok + err) if ok + err else None,
                      "wait_ms": {"p50": None if w is None else w[0], "p95": None if w is None else w[1]}}
                     for name, n, ok, err, miss, w in rows]}


def context_growth(conn: duckdb.DuckDBPyConnection, session_id: str) -> dict[str, Any]:
    """§4 context growth: per session, ``(call index, input_total_tokens, context_delta_tokens)`` of the
    main-agent calls (no sub-agent, not auxiliary, no hop legs) in request order."""
    sql = """
    SELECT call_id, request_start, input_total_tokens, context_delta_tokens FROM calls
    WHERE session_id = ? AND subagent IS NULL AND NOT coalesce(is_auxiliary, false)
      AND (hop_role IS NULL OR hop_role NOT IN ('proxy_out', 'mirror_secondary'))
    ORDER BY request_start, call_id
    """
    cur = conn.cursor()
    try:
        rows = cur.execute(sql, [session_id]).fetchall()
    finally:
        cur.close()
    return {"session_id": session_id,
            "points": [{"index": i, "call_id": cid, "t": t, "input_total_tokens": it, "context_delta_tokens": cd}
                       for i, (cid, t, it, cd) in enumerate(rows)]}


def rate_limit_pressure(conn: duckdb.DuckDBPyConnection, filters: MetricFilters | None = None,
                        share: float = 0.10, min_calls: int = 5) -> list[dict[str, Any]]:
    """agents-and-turns.md §12.4, computed at query time: per server and model, 1-minute windows with
    ≥ ``min_calls`` calls and a 429 share ≥ ``share`` (``insight.rate_limit_share``) → warning, ≥ 50 % →
    critical. One insight-shaped record per (server, model) covering all its windows in the range; details
    carry the windows and the latest ``ratelimit`` (retry-after and rate-limit headers) seen."""
    f = filters or MetricFilters()
    where, params = f.predicate()
    t0, t1 = f.bounds()
    rng, rparams = "", []
    if t0 is not None:
        rng += " AND request_start >= ?"
        rparams.append(t0)
    if t1 is not None:
        rng += " AND request_start < ?"
        rparams.append(t1)
    wb = "CAST(floor(request_start / 60) AS BIGINT)"
    cur = conn.cursor()
    try:
        # pass 1: the offending windows (one grouped aggregate); pass 2: details of those windows only
        wins = cur.execute(f"""
            SELECT server, model, {wb} AS wb, count(*) AS n, count_if(status_code = 429) AS n429
            FROM calls WHERE {where}{rng} GROUP BY ALL
            HAVING count(*) >= ? AND count_if(status_code = 429) >= ? * count(*)""",
                           params + rparams + [min_calls, share]).fetchall()
        detail: dict[tuple[Any, Any, int], tuple] = {}
        if wins:
            for server, model, w, ids, rl, src in cur.execute(f"""
                SELECT server, model, {wb} AS wb,
                       list(call_id ORDER BY request_start, call_id) FILTER (WHERE status_code = 429),
                       arg_max(ratelimit, request_start) FILTER (WHERE ratelimit IS NOT NULL),
                       arg_max(source_id, request_start) FILTER (WHERE status_code = 429)
                FROM calls WHERE {where}{rng} AND {wb} IN (SELECT unnest(?::BIGINT[]))
                  AND (status_code = 429 OR ratelimit IS NOT NULL)
                GROUP BY ALL""", params + rparams + [sorted({w[2] for w in wins})]).fetchall():
                detail[(server, model, w)] = (ids, rl, src)
    finally:
        cur.close()
    rows = sorted(((s, m, w, n, r, *detail.get((s, m, w), (None, None, None))) for s, m, w, n, r in wins),
                  key=lambda x: (x[0] is not None, str(x[0]), x[1] is not None, str(x[1]), x[2]))
    by_key: dict[tuple[Any, Any], list[tuple]] = {}
    for server, model, *rest in rows:
        by_key.setdefault((server, model), []).append(tuple(rest))
    out = []
    for (server, model), ws in by_key.items():
        ids = [i for w in ws for i in (w[3] or [])][:20]
        rl = next((w[4] for w in reversed(ws) if w[4] is not None), None)
        src = ws[-1][5]
        peak = max(w[2] / w[1] for w in ws)
        key = f"rate_limit_pressure|{server}|{model}"
        latest = orjson.loads(rl) if isinstance(rl, str) else rl
        n_all, n_rl = sum(w[1] for w in ws), sum(w[2] for w in ws)
        out.append({
            "insight_id": str(uuid.uuid5(_INSIGHT_NS, key)),
            "kind": "rate_limit_pressure",
            "severity": "critical" if peak >= 0.5 else "warning",
            "source_id": src,
            "session_id": None,
            "turn_id": None,
            "call_ids": ids,
            "first_seen": ws[0][0] * 60.0,
            "last_seen": ws[-1][0] * 60.0 + 60.0,
            "count": len(ws),
            "summary": (f"{server} {model}: {n_rl} of {n_all} calls rate-limited (429) in {len(ws)} "
                        f"one-minute window(s), peak {peak:.0%}"),
            "details": {
                "server": server, "model": model,
                "windows": [{"start": w[0] * 60.0, "calls": w[1], "rate_limited": w[2], "share": w[2] / w[1]}
                            for w in ws],
                "calls": n_all, "rate_limited": n_rl, "peak_share": peak,
                "latest_ratelimit": latest,
                "retry_after_s": latest.get("retry_after_s") if isinstance(latest, dict) else None,
            },
            "dedupe_key": key,
        })
    out.sort(key=lambda d: (d["first_seen"], d["dedupe_key"]))
    return out
