"""Record → table row conversion, in the column order of schema.py.

Rows are plain tuples because the writer transposes them into Arrow columns; building a tuple directly
(rather than a dict per row) keeps the per-call cost to a few microseconds. JSON columns are serialized
here with orjson, so the writer only moves text and DuckDB validates it on insert.

Units: ``Exchange`` timestamps are integer µs and become float epoch seconds here; ``Call`` timestamps
are already seconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from heron_core.records import Call, Exchange, Process, ToolCall, us_to_s
from heron_core.store.schema import JSON, TABLES, VARCHAR_LIST


def dump_json(value: Any) -> str | None:
    """A JSON column value: None stays NULL; NamedTuples (``Process``) become objects, not arrays."""
    if value is None:
        return None
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        value = value._asdict()
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        pass
    try:  # non-str keys, sets, odd objects
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=_json_default).decode()
    except TypeError:  # integers beyond 64 bits: the stdlib encoder copes
        return json.dumps(value, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return value._asdict()
    return str(value)


def tool_calls_json(tool_calls: list[ToolCall]) -> str:
    """``[{id, name, arguments}]`` — the §6.1 shape, whatever object the wire stage used."""
    return dump_json([{"id": t.id, "name": t.name, "arguments": t.arguments} for t in tool_calls]) or "[]"


def call_row(c: Call) -> tuple:
    """A ``Call`` as a ``calls`` row (schema.CALLS column order)."""
    p: Process | None = c.process
    return (
        c.call_id, c.source_id, c.agent_kind, c.session_id, c.turn_id,
        c.native_session_id, c.session_source, c.is_auxiliary, c.auxiliary_kind,
        c.subagent, c.hop_role, c.hop_peer_call_id,
        c.client_ip, c.client_port, c.server_ip, c.server_port,
        c.server, c.host,
        p.pid if p is not None else None, p.comm if p is not None else None, p.exe if p is not None else None,
        c.method, c.path, c.status_code,
        c.wire_api, c.operation, c.detected_by, c.provider,
        c.model_requested, c.model, c.response_id, c.is_stream, c.stream_format,
        c.request_start, c.request_end, c.response_start, c.first_chunk,
        c.first_token, c.response_end,
        c.ttft_ms, c.e2e_ms, c.tpot_ms, c.upload_ms, c.head_ms,
        c.first_chunk_ms, c.gen_ms,
        c.finish_reason_raw, c.finish, c.ok, dump_json(c.error), c.refusal,
        tool_calls_json(c.tool_calls), c.tool_call_count, c.server_tool_count,
        c.input_tokens, c.cache_read_tokens, c.cache_creation_tokens,
        c.cache_creation_1h_tokens, c.input_total_tokens, c.reasoning_tokens,
        c.output_tokens, c.total_tokens, c.usage_estimated, c.context_delta_tokens,
        c.cost_usd, c.cost_input_usd, c.cost_output_usd, c.cost_nocache_usd,
        c.cache_savings_usd, c.cost_status, c.price_version, c.priced_model,
        c.priced_provider,
        c.request_body_bytes, c.response_body_bytes, c.request_wire_bytes,
        c.response_wire_bytes,
        c.attempt, c.retry_of, c.request_hash, dump_json(c.ratelimit),
        c.input_preview, c.output_preview, c.damaged, list(c.damage),
        dump_json(c.usage_raw), c.user_text, c.assistant_text, dump_json(c.hop_overhead_ms),
        c.native_turn_id, c.parent_tool_call_id, c.choices_ignored,
    )  # fmt: skip


def exchange_row(ex: Exchange, is_llm: bool, first_token: float | None = None) -> tuple:
    """An ``Exchange`` as an ``exchanges`` row (schema.EXCHANGES column order).

    ``first_token`` (epoch s) is one of the six stored timestamps but is decided by the wire stage,
    not the HTTP stage, so the caller passes the call's value when there is one. Without it a
    non-streaming 2xx response uses ``response_start`` (capture-and-http.md §9); otherwise NULL.
    """
    p = ex.process
    response_start = us_to_s(ex.response_start)
    ok_2xx = ex.status_code is not None and 200 <= ex.status_code < 300
    if first_token is None and not ex.is_stream and ok_2xx:
        first_token = response_start
    return (
        ex.exchange_id, ex.source_id,
        ex.client_ip, ex.client_port, ex.server_ip, ex.server_port,
        p.pid if p is not None else None, p.comm if p is not None else None, p.exe if p is not None else None,
        ex.host, ex.method, ex.path, ex.query, ex.http_version, ex.status_code,
        dump_json(ex.request_headers), dump_json(ex.response_headers),
        ex.header("content-type"), ex.header("content-type", response=True),
        ex.header("content-encoding"), ex.header("content-encoding", response=True),
        ex.is_stream, ex.stream_format, len(ex.stream_units),
        ex.request_body_bytes, ex.response_body_bytes, ex.request_wire_bytes,
        ex.response_wire_bytes,
        us_to_s(ex.request_start), us_to_s(ex.request_end), response_start, us_to_s(ex.first_chunk),
        first_token, us_to_s(ex.response_end),
        ex.state, ex.damaged, sorted(ex.damage), is_llm,
    )  # fmt: skip


_COLUMNS = {name: (t.columns, frozenset(t.column_names)) for name, t in TABLES.items()}
"""Per table: its ``(name, type)`` columns and the set of names (``Table.column_names`` is rebuilt on
every access, and the assembler converts a row per turn, session and tool call)."""


def mapping_row(table: str, record: Mapping[str, Any]) -> tuple:
    """A dict keyed by column names → a row of ``table``, for the stages without a dedicated record type
    (turns, sessions, tool_calls, insights, runs). Missing columns are NULL; unknown keys raise
    ``KeyError`` so a misspelt column fails in tests instead of silently vanishing. JSON columns take
    Python objects (serialized here); list columns take any iterable of strings."""
    columns, names = _COLUMNS[table]
    if not names.issuperset(record):
        unknown = set(record) - names
        raise KeyError(f"unknown column(s) for {table}: {', '.join(sorted(unknown))}")
    out = []
    for name, typ in columns:
        v = record.get(name)
        if v is not None:
            if typ == JSON:
                v = dump_json(v)
            elif typ == VARCHAR_LIST:
                v = list(v)
        out.append(v)
    return tuple(out)


