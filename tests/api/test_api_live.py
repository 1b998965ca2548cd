"""Live runs (interfaces.md §7.1–7.2): in-progress turns first on page one, in-flight calls, the last-hour
default range, active sessions, run-mode health and pipeline, and the /api/events SSE stream (over a real
loopback server, read with a streaming client that sends the bearer token)."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from heron_core.export.calls import CALL_EXPORT_FIELDS
from heron_core.export.turns import TURN_EXPORT_FIELDS
from heron_core.messages import CallStarted
from heron_tui.api import create_app
from heron_tui.api.server import bind, start_background, url_of
from tests.api.conftest import CAPTURES, TOKEN, FakeEngine, ingest


@pytest.fixture()
def live():
    store = ingest([p for p in CAPTURES if p.stem == "sdk_anthropic"])
    wm = store.conn.execute("SELECT max(response_end) FROM calls").fetchone()[0] + 5.0
    engine = FakeEngine(wm)
    some = store.conn.execute("SELECT call_id, session_id FROM calls ORDER BY request_start LIMIT 1").fetchone()
    engine.assembler.turns = [{
        "turn_id": "live-turn", "session_id": some[1] or "live-session", "source_id": "live0",
        "agent_kind": "generic", "status": "in_progress", "start": wm - 2.0, "end": wm - 1.0,
        "call_ids": [some[0]], "call_count": 1, "models": ["claude-x"], "insight_count": 0,
    }]
    engine.assembler.flight = [CallStarted("live0", "in-flight-1", int((wm - 1.0) * 1e6), "anthropic", None)]
    yield store, engine, wm, TestClient(create_app(store, engine=engine, read_only=False))
    store.close()


def test_in_progress_turns_first_on_page_one(live):
    _store, _engine, _wm, c = live
    first = c.get("/api/turns", params={"limit": 2, "count": "true"}).json()
    assert first["items"][0]["turn_id"] == "live-turn"
    assert tuple(first["items"][0]) == TURN_EXPORT_FIELDS
    assert first["items"][0]["status"] == "in_progress" and first["items"][0]["tool_names"] == []
    stored = c.get("/api/turns", params={"limit": 1000, "status": "complete,incomplete"}).json()["items"]
    assert first["total"] == len(stored) + 1
    rest = c.get("/api/turns", params={"limit": 2, "count": "true", "cursor": first["next_cursor"]}).json()
    assert "live-turn" not in {t["turn_id"] for t in rest["items"]}
    only = c.get("/api/turns", params={"status": "in_progress"}).json()["items"]
    assert [t["turn_id"] for t in only] == ["live-turn"]
    none = c.get("/api/turns", params={"status": "complete"}).json()["items"]
    assert "live-turn" not in {t["turn_id"] for t in none}
    d = c.get("/api/turns/live-turn").json()
    assert d["turn"]["status"] == "in_progress" and len(d["calls"]) == 1


def test_in_flight_calls(live):
    _store, _engine, wm, c = live
    plain = c.get("/api/calls").json()["items"]
    assert "in-flight-1" not in {x["call_id"] for x in plain}
    items = c.get("/api/calls", params={"in_flight": "true"}).json()["items"]
    assert items[0]["call_id"] == "in-flight-1" and tuple(items[0]) == CALL_EXPORT_FIELDS
    assert items[0]["request_start"] == pytest.approx(wm - 1.0) and items[0]["response_end"] is None
    assert c.get("/api/calls/in-flight-1").json()["in_flight"] is True
    other = c.get("/api/calls", params={"in_flight": "true", "wire_api": "gemini"}).json()["items"]
    assert "in-flight-1" not in {x["call_id"] for x in other}


def test_live_default_range_is_the_last_hour(live):
    store, _engine, wm, _c = live
    later = FakeEngine(wm + 7200)
    c = TestClient(create_app(store, engine=later))
    assert c.get("/api/calls").json()["items"] == []
    assert len(c.get("/api/calls", params={"since": 0}).json()["items"]) > 0
    later.pipeline.drained = {"live0"}  # drained: all data again
    assert len(c.get("/api/calls").json()["items"]) > 0


def test_sessions_active_while_live(live):
    _store, _engine, _wm, c = live
    sessions = c.get("/api/sessions").json()["items"]
    assert sessions and all(s["state"] == "active" for s in sessions)
    assert c.get("/api/sessions", params={"status": "idle"}).json()["items"] == []


def test_run_mode_health_pipeline_and_metrics(live):
    _store, engine, wm, c = live
    h = c.get("/api/health").json()
    assert h["mode"] == "run" and h["read_only"] is False
    (src,) = h["sources"]
    assert src["source_id"] == "live0" and src["kind"] == "interface" and src["state"] == "running"
    assert src["watermark"] == pytest.approx(wm) and src["lag_s"] >= 0
    n = engine.snapshots
    p = c.get("/api/pipeline").json()
    assert engine.snapshots == n + 1 and p["counters"]
    s = c.get("/api/metrics/summary", params={"since": wm - 2, "until": wm}).json()
    assert s["active_overlapping"] >= 1  # the in-flight call counts as active up to the watermark
    ts = c.get("/api/metrics/timeseries", params={"window": "10s"}).json()
    assert ts["partial_from"] is not None


class SseReader:
    """Reads SSE events from one streaming response across several waits."""

    def __init__(self, resp: httpx.Response) -> None:
        self.chunks = resp.iter_text()
        self.buf = ""

    def until(self, done, timeout_s: float = 15.0) -> list[tuple[str, object]]:
        """Events until ``done(events)`` is true (events of this wait only)."""
        events: list[tuple[str, object]] = []
        deadline = time.monotonic() + timeout_s
        while not done(events):
            assert time.monotonic() < deadline, f"events so far: {[e for e, _ in events]}"
            self.buf += next(self.chunks)
            while "\n\n" in self.buf:
                block, self.buf = self.buf.split("\n\n", 1)
                fields = dict(line.split(": ", 1) for line in block.splitlines()
                              if ": " in line and not line.startswith(":"))
                if "event" in fields:
                    events.append((fields["event"], orjson.loads(fields["data"])))
        return events


def test_events_stream(live):
    store, engine, _wm, _c = live
    sock = bind("127.0.0.1", 0)
    server = start_background(create_app(store, engine=engine, token=TOKEN), sock)
    base = url_of(sock)
    try:
        with httpx.Client(timeout=20) as http:
            assert http.get(base + "/api/events").status_code == 401
            with http.stream("GET", base + "/api/events", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                sse = SseReader(r)
                evs = sse.until(lambda es: any(e == "pipeline" for e, _ in es))
                first_turns = [d for e, d in evs if e == "turn"]
                assert [t["turn_id"] for t in first_turns] == ["live-turn"]  # the open turn, once
                before = store.conn.execute("SELECT count(*) FROM calls").fetchone()[0]
                ingest([p for p in CAPTURES if p.stem == "sdk_openai"], store)
                after = store.conn.execute("SELECT count(*) FROM calls").fetchone()[0]
                engine.assembler.turns[0] = {**engine.assembler.turns[0], "call_count": 2}
                evs = sse.until(lambda es: sum(e == "call" for e, _ in es) >= after - before
                                and any(e == "turn" and d["source_id"] == "sdk_openai" for e, d in es)
                                and any(e == "turn" and d["turn_id"] == "live-turn" for e, d in es))
                calls = [d for e, d in evs if e == "call"]
                assert all(tuple(d) == CALL_EXPORT_FIELDS for d in calls)
                assert {d["source_id"] for d in calls} == {"sdk_openai"}
                assert len({d["call_id"] for d in calls}) == after - before
                turns = [d for e, d in evs if e == "turn"]
                assert any(t["turn_id"] == "live-turn" and t["call_count"] == 2 for t in turns)
                assert any(t["source_id"] == "sdk_openai" for t in turns)  # finalized turns of the ingest
    finally:
        server.stop()


def test_events_need_a_live_run(client):
    r = client.get("/api/events")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_reads_racing_the_engine_thread_are_retried(live):
    """The engine thread mutates the assembler while the API reads it: a read that trips over a change is
    retried instead of failing the request."""
    _store, engine, _wm, c = live
    real = engine.assembler.open_turns
    fails = {"n": 2}

    def flaky():
        if fails["n"]:
            fails["n"] -= 1
            raise RuntimeError("dictionary changed size during iteration")
        return real()

    engine.assembler.open_turns = flaky
    assert c.get("/api/turns").json()["items"][0]["turn_id"] == "live-turn"
    fails["n"] = 10  # never settles: the live part is left out, the stored turns still answer
    r = c.get("/api/turns")
    assert r.status_code == 200 and "live-turn" not in {t["turn_id"] for t in r.json()["items"]}
