"""OTLP export (interfaces.md §6.5): every line parses as an official ``ExportTraceServiceRequest``, the span
tree, the GenAI attribute names of the spec table, deterministic ids, opt-in content, the CLI and
``--endpoint`` POSTs to a local collector."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from heron_core.export.otlp import OtlpFilters, export_otlp, provider_name

TURN_ATTRS = {"gen_ai.operation.name", "gen_ai.agent.name", "gen_ai.provider.name", "heron.session.id",
              "heron.turn.id", "heron.turn.status", "gen_ai.conversation.id"}
SUBAGENT_ATTRS = {"gen_ai.agent.name", "gen_ai.operation.name"}
CALL_ATTRS = {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
              "gen_ai.response.id", "gen_ai.response.finish_reasons", "gen_ai.usage.input_tokens",
              "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
              "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.reasoning.output_tokens",
              "gen_ai.response.time_to_first_chunk", "server.address", "server.port", "error.type", "heron.call.id",
              "heron.wire_api", "heron.finish", "heron.ttft_ms", "heron.tpot_ms", "heron.cost_usd"}
CALL_CONTENT = {"gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages",
                "gen_ai.tool.definitions"}
TOOL_ATTRS = {"gen_ai.operation.name", "gen_ai.tool.name", "gen_ai.tool.call.id", "gen_ai.tool.type",
              "heron.inferred", "heron.tool.result"}
TOOL_CONTENT = {"gen_ai.tool.call.arguments", "gen_ai.tool.call.result"}
RESOURCE_ATTRS = {"service.name", "heron.source_id", "heron.semconv_version", "process.pid",
                  "process.executable.name", "process.executable.path"}


def _export(store, **kw) -> list[bytes]:
    buf = io.BytesIO()
    export_otlp(store.conn, buf, **kw)
    return buf.getvalue().splitlines()


def _parse(line: bytes) -> ExportTraceServiceRequest:
    """Parse with the official schema. OTLP/JSON writes trace and span ids as hex where proto3 JSON
    expects base64, so they are converted first (that way the parsed ids have their real length)."""
    doc = orjson.loads(line)
    json_format.Parse(line, ExportTraceServiceRequest())  # the line as written parses cleanly as well
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for sp in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in sp:
                        sp[key] = base64.b64encode(bytes.fromhex(sp[key])).decode()
    return json_format.Parse(orjson.dumps(doc), ExportTraceServiceRequest())


def _attrs(kvs) -> dict:
    out = {}
    for kv in kvs:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = [getattr(x, x.WhichOneof("value")) for x in v.array_value.values] if kind == "array_value" \
            else getattr(v, kind)
    return out


def _spans(req: ExportTraceServiceRequest) -> list[tuple[dict, Span]]:
    return [(_attrs(rs.resource.attributes), sp) for rs in req.resource_spans for ss in rs.scope_spans
            for sp in ss.spans]


def test_every_line_parses_with_the_official_schema(capture_store):
    lines = _export(capture_store)
    turns = capture_store.conn.execute("SELECT count(*) FROM turns").fetchone()[0]
    loose = capture_store.conn.execute("SELECT count(*) FROM calls WHERE turn_id IS NULL AND coalesce(hop_role, '') "
                                       "NOT IN ('proxy_out', 'mirror_secondary')").fetchone()[0]
    assert len(lines) == turns + -(-loose // 100)
    for line in lines:
        req = _parse(line)
        for res, sp in _spans(req):
            assert len(sp.trace_id) == 16 and len(sp.span_id) == 8
            assert sp.end_time_unix_nano >= sp.start_time_unix_nano > 1_600_000_000 * 10**9
            assert set(res) <= RESOURCE_ATTRS and res["heron.semconv_version"]
            assert "service.name" in res


def test_turn_traces_and_attribute_names(capture_store):
    for line in _export(capture_store)[:20]:
        spans = _spans(_parse(line))
        roots = [sp for _, sp in spans if not sp.parent_span_id]
        assert len(roots) == 1
        root = roots[0]
        assert root.name.startswith("invoke_agent ") and root.kind == Span.SPAN_KIND_INTERNAL
        ra = _attrs(root.attributes)
        assert set(ra) <= TURN_ATTRS and ra["gen_ai.operation.name"] == "invoke_agent"
        assert {"heron.turn.id", "heron.session.id", "heron.turn.status"} <= set(ra)
        tid = ra["heron.turn.id"]
        assert root.trace_id.hex() == hashlib.sha256(f"trace|{tid}".encode()).hexdigest()[:32]
        assert root.span_id.hex() == hashlib.sha256(f"span|turn|{tid}".encode()).hexdigest()[:16]
        ids = {sp.span_id for _, sp in spans}
        assert len(ids) == len(spans)
        for _, sp in spans:
            assert sp.trace_id == root.trace_id
            if sp is not root:
                assert sp.parent_span_id in ids
            a = _attrs(sp.attributes)
            if sp.kind == Span.SPAN_KIND_CLIENT:
                assert set(a) <= CALL_ATTRS and {"gen_ai.operation.name", "gen_ai.request.model",
                                                 "heron.call.id", "gen_ai.provider.name"} <= set(a)
                assert sp.parent_span_id == root.span_id
                cid = a["heron.call.id"]
                assert sp.span_id.hex() == hashlib.sha256(f"span|call|{cid}".encode()).hexdigest()[:16]
                if a.get("heron.finish") in ("error", "aborted"):
                    assert sp.status.code == Status.STATUS_CODE_ERROR
            elif sp.name.startswith("execute_tool"):
                assert set(a) <= TOOL_ATTRS and a["heron.inferred"] is True and a["gen_ai.tool.type"] == "function"
                parent = next(p for _, p in spans if p.span_id == sp.parent_span_id)
                assert parent.kind == Span.SPAN_KIND_CLIENT


def test_usage_attributes_follow_the_convention(capture_store):
    row = capture_store.conn.execute(
        "SELECT call_id, input_total_tokens, output_tokens, cache_read_tokens, turn_id FROM calls "
        "WHERE cache_read_tokens > 0 AND turn_id IS NOT NULL LIMIT 1").fetchone()
    assert row is not None
    line = _export(capture_store, filters=OtlpFilters(turn=row[4]))[0]
    span = next(sp for _, sp in _spans(_parse(line)) if _attrs(sp.attributes).get("heron.call.id") == row[0])
    a = _attrs(span.attributes)
    assert a["gen_ai.usage.input_tokens"] == row[1]  # input_total_tokens: cache included
    assert a["gen_ai.usage.output_tokens"] == row[2]
    assert a["gen_ai.usage.cache_read.input_tokens"] == row[3]
    assert isinstance(a["gen_ai.response.finish_reasons"], list)


def test_turnless_calls_are_their_own_traces(capture_store):
    lines = _export(capture_store)
    loose = _spans(_parse(lines[-1]))
    assert loose and all(not sp.parent_span_id and sp.kind == Span.SPAN_KIND_CLIENT for _, sp in loose)
    for _, sp in loose:
        cid = _attrs(sp.attributes)["heron.call.id"]
        assert sp.trace_id.hex() == hashlib.sha256(f"trace|{cid}".encode()).hexdigest()[:32]
    assert len(_spans(_parse(lines[-2]))) == 100 or len(lines) == 21


def test_reexport_is_identical(capture_store):
    assert _export(capture_store) == _export(capture_store)


def test_subagent_tree_conversation_id_and_errors(agent_store):
    t1, t2, loose = _export(agent_store)
    spans = {sp.name: (sp, _attrs(sp.attributes)) for _, sp in _spans(_parse(t1))}
    root, ra = spans["invoke_agent claude-cli"]
    assert ra["gen_ai.conversation.id"] == "native-s-1"  # a header-sourced session id
    assert ra["gen_ai.provider.name"] == "anthropic"
    task, _ = spans["execute_tool Task"]
    sub, sa = spans["invoke_agent Explore"]
    read, _ = spans["execute_tool Read"]
    assert sa == {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Explore"}
    assert sub.parent_span_id == task.span_id  # spawned by the Task tool call
    calls = [(sp, a) for _, sp in _spans(_parse(t1)) for a in [_attrs(sp.attributes)] if "heron.call.id" in a]
    parent_of = {a["heron.call.id"]: sp.parent_span_id for sp, a in calls}
    assert parent_of["c1"] == root.span_id and parent_of["c4"] == root.span_id
    assert parent_of["c2"] == sub.span_id and parent_of["c3"] == sub.span_id
    c2 = next(sp for sp, a in calls if a["heron.call.id"] == "c2")
    assert read.parent_span_id == c2.span_id and read.status.code == Status.STATUS_CODE_ERROR
    assert task.start_time_unix_nano < task.end_time_unix_nano
    assert sub.start_time_unix_nano >= task.start_time_unix_nano
    (r2,) = [sp for _, sp in _spans(_parse(t2)) if not sp.parent_span_id]
    assert "gen_ai.conversation.id" not in _attrs(r2.attributes)  # tool_anchor: inferred, never exported
    err = next(sp for _, sp in _spans(_parse(t2)) if sp.kind == Span.SPAN_KIND_CLIENT)
    ea = _attrs(err.attributes)
    assert err.status.code == Status.STATUS_CODE_ERROR and ea["error.type"] == "overloaded_error"
    lone = {(_attrs(sp.attributes)["heron.call.id"]): _attrs(sp.attributes) for _, sp in _spans(_parse(loose))}
    assert set(lone) == {"lone", "big"}
    assert lone["lone"]["gen_ai.provider.name"] == "openai-compatible"  # the service's app label
    assert lone["lone"]["server.address"] == "10.0.0.9" and lone["lone"]["server.port"] == 8000


def test_content_is_opt_in(agent_store):
    plain = b"".join(_export(agent_store))
    for name in CALL_CONTENT | TOOL_CONTENT:
        assert name.encode() not in plain
    t1 = _export(agent_store, content=True)[0]
    spans = [(sp, _attrs(sp.attributes)) for _, sp in _spans(_parse(t1))]
    c1 = next(a for sp, a in spans if a.get("heron.call.id") == "c1")
    assert set(c1) <= CALL_ATTRS | CALL_CONTENT
    assert orjson.loads(c1["gen_ai.system_instructions"]) == [{"type": "text", "content": "You are terse."}]
    msgs = orjson.loads(c1["gen_ai.input.messages"])
    assert msgs == [{"role": "user", "parts": [{"type": "text", "content": "explore the repo"}]}]
    out = orjson.loads(c1["gen_ai.output.messages"])
    assert out[0]["role"] == "assistant" and out[0]["parts"][0]["type"] == "tool_call"
    assert out[0]["parts"][0]["name"] == "Task" and out[0]["parts"][0]["arguments"] == {"prompt": "look"}
    assert orjson.loads(c1["gen_ai.tool.definitions"])[0]["name"] == "Task"
    task = next(a for sp, a in spans if a.get("gen_ai.tool.name") == "Task")
    assert set(task) <= TOOL_ATTRS | TOOL_CONTENT and orjson.loads(task["gen_ai.tool.call.arguments"]) == {
        "prompt": "look"}
    loose = _export(agent_store, content=True)[-1]
    big = next(_attrs(sp.attributes) for _, sp in _spans(_parse(loose))
               if _attrs(sp.attributes)["heron.call.id"] == "big")
    assert not set(big) & CALL_CONTENT  # capped bodies are not JSON any more: no content


def test_filters(capture_store, agent_store):
    assert len(_export(agent_store, filters=OtlpFilters(status="incomplete"))) == 1
    assert len(_export(agent_store, filters=OtlpFilters(turn="t1"))) == 1
    assert len(_export(agent_store, filters=OtlpFilters(limit=2))) == 2
    with pytest.raises(ValueError):
        _export(agent_store, filters=OtlpFilters(status="500"))
    one = _export(capture_store, filters=OtlpFilters(source_id="codex"))
    assert one and all(b'"codex"' in line for line in one)


@pytest.mark.parametrize("provider,host,app,want", [
    ("anthropic", "api.anthropic.com", None, "anthropic"), ("openai", None, None, "openai"),
    ("google", "generativelanguage.googleapis.com", None, "gcp.gemini"),
    ("google", "us-central1-aiplatform.googleapis.com", None, "gcp.vertex_ai"),
    ("azure", "x.openai.azure.com", None, "azure.ai.openai"), ("deepseek", None, None, "deepseek"),
    (None, "10.0.0.1:11434", "ollama", "ollama"), (None, None, None, "unknown"),
])
def test_provider_names(provider, host, app, want):
    assert provider_name(provider, host, app) == want


# --- CLI ------------------------------------------------------------------------------------------


def _heron(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from heron_tui.cli import heron_main; heron_main()", *args],
                          cwd=cwd, capture_output=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def db_file(tmp_path_factory):
    from heron_core.store.db import open_store
    from tests.api.conftest import CAPTURES, ingest

    path = tmp_path_factory.mktemp("otlp") / "caps.duckdb"
    store = open_store(str(path))
    ingest([p for p in CAPTURES if p.stem in ("claude_code", "sdk_openai")], store)
    store.close()
    return path


def test_cli_writes_lines(db_file, tmp_path):
    out = tmp_path / "traces.jsonl"
    r = _heron("export", "otlp", "--db", str(db_file), "-o", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = out.read_bytes().splitlines()
    assert lines and all(_parse(x).resource_spans for x in lines)
    assert r.stderr.decode().strip() == f"exported {len(lines)}, skipped 0"
    stdout = _heron("export", "otlp", "--db", str(db_file), "--content", cwd=tmp_path)
    assert stdout.returncode == 0 and b"gen_ai.input.messages" in stdout.stdout


def test_cli_usage_errors(db_file, tmp_path):
    r = _heron("export", "otlp", "--db", str(db_file), "--status", "5xx", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.decode().startswith("heron: error: filter: ")
    r = _heron("export", "otlp", "--db", str(db_file), "--endpoint", "ftp://x", cwd=tmp_path)
    assert r.returncode == 2


class _Collector(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def test_cli_posts_to_an_endpoint(db_file, tmp_path):
    _Collector.received = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/otel/"
        r = _heron("export", "otlp", "--db", str(db_file), "--endpoint", url, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    finally:
        srv.shutdown()
    from heron_core.store.db import open_store

    with open_store(str(db_file), read_only=True) as store:
        written = _export(store)
    assert [b for _, _, b in _Collector.received] == written
    assert {(p, t) for p, t, _ in _Collector.received} == {("/otel/v1/traces", "application/json")}
    r = _heron("export", "otlp", "--db", str(db_file), "--endpoint", url, cwd=tmp_path)  # server gone
    assert r.returncode == 1 and r.stderr.decode().startswith("heron: error: --endpoint: ")
