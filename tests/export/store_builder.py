"""Hand-made stores for the SFT export and detail-screen tests.

Calls, exchanges and bodies go through the real writer (``StoreWriter``) and body encoder
(``encode_body``), so the tests read exactly what an ingest would have stored; turns, tool calls and
insights are written as rows, as the assembler writes them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from heron_core.bodies import encode_body, make_compressor
from heron_core.records import Call, Exchange, ToolCall
from heron_core.store.db import Store, open_store
from heron_core.store.writer import StoreWriter

T0 = 1_700_000_000.0
SOURCE = "src"


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return orjson.dumps(value)


class StoreBuilder:
    """An in-memory (or file) store filled call by call."""

    def __init__(self, path: str | None = None) -> None:
        self.store: Store = open_store(path)
        self.writer = StoreWriter(self.store, Counter())
        self._comp = make_compressor()

    @property
    def conn(self):
        return self.store.conn

    def add_call(
        self,
        call_id: str,
        wire_api: str,
        request: Any,
        response_object: Any,
        *,
        raw_response: Any = None,
        cap: int = 0,
        start: float = 0.0,
        duration: float = 1.0,
        ttft: float | None = 0.25,
        request_headers: list[tuple[str, str]] | None = None,
        response_headers: list[tuple[str, str]] | None = None,
        stream_format: str | None = None,
        **kw: Any,
    ) -> Call:
        """One call with its exchange and bodies. ``start``/``duration``/``ttft`` are seconds relative to
        ``T0``; ``raw_response`` is the stored ``response`` part (default: the JSON of the object);
        ``cap`` > 0 caps the stored bodies (truncated bodies)."""
        rs = T0 + start
        fields: dict[str, Any] = dict(
            call_id=call_id,
            source_id=SOURCE,
            agent_kind="claude-cli",
            session_id="s-1",
            wire_api=wire_api,
            operation="chat",
            detected_by="route",
            model_requested="m-1",
            model="m-1",
            method="POST",
            path="/v1/messages",
            status_code=200,
            client_ip="10.0.0.1",
            client_port=40000,
            server_ip="10.0.0.2",
            server_port=443,
            server="10.0.0.2:443",
            host="api.example.com",
            is_stream=stream_format is not None,
            stream_format=stream_format,
            request_start=rs,
            request_end=rs + 0.01,
            response_start=rs + (ttft or 0.2) * 0.8,
            first_chunk=rs + (ttft or 0.2) * 0.9,
            first_token=None if ttft is None else rs + ttft,
            response_end=rs + duration,
            e2e_ms=duration * 1000,
            ttft_ms=None if ttft is None else ttft * 1000,
            finish="stop",
            finish_reason_raw="end_turn",
            ok=True,
            input_total_tokens=100,
            output_tokens=10,
            total_tokens=110,
            cost_usd=0.001,
            request_hash=call_id,
        )
        fields.update(kw)
        call = Call(**fields)
        req = _bytes(request)
        resp = _bytes(raw_response) if raw_response is not None else _bytes(response_object)
        call.request_body_bytes, call.response_body_bytes = len(req), len(resp)
        self.writer.add_call(call)
        ex = Exchange(
            exchange_id=call_id,
            source_id=SOURCE,
            ordinal=0,
            client_ip=call.client_ip,
            client_port=call.client_port,
            server_ip=call.server_ip,
            server_port=call.server_port,
            method="POST",
            path=call.path,
            http_version="HTTP/1.1",
            request_headers=request_headers
            or [
                ("Host", "api.example.com"),
                ("Content-Type", "application/json"),
                ("x-api-key", "[REDACTED:0badc0de]"),
            ],
            request_body=req,
            request_body_bytes=len(req),
            request_wire_bytes=len(req) + 120,
            status_code=call.status_code,
            response_headers=response_headers
            or [("Content-Type", "text/event-stream" if stream_format == "sse" else "application/json")],
            response_body=resp,
            response_body_bytes=len(resp),
            response_wire_bytes=len(resp) + 80,
            stream_format=stream_format,
            request_start=int(rs * 1e6),
            request_end=int((rs + 0.01) * 1e6),
            response_start=int(call.response_start * 1e6),
            first_chunk=int(call.first_chunk * 1e6),
            response_end=int(call.response_end * 1e6),
        )
        self.writer.add_exchange(ex, True, call.first_token)
        rows = []
        if req:
            rows.append(encode_body(call_id, "request", req, cap, self._comp))
        if resp:
            rows.append(encode_body(call_id, "response", resp, cap, self._comp))
        if response_object is not None:
            rows.append(encode_body(call_id, "response_object", _bytes(response_object), cap, self._comp))
        self.writer.add_bodies(rows)
        return call

    def add_turn(
        self,
        turn_id: str,
        calls: list[Call],
        *,
        status: str = "complete",
        final: Call | None = None,
        session_id: str = "s-1",
        **kw: Any,
    ) -> dict[str, Any]:
        """A turns row over ``calls`` (turn_id written onto them); the final call defaults to the last
        main-agent call."""
        mains = [c for c in calls if c.subagent is None]
        final = final if final is not None else (mains[-1] if mains else None)
        row: dict[str, Any] = dict(
            turn_id=turn_id,
            session_id=session_id,
            source_id=SOURCE,
            agent_kind="claude-cli",
            status=status,
            end_reason="terminal" if status == "complete" else "idle",
            start=min(c.request_start for c in calls),
            end=max(c.response_end for c in calls),
            anchor_call_id=calls[0].call_id,
            final_call_id=final.call_id if final else None,
            call_ids=[c.call_id for c in calls],
            user_input_preview="do the thing",
            final_answer_preview="done",
            finish=final.finish if final else None,
            wire_api=calls[0].wire_api,
            server=calls[0].server,
            models=["m-1"],
            subagents=sorted({c.subagent for c in calls if c.subagent}),
            call_count=len(calls),
            main_call_count=len(mains),
            subagent_call_count=len(calls) - len(mains),
            retry_count=sum(1 for c in calls if c.attempt > 1),
            input_total_tokens=sum(c.input_total_tokens or 0 for c in calls),
            output_tokens=sum(c.output_tokens or 0 for c in calls),
            total_tokens=sum(c.total_tokens or 0 for c in calls),
            cost_usd=round(sum(c.cost_usd or 0 for c in calls), 6),
            cost_complete=True,
            tool_call_count=sum(len(c.tool_calls) for c in calls),
            tool_error_count=0,
            tool_missing_count=0,
            insight_count=0,
            insight_kinds=[],
        )
        row["duration_ms"] = (row["end"] - row["start"]) * 1000
        row.update(kw)
        self.writer.add_rows("turns", [row])
        self.writer.update_calls([(c.call_id, turn_id, session_id) for c in calls])
        return row

    def add_tool_call(
        self,
        call: Call,
        tool: ToolCall,
        seq: int,
        *,
        result: Call | None = None,
        status: str | None = None,
        turn_id: str | None = None,
    ) -> None:
        row: dict[str, Any] = dict(
            call_id=call.call_id,
            tool_call_id=tool.id,
            session_id=call.session_id,
            turn_id=turn_id,
            subagent=call.subagent,
            seq=seq,
            name=tool.name,
            arguments=tool.arguments,
            args_hash="h",
            issued_at=call.response_end,
            result_status=status or ("ok" if result else "pending"),
        )
        if result is not None:
            row.update(
                result_call_id=result.call_id,
                result_at=result.request_start,
                wait_ms=(result.request_start - call.response_end) * 1000,
                result_bytes=10,
                result_preview="ok",
            )
        self.writer.add_rows("tool_calls", [row])

    def add_insight(
        self,
        insight_id: str,
        kind: str,
        severity: str,
        summary: str,
        call_ids: list[str],
        turn_id: str | None = None,
    ) -> None:
        self.writer.add_rows(
            "insights",
            [
                dict(
                    insight_id=insight_id,
                    kind=kind,
                    severity=severity,
                    source_id=SOURCE,
                    session_id="s-1",
                    turn_id=turn_id,
                    call_ids=call_ids,
                    first_seen=T0,
                    last_seen=T0,
                    count=1,
                    summary=summary,
                    details={},
                    dedupe_key=insight_id,
                )
            ],
        )

    def flush(self) -> "StoreBuilder":
        self.writer.flush()
        return self
