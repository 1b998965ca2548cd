"""``heron export otlp``: turns and calls as OpenTelemetry traces, OTLP/JSON (interfaces.md §6.5).

One ``ExportTraceServiceRequest`` per line: one per turn (a trace rooted at an ``invoke_agent`` span),
plus one per 100 calls that belong to no turn (each call its own trace). Within a turn the tree is

    invoke_agent {agent_kind}            turn start → end
      {operation} {model}                each main-agent call (CLIENT)
        execute_tool {name}              issuing call's response_end → result call's request_start
          invoke_agent {subagent}        a sub-agent spawned by that tool call (else under the root)
            {operation} {model}          the sub-agent's calls

Ids are derived, not random — trace id = first 32 hex of SHA-256(``trace|`` + turn or call id), span id =
first 16 hex of SHA-256(``span|`` + kind + ``|`` + id) — so exporting the same database twice gives
identical traces and a collector deduplicates re-exports. Attribute names follow the OpenTelemetry GenAI
semantic conventions (version ``SEMCONV_VERSION``, emitted as ``heron.semconv_version``); null values are
left out rather than sent as empty strings.

The OTLP/JSON encoding is the protocol's own (opentelemetry-proto's JSON mapping): ``traceId``/``spanId``
as hex, 64-bit integers as decimal strings, enums as numbers. Content (messages, tool arguments and
results) is off by default because traces usually leave the machine; ``content=True`` adds it from the
stored — already redacted — bodies.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import duckdb
import orjson

from heron_core import __version__
from heron_core.bodies import decompress_body
from heron_core.export.calls import SELECT_COLUMNS, CallFilters, call_record
from heron_core.export.filters import RecordFilters, values
from heron_core.export.messages import Message, Unparseable, request_trajectory, response_message
from heron_core.export.turns import TURN_STATUSES, TurnFilters, turn_record
from heron_core.store.schema import TOOL_CALLS, quote

SEMCONV_VERSION = "1.37.0"
"""GenAI semantic-conventions version whose attribute names are used (development status)."""
CALLS_PER_REQUEST = 100
TURN_BATCH = 200
SPAN_KIND_INTERNAL = 1
SPAN_KIND_CLIENT = 3
STATUS_ERROR = 2
CONVERSATION_SOURCES = frozenset({"header", "metadata", "envelope"})
"""Session sources whose id was carried on the wire: only these become ``gen_ai.conversation.id``."""
_PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "deepseek": "deepseek", "google": "gcp.gemini",
              "azure": "azure.ai.openai"}
_HIDDEN_HOPS = ("proxy_out", "mirror_secondary")
_CALL_COLUMNS = SELECT_COLUMNS + ("parent_tool_call_id",)
_N_EXPORT = len(SELECT_COLUMNS)
SKIP_REASONS = ("no_calls",)


# --- ids and encoding ----------------------------------------------------------------------------------


def trace_id(key: str) -> str:
    """Trace id of a turn or a turn-less call: first 32 hex of SHA-256(``trace|`` + id)."""
    return hashlib.sha256(("trace|" + key).encode()).hexdigest()[:32]


def span_id(kind: str, key: str) -> str:
    """Span id: first 16 hex of SHA-256(``span|`` + kind + ``|`` + id)."""
    return hashlib.sha256(f"span|{kind}|{key}".encode()).hexdigest()[:16]


def _nanos(t: float | None) -> str:
    """Epoch seconds → OTLP ``fixed64`` nanoseconds as a decimal string, at the engine's µs resolution
    (multiplying the float by 1e9 directly would add float noise of a few hundred ns)."""
    return str(round((t or 0.0) * 1e6) * 1000)


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [_value(x) for x in v if x is not None]}}
    return {"stringValue": str(v)}


def attributes(pairs: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    """OTLP ``KeyValue`` list; pairs whose value is None are left out."""
    return [{"key": k, "value": _value(v)} for k, v in pairs if v is not None]


def provider_name(provider: str | None, host: str | None, app: str | None) -> str:
    """``gen_ai.provider.name`` for our ``provider`` (§6.5): well-known names mapped, otherwise the
    service's ``app`` label (metrics.md §6), else ``unknown``."""
    if provider == "google" and host and "aiplatform.googleapis.com" in host:
        return "gcp.vertex_ai"
    if provider in _PROVIDERS:
        return _PROVIDERS[provider]
    return app or provider or "unknown"


# --- filters -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class OtlpFilters(RecordFilters):
    """The export filters of interfaces.md §1.2 for traces. Turns are selected by their ``start``,
    turn-less calls by ``request_start``. ``status`` takes turn statuses; giving it selects turns only
    (a call without a turn has no turn status). ``turn`` likewise selects turns only. ``limit`` caps the
    number of lines (requests) written."""

    def turn_query(self) -> tuple[str, list[Any]]:
        return TurnFilters(**{**self.kwargs(), "limit": None}).query()

    def call_query(self) -> tuple[str, list[Any]] | None:
        """Turn-less calls (secondary hop legs left out: they repeat a call already exported), or None
        when the filters select turns only."""
        if values(self.status) or values(self.turn):
            return None
        f = CallFilters(**{**self.kwargs(), "turn": None, "status": None, "limit": None})
        where, params = f.where()
        cols = ", ".join(quote(c) for c in _CALL_COLUMNS)
        return (f"SELECT {cols} FROM calls WHERE {where} AND turn_id IS NULL AND coalesce(hop_role, '') "
                f"NOT IN ('proxy_out', 'mirror_secondary') ORDER BY request_start NULLS LAST, call_id"), params

    def validate(self) -> None:
        """Raise ``ValueError`` (a usage error) on a bad value, before anything is written."""
        bad = [s for s in values(self.status) if s not in TURN_STATUSES]
        if bad:
            raise ValueError(f"invalid status {bad[0]!r} for otlp: use {', '.join(TURN_STATUSES)}")
        if self.limit is not None and int(self.limit) < 0:
            raise ValueError(f"invalid limit {self.limit!r}")
        self.turn_query()
        self.call_query()


@dataclass(frozen=True, slots=True)
class OtlpResult:
    exported: int
    skipped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        total = sum(self.skipped.values())
        text = f"exported {self.exported}, skipped {total}"
        if total:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in self.skipped.items() if v) + ")"
        return text


# --- content (opt-in) ----------------------------------------------------------------------------------


def _parts(m: Message) -> list[dict[str, Any]]:
    """A normalized message → semconv parts (``text``, ``reasoning``, ``tool_call``, ``tool_call_response``)."""
    if m.role == "tool":
        return [{"type": "tool_call_response", "id": m.tool_call_id, "response": m.content}]
    parts: list[dict[str, Any]] = []
    if m.reasoning:
        parts.append({"type": "reasoning", "content": m.reasoning})
    if m.content is not None:
        parts.append({"type": "text", "content": m.content})
    parts += [{"type": "tool_call", "id": tc.id, "name": tc.name, "arguments": tc.arguments} for tc in m.tool_calls]
    return parts


def _dumps(v: Any) -> str:
    return orjson.dumps(v).decode()


class _Content:
    """Reads a call's stored request and rebuilt response (redacted at capture) for ``--content``."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.cur = cur

    def _json(self, call_id: str, part: str) -> Any:
        row = self.cur.execute("SELECT codec, data, truncated, is_text FROM bodies WHERE exchange_id = ? "
                               "AND part = ?", [call_id, part]).fetchone()
        if row is None or row[2] or not row[3]:
            return None  # missing, capped (no longer JSON) or binary
        try:
            return orjson.loads(decompress_body(row[0], bytes(row[1])))
        except (orjson.JSONDecodeError, ValueError):
            return None

    def call_attributes(self, call: dict[str, Any]) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        wire = call.get("wire_api") or ""
        req = self._json(call["call_id"], "request")
        if req is not None:
            try:
                traj = request_trajectory(wire, req)
            except Unparseable:
                traj = None
            if traj is not None:
                system = [{"type": "text", "content": m.content} for m in traj.messages
                          if m.role == "system" and m.content]
                msgs = [{"role": m.role, "parts": _parts(m)} for m in traj.messages if m.role != "system"]
                tools = [{"type": "function", "name": t.get("name"), "description": t.get("description"),
                          "parameters": t.get("parameters")} for t in traj.tools]
                out += [("gen_ai.system_instructions", _dumps(system) if system else None),
                        ("gen_ai.input.messages", _dumps(msgs)),
                        ("gen_ai.tool.definitions", _dumps(tools) if tools else None)]
        obj = self._json(call["call_id"], "response_object")
        if obj is not None:
            try:
                m = response_message(wire, obj)
                out.append(("gen_ai.output.messages", _dumps([{"role": "assistant", "parts": _parts(m),
                                                               "finish_reason": call.get("finish")}])))
            except Unparseable:
                pass
        return out


# --- spans ---------------------------------------------------------------------------------------------


def _errored(call: dict[str, Any]) -> bool:
    return (call.get("status_code") or 0) >= 400 or call.get("finish") in ("error", "aborted")


def _server(call: dict[str, Any]) -> tuple[str | None, int | None]:
    """``server.address``/``server.port``: the Host name when sent (what the client addressed), else the
    IP; the port from the connection, else from the Host."""
    host = call.get("host")
    conn = call.get("connection") or {}
    name, port = None, conn.get("server_port")
    if host:
        name, sep, p = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not sep or not p.isdigit():
            name, p = host, ""
        if port is None and p:
            port = int(p)
    return name or conn.get("server_ip"), port


def call_span(call: dict[str, Any], trace: str, parent: str | None, provider: str,
              content: _Content | None) -> dict[str, Any]:
    """The CLIENT span of one call (§6.5 attribute table)."""
    err = _errored(call)
    address, port = _server(call)
    error = call.get("error") if isinstance(call.get("error"), dict) else None
    error_type = None
    if err:
        error_type = (error or {}).get("type") or (str(call["status_code"]) if (call.get("status_code") or 0) >= 400
                                                   else call.get("finish"))
    first_chunk = call.get("first_chunk_ms")
    pairs: list[tuple[str, Any]] = [
        ("gen_ai.operation.name", call.get("operation")),
        ("gen_ai.provider.name", provider),
        ("gen_ai.request.model", call.get("model_requested")),
        ("gen_ai.response.model", call.get("model")),
        ("gen_ai.response.id", call.get("response_id")),
        ("gen_ai.response.finish_reasons",
         [call["finish_reason_raw"]] if call.get("finish_reason_raw") is not None else None),
        ("gen_ai.usage.input_tokens", call.get("input_total_tokens")),
        ("gen_ai.usage.output_tokens", call.get("output_tokens")),
        ("gen_ai.usage.cache_read.input_tokens", call.get("cache_read_tokens")),
        ("gen_ai.usage.cache_creation.input_tokens", call.get("cache_creation_tokens")),
        ("gen_ai.usage.reasoning.output_tokens", call.get("reasoning_tokens")),
        ("gen_ai.response.time_to_first_chunk", None if first_chunk is None else first_chunk / 1000.0),
        ("server.address", address),
        ("server.port", port),
        ("error.type", error_type),
        ("heron.call.id", call["call_id"]),
        ("heron.wire_api", call.get("wire_api")),
        ("heron.finish", call.get("finish")),
        ("heron.ttft_ms", call.get("ttft_ms")),
        ("heron.tpot_ms", call.get("tpot_ms")),
        ("heron.cost_usd", call.get("cost_usd")),
    ]
    if content is not None:
        pairs += content.call_attributes(call)
    start = call.get("request_start")
    end = call.get("response_end") or call.get("request_end") or start
    span = _span(trace, span_id("call", call["call_id"]), parent,
                 f"{call.get('operation') or 'chat'} {call.get('model_requested') or call.get('model') or ''}".strip(),
                 SPAN_KIND_CLIENT, start, end, pairs)
    if err:
        span["status"] = {"code": STATUS_ERROR, "message": (error or {}).get("message") or error_type or "error"}
    return span


def _span(trace: str, sid: str, parent: str | None, name: str, kind: int, start: float | None,
          end: float | None, pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    span: dict[str, Any] = {"traceId": trace, "spanId": sid}
    if parent:
        span["parentSpanId"] = parent
    end = end if end is not None and start is not None and end >= start else start
    span.update(name=name, kind=kind, startTimeUnixNano=_nanos(start), endTimeUnixNano=_nanos(end),
                attributes=attributes(pairs))
    return span


def _resource(agent_kind: str | None, source_id: str | None, process: dict[str, Any] | None) -> dict[str, Any]:
    p = process or {}
    return {"attributes": attributes([
        ("service.name", agent_kind or "llm-client"),
        ("heron.source_id", source_id),
        ("heron.semconv_version", SEMCONV_VERSION),
        ("process.pid", p.get("pid")),
        ("process.executable.name", p.get("comm")),
        ("process.executable.path", p.get("exe")),
    ])}


def _request(groups: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> dict[str, Any]:
    scope = {"name": "heron", "version": __version__}
    return {"resourceSpans": [{"resource": res, "scopeSpans": [{"scope": scope, "spans": spans}]}
                              for res, spans in groups]}


def turn_trace(turn: dict[str, Any], calls: list[dict[str, Any]], tools: list[dict[str, Any]],
               conversation_id: str | None, providers: _Providers, content: _Content | None) -> dict[str, Any]:
    """One turn → one ``ExportTraceServiceRequest`` (a single trace)."""
    tid = turn["turn_id"]
    trace = trace_id(tid)
    root = span_id("turn", tid)
    anchor = next((c for c in calls if c["call_id"] == turn.get("anchor_call_id")), calls[0] if calls else None)
    turn_end = turn.get("end") or max((c.get("response_end") or c.get("request_start") or 0.0 for c in calls),
                                      default=turn.get("start"))
    spans = [_span(trace, root, None, f"invoke_agent {turn.get('agent_kind') or 'agent'}", SPAN_KIND_INTERNAL,
                   turn.get("start"), turn_end, [
                       ("gen_ai.operation.name", "invoke_agent"),
                       ("gen_ai.agent.name", turn.get("agent_kind")),
                       ("gen_ai.provider.name", providers.of(anchor) if anchor else None),
                       ("gen_ai.conversation.id", conversation_id),
                       ("heron.session.id", turn.get("session_id")),
                       ("heron.turn.id", tid),
                       ("heron.turn.status", turn.get("status")),
                   ])]
    if turn.get("error") is not None or turn.get("finish") in ("error", "aborted"):
        err = turn.get("error") if isinstance(turn.get("error"), dict) else {}
        spans[0]["status"] = {"code": STATUS_ERROR, "message": err.get("message") or turn.get("finish") or "error"}
    tool_span: dict[str, str] = {}  # tool_call_id → span id (for sub-agents spawned by a tool call)
    tool_spans = []
    for t in tools:
        sid = span_id("tool", f"{t['call_id']}|{t['tool_call_id']}")
        tool_span.setdefault(t["tool_call_id"], sid)
        end = t.get("result_at") if t.get("result_status") in ("ok", "error") else turn_end
        pairs: list[tuple[str, Any]] = [
            ("gen_ai.operation.name", "execute_tool"),
            ("gen_ai.tool.name", t.get("name")),
            ("gen_ai.tool.call.id", t["tool_call_id"]),
            ("gen_ai.tool.type", "function"),
            ("heron.inferred", True),
            ("heron.tool.result", t.get("result_status")),
        ]
        if content is not None:
            args = t.get("arguments")
            pairs += [("gen_ai.tool.call.arguments", None if args is None else _dumps(args)),
                      ("gen_ai.tool.call.result", t.get("result_preview"))]
        span = _span(trace, sid, span_id("call", t["call_id"]), f"execute_tool {t.get('name') or ''}".strip(),
                     SPAN_KIND_INTERNAL, t.get("issued_at"), end if end is not None else turn_end, pairs)
        if t.get("result_status") == "error":
            span["status"] = {"code": STATUS_ERROR, "message": "tool result is an error"}
        tool_spans.append(span)
    subagents: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for c in calls:
        if c.get("subagent"):
            subagents.setdefault((c["subagent"], c.get("parent_tool_call_id")), []).append(c)
    sub_span: dict[tuple[str, str | None], str] = {}
    sub_spans = []
    for (name, parent_tool), members in subagents.items():
        sid = span_id("subagent", f"{tid}|{name}|{parent_tool or ''}")
        sub_span[(name, parent_tool)] = sid
        start = min(c.get("request_start") or 0.0 for c in members)
        end = max(c.get("response_end") or c.get("request_start") or 0.0 for c in members)
        sub_spans.append(_span(trace, sid, tool_span.get(parent_tool or "", root), f"invoke_agent {name}",
                               SPAN_KIND_INTERNAL, start, end, [("gen_ai.operation.name", "invoke_agent"),
                                                                ("gen_ai.agent.name", name)]))
    for c in calls:
        parent = sub_span[(c["subagent"], c.get("parent_tool_call_id"))] if c.get("subagent") else root
        spans.append(call_span(c, trace, parent, providers.of(c), content))
    spans += tool_spans + sub_spans
    return _request([(_resource(turn.get("agent_kind"), turn.get("source_id"), turn.get("process")), spans)])


def calls_trace(calls: list[dict[str, Any]], providers: _Providers, content: _Content | None) -> dict[str, Any]:
    """Up to ``CALLS_PER_REQUEST`` turn-less calls → one request; each call is its own trace, grouped in
    one resource per (agent kind, source, process)."""
    groups: dict[tuple, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for c in calls:
        p = c.get("process") or {}
        key = (c.get("agent_kind"), c.get("source_id"), p.get("pid"), p.get("comm"), p.get("exe"))
        if key not in groups:
            groups[key] = (_resource(c.get("agent_kind"), c.get("source_id"), c.get("process")), [])
        groups[key][1].append(call_span(c, trace_id(c["call_id"]), None, providers.of(c), content))
    return _request(list(groups.values()))


class _Providers:
    """``gen_ai.provider.name`` per call; the service ``app`` labels (one services query) are computed
    only when a call's provider is not a well-known one."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self._apps: dict[str, str | None] | None = None

    def of(self, call: dict[str, Any]) -> str:
        provider = call.get("provider")
        if provider in _PROVIDERS:
            return provider_name(provider, call.get("host"), None)
        if self._apps is None:
            from heron_core.query.metrics import MetricFilters
            from heron_core.query.services import services

            self._apps = {r["server"]: r["app"] for r in services(self.conn, MetricFilters(hops="include"))}
        return provider_name(provider, call.get("host"), self._apps.get(call.get("server") or ""))


# --- driving -------------------------------------------------------------------------------------------


def _call_dict(row: Sequence[Any]) -> dict[str, Any]:
    rec = call_record(row[:_N_EXPORT])
    rec["parent_tool_call_id"] = row[_N_EXPORT]
    return rec


_TOOL_COLS = TOOL_CALLS.column_names


def _turn_batch(cur: duckdb.DuckDBPyConnection, turns: list[dict[str, Any]]) -> Iterator[
        tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], str | None]]:
    """Member calls, tool calls and conversation id of a batch of turns, in three queries."""
    tids = [t["turn_id"] for t in turns]
    owner = {cid: t["turn_id"] for t in turns for cid in t["call_ids"]}
    cols = ", ".join(quote(c) for c in _CALL_COLUMNS)
    cur.execute(f"SELECT {cols} FROM calls WHERE call_id IN (SELECT unnest(?::VARCHAR[])) "
                f"OR turn_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY request_start NULLS LAST, call_id",
                [list(owner), tids])
    calls: dict[str, list[dict[str, Any]]] = {}
    for row in cur.fetchall():
        c = _call_dict(row)
        tid = c.get("turn_id") if c.get("turn_id") in set(tids) else owner.get(c["call_id"])
        if tid is not None:
            calls.setdefault(tid, []).append(c)
    member_ids = [c["call_id"] for cs in calls.values() for c in cs]
    cur.execute(f"SELECT {', '.join(quote(c) for c in _TOOL_COLS)} FROM tool_calls "
                f"WHERE turn_id IN (SELECT unnest(?::VARCHAR[])) OR call_id IN (SELECT unnest(?::VARCHAR[])) "
                f"ORDER BY issued_at NULLS LAST, call_id, seq", [tids, member_ids])
    by_call = {cid: tid for tid, cs in calls.items() for cid in (c["call_id"] for c in cs)}
    tools: dict[str, list[dict[str, Any]]] = {}
    for row in cur.fetchall():
        t = dict(zip(_TOOL_COLS, row))
        if isinstance(t.get("arguments"), str):
            try:
                t["arguments"] = orjson.loads(t["arguments"])
            except orjson.JSONDecodeError:
                pass
        tid = by_call.get(t["call_id"]) or t.get("turn_id")
        tools.setdefault(tid, []).append(t)
    sids = sorted({t["session_id"] for t in turns if t.get("session_id")})
    conv = {}
    for sid, native, source in cur.execute(
            "SELECT session_id, native_session_id, session_source FROM sessions "
            "WHERE session_id IN (SELECT unnest(?::VARCHAR[]))", [sids]).fetchall():
        conv[sid] = native if source in CONVERSATION_SOURCES else None
    for t in turns:
        members = calls.get(t["turn_id"], [])
        cid = conv.get(t.get("session_id"))
        if t.get("session_id") not in conv:  # no session row: the anchor call says where the id came from
            anchor = next((c for c in members if c["call_id"] == t.get("anchor_call_id")), None)
            if anchor and anchor.get("session_source") in CONVERSATION_SOURCES:
                cid = anchor.get("native_session_id")
        yield t, members, tools.get(t["turn_id"], []), cid


def iter_requests(conn: duckdb.DuckDBPyConnection, filters: OtlpFilters | None = None,
                  content: bool = False, skipped: Counter | None = None) -> Iterator[dict[str, Any]]:
    """Every ``ExportTraceServiceRequest`` of the selection, turns first (by start), then the turn-less
    calls in groups of ``CALLS_PER_REQUEST``. Raises ``ValueError`` on a bad filter value before yielding.

    Three cursors: one streams turns (or calls), one looks up members, one reads bodies for content.
    """
    f = filters or OtlpFilters()
    f.validate()
    skipped = skipped if skipped is not None else Counter()
    limit = None if f.limit is None else int(f.limit)
    n = 0
    main, look, bodies = conn.cursor(), conn.cursor(), conn.cursor()
    providers = _Providers(conn)
    reader = _Content(bodies) if content else None
    try:
        sql, params = f.turn_query()
        main.execute(sql, params)
        while limit is None or n < limit:
            rows = main.fetchmany(TURN_BATCH)
            if not rows:
                break
            turns = [turn_record(r) for r in rows]
            for turn, calls, tools, conv in _turn_batch(look, turns):
                if limit is not None and n >= limit:
                    break
                if not calls:
                    skipped["no_calls"] += 1
                    continue
                yield turn_trace(turn, calls, tools, conv, providers, reader)
                n += 1
        q = f.call_query()
        if q is not None and (limit is None or n < limit):
            main.execute(*q)
            while limit is None or n < limit:
                rows = main.fetchmany(CALLS_PER_REQUEST)
                if not rows:
                    break
                yield calls_trace([_call_dict(r) for r in rows], providers, reader)
                n += 1
    finally:
        for cur in (main, look, bodies):
            cur.close()


def export_otlp(conn: duckdb.DuckDBPyConnection, out: BinaryIO, filters: OtlpFilters | None = None,
                content: bool = False) -> OtlpResult:
    """Write the requests as JSON lines to ``out``; returns the counts."""
    skipped: Counter = Counter()
    n = 0
    for req in iter_requests(conn, filters, content, skipped):
        out.write(orjson.dumps(req, option=orjson.OPT_APPEND_NEWLINE))
        n += 1
    return OtlpResult(n, {k: skipped[k] for k in SKIP_REASONS if skipped[k]})


class OtlpPostError(Exception):
    """The collector refused a request or could not be reached; one line, for ``heron: error: …``."""


def post_otlp(conn: duckdb.DuckDBPyConnection, endpoint: str, filters: OtlpFilters | None = None,
              content: bool = False, timeout_s: float = 30.0) -> OtlpResult:
    """POST each request to ``endpoint`` + ``/v1/traces`` (OTLP/HTTP, JSON encoding); stops at the first
    failure (raising ``OtlpPostError``) so a broken collector is not hammered with the rest."""
    url = endpoint.rstrip("/") + "/v1/traces"
    skipped: Counter = Counter()
    n = 0
    for req in iter_requests(conn, filters, content, skipped):
        data = orjson.dumps(req)
        http = urllib.request.Request(url, data=data, method="POST",
                                      headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(http, timeout=timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            raise OtlpPostError(f"{url} answered {exc.code} {exc.reason} after {n} request(s)") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OtlpPostError(f"{url}: {reason} after {n} request(s)") from exc
        n += 1
    return OtlpResult(n, {k: skipped[k] for k in SKIP_REASONS if skipped[k]})
