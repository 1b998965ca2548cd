"""Builders for wire-stage tests: hand-made ``Exchange`` objects with literal bodies.

SSE bodies are written as the literal text a server sends and split here with a minimal splitter that
follows capture-and-http.md §8.1, so the tests read like captures. Unit timestamps start at
``T0 + 500 ms`` and grow by 10 ms per unit, so a test can say which unit carried the first token.
"""

from __future__ import annotations

from typing import Any

import orjson

from heron_core.records import BadUnit, Exchange, SseEvent

T0 = 1_700_000_000_000_000  # request_start, µs
REQ_END = T0 + 2_000
RESP_START = T0 + 300_000
UNIT0 = T0 + 500_000
UNIT_STEP = 10_000


def unit_ts(i: int) -> int:
    """Timestamp of the i-th stream unit."""
    return UNIT0 + i * UNIT_STEP


def split_sse(text: str) -> list[SseEvent]:
    """Dispatched events of an SSE body (§8.1 rules; enough for tests)."""
    events: list[SseEvent] = []
    event: str | None = None
    data: list[str] = []
    ev_id: str | None = None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for line in lines:
        if line == "":
            if data or event is not None:
                if data:
                    events.append(SseEvent(event, "\n".join(data), ev_id))
            event, data = None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            ev_id = value
    if data:
        events.append(SseEvent(event, "\n".join(data), ev_id))
    return events


def body(obj: Any) -> bytes:
    return obj if isinstance(obj, bytes) else orjson.dumps(obj)


def make_exchange(
    path: str,
    request: Any,
    *,
    response: Any = None,
    sse: str | None = None,
    ndjson: list[Any] | None = None,
    status: int | None = 200,
    request_headers: list[tuple[str, str]] | None = None,
    response_headers: list[tuple[str, str]] | None = None,
    host: str = "api.example.test",
    method: str = "POST",
    state: str = "complete",
    end_cause: str | None = None,
    damage: set[str] | None = None,
) -> Exchange:
    """An exchange as the HTTP stage would hand it over (bodies decoded, timestamps in µs)."""
    req_bytes = body(request) if request is not None else b""
    headers = [("Host", host)]
    if request_headers is None:
        headers.append(("Content-Type", "application/json"))
    else:
        headers.extend(request_headers)
    ex = Exchange(
        exchange_id="ex-1", source_id="test", ordinal=0, client_ip="10.0.0.2", client_port=50000,
        server_ip="10.0.0.1", server_port=443, method=method, path=path, http_version="HTTP/1.1",
        request_headers=headers, request_body=req_bytes, request_body_bytes=len(req_bytes),
        request_wire_bytes=len(req_bytes) + 200, request_start=T0, request_end=REQ_END,
        state=state, end_cause=end_cause, damage=set(damage or ()),
    )
    if status is None:
        ex.response_end = T0 + 5_000_000
        return ex
    ex.status_code = status
    ex.response_start = RESP_START
    resp_headers = list(response_headers or [])
    if sse is not None:
        units = split_sse(sse)
        ex.stream_format = "sse"
        ex.stream_units = [(unit_ts(i), u) for i, u in enumerate(units)]
        ex.response_body = sse.encode()
        resp_headers.append(("Content-Type", "text/event-stream"))
    elif ndjson is not None:
        ex.stream_format = "ndjson"
        ex.stream_units = [(unit_ts(i), u if isinstance(u, BadUnit) else u) for i, u in enumerate(ndjson)]
        ex.response_body = b"\n".join(orjson.dumps(u) for u in ndjson if not isinstance(u, BadUnit))
        resp_headers.append(("Content-Type", "application/x-ndjson"))
    elif response is not None:
        ex.response_body = body(response)
        resp_headers.append(("Content-Type", "application/json"))
    ex.response_headers = resp_headers
    ex.response_body_bytes = len(ex.response_body)
    ex.response_wire_bytes = len(ex.response_body) + 150
    if ex.stream_units:
        ex.first_chunk = ex.stream_units[0][0]
        ex.response_end = ex.stream_units[-1][0] + 1_000
    else:
        ex.response_end = RESP_START + 50_000
    return ex
