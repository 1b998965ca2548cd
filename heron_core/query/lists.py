"""Paged, sorted, filtered row lists of turns, sessions, calls, insights and services (UI-free).

The TUI shows lists of up to hundreds of thousands of rows without ever holding them: it asks for the
count, then for pages (``LIMIT/OFFSET`` on a stable order: the sort column, then the row id, so equal
keys never swap between pages) as the user scrolls. The REST API uses the same specs for ``/api/turns``
and friends, so a column shown in the console and in the TUI is computed once, here.

Each ``ListSpec`` names its columns as SQL over its table (qualified by the table name, which is also
the qualifier ``filterlang`` uses) with a display *kind* (``time``, ``ms``, ``usd``, ``tokens`` …) the
front ends format, a width and a priority (which columns a narrow terminal drops first). Services are an
aggregate over calls, so their filter applies to the calls before grouping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heron_core.query.filterlang import Compiled, compile_filter

HIDDEN_HOPS = "coalesce(calls.hop_role, '') NOT IN ('proxy_out', 'mirror_secondary')"
"""Hop legs a proxy re-sent are stored but hidden from lists (metrics.md §3.2 defaults)."""

CALL_ERROR = "(coalesce(calls.status_code, 0) >= 400 OR calls.finish IN ('error', 'aborted'))"


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    sql: str
    kind: str = "text"  # text | int | tokens | ms | usd | time | pct | status | tstatus | severity
    width: int = 8
    priority: int = 5  # 0 = never dropped; higher numbers go first when the terminal is narrow
    flex: bool = False  # takes the remaining width
    align: str = "left"

    @property
    def right(self) -> bool:
        return self.align == "right"


def _c(key: str, label: str, sql: str, kind: str = "text", width: int = 8, priority: int = 5,
       flex: bool = False) -> Column:
    right = kind in ("int", "tokens", "ms", "usd", "pct")
    return Column(key, label, sql, kind, width, priority, flex, "right" if right else "left")


@dataclass(frozen=True)
class ListSpec:
    """One list: its table (or aggregate), id, columns, default sort and row-style expression."""

    name: str
    title: str
    filter_entity: str  # entity the display filter compiles against
    table: str  # FROM text; ``{where}`` is replaced by the filter for aggregates
    id_sql: str
    columns: tuple[Column, ...]
    default_sort: str
    base_where: str = "TRUE"
    style_sql: str = "NULL"  # 'error' | 'warn' | 'dim' | NULL per row
    filter_inside: bool = False
    turn_id_sql: str | None = None  # the turn a row opens / exports
    session_id_sql: str | None = None

    def column(self, key: str) -> Column:
        for c in self.columns:
            if c.key == key:
                return c
        raise KeyError(key)


def _overview(t: str, start: str, calls: str, duration: str, model: str, words: str, insights_priority: int,
              ids: tuple[Column, ...] = ()) -> tuple[Column, ...]:
    """The columns turns and sessions share (a session is a run of turns: the same figures, summed), in
    their display order; ``ids`` go before the first user words."""
    return (
        _c("start", "time" if t == "turns" else "start", start, "time", 8, 1),
        _c("agent", "agent", f"{t}.agent_kind", "text", 10, 0),
        *((_c("status", "status", "turns.status", "tstatus", 10, 0),) if t == "turns" else
          (_c("turns", "turns", "sessions.turn_count", "int", 5, 0),)),
        _c("calls", "calls", calls, "int", 5, 1),
        _c("tokens", "tokens", f"{t}.total_tokens", "tokens", 7, 2),
        _c("cost", "cost", f"{t}.cost_usd", "usd", 7, 2),
        _c("duration", "dur", duration, "ms", 7, 1),
        *((_c("ttft", "ttft", "turns.first_response_ms", "ms", 6, 3),
           _c("tools", "tools", "turns.tool_call_count", "int", 5, 6)) if t == "turns" else ()),
        _c("insights", "ins", f"{t}.insight_count", "int", 3, insights_priority),
        _c("model", "model", model, "text", 18, 3),
        *ids,
        _c("words", "first user words", words, "text", 20, 0, True),
    )


TURNS = ListSpec(
    "turns", "Turns", "turns", "turns", "turns.turn_id",
    _overview("turns", "turns.start", "turns.call_count", "turns.duration_ms", "turns.models[1]",
              "turns.user_input_preview", 6),
    "start",
    style_sql="CASE WHEN turns.error IS NOT NULL OR turns.finish IN ('error','aborted') THEN 'error' "
              "WHEN turns.status IN ('incomplete') THEN 'warn' WHEN turns.status = 'partial' THEN 'dim' END",
    turn_id_sql="turns.turn_id", session_id_sql="turns.session_id",
)

SESSIONS = ListSpec(
    "sessions", "Sessions", "sessions", "sessions", "sessions.session_id",
    _overview("sessions", "sessions.first_start", "sessions.call_count",
              "(sessions.last_end - sessions.first_start) * 1000", "sessions.models[1]",
              "sessions.first_user_input_preview", 5,
              ids=(_c("id", "session", "sessions.session_id", "id", 10, 6),)),
    "start",
    style_sql="CASE WHEN sessions.turns_incomplete > 0 THEN 'warn' END",
    turn_id_sql="sessions.first_turn_id", session_id_sql="sessions.session_id",
)

CALLS = ListSpec(
    "calls", "Calls", "calls", "calls", "calls.call_id",
    (
        _c("start", "time", "calls.request_start", "time", 8, 1),
        # eBPF calls: the process that made the call (comm/pid) says more than the source name
        _c("source", "source", "coalesce(calls.process_comm || '/' || calls.process_pid, calls.source_id)",
           "text", 8, 6),
        _c("agent", "agent", "calls.agent_kind", "text", 10, 4),
        _c("wire", "wire api", "calls.wire_api", "text", 12, 3),
        _c("model", "model", "calls.model", "text", 18, 0),
        _c("status", "st", "calls.status_code", "status", 3, 0),
        _c("finish", "finish", "calls.finish", "text", 8, 2),
        _c("tokens_in", "in", "calls.input_total_tokens", "tokens", 6, 2),
        _c("tokens_out", "out", "calls.output_tokens", "tokens", 6, 2),
        _c("ttft", "ttft", "calls.ttft_ms", "ms", 6, 1),
        _c("e2e", "e2e", "calls.e2e_ms", "ms", 6, 1),
        _c("cost", "cost", "calls.cost_usd", "usd", 7, 4),
        _c("preview", "preview", "coalesce(calls.input_preview, calls.output_preview)", "text", 16, 0, True),
    ),
    "start",
    base_where=HIDDEN_HOPS,
    style_sql=f"CASE WHEN {CALL_ERROR} THEN 'error' WHEN calls.is_auxiliary THEN 'dim' END",
    turn_id_sql="calls.turn_id", session_id_sql="calls.session_id",
)

INSIGHTS = ListSpec(
    "insights", "Insights", "insights", "insights", "insights.insight_id",
    (
        _c("first_seen", "time", "insights.first_seen", "time", 8, 1),
        _c("severity", "severity", "insights.severity", "severity", 8, 0),
        _c("kind", "kind", "insights.kind", "text", 18, 0),
        _c("count", "count", "insights.count", "int", 5, 2),
        _c("last_seen", "last", "insights.last_seen", "time", 8, 4),
        _c("summary", "summary", "insights.summary", "text", 20, 0, True),
    ),
    "first_seen",
    style_sql="CASE insights.severity WHEN 'critical' THEN 'error' WHEN 'warning' THEN 'warn' END",
    turn_id_sql="insights.turn_id", session_id_sql="insights.session_id",
)

_SERVICES_FROM = f"""(SELECT calls.server AS server, count(*) AS calls,
       count(*) FILTER (WHERE {CALL_ERROR}) AS errors,
       count(*) FILTER (WHERE {CALL_ERROR}) / count(*) AS error_rate,
       string_agg(DISTINCT calls.model, ', ' ORDER BY calls.model) AS models,
       string_agg(DISTINCT calls.wire_api, ', ' ORDER BY calls.wire_api) AS wire_apis,
       quantile_cont(calls.ttft_ms, 0.5) FILTER (WHERE calls.ok) AS ttft_p50,
       quantile_cont(calls.ttft_ms, 0.95) FILTER (WHERE calls.ok) AS ttft_p95,
       quantile_cont(calls.e2e_ms, 0.95) FILTER (WHERE calls.ok) AS e2e_p95,
       sum(calls.output_tokens) AS output_tokens, sum(calls.cost_usd) AS cost_usd,
       max(calls.request_start) AS last_seen
   FROM calls WHERE {HIDDEN_HOPS} AND ({{where}}) GROUP BY calls.server) AS services"""

SERVICES = ListSpec(
    "services", "Services", "calls", _SERVICES_FROM, "services.server",
    (
        _c("server", "server", "services.server", "text", 21, 0),
        _c("calls", "calls", "services.calls", "int", 6, 0),
        _c("errors", "errs", "services.errors", "int", 5, 1),
        _c("error_rate", "err%", "services.error_rate", "pct", 5, 2),
        _c("ttft_p50", "ttft50", "services.ttft_p50", "ms", 6, 2),
        _c("ttft_p95", "ttft95", "services.ttft_p95", "ms", 6, 1),
        _c("e2e_p95", "e2e95", "services.e2e_p95", "ms", 6, 3),
        _c("output_tokens", "out", "services.output_tokens", "tokens", 6, 4),
        _c("cost", "cost", "services.cost_usd", "usd", 7, 4),
        _c("wire_apis", "wire apis", "services.wire_apis", "text", 14, 5),
        _c("models", "models", "services.models", "text", 20, 0, True),
    ),
    "calls",
    style_sql="CASE WHEN services.error_rate >= 0.1 THEN 'error' WHEN services.errors > 0 THEN 'warn' END",
    filter_inside=True,
)

SPECS: dict[str, ListSpec] = {s.name: s for s in (TURNS, SESSIONS, CALLS, INSIGHTS, SERVICES)}


def compile_for(spec: ListSpec | str, text: str | None) -> Compiled | None:
    """Compile a display filter for a list (services filter their calls). Raises ``FilterError``."""
    spec = SPECS[spec] if isinstance(spec, str) else spec
    return compile_filter(text, spec.filter_entity)


@dataclass(frozen=True)
class ListQuery:
    """A list with its filter and order; every method takes the caller's own cursor.

    Rows come back as ``(id, style, value…)`` in the spec's column order.
    """

    spec: ListSpec
    where: Compiled | None = None
    sort: str | None = None
    desc: bool = False
    _order: str = field(init=False, repr=False, default="")
    _reverse: str = field(init=False, repr=False, default="")

    def __post_init__(self) -> None:
        key = self.sort or self.spec.default_sort
        col = self.spec.column(key)
        d, r = ("DESC", "ASC") if self.desc else ("ASC", "DESC")
        object.__setattr__(self, "_order", f"{col.sql} {d} NULLS LAST, {self.spec.id_sql} {d}")
        object.__setattr__(self, "_reverse", f"{col.sql} {r} NULLS FIRST, {self.spec.id_sql} {r}")

    @property
    def sort_key(self) -> str:
        return self.sort or self.spec.default_sort

    def _from_where(self, extra: Compiled | None = None) -> tuple[str, list[Any]]:
        """``FROM … WHERE …`` text and its parameters (filter params first: they sit inside FROM for
        aggregates, before anything else)."""
        where = self.where
        params: list[Any] = []
        if self.spec.filter_inside:
            table = self.spec.table.replace("{where}", where.sql if where else "TRUE")
            params += list(where.params) if where else []
            cond = "TRUE"
        else:
            table = self.spec.table
            cond = f"({self.spec.base_where})"
            if where is not None:
                cond += f" AND ({where.sql})"
                params += list(where.params)
        if extra is not None:
            cond += f" AND ({extra.sql})"
            params += list(extra.params)
        return f"FROM {table} WHERE {cond}", params

    def count(self, conn: Any) -> int:
        sql, params = self._from_where()
        return int(conn.execute(f"SELECT count(*) {sql}", params).fetchone()[0])

    def fetch(self, conn: Any, offset: int, limit: int, total: int | None = None,
              after: tuple | None = None) -> list[tuple]:
        """Rows ``[offset, offset + limit)`` in list order.

        Deep pages are what makes ``LIMIT/OFFSET`` slow (DuckDB keeps a heap of ``offset + limit`` rows),
        so: given ``after``, the row just before ``offset`` (from an earlier fetch), the page is read by
        keyset — the rows following that one in sort order — for the cost of a scan and a heap of
        ``limit``; given ``total``, a page in the second half is read from the other end (reversed
        order, small offset), which makes a jump to the end as cheap as the first page.
        """
        offset, limit = max(0, int(offset)), int(limit)
        sql, params = self._from_where()
        cols = ", ".join(c.sql for c in self.spec.columns)
        head = f"SELECT {self.spec.id_sql}, {self.spec.style_sql}, {cols} {sql}"
        if after is not None:
            cond, cparams = self._after(after)
            q = f"{head} AND ({cond}) ORDER BY {self._order} LIMIT ?"
            return conn.execute(q, params + cparams + [limit]).fetchall()
        if total is not None and offset > total // 2:
            end = min(int(total), offset + limit)
            if end <= offset:
                return []
            q = f"{head} ORDER BY {self._reverse} LIMIT ? OFFSET ?"
            return conn.execute(q, params + [end - offset, int(total) - end]).fetchall()[::-1]
        q = f"{head} ORDER BY {self._order} LIMIT ? OFFSET ?"
        return conn.execute(q, params + [limit, offset]).fetchall()

    def _after(self, row: tuple) -> tuple[str, list[Any]]:
        """Keyset condition "comes after ``row``" for the order ``col ASC|DESC NULLS LAST, id``."""
        idx = [c.key for c in self.spec.columns].index(self.sort_key)
        c, i = self.spec.column(self.sort_key).sql, self.spec.id_sql
        k, rid = row[2 + idx], row[0]
        gt = "<" if self.desc else ">"
        if k is None:
            return f"({c}) IS NULL AND {i} {gt} ?", [rid]
        return f"({c}) {gt} ? OR (({c}) = ? AND {i} {gt} ?) OR ({c}) IS NULL", [k, k, rid]

    def _match_expr(self, match: Compiled) -> Compiled:
        if self.spec.filter_inside:  # services: a service matches when one of its calls does
            base = f"SELECT calls.server FROM calls WHERE {HIDDEN_HOPS} AND ({match.sql})"
            return Compiled(f"services.server IN ({base})", match.params)
        return match

    def _ranked(self, select: str, extra: Compiled | None = None) -> tuple[str, list[Any]]:
        """``SELECT row_number() … - 1 AS rn, <select> FROM … WHERE …`` in list order: the row positions
        that ``find``, ``index_of`` and ``turn_ids`` look up (``extra`` narrows the rows, not the order
        they are numbered in when it is None)."""
        sql, params = self._from_where(extra)
        return f"SELECT row_number() OVER (ORDER BY {self._order}) - 1 AS rn, {select} {sql}", params

    def find(self, conn: Any, match: Compiled, after: int, forward: bool = True, wrap: bool = True) -> int | None:
        """Index of the next (previous) row after (before) ``after`` that matches ``match``; wraps once."""
        m = self._match_expr(match)
        ranked, params = self._ranked(f"({m.sql}) AS m")
        cmp, order = (">", "ASC") if forward else ("<", "DESC")
        q = f"SELECT rn FROM ({ranked}) WHERE m AND rn {cmp} ? ORDER BY rn {order} LIMIT 1"
        allp = list(m.params) + params
        row = conn.execute(q, allp + [after]).fetchone()
        if row is None and wrap:
            row = conn.execute(q, allp + [-1 if forward else 1 << 62]).fetchone()
        return None if row is None else int(row[0])

    def index_of(self, conn: Any, row_id: Any) -> int | None:
        ranked, params = self._ranked(f"{self.spec.id_sql} AS rid")
        row = conn.execute(f"SELECT rn FROM ({ranked}) WHERE rid = ?", params + [row_id]).fetchone()
        return None if row is None else int(row[0])

    def ids(self, conn: Any, limit: int | None = None) -> list[Any]:
        sql, params = self._from_where()
        q = f"SELECT {self.spec.id_sql} {sql} ORDER BY {self._order}"
        if limit is not None:
            q += f" LIMIT {int(limit)}"
        return [r[0] for r in conn.execute(q, params).fetchall()]

    def turn_ids(self, conn: Any, row_ids: list[Any] | None = None) -> list[str]:
        """Turns behind the matching rows (or only ``row_ids``), in list order without repeats — what
        an SFT export of this list covers. A session stands for all its turns; services have none."""
        if self.spec.turn_id_sql is None:
            return []
        only = None if row_ids is None else Compiled(f"{self.spec.id_sql} IN (SELECT unnest(?))", [list(row_ids)])
        if self.spec.name == "sessions":
            ranked, params = self._ranked(f"{self.spec.id_sql} AS rid", only)
            q = (f"SELECT t.turn_id FROM turns t JOIN ({ranked}) m ON t.session_id = m.rid "
                 f"ORDER BY m.rn, t.start, t.turn_id")
        else:
            ranked, params = self._ranked(f"{self.spec.turn_id_sql} AS tid", only)
            q = (f"SELECT tid FROM (SELECT tid, min(rn) AS o FROM ({ranked}) WHERE tid IS NOT NULL GROUP BY tid) "
                 f"ORDER BY o")
        return [r[0] for r in conn.execute(q, params).fetchall()]


def table_counts(conn: Any) -> dict[str, int]:
    """Row counts of the lists without a filter, in one round trip (the TUI polls this while loading);
    calls and services leave out the hidden hop legs, as their lists do."""
    row = conn.execute(
        f"SELECT (SELECT count(*) FROM calls WHERE {HIDDEN_HOPS}), (SELECT count(*) FROM turns), "
        f"(SELECT count(*) FROM sessions), (SELECT count(*) FROM insights), "
        f"(SELECT count(DISTINCT server) FROM calls WHERE {HIDDEN_HOPS})"
    ).fetchone()
    return dict(zip(("calls", "turns", "sessions", "insights", "services"), (int(x) for x in row)))


def open_target(conn: Any, list_name: str, row_id: Any) -> tuple[str, Any] | None:
    """What opening a row shows: ``("turn", turn_id)``, ``("call", call_id)`` or ``("service", server)``.

    A session opens its first turn; an insight its turn, or its first call when it has no turn.
    """
    if row_id is None:
        return None
    if list_name == "turns":
        return ("turn", row_id)
    if list_name == "calls":
        return ("call", row_id)
    if list_name == "services":
        return ("service", row_id)
    if list_name == "sessions":
        row = conn.execute("SELECT first_turn_id FROM sessions WHERE session_id = ?", [row_id]).fetchone()
        return ("turn", row[0]) if row and row[0] else None
    if list_name == "insights":
        row = conn.execute("SELECT turn_id, call_ids[1] FROM insights WHERE insight_id = ?", [row_id]).fetchone()
        if row and row[0]:
            return ("turn", row[0])
        if row and row[1]:
            return ("call", row[1])
    return None
