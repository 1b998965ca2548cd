"""DuckDB schema of the heron store (interfaces.md §3).

The column lists below are the single source of truth: the DDL, the writer's Arrow batches
(``arrow_schema``), the record → row converters (rows.py) and the exports all follow them, so a
column is added in exactly one place. Column order is the order of the spec tables (§6.1 for
``calls`` with ``connection``/``process`` flattened in place), so ``SELECT *`` reads like an export.

No secondary indexes: DuckDB prunes scans with per-row-group min/max zonemaps, and ART indexes would
slow every insert. Primary keys exist because ``INSERT OR IGNORE`` (re-ingest adds nothing) needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    import duckdb
    import pyarrow

SCHEMA_VERSION = 1
"""Version written to ``meta.schema_version``. Bump it together with an entry in ``MIGRATIONS``."""

VARCHAR = "VARCHAR"
BIGINT = "BIGINT"
INTEGER = "INTEGER"
DOUBLE = "DOUBLE"
BOOLEAN = "BOOLEAN"
BLOB = "BLOB"
JSON = "JSON"
VARCHAR_LIST = "VARCHAR[]"


@dataclass(frozen=True, slots=True)
class Table:
    """One table: ordered ``(name, type)`` columns, primary key, extra UNIQUE columns."""

    name: str
    columns: tuple[tuple[str, str], ...]
    primary_key: tuple[str, ...]
    unique: tuple[str, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    @property
    def json_columns(self) -> frozenset[str]:
        return frozenset(c for c, t in self.columns if t == JSON)

    def index_of(self, column: str) -> int:
        return self.column_names.index(column)

    def ddl(self) -> str:
        cols = [f"{quote(n)} {t}" + (" UNIQUE" if n in self.unique else "") for n, t in self.columns]
        cols.append(f"PRIMARY KEY ({', '.join(quote(c) for c in self.primary_key)})")
        return f"CREATE TABLE IF NOT EXISTS {quote(self.name)} (\n  " + ",\n  ".join(cols) + "\n)"


def quote(identifier: str) -> str:
    """Quote an identifier: several columns (``start``, ``end``, ``count``, ``key``) are SQL keywords."""
    return '"' + identifier.replace('"', '""') + '"'


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    """Parse ``"name TYPE, name TYPE"`` (one column per comma) — keeps the tables readable."""
    out = []
    for item in spec.split(","):
        item = item.strip()
        if item:
            name, typ = item.split(None, 1)
            out.append((name, typ.strip()))
    return tuple(out)


CALLS = Table(
    "calls",
    _cols(
        """
        call_id VARCHAR, source_id VARCHAR, agent_kind VARCHAR, session_id VARCHAR, turn_id VARCHAR,
        native_session_id VARCHAR, session_source VARCHAR, is_auxiliary BOOLEAN, auxiliary_kind VARCHAR,
        subagent VARCHAR, hop_role VARCHAR, hop_peer_call_id VARCHAR,
        client_ip VARCHAR, client_port INTEGER, server_ip VARCHAR, server_port INTEGER,
        server VARCHAR, host VARCHAR,
        process_pid INTEGER, process_comm VARCHAR, process_exe VARCHAR,
        method VARCHAR, path VARCHAR, status_code BIGINT,
        wire_api VARCHAR, operation VARCHAR, detected_by VARCHAR, provider VARCHAR,
        model_requested VARCHAR, model VARCHAR, response_id VARCHAR, is_stream BOOLEAN, stream_format VARCHAR,
        request_start DOUBLE, request_end DOUBLE, response_start DOUBLE, first_chunk DOUBLE,
        first_token DOUBLE, response_end DOUBLE,
        ttft_ms DOUBLE, e2e_ms DOUBLE, tpot_ms DOUBLE, upload_ms DOUBLE, head_ms DOUBLE,
        first_chunk_ms DOUBLE, gen_ms DOUBLE,
        finish_reason_raw VARCHAR, finish VARCHAR, ok BOOLEAN, error JSON, refusal VARCHAR,
        tool_calls JSON, tool_call_count BIGINT, server_tool_count BIGINT,
        input_tokens BIGINT, cache_read_tokens BIGINT, cache_creation_tokens BIGINT,
        cache_creation_1h_tokens BIGINT, input_total_tokens BIGINT, reasoning_tokens BIGINT,
        output_tokens BIGINT, total_tokens BIGINT, usage_estimated BOOLEAN, context_delta_tokens BIGINT,
        cost_usd DOUBLE, cost_input_usd DOUBLE, cost_output_usd DOUBLE, cost_nocache_usd DOUBLE,
        cache_savings_usd DOUBLE, cost_status VARCHAR, price_version VARCHAR, priced_model VARCHAR,
        priced_provider VARCHAR,
        request_body_bytes BIGINT, response_body_bytes BIGINT, request_wire_bytes BIGINT,
        response_wire_bytes BIGINT,
        attempt BIGINT, retry_of VARCHAR, request_hash VARCHAR, ratelimit JSON,
        input_preview VARCHAR, output_preview VARCHAR, damaged BOOLEAN, damage VARCHAR[],
        usage_raw JSON, user_text VARCHAR, assistant_text VARCHAR, hop_overhead_ms JSON,
        native_turn_id VARCHAR, parent_tool_call_id VARCHAR, choices_ignored INTEGER
        """
    ),
    ("call_id",),
)

EXCHANGES = Table(
    "exchanges",
    _cols(
        """
        exchange_id VARCHAR, source_id VARCHAR,
        client_ip VARCHAR, client_port INTEGER, server_ip VARCHAR, server_port INTEGER,
        process_pid INTEGER, process_comm VARCHAR, process_exe VARCHAR,
        host VARCHAR, method VARCHAR, path VARCHAR, query VARCHAR, http_version VARCHAR, status_code BIGINT,
        request_headers JSON, response_headers JSON,
        request_content_type VARCHAR, response_content_type VARCHAR,
        request_content_encoding VARCHAR, response_content_encoding VARCHAR,
        is_stream BOOLEAN, stream_format VARCHAR, stream_events BIGINT,
        request_body_bytes BIGINT, response_body_bytes BIGINT, request_wire_bytes BIGINT,
        response_wire_bytes BIGINT,
        request_start DOUBLE, request_end DOUBLE, response_start DOUBLE, first_chunk DOUBLE,
        first_token DOUBLE, response_end DOUBLE,
        state VARCHAR, damaged BOOLEAN, damage VARCHAR[], is_llm BOOLEAN
        """
    ),
    ("exchange_id",),
)

BODIES = Table(
    "bodies",
    _cols(
        """
        exchange_id VARCHAR, part VARCHAR, codec VARCHAR, data BLOB, original_bytes BIGINT,
        stored_bytes BIGINT, dropped_bytes BIGINT, truncated BOOLEAN, is_text BOOLEAN
        """
    ),
    ("exchange_id", "part"),
)

TOOL_CALLS = Table(
    "tool_calls",
    _cols(
        """
        call_id VARCHAR, tool_call_id VARCHAR, session_id VARCHAR, turn_id VARCHAR, subagent VARCHAR,
        seq BIGINT, name VARCHAR, arguments JSON, args_hash VARCHAR, issued_at DOUBLE,
        result_call_id VARCHAR, result_at DOUBLE, wait_ms DOUBLE, result_status VARCHAR,
        result_bytes BIGINT, result_preview VARCHAR
        """
    ),
    ("call_id", "tool_call_id"),
)

TURNS = Table(
    "turns",
    _cols(
        """
        turn_id VARCHAR, session_id VARCHAR, source_id VARCHAR, agent_kind VARCHAR,
        status VARCHAR, end_reason VARCHAR, start DOUBLE, end DOUBLE,
        duration_ms DOUBLE, first_response_ms DOUBLE, anchor_call_id VARCHAR, final_call_id VARCHAR,
        call_ids VARCHAR[], user_input_preview VARCHAR, final_answer_preview VARCHAR,
        finish VARCHAR, finish_reason_raw VARCHAR, error JSON,
        wire_api VARCHAR, server VARCHAR, client_ip VARCHAR, process JSON,
        models VARCHAR[], subagents VARCHAR[], tool_names VARCHAR[],
        call_count BIGINT, main_call_count BIGINT, subagent_call_count BIGINT, retry_count BIGINT,
        input_tokens BIGINT, input_total_tokens BIGINT, cache_read_tokens BIGINT,
        cache_creation_tokens BIGINT, reasoning_tokens BIGINT, output_tokens BIGINT, total_tokens BIGINT,
        cost_usd DOUBLE, cost_complete BOOLEAN,
        tool_call_count BIGINT, tool_error_count BIGINT, tool_missing_count BIGINT,
        insight_count BIGINT, insight_kinds VARCHAR[]
        """
    ),
    ("turn_id",),
)

SESSIONS = Table(
    "sessions",
    _cols(
        """
        session_id VARCHAR, native_session_id VARCHAR, session_source VARCHAR, source_id VARCHAR,
        agent_kind VARCHAR, first_start DOUBLE, last_end DOUBLE,
        turn_count BIGINT, turns_complete BIGINT, turns_incomplete BIGINT, turns_partial BIGINT,
        call_count BIGINT, auxiliary_call_count BIGINT,
        first_turn_id VARCHAR, last_turn_id VARCHAR, first_user_input_preview VARCHAR,
        models VARCHAR[], subagents VARCHAR[],
        input_total_tokens BIGINT, cache_read_tokens BIGINT, cache_creation_tokens BIGINT,
        reasoning_tokens BIGINT, output_tokens BIGINT, total_tokens BIGINT,
        cost_usd DOUBLE, cost_complete BOOLEAN,
        tool_call_count BIGINT, tool_error_count BIGINT, insight_count BIGINT,
        server VARCHAR, client_ip VARCHAR, process JSON
        """
    ),
    ("session_id",),
)

INSIGHTS = Table(
    "insights",
    _cols(
        """
        insight_id VARCHAR, kind VARCHAR, severity VARCHAR, source_id VARCHAR, session_id VARCHAR,
        turn_id VARCHAR, call_ids VARCHAR[], first_seen DOUBLE, last_seen DOUBLE, count BIGINT,
        summary VARCHAR, details JSON, dedupe_key VARCHAR
        """
    ),
    ("insight_id",),
    unique=("dedupe_key",),
)

RUNS = Table(
    "runs",
    _cols(
        """
        run_id VARCHAR, started_at DOUBLE, ended_at DOUBLE, version VARCHAR, argv JSON, sources JSON,
        counters JSON, price_version VARCHAR
        """
    ),
    ("run_id",),
)

META = Table("meta", _cols("key VARCHAR, value VARCHAR"), ("key",))

TABLES: dict[str, Table] = {
    t.name: t for t in (CALLS, EXCHANGES, BODIES, TOOL_CALLS, TURNS, SESSIONS, INSIGHTS, RUNS, META)
}


def create_schema(conn: "duckdb.DuckDBPyConnection") -> None:
    """Create every table (idempotent: ``IF NOT EXISTS``)."""
    for table in TABLES.values():
        conn.execute(table.ddl())


# --- migrations ---------------------------------------------------------------------------------------

Migration = Callable[["duckdb.DuckDBPyConnection"], None]

MIGRATIONS: dict[int, Migration] = {}
"""``{from_version: step}``: each step moves a database from ``from_version`` to ``from_version + 1``
in place (ALTER TABLE …). Empty while only version 1 exists; ``migrate`` chains the steps."""


def migrate(conn: "duckdb.DuckDBPyConnection", from_version: int) -> int:
    """Bring an older database up to ``SCHEMA_VERSION`` inside one transaction; returns the new version.

    Raises ``LookupError`` when a step is missing (a version this build cannot upgrade).
    """
    version = from_version
    if version >= SCHEMA_VERSION:
        return version
    conn.execute("BEGIN TRANSACTION")
    try:
        while version < SCHEMA_VERSION:
            step = MIGRATIONS.get(version)
            if step is None:
                raise LookupError(f"no migration from schema version {version}")
            step(conn)
            version += 1
        conn.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version)]
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return version


# --- Arrow types for batched inserts --------------------------------------------------------------------


def arrow_type(sql_type: str) -> "pyarrow.DataType":
    """Arrow type that DuckDB casts to ``sql_type`` losslessly (JSON travels as text)."""
    import pyarrow as pa

    return {
        VARCHAR: pa.string(),
        JSON: pa.string(),
        BIGINT: pa.int64(),
        INTEGER: pa.int32(),
        DOUBLE: pa.float64(),
        BOOLEAN: pa.bool_(),
        BLOB: pa.binary(),
        VARCHAR_LIST: pa.list_(pa.string()),
    }[sql_type]


def arrow_schema(table: Table) -> "pyarrow.Schema":
    import pyarrow as pa

    return pa.schema([(n, arrow_type(t)) for n, t in table.columns])
