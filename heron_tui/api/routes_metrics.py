"""``/api/metrics/*``, ``/api/services[/topology]``, ``/api/insights`` and ``/api/filters``
(interfaces.md §7.2; metrics.md §3–§6).

Every number comes from ``heron_core.query`` (``metrics``, ``agent_metrics``, ``services``), the same
functions the TUI uses; this module only maps query parameters onto their filters and adds the live
run's watermark and in-flight calls where the metric needs them (active calls, ``partial_from``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from heron_core.query import agent_metrics, metrics
from heron_core.query import services as services_q
from heron_core.store.schema import INSIGHTS, quote
from heron_tui.api.common import (
    ApiContext,
    ApiError,
    as_json,
    bad_params,
    choice,
    db,
    finite,
    get_ctx,
    in_list,
    invalid,
    multi,
    time_range,
)
from heron_tui.api.paging import memory_page, merge_page, page_request, parse_sort, sql_page
from heron_tui.api.routes_calls import _display_filter

router = APIRouter(prefix="/api", tags=["metrics"])

Multi = Annotated[list[str] | None, Query()]
SERVICE_SORTS = {k: k for k in ("calls", "server", "app", "first_seen", "last_seen", "input_total_tokens",
                                "output_tokens", "cost_usd", "errors")}
INSIGHT_SORTS = {"last_seen": "last_seen", "first_seen": "first_seen", "count": '"count"'}
_INSIGHT_COLS = ", ".join(quote(c) for c in INSIGHTS.column_names)


class Filters:
    """The range and call filters of metrics.md §3.2 as query parameters; ``hops`` keeps whether it
    was given, because services count every hop leg by default and the call metrics do not."""

    def __init__(
        self,
        request: Request,
        since: str | None = None, until: str | None = None,
        source_id: Multi = None, wire_api: Multi = None, model: Multi = None, server: Multi = None,
        agent_kind: Annotated[list[str] | None, Query(description="`none` matches calls without one")] = None,
        provider: Multi = None, model_requested: Multi = None, is_stream: bool | None = None,
        session_id: Multi = None, process_comm: Multi = None,
        hops: Annotated[str | None, Query(description="exclude or include the proxy_out/mirror_secondary "
                                                      "legs")] = None,
        auxiliary: Annotated[str | None, Query(description="include (default) or exclude")] = None,
    ) -> None:
        ctx: ApiContext = request.app.state.ctx
        rng = time_range(ctx, since, until)
        end = rng.until
        if end is None and ctx.is_live():  # "the last hour": buckets run up to the watermark (partial_from)
            wm = ctx.watermark()
            end = None if wm is None else math.nextafter(wm, math.inf)
        self.hops_given = hops is not None
        self.metric = metrics.MetricFilters(
            since=rng.since, until=end, source_id=multi(source_id), wire_api=multi(wire_api),
            model=multi(model), server=multi(server), agent_kind=multi(agent_kind), provider=multi(provider),
            model_requested=multi(model_requested), is_stream=is_stream, session_id=multi(session_id),
            process_comm=multi(process_comm), hops=choice("hops", hops, ("exclude", "include"), "exclude"),
            auxiliary=choice("auxiliary", auxiliary, ("include", "exclude"), "include"))

    def with_hops(self, default: str) -> metrics.MetricFilters:
        if not self.hops_given:
            self.metric.hops = default
        return self.metric


def _live(ctx: ApiContext) -> Response:
    """Watermark and in-flight request starts of a live run (active-call metrics, ``partial_from``)."""
    if ctx.engine is None:
        return {}
    return {"watermark": ctx.watermark(), "in_flight": [c.request_start_us / 1e6 for c in ctx.in_flight()]}


def _clean(v: Any) -> Any:
    """Replace NaN/Infinity (JSON has neither) anywhere in a metrics result."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return finite(v)


def _cached(ctx: ApiContext, key: tuple, compute: Any) -> Any:
    """``_clean(compute(cursor))``, reused while the store is unchanged (``ctx.cache``); the key must name
    everything the result depends on (filters as ``repr``, options, the live watermark and in-flight
    calls)."""
    def run() -> Any:
        with db(ctx) as cur:
            return _clean(compute(cur))
    return ctx.cache.get(key, run)


@router.get("/metrics/summary", summary="metrics.md §3.3 metrics over the range, as one object")
def metrics_summary(ctx: Annotated[ApiContext, Depends(get_ctx)], f: Annotated[Filters, Depends()],
                    include_errors: bool = False) -> Response:
    live = _live(ctx)
    key = ("summary", repr(f.metric), include_errors, repr(live))
    with bad_params():
        return as_json(_cached(ctx, key, lambda cur: metrics.summary(cur, f.metric, include_errors=include_errors,
                                                                     **live)))


@router.get("/metrics/timeseries", summary="Chosen metrics per epoch-aligned bucket, optionally per group")
def metrics_timeseries(
    ctx: Annotated[ApiContext, Depends(get_ctx)], f: Annotated[Filters, Depends()],
    window: Annotated[str | None, Query(description="10s, 1m, 5m or 1h (else automatic)")] = None,
    metrics_: Annotated[list[str] | None, Query(alias="metrics", description="e.g. calls, ttft_ms.p95")] = None,
    group_by: Annotated[str | None, Query(description="model, wire_api, server or agent_kind")] = None,
    include_errors: bool = False,
) -> Response:
    names = multi(metrics_) or None
    live = _live(ctx)
    key = ("timeseries", repr(f.metric), window, repr(names), group_by, include_errors,
           ctx.cfg.metrics_max_buckets, repr(live))
    try:
        data = _cached(ctx, key, lambda cur: metrics.timeseries(
            cur, f.metric, window=window or None, metrics=names, group_by=group_by or None,
            include_errors=include_errors, max_buckets=ctx.cfg.metrics_max_buckets, **live))
    except metrics.TooManyBuckets as exc:
        raise ApiError(422, "too_many_buckets", str(exc)) from None
    except ValueError as exc:
        raise invalid(str(exc)) from None
    return as_json(data)


@router.get("/metrics/breakdown", summary="The summary metrics per value of one dimension")
def metrics_breakdown(ctx: Annotated[ApiContext, Depends(get_ctx)], f: Annotated[Filters, Depends()],
                      by: Annotated[str, Query(description="model, wire_api, server or agent_kind")] = "model",
                      include_errors: bool = False) -> Response:
    key = ("breakdown", by, repr(f.metric), include_errors)
    with bad_params():
        return as_json(_cached(ctx, key, lambda cur: metrics.breakdown(cur, by, f.metric,
                                                                       include_errors=include_errors)))


@router.get("/metrics/by-model", summary="= /api/metrics/breakdown?by=model")
def metrics_by_model(ctx: Annotated[ApiContext, Depends(get_ctx)], f: Annotated[Filters, Depends()],
                     include_errors: bool = False) -> Response:
    return metrics_breakdown(ctx, f, "model", include_errors)


@router.get("/metrics/agents", summary="Agent-layer metrics (metrics.md §4) per agent kind")
def metrics_agents(ctx: Annotated[ApiContext, Depends(get_ctx)], f: Annotated[Filters, Depends()],
                   include_partial: bool = False, include_incomplete: bool = False) -> Response:
    key = ("agents", repr(f.metric), include_partial, include_incomplete)
    with bad_params():
        return as_json(_cached(ctx, key, lambda cur: agent_metrics.agents(
            cur, f.metric, include_partial=include_partial, include_incomplete=include_incomplete)))


@router.get("/metrics/tools", summary="Per tool name: count, errors, missing, success rate, wait")
def metrics_tools(ctx: Annotated[ApiContext, Depends(get_ctx)], f: Annotated[Filters, Depends()]) -> Response:
    with bad_params():
        return as_json(_cached(ctx, ("tools", repr(f.metric)), lambda cur: agent_metrics.tools(cur, f.metric)))


# --- services -------------------------------------------------------------------------------------------


@router.get("/services", summary="Service rows (metrics.md §6); every hop leg counts unless hops=exclude")
def list_services(
    request: Request, ctx: Annotated[ApiContext, Depends(get_ctx)], f: Annotated[Filters, Depends()],
    sort: Annotated[str | None, Query(description="calls (default -calls), server, app, errors, first_seen, "
                                                  "last_seen, input_total_tokens, output_tokens, cost_usd")] = None,
    limit: int = 100, cursor: str | None = None, count: bool = False,
) -> Response:
    req = page_request(request.query_params.multi_items(), limit, cursor, count,
                       parse_sort(sort, SERVICE_SORTS, "-calls"))
    with db(ctx) as cur, bad_params():
        rows = services_q.services(cur, f.with_hops("include"))
    for r in rows:  # a flat number to sort by; the breakdown stays in `errors`
        r["_errors"] = r["errors"]["total"]
    if req.sort.field == "errors":
        req = type(req)(req.limit, req.cursor, req.count, type(req.sort)("_errors", "_errors", req.sort.desc),
                        req.fp)
    page = memory_page(rows, req, "server")
    for r in rows:
        r.pop("_errors", None)
    return as_json(_clean(page))


@router.get("/services/topology", summary="Clients, services and the edges between them")
def services_topology(ctx: Annotated[ApiContext, Depends(get_ctx)], f: Annotated[Filters, Depends()]) -> Response:
    with db(ctx) as cur, bad_params():
        return as_json(_clean(services_q.topology(cur, f.with_hops("include"))))


# --- insights -------------------------------------------------------------------------------------------


def _insight_record(row: tuple) -> Response:
    out = dict(zip(INSIGHTS.column_names, row))
    out["call_ids"] = list(out["call_ids"] or [])
    if isinstance(out["details"], str):
        out["details"] = orjson.loads(out["details"])
    return out


@router.get("/insights", summary="Stored insights plus rate-limit pressure computed for the range")
def list_insights(
    request: Request, ctx: Annotated[ApiContext, Depends(get_ctx)],
    since: str | None = None, until: str | None = None,
    kind: Multi = None, severity: Multi = None, session_id: Multi = None, turn_id: Multi = None,
    source_id: Multi = None,
    filter: Annotated[str | None, Query(description="display filter, e.g. `severity == critical`")] = None,
    sort: Annotated[str | None, Query(description="last_seen (default -last_seen), first_seen, count")] = None,
    limit: int = 100, cursor: str | None = None, count: bool = False,
) -> Response:
    rng = time_range(ctx, since, until)
    req = page_request(request.query_params.multi_items(), limit, cursor, count,
                       parse_sort(sort, INSIGHT_SORTS, "-last_seen"))
    conds: list[str] = []
    params: list[Any] = []
    if rng.since is not None:
        conds.append("coalesce(last_seen, first_seen) >= ?")
        params.append(rng.since)
    if rng.until is not None:
        conds.append("first_seen < ?")
        params.append(rng.until)
    for col, vals in (("kind", multi(kind)), ("severity", multi(severity)), ("session_id", multi(session_id)),
                      ("turn_id", multi(turn_id)), ("source_id", multi(source_id))):
        if vals:
            conds.append(in_list(col, vals, params))
    fsql, fparams = _display_filter("insights", filter)
    conds.append(fsql)
    with db(ctx) as cur:
        stored = sql_page(cur, columns=_INSIGHT_COLS, table="insights", where=" AND ".join(conds),
                          params=params + fparams, id_sql="insight_id", req=req, record=_insight_record)
        computed: list[dict[str, Any]] = []
        wants = not multi(kind) or "rate_limit_pressure" in multi(kind)
        if wants and not multi(session_id) and not multi(turn_id) and not filter:
            with bad_params():
                computed = agent_metrics.rate_limit_pressure(
                    cur, metrics.MetricFilters(since=rng.since, until=rng.until, source_id=multi(source_id)),
                    share=ctx.cfg.insight_rate_limit_share)
            sev = multi(severity)
            computed = [c for c in computed if not sev or c["severity"] in sev]
    return as_json(_clean(merge_page(stored, computed, req, "insight_id")))


# --- filter values --------------------------------------------------------------------------------------

_FILTER_COLUMNS = ("source_id", "wire_api", "model", "server", "agent_kind", "provider")


@router.get("/filters", summary="Distinct values of the filterable call dimensions in the range")
def filter_values(ctx: Annotated[ApiContext, Depends(get_ctx)], since: str | None = None,
                  until: str | None = None) -> Response:
    rng = time_range(ctx, since, until)
    conds, params = ["TRUE"], []
    if rng.since is not None:
        conds.append("request_start >= ?")
        params.append(rng.since)
    if rng.until is not None:
        conds.append("request_start < ?")
        params.append(rng.until)
    lists = ", ".join(f"list(DISTINCT {c} ORDER BY {c}) FILTER (WHERE {c} IS NOT NULL)" for c in _FILTER_COLUMNS)
    with db(ctx) as cur:
        row = cur.execute(f"SELECT {lists} FROM calls WHERE {' AND '.join(conds)}", params).fetchone()
    return as_json({c: list(v or []) for c, v in zip(_FILTER_COLUMNS, row)})
