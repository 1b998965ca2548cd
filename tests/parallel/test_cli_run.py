"""``heron run`` / ``heron probe`` command lines: usage errors (exit 2), input errors (exit 1, one line),
the ``heron [options]`` alias, and ``ingest --workers``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .helpers import CAPTURES, ROOT


def _heron(*args: str, cwd=ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from heron_tui.cli import heron_main; heron_main()", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("args,what", [
    ([], "run"),
    (["--pcap-file", "x.pcap", "--zmq", "tcp://127.0.0.1:1"], "run"),
    (["--pcap-file", "x.pcap", "--bpf-filter", "tcp"], "--bpf-filter"),
    (["--zmq", "tcp://127.0.0.1:1", "--replay-speed", "2"], "--replay-speed"),
    (["--pcap-file", "x.pcap", "--db", "x.duckdb", "--no-retention"], "run"),
    (["--pcap-file", "x.pcap", "--workers", "-1"], "--workers"),
])
def test_usage_errors_exit_2(tmp_path, args, what):
    r = _heron("run", *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"heron: error: {what}: ")


def test_unreadable_file_is_one_line_exit_1(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"garbage garbage garbage garbage")
    r = _heron("run", "--pcap-file", str(bad), "--no-retention", "--exit-after-drain", "--workers", "1")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == f"heron: error: {bad}: not a pcap or pcapng file"


def test_bad_zmq_endpoint_is_one_line_exit_1():
    r = _heron("run", "--zmq", "nonsense://x", "--no-retention", "--workers", "1")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("heron: error: --zmq nonsense://x: ")


@pytest.mark.parametrize("workers", ["0", "2"])
def test_bare_heron_is_heron_run(tmp_path, workers):
    db = tmp_path / "a.duckdb"
    r = _heron("--pcap-file", CAPTURES[0], "--db", str(db), "--exit-after-drain", "--workers", workers)
    assert r.returncode == 0, r.stderr
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM calls").fetchone()[0] > 0
    runs = con.execute("SELECT argv, sources FROM runs").fetchall()
    con.close()
    assert len(runs) == 1


def test_ingest_workers_summary_matches(tmp_path):
    out = {}
    for w in ("0", "2"):
        r = _heron("ingest", "--no-retention", "--json", "--workers", w, *CAPTURES[:3])
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        s.pop("duration_s")
        out[w] = s
    assert out["0"] == out["2"]


def test_probe_bad_uuid_is_usage_error():
    r = _heron("probe", "-i", "lo", "--to", "tcp://127.0.0.1:1", "--probe-id", "nope")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == "heron: error: --probe-id: not a UUID: 'nope'"
