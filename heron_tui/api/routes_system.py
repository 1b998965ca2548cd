"""``/api/health``, ``/api/pipeline`` and ``/api/events`` (interfaces.md §7.2).

**Events.** ``/api/events`` is a Server-Sent-Events stream for live runs: ``call``, ``turn`` and
``insight`` events carry new or updated records, ``pipeline`` events the ``/api/pipeline`` object every
2 s. The engine writes through its own writer thread; rather than hooking into it, each stream polls the
store once a second for rows added since its last look (DuckDB ``rowid`` grows with every append, and
replaced insights move their ``last_seen``) and diffs the assembler's in-progress turns. A stream thus
owns all its state — nothing is shared between clients or kept when nobody listens — and the writer
stays untouched. The console reads it with a streaming ``fetch`` so the bearer token is sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from heron_core import __version__
from heron_core.export.calls import SELECT_COLUMNS, call_record
from heron_core.export.turns import turn_record
from heron_core.parallel.stats import HealthTracker, snapshot
from heron_core.store.schema import INSIGHTS, TURNS, quote
from heron_tui.api.common import ApiContext, ApiError, as_json, db, get_ctx, not_found
from heron_tui.api.routes_metrics import _insight_record
from heron_tui.api.routes_turns import turn_from_dict

router = APIRouter(prefix="/api", tags=["system"])

POLL_S = 1.0
PIPELINE_S = 2.0
KEEPALIVE_S = 15.0
MAX_EVENTS_PER_POLL = 500
"""Per table and poll; a replay at full speed adds thousands of calls a second — a console refreshes its
lists then anyway, so the stream sends the newest rows and says how many it left out."""
_KINDS = {"files": "file", "live": "interface", "zmq": "zmq", "ebpf": "ebpf"}


def _price_version() -> str | None:
    try:
        from heron_core.pricing import price_version

        return price_version()
    except Exception:  # noqa: BLE001 - the health check must answer even without the price package
        return None


def _sources(ctx: ApiContext) -> list[dict[str, Any]]:
    """Sources of a run (from the pipeline), or of a finished database (from its calls)."""
    if ctx.engine is not None:
        p = ctx.pipeline
        kind = _KINDS.get(getattr(getattr(p, "spec", None), "kind", ""), "file")
        failed = {o.source_id for o in getattr(getattr(p, "result", None), "outcomes", []) or []
                  if getattr(o, "status", None) == "failed"}
        drained = ctx.drained()
        now = time.time()
        out = []
        for sid, wm in sorted(ctx.watermarks().items()):
            state = "failed" if sid in failed else "drained" if sid in drained else "running"
            lag = None if wm is None or state != "running" or kind == "file" else round(max(0.0, now - wm), 3)
            out.append({"source_id": sid, "kind": kind, "state": state, "watermark": wm, "lag_s": lag})
        return out
    if ctx.store is None:
        return []
    with db(ctx) as cur:
        rows = cur.execute("SELECT source_id, max(coalesce(response_end, request_start)) FROM calls "
                           "GROUP BY 1 ORDER BY 1").fetchall()
    return [{"source_id": sid, "kind": "file", "state": "drained", "watermark": wm, "lag_s": None}
            for sid, wm in rows]


@router.get("/health", summary="Liveness, mode and sources (never needs the token)")
def health(ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Response:
    store = ctx.store
    return as_json({
        "status": "ok",
        "version": __version__,
        "mode": ctx.mode,
        "read_only": ctx.read_only,
        "db": getattr(store, "path", None),
        "uptime_s": round(time.monotonic() - ctx.started_mono, 3),
        "schema_version": getattr(store, "schema_version", None),
        "price_version": _price_version(),
        "sources": _sources(ctx),
    })


def _stored_pipeline(ctx: ApiContext) -> Response:
    """A served database has no pipeline: show the final counters of its last run."""
    with db(ctx) as cur:
        row = cur.execute("SELECT counters FROM runs ORDER BY ended_at DESC NULLS LAST LIMIT 1").fetchone()
    counters: Counter = Counter()
    if row and row[0]:
        data = row[0]
        while isinstance(data, str):  # `heron ingest` stores the counters JSON-encoded twice
            data = json.loads(data)
        counters.update({k: v for k, v in data.items() if isinstance(v, (int, float))})
    return snapshot(counters, [], [], HealthTracker(), lossy=False)


@router.get("/pipeline", summary="Pipeline health, counters per stage, queues and workers")
def pipeline(request: Request, ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Response:
    if ctx.engine is None:
        return as_json(_stored_pipeline(ctx))
    snap = ctx.pipeline_snapshot(request.app.state.health_tracker)
    if snap is None:
        raise ApiError(503, "not_ready", "the engine has no pipeline yet")
    return as_json(snap)


# --- events ---------------------------------------------------------------------------------------------


@dataclass
class _Cursor:
    """What one event stream has already sent."""

    calls: int = -1
    turns: int = -1
    insights: int = -1
    insight_seen: float = float("-inf")
    open_turns: dict[str, tuple] = field(default_factory=dict)


def _max_rowid(cur: Any, table: str) -> int:
    return int(cur.execute(f"SELECT coalesce(max(rowid), -1) FROM {table}").fetchone()[0])


def _start(ctx: ApiContext) -> _Cursor:
    with db(ctx) as cur:
        seen = cur.execute("SELECT max(last_seen) FROM insights").fetchone()[0]
        return _Cursor(_max_rowid(cur, "calls"), _max_rowid(cur, "turns"), _max_rowid(cur, "insights"),
                       seen if seen is not None else float("-inf"))


def _new_rows(cur: Any, table: str, cols: str, after: int, extra: str = "", params: tuple = ()) -> tuple[list, int]:
    """Rows appended since ``after`` (plus ``extra``), newest ``MAX_EVENTS_PER_POLL``, and how many more."""
    rows = cur.execute(f"SELECT rowid, {cols} FROM {table} WHERE rowid > ?{extra} ORDER BY rowid DESC LIMIT ?",
                       [after, *params, MAX_EVENTS_PER_POLL + 1]).fetchall()
    more = len(rows) > MAX_EVENTS_PER_POLL
    if more:
        rest = cur.execute(f"SELECT count(*) FROM {table} WHERE rowid > ?{extra}", [after, *params]).fetchone()[0]
        return rows[:MAX_EVENTS_PER_POLL][::-1], int(rest) - MAX_EVENTS_PER_POLL
    return rows[::-1], 0


def _poll(ctx: ApiContext, c: _Cursor) -> list[tuple[str, Any]]:
    """New and changed records since the last poll, as ``(event, data)``."""
    out: list[tuple[str, Any]] = []
    with db(ctx) as cur:
        rows, left = _new_rows(cur, "calls", ", ".join(quote(x) for x in SELECT_COLUMNS), c.calls)
        if rows:
            c.calls = max(c.calls, max(r[0] for r in rows), _max_rowid(cur, "calls") if left else -1)
            out += [("call", call_record(r[1:])) for r in rows]
        if left:
            out.append(("call", {"omitted": left}))
        rows, left = _new_rows(cur, "turns", ", ".join(quote(x) for x in TURNS.column_names), c.turns)
        if rows:
            c.turns = max(c.turns, max(r[0] for r in rows), _max_rowid(cur, "turns") if left else -1)
            for r in rows:
                rec = turn_record(r[1:])
                c.open_turns.pop(rec["turn_id"], None)
                out.append(("turn", rec))
        if left:
            out.append(("turn", {"omitted": left}))
        seen = c.insight_seen if c.insight_seen != float("-inf") else -1e18
        rows, _ = _new_rows(cur, "insights", ", ".join(quote(x) for x in INSIGHTS.column_names), c.insights,
                            " OR last_seen > ?", (seen,))
        for r in rows:
            rec = _insight_record(r[1:])
            c.insights = max(c.insights, r[0])
            if rec["last_seen"] is not None:
                c.insight_seen = max(c.insight_seen, rec["last_seen"])
            out.append(("insight", rec))
    current = {}
    for t in ctx.open_turns():
        rec = turn_from_dict(t)
        sig = (rec["call_count"], rec["end"], rec["status"], rec["tool_call_count"], rec["insight_count"])
        current[rec["turn_id"]] = sig
        if c.open_turns.get(rec["turn_id"]) != sig:
            out.append(("turn", rec))
    c.open_turns = current
    return out


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS) + b"\n\n"


@router.get("/events", summary="Live runs: SSE stream of call, turn, insight and pipeline events",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def events(request: Request) -> StreamingResponse:
    ctx: ApiContext = request.app.state.ctx
    if ctx.engine is None:
        raise not_found("no live events: this server browses a finished database (mode serve)")
    cursor = await run_in_threadpool(_start, ctx)
    tracker = HealthTracker()

    async def stream() -> AsyncIterator[bytes]:
        next_pipeline = 0.0
        last_sent = time.monotonic()
        yield b"retry: 2000\n\n"
        while True:
            now = time.monotonic()
            chunks: list[bytes] = []
            try:
                for ev, data in await run_in_threadpool(_poll, ctx, cursor):
                    chunks.append(_sse(ev, data))
                if now >= next_pipeline:
                    next_pipeline = now + PIPELINE_S
                    snap = await run_in_threadpool(ctx.pipeline_snapshot, tracker)
                    if snap is not None:
                        chunks.append(_sse("pipeline", snap))
            except ApiError:  # the store went away (shutdown): end the stream
                return
            if chunks:
                last_sent = now
                yield b"".join(chunks)
            elif now - last_sent >= KEEPALIVE_S:
                last_sent = now
                yield b": keepalive\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL_S)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
