"""Extra builders for the Responses / Gemini / Ollama wire tests (on top of ``helpers.make_exchange``).

``make_exchange`` covers SSE text and NDJSON lists; Gemini's JSON-array streaming (no ``alt=sse``) needs
an exchange whose units are the parsed array elements and whose body is the raw array text, and SSE
bodies written as ``data:``-only events (Gemini) or ``event:``+``data:`` pairs (Responses) are built here
from Python objects so the tests stay readable. Unit timestamps follow ``helpers.unit_ts``.
"""

from __future__ import annotations

import json
from typing import Any

from heron_core.records import BadUnit, Exchange

from .helpers import make_exchange, unit_ts


def sse_events(*events: dict[str, Any]) -> str:
    """OpenAI Responses SSE text: ``event: <type>`` + ``data: <json>``, ``sequence_number`` added in order
    (as the server sends it)."""
    out = []
    for seq, ev in enumerate(events):
        data = {"type": ev["type"], "sequence_number": seq, **{k: v for k, v in ev.items() if k != "type"}}
        out.append(f"event: {ev['type']}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n")
    return "".join(out)


def sse_data(*chunks: Any) -> str:
    """Data-only SSE text with CRLF event separators, as Gemini sends ``alt=sse`` streams."""
    return "".join(f"data: {json.dumps(c, ensure_ascii=False)}\r\n\r\n" for c in chunks)


def make_json_array_exchange(path: str, request: Any, elements: list[Any], *, closed: bool = True,
                             **kw: Any) -> Exchange:
    """A Gemini JSON-array stream: units are the parsed elements (``BadUnit`` kept as text), the body is
    ``[{…},\\r\\n{…}]`` (without the closing ``]`` when ``closed`` is false)."""
    ex = make_exchange(path, request, **kw)
    texts = [e.text if isinstance(e, BadUnit) else json.dumps(e, indent=2,
                                                              ensure_ascii=False) for e in elements]
    raw = "[" + ",\r\n".join(texts) + ("\n]" if closed else "")
    ex.stream_format = "json-array"
    ex.stream_units = [(unit_ts(i), e) for i, e in enumerate(elements)]
    ex.response_body = raw.encode()
    ex.response_body_bytes = len(ex.response_body)
    ex.response_headers = [("Content-Type", "application/json; charset=UTF-8")]
    if ex.stream_units:
        ex.first_chunk = ex.stream_units[0][0]
        ex.response_end = ex.stream_units[-1][0] + 1_000
    return ex


def ndjson_body(*lines: Any) -> bytes:
    """A whole body of several JSON lines (NDJSON relabelled as ``application/json`` by a proxy)."""
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)
