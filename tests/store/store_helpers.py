"""Builders shared by the store tests: hand-made records with every kind of column filled."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from heron_core.records import Call, Exchange, Process, ToolCall

SPEC = Path(os.environ.get("HERON_SPEC_DIR", "/work/shared/spec")) / "interfaces.md"


def make_call(i: int = 0, **kw: Any) -> Call:
    """A fully populated call; ``i`` varies id and time, keywords override fields."""
    base: dict[str, Any] = dict(
        call_id=f"00000000-0000-5000-8000-{i:012d}",
        source_id="cap",
        agent_kind="claude-cli",
        session_id="sess-1",
        native_session_id="native-1",
        session_source="metadata",
        client_ip="10.0.0.1",
        client_port=50000 + i,
        server_ip="10.0.0.2",
        server_port=443,
        server="10.0.0.2:443",
        host="api.anthropic.com",
        process=Process(4242, "node", "/usr/bin/node"),
        path="/v1/messages",
        status_code=200,
        wire_api="anthropic",
        operation="chat",
        detected_by="route",
        provider="anthropic",
        model_requested="claude-sonnet-4",
        model="claude-sonnet-4-20250514",
        response_id=f"msg_{i}",
        is_stream=True,
        stream_format="sse",
        request_start=1_700_000_000.123456 + i,
        request_end=1_700_000_000.2 + i,
        response_start=1_700_000_000.5 + i,
        first_chunk=1_700_000_000.6 + i,
        first_token=1_700_000_000.7 + i,
        response_end=1_700_000_002.0 + i,
        ttft_ms=576.544,
        e2e_ms=1876.544,
        tpot_ms=13.0,
        finish_reason_raw="tool_use",
        finish="tool_use",
        ok=True,
        tool_calls=[ToolCall("toolu_01", "Bash", {"command": "ls", "timeout": 5})],
        tool_call_count=1,
        input_tokens=12,
        cache_read_tokens=1000,
        input_total_tokens=1012,
        output_tokens=101,
        total_tokens=1113,
        cost_usd=0.0123,
        cost_status="priced",
        price_version="p1",
        request_body_bytes=2048,
        response_body_bytes=4096,
        request_wire_bytes=2300,
        response_wire_bytes=4500,
        request_hash="h" * 16,
        ratelimit={"limit_requests": 50, "remaining_requests": 49, "reset": None},
        input_preview="héllo ✓",
        output_preview="done",
        usage_raw={"input_tokens": 12, "cache_read_input_tokens": 1000},
        user_text="héllo ✓ full",
        assistant_text="answer",
        hop_overhead_ms={"request": 1.5},
        choices_ignored=0,
    )
    base.update(kw)
    return Call(**base)


def make_exchange(i: int = 0, **kw: Any) -> Exchange:
    base: dict[str, Any] = dict(
        exchange_id=f"00000000-0000-5000-8000-{i:012d}",
        source_id="cap",
        ordinal=0,
        client_ip="10.0.0.1",
        client_port=50000 + i,
        server_ip="10.0.0.2",
        server_port=443,
        method="POST",
        path="/v1/messages",
        query="beta=true",
        http_version="HTTP/1.1",
        request_headers=[("Host", "api.anthropic.com"), ("Content-Type", "application/json"),
                         ("x-api-key", "[REDACTED:1a2b3c4d]")],
        request_body=b'{"model":"claude"}',
        request_body_bytes=18,
        request_wire_bytes=200,
        status_code=200,
        reason="OK",
        response_headers=[("Content-Type", "text/event-stream"), ("Content-Encoding", "gzip")],
        response_body=b"event: message_start\ndata: {}\n\n",
        response_body_bytes=31,
        response_wire_bytes=120,
        stream_format="sse",
        stream_units=[(1_700_000_000_600_000, None)],
        request_start=1_700_000_000_123_456,
        request_end=1_700_000_000_200_000,
        response_start=1_700_000_000_500_000,
        first_chunk=1_700_000_000_600_000,
        response_end=1_700_000_002_000_001,
        damage={"gap", "truncated"},
    )
    base.update(kw)
    return Exchange(**base)


def spec_fields(section_heading: str) -> list[str]:
    """Field names of a spec table (first column, backticked, comma-separated), in order."""
    text = SPEC.read_text(encoding="utf-8")
    start = text.index(section_heading)
    end = text.find("\n### ", start + len(section_heading))
    names: list[str] = []
    for line in text[start:end].splitlines():
        if line.startswith("| `"):
            names.extend(re.findall(r"`([a-z0-9_]+)`", line.split("|")[1]))
    return names
