"""Store fixtures for the TUI tests, screenshots and benchmark.

* ``synth_rows(conn, n_calls)`` writes a large, realistic-looking store straight into DuckDB with
  ``INSERT … SELECT`` over ``range()`` — 100k calls with their turns, sessions, insights and tool calls
  in about a second, far faster than pushing a capture through the engine, which the benchmark is not
  about. Values are deterministic (``hash(i)``), so snapshots are stable.
* ``derive_agent_tables(conn)`` fills ``turns``/``sessions``/``insights``/``tool_calls`` from the calls
  of a real capture when the engine did not (turn assembly lands in the assembler separately): calls of
  one session are cut into turns after each call whose finish is not ``tool_use``. It is a stand-in so
  the Turns/Sessions/Insights views can be exercised on real traffic, not a reimplementation of
  agents-and-turns.md.
"""

from __future__ import annotations

from typing import Any

T0 = 1767225600.0

_MODELS = ["claude-sonnet-4-5-20250929", "gpt-5-codex", "gpt-4.1-2025-04-14", "claude-haiku-4-5-20251001",
           "gemini-2.5-pro", "llama3.1:8b"]
_AGENTS = ["claude-cli", "codex-cli", "generic", "gemini-cli"]
_WIRE = ["anthropic", "openai-responses", "openai-chat", "anthropic", "gemini", "ollama"]
_TOOLS = ["Bash", "Read", "Edit", "Grep", "shell", "apply_patch", "web_search"]
_WORDS = ["fix the failing test in", "refactor the parser of", "why does the build of", "add retries to",
          "explain the design of", "write docs for", "speed up the loop in", "port to rust the"]
_NOUNS = ["heron_core/engine.py", "the TUI", "the TCP reassembler", "DuckDB writer", "SSE splitter",
          "the pricing module", "the CLI", "the web console"]


def _arr(items: list[str]) -> str:
    return "[" + ", ".join("'" + s.replace("'", "''") + "'" for s in items) + "]"


def synth_rows(conn: Any, n_calls: int = 100_000, calls_per_turn: int = 5, turns_per_session: int = 10) -> None:
    """Write ``n_calls`` calls (plus turns, sessions, insights, tool calls) into an empty store."""
    m, a, w, tl, wd, nn = (_arr(x) for x in (_MODELS, _AGENTS, _WIRE, _TOOLS, _WORDS, _NOUNS))
    conn.execute(f"""
    INSERT INTO calls BY NAME
    SELECT 'call-' || lpad(i::VARCHAR, 7, '0') AS call_id, 'bench' AS source_id,
           {a}[1 + (i // {calls_per_turn * turns_per_session}) % 4] AS agent_kind,
           'sess-' || lpad((i // {calls_per_turn * turns_per_session})::VARCHAR, 6, '0') AS session_id,
           'turn-' || lpad((i // {calls_per_turn})::VARCHAR, 7, '0') AS turn_id,
           false AS is_auxiliary, '10.0.0.' || (i % 50) AS client_ip, 40000 + i % 20000 AS client_port,
           '10.1.0.' || (i % 7) AS server_ip, 443 AS server_port, '10.1.0.' || (i % 7) || ':443' AS server,
           'POST' AS method, '/v1/messages' AS path,
           CASE WHEN h % 100 < 2 THEN 429 WHEN h % 100 < 3 THEN 500 WHEN h % 1000 < 35 THEN 529 ELSE 200 END
               AS status_code,
           {w}[1 + i % 6] AS wire_api, 'chat' AS operation, 'route' AS detected_by,
           {m}[1 + i % 6] AS model_requested, {m}[1 + i % 6] AS model, true AS is_stream,
           {T0} + i * 0.5 AS request_start, {T0} + i * 0.5 + (h % 4000) / 1000.0 + 0.3 AS response_end,
           CASE WHEN h % 100 >= 3 THEN 80 + (h % 2500) END AS ttft_ms, 300 + (h % 4000) AS e2e_ms,
           12 + h % 30 AS tpot_ms,
           CASE WHEN h % 100 < 3 THEN 'error' WHEN i % {calls_per_turn} = {calls_per_turn - 1} THEN 'stop'
                ELSE 'tool_use' END AS finish,
           h % 100 >= 3 AS ok,
           CASE WHEN h % 100 < 3 THEN '{{"source":"http","type":"overloaded_error","message":"Overloaded"}}'
                END AS error,
           CASE WHEN i % {calls_per_turn} <> {calls_per_turn - 1}
                THEN '[{{"id":"toolu_' || i || '","name":"' || {tl}[1 + h % 7] || '","arguments":{{}}}}]'
                ELSE '[]' END AS tool_calls,
           CASE WHEN i % {calls_per_turn} <> {calls_per_turn - 1} THEN 1 ELSE 0 END AS tool_call_count,
           1000 + h % 90000 AS input_total_tokens, 800 + h % 60000 AS cache_read_tokens,
           50 + h % 1500 AS output_tokens, 1050 + h % 90000 + h % 1500 AS total_tokens,
           ((1000 + h % 90000) * 3e-6 + (50 + h % 1500) * 15e-6) AS cost_usd, 'priced' AS cost_status,
           1 AS attempt, {wd}[1 + h % 8] || ' ' || {nn}[1 + (h // 8) % 8] AS input_preview,
           'Done: updated ' || {nn}[1 + (h // 8) % 8] AS output_preview, false AS damaged
    FROM (SELECT i, (hash(i * 7919) % 1000000007)::BIGINT AS h FROM range({n_calls}) t(i))
    """)
    conn.execute("""
    INSERT INTO turns BY NAME
    SELECT c.turn_id, any_value(c.session_id) AS session_id, 'bench' AS source_id,
           any_value(c.agent_kind) AS agent_kind,
           CASE WHEN bool_or(c.finish = 'error') THEN 'incomplete' ELSE 'complete' END AS status,
           'terminal' AS end_reason, min(c.request_start) AS start, max(c.response_end) AS "end",
           (max(c.response_end) - min(c.request_start)) * 1000 AS duration_ms,
           arg_min(c.ttft_ms, c.request_start) AS first_response_ms,
           min(c.call_id) AS anchor_call_id, max(c.call_id) AS final_call_id,
           list(c.call_id ORDER BY c.call_id) AS call_ids,
           arg_min(c.input_preview, c.request_start) AS user_input_preview,
           arg_max(c.output_preview, c.request_start) AS final_answer_preview,
           arg_max(c.finish, c.request_start) AS finish,
           arg_max(c.error, c.request_start) FILTER (WHERE c.error IS NOT NULL) AS error,
           arg_min(c.wire_api, c.request_start) AS wire_api, arg_min(c.server, c.request_start) AS server,
           arg_min(c.client_ip, c.request_start) AS client_ip,
           list(DISTINCT c.model ORDER BY c.model) AS models, []::VARCHAR[] AS subagents,
           list(DISTINCT json_extract_string(c.tool_calls, '$[0].name') ORDER BY json_extract_string(c.tool_calls, '$[0].name'))
               FILTER (WHERE c.tool_call_count > 0) AS tool_names,
           count(*) AS call_count, count(*) AS main_call_count, 0 AS subagent_call_count, 0 AS retry_count,
           sum(c.input_total_tokens) AS input_total_tokens, sum(c.cache_read_tokens) AS cache_read_tokens,
           sum(c.output_tokens) AS output_tokens, sum(c.total_tokens) AS total_tokens,
           sum(c.cost_usd) AS cost_usd, true AS cost_complete, sum(c.tool_call_count) AS tool_call_count,
           0 AS tool_error_count, 0 AS tool_missing_count,
           CASE WHEN (hash(c.turn_id) % 1000003)::BIGINT % 20 = 0 THEN 1 ELSE 0 END AS insight_count,
           CASE WHEN (hash(c.turn_id) % 1000003)::BIGINT % 20 = 0 THEN ['planner_loop'] ELSE [] END AS insight_kinds
    FROM calls c GROUP BY c.turn_id
    """)
    _sessions_from_turns(conn)
    conn.execute("""
    INSERT INTO insights BY NAME
    SELECT 'ins-' || t.turn_id AS insight_id, 'planner_loop' AS kind,
           CASE WHEN (hash(t.turn_id) % 1000003)::BIGINT % 3 = 0 THEN 'critical' ELSE 'warning' END AS severity,
           t.source_id, t.session_id, t.turn_id, t.call_ids, t.start AS first_seen, t."end" AS last_seen,
           3 + (hash(t.turn_id) % 1000003)::BIGINT % 4 AS count,
           'Bash called ' || (3 + (hash(t.turn_id) % 1000003)::BIGINT % 4) || '× with the same arguments' AS summary,
           'loop|' || t.turn_id AS dedupe_key
    FROM turns t WHERE t.insight_count > 0
    """)
    _tool_calls_from_calls(conn)


def _sessions_from_turns(conn: Any) -> None:
    conn.execute("""
    INSERT INTO sessions BY NAME
    SELECT t.session_id, t.session_id AS native_session_id, 'header' AS session_source,
           arg_min(t.source_id, t.start) AS source_id, arg_min(t.agent_kind, t.start) AS agent_kind,
           min(t.start) AS first_start, max(t."end") AS last_end, count(*) AS turn_count,
           count(*) FILTER (WHERE t.status = 'complete') AS turns_complete,
           count(*) FILTER (WHERE t.status = 'incomplete') AS turns_incomplete,
           count(*) FILTER (WHERE t.status = 'partial') AS turns_partial,
           sum(t.call_count) AS call_count, 0 AS auxiliary_call_count,
           arg_min(t.turn_id, t.start) AS first_turn_id, arg_max(t.turn_id, t.start) AS last_turn_id,
           arg_min(t.user_input_preview, t.start) AS first_user_input_preview,
           list_sort(list_distinct(flatten(list(t.models)))) AS models, []::VARCHAR[] AS subagents,
           sum(t.input_total_tokens) AS input_total_tokens, sum(t.cache_read_tokens) AS cache_read_tokens,
           sum(t.output_tokens) AS output_tokens, sum(t.total_tokens) AS total_tokens,
           sum(t.cost_usd) AS cost_usd, bool_and(coalesce(t.cost_complete, false)) AS cost_complete,
           sum(t.tool_call_count) AS tool_call_count, 0 AS tool_error_count,
           sum(t.insight_count) AS insight_count, arg_min(t.server, t.start) AS server,
           arg_min(t.client_ip, t.start) AS client_ip
    FROM turns t WHERE t.session_id IS NOT NULL GROUP BY t.session_id
    """)


def _tool_calls_from_calls(conn: Any) -> None:
    conn.execute("""
    INSERT INTO tool_calls BY NAME
    SELECT c.call_id, json_extract_string(tc, '$.id') AS tool_call_id, c.session_id, c.turn_id,
           c.subagent, row_number() OVER (PARTITION BY c.call_id) - 1 AS seq,
           json_extract_string(tc, '$.name') AS name, json_extract(tc, '$.arguments') AS arguments,
           c.response_end AS issued_at, 'ok' AS result_status
    FROM (SELECT *, unnest(CAST(tool_calls AS JSON[])) AS tc FROM calls
          WHERE tool_call_count > 0) c
    WHERE json_extract_string(tc, '$.id') IS NOT NULL
    """)


def derive_agent_tables(conn: Any) -> bool:
    """Fill turns, sessions, insights and tool calls from the calls of an ingested capture, unless the
    engine already produced turns. Returns True when it derived them."""
    if conn.execute("SELECT count(*) FROM turns").fetchone()[0]:
        return False
    conn.execute("""
    CREATE OR REPLACE TEMP TABLE _cut AS
    SELECT call_id, session_id,
           'turn-' || substr(md5(session_id || ':' || sum(brk) OVER (PARTITION BY session_id
               ORDER BY request_start, call_id ROWS UNBOUNDED PRECEDING)), 1, 16) AS turn_id
    FROM (SELECT call_id, session_id, request_start,
                 CASE WHEN coalesce(lag(finish) OVER (PARTITION BY session_id ORDER BY request_start, call_id),
                                    'stop') <> 'tool_use' THEN 1 ELSE 0 END AS brk
          FROM calls WHERE session_id IS NOT NULL AND NOT coalesce(is_auxiliary, false))
    """)
    conn.execute("UPDATE calls SET turn_id = _cut.turn_id FROM _cut WHERE calls.call_id = _cut.call_id")
    conn.execute("DROP TABLE _cut")
    conn.execute("""
    INSERT INTO turns BY NAME
    SELECT c.turn_id, any_value(c.session_id) AS session_id, any_value(c.source_id) AS source_id,
           any_value(c.agent_kind) AS agent_kind,
           CASE WHEN arg_max(c.finish, c.request_start) = 'tool_use' THEN 'incomplete' ELSE 'complete' END
               AS status,
           'terminal' AS end_reason, min(c.request_start) AS start, max(c.response_end) AS "end",
           (max(c.response_end) - min(c.request_start)) * 1000 AS duration_ms,
           arg_min(c.ttft_ms, c.request_start) AS first_response_ms,
           arg_min(c.call_id, c.request_start) AS anchor_call_id,
           arg_max(c.call_id, c.request_start) AS final_call_id,
           list(c.call_id ORDER BY c.request_start) AS call_ids,
           arg_min(coalesce(c.user_text, c.input_preview), c.request_start)[:500] AS user_input_preview,
           arg_max(c.output_preview, c.request_start) AS final_answer_preview,
           arg_max(c.finish, c.request_start) AS finish,
           arg_max(c.finish_reason_raw, c.request_start) AS finish_reason_raw,
           arg_max(c.error, c.request_start) FILTER (WHERE c.error IS NOT NULL) AS error,
           arg_min(c.wire_api, c.request_start) AS wire_api, arg_min(c.server, c.request_start) AS server,
           arg_min(c.client_ip, c.request_start) AS client_ip,
           list(DISTINCT c.model ORDER BY c.model) FILTER (WHERE c.model IS NOT NULL) AS models,
           []::VARCHAR[] AS subagents,
           list_sort(list_distinct(flatten(list(json_extract_string(c.tool_calls, '$[*].name'))))) AS tool_names,
           count(*) AS call_count, count(*) AS main_call_count, 0 AS subagent_call_count,
           count(*) FILTER (WHERE coalesce(c.attempt, 1) > 1) AS retry_count,
           sum(c.input_tokens) AS input_tokens, sum(c.input_total_tokens) AS input_total_tokens,
           sum(c.cache_read_tokens) AS cache_read_tokens, sum(c.cache_creation_tokens) AS cache_creation_tokens,
           sum(c.reasoning_tokens) AS reasoning_tokens, sum(c.output_tokens) AS output_tokens,
           sum(c.total_tokens) AS total_tokens, sum(c.cost_usd) AS cost_usd,
           bool_and(c.cost_usd IS NOT NULL) AS cost_complete, sum(c.tool_call_count) AS tool_call_count,
           0 AS tool_error_count, 0 AS tool_missing_count,
           count(*) FILTER (WHERE coalesce(c.status_code, 0) >= 400) AS insight_count,
           CASE WHEN count(*) FILTER (WHERE coalesce(c.status_code, 0) >= 400) > 0 THEN ['retry_storm']
                ELSE [] END AS insight_kinds
    FROM calls c WHERE c.turn_id IS NOT NULL GROUP BY c.turn_id
    """)
    conn.execute("UPDATE turns SET insight_count = least(insight_count, 1)")
    _sessions_from_turns(conn)
    conn.execute("""
    INSERT INTO insights BY NAME
    SELECT 'ins-' || t.turn_id AS insight_id, 'retry_storm' AS kind, 'warning' AS severity,
           t.source_id, t.session_id, t.turn_id, t.call_ids, t.start AS first_seen, t."end" AS last_seen,
           t.call_count AS count, 'errors in ' || t.call_count || ' calls of the turn (derived fixture)' AS summary,
           'derived|' || t.turn_id AS dedupe_key
    FROM turns t WHERE t.insight_count > 0
    """)
    _tool_calls_from_calls(conn)
    return True
