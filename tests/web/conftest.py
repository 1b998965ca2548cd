"""Fixtures of the web-console tests: a database ingested from testdata/captures/*.pcap, `heron serve`
(and `heron run`) subprocesses on free loopback ports, and a real headless Chromium driven through
playwright-core (tests/web/driver.mjs). Everything skips with the reason when Chromium, Node or
playwright-core is not available."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.web.browser import Browser, unavailable_reason

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted((ROOT / "testdata" / "captures").glob("*.pcap"))


def heron_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("heron")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from heron_tui.cli import heron_main; sys.exit(heron_main())"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `heron` subprocess serving the API and console on 127.0.0.1."""

    def __init__(self, args: list[str], token: str | None = None, log: Path | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/"
        self.token = token
        cmd = heron_cmd() + args + ["--host", "127.0.0.1", "--port", str(self.port)]
        if token:
            cmd += ["--token", token]
        env = dict(os.environ)
        env.pop("HERON_TOKEN", None)
        self.log = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"heron exited with {self.proc.returncode}: {' '.join(cmd)}")
            try:
                self.get("api/health")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("heron did not start serving within 60 s") from None
                time.sleep(0.2)

    def get(self, path: str, **params: object) -> dict:
        """GET JSON from the API (with the token when the server has one)."""
        query = "&".join(f"{k}={v}" for k, v in params.items())
        req = urllib.request.Request(self.base + path + (f"?{query}" if query else ""))
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=20) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not subprocess.DEVNULL:
            self.log.close()


@pytest.fixture(scope="session")
def web_unavailable() -> str | None:
    return unavailable_reason()


@pytest.fixture(scope="session")
def captures_db(tmp_path_factory, web_unavailable) -> Path:
    if web_unavailable:
        pytest.skip(web_unavailable)
    db = tmp_path_factory.mktemp("web") / "captures.duckdb"
    proc = subprocess.run(heron_cmd() + ["ingest", *map(str, CAPTURES), "--db", str(db), "--workers", "0"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return db


@pytest.fixture(scope="session")
def server(captures_db, tmp_path_factory):
    """`heron serve --db` over the captures, no token."""
    srv = Server(["serve", "--db", str(captures_db)], log=tmp_path_factory.mktemp("log") / "serve.log")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def auth_server(captures_db, tmp_path_factory):
    """The same database served with a bearer token."""
    srv = Server(["serve", "--db", str(captures_db)], token="s3cret-web-token",
                 log=tmp_path_factory.mktemp("log") / "serve-auth.log")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def _browser(web_unavailable):
    if web_unavailable:
        pytest.skip(web_unavailable)
    b = Browser(color_scheme="dark")
    yield b
    b.close()


@pytest.fixture()
def page(_browser):
    """The shared browser, with console errors / page errors / failed requests checked after the test.
    A test that expects some (401s, a 404 deep link) takes them with ``page.problems()`` itself."""
    _browser.problems()  # drop leftovers of an earlier test
    _browser.call("eval", expr="(() => { try { sessionStorage.clear(); } catch (e) {} return true; })()")
    yield _browser
    left = _browser.problems()
    assert not left, f"console errors / page errors: {left}"
