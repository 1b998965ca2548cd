"""Body capping (75 % head / 25 % tail, UTF-8 safe), compression and body rows (interfaces.md §4)."""

from __future__ import annotations

import orjson
import pytest
from store_helpers import make_call, make_exchange

from heron_core.bodies import (
    BodyRow,
    body_rows,
    cap_body,
    decompress_body,
    elision_marker,
    encode_body,
    make_compressor,
)
from heron_core.config import Config


def _stored(row: BodyRow) -> bytes:
    return decompress_body(row.codec, row.data)


def test_under_cap_is_stored_whole_and_roundtrips():
    comp = make_compressor()
    data = b'{"a": "' + b"x" * 5000 + b'"}'
    row = encode_body("e1", "request", data, 1 << 20, comp)
    assert row == BodyRow("e1", "request", "zstd", row.data, len(data), len(row.data), 0, False, True)
    assert _stored(row) == data
    assert row.stored_bytes < len(data)  # compressed


def test_ascii_cap_exact_bytes():
    data = bytes(range(48, 58)) * 100  # 1000 ASCII bytes
    kept, n = cap_body(data, 100, text=True)
    assert n == 900
    assert kept == data[:75] + b"\n[\xe2\x80\xa6 heron: 900 bytes elided \xe2\x80\xa6]\n" + data[-25:]
    assert kept == data[:75] + "\n[… heron: 900 bytes elided …]\n".encode() + data[-25:]


def test_odd_cap_splits_floor_head():
    data = b"a" * 50
    kept, n = cap_body(data, 11, text=True)  # head floor(8.25)=8, tail 3
    assert n == 39 and kept == b"a" * 8 + elision_marker(39) + b"a" * 3


def test_text_cut_moves_to_character_boundaries():
    # head cut at byte 75 falls inside "é" (2 bytes) and the tail cut inside "✓" (3 bytes)
    head = "a" * 74 + "é" + "b" * 100  # 'é' occupies bytes 74..75
    tail = "✓" + "c" * 23  # 26 bytes: the tail cut (last 25 bytes) lands on its 2nd byte
    data = (head + "m" * 500 + tail).encode()
    kept, n = cap_body(data, 100, text=True)
    text = kept.decode("utf-8")  # still valid UTF-8
    marker = elision_marker(n).decode()
    h, t = text.split(marker)
    assert h == "a" * 74  # head moved back before 'é': 74 bytes (< 75)
    assert t == "c" * 23  # tail moved forward past '✓': 23 bytes (< 25)
    assert n == len(data) - 74 - 23
    assert len(h.encode()) + len(t.encode()) <= 100


def test_text_cut_on_boundary_is_exact():
    data = ("é" * 500).encode()  # 1000 bytes, boundaries at even offsets
    kept, n = cap_body(data, 200, text=True)  # head 150 (even), tail from 950 (even)
    assert n == 800
    assert kept == data[:150] + elision_marker(800) + data[-50:]


def test_binary_cut_is_exact_bytes():
    data = bytes([0x80 | (i % 64) for i in range(1000)])  # all continuation-like bytes
    kept, n = cap_body(data, 100, text=False)
    assert n == 900 and kept == data[:75] + elision_marker(900) + data[-25:]


def test_zero_cap_means_no_limit():
    data = b"z" * 10_000
    assert cap_body(data, 0, text=True) == (data, 0)


def test_capped_row_fields_and_binary_detection():
    comp = make_compressor()
    data = b"\xff\xfe" + bytes(range(256)) * 40
    row = encode_body("e1", "response", data, 1000, comp)
    assert row.truncated and not row.is_text
    assert row.original_bytes == len(data) and row.dropped_bytes == len(data) - 1000
    assert row.stored_bytes == len(row.data)
    assert _stored(row) == data[:750] + elision_marker(len(data) - 1000) + data[-250:]


def test_body_rows_llm_exchange_uses_body_cap_and_adds_response_object():
    cfg = Config.load(store_body_cap=100, store_other_body_cap=10)
    req = ('{"messages":"' + "ü" * 200 + '"}').encode()
    stream = b"event: a\ndata: {}\n\n" * 20
    ex = make_exchange(request_body=req, request_body_bytes=len(req), response_body=stream,
                       response_body_bytes=len(stream))
    obj = {"id": "msg_1", "content": [{"type": "text", "text": "hi ✓"}]}
    call = make_call(x_response_object=obj)
    rows = {r.part: r for r in body_rows(ex, call, cfg)}
    assert set(rows) == {"request", "response", "response_object"}
    assert all(r.exchange_id == ex.exchange_id and r.codec == "zstd" for r in rows.values())
    r = rows["request"]
    assert r.truncated and r.is_text and r.original_bytes == len(req)
    assert _stored(r).decode().startswith('{"messages":"')  # valid UTF-8 after the cut
    s = rows["response"]
    assert s.truncated and _stored(s).startswith(stream[:75])
    o = rows["response_object"]
    assert not o.truncated and orjson.loads(_stored(o)) == obj


def test_body_rows_other_exchange_uses_other_cap_and_no_response_object():
    cfg = Config.load(store_body_cap=0, store_other_body_cap=20)
    ex = make_exchange(request_body=b"q" * 100, request_body_bytes=100, response_body=b"r" * 10,
                       response_body_bytes=10)
    rows = {r.part: r for r in body_rows(ex, None, cfg)}
    assert set(rows) == {"request", "response"}
    assert rows["request"].dropped_bytes == 80 and rows["request"].truncated
    assert not rows["response"].truncated and _stored(rows["response"]) == b"r" * 10
    # LLM with cap 0: unlimited
    rows = {r.part: r for r in body_rows(ex, make_call(), cfg)}
    assert not rows["request"].truncated and _stored(rows["request"]) == b"q" * 100


def test_empty_bodies_get_no_rows():
    ex = make_exchange(request_body=b"", request_body_bytes=0, response_body=b"", response_body_bytes=0)
    assert body_rows(ex, None, Config()) == []


def test_body_cut_by_http_stage_counts_as_truncated():
    """The HTTP stage kept a prefix (``http.max_body_bytes``) that ends inside a character."""
    held = ("x" * 10 + "é").encode()[:-1]  # 11 bytes, ends with half of 'é'
    ex = make_exchange(request_body=held, request_body_bytes=1000, response_body=b"", response_body_bytes=0)
    (row,) = body_rows(ex, make_call(), Config())
    assert row.truncated and row.is_text
    assert row.original_bytes == 1000 and row.dropped_bytes == 1000 - len(held)
    assert _stored(row) == held


def test_compressor_is_reused_across_calls():
    comp = make_compressor()
    cfg = Config()
    for i in range(3):
        ex = make_exchange(i, request_body=b"abc" * 100, request_body_bytes=300)
        for row in body_rows(ex, None, cfg, comp):
            assert _stored(row) in (b"abc" * 100, ex.response_body)


def test_decompress_unknown_codec():
    with pytest.raises(ValueError):
        decompress_body("lz4", b"")
