"""The real thing: ``heron run --ebpf`` captures HTTPS calls of the ``openai`` SDK and of ``curl`` to a local
TLS mock, with the probes attached to the system's libssl.

Skipped, with the reason, where eBPF cannot run (not root, no bcc, no BTF, a sandbox that refuses
``bpf()``…): the fixture runs heron's own prerequisite checks and a trial attach first. Everything is
compared with what the mock says it sent (its truth log): the calls, their tokens and tool calls, the
one agent turn, and the process each call is attributed to. After heron exits — by Ctrl+C, or killed
with SIGKILL — none of the agent's BPF programs may remain loaded (a uprobe holds its program, so an
unloaded program proves that no probe is left attached).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from heron_core.capture.ebpf import bpfstat, headers, prereqs
from heron_core.capture.ebpf.source import AGENT

ROOT = Path(__file__).resolve().parents[2]
HERON = [sys.executable, "-c", "from heron_tui.cli import heron_main; heron_main()"]
CLIENT = Path(__file__).with_name("tls_client.py")
N_PYTHON_CALLS = 4
N_CURL_CALLS = 2


@pytest.fixture(scope="module")
def ebpf_ready() -> None:
    """Skip (with the reason) unless eBPF really works here; fetches the kernel header tree if needed."""
    if sys.platform != "linux":
        pytest.skip("eBPF needs Linux")
    checks, _py = prereqs.blocking_checks()
    failed = [c for c in checks if c.ok is False]
    if failed:
        pytest.skip(f"eBPF unavailable here: {failed[0].error()}")
    try:
        headers.ensure()
    except headers.HeaderError as exc:
        pytest.skip(f"eBPF unavailable here: no kernel headers: {exc}")
    from heron_core.capture.ebpf.source import trial

    t = trial()
    if not t["ok"]:
        pytest.skip(f"eBPF unavailable here: the probes cannot be loaded: {t['detail']}")
    if not t["targets"]:
        pytest.skip("no OpenSSL library found to probe")
    if shutil.which("curl") is None:
        pytest.skip("curl is needed")
    pytest.importorskip("openai", reason="the official openai SDK is needed to make real calls")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the mock exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"mock did not listen on {port}")


@pytest.fixture
def tls_mock(tmp_path, ebpf_ready):
    from testdata.mock_llm.tls import make_tls_files

    tls = make_tls_files(tmp_path / "tls")
    port = _free_port()
    truth = tmp_path / "truth.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "testdata.mock_llm", "--port", str(port), "--tls", str(tls.cert),
                             str(tls.key), "--truth", str(truth)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield {"port": port, "ca": tls.ca, "truth": truth, "pid": proc.pid}
    finally:
        proc.terminate()
        proc.wait(10)


def _status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _counter(st: dict, stage: str, name: str) -> int:
    return st.get("pipeline", {}).get("counters", {}).get(stage, {}).get(name, 0)


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _agent_of(heron_pid: int) -> int | None:
    """The eBPF agent started by heron ``heron_pid`` (directly, or by its reader process)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if str(AGENT).encode() not in cmd:
            continue
        p: int | None = int(name)
        for _ in range(4):
            p = _ppid(p) if p else None
            if p == heron_pid:
                return int(name)
    return None


def _start_heron(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    status = tmp_path / "status.json"
    proc = subprocess.Popen([*HERON, "run", "--ebpf", "--status-file", str(status), "--port", str(_free_port()),
                             "-v", *args], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.monotonic() + 180  # compiling the probes takes seconds on a loaded machine
    while _status(status).get("state") != "running":
        if proc.poll() is not None:
            raise AssertionError("heron run --ebpf exited: " + proc.stderr.read())
        assert time.monotonic() < deadline, "heron run --ebpf did not start"
        time.sleep(0.2)
    return proc, status


def _probes_of_running_agent(heron_pid: int) -> tuple[int, set[int]]:
    agent = _agent_of(heron_pid)
    assert agent is not None, "no eBPF agent under heron"
    progs = bpfstat.programs_of(agent)
    assert progs, "the agent holds no BPF program"
    named = {p[0]: p[2] for p in bpfstat.loaded_programs() or []}
    assert {named.get(i, "") for i in progs} <= {"heron_write", "heron_write_ex", "heron_read", "heron_read_ex",
                                                  "heron_ret", "heron_close"}
    return agent, progs


def _assert_detached(agent: int, progs: set[int], timeout: float = 60.0) -> None:
    """The agent is gone and none of its programs is loaded any more (so no probe of ours is attached)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        loaded = {p[0] for p in bpfstat.loaded_programs() or []}
        if not os.path.exists(f"/proc/{agent}") and not (progs & loaded):
            return
        time.sleep(0.2)
    raise AssertionError(f"agent {agent} alive={os.path.exists(f'/proc/{agent}')}, programs still loaded: "
                         f"{sorted(progs & {p[0] for p in bpfstat.loaded_programs() or []})}")


def _curl(port: int, ca: Path, body: dict) -> tuple[int, str]:
    p = subprocess.Popen(["curl", "-sS", "-N", "--cacert", str(ca), f"https://127.0.0.1:{port}/v1/chat/completions",
                          "-H", "content-type: application/json", "-H", "authorization: Bearer sk-test-ebpf-curl",
                          "-d", json.dumps(body)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return p.pid, out


@pytest.mark.parametrize("workers, filtered", [(0, False), (2, True)], ids=["workers0-all", "workers2-filtered"])
def test_python_sdk_and_curl_over_tls(tmp_path, tls_mock, workers, filtered):
    port, ca = tls_mock["port"], tls_mock["ca"]
    client = subprocess.Popen([sys.executable, str(CLIENT), f"https://127.0.0.1:{port}/v1", str(ca), "--wait"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client_exe = os.path.realpath(f"/proc/{client.pid}/exe")
    client_comm = Path(f"/proc/{client.pid}/comm").read_text().strip()
    db = tmp_path / "ebpf.duckdb"
    sel = ["--ebpf-pid", str(client.pid), "--ebpf-comm", "curl"] if filtered else []
    heron, status = _start_heron(tmp_path, "--db", str(db), "--workers", str(workers), *sel)
    try:
        agent, progs = _probes_of_running_agent(heron.pid)
        out, err = client.communicate("go\n", timeout=120)
        assert client.returncode == 0, err
        python_ids = json.loads(out)["response_ids"]
        curl_pids = [
            _curl(port, ca, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi from curl"}]})[0],
            _curl(port, ca, {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
                             "messages": [{"role": "user", "content": "[scenario:thinking] stream from curl"}]})[0],
        ]
        want = N_PYTHON_CALLS + N_CURL_CALLS
        deadline = time.monotonic() + 90
        while _counter(_status(status), "store", "rows_written.calls") < want:
            assert heron.poll() is None, "heron exited: " + heron.stderr.read()
            assert time.monotonic() < deadline, f"calls not stored: {_status(status).get('pipeline')}"
            time.sleep(0.3)
    finally:
        heron.send_signal(signal.SIGINT)
        try:
            rc = heron.wait(60)
        except subprocess.TimeoutExpired:
            heron.kill()
            raise
    stderr = heron.stderr.read()
    assert rc == 0, stderr
    _assert_detached(agent, progs)

    import duckdb

    truth = {r["response_id"]: r for r in map(json.loads, tls_mock["truth"].read_text().splitlines())}
    con = duckdb.connect(str(db), read_only=True)
    cols = ["call_id", "response_id", "process_pid", "process_comm", "process_exe", "client_ip", "server", "host",
            "wire_api", "model", "model_requested", "status_code", "is_stream", "finish", "input_tokens",
            "output_tokens", "total_tokens", "cache_read_tokens", "tool_calls", "assistant_text", "turn_id", "ok"]
    rows = [dict(zip(cols, r)) for r in con.execute(f"SELECT {', '.join(cols)} FROM calls").fetchall()]
    ours = [r for r in rows if r["process_pid"] in {client.pid, *curl_pids}]
    assert len(ours) == want, [(r["process_pid"], r["process_comm"], r["response_id"]) for r in rows]
    if filtered:  # the in-kernel selection let nothing else through (the mock's server side included)
        assert len(rows) == want
    curl_exe = os.path.realpath(shutil.which("curl"))
    for r in ours:
        t = truth[r["response_id"]]  # every call matches a response the mock really sent
        if r["process_pid"] == client.pid:
            assert r["response_id"] in python_ids
            assert (r["process_comm"], r["process_exe"]) == (client_comm, client_exe)
        else:
            assert (r["process_comm"], r["process_exe"]) == ("curl", curl_exe)
        assert r["client_ip"] is None and r["server"] == r["host"] == f"127.0.0.1:{port}"  # no 5-tuple over eBPF
        assert (r["wire_api"], r["model"], r["model_requested"], r["status_code"], r["is_stream"]) == (
            t["api"], t["model"], t["model_requested"], t["status"], t["stream"])
        assert r["finish"] == t["finish"] and r["ok"] is True
        assert (r["assistant_text"] or None) == t["text"]
        if t["usage"] is not None:
            for k in ("input_tokens", "output_tokens", "total_tokens", "cache_read_tokens"):
                assert r[k] == t["usage"][k], (k, r, t["usage"])
        tools = [(c["name"], c["arguments"]) for c in json.loads(r["tool_calls"] or "[]")]
        assert tools == [(c["name"], c["arguments"]) for c in t["tool_calls"] or []]
    by_id = {r["response_id"]: r for r in ours}
    assert sorted(by_id) == sorted(python_ids + [r["response_id"] for r in ours if r["process_comm"] == "curl"])
    # one agent turn: the tool loop (a tool call, its result, the final answer); the single calls join none
    loop = [by_id[python_ids[2]], by_id[python_ids[3]]]
    assert loop[0]["turn_id"] is not None and loop[0]["turn_id"] == loop[1]["turn_id"]
    assert all(r["turn_id"] is None for r in ours if r not in loop)
    turn = con.execute("SELECT status, call_count, tool_call_count, process FROM turns WHERE turn_id = ?",
                       [loop[0]["turn_id"]]).fetchone()
    assert turn[:3] == ("complete", 2, 1)
    assert json.loads(turn[3])["pid"] == client.pid
    counters = json.loads(con.execute("SELECT counters FROM runs").fetchone()[0])
    con.close()
    assert counters["ebpf_events"] > 0 and counters.get("ebpf_events_lost", 0) == 0
    assert counters.get("ebpf_chunks_dropped", 0) == 0 and counters.get("ebpf_uprobes_attached", 0) == 0
    if filtered:
        assert counters.get("ebpf_server_flows_skipped", 0) == 0
    else:  # the mock's own libssl calls were seen, as the server side of each connection, and skipped
        assert counters["ebpf_server_flows_skipped"] >= 3


def test_sigkill_of_heron_leaves_no_probe(tmp_path, ebpf_ready):
    heron, _status_path = _start_heron(tmp_path, "--no-retention", "--workers", "2")
    try:
        agent, progs = _probes_of_running_agent(heron.pid)
    finally:
        heron.kill()  # SIGKILL: no cleanup code of heron runs
        heron.wait(30)
    _assert_detached(agent, progs)


def test_killed_agent_ends_the_source_and_heron_exits_cleanly(tmp_path, ebpf_ready):
    heron, _status_path = _start_heron(tmp_path, "--no-retention", "--workers", "0", "--exit-after-drain")
    try:
        agent, progs = _probes_of_running_agent(heron.pid)
        os.kill(agent, signal.SIGKILL)  # the kernel removes its probes; heron must notice and drain
        rc = heron.wait(60)
    finally:
        if heron.poll() is None:
            heron.kill()
            heron.wait(10)
    err = heron.stderr.read()
    assert rc == 0, err
    assert "eBPF: the agent exited (status -9)" in err
    _assert_detached(agent, progs)


BIG_CLIENT = """
import http.client, json, ssl, sys
port, ca, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=ca))
body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "big " + "x" * size}]})
conn.request("POST", "/v1/chat/completions", body=body, headers={"content-type": "application/json"})
r = conn.getresponse()
print(json.dumps({"status": r.status, "id": json.loads(r.read())["id"], "body_len": len(body)}))
"""


def test_large_write_is_split_and_the_uncopied_rest_is_a_counted_gap(tmp_path, tls_mock):
    """One SSL_write_ex of ~600 KB: 8 chunks of 32 KiB are copied, the rest is counted as dropped chunks and
    reaches the exchange as a truncated request (cut JSON: the engine keeps it as a damaged, non-LLM
    exchange); the response on the same connection is intact."""
    port, ca = tls_mock["port"], tls_mock["ca"]
    client = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline()\n" + BIG_CLIENT, str(port),
                               str(ca), "600000"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    db = tmp_path / "big.duckdb"
    heron, status = _start_heron(tmp_path, "--db", str(db), "--workers", "0", "--ebpf-pid", str(client.pid))
    try:
        out, err = client.communicate("go\n", timeout=120)
        assert client.returncode == 0, err
        sent = json.loads(out)
        deadline = time.monotonic() + 90
        while _counter(_status(status), "store", "rows_written.exchanges") < 1:
            assert heron.poll() is None, "heron exited: " + heron.stderr.read()
            assert time.monotonic() < deadline, f"exchange not stored: {_status(status).get('pipeline')}"
            time.sleep(0.3)
    finally:
        heron.send_signal(signal.SIGINT)
        heron.wait(60)
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    (state, damaged, damage, status_code, process_pid), = con.execute(
        "SELECT state, damaged, damage, status_code, process_pid FROM exchanges").fetchall()
    counters = json.loads(con.execute("SELECT counters FROM runs").fetchone()[0])
    con.close()
    assert (state, status_code, process_pid) == ("complete", 200, client.pid)
    assert damaged and damage == ["truncated"]
    # the body went out in one SSL_write_ex (the head separately): everything past 8 × 32 KiB was not copied
    cut = sent["body_len"] - 8 * 32768
    assert counters["ebpf_chunks_dropped"] == -(-cut // 32768)
    assert counters["tcp_gap_bytes"] == cut and counters.get("ebpf_events_lost", 0) == 0
