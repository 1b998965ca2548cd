"""Per-direction HTTP/1.x message parsing: heads, body framing, resync (capture-and-http.md §6.1, §6.3).

These pieces know nothing about pairing, exchanges or timestamps; ``connection.py`` drives them. They are
written for a passive observer: every ``feed`` takes the packet's bytes plus an offset and returns how far
it got, so the connection walks one packet through several messages without re-slicing it, and a body in
progress costs one slice per packet. Anything malformed raises ``ParseError``; the caller decides what
that means for the exchange and resyncs the direction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_FIELDS = 256
"""Header (and trailer) fields per message (§6.1)."""

_MAX_CHUNK_LINE = 8192
"""Longest chunk-size line (size + extensions) accepted before calling the framing broken."""

_TCHARS = rb"!#$%&'*+.^_`|~0-9A-Za-z-"
_REQUEST_LINE = re.compile(rb"([" + _TCHARS + rb"]+) ([^ \r\n]+) (HTTP/1\.[0-9])\r?\n")
_STATUS_LINE = re.compile(rb"(HTTP/1\.[0-9]) ([0-9]{3})(?: ([^\r\n]*))?\r?\n")
_METHOD_PREFIX = re.compile(rb"[" + _TCHARS + rb"]{0,32}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")

# Resync targets (§5.4): a request line (any method, as in §6.1) or a line starting with "HTTP/1.".
_RESYNC_REQUEST = re.compile(rb"(?m)^[" + _TCHARS + rb"]+ [^ \r\n]+ HTTP/1\.[0-9]\r?\n")
_RESYNC_RESPONSE = re.compile(rb"(?m)^HTTP/1\.[0-9] [0-9]{3}(?: [^\r\n]*)?\r?\n")


class ParseError(Exception):
    """The bytes of one direction do not form a valid HTTP/1.x message at this point."""


@dataclass(slots=True)
class Head:
    """A parsed request or response head. ``start`` is (method, target, version) for a request and
    (version, status, reason) for a response; ``headers`` are raw-decoded, unredacted pairs."""

    start: tuple
    headers: list[tuple[str, str]]
    index: dict[str, list[str]]  # values by lower-cased name
    wire_len: int


# --- start lines and heads ----------------------------------------------------------------------------


def parse_request_line(line: bytes) -> tuple[str, str, str] | None:
    """``METHOD SP target SP HTTP/1.x`` with its line ending, or None."""
    m = _REQUEST_LINE.fullmatch(line)
    if m is None:
        return None
    return m.group(1).decode("ascii"), m.group(2).decode("utf-8", "replace"), m.group(3).decode("ascii")


def parse_status_line(line: bytes) -> tuple[str, int, str] | None:
    """``HTTP/1.x SP 3DIGIT [SP reason]`` with its line ending, or None."""
    m = _STATUS_LINE.fullmatch(line)
    if m is None:
        return None
    reason = m.group(3)
    return (
        m.group(1).decode("ascii"),
        int(m.group(2)),
        reason.decode("utf-8", "replace").strip() if reason is not None else "",
    )


def first_line(buf: bytes | bytearray) -> bytes | None:
    """The first line of ``buf`` including its ``\\n``, or None while it is incomplete."""
    i = buf.find(b"\n")
    return None if i < 0 else bytes(buf[: i + 1])


def parse_fields(lines: list[str]) -> list[tuple[str, str]]:
    """Header or trailer lines (decoded, no line endings) → ordered pairs, values stripped of surrounding
    whitespace; obsolete line folding is joined with one space."""
    out: list[tuple[str, str]] = []
    for line in lines:
        c = line[:1]
        if c == " " or c == "\t":
            if not out:
                raise ParseError("continuation line before any field")
            name, value = out[-1]
            out[-1] = (name, value + " " + line.strip(" \t"))
            continue
        name, sep, value = line.partition(":")
        name = name.rstrip(" \t")
        if not sep or not name or " " in name or "\t" in name:
            raise ParseError("malformed header line")
        out.append((name, value.strip(" \t")))
        if len(out) > MAX_FIELDS:
            raise ParseError("too many header fields")
    return out


Index = dict[str, list[str]]
"""Header values by lower-cased name, built once per head so framing lookups cost a dict access."""


def parse_head(head: bytes, is_request: bool) -> Head:
    """A complete head (start line through the empty line) → ``Head``; raises ``ParseError``. Field
    bytes are decoded as UTF-8 with replacement (§6.1)."""
    nl = head.find(b"\n")
    start = (parse_request_line if is_request else parse_status_line)(head[: nl + 1])
    if start is None:
        raise ParseError("bad request line" if is_request else "bad status line")
    lines = head[nl + 1 :].decode("utf-8", "replace").split("\n")
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    while lines and not lines[-1]:
        lines.pop()
    headers = parse_fields(lines)
    index: Index = {}
    for name, value in headers:
        key = name.lower()
        vals = index.get(key)
        if vals is None:
            index[key] = [value]
        else:
            vals.append(value)
    return Head(start, headers, index, len(head))


def joined(index: Index, name: str) -> str | None:
    """A list-valued header's values joined with ``,`` (RFC 9110 §5.3), or None when absent."""
    vals = index.get(name)
    return ",".join(vals) if vals else None


def tokens(index: Index, name: str) -> list[str]:
    """Lower-cased comma-separated tokens of a header (``Connection``, ``Transfer-Encoding``)."""
    v = joined(index, name)
    return [t.strip().lower() for t in v.split(",") if t.strip()] if v else []


def content_length(index: Index) -> int | None:
    """The message's Content-Length; conflicting or malformed values are a ``ParseError`` (§6.3)."""
    vals = index.get("content-length")
    if not vals:
        return None
    seen = {p.strip() for v in vals for p in v.split(",")}
    if len(seen) != 1:
        raise ParseError("conflicting Content-Length")
    (v,) = seen
    if not v.isdigit() or not v.isascii():
        raise ParseError("invalid Content-Length")
    return int(v)


# --- framing (§6.3) -----------------------------------------------------------------------------------

NONE, LENGTH, CHUNKED, CLOSE = "none", "length", "chunked", "close"


def request_framing(index: Index) -> tuple[str, int]:
    """(kind, length) of a request body."""
    te = tokens(index, "transfer-encoding")
    if te:
        if te[-1] == "chunked":
            return CHUNKED, 0
        raise ParseError("request Transfer-Encoding without chunked")
    n = content_length(index)
    return (LENGTH, n) if n else (NONE, 0)


def response_framing(index: Index, status: int, method: str | None) -> tuple[str, int]:
    """(kind, length) of a response body; ``method`` of the paired request (None when unpaired)."""
    if method == "HEAD" or status < 200 or status in (204, 304):
        return NONE, 0
    te = tokens(index, "transfer-encoding")
    if te:
        return (CHUNKED, 0) if te[-1] == "chunked" else (CLOSE, 0)
    n = content_length(index)
    if n is None:
        return CLOSE, 0
    return (LENGTH, n) if n else (NONE, 0)


# --- incremental readers ------------------------------------------------------------------------------


class HeadReader:
    """Accumulates one head until its empty line.

    The end is searched only in bytes not searched before (minus two, for a terminator split across
    packets), so a head arriving in many small packets costs linear time. While a head is incomplete its
    start is checked as far as it has arrived: a request must begin with a method token and a space, a
    response with ``HTTP/1.``; so a non-HTTP stream fails on its first packet instead of after
    ``max_bytes``. A complete head is checked by ``parse_head``.
    """

    __slots__ = ("is_request", "max_bytes", "buf", "first_ts", "first_ts_hint", "_scan", "_line_ok")

    def __init__(self, is_request: bool, max_bytes: int) -> None:
        self.is_request = is_request
        self.max_bytes = max_bytes
        self.buf = bytearray()
        self.first_ts = 0
        self.first_ts_hint: int | None = None  # set after a resync: the replayed bytes are older
        self._scan = 0
        self._line_ok = False

    def reset(self) -> None:
        self.buf = bytearray()
        self._scan = 0
        self._line_ok = False

    @property
    def started(self) -> bool:
        return bool(self.buf)

    def feed(self, data: bytes, pos: int, ts_us: int) -> tuple[int, bytes | None]:
        """Consume from ``data[pos:]``; returns (new pos, the complete head or None). Blank lines before a
        message are skipped (RFC 9112 §2.2)."""
        buf = self.buf
        n = len(data)
        if not buf:
            while pos < n and data[pos] in (10, 13):
                pos += 1
            if pos == n:
                return n, None
            hint = self.first_ts_hint
            self.first_ts = ts_us if hint is None else hint
            self.first_ts_hint = None
        old = len(buf)
        buf += memoryview(data)[pos:]
        s = max(0, self._scan - 2)
        a = buf.find(b"\n\n", s)
        b = buf.find(b"\n\r\n", s)
        if a < 0 and b < 0:
            if not self._line_ok:  # a complete head is checked by parse_head instead
                self._check_start(buf, max(0, self._scan))
            if len(buf) > self.max_bytes:
                raise ParseError("head too large")
            self._scan = len(buf)
            return n, None
        end = (a + 2) if b < 0 or (0 <= a < b) else (b + 3)
        if end > self.max_bytes:
            raise ParseError("head too large")
        head = bytes(buf[:end])
        self.reset()
        return pos + (end - old), head

    def _check_start(self, buf: bytearray, start: int) -> None:
        # No "\n" exists before ``start`` (the line would have been checked), so search from there.
        i = buf.find(b"\n", start)
        line = bytes(buf[: i + 1]) if i >= 0 else None
        if line is not None:
            ok = parse_request_line(line) if self.is_request else parse_status_line(line)
            if ok is None:
                raise ParseError("bad request line" if self.is_request else "bad status line")
            self._line_ok = True
        elif self.is_request:
            m = _METHOD_PREFIX.match(buf)
            end = m.end()
            if end < len(buf) and (end == 0 or buf[end] != 0x20):
                raise ParseError("bad request line")
        else:
            k = min(len(buf), 7)
            if bytes(buf[:k]) != b"HTTP/1."[:k]:
                raise ParseError("bad status line")


# chunked sub-states: size line, chunk data, the CRLF after the data, trailer lines
_C_SIZE, _C_DATA, _C_DATA_END, _C_TRAILER = 0, 1, 2, 3


class BodyReader:
    """Frames one body: Content-Length, chunked (extensions ignored, trailers skipped) or until close.

    ``feed`` returns the payload bytes found in ``data[pos:]`` and the new position; ``done`` is set when
    the body's last byte was consumed, ``error`` (a message) when the chunked framing is broken. ``gap``
    says whether a hole of n bytes can be absorbed without
    losing the framing (inside a Content-Length body, inside one chunk's data, or a close-delimited body).
    """

    __slots__ = ("kind", "remaining", "done", "error", "_state", "_line", "_trailer_bytes", "_trailer_fields",
                 "_max_trailer")

    def __init__(self, kind: str, length: int = 0, max_trailer: int = 65536) -> None:
        self.kind = kind
        self.remaining = length
        self.done = kind == NONE or (kind == LENGTH and length == 0)
        self.error: str | None = None
        self._state = _C_SIZE
        self._line = bytearray()
        self._trailer_bytes = 0
        self._trailer_fields = 0
        self._max_trailer = max_trailer

    def feed(self, data: bytes, pos: int) -> tuple[int, bytes]:
        kind = self.kind
        if kind == LENGTH:
            n = len(data) - pos
            r = self.remaining
            if n <= r:
                self.remaining = r - n
                if self.remaining == 0:
                    self.done = True
                return len(data), data if pos == 0 else data[pos:]
            self.remaining = 0
            self.done = True
            return pos + r, data[pos : pos + r]
        if kind == CLOSE:
            return len(data), data if pos == 0 else data[pos:]
        if kind == CHUNKED:
            return self._feed_chunked(data, pos)
        return pos, b""

    def _feed_chunked(self, data: bytes, pos: int) -> tuple[int, bytes]:
        # A framing error is recorded in ``error`` rather than raised, so the payload found before it in
        # the same packet still reaches the caller.
        out: list[bytes] = []
        n = len(data)
        try:
            while pos < n and not self.done:
                st = self._state
                if st == _C_DATA:
                    take = min(self.remaining, n - pos)
                    out.append(data[pos : pos + take])
                    pos += take
                    self.remaining -= take
                    if self.remaining == 0:
                        self._state = _C_DATA_END
                elif st == _C_SIZE:
                    pos = self._size_line(data, pos)
                elif st == _C_DATA_END:
                    if not self._line and data.startswith(b"\r\n", pos):
                        pos += 2
                        self._state = _C_SIZE
                        continue
                    c = data[pos]
                    if c == 13 and not self._line:
                        self._line.append(13)
                        pos += 1
                    elif c == 10:
                        self._line.clear()
                        self._state = _C_SIZE
                        pos += 1
                    else:
                        raise ParseError("chunk data not followed by CRLF")
                else:
                    pos = self._trailer_line(data, pos)
        except ParseError as e:
            self.error = str(e)
        return pos, b"".join(out) if len(out) != 1 else out[0]

    def _take_line(self, data: bytes, pos: int) -> tuple[int, bytes | None]:
        """The next line (without its ending) once complete; partial lines wait in ``_line``."""
        i = data.find(b"\n", pos)
        if i >= 0 and not self._line:  # the usual case: the whole line is in this packet
            if i - pos > _MAX_CHUNK_LINE:
                raise ParseError("chunk line too long")
            return i + 1, data[pos:i].rstrip(b"\r")
        if i < 0:
            self._line += memoryview(data)[pos:]
            if len(self._line) > _MAX_CHUNK_LINE:
                raise ParseError("chunk line too long")
            return len(data), None
        self._line += memoryview(data)[pos:i]
        line = bytes(self._line).rstrip(b"\r")
        self._line.clear()
        if len(line) > _MAX_CHUNK_LINE:
            raise ParseError("chunk line too long")
        return i + 1, line

    def _size_line(self, data: bytes, pos: int) -> int:
        pos, line = self._take_line(data, pos)
        if line is None:
            return pos
        size = line.split(b";", 1)[0].strip(b" \t")
        if not _HEX.fullmatch(size):
            raise ParseError("invalid chunk size")
        self.remaining = int(size, 16)
        self._state = _C_DATA if self.remaining else _C_TRAILER
        return pos

    def _trailer_line(self, data: bytes, pos: int) -> int:
        start = pos
        pos, line = self._take_line(data, pos)
        self._trailer_bytes += pos - start
        if self._trailer_bytes > self._max_trailer:
            raise ParseError("trailers too large")
        if line is None:
            return pos
        if line == b"":
            self.done = True
            return pos
        parse_fields([line.decode("utf-8", "replace")])  # validates the line; trailers are not kept
        self._trailer_fields += 1
        if self._trailer_fields > MAX_FIELDS:
            raise ParseError("too many trailer fields")
        return pos

    def gap(self, nbytes: int) -> bool:
        """Absorb a hole of ``nbytes`` if the framing survives it; False means framing is lost."""
        if self.kind == CLOSE:
            return True
        if self.kind == LENGTH and nbytes <= self.remaining:
            self.remaining -= nbytes
            self.done = self.remaining == 0
            return True
        if self.kind == CHUNKED and self._state == _C_DATA and nbytes <= self.remaining:
            self.remaining -= nbytes
            if self.remaining == 0:
                self._state = _C_DATA_END
            return True
        return False


class Resync:
    """Finds where a direction can be parsed again after a gap or a parse error (§5.4, §6.6): the start
    of a line holding a request line (client) or starting with ``HTTP/1.`` (server). Bytes before it are
    dropped; only the unfinished last line is kept between packets."""

    __slots__ = ("_pattern", "_buf", "_at_line_start", "_max", "_buf_ts", "match_ts")

    def __init__(self, is_request: bool, max_line: int, at_line_start: bool = True) -> None:
        self._pattern = _RESYNC_REQUEST if is_request else _RESYNC_RESPONSE
        self._buf = bytearray()
        # After a gap the next byte may start a message; after a parse error the failed line must be
        # skipped (the caller passes False), or the same bytes would be found and fail again.
        self._at_line_start = at_line_start
        self._max = max_line
        self._buf_ts = 0  # packet time of the first byte kept in the buffer
        self.match_ts = 0  # packet time of the found line's first byte

    def gap(self) -> None:
        """Bytes went missing: the unfinished line is not a line any more, but the next byte may start one."""
        self._buf.clear()
        self._at_line_start = True

    def feed(self, data: bytes, pos: int, ts_us: int) -> bytes | None:
        """None while still searching; else the bytes from the found line on, to be parsed again
        (``match_ts`` is when its first byte arrived)."""
        buf = self._buf
        old = len(buf)
        if not old:
            self._buf_ts = ts_us
        buf += memoryview(data)[pos:]
        if not self._at_line_start:
            i = buf.find(b"\n")
            if i < 0:
                buf.clear()
                return None
            self._drop(i + 1, old, ts_us)
            old = max(0, old - (i + 1))
            self._at_line_start = True
        m = self._pattern.search(buf)
        if m is not None:
            self.match_ts = self._buf_ts if m.start() < old else ts_us
            out = bytes(buf[m.start() :])
            buf.clear()
            return out
        i = buf.rfind(b"\n")
        if i >= 0:
            self._drop(i + 1, old, ts_us)
        if len(buf) > self._max:
            buf.clear()
            self._at_line_start = False
        return None

    def _drop(self, k: int, old: int, ts_us: int) -> None:
        """Drop the first ``k`` buffered bytes; the rest began in this packet if ``k`` reaches its data."""
        del self._buf[:k]
        if k >= old:
            self._buf_ts = ts_us
