"""``heron export calls``: §6.1 call records as JSONL, read from the store (interfaces.md §6, §6.1).

Keys come out in exactly the order of the spec table (``CALL_EXPORT_FIELDS``): the flattened
``connection``/``process`` columns are folded back into objects, JSON columns parsed back into values.
Rows are streamed from a DuckDB cursor in batches, so an export of any size runs in constant Python
memory. Hop legs (``proxy_out``, ``mirror_secondary``) are included, marked by ``hop_role``.

``call_record`` turns one selected row into the §6.1 dict, so the API can serve the same records.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import duckdb
import orjson

from heron_core.export.filters import RecordFilters, join_conds, stream_records, values, with_limit
from heron_core.export.filters import parse_time  # noqa: F401  (re-exported: callers import it from here)
from heron_core.store.schema import CALLS, JSON, quote

CALL_EXPORT_FIELDS: tuple[str, ...] = (
    "call_id", "source_id", "agent_kind", "session_id", "turn_id", "native_session_id", "session_source",
    "is_auxiliary", "auxiliary_kind", "subagent", "hop_role", "hop_peer_call_id", "connection", "server",
    "host", "process", "method", "path", "status_code", "wire_api", "operation", "detected_by", "provider",
    "model_requested", "model", "response_id", "is_stream", "stream_format", "request_start", "request_end",
    "response_start", "first_chunk", "first_token", "response_end", "ttft_ms", "e2e_ms", "tpot_ms",
    "upload_ms", "head_ms", "first_chunk_ms", "gen_ms", "finish_reason_raw", "finish", "ok", "error",
    "refusal", "tool_calls", "tool_call_count", "server_tool_count", "input_tokens", "cache_read_tokens",
    "cache_creation_tokens", "cache_creation_1h_tokens", "input_total_tokens", "reasoning_tokens",
    "output_tokens", "total_tokens", "usage_estimated", "context_delta_tokens", "cost_usd",
    "cost_input_usd", "cost_output_usd", "cost_nocache_usd", "cache_savings_usd", "cost_status",
    "price_version", "priced_model", "priced_provider", "request_body_bytes", "response_body_bytes",
    "request_wire_bytes", "response_wire_bytes", "attempt", "retry_of", "request_hash", "ratelimit",
    "input_preview", "output_preview", "damaged", "damage",
)  # fmt: skip
"""The §6.1 keys, in export order (schema version 1; later versions only append)."""

_CONNECTION = ("client_ip", "client_port", "server_ip", "server_port")
_PROCESS = ("process_pid", "process_comm", "process_exe")
_LIST_DEFAULT = frozenset({"tool_calls", "damage"})  # typed `list`: never null in an export

SELECT_COLUMNS: tuple[str, ...] = tuple(
    c for c in CALLS.column_names if c in CALL_EXPORT_FIELDS or c in _CONNECTION or c in _PROCESS
)
"""``calls`` columns that ``call_record`` needs, in table order; select exactly these."""



def _plan() -> list[tuple[str, Callable[[tuple], Any]]]:
    """One ``(key, getter)`` per export field, computed once: index lookups, not name lookups, per row."""
    pos = {c: i for i, c in enumerate(SELECT_COLUMNS)}
    types = dict(CALLS.columns)
    plan: list[tuple[str, Callable[[tuple], Any]]] = []
    for key in CALL_EXPORT_FIELDS:
        if key == "connection":
            ci, cp, si, sp = (pos[c] for c in _CONNECTION)
            plan.append(
                (key, lambda r, ci=ci, cp=cp, si=si, sp=sp: None if r[ci] is None else {
                    "protocol": "tcp", "client_ip": r[ci], "client_port": r[cp],
                    "server_ip": r[si], "server_port": r[sp],
                })
            )  # fmt: skip
        elif key == "process":
            pi, pc, pe = (pos[c] for c in _PROCESS)
            plan.append(
                (key, lambda r, pi=pi, pc=pc, pe=pe: None if r[pi] is None
                 else {"pid": r[pi], "comm": r[pc], "exe": r[pe]})
            )  # fmt: skip
        elif types[key] == JSON:
            i = pos[key]
            empty: Any = [] if key in _LIST_DEFAULT else None
            plan.append((key, lambda r, i=i, e=empty: e if r[i] is None else orjson.loads(r[i])))
        elif key in _LIST_DEFAULT:
            i = pos[key]
            plan.append((key, lambda r, i=i: [] if r[i] is None else list(r[i])))
        else:
            i = pos[key]
            plan.append((key, lambda r, i=i: r[i]))
    return plan


_PLAN = _plan()


def call_record(row: Sequence[Any]) -> dict[str, Any]:
    """A row selected as ``SELECT_COLUMNS`` → the §6.1 record (dict in key order)."""
    return {key: get(row) for key, get in _PLAN}


# --- filters -------------------------------------------------------------------------------------------



@dataclass(slots=True)
class CallFilters(RecordFilters):
    """The export filters of interfaces.md §1.2, for calls. Multi-value fields take a list or commas.

    ``since``/``until`` bound ``request_start`` (half-open: since ≤ t < until). ``model`` matches the
    served or the requested model. ``status`` values: an HTTP code (``429``), a class (``5xx``), ``ok``
    (the call's ``ok`` flag) or ``error`` (status ≥ 400 or finish error/aborted, as metrics.md counts
    errors); several values are OR-ed.
    """

    def where(self) -> tuple[str, list[Any]]:
        """``(SQL condition, parameters)``; raises ``ValueError`` (a usage error) on a bad value."""
        conds: list[str] = []
        params: list[Any] = []
        self.time_range("request_start", "request_start", conds, params)
        self.id_columns((("source_id", self.source_id), ("agent_kind", self.agent_kind),
                         ("session_id", self.session), ("turn_id", self.turn), ("wire_api", self.wire_api)),
                        conds, params)
        models = values(self.model)
        if models:
            marks = ", ".join("?" * len(models))
            conds.append(f"(model IN ({marks}) OR model_requested IN ({marks}))")
            params.extend(models + models)
        statuses = values(self.status if not isinstance(self.status, int) else str(self.status))
        if statuses:
            conds.append("(" + " OR ".join(_status_condition(s, params) for s in statuses) + ")")
        return join_conds(conds), params

    def query(self) -> tuple[str, list[Any]]:
        """The full export query, ordered by ``request_start`` then ``call_id`` (stable, repeatable)."""
        where, params = self.where()
        sql = (
            f"SELECT {', '.join(quote(c) for c in SELECT_COLUMNS)} FROM calls WHERE {where} "
            "ORDER BY request_start NULLS LAST, call_id"
        )
        return with_limit(sql, params, self.limit)


def _status_condition(s: str, params: list[Any]) -> str:
    m = _STATUS_CLASS.match(s)
    if s.isdigit() and len(s) == 3:
        params.append(int(s))
        return "status_code = ?"
    if m:
        params.extend((int(m.group(1)) * 100, int(m.group(1)) * 100 + 100))
        return "(status_code >= ? AND status_code < ?)"
    if s.lower() == "ok":
        return "ok"
    if s.lower() == "error":
        return "(status_code >= 400 OR finish IN ('error', 'aborted'))"
    raise ValueError(f"invalid status {s!r}: use a code (429), a class (5xx), ok or error")


_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)


def export_calls(conn: duckdb.DuckDBPyConnection, out: BinaryIO, filters: CallFilters | None = None) -> int:
    """Write matching calls to ``out`` as JSONL (§6.1); returns the number of records written."""
    sql, params = (filters or CallFilters()).query()
    return stream_records(conn, out, sql, params, call_record)
