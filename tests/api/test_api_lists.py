"""List endpoints (interfaces.md §7.1–7.2): record schemas, filters, sort, count, keyset paging, errors."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
import pytest

from heron_core.export.calls import CALL_EXPORT_FIELDS, export_calls
from heron_core.export.sessions import SESSION_EXPORT_FIELDS
from heron_core.export.turns import TURN_EXPORT_FIELDS
from heron_core.store.schema import EXCHANGES, INSIGHTS

# The field lists of interfaces.md §6.1–§6.3, copied from the spec tables (not from the code under test).
SPEC_CALL_FIELDS = (
    "call_id", "source_id", "agent_kind", "session_id", "turn_id", "native_session_id", "session_source",
    "is_auxiliary", "auxiliary_kind", "subagent", "hop_role", "hop_peer_call_id", "connection", "server",
    "host", "process", "method", "path", "status_code", "wire_api", "operation", "detected_by",
    "provider", "model_requested", "model", "response_id", "is_stream", "stream_format", "request_start",
    "request_end", "response_start", "first_chunk", "first_token", "response_end", "ttft_ms", "e2e_ms",
    "tpot_ms", "upload_ms", "head_ms", "first_chunk_ms", "gen_ms", "finish_reason_raw", "finish", "ok",
    "error", "refusal", "tool_calls", "tool_call_count", "server_tool_count", "input_tokens",
    "cache_read_tokens", "cache_creation_tokens", "cache_creation_1h_tokens", "input_total_tokens",
    "reasoning_tokens", "output_tokens", "total_tokens", "usage_estimated", "context_delta_tokens",
    "cost_usd", "cost_input_usd", "cost_output_usd", "cost_nocache_usd", "cache_savings_usd",
    "cost_status", "price_version", "priced_model", "priced_provider", "request_body_bytes",
    "response_body_bytes", "request_wire_bytes", "response_wire_bytes", "attempt", "retry_of",
    "request_hash", "ratelimit", "input_preview", "output_preview", "damaged", "damage",
)  # fmt: skip
SPEC_TURN_FIELDS = (
    "turn_id", "session_id", "source_id", "agent_kind", "status", "end_reason", "start", "end",
    "duration_ms", "first_response_ms", "anchor_call_id", "final_call_id", "call_ids",
    "user_input_preview", "final_answer_preview", "finish", "finish_reason_raw", "error", "wire_api",
    "server", "client_ip", "process", "models", "subagents", "tool_names", "call_count",
    "main_call_count", "subagent_call_count", "retry_count", "input_tokens", "input_total_tokens",
    "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens", "output_tokens", "total_tokens",
    "cost_usd", "cost_complete", "tool_call_count", "tool_error_count", "tool_missing_count",
    "insight_count", "insight_kinds",
)  # fmt: skip
SPEC_SESSION_FIELDS = (
    "session_id", "native_session_id", "session_source", "source_id", "agent_kind", "first_start",
    "last_end", "state", "turn_count", "turns_complete", "turns_incomplete", "turns_partial",
    "call_count", "auxiliary_call_count", "first_turn_id", "last_turn_id", "first_user_input_preview",
    "models", "subagents", "input_total_tokens", "cache_read_tokens", "cache_creation_tokens",
    "reasoning_tokens", "output_tokens", "total_tokens", "cost_usd", "cost_complete", "tool_call_count",
    "tool_error_count", "insight_count", "server", "client_ip", "process",
)  # fmt: skip


def _all(client, path: str, **params) -> list[dict]:
    """Walk every page of a list; asserts each page's size and the cursor chain."""
    items, cursor, pages = [], None, 0
    while True:
        q = dict(params)
        if cursor:
            q["cursor"] = cursor
        r = client.get(path, params=q)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= int(params.get("limit", 100))
        items += body["items"]
        cursor = body["next_cursor"]
        pages += 1
        if cursor is None:
            return items
        assert body["items"], "a page with a next cursor is never empty"
        assert pages < 1000


# --- schemas ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path,fields", [
    ("/api/calls", SPEC_CALL_FIELDS),
    ("/api/turns", SPEC_TURN_FIELDS),
    ("/api/sessions", SPEC_SESSION_FIELDS),
])
def test_records_have_exactly_the_export_fields_in_order(client, path, fields):
    params = {"hops": "include"} if path == "/api/calls" else {"include_partial": "true"}
    items = _all(client, path, limit=1000, **params)
    assert items
    for item in items:
        assert tuple(item) == fields
    assert fields == {"/api/calls": CALL_EXPORT_FIELDS, "/api/turns": TURN_EXPORT_FIELDS,
                      "/api/sessions": SESSION_EXPORT_FIELDS}[path]


def test_call_records_equal_the_calls_export(client, capture_store):
    buf = io.BytesIO()
    export_calls(capture_store.conn, buf)
    exported = {r["call_id"]: r for r in map(orjson.loads, buf.getvalue().splitlines())}
    items = _all(client, "/api/calls", limit=1000, hops="include")
    assert {i["call_id"] for i in items} == set(exported)
    for i in items:
        assert i == exported[i["call_id"]]


# --- paging ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["request_start", "-request_start", "ttft_ms", "-ttft_ms", "cost_usd",
                                  "-output_tokens", "e2e_ms"])
@pytest.mark.parametrize("fetch", ["rowid", "literals"])
def test_calls_paging_is_stable(client, sort, fetch, monkeypatch):
    """Both ways of fetching a page's rows (by rowid for close rows, by id literals for scattered ones)."""
    from heron_tui.api import paging

    monkeypatch.setattr(paging, "CLUSTERED_VECTORS", 8 if fetch == "rowid" else -1)
    whole = client.get("/api/calls", params={"limit": 1000, "sort": sort, "hops": "include"}).json()["items"]
    paged = _all(client, "/api/calls", limit=7, sort=sort, hops="include")
    ids = [c["call_id"] for c in paged]
    assert len(ids) == len(set(ids)), "a row repeated across pages"
    assert ids == [c["call_id"] for c in whole], "paging changed the order or missed rows"
    assert len(ids) == 164


@pytest.mark.parametrize("path,sort,key", [
    ("/api/turns", "-duration_ms", "turn_id"), ("/api/turns", "call_count", "turn_id"),
    ("/api/turns", "-cost_usd", "turn_id"), ("/api/sessions", "turn_count", "session_id"),
    ("/api/sessions", "-cost_usd", "session_id"), ("/api/exchanges", "status_code", "exchange_id"),
    ("/api/insights", "count", "insight_id"), ("/api/services", "server", "server"),
])
def test_other_lists_page_stably(client, path, sort, key):
    whole = client.get(path, params={"limit": 1000, "sort": sort}).json()["items"]
    paged = _all(client, path, limit=3, sort=sort)
    assert [x[key] for x in paged] == [x[key] for x in whole]
    assert len({x[key] for x in paged}) == len(paged) > 3


def _sorted_nulls_last(values, desc):
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=desc)
    first_null = next((i for i, v in enumerate(values) if v is None), len(values))
    assert all(v is None for v in values[first_null:]), "nulls sort last"


@pytest.mark.parametrize("field", ["request_start", "ttft_ms", "e2e_ms", "output_tokens", "cost_usd"])
@pytest.mark.parametrize("desc", [False, True])
def test_calls_sort(client, field, desc):
    items = client.get("/api/calls", params={"limit": 1000, "sort": ("-" if desc else "") + field}).json()["items"]
    _sorted_nulls_last([c[field] for c in items], desc)


def test_default_sorts_are_newest_first(client):
    calls = client.get("/api/calls", params={"limit": 1000}).json()["items"]
    _sorted_nulls_last([c["request_start"] for c in calls], True)
    turns = client.get("/api/turns", params={"limit": 1000}).json()["items"]
    _sorted_nulls_last([t["start"] for t in turns], True)
    sessions = client.get("/api/sessions", params={"limit": 1000}).json()["items"]
    _sorted_nulls_last([s["last_end"] for s in sessions], True)


@pytest.mark.parametrize("path,params", [
    ("/api/calls", {}), ("/api/calls", {"hops": "include"}), ("/api/calls", {"wire_api": "anthropic"}),
    ("/api/turns", {}), ("/api/sessions", {}), ("/api/exchanges", {}), ("/api/insights", {}),
    ("/api/services", {}),
])
def test_count_is_the_number_of_items(client, path, params):
    r = client.get(path, params={**params, "count": "true", "limit": 2}).json()
    assert r["total"] == len(_all(client, path, limit=1000, **params))
    assert "total" not in client.get(path, params={**params, "limit": 2}).json()


def test_hop_legs_hidden_by_default(client):
    hidden = client.get("/api/calls", params={"count": "true"}).json()["total"]
    every = client.get("/api/calls", params={"count": "true", "hops": "include"}).json()["total"]
    assert every - hidden == 7
    items = _all(client, "/api/calls", limit=1000)
    assert not {c["hop_role"] for c in items} & {"proxy_out", "mirror_secondary"}


# --- filters --------------------------------------------------------------------------------------


def test_multi_value_filters_repeat_or_comma(client):
    a = client.get("/api/calls", params=[("wire_api", "anthropic"), ("wire_api", "gemini"), ("limit", 1000)])
    b = client.get("/api/calls", params={"wire_api": "anthropic,gemini", "limit": 1000})
    assert a.json() == b.json()
    apis = {c["wire_api"] for c in a.json()["items"]}
    assert apis == {"anthropic", "gemini"}


@pytest.mark.parametrize("param,value,check", [
    ("status_code", "5xx", lambda c: 500 <= c["status_code"] < 600),
    ("status_code", "429", lambda c: c["status_code"] == 429),
    ("ok", "false", lambda c: not c["ok"]),
    ("is_stream", "true", lambda c: c["is_stream"]),
    ("finish", "tool_use", lambda c: c["finish"] == "tool_use"),
    ("agent_kind", "claude-cli", lambda c: c["agent_kind"] == "claude-cli"),
    ("source_id", "ollama", lambda c: c["source_id"] == "ollama"),
    ("filter", "ttft > 100ms && stream", lambda c: c["ttft_ms"] > 100 and c["is_stream"]),
])
def test_call_filters(client, param, value, check):
    items = client.get("/api/calls", params={param: value, "limit": 1000}).json()["items"]
    assert items
    assert all(check(c) for c in items)


def test_call_filters_by_model_server_session_turn(client):
    some = client.get("/api/calls", params={"limit": 1000}).json()["items"]
    c = next(c for c in some if c["turn_id"] and c["session_id"])
    for param, key in (("model", "model"), ("server", "server"), ("session_id", "session_id"),
                       ("turn_id", "turn_id")):
        items = client.get("/api/calls", params={param: c[key], "limit": 1000}).json()["items"]
        assert c["call_id"] in {i["call_id"] for i in items}
        assert all(i[key] == c[key] or (param == "model" and i["model_requested"] == c[key]) for i in items)


def test_time_range_epoch_and_rfc3339_agree(client):
    calls = client.get("/api/calls", params={"limit": 1000, "sort": "request_start"}).json()["items"]
    t0, t1 = calls[10]["request_start"], calls[40]["request_start"]
    by_epoch = client.get("/api/calls", params={"since": t0, "until": t1, "limit": 1000}).json()["items"]
    iso = lambda t: datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
    by_iso = client.get("/api/calls", params={"since": iso(t0), "until": iso(t1), "limit": 1000}).json()["items"]
    assert by_epoch == by_iso
    assert len(by_epoch) == 30 and all(t0 <= c["request_start"] < t1 for c in by_epoch)


def test_turn_filters(client):
    turns = client.get("/api/turns", params={"limit": 1000}).json()["items"]
    assert {t["status"] for t in turns} <= {"complete", "incomplete"}
    inc = client.get("/api/turns", params={"status": "incomplete", "limit": 1000}).json()["items"]
    assert inc and all(t["status"] == "incomplete" for t in inc)
    big = client.get("/api/turns", params={"min_calls": 3, "limit": 1000}).json()["items"]
    assert big and all(t["call_count"] >= 3 for t in big)
    ins = client.get("/api/turns", params={"has_insights": "true", "limit": 1000}).json()["items"]
    assert ins and all(t["insight_count"] > 0 for t in ins)
    t = turns[0]
    for param, value in (("agent_kind", t["agent_kind"]), ("session_id", t["session_id"]),
                         ("model", t["models"][0]), ("server", t["server"])):
        got = client.get("/api/turns", params={param: value, "limit": 1000}).json()["items"]
        assert t["turn_id"] in {x["turn_id"] for x in got}
    tools = client.get("/api/turns", params={"filter": "tool == get_weather", "limit": 1000}).json()["items"]
    assert tools and all("get_weather" in x["tool_names"] for x in tools)


def test_session_filters(client):
    sessions = client.get("/api/sessions", params={"limit": 1000}).json()["items"]
    assert sessions and all(s["state"] == "idle" for s in sessions)  # a finished database
    kind = sessions[0]["agent_kind"]
    got = client.get("/api/sessions", params={"agent_kind": kind, "limit": 1000}).json()["items"]
    assert got and all(s["agent_kind"] == kind for s in got)
    last = max(s["last_end"] for s in sessions)
    recent = client.get("/api/sessions", params={"since": last - 0.001, "limit": 1000}).json()["items"]
    assert recent and all(s["last_end"] >= last - 0.001 for s in recent)


def test_exchanges(client):
    items = _all(client, "/api/exchanges", limit=50)
    assert len(items) == 166
    assert all("request_headers" not in x for x in items)
    assert tuple(items[0]) == tuple(c for c in EXCHANGES.column_names if not c.endswith("_headers"))
    other = client.get("/api/exchanges", params={"is_llm": "false", "limit": 1000}).json()["items"]
    assert len(other) == 2 and not any(x["is_llm"] for x in other)
    post = client.get("/api/exchanges", params={"method": "post", "path_prefix": "/v1/", "limit": 1000}).json()
    assert post["items"] and all(x["method"] == "POST" and x["path"].startswith("/v1/") for x in post["items"])
    srv = f"{items[0]['server_ip']}:{items[0]['server_port']}"
    by_server = client.get("/api/exchanges", params={"server": srv, "limit": 1000}).json()["items"]
    assert by_server and all(f"{x['server_ip']}:{x['server_port']}" == srv for x in by_server)


def test_insights_include_rate_limit_pressure(client, capture_store):
    items = client.get("/api/insights", params={"limit": 1000}).json()["items"]
    stored = capture_store.conn.execute("SELECT count(*) FROM insights").fetchone()[0]
    kinds = [i["kind"] for i in items]
    assert "rate_limit_pressure" in kinds and len(items) > stored
    assert all(tuple(i) == INSIGHTS.column_names for i in items)
    only = client.get("/api/insights", params={"kind": "retry_storm", "limit": 1000}).json()["items"]
    assert only and {i["kind"] for i in only} == {"retry_storm"}


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path,params", [
    ("/api/calls", {"limit": 0}), ("/api/calls", {"limit": 1001}), ("/api/calls", {"limit": "x"}),
    ("/api/calls", {"sort": "model"}), ("/api/calls", {"since": "yesterday"}),
    ("/api/calls", {"since": 100, "until": 50}), ("/api/calls", {"cursor": "garbage!"}),
    ("/api/calls", {"ok": "maybe"}), ("/api/calls", {"hops": "some"}), ("/api/calls", {"status_code": "abc"}),
    ("/api/calls", {"filter": "ttft >"}), ("/api/calls", {"filter": "nosuchfield == 1"}),
    ("/api/turns", {"status": "done"}), ("/api/turns", {"sort": "-whatever"}),
    ("/api/sessions", {"status": "sleeping"}), ("/api/exchanges", {"status_code": "2xx"}),
    ("/api/metrics/timeseries", {"window": "7s"}), ("/api/metrics/timeseries", {"metrics": "nope"}),
    ("/api/metrics/breakdown", {"by": "color"}), ("/api/metrics/summary", {"hops": "x"}),
    ("/api/exchanges/x/body/headers", {}), ("/api/exchanges/x/body/request", {"format": "yaml"}),
    ("/api/export/calls", {"status": "teapot"}), ("/api/export/turns", {"status": "429"}),
    ("/api/export/sft", {"scope": "planet"}), ("/api/export/otlp", {"status": "5xx"}),
    ("/api/export/calls", {"limit": -1}),
])
def test_bad_parameters_are_400(client, path, params):
    r = client.get(path, params=params)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_param" and err["message"]


def test_cursor_of_another_query_is_refused(client):
    first = client.get("/api/calls", params={"limit": 5}).json()
    assert client.get("/api/calls", params={"limit": 5, "cursor": first["next_cursor"]}).status_code == 200
    other = client.get("/api/calls", params={"limit": 5, "cursor": first["next_cursor"], "wire_api": "gemini"})
    assert other.status_code == 400 and other.json()["error"]["code"] == "invalid_param"
    resorted = client.get("/api/calls", params={"limit": 5, "cursor": first["next_cursor"], "sort": "ttft_ms"})
    assert resorted.status_code == 400


@pytest.mark.parametrize("path", ["/api/calls/nope", "/api/turns/nope", "/api/sessions/nope", "/api/exchanges/nope",
                                  "/api/exchanges/nope/body/request", "/api/export/everything", "/api/nothing"])
def test_unknown_ids_are_404(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_too_many_buckets_is_422(client):
    r = client.get("/api/metrics/timeseries", params={"since": 0, "until": 1_800_000_000, "window": "10s"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "too_many_buckets"
