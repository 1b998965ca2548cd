"""``heron serve`` and the API attachment of ``heron run`` (interfaces.md §1, §7), registered on the
``heron`` app by cli.py.

Errors follow cli.py: one line ``heron: error: <what>: <why>``; exit 2 for usage errors (a non-loopback
``--host`` without ``--token``/``--no-auth`` among them), 1 for input errors (no database, a database
locked by another process, a port that cannot be bound, a collector that refuses the traces).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from heron_tui.cli import _setup_logging, app, fail, read_store

HOST_HELP = "API bind address (a non-loopback one needs --token or --no-auth)"


def api_options(host: str, token: str | None, no_auth: bool) -> str | None:
    """Validate the API options shared by ``serve`` and ``run`` (exit 2 on a refused combination) and
    return the token in effect."""
    from heron_tui.api.server import check_bind, resolve_token

    try:
        tok = resolve_token(token, no_auth)
    except ValueError as exc:
        fail("--no-auth", str(exc), 2)
        raise  # unreachable
    why = check_bind(host, tok, no_auth)
    if why is not None:
        fail("--host", why, 2)
    return tok


@app.command("serve")
def serve_cmd(
    db: Annotated[Path, typer.Option("--db", help="DuckDB file to browse (opened read-only)")],
    host: Annotated[str, typer.Option("--host", help=HOST_HELP)] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="API port")] = 3000,
    token: Annotated[str | None, typer.Option("--token", help="bearer token (default: env HERON_TOKEN)")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="serve without a token, even off loopback")] = False,
    verbose: Annotated[int, typer.Option("-v", count=True, help="more logging")] = 0,
    quiet: Annotated[bool, typer.Option("-q", help="less logging")] = False,
) -> None:
    """Serve an existing database read-only: REST API and web console, no engine."""
    from heron_tui.api import create_app
    from heron_tui.api.server import bind, serve_forever, url_of

    _setup_logging(verbose, quiet)
    tok = api_options(host, token, no_auth)
    if not 0 <= port <= 65535:
        fail("--port", f"{port} is not a TCP port", 2)
    with read_store(db) as store:
        try:
            sock = bind(host, port)
        except OSError as exc:
            fail(f"{host}:{port}", exc.strerror or str(exc))
        typer.echo(f"heron: serving {db} read-only on {url_of(sock)}" + ("" if tok else " (no token)"), err=True)
        serve_forever(create_app(store, token=tok, read_only=True), sock)


def run_api_hook(host: str, port: int | None, token: str | None, no_auth: bool, store: Any,
                 ) -> tuple[Callable[[Any], None] | None, Callable[[], None]]:
    """For ``heron run``: validate the API options now and bind the port, then return
    ``(on_started, stop)``. ``on_started(engine)`` starts the server once the engine runs.

    An explicit ``--port`` that cannot be bound is an input error; the default port being taken only
    warns — the capture is the job, the API a view of it — so two runs on one machine both capture.
    """
    from heron_tui.api.server import DEFAULT_PORT, bind, url_of

    tok = api_options(host, token, no_auth)
    try:
        sock = bind(host, DEFAULT_PORT if port is None else port)
    except OSError as exc:
        where = f"{host}:{DEFAULT_PORT if port is None else port}"
        if port is not None:
            fail(where, exc.strerror or str(exc))
        typer.echo(f"heron: warning: {where}: {exc.strerror or exc}; running without the API", err=True)
        return None, lambda: None
    holder: dict[str, Any] = {}

    def on_started(engine: Any) -> None:
        from heron_tui.api import create_app
        from heron_tui.api.server import start_background

        holder["server"] = start_background(create_app(store, engine=engine, token=tok, read_only=False), sock)
        typer.echo(f"heron: serving the API and console on {url_of(sock)}" + ("" if tok else " (no token)"),
                   err=True)

    def stop() -> None:
        server = holder.pop("server", None)
        if server is not None:
            server.stop()
        else:
            sock.close()

    return on_started, stop
