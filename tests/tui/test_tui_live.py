"""Live mode of the TUI: the engine's pipeline in the app (``PipelineRun``), in-progress turns and calls
merged into the lists (``overlay``), follow mode, the live status bar and pipeline view.

A paced replay of the demo capture stands in for a live source (same pipeline, same event-time
assembly; ``--replay-speed`` only paces the wall clock), so turns are seen open and then closed while
the replay runs. The loopback test captures real SDK calls on ``lo`` (root and pcapy-ng needed). Waits
are for conditions, with generous deadlines; nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict

import pytest

from heron_core.capture.sources import SourceSpec
from heron_core.config import Config
from heron_core.query.lists import CALLS, HIDDEN_HOPS, TURNS, ListQuery
from heron_core.store.db import open_store
from heron_tui.app import AppOptions, HeronApp
from heron_tui.live import PipelineRun
from heron_tui.widgets.bars import StatusBar
from tests.tui.tui_helpers import DEMO, ROOT

DEADLINE_S = 120.0


def replay(speed: float, workers: int = 0, store=None) -> PipelineRun:
    store = store or open_store(None)
    run = PipelineRun(store, Config(), SourceSpec("files", paths=[str(DEMO)], source_ids=["demo"],
                                                  replay_speed=speed), workers)
    run.open()
    return run


def status_text(app) -> str:
    return str(app.screen_main.query_one(StatusBar).render())


async def until(cond, what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


def loaded_rows(table) -> list[tuple]:
    return [r for r in (table.row_at(i) for i in range(table.row_count)) if r is not None]


async def test_replay_shows_in_progress_turns_that_then_close():
    run = replay(speed=12)
    store = run.store
    app = HeronApp(store, run, AppOptions(source_label="demo (replay)", metrics=False, poll_s=0.1))
    status_col = 2 + [c.key for c in TURNS.columns].index("status")
    seen: dict[str, list[str]] = defaultdict(list)
    rows_while_running = 0
    async with app.run_test(size=(130, 40)) as pilot:
        view = app.list_view("turns")
        while not run.done:
            await asyncio.sleep(0.1)
            if not view.table.loaded:
                continue
            rows = loaded_rows(view.table)
            if rows and not run.done:
                rows_while_running = max(rows_while_running, len(rows))
            for r in rows:
                if not seen[r[0]] or seen[r[0]][-1] != r[status_col]:
                    seen[r[0]].append(r[status_col])
            with app.reader.read(("turns",)) as cur:  # what the list is made of: never a duplicate
                ids = [r[0] for r in ListQuery(TURNS).fetch(cur, 0, 10_000)]
            assert len(ids) == len(set(ids)), "a turn is listed twice"
        await app.wait_idle()
        await pilot.pause(0.3)
        assert rows_while_running > 0, "turns appear while the replay runs"
        closed = [tid for tid, st in seen.items() if st[0] == "in_progress" and st[-1] != "in_progress"]
        assert closed, f"no turn was seen in progress and then closed: {dict(seen)}"
        final = {r[0]: r[status_col] for r in loaded_rows(view.table)}
        stored = dict(store.conn.cursor().execute("SELECT turn_id, status FROM turns").fetchall())
        assert final == stored  # every row the list ends with is the stored record, none left in progress
        assert all(tid in stored for tid in closed)  # the in-progress row was replaced by the stored one
        assert "in_progress" not in final.values()
        assert "replayed" in status_text(app)
    run.wait(30)
    store.close()


async def test_follow_mode_keeps_the_newest_row_and_pauses_off_it():
    run = replay(speed=5)
    store = run.store
    app = HeronApp(store, run, AppOptions(source_label="demo (replay)", metrics=False, poll_s=0.1))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("3")
        table = app.list_view().table
        await until(lambda: table.row_count >= 5, "first calls")
        await pilot.press("f")
        n0 = table.row_count
        blanks = []

        def arrived() -> bool:  # the row under the cursor is drawn from data at every look, never "…"
            if table.current_row is None:
                blanks.append(table.row_count)
            return table.row_count >= n0 + 3

        await until(lambda: table.current_row is not None, "newest row loaded")
        await until(arrived, "calls arriving while following")
        assert not blanks, f"the followed row was a placeholder at counts {blanks}"
        assert table.cursor == table.row_count - 1
        assert "follow" in status_text(app) and "paused" not in status_text(app)

        await pilot.press("up", "up")  # off the newest row: following pauses, the cursor keeps its row
        await until(lambda: table.current_row is not None, "row under the cursor")
        rid, n1 = table.current_id, table.row_count
        assert "follow (paused)" in status_text(app)
        await until(lambda: table.row_count >= n1 + 3, "calls arriving while paused")
        await until(lambda: table.current_id == rid, "cursor back on its row after the refresh")
        assert table.cursor < table.row_count - 1

        await pilot.press("end")  # back on the newest row: following resumes
        n2 = table.row_count
        assert "paused" not in status_text(app)
        await until(lambda: table.row_count >= n2 + 2, "calls arriving after resuming")
        assert table.cursor == table.row_count - 1

        await pilot.press("S")  # newest first: the newest row is the top one, and follow stays on it
        await until(lambda: not app.list_view().busy and table.newest_first, "reversed order")
        await pilot.press("home")
        n3 = table.row_count
        await until(lambda: table.row_count >= n3 + 2 or run.done, "calls arriving newest first")
        await until(lambda: table.current_row is not None, "top row loaded")
        assert table.cursor == 0
        newest = store.conn.cursor().execute(
            f"SELECT max(request_start) FROM calls WHERE {HIDDEN_HOPS}").fetchone()[0]
        start_col = 2 + [c.key for c in CALLS.columns].index("start")
        assert table.current_row[start_col] >= newest - 60  # the top row is among the newest
        await pilot.press("f")
        assert "follow" not in status_text(app)
    run.stop(30)
    store.close()


async def test_in_flight_and_unstored_calls_are_listed_once_and_never_blink():
    """The calls view during a replay: each call the engine has seen is listed exactly once — in flight
    (``finish`` in_progress), finished but waiting for the folding decision, or stored — and once listed
    it stays listed (only folded proxy legs, hidden by design, leave)."""
    run = replay(speed=12)
    store = run.store
    finish_col = 2 + [c.key for c in CALLS.columns].index("finish")
    listed: set[str] = set()
    in_flight_seen: set[str] = set()
    app = HeronApp(store, run, AppOptions(source_label="demo (replay)", metrics=False, poll_s=0.1))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("3")
        gone: set[str] = set()
        while not run.done:
            await asyncio.sleep(0.05)
            with app.reader.read(("calls",)) as cur:
                rows = ListQuery(CALLS).fetch(cur, 0, 10_000)
            ids = [r[0] for r in rows]
            assert len(ids) == len(set(ids)), "a call is listed twice"
            in_flight_seen |= {r[0] for r in rows if r[finish_col] == "in_progress"}
            gone |= listed - set(ids)
            listed |= set(ids)
        await app.wait_idle()
        hidden = {r[0] for r in store.conn.cursor().execute(
            f"SELECT call_id FROM calls WHERE NOT ({HIDDEN_HOPS})").fetchall()}
        assert gone <= hidden, f"calls vanished from the list: {gone - hidden}"
        stored = {r[0] for r in store.conn.cursor().execute(f"SELECT call_id FROM calls WHERE {HIDDEN_HOPS}")
                  .fetchall()}
        assert stored <= listed and app.list_view().count == len(stored)
        assert in_flight_seen, "no call was seen in flight"
        assert in_flight_seen <= stored | hidden  # each in-flight row became a stored call
    run.wait(30)
    store.close()


async def test_workers_pipeline_for_files_shows_progress_and_same_rows(demo_store):
    store = open_store(None)
    run = PipelineRun(store, Config(), SourceSpec("files", paths=[str(DEMO)], source_ids=["demo"]), 1)
    run.open()
    app = HeronApp(store, run, AppOptions(source_label="demo.pcap", metrics=True, poll_s=0.1))
    async with app.run_test(size=(130, 40)) as pilot:
        await app.wait_idle(DEADLINE_S)
        await pilot.pause(0.2)
        assert run.status == "drained" and "loaded" in status_text(app)
        for name in ("turns", "calls", "sessions", "insights"):
            a = store.conn.cursor().execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            b = demo_store.conn.cursor().execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            assert a == b, name
        await pilot.press("6")
        await app.wait_idle()
        text = app.pipeline.text(160)
        assert "1 decode worker" in text and "Decode workers" in text and "demo" in text and "ok" in text
        assert "packets_read" in text
    store.close()


async def test_metrics_follow_the_filter_as_the_current_list_reads_it(demo_store):
    app = HeronApp(demo_store, None, AppOptions(source_label="demo", metrics=True))
    async with app.run_test(size=(130, 40)) as pilot:
        await app.wait_idle()
        await pilot.press("slash", *"status == incomplete", "enter")
        await app.wait_idle()
        await pilot.pause(0.2)
        cur = demo_store.conn.cursor()
        want = cur.execute(f"SELECT count(*) FROM calls WHERE {HIDDEN_HOPS} AND call_id IN "
                           f"(SELECT unnest(call_ids) FROM turns WHERE status = 'incomplete')").fetchone()[0]
        assert 0 < want < cur.execute(f"SELECT count(*) FROM calls WHERE {HIDDEN_HOPS}").fetchone()[0]
        assert f"filter (turns) · {want} calls" in app.metrics.border_title
        await pilot.press("3")  # on calls, the same text is not valid (status is the HTTP code there)…
        await app.wait_idle()
        await pilot.pause(0.2)
        await pilot.press("slash", "ctrl+u", *"status >= 500", "enter")
        await app.wait_idle()
        await pilot.pause(0.2)
        n = cur.execute(f"SELECT count(*) FROM calls WHERE {HIDDEN_HOPS} AND status_code >= 500").fetchone()[0]
        assert f"metrics · filter · {n} calls" in app.metrics.border_title


@pytest.mark.parametrize("workers", [0, 1])
def test_plain_replay_streams_the_same_calls_as_a_load(workers):
    """Without a terminal, a replay prints calls as they are stored: the same lines as loading the file."""
    code = "from heron_tui.cli import tui_main; tui_main()"
    args = [sys.executable, "-c", code, str(DEMO), "--workers", str(workers)]
    env = dict(os.environ, TZ="UTC")
    loaded = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)
    streamed = subprocess.run(args + ["--replay-speed", "40"], capture_output=True, text=True, cwd=ROOT, env=env,
                              timeout=300, check=False)
    assert loaded.returncode == 0 and streamed.returncode == 0, loaded.stderr + streamed.stderr
    a, b = loaded.stdout.splitlines(), streamed.stdout.splitlines()
    assert a[0] == b[0] and len(a) > 100
    assert sorted(a[1:]) == sorted(b[1:])


async def test_quit_with_a_database_drains_and_records_the_run(tmp_path):
    db = tmp_path / "live.duckdb"
    store = open_store(str(db))
    run = replay(speed=2, store=store)
    app = HeronApp(store, run, AppOptions(source_label="demo", metrics=False, poll_s=0.1))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(lambda: app.counts.get("turns", 0) > 0, "turns while replaying")
        await pilot.press("q")
    assert run.wait(DEADLINE_S) and run.status == "stopped"
    cur = store.conn.cursor()
    assert cur.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    assert cur.execute("SELECT count(*) FROM turns").fetchone()[0] > 0
    assert cur.execute("SELECT count(*) FROM turns WHERE status = 'in_progress'").fetchone()[0] == 0
    store.close()


# --- real capture on loopback ----------------------------------------------------------------------------


@pytest.fixture
def mock_llm():
    from tests.parallel.helpers import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "testdata.mock_llm", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import socket

        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.time() < deadline, "mock LLM did not start"
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def sdk_calls(port: int, n: int) -> None:
    import openai

    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test-tui-live", max_retries=0)
    for i in range(n):
        if i % 2:
            text = "".join(ch.choices[0].delta.content or "" for ch in client.chat.completions.create(
                model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": f"tui live {i}"}])
                if ch.choices)
        else:
            text = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"tui live {i}"}]).choices[0].message.content
        assert text


@pytest.mark.parametrize("workers", [0, 1])
async def test_loopback_capture_shows_sdk_calls_while_running(mock_llm, workers):
    import os

    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        pytest.skip("live capture needs root or CAP_NET_RAW")
    pytest.importorskip("openai", reason="the official openai SDK makes the calls")
    pytest.importorskip("pcapy", reason="pcapy-ng (the 'live' extra) is not installed")
    port, n = mock_llm, 4
    store = open_store(None)
    run = PipelineRun(store, Config(), SourceSpec("live", iface="lo", bpf_filter=f"tcp port {port}"), workers)
    run.open()
    assert run.status == "running"
    app = HeronApp(store, run, AppOptions(source_label=run.describe(), metrics=True, poll_s=0.2))
    async with app.run_test(size=(130, 40)) as pilot:
        await pilot.press("3")
        client = threading.Thread(target=sdk_calls, args=(port, n))
        client.start()
        await until(lambda: (app.list_view().count or 0) >= n, f"{n} calls listed while capturing")
        client.join(30)
        assert run.status == "running"  # still capturing: the rows came live
        await until(lambda: "pkt/s" in status_text(app) and f"│ {n} calls │ {n} calls" in status_text(app),
                    "packet rate and the calls in the status bar")
        status = status_text(app)
        # drops are the kernel's (ring, interface) and overload: other traffic on a shared machine may cause some
        assert "● live" in status and re.search(r"drops \d+", status) and "-i lo" in status
        await until(lambda: store.conn.cursor().execute("SELECT count(*) FROM calls").fetchone()[0] >= n,
                    "calls stored")
        models = {r[0] for r in store.conn.cursor().execute("SELECT model_requested FROM calls").fetchall()}
        assert models == {"gpt-4o-mini"}
        await pilot.press("6")
        await app.wait_idle()
        # with --workers the reader's counters arrive every 2 s (its statistics period)
        await until(lambda: "packets_read" in app.pipeline.text(160), "reader counters in the pipeline view")
        text = app.pipeline.text(160)
        assert "-i lo" in text and "capture running" in text and "Event time" in text and "health" in text
    assert run.wait(60) and run.status == "stopped"
    store.close()


def test_plain_live_capture_prints_calls_as_they_come_and_drains_on_sigint(mock_llm):
    """``heron-tui -i lo | …``: without a terminal, each call is printed once stored, while capturing;
    SIGINT drains (the calls in flight are finished and printed) and exits 0."""
    import signal

    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        pytest.skip("live capture needs root or CAP_NET_RAW")
    pytest.importorskip("openai", reason="the official openai SDK makes the calls")
    pytest.importorskip("pcapy", reason="pcapy-ng (the 'live' extra) is not installed")
    port, n = mock_llm, 3
    proc = subprocess.Popen([sys.executable, "-c", "from heron_tui.cli import tui_main; tui_main()", "-i", "lo",
                             "--bpf-filter", f"tcp port {port}", "--workers", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, TZ="UTC"))
    try:
        header = proc.stdout.readline()  # printed once the capture is open
        assert header.split()[:3] == ["time", "source", "wire"], proc.stderr.read()
        sdk_calls(port, n)
        lines = [proc.stdout.readline() for _ in range(n)]  # arrive while heron-tui still runs
        assert proc.poll() is None
        assert all(" lo " in f" {line} " and "openai-chat" in line and "gpt-4o-mini" in line for line in lines), lines
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and rest.strip() == "", (lines, rest)  # every call was printed while capturing


async def test_zmq_probe_batches_show_up_in_the_lists():
    """``heron-tui --zmq``: probe batches (the capture-and-http.md §2.4 format) pushed to the app's socket;
    the calls are listed under the probe's id while it runs, as many as ingesting the capture gives."""
    zmq = pytest.importorskip("zmq", reason="pyzmq (the 'live' extra) is not installed")
    import uuid
    from collections import Counter

    from heron_core.capture.pcapfile import read_frames
    from heron_core.capture.zmq_source import encode_batch
    from tests.parallel.helpers import free_port
    from tests.tui.tui_helpers import CAPTURES, ingest

    capture = CAPTURES / "sdk_openai.pcap"
    want = ingest([capture], derive=False).conn.cursor().execute(
        f"SELECT count(*) FROM calls WHERE {HIDDEN_HOPS}").fetchone()[0]
    probe = uuid.UUID("5f0e3c1a-7b2d-4e6f-8a9b-0c1d2e3f4a5b")
    frames = [(ts, data, orig) for ts, _lt, data, orig in read_frames(str(capture), Counter())]
    port = free_port()
    store = open_store(None)
    run = PipelineRun(store, Config(), SourceSpec("zmq", endpoint=f"tcp://127.0.0.1:{port}"), 0)
    run.open()
    app = HeronApp(store, run, AppOptions(source_label=run.describe(), metrics=False, poll_s=0.1))
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    try:
        async with app.run_test(size=(130, 36)) as pilot:
            await pilot.press("3")
            for i in range(0, len(frames), 50):
                push.send(encode_batch(probe.bytes, frames[i:i + 50]))
            await until(lambda: (app.list_view().count or 0) >= want, f"{want} calls from the probe")
            assert run.status == "running"
            source_col = 2 + [c.key for c in CALLS.columns].index("source")
            rows = loaded_rows(app.list_view().table)
            assert rows and {r[source_col] for r in rows} == {str(probe)}
            assert "--zmq tcp://127.0.0.1" in status_text(app) and "● live" in status_text(app)
    finally:
        push.close(0)
        ctx.term()
    assert run.wait(60)
    assert store.conn.cursor().execute(f"SELECT count(*) FROM calls WHERE {HIDDEN_HOPS}").fetchone()[0] == want
    store.close()


async def test_an_in_progress_turn_opens_with_its_calls():
    """Enter on an in-progress turn: the detail screen reads through the live overlay (the turn as it
    is so far, its calls already stored)."""
    from heron_tui.screens.turn_detail import TurnDetailScreen

    run = replay(speed=4)
    store = run.store
    keys = [c.key for c in TURNS.columns]
    status_col, calls_col = 2 + keys.index("status"), 2 + keys.index("calls")
    app = HeronApp(store, run, AppOptions(source_label="demo (replay)", metrics=False, poll_s=0.1))
    async with app.run_test(size=(130, 36)) as pilot:
        table = app.list_view("turns").table

        def open_row() -> int | None:
            return next((i for i in range(table.row_count) if (r := table.row_at(i)) is not None
                         and r[status_col] == "in_progress" and (r[calls_col] or 0) >= 1), None)

        await until(lambda: open_row() is not None, "an in-progress turn with a call")
        table.move_cursor(open_row())
        tid = table.current_id
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, TurnDetailScreen), "the turn detail screen")
        detail = app.screen.detail
        assert detail is not None and detail["turn"]["turn_id"] == tid
        assert detail["turn"]["status"] == "in_progress" and detail["calls"]
        assert {c["call_id"] for c in detail["calls"]} >= set(detail["turn"]["call_ids"])
        await pilot.press("escape")
        assert not isinstance(app.screen, TurnDetailScreen)
    run.stop(30)
    store.close()
