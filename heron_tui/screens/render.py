"""Plain-text renderings of a call's stored data, one per call-detail tab.

The screen shows them (JSON through rich ``Syntax``) and ``y`` copies exactly this text, so what is
copied is what is seen. Nothing here touches widgets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

from heron_core.http.streams import make_splitter
from heron_core.query.details import Block
from heron_core.records import BadUnit, SseEvent
from heron_tui.screens import fmt

DISPLAY_CAP = 256 * 1024
"""Characters of a body shown before ``a`` (show all) is needed: rich renders every line it is given."""
HEX_LIMIT = 64 * 1024
STREAM_EVENTS_SHOWN = 5000
STREAM_DATA_CHARS = 400
STREAM_FOOTNOTE = ("Times are relative to request_start. The stored stream keeps no per-event timestamps: "
                   "only the first event (first_chunk) and the first token (first_token) are timed.")


@dataclass(slots=True)
class BodyView:
    """A body as shown: ``text`` (maybe cut to the display cap), whether it is JSON (to highlight),
    ``notes`` (capped in the store, cut for display, rebuilt from a stream …) and ``hidden`` (chars not
    shown until ``a``)."""

    text: str
    is_json: bool
    notes: list[str]
    hidden: int = 0


def pretty_json(text: str) -> tuple[str, bool]:
    """``(indented JSON, True)`` when ``text`` parses, else ``(text, False)`` — capped bodies hold the
    heron elision line and are shown as stored."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text, False
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode(), True
    except TypeError:
        return text, False


def body_view(detail: dict[str, Any], part: str, show_all: bool = False) -> BodyView:
    """The Request (``request``) or Response tab. For a streamed response the Response tab shows the
    rebuilt ``response_object`` (the raw events are in Stream)."""
    bodies = detail.get("bodies", {})
    notes: list[str] = []
    if part == "response" and detail["call"].get("is_stream") and "response_object" in bodies:
        b = bodies["response_object"]
        notes.append("rebuilt from the stream (the raw events are in the Stream tab)")
    else:
        b = bodies.get(part)
    if b is None:
        return BodyView("", False, [f"no {part} body stored"])
    if not b.get("is_text"):
        size = len(b.get("bytes") or b"")
        return BodyView("", False, [f"binary body ({fmt.nbytes(size)}): see the Hex tab"])
    if b.get("truncated"):
        notes.append(f"stored body capped: {b.get('dropped_bytes') or 0} of {b.get('original_bytes')} bytes "
                     "elided (marked in place by heron)")
    text, is_json = pretty_json(b["text"])
    hidden = 0
    if not show_all and len(text) > DISPLAY_CAP:
        hidden = len(text) - DISPLAY_CAP
        text = text[:DISPLAY_CAP]
        notes.append(f"showing the first {fmt.nbytes(DISPLAY_CAP)}; {hidden} more characters — "
                     "press a to show all")
    return BodyView(text, is_json, notes, hidden)


def stream_text(detail: dict[str, Any]) -> str:
    """The Stream tab: events re-split from the stored raw stream, one per line, with index and (for
    the first event) the first-chunk time; a header with first-token time; the footnote."""
    call = detail["call"]
    exchange = detail.get("exchange") or {}
    fmt_name = call.get("stream_format") or exchange.get("stream_format")
    b = detail.get("bodies", {}).get("response")
    if not fmt_name:
        return "not a streamed response"
    if b is None:
        return "no response body stored"
    raw = b["text"].encode() if b.get("is_text") else b.get("bytes", b"")
    splitter = make_splitter(fmt_name, Counter())
    units = [u for _ts, u in splitter.feed(raw, 0)] + [u for _ts, u in splitter.finish(0)]
    rs = call.get("request_start")

    def rel(t: float | None) -> str:
        return f"+{fmt.ms((t - rs) * 1000)}" if t is not None and rs is not None else "–"

    lines = [f"{fmt_name} stream: {len(units)} events; first chunk {rel(call.get('first_chunk'))}, "
             f"first token {rel(call.get('first_token'))}, end {rel(call.get('response_end'))}"]
    if b.get("truncated"):
        lines.append(f"stored stream capped: {b.get('dropped_bytes') or 0} bytes elided; events around the "
                     "cut are broken")
    lines.append("")
    for i, unit in enumerate(units[:STREAM_EVENTS_SHOWN]):
        if isinstance(unit, SseEvent):
            name, data = unit.event or "message", unit.data
        elif isinstance(unit, BadUnit):
            name, data = "invalid", unit.text
        else:
            kind = unit.get("type") if isinstance(unit, dict) else None
            name = kind if isinstance(kind, str) else ""
            data = orjson.dumps(unit).decode()
        data = data if len(data) <= STREAM_DATA_CHARS else data[: STREAM_DATA_CHARS - 1] + "…"
        when = rel(call.get("first_chunk")) if i == 0 else ""
        lines.append(f"#{i:<5} {when:>10}  {name:<28} {data}".rstrip())
    if len(units) > STREAM_EVENTS_SHOWN:
        lines.append(f"… {len(units) - STREAM_EVENTS_SHOWN} more events")
    lines += ["", STREAM_FOOTNOTE]
    return "\n".join(lines)


def http_text(detail: dict[str, Any]) -> str:
    """The HTTP tab: request and response heads as stored (already redacted), then transfer facts."""
    ex = detail.get("exchange")
    if ex is None:
        return "no exchange stored"
    target = ex.get("path") or "/"
    if ex.get("query"):
        target += "?" + ex["query"]
    version = ex.get("http_version") or "HTTP/1.1"
    lines = [f"{ex.get('method') or 'POST'} {target} {version}"]
    lines += [f"{k}: {v}" for k, v in (ex.get("request_headers") or [])]
    lines.append("")
    status = ex.get("status_code")
    lines.append(f"{version} {status if status is not None else '(no response)'}")
    lines += [f"{k}: {v}" for k, v in (ex.get("response_headers") or [])]
    lines.append("")
    damage = "yes: " + ", ".join(ex.get("damage") or []) if ex.get("damaged") else "no"
    lines.append(f"state {ex.get('state')}; damaged {damage}")
    lines.append(f"request body {fmt.nbytes(ex.get('request_body_bytes'))}, "
                 f"{fmt.nbytes(ex.get('request_wire_bytes'))} on the wire; response body "
                 f"{fmt.nbytes(ex.get('response_body_bytes'))}, {fmt.nbytes(ex.get('response_wire_bytes'))} "
                 "on the wire")
    client = f"{ex.get('client_ip')}:{ex.get('client_port')}" if ex.get("client_ip") else "–"
    server = f"{ex.get('server_ip')}:{ex.get('server_port')}" if ex.get("server_ip") else "–"
    if ex.get("process_pid") is not None:  # eBPF: no 5-tuple; the process made the call, Host names the server
        client = f"{ex.get('process_comm') or '?'}[{ex['process_pid']}]"
        server = ex.get("host") or server
    lines.append(f"client {client} → server {server}")
    if ex.get("process_pid") is not None:
        lines.append(f"process pid {ex['process_pid']}, {ex.get('process_comm') or '?'}, "
                     f"{ex.get('process_exe') or 'executable unknown'} (eBPF)")
    lines.append("Headers are shown as stored: credentials are redacted.")
    return "\n".join(lines)


def hexdump(data: bytes, limit: int = HEX_LIMIT) -> str:
    """Classic 16-bytes-a-line dump of the first ``limit`` bytes."""
    lines = []
    for off in range(0, min(len(data), limit), 16):
        chunk = data[off: off + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk[:8]) + "  " + " ".join(f"{b:02x}" for b in chunk[8:])
        asc = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}  {hexes:<48}  |{asc}|")
    return "\n".join(lines)


def hex_text(detail: dict[str, Any]) -> str:
    """The Hex tab: the stored response body (decoded, as stored), first 64 KiB."""
    b = detail.get("bodies", {}).get("response")
    if b is None:
        return "no response body stored"
    data = b["text"].encode() if b.get("is_text") else b.get("bytes", b"")
    head = f"response body: {fmt.nbytes(len(data))} stored"
    if b.get("truncated"):
        head += f" (capped: {b.get('dropped_bytes') or 0} bytes elided)"
    if len(data) > HEX_LIMIT:
        head += f"; showing the first {fmt.nbytes(HEX_LIMIT)}"
    return head + "\n\n" + hexdump(data)


def block_title(block: Block) -> str:
    if block.kind == "tool_call":
        return f"tool call → {block.name or '?'}" + (f"  {block.id}" if block.id else "")
    if block.kind == "tool_result":
        title = f"tool result ← {block.name or '?'}" + (f"  {block.id}" if block.id else "")
        return title + ("  (error)" if block.is_error else "")
    return block.kind


def block_body(block: Block) -> str:
    if block.kind == "tool_call":
        return orjson.dumps(block.arguments or {}, option=orjson.OPT_INDENT_2).decode()
    text = block.text if block.text is not None else ""
    if block.dropped:
        text += ("\n" if text else "") + " ".join(f"[{d} not shown]" for d in block.dropped)
    return text


def conversation_text(blocks: list[Block]) -> str:
    """The Conversation tab as text (for ``y``)."""
    out = []
    for b in blocks:
        out.append(f"── {block_title(b)}{' (response)' if b.source == 'response' else ''}")
        out.append(block_body(b))
        out.append("")
    return "\n".join(out)


def summary_line(call: dict[str, Any]) -> str:
    """The call's one-line identity above the tabs."""
    parts = [f"call {fmt.short_id(call['call_id'])}", call.get("wire_api") or "?", call.get("model") or "?"]
    if call.get("subagent"):
        parts.append(f"sub-agent {call['subagent']}")
    status = call.get("status_code")
    parts.append(f"{status if status is not None else '–'} {call.get('finish') or ''}".strip())
    if (call.get("attempt") or 1) > 1:
        parts.append(f"attempt {call['attempt']}")
    parts.append(f"ttft {fmt.ms(call.get('ttft_ms'))}")
    parts.append(f"e2e {fmt.ms(call.get('e2e_ms'))}")
    tin, tout = fmt.tokens(call.get("input_total_tokens")), fmt.tokens(call.get("output_tokens"))
    parts.append(f"tokens {tin}/{tout}")
    parts.append(fmt.cost(call.get("cost_usd")))
    if call.get("error"):
        err = call["error"]
        parts.append(f"error {err.get('source')}/{err.get('type')}: {fmt.one_line(err.get('message'), 80)}")
    return " · ".join(parts)
