"""``/api/calls`` and ``/api/exchanges`` (interfaces.md §7.2): call records, one call's details, exchange
rows and stored bodies.

Call items are exactly the §6.1 export records (``export.calls.call_record`` over ``SELECT_COLUMNS``);
the filters reuse ``CallFilters`` (range, source, agent, session, turn, model, wire API, status) and the
display-filter language of the TUI (``filter=``, compiled by ``query.filterlang``), so the API, the TUI
and ``heron export calls`` select the same calls for the same words.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from heron_core.export.calls import CALL_EXPORT_FIELDS, SELECT_COLUMNS, CallFilters, call_record
from heron_core.query.details import BODY_PARTS, CALL_EXTRA_COLUMNS, body, call_detail
from heron_core.query.filterlang import FilterError
from heron_core.query.lists import HIDDEN_HOPS, compile_for
from heron_core.query.services import EXCHANGE_SERVER
from heron_core.store.schema import EXCHANGES, quote
from heron_tui.api.common import (
    ApiContext,
    as_json,
    bad_params,
    choice,
    db,
    get_ctx,
    in_flight_record,
    in_list,
    invalid,
    multi,
    not_found,
    time_range,
)
from heron_tui.api.paging import page_request, parse_sort, sql_page

router = APIRouter(prefix="/api", tags=["calls"])

Multi = Annotated[list[str] | None, Query()]
CALL_SORTS = {"request_start": "request_start", "ttft_ms": "ttft_ms", "e2e_ms": "e2e_ms",
              "output_tokens": "output_tokens", "cost_usd": "cost_usd"}
EXCHANGE_SORTS = {"request_start": "request_start", "response_end": "response_end", "status_code": "status_code",
                  "request_body_bytes": "request_body_bytes", "response_body_bytes": "response_body_bytes"}
_CALL_COLS = ", ".join(quote(c) for c in SELECT_COLUMNS)
_HEADER_COLS = ("request_headers", "response_headers")
_EXCHANGE_LIST_COLS = tuple(c for c in EXCHANGES.column_names if c not in _HEADER_COLS)
_JSON_TYPES = {"request": "request_content_type", "response": "response_content_type"}


def _display_filter(list_name: str, text: str | None) -> tuple[str, list[Any]]:
    """``filter=`` in the TUI's display-filter language → SQL over the list's table."""
    try:
        compiled = compile_for(list_name, text)
    except FilterError as exc:
        raise invalid(f"filter: {exc.message} (at {exc.pos})") from None
    return ("TRUE", []) if compiled is None else (compiled.sql, list(compiled.params))


def _bool_cond(column: str, value: bool | None, conds: list[str], params: list[Any]) -> None:
    if value is not None:
        conds.append(f"coalesce({column}, false) = ?")
        params.append(value)


@router.get("/calls", summary="Call records (§6.1), filtered, sorted and paged")
def list_calls(
    request: Request,
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    since: str | None = None, until: str | None = None,
    source_id: Multi = None, wire_api: Multi = None, model: Multi = None, server: Multi = None,
    agent_kind: Multi = None, session_id: Multi = None, turn_id: Multi = None,
    status_code: Annotated[list[str] | None, Query(description="codes (429) or classes (5xx)")] = None,
    finish: Multi = None, is_stream: bool | None = None, ok: bool | None = None,
    process_comm: Annotated[list[str] | None, Query(description="process name (eBPF calls)")] = None,
    process_pid: Annotated[list[int] | None, Query(description="process id (eBPF calls)")] = None,
    hops: Annotated[str | None, Query(description="exclude (default) or include hop legs")] = None,
    in_flight: bool = False,
    filter: Annotated[str | None, Query(description="display filter, e.g. `ttft > 2s && model ~ sonnet`")] = None,
    sort: Annotated[str | None, Query(description="request_start, ttft_ms, e2e_ms, output_tokens, cost_usd; "
                                                  "-field for descending (default -request_start)")] = None,
    limit: int = 100, cursor: str | None = None, count: bool = False,
) -> Response:
    rng = time_range(ctx, since, until)
    req = page_request(request.query_params.multi_items(), limit, cursor, count,
                       parse_sort(sort, CALL_SORTS, "-request_start"))
    hop_mode = choice("hops", hops, ("exclude", "include"), "exclude")
    with bad_params():
        where, params = CallFilters(since=rng.since, until=rng.until, source_id=multi(source_id),
                                    agent_kind=multi(agent_kind), session=multi(session_id), turn=multi(turn_id),
                                    model=multi(model), wire_api=multi(wire_api),
                                    status=multi(status_code)).where()
    conds, params = [where], list(params)
    if multi(server):
        conds.append(in_list("server", multi(server), params))
    if multi(finish):
        conds.append(in_list("finish", multi(finish), params))
    if multi(process_comm):
        conds.append(in_list("process_comm", multi(process_comm), params))
    if process_pid:
        conds.append(in_list("process_pid", list(process_pid), params))
    _bool_cond("is_stream", is_stream, conds, params)
    _bool_cond("ok", ok, conds, params)
    if hop_mode == "exclude":
        conds.append(HIDDEN_HOPS)
    fsql, fparams = _display_filter("calls", filter)
    conds.append(fsql)
    params += fparams
    with db(ctx) as cur:
        page = sql_page(cur, columns=_CALL_COLS, table="calls", where=" AND ".join(f"({c})" for c in conds),
                        params=params, id_sql="call_id", req=req, record=call_record)
    if in_flight and req.first and ctx.engine is not None:
        live = [in_flight_record(c) for c in ctx.in_flight()]
        live = [r for r in live if _live_call_matches(r, rng, source_id, wire_api, session_id)]
        live.sort(key=lambda r: (-(r["request_start"] or 0), r["call_id"]))
        page["items"] = live + page["items"]
        if count:
            page["total"] += len(live)
    return as_json(page)


def _live_call_matches(r: dict[str, Any], rng: Any, source_id: Any, wire_api: Any, session_id: Any) -> bool:
    """In-flight calls know only their source, wire API, session and start: filter on those."""
    t = r["request_start"]
    if rng.since is not None and t < rng.since or rng.until is not None and t >= rng.until:
        return False
    for key, values in (("source_id", source_id), ("wire_api", wire_api), ("session_id", session_id)):
        vals = multi(values)
        if vals and r[key] not in vals:
            return False
    return True


@router.get("/calls/{call_id}", summary="One call: record, exchange, bodies, tool calls, hop peer, insights")
def get_call(call_id: Annotated[str, Path()], ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Response:
    with db(ctx) as cur:
        d = call_detail(cur, call_id)
    if d is None:
        for c in ctx.in_flight():
            if c.call_id == call_id:
                return as_json({"call": in_flight_record(c), "in_flight": True, "exchange": None, "bodies": [],
                                "tool_calls": [], "tool_results": [], "hop_peer": None, "insights": []})
        raise not_found(f"no call {call_id!r}")
    call = d["call"]
    peer = d["hop_peer"]
    return as_json({
        "call": {k: call[k] for k in CALL_EXPORT_FIELDS},
        "extra": {k: call.get(k) for k in CALL_EXTRA_COLUMNS},
        "exchange": d["exchange"],
        "bodies": [{"part": part, **{k: b[k] for k in ("original_bytes", "stored_bytes", "dropped_bytes",
                                                         "truncated", "is_text")}}
                   for part, b in sorted(d["bodies"].items(), key=lambda kv: BODY_PARTS.index(kv[0]))],
        "tool_calls": d["tool_calls"],
        "tool_results": d["tool_results"],
        "hop_peer": None if peer is None else {k: peer[k] for k in CALL_EXPORT_FIELDS},
        "insights": d["insights"],
    })


# --- exchanges ------------------------------------------------------------------------------------------


def _exchange_record(names: tuple[str, ...]) -> Any:
    json_cols = EXCHANGES.json_columns

    def record(row: tuple) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in zip(names, row):
            if name in json_cols and isinstance(value, str):
                value = orjson.loads(value)
            elif name == "damage":
                value = [] if value is None else list(value)
            out[name] = value
        return out
    return record


_LIST_RECORD = _exchange_record(_EXCHANGE_LIST_COLS)
_FULL_RECORD = _exchange_record(EXCHANGES.column_names)


@router.get("/exchanges", summary="HTTP exchange rows (§3, without headers), LLM or not")
def list_exchanges(
    request: Request,
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    since: str | None = None, until: str | None = None,
    method: Multi = None, status_code: Annotated[list[int] | None, Query()] = None,
    path_prefix: str | None = None, server: Multi = None, source_id: Multi = None,
    is_llm: bool | None = None, damaged: bool | None = None,
    sort: Annotated[str | None, Query(description="request_start, response_end, status_code, request_body_bytes, "
                                                  "response_body_bytes; -field for descending")] = None,
    limit: int = 100, cursor: str | None = None, count: bool = False,
) -> Response:
    rng = time_range(ctx, since, until)
    req = page_request(request.query_params.multi_items(), limit, cursor, count,
                       parse_sort(sort, EXCHANGE_SORTS, "-request_start"))
    conds: list[str] = []
    params: list[Any] = []
    if rng.since is not None:
        conds.append("request_start >= ?")
        params.append(rng.since)
    if rng.until is not None:
        conds.append("request_start < ?")
        params.append(rng.until)
    if multi(method):
        conds.append(in_list("upper(method)", [m.upper() for m in multi(method)], params))
    if status_code:
        conds.append(in_list("status_code", list(status_code), params))
    if path_prefix:
        conds.append("starts_with(path, ?)")
        params.append(path_prefix)
    if multi(server):
        conds.append(in_list(f"({EXCHANGE_SERVER})", multi(server), params))
    if multi(source_id):
        conds.append(in_list("source_id", multi(source_id), params))
    _bool_cond("is_llm", is_llm, conds, params)
    _bool_cond("damaged", damaged, conds, params)
    with db(ctx) as cur:
        return as_json(sql_page(cur, columns=", ".join(quote(c) for c in _EXCHANGE_LIST_COLS),
                                table="exchanges", where=" AND ".join(conds) or "TRUE", params=params,
                                id_sql="exchange_id", req=req, record=_LIST_RECORD))


@router.get("/exchanges/{exchange_id}", summary="One exchange row including headers")
def get_exchange(exchange_id: str, ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Response:
    with db(ctx) as cur:
        row = cur.execute(f"SELECT {', '.join(quote(c) for c in EXCHANGES.column_names)} FROM exchanges "
                          "WHERE exchange_id = ?", [exchange_id]).fetchone()
        if row is None:
            raise not_found(f"no exchange {exchange_id!r}")
        parts = cur.execute("SELECT part, original_bytes, stored_bytes, dropped_bytes, truncated, is_text "
                            "FROM bodies WHERE exchange_id = ? ORDER BY part", [exchange_id]).fetchall()
    out = _FULL_RECORD(row)
    out["bodies"] = [dict(zip(("part", "original_bytes", "stored_bytes", "dropped_bytes", "truncated", "is_text"),
                              p)) for p in sorted(parts, key=lambda p: BODY_PARTS.index(p[0]))]
    return as_json(out)


@router.get("/exchanges/{exchange_id}/body/{part}", summary="A stored body, decompressed",
            response_class=Response,
            responses={200: {"description": "The body with its content type; X-Heron-Truncated: true when "
                                            "the store capped it"}})
def get_body(exchange_id: str, part: str, ctx: Annotated[ApiContext, Depends(get_ctx)],
             format: Annotated[str | None, Query(description="raw (default) or pretty")] = None) -> Response:
    fmt = choice("format", format, ("raw", "pretty"), "raw")
    if part not in BODY_PARTS:
        raise invalid(f"part: {part!r} is not one of {', '.join(BODY_PARTS)}")
    with db(ctx) as cur:
        got = body(cur, exchange_id, part)
        ctype = None
        if got is not None and part in _JSON_TYPES:
            row = cur.execute(f"SELECT {_JSON_TYPES[part]} FROM exchanges WHERE exchange_id = ?",
                              [exchange_id]).fetchone()
            ctype = row[0] if row else None
    if got is None:
        raise not_found(f"no {part} body stored for {exchange_id!r}")
    data, truncated, is_text = got
    if part == "response_object":
        ctype = "application/json"
    if not is_text:
        ctype = ctype or "application/octet-stream"
    elif not ctype:
        ctype = "text/plain; charset=utf-8"
    if fmt == "pretty" and is_text and not truncated:
        try:
            data = orjson.dumps(orjson.loads(data), option=orjson.OPT_INDENT_2)
            ctype = "application/json"
        except orjson.JSONDecodeError:
            pass  # not JSON (SSE text, form data …): shown as stored
    headers = {
        "X-Content-Type-Options": "nosniff",
        # captured bodies may be HTML or script; never let a browser run them on the console's origin
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    if truncated:
        headers["X-Heron-Truncated"] = "true"
    return Response(content=data, media_type=ctype, headers=headers)
