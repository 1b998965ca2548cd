"""Live capture on loopback: ``heron run -i lo`` sees calls made with the official OpenAI SDK while it runs.

Needs root (or CAP_NET_RAW) and the ``live`` extra; skipped with the reason otherwise. DuckDB admits
one writing process, so progress is read from ``--status-file`` while capture runs, and the database
only after ``heron run`` exited. The AF_PACKET fallback is exercised in-process on the same traffic.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.unprivileged import SETPRIV, can_drop_privileges

from .helpers import ROOT, free_port, is_root

pytestmark = pytest.mark.skipif(not is_root(), reason="live capture needs root or CAP_NET_RAW")

openai = pytest.importorskip("openai", reason="the official openai SDK is needed to make real calls")

N_CALLS = 3


def _heron() -> list[str]:
    return [sys.executable, "-c", "from heron_tui.cli import heron_main; heron_main()"]


def _wait_port(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"mock LLM did not listen on {port}")


def _status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _store_counter(st: dict, name: str) -> int:
    return st.get("pipeline", {}).get("counters", {}).get("store", {}).get(name, 0)


@pytest.fixture
def mock_llm():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "testdata.mock_llm", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _calls(port: int, n: int) -> None:
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test-live-capture", max_retries=0)
    for i in range(n):
        if i % 2:
            text = "".join(ch.choices[0].delta.content or "" for ch in client.chat.completions.create(
                model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": f"live stream {i}"}])
                if ch.choices)
        else:
            r = client.chat.completions.create(model="gpt-4o-mini",
                                               messages=[{"role": "user", "content": f"live call {i}"}])
            text = r.choices[0].message.content
        assert text


@pytest.mark.parametrize("workers", [0, 2])
def test_calls_appear_while_capture_runs(tmp_path, mock_llm, workers):
    pytest.importorskip("pcapy", reason="pcapy-ng (the 'live' extra) is not installed")
    port = mock_llm
    db = tmp_path / "live.duckdb"
    status = tmp_path / "status.json"
    proc = subprocess.Popen(
        _heron() + ["run", "-i", "lo", "--bpf-filter", f"tcp port {port}", "--db", str(db),
                    "--workers", str(workers), "--status-file", str(status), "-v"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while _status(status).get("state") != "running":
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, "heron run did not start capturing"
            time.sleep(0.1)
        _calls(port, N_CALLS)
        deadline = time.time() + 20
        while _store_counter(_status(status), "rows_written.calls") < N_CALLS:
            assert proc.poll() is None, "heron run exited early: " + proc.stderr.read()
            assert time.time() < deadline, f"calls not stored while running: {_status(status)}"
            time.sleep(0.2)
        st = _status(status)
        assert st["state"] == "running" and st["sources"][0]["source_id"] == "lo"
        assert st["pipeline"]["health"] in ("ok", "warning"), st["pipeline"]["reasons"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    err = proc.stderr.read()
    assert rc == 0, err
    assert _status(status)["state"] == "exited"
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT wire_api, model_requested, is_stream, ok, server_port FROM calls").fetchall()
    assert len(rows) == N_CALLS
    assert {r[0] for r in rows} == {"openai-chat"} and all(r[3] for r in rows)
    assert {r[4] for r in rows} == {port}
    assert Counter(r[2] for r in rows) == Counter([i % 2 == 1 for i in range(N_CALLS)])
    counters = json.loads(con.execute("SELECT counters FROM runs").fetchone()[0])
    assert counters["packets_read"] > 0 and counters.get("packets_dropped_overload", 0) == 0
    con.close()


def test_afpacket_fallback_captures_an_exchange(mock_llm):
    """The zero-dependency backend, in-process: PACKET_IGNORE_OUTGOING (no duplicates on lo) + tcpdump BPF."""
    import shutil
    import threading

    from heron_core.capture.live import AfPacketCapture, LiveSource
    from heron_core.capture.sources import SourceSpec
    from heron_core.config import Config
    from heron_core.records import Segment

    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is needed to compile the BPF filter for AF_PACKET")
    port = mock_llm
    counters: Counter = Counter()
    src = LiveSource(SourceSpec("live", iface="lo", bpf_filter=f"tcp port {port}", capture_backend="afpacket"),
                     counters, Config())
    assert isinstance(src.cap, AfPacketCapture)
    t = threading.Thread(target=_calls, args=(port, 1))
    t.start()
    segs = []
    deadline = time.time() + 10
    while time.time() < deadline and (t.is_alive() or time.time() < deadline - 8):
        segs += [r for r in src.poll(0.1) if type(r) is Segment]
    t.join()
    for _ in range(5):
        segs += [r for r in src.poll(0.1) if type(r) is Segment]
    src.close()
    payload = b"".join(s.payload for s in segs)
    assert b"POST /v1/chat/completions" in payload and b"HTTP/1.1 200" in payload
    assert {s.dst[1] for s in segs} | {s.src[1] for s in segs} >= {port}
    # each packet once: no copy of a data segment from the outgoing side of lo (bare ACKs may legitimately
    # repeat: window updates carry the same seq/ack)
    keys = [(s.src, s.dst, s.seq, s.payload) for s in segs if s.payload]
    assert keys and len(keys) == len(set(keys))
    assert all(port in (s.src[1], s.dst[1]) for s in segs)


def test_permission_error_is_one_line(tmp_path):
    """Without CAP_NET_RAW the error is one line (run as 'nobody' via setpriv when available)."""

    if not can_drop_privileges():
        pytest.skip("setpriv is needed to drop privileges")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [*SETPRIV, *_heron(), "run", "-i", "lo", "--no-retention", "--workers", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "heron: error: -i lo: capture needs root or CAP_NET_RAW"


def test_probe_to_zmq_end_to_end(tmp_path, mock_llm):
    """``heron probe -i lo`` → ZMQ → ``heron run --zmq``: the calls arrive under the probe's UUID."""
    pytest.importorskip("zmq", reason="pyzmq (the 'live' extra) is not installed")
    pytest.importorskip("pcapy", reason="pcapy-ng (the 'live' extra) is not installed")
    port = mock_llm
    zport = free_port()
    probe_id = "7d4f0c2e-1a2b-4c3d-9e8f-0a1b2c3d4e5f"
    db = tmp_path / "zmq.duckdb"
    status = tmp_path / "status.json"
    run = subprocess.Popen(_heron() + ["run", "--zmq", f"tcp://127.0.0.1:{zport}", "--db", str(db), "--workers", "1",
                                       "--status-file", str(status)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    probe = subprocess.Popen(_heron() + ["probe", "-i", "lo", "--bpf-filter", f"tcp port {port}", "--to",
                                         f"tcp://127.0.0.1:{zport}", "--probe-id", probe_id],
                             cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while _status(status).get("state") != "running":
            assert run.poll() is None, run.stderr.read()
            assert time.time() < deadline
            time.sleep(0.1)
        time.sleep(1.0)  # the probe opens its capture
        assert probe.poll() is None, probe.stderr.read()
        _calls(port, N_CALLS)
        deadline = time.time() + 20
        while _store_counter(_status(status), "rows_written.calls") < N_CALLS:
            assert run.poll() is None, run.stderr.read()
            assert time.time() < deadline, _status(status)
            time.sleep(0.2)
        assert {s["source_id"] for s in _status(status)["sources"]} == {probe_id}
    finally:
        probe.send_signal(signal.SIGINT)
        prc = probe.wait(30)
        run.send_signal(signal.SIGINT)
        rc = run.wait(30)
    perr = probe.stderr.read()
    assert prc == 0 and "probe: sent" in perr, perr
    assert rc == 0, run.stderr.read()
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT source_id, wire_api FROM calls").fetchall()
    con.close()
    assert rows and all(r == (probe_id, "openai-chat") for r in rows) and len(rows) == N_CALLS
