"""Body capping and compression for the ``bodies`` table (interfaces.md §4).

Runs in the decode worker after decoding, parsing and redaction, so the stored bytes are already
redacted and all extraction has seen the full body. A body over its cap keeps the first 75 % and the
last 25 % of the cap — the head holds the request/model/system prompt, the tail the latest messages or
the end of the stream (usage, finish reason) — joined by one marker line naming how much was elided.
Text is cut on UTF-8 character boundaries so the stored text still decodes.

Compression is zstd level 3; ``zstandard`` compressor objects are reusable but not thread-safe, so the
caller owns one per worker (``make_compressor``) and passes it in.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import orjson
import zstandard

from heron_core.config import Config
from heron_core.records import Call, Exchange

CODEC_ZSTD = "zstd"
ZSTD_LEVEL = 3
HEAD_SHARE = 0.75


class BodyRow(NamedTuple):
    """One row of the ``bodies`` table, fields in column order.

    ``original_bytes``: the full body size (decoded); ``stored_bytes``: the size of ``data`` as stored
    (compressed); ``dropped_bytes``: body bytes not stored — elided by the cap, plus any the HTTP stage
    did not keep (``http.max_body_bytes``); ``truncated``: the stored body is not the whole body.
    """

    exchange_id: str
    part: str  # 'request' | 'response' | 'response_object'
    codec: str
    data: bytes
    original_bytes: int
    stored_bytes: int
    dropped_bytes: int
    truncated: bool
    is_text: bool


def make_compressor() -> zstandard.ZstdCompressor:
    """A zstd level-3 compressor; keep one per worker and reuse it for every body."""
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL)


def elision_marker(n: int) -> bytes:
    return f"\n[… heron: {n} bytes elided …]\n".encode()


def is_text(data: bytes, cut: bool = False) -> bool:
    """Valid UTF-8 (including empty) counts as text. ``cut``: the bytes are a prefix of a longer body,
    so an incomplete character at the very end is expected and still text."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return cut and e.reason == "unexpected end of data" and e.end == len(data)
    return True


def cap_body(data: bytes, cap: int, text: bool) -> tuple[bytes, int]:
    """Apply the store cap: ``(stored bytes, elided byte count)``. ``cap <= 0`` means no limit.

    Over the cap: head = ``floor(cap × 0.75)`` bytes, tail = the rest of the cap; for text the head cut
    moves back and the tail cut moves forward to the nearest character boundary, so never more than
    ``cap`` body bytes are kept.
    """
    n = len(data)
    if cap <= 0 or n <= cap:
        return data, 0
    head = int(cap * HEAD_SHARE)
    tail_start = n - (cap - head)
    if text:
        # UTF-8 continuation bytes are 0b10xxxxxx; a cut must not land on one.
        while head > 0 and (data[head] & 0xC0) == 0x80:
            head -= 1
        while tail_start < n and (data[tail_start] & 0xC0) == 0x80:
            tail_start += 1
    elided = tail_start - head
    return data[:head] + elision_marker(elided) + data[tail_start:], elided


def encode_body(
    exchange_id: str,
    part: str,
    data: bytes,
    cap: int,
    compressor: zstandard.ZstdCompressor,
    total_bytes: int | None = None,
) -> BodyRow:
    """Cap and compress one body. ``total_bytes`` is the full decoded size when the HTTP stage kept
    only a prefix (``len(data) < total_bytes``); the missing part counts as dropped and truncated."""
    missing = max(0, (total_bytes or 0) - len(data))
    text = is_text(data, cut=missing > 0)
    kept, elided = cap_body(data, cap, text)
    stored = compressor.compress(kept)
    return BodyRow(
        exchange_id=exchange_id,
        part=part,
        codec=CODEC_ZSTD,
        data=stored,
        original_bytes=len(data) + missing,
        stored_bytes=len(stored),
        dropped_bytes=elided + missing,
        truncated=bool(elided or missing),
        is_text=text,
    )


def body_rows(
    ex: Exchange, call: Call | None, cfg: Config, compressor: zstandard.ZstdCompressor | None = None
) -> list[BodyRow]:
    """Body rows of one exchange: ``request``, ``response`` (raw stream text for streams) and, for LLM
    calls with a rebuilt response, ``response_object``. Empty bodies get no row.

    ``call`` is the decoded LLM call (None for other exchanges); it selects the cap:
    ``store.body_cap`` for LLM exchanges, ``store.other_body_cap`` otherwise.
    """
    comp = compressor if compressor is not None else make_compressor()
    cap = cfg.store_body_cap if call is not None else cfg.store_other_body_cap
    rows: list[BodyRow] = []
    if ex.request_body or ex.request_body_bytes:
        rows.append(encode_body(ex.exchange_id, "request", ex.request_body, cap, comp, ex.request_body_bytes))
    if ex.response_body or ex.response_body_bytes:
        rows.append(
            encode_body(ex.exchange_id, "response", ex.response_body, cap, comp, ex.response_body_bytes)
        )
    if call is not None and call.x_response_object is not None:
        obj = _dump_json(call.x_response_object)
        rows.append(encode_body(ex.exchange_id, "response_object", obj, cap, comp))
    return rows


def _dump_json(obj: object) -> bytes:
    """JSON of a rebuilt response object; unusual values (non-str keys, odd types) degrade to text
    rather than losing the body."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        pass
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS, default=str)
    except TypeError:  # integers beyond 64 bits
        return json.dumps(obj, default=str, ensure_ascii=False).encode()


def decompress_body(codec: str, data: bytes) -> bytes:
    """Stored ``data`` → the (capped) body bytes."""
    if codec == CODEC_ZSTD:
        return zstandard.ZstdDecompressor().decompress(data)
    if codec in ("none", "identity"):
        return bytes(data)
    raise ValueError(f"unknown body codec {codec!r}")
