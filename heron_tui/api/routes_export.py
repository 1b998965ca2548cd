"""``/api/export/{calls,turns,sessions,sft,otlp}`` (interfaces.md §7.2): the §6 exports, streamed.

The export functions of ``heron_core.export`` write to a binary file object — the same code as
``heron export`` — so the endpoint runs one in a worker thread writing into a bounded pipe and streams
the pipe's chunks as ``application/x-ndjson``. The pipe gives back-pressure (a slow client slows the
export instead of filling memory) and cancellation (a client that goes away makes the next ``write``
fail, which ends the export thread). Filters are validated before the first byte, so a bad value is a
400, not a truncated stream. ``report=true`` runs the export into a counting sink and answers
``{exported, skipped}``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from heron_core.export.calls import CallFilters, export_calls
from heron_core.export.otlp import OtlpFilters, export_otlp
from heron_core.export.sessions import SessionFilters, export_sessions
from heron_core.export.sft import SCOPES, export_sft
from heron_core.export.turns import TurnFilters, export_turns
from heron_tui.api.common import (
    ApiContext,
    ApiError,
    as_json,
    bad_params,
    db,
    get_ctx,
    invalid,
    multi,
    time_param,
)

router = APIRouter(prefix="/api/export", tags=["export"])
log = logging.getLogger("heron.api")

KINDS = ("calls", "turns", "sessions", "sft", "otlp")
CHUNK = 64 * 1024
PIPE_DEPTH = 32
_END = object()


class _Pipe:
    """A write-only file object feeding a bounded queue of chunks (the export thread's ``out``)."""

    def __init__(self) -> None:
        self.q: queue.Queue[Any] = queue.Queue(PIPE_DEPTH)
        self.cancelled = threading.Event()
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        if len(self._buf) >= CHUNK:
            self._put(bytes(self._buf))
            self._buf.clear()
        return len(data)

    def _put(self, item: Any) -> None:
        while True:
            if self.cancelled.is_set():
                raise BrokenPipeError("client went away")
            try:
                self.q.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        if self._buf:
            self._put(bytes(self._buf))
            self._buf.clear()
        self._put(_END)


class _Counter:
    """A sink that only counts, for ``report=true``."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, data: bytes) -> int:
        self.lines += data.count(b"\n")
        return len(data)


def _stream(ctx: ApiContext, run: Callable[[Any, BinaryIO], Any]) -> Iterator[bytes]:
    """Run ``run(cursor, out)`` in a thread and yield what it writes (Starlette iterates this sync
    generator in its thread pool, so the blocking ``get`` never holds up the event loop)."""
    pipe = _Pipe()

    def work() -> None:
        try:
            with db(ctx) as cur:
                run(cur, pipe)  # type: ignore[arg-type]
            pipe.close()
        except BrokenPipeError:
            pass
        except Exception:
            log.exception("export failed mid-stream")
            try:
                pipe._put(_END)
            except BrokenPipeError:
                pass

    thread = threading.Thread(target=work, name="heron-api-export", daemon=True)
    thread.start()
    try:
        while True:
            item = pipe.q.get()
            if item is _END:
                return
            yield item
    finally:
        pipe.cancelled.set()


def _exported(result: Any) -> tuple[int, dict[str, int]]:
    if isinstance(result, int):
        return result, {}
    return int(result.exported), dict(result.skipped)


@router.get("/{kind}", summary="An export (§6) as streamed JSON lines; report=true → {exported, skipped}",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}}}})
def export(
    kind: str,
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    since: str | None = None, until: str | None = None,
    source_id: Annotated[list[str] | None, Query()] = None,
    agent_kind: Annotated[list[str] | None, Query()] = None,
    session: Annotated[list[str] | None, Query()] = None,
    turn: Annotated[list[str] | None, Query()] = None,
    model: Annotated[list[str] | None, Query()] = None,
    wire_api: Annotated[list[str] | None, Query()] = None,
    status: Annotated[list[str] | None, Query()] = None,
    limit: int | None = None,
    scope: Annotated[str, Query(description="sft: turn or session")] = "turn",
    include_incomplete: bool = False, include_subagents: bool = False,
    content: Annotated[bool, Query(description="otlp: add message content (redacted)")] = False,
    report: bool = False,
) -> Any:
    if kind not in KINDS:
        raise ApiError(404, "not_found", f"no export {kind!r}: use {', '.join(KINDS)}")
    if limit is not None and limit < 0:
        raise invalid("limit: must be 0 or more")
    if scope not in SCOPES:
        raise invalid(f"scope: {scope!r} is not one of {', '.join(SCOPES)}")
    common: dict[str, Any] = {
        "since": time_param("since", since), "until": time_param("until", until), "source_id": multi(source_id),
        "agent_kind": multi(agent_kind), "session": multi(session), "turn": multi(turn), "model": multi(model),
        "wire_api": multi(wire_api), "status": multi(status), "limit": limit}
    with bad_params():
        run = _runner(ctx, kind, common, scope, include_incomplete, include_subagents, content)
    if report:
        sink = _Counter()
        with db(ctx) as cur, bad_params():
            exported, skipped = _exported(run(cur, sink))  # type: ignore[arg-type]
        return as_json({"exported": exported, "skipped": skipped})
    return StreamingResponse(_stream(ctx, run), media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="heron-{kind}.jsonl"'})


def _runner(ctx: ApiContext, kind: str, common: dict[str, Any], scope: str, include_incomplete: bool,
            include_subagents: bool, content: bool) -> Callable[[Any, BinaryIO], Any]:
    """Build and validate the filters (raising ``ValueError``), then return the export to run."""
    if kind == "calls":
        cf = CallFilters(**common)
        cf.query()
        return lambda cur, out: export_calls(cur, out, cf)
    if kind == "turns":
        tf = TurnFilters(**common)
        tf.query()
        return lambda cur, out: export_turns(cur, out, tf)
    if kind == "sessions":
        sf = SessionFilters(**common, watermark=ctx.session_watermark(), idle_timeout_s=ctx.cfg.turn_idle_timeout_s)
        sf.query()
        return lambda cur, out: export_sessions(cur, out, sf)
    if kind == "otlp":
        of = OtlpFilters(**common)
        of.validate()
        return lambda cur, out: export_otlp(cur, out, of, content=content)
    sft = CallFilters(**common)
    from heron_core.export.sft import turn_where

    turn_where(sft)  # validates the statuses sft accepts
    return lambda cur, out: export_sft(cur, out, filters=sft, scope=scope, include_incomplete=include_incomplete,
                                       include_subagents=include_subagents)
