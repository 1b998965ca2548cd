"""Incremental ``Content-Encoding`` decoding (capture-and-http.md §6.4).

Bodies are decoded as their bytes arrive, not at the end, so a compressed SSE stream can be split into
events while it flows and its per-event timestamps stay true. Each coding is one *stage*; a header such
as ``gzip, br`` (gzip applied first, then br) is undone in reverse order by chaining stages, the output of
one being fed to the next.

Decompression bombs: every stage hands its output over in pieces of at most ``_PIECE`` bytes (zstd, which
cannot bound one call's output, gets its input in small slices instead), and the stages are lazy
generators. The decoder stops pulling pieces as soon as ``max_output`` is exceeded, so no more than about
one piece (for zstd, one slice's expansion) beyond the limit is ever materialised, however large the
compressed body claims to expand.

Damage is reported, never raised: an unknown coding passes the body through raw
(``undecodable_encoding``); a corrupt or cut stream keeps what decoded before the fault (``decode_error``)
and ignores the rest of the body. The libraries drop the output of the call that hits corruption, so up to
one piece (or one feed) before the fault can be lost with it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import brotli
import zstandard

_PIECE = 64 * 1024
"""Most bytes one stage hands over per step. Small enough to bound memory and the output lost when a
later part of the same input turns out corrupt; large enough that the per-piece Python work is noise."""

_ZSTD_MAX_RATIO = 32 * 1024
"""Worst-case zstd expansion per input byte (an RLE block: 4 bytes → 128 KiB), used to size input slices."""

_KNOWN = frozenset({"gzip", "x-gzip", "deflate", "br", "zstd", "identity"})


class _Truncated(Exception):
    """The body ended inside a compressed stream (a cut body, or a sender that never finished it)."""


_DECODE_ERRORS = (zlib.error, brotli.error, zstandard.ZstdError, _Truncated)


class _GzipStage:
    """gzip / x-gzip: zlib with a gzip wrapper. A body may hold several concatenated gzip members (RFC 1952
    §2.2; some servers flush by starting a new member), so a finished member starts a fresh inflater on the
    bytes after it. NUL padding between or after members is skipped, as gzip(1) does."""

    def __init__(self) -> None:
        self._d: zlib._Decompress | None = None  # None between members

    def process(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._d is None:
                data = data.lstrip(b"\0")
                if not data:
                    return
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            d = self._d
            while True:
                out = d.decompress(data, _PIECE)
                if out:
                    yield out
                data = d.unconsumed_tail
                if d.eof or (not data and len(out) < _PIECE):
                    break
            if not d.eof:
                return
            data = d.unused_data
            self._d = None

    def finish(self) -> Iterator[bytes]:
        d = self._d
        if d is None:
            return
        out = d.flush()
        if out:
            yield out
        if not d.eof:
            raise _Truncated("gzip member not finished")


class _DeflateStage:
    """deflate: RFC 9110 means zlib-wrapped (RFC 1950), but some servers send raw deflate (RFC 1951), as
    browsers tolerate. The first two bytes decide: a valid zlib header (CM = 8, CINFO <= 7, FCHECK) selects
    zlib, anything else raw deflate. Bytes after the end of the stream are ignored."""

    def __init__(self) -> None:
        self._d: zlib._Decompress | None = None
        self._head = b""  # first byte, held until the second arrives

    def process(self, data: bytes) -> Iterator[bytes]:
        if self._d is None:
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return
            self._head = b""
            b0, b1 = data[0], data[1]
            wrapped = (b0 & 0x0F) == 8 and (b0 >> 4) <= 7 and ((b0 << 8) | b1) % 31 == 0
            self._d = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        d = self._d
        while data and not d.eof:
            out = d.decompress(data, _PIECE)
            if out:
                yield out
            data = d.unconsumed_tail
            # A full piece may leave output pending inside zlib even with no input left: drain it.
            while not data and len(out) == _PIECE and not d.eof:
                out = d.decompress(b"", _PIECE)
                if out:
                    yield out

    def finish(self) -> Iterator[bytes]:
        if self._d is None:
            if self._head:
                raise _Truncated("deflate stream of one byte")
            return
        out = self._d.flush()
        if out:
            yield out
        if not self._d.eof:
            raise _Truncated("deflate stream not finished")


class _BrotliStage:
    """br: ``brotli.Decompressor`` with ``output_buffer_limit`` (brotli >= 1.2), draining with empty input
    until the decoder has nothing more, because one meta-block may expand to many MiB."""

    def __init__(self) -> None:
        self._d = brotli.Decompressor()
        self._started = False

    def process(self, data: bytes) -> Iterator[bytes]:
        d = self._d
        if d.is_finished():
            return  # bytes after the end of the stream are ignored, as for deflate
        self._started = True
        out = d.process(data, output_buffer_limit=_PIECE)
        # can_accept_more_data() is not a reliable "nothing pending" signal (it can be True while output
        # is still held), so drain with empty input until a call yields nothing.
        while out:
            yield out
            if d.is_finished():
                return
            out = d.process(b"", output_buffer_limit=_PIECE)

    def finish(self) -> Iterator[bytes]:
        if self._started and not self._d.is_finished():
            yield from self.process(b"")
            if not self._d.is_finished():
                raise _Truncated("brotli stream not finished")


class _ZstdStage:
    """zstd: one single-frame ``decompressobj`` per frame (several frames may follow each other), so a cut
    frame is noticed at the end (``eof``). zstandard cannot bound one call's output, so input goes in in
    slices of ``in_step`` bytes, sized by the caller so that one slice's worst-case expansion stays well
    under the output limit."""

    def __init__(self, in_step: int) -> None:
        self._dctx = zstandard.ZstdDecompressor()
        self._d: zstandard.ZstdDecompressionObj | None = None  # None between frames
        self._step = in_step

    def process(self, data: bytes) -> Iterator[bytes]:
        step = self._step
        pos, n = 0, len(data)
        while pos < n:
            if self._d is None:
                self._d = self._dctx.decompressobj()
            d = self._d
            chunk = data[pos : pos + step]
            pos += len(chunk)
            out = d.decompress(chunk)
            if out:
                yield out
            if d.eof:
                # The next frame starts inside this slice: step back to the unused bytes.
                self._d = None
                pos -= len(d.unused_data)

    def finish(self) -> Iterator[bytes]:
        if self._d is not None:
            raise _Truncated("zstd frame not finished")
        yield from ()


_Stage = _GzipStage | _DeflateStage | _BrotliStage | _ZstdStage


class ContentDecoder:
    """Undoes a ``Content-Encoding`` incrementally: ``feed`` the body bytes as they arrive, ``finish`` at
    the end of the body.

    ``codings`` are the header's codings in the order they were applied (header order). An unknown coding
    anywhere makes the whole body pass through raw, because the codings outside it cannot be undone
    without it. ``max_output`` bounds the decoded bytes returned in total; once more would be produced the
    output stops exactly at the limit, ``over_limit`` is set and the rest of the body is ignored (the
    caller counts ``bodies_over_limit`` and sets ``body_too_large``).
    """

    __slots__ = ("damage", "over_limit", "max_output", "_stages", "_broken", "_dead", "_total")

    def __init__(self, codings: list[str], max_output: int | None = None) -> None:
        self.damage: set[str] = set()
        self.over_limit = False
        self.max_output = max_output
        self._total = 0
        self._dead = False
        names = [c.strip().lower() for c in codings]
        names = [c for c in names if c and c != "identity"]
        self._stages: list[_Stage] = []
        if any(c not in _KNOWN for c in names):
            self.damage.add("undecodable_encoding")
            names = []
        # zstd input slice: one slice may expand _ZSTD_MAX_RATIO-fold, so keep that near half the limit.
        if max_output is None:
            zstd_step = 16 * 1024
        else:
            zstd_step = max(64, min(16 * 1024, max_output // (2 * _ZSTD_MAX_RATIO)))
        for c in reversed(names):
            if c in ("gzip", "x-gzip"):
                self._stages.append(_GzipStage())
            elif c == "deflate":
                self._stages.append(_DeflateStage())
            elif c == "br":
                self._stages.append(_BrotliStage())
            else:
                self._stages.append(_ZstdStage(zstd_step))
        self._broken = [False] * len(self._stages)

    def _pipe(self, i: int, data: bytes) -> Iterator[bytes]:
        """Push ``data`` through stages ``i..``; yields final output pieces. A stage that fails is marked
        broken and the failure re-raised, so the caller knows decoding is over."""
        if i == len(self._stages):
            yield data
            return
        if self._broken[i]:
            return
        it = self._stages[i].process(data)
        while True:
            try:
                piece = next(it)
            except StopIteration:
                return
            except _DECODE_ERRORS:
                self._broken[i] = True
                raise
            yield from self._pipe(i + 1, piece)

    def _take(self, pieces: Iterator[bytes], out: list[bytes]) -> None:
        """Collect pieces into ``out`` until the output limit is crossed (then stop pulling: no further
        decompression happens) or a decode error ends the body."""
        limit = self.max_output
        try:
            for piece in pieces:
                if limit is not None and self._total + len(piece) > limit:
                    out.append(piece[: limit - self._total])
                    self._total = limit
                    self.over_limit = True
                    self._dead = True
                    return
                self._total += len(piece)
                out.append(piece)
        except _DECODE_ERRORS:
            self.damage.add("decode_error")
            self._dead = True

    def feed(self, data: bytes) -> bytes:
        """Decode the next body bytes; returns the newly decoded bytes (possibly empty)."""
        if self._dead or not data:
            return b""
        out: list[bytes] = []
        self._take(self._pipe(0, data), out)
        return b"".join(out)

    def finish(self) -> bytes:
        """End of body: flush every stage in order. A stream that is not complete (a cut body) keeps its
        output and sets ``decode_error``."""
        if self._dead:
            return b""
        out: list[bytes] = []
        for i, stage in enumerate(self._stages):
            if self._broken[i]:
                continue
            self._take(self._flush(i, stage), out)
            if self.over_limit:
                break
        self._dead = True
        return b"".join(out)

    def _flush(self, i: int, stage: _Stage) -> Iterator[bytes]:
        it = stage.finish()
        while True:
            try:
                piece = next(it)
            except StopIteration:
                return
            except _DECODE_ERRORS:
                self._broken[i] = True
                raise
            yield from self._pipe(i + 1, piece)


def make_decoder(content_encoding: str | None, max_output: int | None = None) -> ContentDecoder | None:
    """Decoder for a ``Content-Encoding`` header value (several headers joined with ``,``), or None when
    there is nothing to undo (absent, empty, or only ``identity``) so the caller can skip the work."""
    if not content_encoding:
        return None
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    if all(not c or c == "identity" for c in codings):
        return None
    return ContentDecoder(codings, max_output)
