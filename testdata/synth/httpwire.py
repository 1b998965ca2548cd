"""HTTP/1.1 message framing: heads, Content-Length vs chunked bodies, incremental content encoding.

Streamed bodies are compressed *incrementally* with a flush after every event, as real servers do, so the
engine's incremental decoder (capture-and-http.md §6.4) is exercised the same way it is in production.
"""
from __future__ import annotations

import gzip
import zlib
from typing import Any

import brotli
import orjson
import zstandard

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable", 529: "Overloaded"}

Headers = list[tuple[str, str]]


class Encoder:
    """Incremental compressor with per-unit flush for ``gzip``, ``deflate``, ``br`` and ``zstd``."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "gzip":
            self._z: Any = zlib.compressobj(6, zlib.DEFLATED, 31)
        elif name == "deflate":
            self._z = zlib.compressobj(6, zlib.DEFLATED, 15)
        elif name == "br":
            self._z = brotli.Compressor(quality=4)
        elif name == "zstd":
            self._z = zstandard.ZstdCompressor(level=3).compressobj()
        else:
            raise ValueError(f"unknown content coding {name!r}")

    def feed(self, data: bytes) -> bytes:
        if self.name in ("gzip", "deflate"):
            return self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)
        if self.name == "br":
            return self._z.process(data) + self._z.flush()
        return self._z.compress(data) + self._z.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def finish(self) -> bytes:
        if self.name in ("gzip", "deflate"):
            return self._z.flush(zlib.Z_FINISH)
        if self.name == "br":
            return self._z.finish()
        return self._z.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


def compress(data: bytes, name: str) -> bytes:
    if name == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    enc = Encoder(name)
    return enc.feed(data) + enc.finish()


def head(first_line: str, headers: Headers) -> bytes:
    lines = [first_line] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def request(method: str, path: str, host: str, headers: Headers, body: Any = None, *,
            encoding: str | None = None, chunked: bool = False) -> bytes:
    """Render a full request; ``body`` may be bytes or a JSON-able object."""
    hs: Headers = [("Host", host)] + list(headers)
    raw = b""
    if body is not None:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        if not any(k.lower() == "content-type" for k, _ in hs):
            hs.append(("Content-Type", "application/json"))
        if encoding:
            raw = compress(raw, encoding)
            hs.append(("Content-Encoding", encoding))
        if chunked:
            hs.append(("Transfer-Encoding", "chunked"))
            mid = len(raw) // 2
            raw = b"".join(_chunk(p) for p in (raw[:mid], raw[mid:]) if p) + b"0\r\n\r\n"
        else:
            hs.append(("Content-Length", str(len(raw))))
    return head(f"{method} {path} HTTP/1.1", hs) + raw


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def response(status: int, headers: Headers, units: list[tuple[float, bytes]], *, stream: bool,
             encoding: str | None = None, framing: str | None = None) -> tuple[list[tuple[float, bytes]], str]:
    """Frame a response made of timed body units; returns ``(response_chunks, framing)``.

    Non-streaming bodies are one unit with Content-Length (unless ``framing="close"``); streams use
    chunked encoding with one HTTP chunk per unit.
    """
    hs = list(headers)
    first = f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"
    if encoding:
        hs.append(("Content-Encoding", encoding))
    if not stream:
        framing = framing or "length"
        delay = units[-1][0] if units else 0.05
        body = b"".join(u for _, u in units)
        if encoding:
            body = compress(body, encoding)
        if framing == "length":
            hs.append(("Content-Length", str(len(body))))
        elif framing == "chunked":
            hs.append(("Transfer-Encoding", "chunked"))
            body = (_chunk(body) if body else b"") + b"0\r\n\r\n"
        return [(delay, head(first, hs) + body)], framing
    hs.append(("Transfer-Encoding", "chunked"))
    enc = Encoder(encoding) if encoding else None
    out: list[tuple[float, bytes]] = []
    h = head(first, hs)
    for i, (delay, data) in enumerate(units):
        piece = enc.feed(data) if enc else data
        framed = _chunk(piece) if piece else b""
        out.append((delay, (h if i == 0 else b"") + framed))
    tail = enc.finish() if enc else b""
    end = (_chunk(tail) if tail else b"") + b"0\r\n\r\n"
    if out:
        d, last = out[-1]
        out[-1] = (d, last + end)
    else:
        out.append((0.05, h + end))
    return out, "chunked"


def sse(event: str | None, data: Any) -> bytes:
    """One SSE event; ``data`` is JSON-encoded unless it is already bytes/str."""
    if isinstance(data, (bytes, str)):
        payload = data.encode() if isinstance(data, str) else data
    else:
        payload = orjson.dumps(data)
    return (b"event: " + event.encode() + b"\n" if event else b"") + b"data: " + payload + b"\n\n"
