"""The web console in a real headless Chromium against `heron serve` over testdata/captures/*.pcap.

Every test ends with no console error, page error or failed request (the `page` fixture checks);
tests that provoke a 401 or 404 on purpose take those messages themselves."""

from __future__ import annotations

import re

from tests.web.browser import Browser


def open_page(page: Browser, server, route: str, ready: str) -> None:
    """Load the console fresh at ``#/route`` and wait for ``ready``."""
    page.goto("about:blank")
    page.goto(server.base + "#/" + route)
    page.wait(ready)
    page.wait_fn("document.querySelector('#main')?.getAttribute('aria-busy') === 'false'")


def table_rows(page: Browser, table_id: str) -> int:
    return page.count(f"#{table_id} tbody tr[data-href], #{table_id} tbody tr.expandable")


def test_overview_kpis_charts_agents(page, server):
    summary = server.get("api/metrics/summary")
    open_page(page, server, "overview", ".kpi")
    calls_kpi = page.text("[data-kpi=calls] .kpi-value")
    assert calls_kpi.replace(",", "") == str(summary["calls"])
    assert summary["calls"] > 0
    for key in ("error_rate", "ttft_p50", "ttft_p95", "e2e_p95", "output_tps", "cache_hit_ratio", "cost"):
        value = page.text(f"[data-kpi={key}] .kpi-value")
        assert re.search(r"\d", value), (key, value)
    assert page.text("[data-kpi=error_rate] .kpi-value") == f"{summary['error_rate'] * 100:.1f}%"
    assert page.count(".chart-grid .chart svg") >= 6
    agents = server.get("api/metrics/agents")
    assert page.count("#agents-table tbody tr") == len(agents["rows"]) > 0
    assert page.count("#models-table tbody tr") > 0


def test_turns_list_sort_and_paging_counts(page, server):
    total = server.get("api/turns", count="true", limit=1)["total"]
    open_page(page, server, "turns", "#turns-table tbody tr[data-href]")
    assert table_rows(page, "turns-table") == min(total, 50) > 0
    assert f"of {total}" in page.text("#turns-table .table-status")
    # sort by calls, descending: the first row is a turn with the most calls
    page.click("#turns-table th.sortable:has-text('Calls') button")
    page.wait_fn("location.hash.includes('sort=-call_count')")
    page.wait("#turns-table[data-rows] tbody tr[data-href]")
    top = server.get("api/turns", sort="-call_count", limit=1)["items"][0]
    page.wait_fn(f"document.querySelector('#turns-table tbody tr')?.dataset.href?.includes('{top['turn_id']}')")


def test_turn_opens_to_timeline_and_call_bodies(page, server):
    turn = server.get("api/turns", sort="-call_count", limit=1)["items"][0]
    open_page(page, server, "turns", "#turns-table tbody tr[data-href]")
    page.click(f"#turns-table tbody tr[data-href*='{turn['turn_id']}']")
    page.wait(".timeline .tl-row[data-call-id]")
    assert turn["turn_id"] in page.call("url")
    detail = server.get(f"api/turns/{turn['turn_id']}")
    assert page.count(".timeline .tl-row[data-call-id]") == len(detail["calls"]) == turn["call_count"]
    assert page.count(".timeline .tl-bar") == len(detail["calls"])
    assert page.count(".timeline .tl-ft") >= 1  # first-token marks
    # the anchor call is selected and its view loaded; pick the last call instead
    page.wait(".call-view")
    last = max(detail["calls"], key=lambda c: c["request_start"])
    page.click(f".tl-row[data-call-id='{last['call_id']}']")
    page.wait(f".call-view[data-call-id='{last['call_id']}']")
    assert page.call("attr", selector=f".tl-row[data-call-id='{last['call_id']}']", name="aria-selected") == "true"
    assert f"call={last['call_id']}" in page.call("url")
    page.click(".call-view .tab[data-tab=conversation]")
    page.wait(".conversation .msg-user")
    assert page.count(".conversation .msg-response") >= 1
    page.click(".call-view .tab[data-tab=request]")
    page.wait(".tab-panel[data-tab=request] pre.json")
    assert "messages" in page.text(".tab-panel[data-tab=request] pre.json") or "contents" in page.text(
        ".tab-panel[data-tab=request] pre.json") or "input" in page.text(".tab-panel[data-tab=request] pre.json")
    page.click(".call-view .tab[data-tab=response]")
    page.wait(".tab-panel[data-tab=response] pre")
    page.click(".call-view .tab[data-tab=headers]")
    page.wait(".tab-panel[data-tab=headers] pre.headers")
    heads = page.texts(".tab-panel[data-tab=headers] pre.headers")
    assert heads[0].startswith("POST ") and "HTTP/1.1" in heads[1]
    assert re.search(r"(?im)^content-type: ", heads[0])


def test_error_and_retry_calls_are_coloured(page, server):
    failed = server.get("api/calls", ok="false", limit=1)["items"]
    assert failed, "the captures contain failed calls"
    open_page(page, server, "calls?ok=false", "#calls-table tbody tr[data-href]")
    assert page.count("#calls-table tbody tr.row-bad") == table_rows(page, "calls-table") > 0
    assert page.call("eval", expr="document.querySelector('#f-ok').value") == "false"
    turns = [t for t in server.get("api/turns", limit=1000, include_partial="true")["items"]
             if any(not c["ok"] for c in server.get(f"api/turns/{t['turn_id']}")["calls"])]
    if turns:
        open_page(page, server, f"turns/{turns[0]['turn_id']}", ".timeline .tl-row[data-call-id]")
        assert page.count(".timeline .tl-bar.tl-error, .timeline .tl-bar.tl-aborted") >= 1


def test_call_deep_link_with_tab(page, server):
    call = server.get("api/calls", sort="-output_tokens", limit=1)["items"][0]
    open_page(page, server, f"calls/{call['call_id']}?tab=headers", ".call-view")
    page.wait(".tab-panel[data-tab=headers] pre.headers")
    assert page.call("attr", selector=".tab[data-tab=headers]", name="aria-selected") == "true"
    assert call["call_id"][:8] in page.text(".page-head h1")
    text = page.text(".tab-panel[data-tab=headers]")
    assert "sk-" not in text.replace("[REDACTED", "")  # redacted at ingest, never shown
    # the summary tab shows the timing waterfall and usage
    page.click(".tab[data-tab=summary]")
    page.wait(".waterfall .wf-bar")
    assert "Call" in page.text(".call-summary")


def test_turn_deep_link_selects_call_and_tab(page, server):
    turn = server.get("api/turns", sort="-call_count", limit=1)["items"][0]
    detail = server.get(f"api/turns/{turn['turn_id']}")
    second = sorted(detail["calls"], key=lambda c: c["request_start"])[1]
    open_page(page, server, f"turns/{turn['turn_id']}?call={second['call_id']}&tab=conversation",
              f".call-view[data-call-id='{second['call_id']}']")
    page.wait(".tab-panel[data-tab=conversation] .msg")
    assert page.call("attr", selector=f".tl-row[data-call-id='{second['call_id']}']", name="aria-selected") == "true"


def test_sessions_list_and_detail(page, server):
    total = server.get("api/sessions", count="true", limit=1)["total"]
    open_page(page, server, "sessions", "#sessions-table tbody tr[data-href]")
    assert table_rows(page, "sessions-table") == min(total, 50) > 0
    s = server.get("api/sessions", sort="-turn_count", limit=1)["items"][0]
    page.click(f"#sessions-table tbody tr[data-href*='{s['session_id']}']")
    page.wait("#session-turns tbody tr[data-href]")
    assert page.count("#session-turns tbody tr[data-href]") == len(server.get(f"api/sessions/{s['session_id']}")["turns"])
    # a turn row leads to the turn
    page.click("#session-turns tbody tr[data-href]")
    page.wait(".timeline .tl-row[data-call-id]")


def test_calls_list_filters_by_model(page, server):
    filters = server.get("api/filters")
    model = filters["model"][0]
    expected = server.get("api/calls", model=model, count="true", limit=1)["total"]
    open_page(page, server, "calls", "#calls-table tbody tr[data-href]")
    page.call("select", selector="#f-model", value=model)
    page.wait_fn(f"location.hash.includes('model={model}')")
    page.wait_fn(f"document.querySelector('#calls-table .table-status')?.textContent.endsWith('of {expected}')")
    assert table_rows(page, "calls-table") == min(expected, 50)


def test_insights_rows_expand(page, server):
    total = server.get("api/insights", count="true", limit=1)["total"]
    open_page(page, server, "insights", "#insights-table tbody tr.expandable")
    assert table_rows(page, "insights-table") == min(total, 50) > 0
    page.click("#insights-table tbody tr.expandable")
    page.wait("#insights-table tr.detail-row pre.json")


def test_services_table_and_topology(page, server):
    topo = server.get("api/services/topology")
    total = server.get("api/services", count="true")["total"]
    open_page(page, server, "services", "#services-table tbody tr")
    page.wait("svg.topology")
    assert page.count("#services-table tbody tr") == min(total, 50) > 0
    assert page.count("svg.topology g.node") == len(topo["nodes"])
    assert page.count("svg.topology g.edge") == len([e for e in topo["edges"] if e["from"] != e["to"]])


def test_pipeline_page(page, server):
    pipe = server.get("api/pipeline")
    open_page(page, server, "pipeline", "#pipeline-pill .pill")
    assert page.text("#pipeline-pill .pill") == pipe["health"]
    assert page.count(".stage-grid .stage") == len(pipe["counters"])
    assert page.count("#sources-table tbody tr") == len(server.get("api/health")["sources"])


def test_time_range_picker_narrows_lists(page, server):
    all_total = server.get("api/calls", count="true", limit=1)["total"]
    open_page(page, server, "calls", "#calls-table tbody tr[data-href]")
    page.call("select", selector="#range-select", value="15m")
    page.wait_fn("document.querySelector('#main')?.getAttribute('aria-busy') === 'false' && "
                 "!!document.querySelector('#calls-table .table-status')?.textContent")
    status = page.text("#calls-table .table-status")
    shown = int(status.rsplit("of ", 1)[1].replace(",", "")) if "of " in status else 0
    assert 0 < shown <= all_total
    page.call("select", selector="#range-select", value="custom")
    assert page.call("eval", expr="!document.querySelector('.range-custom').hidden")
    page.call("select", selector="#range-select", value="all")
    page.wait_fn(f"document.querySelector('#calls-table .table-status')?.textContent.endsWith('of {all_total}')")


def test_theme_toggle_persists(page, server):
    open_page(page, server, "overview", ".kpi")
    before = page.call("eval", expr="document.documentElement.dataset.theme")
    page.click("#theme-toggle")
    after = page.call("eval", expr="document.documentElement.dataset.theme")
    assert {before, after} == {"dark", "light"}
    open_page(page, server, "overview", ".kpi")
    assert page.call("eval", expr="document.documentElement.dataset.theme") == after
    page.click("#theme-toggle")
    assert page.call("eval", expr="document.documentElement.dataset.theme") == before


def test_keyboard_navigation(page, server):
    open_page(page, server, "turns", "#turns-table tbody tr[data-href]")
    page.call("eval", expr="document.querySelector('#turns-table tbody tr[data-href]').focus()")
    href = page.call("eval", expr="document.activeElement.dataset.href")
    page.call("keyboard", key="Enter")
    page.wait(".timeline .tl-row[data-call-id]")
    assert page.call("eval", expr="location.hash") == href
    # arrow keys move along the timeline, Enter selects
    page.call("eval", expr="document.querySelector('.tl-row[data-call-id]').focus()")
    page.call("keyboard", key="ArrowDown")
    page.call("keyboard", key="Enter")
    second = page.call("eval", expr="document.querySelectorAll('.tl-row[data-call-id]')[1].dataset.callId")
    page.wait(f".call-view[data-call-id='{second}']")
    page.call("keyboard", key="4")  # page shortcuts: 4 = Calls (focus is not in a field)
    page.wait("#calls-table tbody tr[data-href]")


def test_unknown_record_shows_not_found(page, server):
    open_page(page, server, "turns/no-such-turn", ".error-box")
    assert "Not found" in page.text(".error-box")
    got = page.problems()
    assert got and all("404" in p["text"] for p in got), got


def test_token_prompt_flow(page, auth_server):
    page.goto("about:blank")
    page.goto(auth_server.base + "#/overview")
    page.call("eval", expr="sessionStorage.clear()")
    page.goto("about:blank")
    page.goto(auth_server.base + "#/overview")
    page.wait("#token-dialog[open]")
    assert "protected" in page.text("#token-msg")
    page.call("fill", selector="#token-input", value="wrong-token")
    page.click("#token-submit")
    page.wait_fn("document.querySelector('#token-dialog').open && "
                 "document.querySelector('#token-msg').textContent.includes('rejected')")
    page.call("fill", selector="#token-input", value=auth_server.token)
    page.click("#token-submit")
    page.wait("[data-kpi=calls] .kpi-value")
    assert page.call("eval", expr="sessionStorage.getItem('heron-token')") == auth_server.token
    assert not page.call("eval", expr="document.querySelector('#token-dialog').open")
    # kept for the tab: a reload goes straight to the data
    page.goto("about:blank")
    page.goto(auth_server.base + "#/turns")
    page.wait("#turns-table tbody tr[data-href]")
    assert not page.call("eval", expr="document.querySelector('#token-dialog').open")
    got = page.problems()
    assert got and all("401" in p["text"] for p in got), got
