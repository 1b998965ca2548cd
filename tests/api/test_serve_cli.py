"""``heron serve`` and the API of ``heron run`` as processes (interfaces.md §1, §7.3): the bind rule (exit 2),
input errors (exit 1), a served database with a token, and a run that serves while it captures. Only
loopback addresses are ever bound."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from heron_tui.api.server import check_bind, is_loopback, resolve_token
from tests.api.conftest import CAPTURES, ingest

HERON = [sys.executable, "-c", "from heron_tui.cli import heron_main; heron_main()"]


def _heron(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*HERON, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
                          env=env)


@pytest.fixture(scope="module")
def db_file(tmp_path_factory):
    from heron_core.store.db import open_store

    path = tmp_path_factory.mktemp("serve") / "caps.duckdb"
    store = open_store(str(path))
    ingest([p for p in CAPTURES if p.stem in ("sdk_anthropic", "codex")], store)
    store.close()
    return path


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_serve_refuses_a_public_host_without_token(db_file, tmp_path, host):
    env = {k: v for k, v in os.environ.items() if k != "HERON_TOKEN"}
    r = _heron("serve", "--db", str(db_file), "--host", host, cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("heron: error: --host: ")


def test_run_refuses_a_public_host_without_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HERON_TOKEN"}
    r = _heron("run", "--pcap-file", str(CAPTURES[0]), "--no-retention", "--host", "0.0.0.0", cwd=tmp_path, env=env)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("heron: error: --host: ")


def test_token_and_no_auth_conflict(db_file, tmp_path):
    r = _heron("serve", "--db", str(db_file), "--token", "t", "--no-auth", cwd=tmp_path)
    assert r.returncode == 2 and "not both" in r.stderr


def test_serve_input_errors(tmp_path):
    r = _heron("serve", "--db", str(tmp_path / "missing.duckdb"), cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip() == f"heron: error: {tmp_path / 'missing.duckdb'}: no such database"
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"not a database at all" * 100)
    r = _heron("serve", "--db", str(junk), cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("heron: error: ") and "Traceback" not in r.stderr


def test_bind_rules():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("example.com")
    assert check_bind("127.0.0.1", None, False) is None
    assert check_bind("0.0.0.0", "tok", False) is None and check_bind("0.0.0.0", None, True) is None
    assert check_bind("0.0.0.0", None, False)
    os.environ.pop("HERON_TOKEN", None)
    assert resolve_token(None, False) is None
    with pytest.raises(ValueError):
        resolve_token("t", True)


def _start(args: list[str], cwd: Path, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Start a heron process on port 0 and return it with the URL it printed."""
    proc = subprocess.Popen([*HERON, *args], cwd=cwd, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if m:
            return proc, m.group(1)
        assert line or proc.poll() is None, "heron exited before serving"
    proc.kill()
    raise AssertionError("no 'serving' line")


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_serve_with_token_from_env(db_file, tmp_path):
    env = {**os.environ, "HERON_TOKEN": "env-token"}
    proc, url = _start(["serve", "--db", str(db_file), "--port", "0"], tmp_path, env)
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            h = c.get("/api/health").json()
            assert h["mode"] == "serve" and h["read_only"] is True and h["db"] == str(db_file)
            assert c.get("/api/calls").status_code == 401
            calls = c.get("/api/calls", headers={"Authorization": "Bearer env-token"}).json()
            assert len(calls["items"]) > 0
            assert c.get("/").status_code == 200
    finally:
        assert _stop(proc) == 0


def test_run_serves_while_capturing(tmp_path):
    proc, url = _start(["--pcap-file", str(CAPTURES[0]), "--no-retention", "--port", "0", "--workers", "0",
                        "--token", "run-token"], tmp_path)
    auth = {"Authorization": "Bearer run-token"}
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            deadline = time.monotonic() + 60
            while True:
                h = c.get("/api/health").json()
                if h["sources"] and all(s["state"] == "drained" for s in h["sources"]):
                    break
                assert time.monotonic() < deadline, h
                time.sleep(0.2)
            assert h["mode"] == "run" and h["db"] is None
            assert c.get("/api/calls", headers=auth).json()["items"]
            p = c.get("/api/pipeline", headers=auth).json()
            assert p["counters"] and p["health"] in ("ok", "warning")
    finally:
        assert _stop(proc) == 0
