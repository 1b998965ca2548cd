"""Content-Encoding decoding (capture-and-http.md §6.4): heron_core/http/codecs.py."""

from __future__ import annotations

import gzip
import hashlib
import zlib

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from heron_core.http.codecs import ContentDecoder, make_decoder

PAYLOAD = b"".join(b"line %d: the quick brown fox \xe2\x9c\x93\n" % i for i in range(4000))  # ~150 KB


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def _br(data: bytes) -> bytes:
    return brotli.compress(data, quality=5)  # the default (11) is slow on the large test bodies


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


ENCODERS = {
    "gzip": lambda b: gzip.compress(b, mtime=0),
    "x-gzip": lambda b: gzip.compress(b, mtime=0),
    "deflate": zlib.compress,
    "br": _br,
    "zstd": _zstd,
}


def _encode(codings: str, data: bytes) -> bytes:
    """Apply codings in header order (the first listed is applied first)."""
    for c in codings.split(","):
        data = ENCODERS[c.strip()](data)
    return data


def _decode(dec: ContentDecoder, body: bytes, sizes: list[int]) -> bytes:
    """Feed ``body`` in pieces of the given sizes (the last piece takes the rest), then finish."""
    out, pos = [], 0
    for n in sizes:
        out.append(dec.feed(body[pos : pos + n]))
        pos += n
    out.append(dec.feed(body[pos:]))
    out.append(dec.finish())
    return b"".join(out)


def _one_shot(codings: str, body: bytes, **kw: object) -> tuple[bytes, ContentDecoder]:
    dec = make_decoder(codings, **kw)  # type: ignore[arg-type]
    assert dec is not None
    return _decode(dec, body, []), dec


# --- selection -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "identity", " Identity ", "identity, identity", ","])
def test_nothing_to_undo_gives_no_decoder(value: str | None) -> None:
    assert make_decoder(value) is None


def test_identity_in_a_list_is_skipped_and_names_are_case_insensitive() -> None:
    out, dec = _one_shot(" GZip , identity", gzip.compress(b"hello"))
    assert out == b"hello"
    assert dec.damage == set()


# --- each coding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("coding", sorted(ENCODERS))
@pytest.mark.parametrize("piece", [1, 7, 1460, 10**9])
def test_each_coding_round_trips_at_any_feed_size(coding: str, piece: int) -> None:
    payload = PAYLOAD if piece > 1 else PAYLOAD[:20000]
    body = _encode(coding, payload)
    dec = make_decoder(coding)
    assert dec is not None
    out = _decode(dec, body, [piece] * (len(body) // piece))
    assert out == payload
    assert dec.damage == set()
    assert dec.over_limit is False


def test_feed_returns_decoded_bytes_as_they_arrive() -> None:
    """A compressed stream is decoded while it flows (needed to split compressed SSE incrementally)."""
    c = zlib.compressobj(wbits=31)
    part1 = c.compress(b"data: one\n\n") + c.flush(zlib.Z_SYNC_FLUSH)
    part2 = c.compress(b"data: two\n\n") + c.flush()
    dec = make_decoder("gzip")
    assert dec is not None
    assert dec.feed(part1) == b"data: one\n\n"
    assert dec.feed(part2) == b"data: two\n\n"
    assert dec.finish() == b""
    assert dec.damage == set()


def test_concatenated_gzip_members() -> None:
    body = gzip.compress(b"first member|") + gzip.compress(b"second member|") + gzip.compress(b"third")
    for piece in (1, 5, len(body)):
        dec = make_decoder("gzip")
        assert dec is not None
        assert _decode(dec, body, [piece] * (len(body) // piece)) == b"first member|second member|third"
        assert dec.damage == set()


def test_gzip_trailing_nul_padding_is_ignored() -> None:
    out, dec = _one_shot("gzip", gzip.compress(b"abc") + b"\0\0\0\0")
    assert out == b"abc"
    assert dec.damage == set()


def test_deflate_zlib_wrapped_and_raw_fallback() -> None:
    zlib_body = zlib.compress(b"zlib wrapped body")
    raw_body = _raw_deflate(b"raw deflate body")
    assert zlib_body[:1] == b"\x78" and raw_body[:1] != b"\x78"
    assert _one_shot("deflate", zlib_body)[0] == b"zlib wrapped body"
    out, dec = _one_shot("deflate", raw_body)
    assert out == b"raw deflate body"
    assert dec.damage == set()
    # the sniff needs two bytes: it must also work when they arrive one at a time
    dec2 = make_decoder("deflate")
    assert dec2 is not None
    assert _decode(dec2, raw_body, [1] * len(raw_body)) == b"raw deflate body"


def test_zstd_multiple_frames() -> None:
    body = _zstd(b"frame one,") + _zstd(b"") + _zstd(b"frame three")
    for piece in (1, 3, len(body)):
        dec = make_decoder("zstd")
        assert dec is not None
        assert _decode(dec, body, [piece] * (len(body) // piece)) == b"frame one,frame three"
        assert dec.damage == set()


@pytest.mark.parametrize("codings", ["gzip, br", "br, gzip", "deflate, zstd", "zstd, gzip, br"])
def test_chained_codings_are_undone_in_reverse_order(codings: str) -> None:
    body = _encode(codings, PAYLOAD)
    for piece in (13, 1460, len(body)):
        dec = make_decoder(codings)
        assert dec is not None
        assert _decode(dec, body, [piece] * (len(body) // piece)) == PAYLOAD
        assert dec.damage == set()


def test_gzip_then_br_exact_bytes() -> None:
    """'gzip, br' means gzip was applied first: the body on the wire is brotli of gzip."""
    body = brotli.compress(gzip.compress(b'{"ok":true}'))
    out, dec = _one_shot("gzip, br", body)
    assert out == b'{"ok":true}'
    # the reverse order must not decode it
    out2, dec2 = _one_shot("br, gzip", body)
    assert out2 != b'{"ok":true}'
    assert "decode_error" in dec2.damage


def test_empty_body_with_a_coding_is_not_damage() -> None:
    for coding in ENCODERS:
        out, dec = _one_shot(coding, b"")
        assert out == b""
        assert dec.damage == set()


# --- damage --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["compress", "gzip, foo", "foo, gzip", "x-custom"])
def test_unknown_coding_passes_the_body_raw(value: str) -> None:
    dec = make_decoder(value)
    assert dec is not None
    assert dec.damage == {"undecodable_encoding"}
    assert dec.feed(b"\x1f\x8bABC") == b"\x1f\x8bABC"
    assert dec.feed(b"def") == b"def"
    assert dec.finish() == b""
    assert dec.damage == {"undecodable_encoding"}


def _sync_flushed(wbits: int, data: bytes) -> bytes:
    """A deflate stream cut at a block boundary, so bytes appended after it start a new block header."""
    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)


def _br_flushed(data: bytes) -> bytes:
    """A brotli stream flushed but not finished, so appended bytes are read as the next meta-block."""
    c = brotli.Compressor()
    return c.process(data) + c.flush()


BAD_BLOCK = b"\x07\x00\x00"  # BFINAL=1, BTYPE=11: reserved block type, always an error


@pytest.mark.parametrize(
    "coding,good,bad",
    [
        ("gzip", _sync_flushed(31, b"kept prefix"), BAD_BLOCK),
        ("deflate", _sync_flushed(15, b"kept prefix"), BAD_BLOCK),
        ("deflate", _sync_flushed(-15, b"kept prefix"), BAD_BLOCK),
        ("gzip", gzip.compress(b"kept prefix", mtime=0), b"not a gzip member"),
        ("zstd", _zstd(b"kept prefix"), b"not a zstd frame"),
        ("br", _br_flushed(b"kept prefix"), b"\xff" * 8),
        ("br", _br_flushed(b"kept prefix"), b"garbage!"),
    ],
)
def test_corrupt_stream_keeps_prefix_and_ignores_the_rest(coding: str, good: bytes, bad: bytes) -> None:
    dec = make_decoder(coding)
    assert dec is not None
    assert dec.feed(good) == b"kept prefix"
    assert dec.damage == set()
    assert dec.feed(bad) == b""
    assert dec.damage == {"decode_error"}
    assert dec.feed(gzip.compress(b"more")) == b""
    assert dec.finish() == b""
    assert dec.damage == {"decode_error"}


def test_corrupt_header_is_decode_error() -> None:
    for coding in ("gzip", "br", "zstd"):
        out, dec = _one_shot(coding, b"\x00\x01definitely not compressed" * 4)
        assert dec.damage == {"decode_error"}, coding


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_truncated_stream_keeps_what_decoded(coding: str) -> None:
    # evenly compressible text, so half the body holds whole zstd blocks (128 KiB each)
    payload = b"".join(hashlib.sha256(b"%d" % i).hexdigest().encode() + b"\n" for i in range(10000))
    body = _encode(coding, payload)
    dec = make_decoder(coding)
    assert dec is not None
    out = _decode(dec, body[: len(body) // 2], [1000] * (len(body) // 2000))
    assert dec.damage == {"decode_error"}
    assert len(out) > 0
    assert payload.startswith(out)


# --- decompression bombs ------------------------------------------------------------------------------

BOMB = b"\0" * (64 << 20)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd", "gzip, br"])
def test_bomb_stops_at_max_output(coding: str) -> None:
    body = _encode(coding, BOMB)
    assert len(body) < 1 << 20
    dec = make_decoder(coding, max_output=100_000)
    assert dec is not None
    out = dec.feed(body)
    assert out == b"\0" * 100_000
    assert dec.over_limit is True
    assert dec.damage == set()
    assert dec.feed(b"anything") == b""
    assert dec.finish() == b""


def test_over_limit_across_feeds_and_exact_limit() -> None:
    body = gzip.compress(b"0123456789" * 10)
    dec = make_decoder("gzip", max_output=100)
    assert dec is not None
    assert _decode(dec, body, [1] * len(body)) == b"0123456789" * 10
    assert dec.over_limit is False  # exactly at the limit is fine

    dec = make_decoder("gzip", max_output=99)
    assert dec is not None
    assert _decode(dec, body, [1] * len(body)) == (b"0123456789" * 10)[:99]
    assert dec.over_limit is True


def test_unknown_coding_is_limited_too() -> None:
    dec = make_decoder("foo", max_output=4)
    assert dec is not None
    assert dec.feed(b"abc") == b"abc"
    assert dec.feed(b"def") == b"d"
    assert dec.over_limit is True
    assert dec.feed(b"ghi") == b""


# --- any split gives the same output -------------------------------------------------------------------

_payloads = st.one_of(
    st.binary(max_size=3000),
    st.lists(st.sampled_from([b"data: ", b"{}", b"\n", b"abc", b"\xe2\x82\xac"]), max_size=600).map(b"".join),
)
_codings = st.sampled_from(
    ["gzip", "x-gzip", "deflate", "br", "zstd", "gzip, br", "br, zstd", "deflate, gzip"]
)


@settings(max_examples=150, deadline=None)
@given(payload=_payloads, codings=_codings, sizes=st.lists(st.integers(0, 64), max_size=40))
def test_any_split_yields_identical_output(payload: bytes, codings: str, sizes: list[int]) -> None:
    body = _encode(codings, payload)
    dec = make_decoder(codings)
    assert dec is not None
    assert _decode(dec, body, sizes) == payload
    assert dec.damage == set()


@settings(max_examples=100, deadline=None)
@given(
    payload=_payloads,
    codings=_codings,
    sizes=st.lists(st.integers(0, 64), max_size=40),
    limit=st.integers(0, 4000),
)
def test_any_split_respects_the_limit(payload: bytes, codings: str, sizes: list[int], limit: int) -> None:
    body = _encode(codings, payload)
    dec = make_decoder(codings, max_output=limit)
    assert dec is not None
    assert _decode(dec, body, sizes) == payload[:limit]
    assert dec.over_limit is (len(payload) > limit)
