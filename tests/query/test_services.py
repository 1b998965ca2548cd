"""Services and topology (metrics.md §6): per-service figures, the ``app`` label rules, topology edges."""

from __future__ import annotations

import orjson
import pytest
from metrics_helpers import B, Builder, exchange

from heron_core.query.metrics import MetricFilters
from heron_core.query.services import services, topology


def _svc(b: Builder, server: str) -> dict:
    return next(s for s in services(b.conn) if s["server"] == server)


def _one(b: Builder, ip: str, wire_api: str = "openai-chat", **kw) -> str:
    server = f"{ip}:8000"
    b.call(0, 1, server=server, server_ip=ip, wire_api=wire_api, **kw)
    return server


def test_service_figures():
    b = Builder()
    for i in range(40):
        b.call(i, i + 1, server="10.0.0.2:443", server_ip="10.0.0.2", model=f"m{i % 35:02d}",
               wire_api="openai-chat" if i % 2 else "openai-responses", ttft_ms=float(i), e2e_ms=float(2 * i),
               input_total_tokens=10, output_tokens=1,
               status_code=[200, 429, 503, 200][i % 4], finish="stop" if i % 4 in (0, 3) else "error")
    for i in range(10):
        b.exchange(exchange(i, path=f"/p{i % 9}", start=i,
                            headers=[("Server", f"srv/{i}"), ("Content-Type", "application/json")]))
    s = _svc(b, "10.0.0.2:443")
    assert s["calls"] == 40
    assert s["errors"] == {"total": 20, "errors_4xx": 10, "errors_5xx": 10, "aborted": 0, "rate_limited": 10}
    assert len(s["models"]) == 32 and s["models"][:5] == ["m00", "m01", "m02", "m03", "m04"]
    assert s["wire_apis"] == ["openai-chat", "openai-responses"]
    assert len(s["paths"]) == 8 and s["paths"][0] == "/p0"  # /p0 seen twice
    ok = [float(i) for i in range(40) if i % 4 in (0, 3)]
    assert s["ttft_ms"]["p50"] == pytest.approx((ok[9] + ok[10]) / 2)
    assert s["input_total_tokens"] == 400 and s["output_tokens"] == 40
    assert s["first_seen"] == B and s["last_seen"] == B + 40
    assert s["server_header"] == "srv/9"  # the latest
    assert s["app"] == "openai-compatible"


def test_app_rule_1_public_provider():
    b = Builder()
    server = _one(b, "1.1.1.1", wire_api="anthropic", provider="anthropic")
    b.exchange(exchange(1, server_ip="1.1.1.1", port=8000, path="/api/tags"))  # rule 2 would match too
    assert _svc(b, server)["app"] == "anthropic"


@pytest.mark.parametrize("path,headers,app", [
    ("/api/tags", [], "ollama"),
    ("/v1/chat/completions", [("Server", "Ollama/0.5")], "ollama"),
    ("/v1/chat/completions", [("x-litellm-version", "1.2")], "litellm"),
    ("/v1/chat/completions", [("server", "litellm")], "litellm"),
    ("/props", [], "llamacpp"),
    ("/slots", [], "llamacpp"),
    ("/get_server_info", [], "sglang"),
    ("/flush_cache", [("Server", "uvicorn")], "sglang"),
])
def test_app_rules_from_paths_and_headers(path, headers, app):
    b = Builder()
    server = _one(b, "10.9.0.1")
    b.exchange(exchange(1, server_ip="10.9.0.1", port=8000, path=path, headers=headers), is_llm=False)
    assert _svc(b, server)["app"] == app


@pytest.mark.parametrize("part,body,stream,app", [
    ("response_object", {"choices": [{"index": 0, "matched_stop": 2}]}, False, "sglang"),
    ("response_object", {"choices": [{"index": 0, "stop_reason": None}]}, False, "vllm"),
    ("response_object", {"choices": [], "prompt_logprobs": None}, False, "vllm"),
    ("response_object", {"choices": [], "kv_transfer_params": None}, False, "vllm"),
    ("response", (b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
                  b'data: {"choices":[{"delta":{},"finish_reason":"stop","stop_reason":null}]}\n\n'
                  b"data: [DONE]\n\n"), True, "vllm"),
    ("response_object", {"choices": [{"index": 0, "finish_reason": "stop"}]}, False, "openai-compatible"),
])
def test_app_rules_from_stored_bodies(part, body, stream, app):
    b = Builder()
    server = _one(b, "10.9.0.2")
    ex = exchange(1, server_ip="10.9.0.2", port=8000, stream_format="sse" if stream else None)
    b.exchange(ex, is_llm=True)
    b.body(ex.exchange_id, part, body if isinstance(body, bytes) else orjson.dumps(body))
    assert _svc(b, server)["app"] == app


def test_app_rule_6_vllm_metrics_body():
    b = Builder()
    server = _one(b, "10.9.0.3")
    ex = exchange(1, server_ip="10.9.0.3", port=8000, path="/metrics", method="GET")
    b.exchange(ex, is_llm=False)
    b.body(ex.exchange_id, "response", b"# HELP vllm:num_requests_running x\nvllm:num_requests_running 1\n")
    assert _svc(b, server)["app"] == "vllm"


def test_app_rule_7_and_none():
    b = Builder()
    openai_only = _one(b, "10.9.0.4", wire_api="openai-responses")
    mixed = "10.9.0.5:8000"
    b.call(0, 1, server=mixed, server_ip="10.9.0.5", wire_api="openai-chat")
    b.call(1, 2, server=mixed, server_ip="10.9.0.5", wire_api="anthropic")
    assert _svc(b, openai_only)["app"] == "openai-compatible"
    assert _svc(b, mixed)["app"] is None


def test_services_sort_and_hops_included():
    b = Builder()
    b.call(0, 1, server="a:1", hop_role="proxy_out")
    b.call(0, 1, server="b:1")
    b.call(1, 2, server="b:1")
    assert [s["server"] for s in services(b.conn)] == ["b:1", "a:1"]
    assert [s["server"] for s in services(b.conn, sort="server")] == ["a:1", "b:1"]
    assert [s["server"] for s in services(b.conn, MetricFilters())] == ["b:1"]  # explicit default filters
    with pytest.raises(ValueError):
        services(b.conn, sort="color")


def test_topology_client_proxy_and_inferred_edges():
    b = Builder()
    # client 10.0.0.1 → gateway 10.0.0.5:4000 → upstream 10.0.0.9:443, folded as a proxy pair
    b.call(0, 2, call_id="in1", server="10.0.0.5:4000", server_ip="10.0.0.5", hop_role="proxy_in",
           hop_peer_call_id="out1")
    b.call(0.1, 1.9, call_id="out1", server="10.0.0.9:443", server_ip="10.0.0.9", client_ip="10.0.0.5",
           hop_role="proxy_out", hop_peer_call_id="in1")
    # the gateway also calls another upstream, not folded: inferred
    b.call(3, 4, server="10.0.0.7:443", server_ip="10.0.0.7", client_ip="10.0.0.5", status_code=500,
           finish="error")
    # an eBPF call: no client IP, a process
    b.call(5, 6, server="api.openai.com", client_ip=None, process_comm="node", process_pid=42)
    t = topology(b.conn)
    ids = {n["id"]: n for n in t["nodes"]}
    assert {"service:10.0.0.5:4000", "service:10.0.0.9:443", "service:10.0.0.7:443", "service:api.openai.com",
            "client:10.0.0.1", "client:10.0.0.5", "client:node[42]"} == set(ids)
    edges = {(e["from"], e["to"], e["kind"]): (e["calls"], e["errors"]) for e in t["edges"]}
    assert edges[("client:10.0.0.1", "service:10.0.0.5:4000", "client")] == (1, 0)
    assert edges[("service:10.0.0.5:4000", "service:10.0.0.9:443", "proxy")] == (1, 0)
    assert edges[("service:10.0.0.5:4000", "service:10.0.0.7:443", "inferred")] == (1, 1)
    assert edges[("client:node[42]", "service:api.openai.com", "client")] == (1, 0)
    assert ("service:10.0.0.5:4000", "service:10.0.0.9:443", "inferred") not in edges  # proxy covers it
    assert ("client:10.0.0.5", "service:10.0.0.9:443", "client") not in edges  # hop leg: proxy edge only


def test_topology_loopback_infers_nothing():
    b = Builder()
    b.call(0, 1, server="127.0.0.1:4000", server_ip="127.0.0.1", client_ip="127.0.0.1")
    b.call(0, 1, server="127.0.0.1:11434", server_ip="127.0.0.1", client_ip="127.0.0.1")
    assert [e["kind"] for e in topology(b.conn)["edges"]] == ["client", "client"]
