"""What every router of the REST API shares (interfaces.md §7.1): the per-app context, errors, the
per-request DuckDB cursor, parameter parsing and the live view of a running engine.

The context lives in ``app.state.ctx`` (one per app, nothing module-global), so two apps — a test's and a
server's — never share state. Endpoints are plain ``def`` functions: FastAPI runs them in its thread pool,
so a long DuckDB query never blocks the event loop, and each takes its own ``store.cursor()`` (DuckDB's
way of sharing one database between threads of a process).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson
from fastapi import Request
from fastapi.responses import JSONResponse

from heron_core.config import Config
from heron_core.export.calls import CALL_EXPORT_FIELDS, parse_time
from heron_core.query.cache import QueryCache

LIVE_DEFAULT_RANGE_S = 3600.0
"""§7.1: a live run's lists and metrics default to the last hour (of event time: the watermark)."""
_LIST_KEYS = frozenset({"tool_calls", "damage"})


class JsonResponse(JSONResponse):
    """JSON rendered by orjson. Endpoints return this instead of dicts: FastAPI would otherwise run every
    1,000-record page through ``jsonable_encoder``, which costs more than the query."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def as_json(data: Any) -> JsonResponse:
    return JsonResponse(data)


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_param", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


@contextmanager
def bad_params() -> Iterator[None]:
    """Turn the query layer's ``ValueError`` (its way of rejecting a parameter value) into a 400."""
    try:
        yield
    except ApiError:
        raise
    except ValueError as exc:
        raise invalid(str(exc)) from None


@dataclass
class ApiContext:
    """Everything the endpoints read: the store, the running engine (``heron run``) or None (``heron
    serve``), the token, and when the app started."""

    store: Any
    engine: Any = None
    token: str | None = None
    read_only: bool = True
    started_at: float = field(default_factory=time.time)
    started_mono: float = field(default_factory=time.monotonic)
    cache: QueryCache = field(init=False)

    def __post_init__(self) -> None:
        # metric results, reused while the store file is unchanged (query/cache.py); none for a store in
        # memory or none at all
        self.cache = QueryCache(getattr(self.store, "path", None))

    @property
    def mode(self) -> str:
        return "serve" if self.engine is None else "run"

    @property
    def cfg(self) -> Config:
        return getattr(self.engine, "cfg", None) or Config()

    @property
    def pipeline(self) -> Any:
        return getattr(self.engine, "pipeline", None)

    # --- live view of a running engine --------------------------------------------------------------

    @staticmethod
    def racing(fn: Any, default: Any) -> Any:
        """Call ``fn()`` that reads state the engine thread mutates meanwhile (counters, watermarks, the
        assembler's open turns): a read that races a change ("dictionary changed size during
        iteration") is retried, then given up for ``default`` — a live view may lag a tick, it must not
        fail."""
        for _ in range(3):
            try:
                return fn()
            except RuntimeError:
                time.sleep(0.001)
            except Exception:  # noqa: BLE001 - a pipeline tearing down must not fail a health check
                return default
        return default

    def watermarks(self) -> dict[str, float | None]:
        """Event-time watermark per source (epoch s), empty without a running pipeline."""
        p = self.pipeline
        if p is None:
            return {}
        marks = self.racing(p.watermarks, {})
        return {sid: (None if wm is None else wm / 1e6) for sid, wm in marks.items()}

    def drained(self) -> set[str]:
        p = self.pipeline
        return set(self.racing(p.drained_sources, set())) if p is not None else set()

    def pipeline_snapshot(self, tracker: Any) -> dict[str, Any] | None:
        """``engine.pipeline_snapshot`` (the ``/api/pipeline`` object), None when there is none."""
        snap = getattr(self.engine, "pipeline_snapshot", None)
        return None if snap is None else self.racing(lambda: snap(tracker), None)

    def watermark(self) -> float | None:
        """The latest event time of the live run (None for a finished database)."""
        vals = [v for v in self.watermarks().values() if v is not None]
        return max(vals) if vals else None

    def is_live(self) -> bool:
        """A run whose sources are not all drained: lists default to the last hour, sessions can be
        ``active``."""
        marks = self.watermarks()
        return bool(marks) and not set(marks) <= self.drained()

    def session_watermark(self) -> float | None:
        """Watermark for a session's ``state``: only a live run has active sessions (once every source
        drained, nothing is active any more)."""
        return self.watermark() if self.is_live() else None

    def _assembler_call(self, name: str) -> list[Any]:
        """``open_turns()``/``in_flight()`` of the engine's assembler (read while the engine thread
        changes it: see ``racing``)."""
        asm = getattr(self.engine, "assembler", None)
        fn = getattr(asm, name, None)
        return [] if fn is None else self.racing(lambda: list(fn()), [])

    def open_turns(self) -> list[dict[str, Any]]:
        return self._assembler_call("open_turns")

    def in_flight(self) -> list[Any]:
        return self._assembler_call("in_flight")

    def default_since(self, since: float | None) -> float | None:
        """An explicit ``since`` wins; a live run defaults to the watermark minus an hour."""
        if since is not None or not self.is_live():
            return since
        wm = self.watermark()
        return None if wm is None else wm - LIVE_DEFAULT_RANGE_S


def get_ctx(request: Request) -> ApiContext:
    return request.app.state.ctx


@contextmanager
def db(ctx: ApiContext) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor of its own for this request (closed afterwards); 503 when there is no store."""
    if ctx.store is None:
        raise ApiError(503, "not_ready", "the store is not open yet")
    try:
        cur = ctx.store.cursor()
    except duckdb.Error as exc:
        raise ApiError(503, "not_ready", f"the store is not available: {exc}") from None
    try:
        yield cur
    finally:
        cur.close()


# --- parameters ---------------------------------------------------------------------------------------


def multi(values: Sequence[str] | str | None) -> list[str]:
    """A multi-value filter: the parameter repeated, or comma-separated, or both."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [p.strip() for item in items for p in str(item).split(",") if p.strip()]


def time_param(name: str, value: str | None) -> float | None:
    """``since``/``until``: epoch seconds or RFC 3339."""
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise invalid(f"{name}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Range:
    since: float | None
    until: float | None


def time_range(ctx: ApiContext, since: str | None, until: str | None) -> Range:
    """The request's range with the live default applied; ``until`` must come after ``since``."""
    s, u = time_param("since", since), time_param("until", until)
    s = ctx.default_since(s)
    if s is not None and u is not None and u <= s:
        raise invalid("until must be after since")
    return Range(s, u)


def choice(name: str, value: str | None, options: Sequence[str], default: str | None = None) -> str | None:
    if value is None or value == "":
        return default
    if value not in options:
        raise invalid(f"{name}: {value!r} is not one of {', '.join(options)}")
    return value


def in_list(column: str, values: list[Any], params: list[Any]) -> str:
    params.extend(values)
    return f"{column} IN ({', '.join('?' * len(values))})"


def finite(v: Any) -> Any:
    """JSON has no NaN/Infinity: such a float (never expected, but DuckDB can produce one) → null."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def in_flight_record(c: Any) -> dict[str, Any]:
    """A call still in flight (not stored yet) as a §6.1 record: what the request told so far, every
    other field null (lists empty)."""
    rec: dict[str, Any] = {k: ([] if k in _LIST_KEYS else None) for k in CALL_EXPORT_FIELDS}
    rec.update(call_id=c.call_id, source_id=c.source_id, session_id=getattr(c, "session_id", None),
               wire_api=c.wire_api, request_start=c.request_start_us / 1e6)
    return rec
