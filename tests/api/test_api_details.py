"""Detail, body, metrics, services, filters, export, health and pipeline endpoints (interfaces.md §7.2)."""

from __future__ import annotations

import io

import orjson
import pytest
from fastapi.testclient import TestClient

from heron_core.export.calls import CALL_EXPORT_FIELDS
from heron_core.export.sessions import SESSION_EXPORT_FIELDS
from heron_core.export.turns import TURN_EXPORT_FIELDS, export_turns
from heron_core.query import agent_metrics, metrics
from heron_core.query.services import services, topology
from heron_tui.api import create_app


@pytest.fixture(scope="module")
def agent_client(agent_store):
    return TestClient(create_app(agent_store))


# --- details --------------------------------------------------------------------------------------


def test_call_detail(client):
    calls = client.get("/api/calls", params={"limit": 1000, "hops": "include"}).json()["items"]
    c = next(x for x in calls if x["tool_calls"])
    d = client.get(f"/api/calls/{c['call_id']}").json()
    assert set(d) >= {"call", "exchange", "bodies", "tool_calls", "hop_peer", "insights"}
    assert d["call"] == c and tuple(d["call"]) == CALL_EXPORT_FIELDS
    assert d["exchange"]["exchange_id"] == c["call_id"]
    assert all(isinstance(h, list) and len(h) == 2 for h in d["exchange"]["request_headers"])
    assert [b["part"] for b in d["bodies"]] == ["request", "response", "response_object"]
    assert set(d["bodies"][0]) == {"part", "original_bytes", "stored_bytes", "dropped_bytes", "truncated", "is_text"}
    assert [t["tool_call_id"] for t in d["tool_calls"]] == [t["id"] for t in c["tool_calls"]]
    assert "user_text" in d["extra"]


def test_call_detail_hop_peer(client):
    calls = client.get("/api/calls", params={"limit": 1000, "hops": "include"}).json()["items"]
    c = next(x for x in calls if x["hop_role"] == "proxy_in")
    d = client.get(f"/api/calls/{c['call_id']}").json()
    assert d["hop_peer"]["call_id"] == c["hop_peer_call_id"] and d["hop_peer"]["hop_role"] == "proxy_out"
    assert tuple(d["hop_peer"]) == CALL_EXPORT_FIELDS


def test_call_detail_insights(client, capture_store):
    cid = capture_store.conn.execute("SELECT call_ids[1] FROM insights LIMIT 1").fetchone()[0]
    d = client.get(f"/api/calls/{cid}").json()
    assert d["insights"] and all(cid in i["call_ids"] for i in d["insights"])


def test_turn_detail(client):
    turns = client.get("/api/turns", params={"limit": 1000}).json()["items"]
    t = max(turns, key=lambda x: x["call_count"])
    d = client.get(f"/api/turns/{t['turn_id']}").json()
    assert d["turn"] == t and tuple(d["turn"]) == TURN_EXPORT_FIELDS
    assert [c["call_id"] for c in d["calls"]] == t["call_ids"]
    assert all(tuple(c) == CALL_EXPORT_FIELDS for c in d["calls"])
    assert isinstance(d["tool_calls"], list) and isinstance(d["insights"], list)


def test_session_detail(client, agent_client):
    sessions = client.get("/api/sessions", params={"limit": 1000}).json()["items"]
    s = max(sessions, key=lambda x: x["turn_count"])
    d = client.get(f"/api/sessions/{s['session_id']}").json()
    assert d["session"] == s and tuple(d["session"]) == SESSION_EXPORT_FIELDS
    assert len(d["turns"]) == s["turn_count"]
    assert [t["start"] for t in d["turns"]] == sorted(t["start"] for t in d["turns"])
    aux = client.get("/api/sessions/" + s["session_id"]).json()["auxiliary_calls"]
    assert all(c["is_auxiliary"] for c in aux)


def test_exchange_detail_and_bodies(client):
    calls = client.get("/api/calls", params={"limit": 1000, "wire_api": "anthropic"}).json()["items"]
    cid = calls[0]["call_id"]
    ex = client.get(f"/api/exchanges/{cid}").json()
    assert ex["request_headers"] and [b["part"] for b in ex["bodies"]] == ["request", "response", "response_object"]
    raw = client.get(f"/api/exchanges/{cid}/body/request")
    assert raw.status_code == 200 and raw.headers["content-type"].startswith(ex["request_content_type"])
    assert "x-heron-truncated" not in raw.headers
    assert raw.headers["x-content-type-options"] == "nosniff" and "sandbox" in raw.headers["content-security-policy"]
    pretty = client.get(f"/api/exchanges/{cid}/body/response_object", params={"format": "pretty"})
    assert pretty.headers["content-type"].startswith("application/json")
    assert orjson.loads(pretty.content) == orjson.loads(client.get(f"/api/exchanges/{cid}/body/response_object").content)
    assert b"\n  " in pretty.content


def test_truncated_body_header(agent_client):
    r = agent_client.get("/api/exchanges/big/body/request", params={"format": "pretty"})
    assert r.status_code == 200 and r.headers["x-heron-truncated"] == "true"
    assert b"heron:" in r.content and b"elided" in r.content  # the elision line; not re-indented
    ok = agent_client.get("/api/exchanges/c1/body/request")
    assert "x-heron-truncated" not in ok.headers


def test_subagent_turn_detail(agent_client):
    d = agent_client.get("/api/turns/t1").json()
    assert [c["subagent"] for c in d["calls"]] == [None, "Explore", "Explore", None]
    assert {t["tool_call_id"] for t in d["tool_calls"]} == {"toolu_task", "toolu_read"}


# --- metrics, services, filters --------------------------------------------------------------------


def test_metrics_summary_matches_query_layer(client, capture_store):
    got = client.get("/api/metrics/summary").json()
    want = orjson.loads(orjson.dumps(metrics.summary(capture_store.conn)))
    assert got == want
    assert got["calls"] == 157  # hop legs excluded by default
    assert client.get("/api/metrics/summary", params={"hops": "include"}).json()["calls"] == 164
    errs = client.get("/api/metrics/summary", params={"include_errors": "true"}).json()
    assert errs["e2e_ms"]["n"] >= got["e2e_ms"]["n"]
    anth = client.get("/api/metrics/summary", params={"wire_api": "anthropic"}).json()
    assert 0 < anth["calls"] < got["calls"]


def test_metrics_timeseries(client):
    r = client.get("/api/metrics/timeseries", params={"window": "1m", "metrics": "calls,ttft_ms.p95"}).json()
    assert r["window"] == "1m" and r["partial_from"] is None
    assert all(b % 60 == 0 for b in r["buckets"])
    (series,) = r["series"]
    assert series["key"] is None and set(series["values"]) == {"calls", "ttft_ms.p95"}
    assert sum(series["values"]["calls"]) == 157
    grouped = client.get("/api/metrics/timeseries", params=[("group_by", "wire_api"), ("metrics", "calls"),
                                                              ("metrics", "errors")]).json()
    assert {tuple(s["key"]) for s in grouped["series"]} == {("wire_api",)}
    assert sum(sum(s["values"]["calls"]) for s in grouped["series"]) == 157


def test_metrics_breakdown_and_by_model(client):
    a = client.get("/api/metrics/breakdown", params={"by": "model"}).json()
    b = client.get("/api/metrics/by-model").json()
    assert a == b and a["by"] == "model"
    assert sum(r["calls"] for r in a["rows"]) == 157
    assert [r["calls"] for r in a["rows"]] == sorted((r["calls"] for r in a["rows"]), reverse=True)


def test_metrics_agents_and_tools(client, capture_store):
    ag = client.get("/api/metrics/agents").json()
    assert ag == orjson.loads(orjson.dumps(agent_metrics.agents(capture_store.conn)))
    assert {r["agent_kind"] for r in ag["rows"]} and "turn_duration_histogram" in ag["rows"][0]
    tools = client.get("/api/metrics/tools").json()
    assert tools["rows"] and set(tools["rows"][0]) == {"name", "count", "errors", "missing", "success_rate", "wait_ms"}
    kinds = client.get("/api/metrics/tools", params={"agent_kind": "codex-cli"}).json()
    assert sum(r["count"] for r in kinds["rows"]) < sum(r["count"] for r in tools["rows"])


def test_services_and_topology(client, capture_store):
    items = client.get("/api/services", params={"limit": 1000}).json()["items"]
    want = services(capture_store.conn)
    # -calls, ties by id in the same direction (the keyset order of every list)
    assert [s["server"] for s in items] == [s["server"] for s in sorted(want, key=lambda s: (s["calls"], s["server"]),
                                                                       reverse=True)]
    assert sum(s["calls"] for s in items) == 164  # every hop leg counts for services
    by_errors = client.get("/api/services", params={"sort": "-errors", "limit": 1000}).json()["items"]
    assert [s["errors"]["total"] for s in by_errors] == sorted((s["errors"]["total"] for s in items), reverse=True)
    topo = client.get("/api/services/topology").json()
    assert topo == orjson.loads(orjson.dumps(topology(capture_store.conn)))
    assert {e["kind"] for e in topo["edges"]} >= {"client", "proxy"}


def test_filters(client, capture_store):
    f = client.get("/api/filters").json()
    assert set(f) == {"source_id", "wire_api", "model", "server", "agent_kind", "provider"}
    assert len(f["source_id"]) == 10 and f["wire_api"] == sorted(f["wire_api"])
    t = capture_store.conn.execute("SELECT min(request_start) FROM calls").fetchone()[0]
    early = client.get("/api/filters", params={"until": t + 0.001}).json()
    assert len(early["source_id"]) == 1


# --- exports --------------------------------------------------------------------------------------


def test_export_calls_streams_ndjson(client):
    r = client.get("/api/export/calls", params={"wire_api": "gemini"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(x) for x in r.content.splitlines()]
    assert lines and all(x["wire_api"] == "gemini" for x in lines)
    assert all(tuple(x) == CALL_EXPORT_FIELDS for x in lines)
    every = client.get("/api/export/calls").content.splitlines()
    assert len(every) == 164  # exports include the hop legs


def test_export_turns_equals_cli_export(client, capture_store):
    buf = io.BytesIO()
    export_turns(capture_store.conn, buf)
    assert client.get("/api/export/turns").content == buf.getvalue()


@pytest.mark.parametrize("kind", ["calls", "turns", "sessions", "sft", "otlp"])
def test_export_report(client, kind):
    rep = client.get(f"/api/export/{kind}", params={"report": "true"}).json()
    assert set(rep) == {"exported", "skipped"}
    lines = client.get(f"/api/export/{kind}").content.splitlines()
    assert rep["exported"] == len(lines) > 0
    limited = client.get(f"/api/export/{kind}", params={"limit": 1}).content.splitlines()
    assert len(limited) == 1 or kind == "sft"


def test_export_sft_session_scope(client):
    turn_scope = client.get("/api/export/sft", params={"report": "true"}).json()
    session_scope = client.get("/api/export/sft", params={"report": "true", "scope": "session"}).json()
    assert session_scope["exported"] <= turn_scope["exported"] + sum(turn_scope["skipped"].values())


def test_export_large_stream_is_complete(agent_store):
    """More than one pipe chunk: the thread hands every byte over, in order."""
    c = TestClient(create_app(agent_store))
    r = c.get("/api/export/otlp", params={"content": "true"})
    lines = r.content.splitlines()
    assert len(lines) == 3  # two turns + one request of turn-less calls
    assert all(orjson.loads(x)["resourceSpans"] for x in lines)


# --- health and pipeline --------------------------------------------------------------------------


def test_health(client):
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and h["mode"] == "serve" and h["read_only"] is True
    assert h["schema_version"] == 1 and h["price_version"].startswith("genai-prices")
    assert set(h) == {"status", "version", "mode", "read_only", "db", "uptime_s", "schema_version",
                      "price_version", "sources"}
    assert len(h["sources"]) == 10
    assert all(s["state"] == "drained" and set(s) == {"source_id", "kind", "state", "watermark", "lag_s"}
               for s in h["sources"])


def test_pipeline_of_a_served_database(client):
    p = client.get("/api/pipeline").json()
    assert set(p) == {"health", "reasons", "counters", "queues", "workers", "sampled_at"}
    assert p["health"] == "ok"


def test_openapi_document(client):
    doc = client.get("/api/openapi.json").json()
    paths = set(doc["paths"])
    for p in ("/api/health", "/api/pipeline", "/api/filters", "/api/calls", "/api/calls/{call_id}",
              "/api/exchanges", "/api/exchanges/{exchange_id}", "/api/exchanges/{exchange_id}/body/{part}",
              "/api/turns", "/api/turns/{turn_id}", "/api/sessions", "/api/sessions/{session_id}",
              "/api/metrics/summary", "/api/metrics/timeseries", "/api/metrics/breakdown", "/api/metrics/by-model",
              "/api/metrics/agents", "/api/metrics/tools", "/api/services", "/api/services/topology",
              "/api/insights", "/api/export/{kind}", "/api/events"):
        assert p in paths, p


def test_console_is_served_from_package_data(client):
    from importlib import resources

    index = (resources.files("heron_tui") / "web" / "index.html").read_bytes()
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.content == index


def test_placeholder_without_a_console(monkeypatch, capture_store):
    from heron_tui.api import app as app_module

    monkeypatch.setattr(app_module, "_web_dir", lambda: None)
    r = TestClient(create_app(capture_store)).get("/")
    assert r.status_code == 200 and "console is coming" in r.text
