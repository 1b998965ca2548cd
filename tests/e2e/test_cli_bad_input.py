"""``heron ingest`` on bad input files, through the real command (interfaces.md §1.3, capture-and-http §2.2).

Each unreadable input prints exactly one line ``heron: error: <path>: <why>`` (never a traceback), the
readable files given with it are still ingested, and the exit code is 1; a capture whose last record is
cut is read up to the cut with a warning and exit code 0.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "testdata" / "captures" / "codex.pcap"
_SCRIPT = Path(sys.executable).with_name("heron")
HERON = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c", "from heron_tui.cli import heron_main; heron_main()"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HERON, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("heron: error: ")]


def assert_one_error(stderr: str, path: str) -> None:
    mine = [line for line in error_lines(stderr) if line.startswith(f"heron: error: {path}: ")]
    assert len(mine) == 1, stderr
    assert re.fullmatch(rf"heron: error: {re.escape(path)}: \S.*", mine[0]), mine[0]


def exported_calls(db: Path, cwd: Path) -> int:
    r = run("export", "calls", "--db", str(db), cwd=cwd)
    assert r.returncode == 0, r.stderr
    return len(r.stdout.splitlines())


def truncated_copy(src: Path, dst: Path) -> None:
    """``src`` cut in the middle of a record (past the header of a record, before its end)."""
    data = src.read_bytes()
    pos, records = 24, []  # classic little-endian µs pcap
    while pos + 16 <= len(data):
        records.append(pos)
        pos += 16 + int.from_bytes(data[pos + 8:pos + 12], "little")
    last = records[len(records) // 2]
    dst.write_bytes(data[:last + 16 + 10])


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    f = {
        "garbage": tmp_path / "garbage.pcap",
        "empty": tmp_path / "empty.pcap",
        "short_header": tmp_path / "short_header.pcap",
        "truncated": tmp_path / "truncated.pcap",
        "missing": tmp_path / "missing.pcap",
        "directory": tmp_path / "adir",
        "good": tmp_path / "good.pcap",
    }
    f["garbage"].write_bytes(b"this is not a capture file at all\n" * 40)
    f["empty"].write_bytes(b"")
    f["short_header"].write_bytes(GOOD.read_bytes()[:10])
    truncated_copy(ROOT / "testdata" / "captures" / "sdk_openai.pcap", f["truncated"])
    f["directory"].mkdir()
    f["good"].write_bytes(GOOD.read_bytes())
    return f


@pytest.mark.parametrize("kind", ["garbage", "empty", "short_header", "missing", "directory"])
def test_each_bad_file_is_one_error_line_and_exit_1(files: dict[str, Path], tmp_path: Path, kind: str) -> None:
    r = run("ingest", "--db", str(tmp_path / "x.duckdb"), str(files[kind]), cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert_one_error(r.stderr, str(files[kind]))
    assert len(error_lines(r.stderr)) == 1


def test_good_files_are_ingested_next_to_bad_ones(files: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "mixed.duckdb"
    bad = [files[k] for k in ("garbage", "empty", "missing", "directory")]
    r = run("ingest", "--db", str(db), str(bad[0]), str(files["good"]), *map(str, bad[1:]), cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    for p in bad:
        assert_one_error(r.stderr, str(p))
    assert len(error_lines(r.stderr)) == len(bad)
    assert exported_calls(db, tmp_path) == 2  # codex.pcap: two calls


def test_truncated_capture_warns_and_exits_0(files: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    r = run("ingest", "--db", str(db), str(files["truncated"]), str(files["good"]), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert error_lines(r.stderr) == [] and "Traceback" not in r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("heron: warning: ")]
    assert len(warnings) == 1 and warnings[0].startswith(f"heron: warning: {files['truncated']}: "), r.stderr
    assert exported_calls(db, tmp_path) > 2  # the part before the cut was read, and the good file


def test_all_good_exits_0_without_errors(files: dict[str, Path], tmp_path: Path) -> None:
    r = run("ingest", "--db", str(tmp_path / "g.duckdb"), str(files["good"]), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert error_lines(r.stderr) == [] and "Traceback" not in r.stderr
