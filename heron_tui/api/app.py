"""The FastAPI app of ``heron serve`` and ``heron run`` (interfaces.md §7): ``create_app``.

Security (§7.3): with a token, every ``/api/*`` path except ``/api/health`` — the OpenAPI document and
unknown paths included — needs ``Authorization: Bearer <token>``, compared in constant time
(``hmac.compare_digest``). That check is an ASGI middleware rather than a route dependency so that no
path under ``/api`` can be forgotten. No CORS headers are ever sent: the console is same-origin, and
without them a page on another origin cannot read the API even when auth is off.

The console is static files from package data (``heron_tui/web``) served at ``/``; until the console
is built there, ``/`` answers a placeholder page.
"""

from __future__ import annotations

import hmac
import logging
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from heron_core import __version__
from heron_core.parallel.stats import HealthTracker
from heron_tui.api import routes_calls, routes_export, routes_metrics, routes_system, routes_turns
from heron_tui.api.common import ApiContext, ApiError, JsonResponse

log = logging.getLogger("heron.api")

OPEN_PATHS = frozenset({"/api/health"})
_PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>heron</title>
<style>body{font:16px system-ui,sans-serif;margin:4rem auto;max-width:40rem;color:#222}
code{background:#f3f3f3;padding:.1rem .3rem}</style></head>
<body><h1>heron</h1>
<p>The web console is coming. Meanwhile the REST API is served under <code>/api</code>
(see <code>/api/openapi.json</code>; <code>/api/health</code> needs no token).</p>
</body></html>
"""


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class BearerAuth:
    """Pure ASGI middleware: 401 for ``/api/*`` (except ``OPEN_PATHS``) without the right bearer token."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is not None and scope["type"] == "http":
            path = scope.get("path", "")
            protected = (path == "/api" or path.startswith("/api/")) and path not in OPEN_PATHS
            if protected and not self._authorized(scope):
                resp = _error(401, "unauthorized", "missing or wrong bearer token",
                              {"WWW-Authenticate": 'Bearer realm="heron"'})
                await resp(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, cred = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    return hmac.compare_digest(cred.strip(), self.token or b"")
        return False


def _web_dir() -> Path | None:
    """``heron_tui/web`` as a directory, when the console has been built into the package."""
    try:
        path = Path(str(resources.files("heron_tui") / "web"))
    except (ModuleNotFoundError, TypeError):
        return None
    return path if (path / "index.html").is_file() else None


def create_app(store: Any, *, engine: Any = None, token: str | None = None, read_only: bool = True) -> FastAPI:
    """The API (and console) over ``store``; ``engine`` is the running engine of ``heron run`` (None for
    ``heron serve``), ``token`` the bearer token (None: no auth)."""
    app = FastAPI(title="heron", version=__version__, openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None, default_response_class=JsonResponse,
                  description="REST API of heron: passive observability for LLM agents (interfaces.md §7).")
    app.state.ctx = ApiContext(store=store, engine=engine, token=token or None, read_only=read_only)
    app.state.health_tracker = HealthTracker()

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        if errs:
            e = errs[0]
            where = ".".join(str(x) for x in e.get("loc", ())[1:]) or "request"
            msg = f"{where}: {e.get('msg', 'invalid value')}"
        else:
            msg = "invalid request"
        return _error(400, "invalid_param", msg)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error in the API")
        return _error(500, "internal", f"{type(exc).__name__}: {exc}")

    for module in (routes_system, routes_calls, routes_turns, routes_metrics, routes_export):
        app.include_router(module.router)

    web = _web_dir()
    if web is not None:
        app.mount("/", StaticFiles(directory=web, html=True), name="console")
    else:
        @app.get("/", include_in_schema=False)
        def placeholder() -> HTMLResponse:
            return HTMLResponse(_PLACEHOLDER)

    app.add_middleware(BearerAuth, token=token or None)
    _document_auth(app, bool(token))
    return app


def _document_auth(app: FastAPI, enabled: bool) -> None:
    """Declare the bearer scheme in the OpenAPI document (the middleware enforces it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        doc = build()  # cached by FastAPI after the first call; the additions below are idempotent
        if enabled:
            doc.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "description": "--token / HERON_TOKEN"}}
            doc["security"] = [{"bearer": []}]
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
