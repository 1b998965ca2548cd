"""``/api/turns`` and ``/api/sessions`` (interfaces.md §7.2): turn and session records and their details.

Items are the §6.2/§6.3 export records (``turn_record``, ``session_record``), selected with the export
filters (``TurnFilters``, ``SessionFilters``) plus the API's own (server, minimum calls, insights) and the
TUI's display filter. A live run also shows the assembler's in-progress turns — first, on page one only
(they are not in the table, so they cannot take part in keyset paging).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from heron_core.export.calls import CALL_EXPORT_FIELDS, SELECT_COLUMNS, call_record
from heron_core.export.sessions import SESSION_EXPORT_FIELDS, SessionFilters, session_record
from heron_core.export.turns import TURN_EXPORT_FIELDS, TurnFilters, turn_record
from heron_core.query.details import turn_detail
from heron_core.store.schema import SESSIONS, TURNS, VARCHAR_LIST, quote
from heron_tui.api.common import (
    ApiContext,
    Range,
    as_json,
    bad_params,
    db,
    get_ctx,
    in_list,
    multi,
    not_found,
    time_range,
)
from heron_tui.api.paging import page_request, parse_sort, sql_page
from heron_tui.api.routes_calls import _display_filter

router = APIRouter(prefix="/api", tags=["turns and sessions"])

Multi = Annotated[list[str] | None, Query()]
TURN_SORTS = {"start": '"start"', "duration_ms": "duration_ms", "call_count": "call_count", "cost_usd": "cost_usd"}
SESSION_SORTS = {"last_end": "last_end", "first_start": "first_start", "cost_usd": "cost_usd",
                 "turn_count": "turn_count"}
_TURN_COLS = ", ".join(quote(c) for c in TURNS.column_names)
_SESSION_COLS = ", ".join(quote(c) for c in SESSIONS.column_names)
_TURN_LISTS = frozenset(c for c, t in TURNS.columns if t == VARCHAR_LIST)
_CALL_COLS = ", ".join(quote(c) for c in SELECT_COLUMNS)


def turn_from_dict(d: dict[str, Any]) -> Response:
    """A turn dict (a detail row or an assembler live row) → the §6.2 record: key order, lists never
    null."""
    return {k: ([] if d.get(k) is None and k in _TURN_LISTS else d.get(k)) for k in TURN_EXPORT_FIELDS}


def _live_turn_matches(t: dict[str, Any], rng: Range, a: dict[str, list[str]], min_calls: int | None,
                       has_insights: bool | None) -> bool:
    """In-progress turns filtered in memory by the same simple filters as the SQL (no display filter)."""
    start = t.get("start")
    if start is not None and (rng.since is not None and start < rng.since
                              or rng.until is not None and start >= rng.until):
        return False
    for key in ("agent_kind", "session_id", "source_id", "server", "wire_api"):
        if a[key] and t.get(key) not in a[key]:
            return False
    if a["status"] and "in_progress" not in a["status"]:
        return False
    if a["model"] and not set(a["model"]) & set(t.get("models") or []):
        return False
    if min_calls is not None and (t.get("call_count") or 0) < min_calls:
        return False
    return has_insights is None or bool(t.get("insight_count")) == has_insights


@router.get("/turns", summary="Turn records (§6.2); in-progress turns first on page one of a live run")
def list_turns(
    request: Request,
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    since: str | None = None, until: str | None = None,
    agent_kind: Multi = None, session_id: Multi = None, source_id: Multi = None,
    status: Annotated[list[str] | None, Query(description="complete, incomplete, partial, in_progress")] = None,
    model: Multi = None, server: Multi = None, wire_api: Multi = None,
    min_calls: int | None = None, has_insights: bool | None = None, include_partial: bool = False,
    filter: Annotated[str | None, Query(description="display filter, e.g. `tool == Bash && cost > 0.1`")] = None,
    sort: Annotated[str | None, Query(description="start, duration_ms, call_count, cost_usd; -field for "
                                                  "descending (default -start)")] = None,
    limit: int = 100, cursor: str | None = None, count: bool = False,
) -> Response:
    rng = time_range(ctx, since, until)
    req = page_request(request.query_params.multi_items(), limit, cursor, count,
                       parse_sort(sort, TURN_SORTS, "-start"))
    args = {"agent_kind": multi(agent_kind), "session_id": multi(session_id), "source_id": multi(source_id),
            "status": multi(status), "model": multi(model), "server": multi(server), "wire_api": multi(wire_api)}
    stored = [s for s in args["status"] if s != "in_progress"]
    with bad_params():
        where, params = TurnFilters(since=rng.since, until=rng.until, source_id=args["source_id"],
                                    agent_kind=args["agent_kind"], session=args["session_id"], model=args["model"],
                                    wire_api=args["wire_api"], status=stored).where()
    conds, params = [where], list(params)
    if args["status"] and not stored:
        conds.append("FALSE")  # only in_progress asked for: none of those is stored
    if not include_partial and "partial" not in stored:
        conds.append("status <> 'partial'")
    if args["server"]:
        conds.append(in_list("server", args["server"], params))
    if min_calls is not None:
        conds.append("call_count >= ?")
        params.append(min_calls)
    if has_insights is not None:
        conds.append("coalesce(insight_count, 0) > 0" if has_insights else "coalesce(insight_count, 0) = 0")
    fsql, fparams = _display_filter("turns", filter)
    conds.append(fsql)
    params += fparams
    with db(ctx) as cur:
        page = sql_page(cur, columns=_TURN_COLS, table="turns", where=" AND ".join(f"({c})" for c in conds),
                        params=params, id_sql="turn_id", req=req, record=turn_record)
    if req.first and ctx.engine is not None and not filter:
        live = [turn_from_dict(t) for t in ctx.open_turns()
                if _live_turn_matches(t, rng, args, min_calls, has_insights)]
        live.sort(key=lambda t: (-(t["start"] or 0), t["turn_id"]))
        page["items"] = live + page["items"]
        if count:
            page["total"] += len(live)
    return as_json(page)


def _calls(cur: Any, where: str, params: list[Any]) -> list[dict[str, Any]]:
    cur.execute(f"SELECT {_CALL_COLS} FROM calls WHERE {where} ORDER BY request_start NULLS LAST, call_id", params)
    return [call_record(r) for r in cur.fetchall()]


@router.get("/turns/{turn_id}", summary="One turn with its calls, tool calls and insights")
def get_turn(turn_id: str, ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Response:
    with db(ctx) as cur:
        d = turn_detail(cur, turn_id)
        if d is None:
            live = next((t for t in ctx.open_turns() if t.get("turn_id") == turn_id), None)
            if live is None:
                raise not_found(f"no turn {turn_id!r}")
            turn = turn_from_dict(live)
            calls = _calls(cur, "call_id IN (SELECT unnest(?::VARCHAR[]))", [list(turn["call_ids"])])
            return as_json({"turn": turn, "calls": calls, "tool_calls": [], "insights": []})
    return as_json({
        "turn": turn_from_dict(d["turn"]),
        "calls": [{k: c[k] for k in CALL_EXPORT_FIELDS} for c in d["calls"]],
        "tool_calls": d["tool_calls"],
        "insights": d["insights"],
    })


# --- sessions -------------------------------------------------------------------------------------------


@router.get("/sessions", summary="Session records (§6.3) overlapping the range")
def list_sessions(
    request: Request,
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    since: str | None = None, until: str | None = None,
    agent_kind: Multi = None, source_id: Multi = None, model: Multi = None, wire_api: Multi = None,
    status: Annotated[list[str] | None, Query(description="active or idle")] = None,
    filter: Annotated[str | None, Query(description="display filter, e.g. `turns > 5`")] = None,
    sort: Annotated[str | None, Query(description="last_end, first_start, cost_usd, turn_count; -field for "
                                                  "descending (default -last_end)")] = None,
    limit: int = 100, cursor: str | None = None, count: bool = False,
) -> Response:
    rng = time_range(ctx, since, until)
    req = page_request(request.query_params.multi_items(), limit, cursor, count,
                       parse_sort(sort, SESSION_SORTS, "-last_end"))
    wm = ctx.session_watermark()
    idle = ctx.cfg.turn_idle_timeout_s
    with bad_params():
        where, params = SessionFilters(since=rng.since, until=rng.until, source_id=multi(source_id),
                                       agent_kind=multi(agent_kind), model=multi(model), wire_api=multi(wire_api),
                                       status=multi(status), watermark=wm, idle_timeout_s=idle).where()
    fsql, fparams = _display_filter("sessions", filter)
    with db(ctx) as cur:
        return as_json(sql_page(cur, columns=_SESSION_COLS, table="sessions", where=f"({where}) AND ({fsql})",
                                params=list(params) + fparams, id_sql="session_id", req=req,
                                record=lambda r: session_record(r, wm, idle)))


@router.get("/sessions/{session_id}", summary="One session with its turns and auxiliary calls")
def get_session(session_id: str, ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Response:
    wm = ctx.session_watermark()
    with db(ctx) as cur:
        row = cur.execute(f"SELECT {_SESSION_COLS} FROM sessions WHERE session_id = ?", [session_id]).fetchone()
        live = [turn_from_dict(t) for t in ctx.open_turns() if t.get("session_id") == session_id]
        if row is None and not live:
            raise not_found(f"no session {session_id!r}")
        turns = [turn_record(r) for r in cur.execute(
            f'SELECT {_TURN_COLS} FROM turns WHERE session_id = ? ORDER BY "start" NULLS LAST, turn_id',
            [session_id]).fetchall()]
        aux = _calls(cur, "session_id = ? AND coalesce(is_auxiliary, false)", [session_id])
    if row is not None:
        session = session_record(row, wm, ctx.cfg.turn_idle_timeout_s)
    else:  # only in-progress turns so far: the session row is written with its first finished turn
        session = {k: None for k in SESSION_EXPORT_FIELDS} | {"session_id": session_id, "state": "active",
                                                              "models": [], "subagents": []}
    return as_json({"session": session, "turns": turns + live, "auxiliary_calls": aux})
