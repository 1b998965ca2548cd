"""``heron run --ebpf`` option checks and one-line errors, the agent's own error frame, and ``heron doctor``
(its JSON report, and what it says before and after the prerequisites)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from heron_core.capture.ebpf import frames as F
from heron_core.capture.ebpf import prereqs
from heron_core.capture.ebpf.source import AGENT
from heron_tui.cli_doctor import format_report
from tests.unprivileged import SETPRIV, can_drop_privileges

ROOT = Path(__file__).resolve().parents[2]
HERON = [sys.executable, "-c", "from heron_tui.cli import heron_main; heron_main()"]


def _heron(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full = dict(os.environ, PYTHONPATH=str(ROOT))
    full.update(env or {})
    return subprocess.run([*HERON, *args], cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout,
                          env=full, check=False)


def _free_port() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _venv_python_without_bcc() -> str:
    if prereqs._bcc_location(sys.executable):
        pytest.skip("this test python can import bcc itself")
    return sys.executable


@pytest.mark.parametrize("args, what", [
    (["--ebpf-pid", "5"], "--ebpf-pid: applies to --ebpf only"),
    (["--ebpf-comm", "curl", "-i", "lo"], "--ebpf-comm: applies to --ebpf only"),
    (["--ebpf", "--zmq", "tcp://127.0.0.1:1"], "run: give exactly one source"),
    (["--ebpf", "--ebpf-pid", "0"], "--ebpf-pid: takes a process id"),
])
def test_usage_errors(args, what):
    p = _heron("run", "--no-retention", *args)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith(f"heron: error: {what}")


def test_missing_bcc_is_one_line_with_the_fix(tmp_path):
    py = _venv_python_without_bcc()
    p = _heron("run", "--ebpf", "--no-retention", "--workers", "0", "--port", _free_port(),
               env={"HERON_BCC_PYTHON": py}, cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    if "needs root" in lines[0]:
        pytest.skip("not privileged here: the privilege check fails first")
    assert lines[0] == (f"heron: error: --ebpf: BCC Python bindings not found (looked in {py}) "
                        "(fix: apt-get install python3-bpfcc)")


def test_no_privileges_is_one_line_with_the_fix(tmp_path):
    if not can_drop_privileges():
        pytest.skip("needs root and setpriv to drop privileges")
    os.chmod(tmp_path, 0o777)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run(
        [*SETPRIV, *HERON, "run", "--ebpf", "--no-retention", "--workers", "0", "--port", _free_port()],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip().splitlines() == [
        ("heron: error: --ebpf: loading uprobes needs root or CAP_BPF + CAP_PERFMON "
         "(fix: run as root, or: setcap cap_bpf,cap_perfmon+ep on the python running heron)")]


def test_agent_without_bcc_sends_an_error_frame():
    py = _venv_python_without_bcc()
    p = subprocess.run([py, "-E", "-s", str(AGENT), "--check"], capture_output=True, timeout=60, check=False,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 1
    frames = F.FrameReader().feed(p.stdout)
    assert len(frames) == 1 and frames[0][0] == F.ERROR
    text = frames[0][1].decode()
    assert text.startswith("--ebpf: bcc is not importable by") and text.endswith("(fix: apt-get install python3-bpfcc)")


def _doctor(*args: str, env: dict | None = None, cwd: Path | None = None) -> dict:
    p = _heron("doctor", "--json", *args, env=env, cwd=cwd)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _check(report: dict, name: str) -> dict:
    return next(c for c in report["ebpf"]["checks"] if c["name"] == name)


def test_doctor_before_the_prerequisites(tmp_path):
    """No bcc for heron (a Python without it) and an empty header cache: the report says what is missing
    and how to fix it, and does not try to load anything."""
    py = _venv_python_without_bcc()
    env = {"HERON_BCC_PYTHON": py, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    r = _doctor("--no-trial", env=env, cwd=tmp_path)
    bcc = _check(r, "bcc")
    assert bcc["ok"] is False and bcc["fix"] == "apt-get install python3-bpfcc"
    assert r["ebpf"]["state"] == "unavailable"
    assert r["ebpf"]["trial"]["ok"] is None and r["ebpf"]["trial"]["detail"].startswith("skipped")
    headers = _check(r, "headers")
    if headers["ok"] is None:  # no headers for this kernel: they will be fetched, and the doctor says from where
        assert "on first use" in headers["detail"] and str(tmp_path / "cache") in headers["detail"]
    assert "Codex (Rust/rustls)" in r["ebpf"]["invisible_note"]
    text = format_report(r)
    assert "[FAIL] BCC Python bindings not found" in text and "fix: apt-get install python3-bpfcc" in text
    assert "=> eBPF: unavailable" in text


def test_doctor_reports_the_real_state_of_this_host(tmp_path):
    """With the host's own settings the report agrees with the prerequisites heron itself checks, and on
    a host where everything is in place the trial really compiles and attaches (then detaches)."""
    r = _doctor(cwd=tmp_path)
    checks, _python = prereqs.blocking_checks()
    failed = [c for c in checks if c.ok is False]
    for c in checks:
        assert _check(r, c.name)["ok"] == c.ok, (c.name, _check(r, c.name))
    state = r["ebpf"]["state"]
    if failed:
        assert state == "unavailable"
        assert all(_check(r, c.name)["fix"] for c in failed if c.name != "platform")
    elif _check(r, "headers")["ok"] is True:
        trial = r["ebpf"]["trial"]
        assert state in ("works", "fails"), r["ebpf"]
        if state == "works":
            assert trial["ok"] is True and trial["probes"] > 0 and trial["targets"]
            assert "then detached" in trial["detail"]
    else:
        assert state in ("ready after header download", "unavailable")
    assert {c["name"] for c in r["storage"]} == {"db", "cache", "duckdb"}
    assert r["live_capture"][0]["name"] == "live"


def test_format_report_marks_failures_notes_and_fixes():
    r = {"host": {"system": "Linux", "kernel": "6.1.0", "machine": "x86_64", "euid": 1000},
         "live_capture": [{"name": "live", "ok": False, "detail": "capture on lo: capture needs root or CAP_NET_RAW",
                           "fix": "run as root"}],
         "ebpf": {"checks": [{"name": "kernel", "ok": True, "detail": "kernel 6.1.0", "fix": None},
                             {"name": "headers", "ok": None, "detail": "kernel headers: fetched on first use",
                              "fix": "heron doctor --fetch-headers"}],
                  "trial": {"ok": None, "detail": "skipped until the kernel headers are downloaded"},
                  "heron_programs": None, "visible": [{"path": "/usr/bin/node", "kind": "exe", "processes": 2,
                                                       "symbols": ["SSL_read"]}],
                  "invisible": [{"pid": 77, "exe": "/opt/claude", "what": "Claude Code (Bun, static BoringSSL)"}],
                  "invisible_note": "static TLS ...", "state": "ready after header download"},
         "storage": [{"name": "db", "ok": True, "detail": "database x", "fix": None}]}
    lines = format_report(r).splitlines()
    assert lines[0] == "heron doctor: Linux 6.1.0 (x86_64), not root"
    assert "  [FAIL] capture on lo: capture needs root or CAP_NET_RAW" in lines
    assert "         fix: run as root" in lines
    assert "  [note] kernel headers: fetched on first use" in lines
    assert "    /usr/bin/node (exe, 2 running process(es))" in lines
    assert "  NOT visible: pid 77 /opt/claude: Claude Code (Bun, static BoringSSL)" in lines
    assert lines.count("  => eBPF: ready after header download") == 1


def test_missing_headers_without_apt_is_one_line_with_the_fix(tmp_path):
    """A kernel without headers, an empty cache and no apt to fetch some: one line saying what to do."""
    import platform

    from heron_core.capture.ebpf import headers

    checks, _python = prereqs.blocking_checks()
    if any(c.ok is False for c in checks):
        pytest.skip("an earlier eBPF prerequisite fails here")
    if headers._system_build() or os.path.exists("/sys/kernel/kheaders.tar.xz"):
        pytest.skip("this kernel has its own headers")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": str(tmp_path / "empty-bin"),
           "BCC_KERNEL_SOURCE": ""}
    p = _heron("run", "--ebpf", "--no-retention", "--workers", "0", "--port", _free_port(), env=env, cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip().splitlines()[-1] == (
        f"heron: error: --ebpf: no kernel headers for {platform.release()} and no apt to fetch some "
        "(fix: install your distribution's kernel headers, or set BCC_KERNEL_SOURCE=<header tree>)")
    assert not (tmp_path / "cache" / "heron" / "kernel-headers").exists() or not any(
        (tmp_path / "cache" / "heron" / "kernel-headers").iterdir())
