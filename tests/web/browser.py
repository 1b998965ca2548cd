"""Python side of the Chromium bridge (driver.mjs): finds Chromium, Node and playwright-core, installs
playwright-core into a cache directory outside the repo when missing, and exposes a small blocking API."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PW_DIR = Path(os.environ.get("HERON_PW_DIR", Path.home() / ".cache" / "heron-web-tests"))
PW_SPEC = "playwright-core@1"


def find_chromium() -> str | None:
    for cand in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if cand and os.path.exists(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def ensure_playwright() -> str | None:
    """Path of the npm prefix holding playwright-core, installing it there once; None with a reason logged."""
    if (PW_DIR / "node_modules" / "playwright-core" / "package.json").is_file():
        return str(PW_DIR)
    npm = shutil.which("npm")
    if npm is None:
        return None
    PW_DIR.mkdir(parents=True, exist_ok=True)
    with open(PW_DIR / ".install.lock", "w") as lock:  # pytest-xdist workers install once, in turn
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (PW_DIR / "node_modules" / "playwright-core" / "package.json").is_file():
            proc = subprocess.run([npm, "install", "--prefix", str(PW_DIR), "--no-audit", "--no-fund",
                                   "--loglevel=error", PW_SPEC], capture_output=True, text=True, timeout=300,
                                  check=False)
            if proc.returncode != 0:
                return None
    return str(PW_DIR)


def unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if find_chromium() is None:
        return "Chromium is not installed (apt-get install -y chromium)"
    if shutil.which("node") is None:
        return "Node.js is not installed (needed to drive Chromium with playwright-core)"
    if ensure_playwright() is None:
        return f"could not install {PW_SPEC} with npm into {PW_DIR}"
    return None


class BrowserError(AssertionError):
    pass


class Browser:
    """One headless Chromium (fresh profile) behind driver.mjs."""

    def __init__(self, color_scheme: str = "dark", width: int = 1600, height: int = 1000) -> None:
        env = dict(os.environ, HERON_PW_DIR=str(PW_DIR), CHROMIUM=find_chromium() or "/usr/bin/chromium")
        # never a pipe: a chatty driver must not block; closed in close()
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self.proc = subprocess.Popen(["node", str(HERE / "driver.mjs")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, env=env)
        self._id = 0
        self._lock = threading.Lock()
        self.version = self.call("launch", colorScheme=color_scheme, width=width, height=height, _wait_s=60)

    def call(self, op: str, _wait_s: float = 30, **args: Any) -> Any:
        """Run one driver op; ``_wait_s`` bounds how long we wait for its answer."""
        with self._lock:
            self._id += 1
            assert self.proc.stdin and self.proc.stdout
            self.proc.stdin.write(json.dumps({"id": self._id, "op": op, "args": args}) + "\n")
            self.proc.stdin.flush()
            result: list[str] = []
            reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)
            reader.start()
            reader.join(_wait_s)
            if not result or not result[0]:
                self._stderr.seek(0)
                err = self._stderr.read()[-2000:]
                raise BrowserError(f"driver did not answer {op} within {_wait_s}s {err}")
            msg = json.loads(result[0])
        if not msg.get("ok"):
            raise BrowserError(f"{op} {args}: {msg.get('error')}")
        return msg.get("result")

    # conveniences
    def goto(self, url: str) -> str:
        return self.call("goto", url=url)

    def wait(self, selector: str, state: str = "visible", timeout_ms: int = 15000) -> None:
        """Wait for a selector (Playwright semantics); the bridge call gets a few seconds more."""
        self._timed("wait", timeout_ms, selector=selector, state=state)

    def wait_fn(self, expr: str, timeout_ms: int = 15000) -> None:
        """Wait until a JavaScript expression is truthy in the page."""
        self._timed("waitFn", timeout_ms, expr=expr)

    def _timed(self, op: str, timeout_ms: int, **args: Any) -> Any:
        return self.call(op, _wait_s=timeout_ms / 1000 + 5, timeout=timeout_ms, **args)

    def text(self, selector: str) -> str:
        return self.call("text", selector=selector)

    def texts(self, selector: str) -> list[str]:
        return self.call("texts", selector=selector)

    def count(self, selector: str) -> int:
        return self.call("count", selector=selector)

    def click(self, selector: str) -> None:
        self.call("click", selector=selector)

    def eval(self, expr: str) -> Any:
        return self.call("eval", expr=expr)

    def screenshot(self, path: str | Path, full_page: bool = True) -> None:
        self.call("screenshot", _wait_s=60, path=str(path), fullPage=full_page)

    def problems(self) -> list[dict[str, str]]:
        return self.call("problems")

    def close(self) -> None:
        try:
            self.call("close", _wait_s=20)
        except BrowserError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()
