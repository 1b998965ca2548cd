"""Splitting streamed response bodies into units (capture-and-http.md §8).

A splitter gets the *decoded* body bytes as they arrive (one ``feed`` per packet or chunk) and returns
the units that feed completed, each stamped with that feed's timestamp: that is what makes
``first_chunk`` / ``first_token`` and per-event timing true to the wire. Bytes are turned into text by an
incremental UTF-8 decoder, so a multi-byte character split across packets is completed by the next one.

The hot paths (SSE and NDJSON streams can be many MiB) work on whole chunks with ``str.find`` /
``str.split`` and regular expressions; Python-level loops run per line or per JSON token, never per
character.

``redact`` is applied to each unit's text before anything parses it (interfaces.md §5), so every field
the wire stage later extracts is redacted by construction.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from collections.abc import Callable
from typing import Protocol

import orjson

from heron_core.records import BadUnit, SseEvent, StreamUnit

STREAM_FORMATS = ("sse", "ndjson", "json-array")


class Splitter(Protocol):
    """What the HTTP connection drives; one instance per streamed body."""

    damage: set[str]

    def feed(self, data: bytes, ts_us: int) -> list[StreamUnit]: ...

    def finish(self, ts_us: int) -> list[StreamUnit]: ...


class _Utf8:
    """Incremental UTF-8 → str. Invalid bytes become U+FFFD (the stream goes on) and are reported once.

    ``errors='replace'`` cannot tell an inserted U+FFFD from one that was really sent, so when the text
    holds any U+FFFD we compare counts: a genuine one is always the three bytes EF BF BD (EF is a lead
    byte, so those bytes can never belong to another sequence); any extra U+FFFD is a replacement.
    """

    __slots__ = ("_dec", "invalid")

    def __init__(self) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")
        self.invalid = False

    def decode(self, data: bytes, final: bool = False) -> str:
        pending = self._dec.getstate()[0] if not self.invalid else b""
        text = self._dec.decode(data, final)
        if not self.invalid and "\ufffd" in text:
            raw = pending + data
            if text.count("\ufffd") > raw.count(b"\xef\xbf\xbd"):
                self.invalid = True
        return text


class _Base:
    """Shared plumbing: UTF-8 decoding, damage, redaction, counters."""

    def __init__(self, counters: Counter, redact: Callable[[str], str] | None) -> None:
        self.damage: set[str] = set()
        self._utf8 = _Utf8()
        self._counters = counters
        self._redact = redact

    def _text(self, data: bytes, final: bool = False) -> str:
        text = self._utf8.decode(data, final)
        if self._utf8.invalid:
            self.damage.add("decode_error")
        return text


# --- SSE ---------------------------------------------------------------------------------------------


class SseSplitter(_Base):
    """Server-Sent Events (§8.1, after the WHATWG event-stream parser).

    Line endings are normalised to ``\\n`` chunk by chunk; a ``\\r`` that ends one chunk remembers that a
    ``\\n`` opening the next chunk belongs to it, so a CRLF split across packets is one line end, not two
    (which would dispatch an event early). ``SseEvent.id`` is the ``id:`` of that event's block (None if it
    had none), not the WHATWG last-event-id that carries over, since units are read one at a time.
    """

    def __init__(self, counters: Counter, redact: Callable[[str], str] | None = None) -> None:
        super().__init__(counters, redact)
        self._parts: list[str] = []  # text of the unterminated last line
        self._cr = False  # last non-empty chunk ended in \r
        self._started = False  # BOM check done
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, data: bytes, ts_us: int) -> list[StreamUnit]:
        return self._lines(self._text(data), ts_us)

    def finish(self, ts_us: int) -> list[StreamUnit]:
        units = self._lines(self._text(b"", final=True), ts_us)
        if self._parts:  # unterminated last line
            line = "".join(self._parts)
            self._parts = []
            self._run([line], units, ts_us)
        if self._data:  # unterminated last event
            self._run([""], units, ts_us)
        self._event, self._data, self._id = None, [], None
        return units

    def _lines(self, text: str, ts_us: int) -> list[StreamUnit]:
        units: list[StreamUnit] = []
        if not text:
            return units
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return units
        if self._cr:
            self._cr = False
            if text[0] == "\n":  # second half of a CRLF split across chunks
                text = text[1:]
                if not text:
                    return units
        if "\r" in text:
            self._cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            self._parts.append(text)
            return units
        if self._parts:
            self._parts.append(text)
            text = "".join(self._parts)
            self._parts = []
        lines = text.split("\n")
        tail = lines.pop()
        if tail:
            self._parts.append(tail)
        self._run(lines, units, ts_us)
        return units

    def _run(self, lines: list[str], units: list[StreamUnit], ts_us: int) -> None:
        """Interpret complete lines. The hot loop of SSE: state lives in locals, one branch per line."""
        event, data, ev_id = self._event, self._data, self._id
        redact = self._redact
        dispatched = 0
        for line in lines:
            if not line:  # blank line: dispatch
                if data or event is not None:
                    text = "\n".join(data)
                    if redact is not None:
                        text = redact(text)
                    units.append((ts_us, SseEvent(event, text, ev_id)))
                    dispatched += 1
                    event, data = None, []
                ev_id = None
                continue
            if line[0] == ":":
                continue  # comment / keep-alive
            name, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value or None
            elif name == "id":
                if "\0" not in value:  # WHATWG: an id with NUL is ignored
                    ev_id = value
            # retry: and unknown fields are ignored
        self._event, self._data, self._id = event, data, ev_id
        if dispatched:
            self._counters["sse_events"] += dispatched


# --- NDJSON ------------------------------------------------------------------------------------------


class NdjsonSplitter(_Base):
    """Newline-delimited JSON (§8.2): one JSON value per non-blank line; ``\\r`` before ``\\n`` is
    stripped. A line that is not JSON is kept as ``BadUnit`` (counted ``ndjson_bad_lines``) so nothing
    the server sent is lost."""

    def __init__(self, counters: Counter, redact: Callable[[str], str] | None = None) -> None:
        super().__init__(counters, redact)
        self._parts: list[str] = []

    def feed(self, data: bytes, ts_us: int) -> list[StreamUnit]:
        return self._lines(self._text(data), ts_us)

    def finish(self, ts_us: int) -> list[StreamUnit]:
        units = self._lines(self._text(b"", final=True), ts_us)
        if self._parts:
            line = "".join(self._parts)
            self._parts = []
            self._run([line], units, ts_us)
        return units

    def _lines(self, text: str, ts_us: int) -> list[StreamUnit]:
        units: list[StreamUnit] = []
        if "\n" not in text:
            if text:
                self._parts.append(text)
            return units
        if self._parts:
            self._parts.append(text)
            text = "".join(self._parts)
            self._parts = []
        lines = text.split("\n")
        tail = lines.pop()
        if tail:
            self._parts.append(tail)
        self._run(lines, units, ts_us)
        return units

    def _run(self, lines: list[str], units: list[StreamUnit], ts_us: int) -> None:
        redact = self._redact
        loads = orjson.loads
        good = bad = 0
        for line in lines:
            line = line.rstrip("\r")
            if not line or line.isspace():
                continue
            if redact is not None:
                line = redact(line)
            try:
                value = loads(line)
                good += 1
            except orjson.JSONDecodeError:
                value = BadUnit(line)
                bad += 1
            units.append((ts_us, value))
        if good or bad:
            self._counters["ndjson_lines"] += good + bad
        if bad:
            self._counters["ndjson_bad_lines"] += bad


# --- JSON array --------------------------------------------------------------------------------------

_START, _BETWEEN, _ELEM, _DONE, _WHOLE = range(5)
_WS = re.compile(r"[ \t\r\n]*")
_SEP = re.compile(r"[ \t\r\n,]*")
_STR_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.S)  # string contents up to the closing quote
# Inside a container: everything up to the next bracket, skipping whole strings (which may hold brackets).
# Stops before a bracket or before a string that does not end in this chunk.
_SKIP = re.compile(r'(?:[^"{}\[\]]+|"[^"\\]*(?:\\.[^"\\]*)*")*', re.S)
_SCALAR_END = re.compile(r"[ \t\r\n,\]]")


class JsonArraySplitter(_Base):
    """A streamed JSON array (§8.3, Gemini ``streamGenerateContent`` without ``alt=sse``): ``[ {…}, {…} ]``
    split into its top-level elements as they complete.

    The scanner tracks nesting depth and string/escape state, jumping with regular expressions from one
    bracket or quote to the next and over whole string bodies, so it never loops per character. Brackets
    are only counted, not matched; orjson validates each element. A body that is not an array comes out
    as one unit: an object or string (an error object, say) when it closes, anything else (a bare
    scalar, an HTML error page from a proxy) whole at the end of the body, rather than cut at whitespace.
    """

    def __init__(self, counters: Counter, redact: Callable[[str], str] | None = None) -> None:
        super().__init__(counters, redact)
        self._state = _START
        self._parts: list[str] = []  # earlier chunks of the current element
        self._depth = 0
        self._in_str = False
        self._escape = False  # a backslash ended the previous chunk inside a string
        self._scalar = False  # current element is a number / literal, ended by a delimiter

    def feed(self, data: bytes, ts_us: int) -> list[StreamUnit]:
        units: list[StreamUnit] = []
        text = self._text(data)
        if text:
            self._scan(text, units, ts_us)
        return units

    def finish(self, ts_us: int) -> list[StreamUnit]:
        units: list[StreamUnit] = []
        text = self._text(b"", final=True)
        if text:
            self._scan(text, units, ts_us)
        if self._state == _WHOLE:
            self._emit("".join(self._parts).rstrip(), units, ts_us)
            self._parts = []
            self._state = _DONE
        elif self._state == _ELEM and self._parts:  # cut element: emitted as is (a scalar may be whole)
            self._emit("".join(self._parts), units, ts_us)
            self._parts = []
            self._state = _BETWEEN
        return units

    def _scan(self, text: str, units: list[StreamUnit], ts_us: int) -> None:
        n = len(text)
        pos = 0
        start = 0  # where the current element's text begins in this chunk
        while pos < n:
            state = self._state
            if state == _ELEM:
                if self._scalar:
                    m = _SCALAR_END.search(text, pos)
                    if m is None:
                        pos = n
                        break
                    self._finish_elem(text, start, m.start(), units, ts_us)
                    pos = m.start()
                elif self._in_str:
                    if self._escape:
                        self._escape = False
                        pos += 1  # the escaped character
                        continue
                    end = _STR_BODY.match(text, pos).end()
                    if end == n:
                        pos = n
                        break
                    if text[end] == "\\":  # backslash is the chunk's last character
                        self._escape = True
                        pos = n
                        break
                    pos = end + 1  # past the closing quote
                    self._in_str = False
                    if self._depth == 0:  # a top-level string element
                        self._finish_elem(text, start, pos, units, ts_us)
                else:
                    depth = self._depth
                    closed = False
                    skip = _SKIP.match
                    while True:
                        pos = skip(text, pos).end()  # plain text and whole strings
                        if pos == n:
                            break
                        ch = text[pos]
                        pos += 1
                        if ch == '"':  # a string that does not end in this chunk
                            self._in_str = True
                            break
                        if ch == "{" or ch == "[":
                            depth += 1
                        else:
                            depth -= 1
                            if depth <= 0:
                                closed = True
                                break
                    self._depth = depth
                    if closed:
                        self._finish_elem(text, start, pos, units, ts_us)
            elif state == _BETWEEN:
                pos = _SEP.match(text, pos).end()
                if pos == n:
                    break
                if text[pos] == "]":
                    self._state = _DONE
                    pos += 1
                else:
                    start = pos
                    pos += self._begin(text[pos])
            elif state == _START:
                pos = _WS.match(text, pos).end()
                if pos == n:
                    break
                ch = text[pos]
                if ch == "[":
                    self._state = _BETWEEN
                    pos += 1
                elif ch == "{" or ch == '"':  # not an array: that value is the one element
                    start = pos
                    pos += self._begin(ch)
                else:  # not JSON we can split (a scalar, an HTML error page): one unit at the end
                    self._state = _WHOLE
                    self._parts.append(text[pos:])
                    break
            elif state == _WHOLE:
                self._parts.append(text[pos:])
                break
            else:  # _DONE: anything after the closing bracket is ignored
                break
        if self._state == _ELEM:
            self._parts.append(text[start:])

    def _begin(self, ch: str) -> int:
        """Start an element at ``ch``; returns how many characters it consumed (the opening quote of a
        top-level string, which must not be skipped as a whole string since its end is the element's)."""
        self._state = _ELEM
        self._depth = 0
        self._escape = False
        self._scalar = ch not in '{["'
        self._in_str = ch == '"'
        return 1 if self._in_str else 0

    def _finish_elem(self, text: str, start: int, end: int, units: list[StreamUnit], ts_us: int) -> None:
        piece = text[start:end]
        if self._parts:
            self._parts.append(piece)
            piece = "".join(self._parts)
            self._parts = []
        self._state = _BETWEEN
        self._emit(piece, units, ts_us)

    def _emit(self, elem: str, units: list[StreamUnit], ts_us: int) -> None:
        if self._redact is not None:
            elem = self._redact(elem)
        try:
            value = orjson.loads(elem)
        except orjson.JSONDecodeError:
            value = BadUnit(elem)
        units.append((ts_us, value))


# --- selection ---------------------------------------------------------------------------------------


def make_splitter(
    stream_format: str, counters: Counter, redact: Callable[[str], str] | None = None
) -> Splitter:
    """Splitter for a ``stream_format`` from ``stream_format_for``."""
    if stream_format == "sse":
        return SseSplitter(counters, redact)
    if stream_format == "ndjson":
        return NdjsonSplitter(counters, redact)
    if stream_format == "json-array":
        return JsonArraySplitter(counters, redact)
    raise ValueError(f"unknown stream format {stream_format!r}")


_NDJSON_TYPES = frozenset({"application/x-ndjson", "application/jsonl"})


def stream_format_for(content_type: str | None, method: str, path: str, query: str | None) -> str | None:
    """How a response body is streamed (§6.5), or None when it is delivered whole.

    The media type decides first (compared case-insensitively, parameters ignored); a Gemini
    ``…:streamGenerateContent`` call without ``alt=sse`` answers with a JSON array streamed piece by piece
    under a plain JSON content type, so it is recognised by its route. ``method`` is part of the interface
    but not needed: that route only exists as POST.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "text/event-stream":
        return "sse"
    if media in _NDJSON_TYPES:
        return "ndjson"
    if path.endswith(":streamGenerateContent") or path.lower().endswith("%3astreamgeneratecontent"):
        if not _alt_sse(query):
            return "json-array"
    return None


def _alt_sse(query: str | None) -> bool:
    if not query:
        return False
    for item in query.split("&"):
        key, _, value = item.partition("=")
        if key == "alt" and value.lower() == "sse":
            return True
    return False
