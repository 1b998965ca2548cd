"""The heron-tui command line: non-TTY table, exit codes, key files, formatting, OSC 52."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

from heron_tui.keys import DEFAULT_KEYS, KeysError, bindings, display_keys, load_keymap
from heron_tui.widgets import format as fmt
from heron_tui.widgets.clipboard import osc52_sequences
from tests.tui.tui_helpers import CAPTURES, DEMO, ROOT
from tests.unprivileged import SETPRIV, can_drop_privileges


def run_tui(*args: str) -> subprocess.CompletedProcess:
    """``heron-tui`` with stdout a pipe (not a terminal), as a user piping it would run it."""
    code = "from heron_tui.cli import tui_main; tui_main()"
    env = dict(os.environ, TZ="UTC")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120, check=False)


def test_non_tty_prints_a_plain_table_of_calls():
    p = run_tui(str(CAPTURES / "claude_code.pcap"), str(CAPTURES / "sdk_openai.pcap"))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[:4] == ["time", "source", "wire", "api"]
    for col in ("model", "status", "finish", "tok in", "tok out", "ttft ms", "e2e ms", "preview"):
        assert col in lines[0]
    assert len(lines) == 1 + 34  # every call of both captures
    assert "\x1b" not in p.stdout  # no colours, no escapes
    assert any("claude-sonnet-4-6" in line and "tool_use" in line and "claude_code" in line for line in lines)
    assert any(line.split()[0].count(":") == 2 for line in lines[1:])


def test_non_tty_demo_with_filter_and_db(tmp_path):
    p = run_tui("--demo", "--db", str(tmp_path / "demo.duckdb"), "--filter", "status >= 500")
    assert p.returncode == 0, p.stderr
    rows = p.stdout.splitlines()[1:]
    assert rows and all(re.search(r" 5\d\d error ", r) for r in rows)
    p = run_tui("--db", str(tmp_path / "demo.duckdb"))  # browse the database read-only
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) > len(rows) + 1


@pytest.mark.parametrize("args,code,message", [
    (["-i", "eth0", "x.pcap"], 2, "not both"),
    (["--zmq", "tcp://127.0.0.1:5555", "-i", "lo"], 2, "give one live source"),
    (["--bpf-filter", "tcp", "x.pcap"], 2, "applies to -i only"),
    (["--ebpf-pid", "1", "--demo"], 2, "applies to --ebpf only"),
    (["--ebpf-comm", "python3", "-i", "lo"], 2, "applies to --ebpf only"),
    (["--replay-speed", "2", "-i", "lo"], 2, "applies to capture files only"),
    (["--replay-speed", "-1", "--demo"], 2, "positive factor"),
    (["--workers", "-1", "--demo"], 2, "must be 0 or more"),
    (["--source-id", "x", "--zmq", "tcp://127.0.0.1:1"], 2, "a single file or -i only"),
    (["--zmq", "tcp://999.1.1.1:5"], 1, "--zmq tcp://999.1.1.1:5: "),
    ([], 2, "give capture files"),
    (["--theme", "pink", "--demo"], 2, "unknown theme"),
    (["--filter", "agnt == x", "--demo"], 2, "did you mean 'agent'"),
    (["/nonexistent.pcap"], 1, "/nonexistent.pcap"),
    (["--db", "/nonexistent.duckdb"], 1, "no such database"),
])
def test_errors_and_exit_codes(args, code, message):
    p = run_tui(*args)
    assert p.returncode == code
    assert p.stderr.startswith("heron: error: ") and message in p.stderr
    assert "Traceback" not in p.stderr


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.parametrize("args,code,line", [
    (["-i", "nosuchif0"], 1, "heron: error: -i nosuchif0: no such interface"),
    (["-i", "lo", "--bpf-filter", "tcp prt 80"], 2, "heron: error: --bpf-filter: "),
    (["-i", "nosuchif0", "--workers", "1"], 1, "heron: error: -i nosuchif0: no such interface"),
])
def test_live_source_errors_are_one_line_before_any_ui(args, code, line):
    """Opening errors of a live source come from the capture itself (single process or the reader
    process), before the UI would start: one line, the exit code of ``heron run``."""
    if not _is_root():
        pytest.skip("opening an interface needs root: without it every case is the permission error")
    pytest.importorskip("pcapy", reason="pcapy-ng (the 'live' extra) is not installed")
    p = run_tui(*args)
    assert p.returncode == code, p.stderr
    assert p.stderr.startswith(line) and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert p.stdout == ""


@pytest.mark.parametrize("workers", ["0", "1"])
@pytest.mark.parametrize("args,what", [(["-i", "lo"], "-i lo"), (["--ebpf"], "--ebpf")])
def test_capture_without_privileges_is_one_line(args, what, workers):
    """As an unprivileged user (setpriv): the capture cannot open, in this process or in the reader
    process; one line, exit 1."""

    if not can_drop_privileges():
        pytest.skip("setpriv (and root to use it) drop privileges for this test")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TZ="UTC", HOME="/tmp")
    p = subprocess.run([*SETPRIV, sys.executable, "-c", "from heron_tui.cli import tui_main; tui_main()",
                        *args, "--workers", workers], capture_output=True, text=True, cwd="/tmp", env=env, timeout=120,
                       check=False)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"heron: error: {what}"), p.stderr
    assert "Traceback" not in p.stderr


def test_one_bad_file_still_shows_the_others(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture file at all")
    p = run_tui(str(bad), str(DEMO))
    assert p.returncode == 1 and "bad.pcap" in p.stderr
    assert len(p.stdout.splitlines()) > 50


def test_keys_file(tmp_path):
    f = tmp_path / "keys.toml"
    f.write_text('[keys]\nfilter = "ctrl+l"\nquit = ["q", "ctrl+q"]\n')
    assert load_keymap(f) == {"filter": "ctrl+l", "quit": "q,ctrl+q"}
    f.write_text('sort = "o"\n')  # top-level entries work too
    assert load_keymap(f) == {"sort": "o"}
    f.write_text('[keys]\nfly = "x"\n')
    with pytest.raises(KeysError, match="unknown key id 'fly'"):
        load_keymap(f)
    f.write_text("[keys\n")
    with pytest.raises(KeysError):
        load_keymap(f)
    assert load_keymap(tmp_path / "missing.toml") == {}
    with pytest.raises(KeysError, match="no such file"):
        load_keymap(tmp_path / "missing.toml", required=True)
    p = run_tui("--keys", str(f), "--demo")
    assert p.returncode == 2 and "--keys" in p.stderr


def test_key_table_is_complete_and_unique():
    ids = [k.id for k in DEFAULT_KEYS]
    assert len(ids) == len(set(ids))
    keys = [k.keys for k in DEFAULT_KEYS]
    assert len(keys) == len(set(keys))
    required = {"help", "filter", "search_next", "search_prev", "open", "back", "next_pane", "sort",
                "sort_reverse", "follow", "mark", "export", "export_all", "copy", "palette", "quit", "metrics",
                "filter_toggle"} | {f"view_{v}" for v in ("turns", "sessions", "calls", "insights", "services",
                                                            "pipeline")}
    assert required <= set(ids)
    assert all(b.id for b in bindings("main") + bindings("app"))
    assert display_keys("question_mark,ctrl+f") == "? / ctrl+f"


def test_osc52_sequences():
    plain = osc52_sequences("héllo", {})
    assert plain == ["\x1b]52;c;" + base64.b64encode("héllo".encode()).decode() + "\x07"]
    tmux = osc52_sequences("x", {"TMUX": "/tmp/tmux-0/default,1,0"})
    assert tmux[0] == plain[0].replace(base64.b64encode("héllo".encode()).decode(), "eA==")
    assert tmux[1].startswith("\x1bPtmux;\x1b\x1b]52;c;eA==") and tmux[1].endswith("\x1b\\")
    screen = osc52_sequences("x", {"STY": "1.pts"})
    assert screen[1].startswith("\x1bP\x1b]52;c;eA==")
    huge = osc52_sequences("a" * 200_000, {})[0]
    assert len(huge) < 100_020


def test_formatting():
    assert fmt.ms(523) == "523ms" and fmt.ms(1250) == "1.25s" and fmt.ms(12_345) == "12.3s"
    assert fmt.ms(125_000) == "2m05s" and fmt.ms(3_720_000) == "1h02m" and fmt.ms(None) == ""
    assert fmt.tokens(950) == "950" and fmt.tokens(12_345) == "12k" and fmt.tokens(2_500_000) == "2.5M"
    assert fmt.usd(0.0123) == "$0.0123" and fmt.usd(12.5) == "$12.50" and fmt.usd(0) == "$0"
    assert fmt.pct(0.075) == "7.5%" and fmt.pct(0.5) == "50%"
    assert fmt.fit("abcdef", 4) == "abc…" and fmt.fit("ab", 4, right=True) == "  ab"
    wide = fmt.fit("日本語テキスト", 6)
    assert cell_len(wide) == 6 and wide.endswith("…")
    assert fmt.cell("status", 503) == ("503", "error") and fmt.cell("tstatus", "incomplete") == ("incomplete", "warn")


def test_demo_capture_is_shipped_small():
    assert DEMO.exists() and DEMO.stat().st_size < 1_000_000
    from heron_tui.tui_cli import demo_path

    assert Path(demo_path()) == DEMO
