"""Running the API app: bind checks (interfaces.md §7.3), blocking ``heron serve`` and the background
server thread of ``heron run``.

The listening socket is bound here, before uvicorn starts, so "address in use" or "cannot assign
address" becomes the CLI's one-line error (uvicorn would log a traceback-ish message and call
``sys.exit`` from inside its event loop). In ``heron run`` the server runs in a daemon thread next to
the engine (uvicorn only installs signal handlers in the main thread, so Ctrl+C still reaches the
engine's own shutdown handling) and is stopped before the store closes.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("heron")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
TOKEN_ENV = "HERON_TOKEN"


def is_loopback(host: str) -> bool:
    """``localhost`` and loopback addresses; everything else (``0.0.0.0`` included) is reachable from
    other machines."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(token: str | None, no_auth: bool) -> str | None:
    """``--token`` wins over ``HERON_TOKEN``; ``--no-auth`` turns auth off (and conflicts with
    ``--token``: raises ``ValueError``)."""
    if no_auth:
        if token:
            raise ValueError("give --token or --no-auth, not both")
        return None
    return token or os.environ.get(TOKEN_ENV) or None


def check_bind(host: str, token: str | None, no_auth: bool) -> str | None:
    """The §7.3 rule: a non-loopback address needs a token or an explicit ``--no-auth``; returns the
    one-line reason when the combination is refused."""
    if not is_loopback(host) and not token and not no_auth:
        return (f"{host} is not a loopback address: protect the API with --token T (or HERON_TOKEN), "
                "or pass --no-auth to serve it unprotected")
    return None


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; raises ``OSError`` with the system's reason."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(128)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: Any) -> Any:
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", server_header=False)
    return uvicorn.Server(config)


def serve_forever(app: Any, sock: socket.socket) -> None:
    """``heron serve``: run until Ctrl+C or SIGTERM (uvicorn handles them and shuts down gracefully)."""
    server = _server(app)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl+C it handled; stopping is the normal way out
        pass
    finally:
        sock.close()


@dataclass
class BackgroundServer:
    """The API of ``heron run``, served from a daemon thread; ``stop()`` ends it."""

    server: Any
    thread: threading.Thread
    sock: socket.socket

    def stop(self, timeout_s: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)
        self.sock.close()


def start_background(app: Any, sock: socket.socket) -> BackgroundServer:
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="heron-api", daemon=True)
    thread.start()
    return BackgroundServer(server, thread, sock)
