"""Services and topology (metrics.md §6), UI-free: the TUI and ``/api/services[/topology]`` use them.

A service is a call's ``server`` (``ip:port``, or the Host for eBPF calls). Its figures come from one
grouped aggregate over ``calls`` and one over ``exchanges`` (every exchange to the service, LLM or not:
paths, the latest ``Server`` header, LiteLLM headers). The ``app`` label applies rules 1–7 in order; the
body rules (SGLang/vLLM keys in responses, ``vllm:`` metrics) decompress only a bounded sample of stored
bodies per service that the cheaper rules left open, so the cost does not grow with the database.

Hop legs are *included* by default here: per-upstream views want every leg (§3.2).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import duckdb
import orjson

from heron_core.bodies import decompress_body
from heron_core.pricing import runtime_marker
from heron_core.query.metrics import MetricFilters, _values

MAX_MODELS = 32
MAX_PATHS = 8
BODY_SAMPLE = 16
"""Stored response bodies decompressed per service for the body rules (5–6)."""

PROVIDER_APPS = ("openai", "anthropic", "google", "azure", "openrouter", "deepseek")
OLLAMA_PATHS = ("/api/chat", "/api/generate", "/api/tags", "/api/show", "/api/version")
LLAMACPP_PATHS = ("/props", "/slots", "/completion")
SGLANG_PATHS = ("/get_server_info", "/flush_cache", "/health_generate")



def exchange_server(alias: str = "") -> str:
    """``Exchange.server`` in SQL: the same text as ``calls.server`` (``ip:port``, ``[v6]:port``, Host)."""
    p = f"{alias}." if alias else ""
    return (f"CASE WHEN {p}server_ip IS NULL THEN {p}host WHEN strpos({p}server_ip, ':') > 0 "
            f"THEN '[' || {p}server_ip || ']:' || {p}server_port ELSE {p}server_ip || ':' || {p}server_port END")


EXCHANGE_SERVER = exchange_server()

_SERVER_HDR = r'(?i)\["server",\s*"((?:[^"\\]|\\.)*)"\]'
_ERR = "(status_code >= 400 OR finish IN ('error', 'aborted'))"
_SORTABLE = ("server", "app", "calls", "errors", "first_seen", "last_seen", "input_total_tokens",
             "output_tokens", "cost_usd")


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _filters(filters: MetricFilters | None) -> MetricFilters:
    return filters if filters is not None else MetricFilters(hops="include")


def _range_sql(f: MetricFilters, column: str) -> tuple[str, list[Any]]:
    t0, t1 = f.bounds()
    sql, params = "", []
    if t0 is not None:
        sql += f" AND {column} >= ?"
        params.append(t0)
    if t1 is not None:
        sql += f" AND {column} < ?"
        params.append(t1)
    return sql, params


def services(conn: duckdb.DuckDBPyConnection, filters: MetricFilters | None = None, sort: str | None = None,
             body_sample: int = BODY_SAMPLE) -> list[dict[str, Any]]:
    """Service rows over the range (default order: most calls first; ``sort`` = ``field`` or ``-field``)."""
    f = _filters(filters)
    where, params = f.predicate()
    rng, rparams = _range_sql(f, "request_start")
    cur = conn.cursor()
    try:
        cur.execute(f"""
            SELECT server, count(*) AS calls, count(*) FILTER (WHERE {_ERR}) AS errors,
                count(*) FILTER (WHERE status_code >= 400 AND status_code < 500) AS errors_4xx,
                count(*) FILTER (WHERE status_code >= 500 AND status_code < 600) AS errors_5xx,
                count(*) FILTER (WHERE finish = 'aborted') AS aborted,
                count(*) FILTER (WHERE status_code = 429) AS rate_limited,
                list(DISTINCT wire_api ORDER BY wire_api) AS wire_apis,
                quantile_cont(ttft_ms, [0.5, 0.95]) FILTER (WHERE ok AND ttft_ms IS NOT NULL) AS ttft,
                quantile_cont(e2e_ms, [0.5, 0.95]) FILTER (WHERE ok AND e2e_ms IS NOT NULL) AS e2e,
                sum(input_total_tokens) AS input_total_tokens, sum(output_tokens) AS output_tokens,
                sum(cache_read_tokens) AS cache_read_tokens, sum(cache_creation_tokens) AS cache_creation_tokens,
                sum(reasoning_tokens) AS reasoning_tokens, sum(cost_usd) AS cost_usd,
                min(request_start) AS first_seen, max(coalesce(response_end, request_start)) AS last_seen,
                mode(provider) FILTER (WHERE provider IS NOT NULL) AS provider, mode(host) AS host,
                any_value(server_ip) AS server_ip
            FROM calls WHERE server IS NOT NULL AND {where}{rng} GROUP BY server""", params + rparams)
        names = [d[0] for d in cur.description]
        rows = {r[0]: dict(zip(names, r)) for r in cur.fetchall()}
        if not rows:
            return []
        models: dict[str, list[str]] = {}
        for server, model, _n in cur.execute(f"""
                SELECT server, model, count(*) AS n FROM calls WHERE server IS NOT NULL AND {where}{rng}
                GROUP BY ALL ORDER BY server, n DESC, model""", params + rparams).fetchall():
            lst = models.setdefault(server, [])
            if len(lst) < MAX_MODELS:
                lst.append(model)
        ex = _exchange_facts(cur, f, list(rows))
        out = []
        for server, r in rows.items():
            e = ex.get(server, {})
            row = {
                "server": server,
                "app": None,
                "calls": r["calls"],
                "errors": {"total": r["errors"], "errors_4xx": r["errors_4xx"], "errors_5xx": r["errors_5xx"],
                           "aborted": r["aborted"], "rate_limited": r["rate_limited"]},
                "models": models.get(server, []),
                "wire_apis": list(r["wire_apis"] or []),
                "paths": e.get("paths", []),
                "ttft_ms": _p(r["ttft"]),
                "e2e_ms": _p(r["e2e"]),
                "input_total_tokens": r["input_total_tokens"],
                "output_tokens": r["output_tokens"],
                "cache_read_tokens": r["cache_read_tokens"],
                "cache_creation_tokens": r["cache_creation_tokens"],
                "reasoning_tokens": r["reasoning_tokens"],
                "cost_usd": r["cost_usd"],
                "first_seen": r["first_seen"],
                "last_seen": r["last_seen"],
                "server_header": e.get("server_header"),
                "host": r["host"],
                "provider": r["provider"],
                "server_ip": r["server_ip"],
            }
            row["app"] = _app(cur, f, row, e, body_sample)
            out.append(row)
    finally:
        cur.close()
    return _sorted(out, sort)


def _p(q: list[float] | None) -> dict[str, float | None]:
    return {"p50": None if q is None else q[0], "p95": None if q is None else q[1]}


def _sorted(rows: list[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
    field = (sort or "-calls").strip()
    desc = field.startswith("-")
    field = field.lstrip("-+")
    if field not in _SORTABLE:
        raise ValueError(f"invalid sort {sort!r}: use {', '.join(_SORTABLE)} (prefix - for descending)")

    def key(r: dict[str, Any]) -> Any:
        v = r[field]["total"] if field == "errors" else r[field]
        return (v is None, v if v is not None else 0)

    rows.sort(key=lambda r: r["server"])  # ties broken by id, stable
    present = [r for r in rows if key(r)[0] is False]
    missing = [r for r in rows if key(r)[0] is True]
    present.sort(key=lambda r: key(r)[1], reverse=desc)
    return present + missing


def _exchange_facts(cur: duckdb.DuckDBPyConnection, f: MetricFilters, servers: list[str]) -> dict[str, dict]:
    """Per service, from all its exchanges: top paths, latest ``Server`` header, path and header flags."""
    rng, rparams = _range_sql(f, "request_start")
    srcs = _values(f.source_id)
    src = f" AND source_id IN ({', '.join('?' * len(srcs))})" if srcs else ""
    flag = {name: f"bool_or(path IN {_in(paths)})" for name, paths in
            (("ollama_paths", OLLAMA_PATHS), ("llamacpp_paths", LLAMACPP_PATHS), ("sglang_paths", SGLANG_PATHS))}
    sql = f"""
    WITH e AS (
        SELECT {EXCHANGE_SERVER} AS server, path, request_start, response_headers::VARCHAR AS h FROM exchanges
        WHERE {EXCHANGE_SERVER} IN (SELECT unnest(?::VARCHAR[])){rng}{src}
    )
    SELECT server, {', '.join(f'{v} AS {k}' for k, v in flag.items())},
        bool_or(regexp_matches(h, '(?i)\\["x-litellm-')) AS litellm_header,
        arg_max(regexp_extract(h, '{_SERVER_HDR}', 1), request_start)
            FILTER (WHERE regexp_matches(h, '{_SERVER_HDR}')) AS server_header,
        bool_or(path = '/metrics') AS has_metrics
    FROM e GROUP BY server
    """
    out: dict[str, dict] = {}
    cur.execute(sql, [servers] + rparams + srcs)
    names = [d[0] for d in cur.description]
    for row in cur.fetchall():
        d = dict(zip(names, row))
        if d["server_header"] is not None:
            d["server_header"] = orjson.loads(b'"' + d["server_header"].encode() + b'"')  # undo JSON escapes
        out[d["server"]] = d
    for server, path, _n in cur.execute(f"""
            SELECT {EXCHANGE_SERVER} AS server, path, count(*) AS n FROM exchanges
            WHERE {EXCHANGE_SERVER} IN (SELECT unnest(?::VARCHAR[])){rng}{src}
            GROUP BY ALL ORDER BY server, n DESC, path""", [servers] + rparams + srcs).fetchall():
        lst = out.setdefault(server, {}).setdefault("paths", [])
        if len(lst) < MAX_PATHS:
            lst.append(path)
    return out


def _app(cur: duckdb.DuckDBPyConnection, f: MetricFilters, row: dict[str, Any], e: dict[str, Any],
         body_sample: int) -> str | None:
    """§6 ``app`` label, rules 1–7, first match."""
    server_hdr = (row["server_header"] or "").lower()
    if row["provider"] in PROVIDER_APPS:
        return row["provider"]
    if e.get("ollama_paths") or "ollama" in server_hdr:
        return "ollama"
    if e.get("litellm_header") or server_hdr.startswith("litellm"):
        return "litellm"
    if e.get("llamacpp_paths"):
        return "llamacpp"
    if e.get("sglang_paths"):
        return "sglang"
    markers = _body_markers(cur, f, row["server"], body_sample, bool(e.get("has_metrics")))
    if "sglang" in markers:
        return "sglang"
    if "vllm" in markers:
        return "vllm"
    apis = row["wire_apis"]
    if apis and all(a.startswith("openai-") for a in apis):
        return "openai-compatible"
    return None


def _body_markers(cur: duckdb.DuckDBPyConnection, f: MetricFilters, server: str, sample: int,
                  has_metrics: bool) -> set[str]:
    """Engines named by a bounded sample of the service's stored responses: rebuilt response objects,
    the raw stream text (rebuilt objects drop engine-specific keys) and ``/metrics`` bodies."""
    if sample <= 0:
        return set()
    rng, rparams = _range_sql(f, "e.request_start")
    found: set[str] = set()
    rows = cur.execute(f"""
        SELECT b.part, b.codec, b.data, e.is_stream FROM exchanges e JOIN bodies b USING (exchange_id)
        WHERE {exchange_server('e')} = ? AND e.is_llm
          AND (b.part = 'response_object' OR (b.part = 'response' AND e.is_stream)){rng}
        ORDER BY e.request_start DESC, b.part LIMIT ?""", [server] + rparams + [sample]).fetchall()
    if has_metrics:
        rows += cur.execute(f"""
            SELECT 'metrics', b.codec, b.data, false FROM exchanges e JOIN bodies b USING (exchange_id)
            WHERE {exchange_server('e')} = ? AND e.path = '/metrics' AND b.part = 'response'{rng}
            ORDER BY e.request_start DESC LIMIT 2""", [server] + rparams).fetchall()
    for part, codec, data, _stream in rows:
        try:
            body = decompress_body(codec, data)
        except Exception:
            continue
        if part == "metrics":
            if b"vllm:" in body:
                found.add("vllm")
        elif part == "response_object":
            try:
                m = runtime_marker(orjson.loads(body))
            except orjson.JSONDecodeError:
                m = None
            if m:
                found.add(m)
        else:
            found.update(_stream_markers(body))
    return found


def _stream_markers(body: bytes, tail: int = 8) -> set[str]:
    """Markers in the last ``tail`` JSON data lines of a stored SSE/NDJSON stream."""
    found: set[str] = set()
    if b"stop_reason" not in body and b"matched_stop" not in body and b"prompt_logprobs" not in body \
            and b"kv_transfer_params" not in body:
        return found
    lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
    seen = 0
    for ln in reversed(lines):
        if ln.startswith(b"data:"):
            ln = ln[5:].strip()
        if not ln.startswith(b"{"):
            continue
        seen += 1
        try:
            m = runtime_marker(orjson.loads(ln))
        except orjson.JSONDecodeError:
            m = None
        if m:
            found.add(m)
        if seen >= tail:
            break
    return found


def _loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


# --- topology ------------------------------------------------------------------------------------------


def topology(conn: duckdb.DuckDBPyConnection, filters: MetricFilters | None = None) -> dict[str, Any]:
    """``{nodes:[{id, kind, label, app, calls}], edges:[{from, to, kind, calls, errors}]}`` (§6).

    Edges: ``client`` (client → service, from every call except secondary hop legs); ``proxy`` (the
    ``proxy_in`` leg's service → the ``proxy_out`` leg's service, one per folded pair); ``inferred`` (a
    service's IP is the client IP of calls to another service) unless a proxy edge already joins the two
    services in either direction (the direction a proxy edge shows is the real one). Loopback addresses
    infer nothing: on one host every client and service shares the IP, so it says nothing about who calls
    whom.
    """
    f = _filters(filters)
    svc = services(conn, f)
    where, params = f.predicate()
    rng, rparams = _range_sql(f, "request_start")
    client = ("CASE WHEN client_ip IS NOT NULL THEN client_ip WHEN process_comm IS NOT NULL "
              "THEN process_comm || '[' || coalesce(CAST(process_pid AS VARCHAR), '?') || ']' ELSE 'unknown' END")
    nohop = "(hop_role IS NULL OR hop_role NOT IN ('proxy_out', 'mirror_secondary'))"
    cur = conn.cursor()
    try:
        client_rows = cur.execute(f"""
            SELECT {client} AS c, server, count(*), count(*) FILTER (WHERE {_ERR}) FROM calls
            WHERE server IS NOT NULL AND {nohop} AND {where}{rng} GROUP BY ALL ORDER BY 1, 2""",
                                  params + rparams).fetchall()
        proxy_rows = cur.execute(f"""
            SELECT i.server, o.server, count(*), count(*) FILTER (WHERE o.status_code >= 400
                OR o.finish IN ('error', 'aborted'))
            FROM calls o JOIN calls i ON o.hop_peer_call_id = i.call_id
            WHERE o.hop_role = 'proxy_out' AND i.server IS NOT NULL AND o.server IS NOT NULL
              {rng.replace('request_start', 'o.request_start')}
            GROUP BY ALL ORDER BY 1, 2""", rparams).fetchall()
        ip_of = {s["server"]: s["server_ip"] for s in svc if s["server_ip"]}
        inferred_rows = []
        if ip_of:
            inferred_rows = cur.execute(f"""
                SELECT client_ip, server, count(*), count(*) FILTER (WHERE {_ERR}) FROM calls
                WHERE client_ip IN (SELECT unnest(?::VARCHAR[])) AND server IS NOT NULL AND {where}{rng}
                GROUP BY ALL ORDER BY 1, 2""", [sorted(set(ip_of.values()))] + params + rparams).fetchall()
    finally:
        cur.close()
    nodes = [{"id": f"service:{s['server']}", "kind": "service", "label": s["server"], "app": s["app"],
              "calls": s["calls"]} for s in svc]
    known = {s["server"] for s in svc}
    clients: dict[str, int] = {}
    edges = []
    for c, server, n, err in client_rows:
        clients[c] = clients.get(c, 0) + n
        edges.append({"from": f"client:{c}", "to": f"service:{server}", "kind": "client", "calls": n,
                      "errors": err})
    nodes += [{"id": f"client:{c}", "kind": "client", "label": c, "app": None, "calls": n}
              for c, n in sorted(clients.items())]
    joined = set()
    for a, b, n, err in proxy_rows:
        if a in known and b in known:
            joined.update({(a, b), (b, a)})
            edges.append({"from": f"service:{a}", "to": f"service:{b}", "kind": "proxy", "calls": n,
                          "errors": err})
    by_ip: dict[str, list[str]] = {}
    for server, ip in ip_of.items():
        if not _loopback(ip):
            by_ip.setdefault(ip, []).append(server)
    for ip, target, n, err in inferred_rows:
        for source in sorted(by_ip.get(ip, [])):
            if source != target and (source, target) not in joined and target in known:
                edges.append({"from": f"service:{source}", "to": f"service:{target}", "kind": "inferred",
                              "calls": n, "errors": err})
    return {"nodes": nodes, "edges": edges}
