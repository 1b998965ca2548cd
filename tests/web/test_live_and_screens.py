"""The console on a live `heron run` (auto-refresh, /api/events read with a streaming fetch that sends the
bearer token), and full-page screenshots of every page in the dark theme.

Screenshots go to the test's temporary directory; with HERON_WEB_SCREENSHOTS=1 they are also copied to
screenshots/web-<page>.png (how the README's images are made)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.web.conftest import ROOT, Server

LIVE_CAPTURE = ROOT / "testdata" / "captures" / "errors_retries.pcap"


@pytest.fixture()
def live_server(tmp_path, web_unavailable):
    if web_unavailable:
        pytest.skip(web_unavailable)
    # paced replay (the capture spans ~22 s of packet time): the run stays live for ~45 s
    srv = Server(["run", "--pcap-file", str(LIVE_CAPTURE), "--no-retention", "--replay-speed", "0.5",
                  "--workers", "0"], token="live-token", log=tmp_path / "run.log")
    yield srv
    srv.stop()


def kpi_calls(page) -> int:
    return int(page.text("[data-kpi=calls] .kpi-value").replace(",", "") or 0)


def test_live_run_auto_refresh_and_event_stream(page, live_server):
    page.goto("about:blank")
    page.goto(live_server.base)
    page.call("eval", expr=f"sessionStorage.setItem('heron-token', '{live_server.token}')")
    page.goto("about:blank")
    page.goto(live_server.base + "#/overview")
    page.wait("[data-kpi=calls] .kpi-value")
    # a live run turns auto-refresh on and follows /api/events (fetch + Authorization header)
    assert page.call("attr", selector="#live-toggle", name="aria-pressed") == "true"
    page.wait_fn("document.querySelector('#live-toggle').dataset.stream === 'open'")
    assert page.text("#mode-badge") == "live"
    first = kpi_calls(page)
    page.wait_fn(f"Number(document.querySelector('[data-kpi=calls] .kpi-value')?.textContent.replace(/,/g, '')) > {first}",
                 timeout_ms=30000)
    page.wait("#health-pill .pill")
    # turning auto-refresh off stops the updates
    page.click("#live-toggle")
    assert page.call("attr", selector="#live-toggle", name="aria-pressed") == "false"
    time.sleep(1)  # a refresh already on the wire may land
    frozen = kpi_calls(page)
    time.sleep(6)
    assert kpi_calls(page) == frozen
    page.problems()  # the first load before the token was stored answered 401 (expected)


SHOTS = [
    ("overview", "overview", ".chart-grid .chart svg"),
    ("turns", "turns", "#turns-table tbody tr[data-href]"),
    ("turn", None, ".call-view .conversation .msg"),
    ("sessions", "sessions", "#sessions-table tbody tr[data-href]"),
    ("session", None, "#session-turns tbody tr"),
    ("calls", "calls", "#calls-table tbody tr[data-href]"),
    ("call", None, ".call-view .waterfall"),
    ("insights", "insights", "#insights-table tbody tr"),
    ("services", "services", "svg.topology g.node"),
    ("pipeline", "pipeline", "#pipeline-pill .pill"),
]


def test_screenshots_every_page(page, server, tmp_path):
    turn = server.get("api/turns", sort="-call_count", limit=1)["items"][0]
    detail = server.get(f"api/turns/{turn['turn_id']}")
    last = max(detail["calls"], key=lambda c: c["request_start"])["call_id"]
    session = server.get("api/sessions", sort="-turn_count", limit=1)["items"][0]["session_id"]
    call = server.get("api/calls", sort="-output_tokens", limit=1)["items"][0]["call_id"]
    routes = {
        "turn": f"turns/{turn['turn_id']}?call={last}&tab=conversation",
        "session": f"sessions/{session}",
        "call": f"calls/{call}",
    }
    copy = os.environ.get("HERON_WEB_SCREENSHOTS") == "1"
    page.goto("about:blank")
    page.goto(server.base)
    page.call("eval", expr="localStorage.setItem('heron-theme', 'dark'); sessionStorage.clear()")
    for name, route, ready in SHOTS:
        page.goto("about:blank")
        page.goto(server.base + "#/" + (route or routes[name]))
        page.wait(ready)
        page.wait_fn("document.querySelector('#main')?.getAttribute('aria-busy') === 'false' && "
                     "!document.querySelector('#main .loading')")
        assert page.call("eval", expr="document.documentElement.dataset.theme") == "dark"
        time.sleep(0.3)  # charts draw on the next animation frame
        out = tmp_path / f"web-{name}.png"
        page.screenshot(out)
        assert out.stat().st_size > 10_000
        if copy:
            dest = ROOT / "screenshots" / out.name
            dest.parent.mkdir(exist_ok=True)
            shutil.copyfile(out, dest)
    assert len(list(Path(tmp_path).glob("web-*.png"))) == len(SHOTS)
