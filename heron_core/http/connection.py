"""One HTTP/1.x connection as a passive observer sees it (capture-and-http.md §6, §9).

``HttpConnection`` is the TCP stage's ``StreamHandler`` for one flow. Each direction is parsed on its own
(``parser.py``); requests go into a FIFO of outstanding exchanges when their head is read, and each final
response takes the oldest one, which is all pipelining needs. Bodies are framed, decoded (``codecs.py``)
and, for streamed responses, split into units (``streams.py``) as their bytes arrive, so every unit
carries the timestamp of the packet that completed it.

Finished exchanges go to an ``ExchangeSink``; everything it receives is redacted.

Choices the spec leaves open, made here:

* ``request_complete`` is called once a request was read to the end of its framing (holes from gaps
  inside a Content-Length/chunk body included, marked ``gap``). A request cut by a parse error or a gap
  that loses the framing, or by the end of the flow, gets only ``exchange_done``; ``exchange_done`` is
  called exactly once per exchange, always after ``request_complete`` when both are.
* A response the connection has to give up on (a gap it cannot frame across, a parse error) is aborted
  with ``end_cause='gap'``: both mean "the byte stream was cut here", and the wire stage only knows the
  network causes reset/closed/gap/expired/no_response. Its damage says which it was.
* A gap in the server direction between responses means the lost bytes began the next response, so the
  oldest outstanding request is aborted (``gap``) and the direction resyncs on the next status line.
  A gap in the client direction between requests loses a request; if its request line had arrived, that
  exchange is finished at once as aborted (``gap``), since its response may already have gone by unpaired.
* Damage ``midstream`` is never set here: the TCP stage drops everything before a mid-stream sync, so a
  response that began before sync never reaches this stage (one arriving without a request is counted
  ``unpaired_responses`` and dropped).
* A flow whose first client line is not a request line (TLS, SSH, ...) is opaque: its bytes are dropped
  without counting parse errors. ``Connection: close`` (or HTTP/1.0 without keep-alive) ends parsing of
  that direction after the message.
* Decoded bodies past ``http.max_body_bytes`` are counted, not kept, and not split: stream units come from
  the kept part only, which bounds memory per exchange.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Protocol

from heron_core.config import Config
from heron_core.http import parser as P
from heron_core.http.codecs import ContentDecoder, make_decoder
from heron_core.http.parser import ParseError
from heron_core.http.streams import Splitter, make_splitter, stream_format_for
from heron_core.ids import exchange_id
from heron_core.records import Exchange, FlowInfo, StreamUnit, format_ip
from heron_core.redact import Redactor


class ExchangeSink(Protocol):
    """Where a connection hands its exchanges (docs/architecture.md §3)."""

    def request_complete(self, ex: Exchange) -> None: ...  # request fully read (CallStarted)

    def exchange_done(self, ex: Exchange) -> None: ...  # final: complete / aborted / no_response


_H2_PREFACE_LINE = b"PRI * HTTP/2.0\r\n"

# direction states
_HEAD, _BODY, _RESYNC, _IGNORE = 0, 1, 2, 3
# connection modes
_HTTP, _H2, _UPGRADED, _OPAQUE, _DONE = "http", "h2", "upgraded", "opaque", "done"


class _Body:
    """Decoded-body accumulator of one message: decoding, the size limit, stream splitting.

    ``feed`` is the per-packet hot path: an optional decoder call, a length check, a list append.
    """

    __slots__ = ("decoder", "splitter", "chunks", "kept", "total", "limit", "over", "holed", "units")

    def __init__(
        self,
        decoder: ContentDecoder | None,
        splitter: Splitter | None,
        limit: int,
        units: list[StreamUnit],
    ) -> None:
        self.decoder = decoder
        self.splitter = splitter
        self.chunks: list[bytes] = []
        self.kept = 0
        self.total = 0
        self.limit = limit
        self.over = False
        self.holed = False  # a gap made the compressed stream undecodable from here on
        self.units = units

    def feed(self, raw: bytes, ts_us: int) -> None:
        if self.holed:
            return
        data = self.decoder.feed(raw) if self.decoder is not None else raw
        if data:
            self._take(data, ts_us)

    def _take(self, data: bytes, ts_us: int) -> None:
        self.total += len(data)
        room = self.limit - self.kept
        if len(data) > room:
            self.over = True
            if room <= 0:
                return
            data = data[:room]
        self.kept += len(data)
        self.chunks.append(data)
        if self.splitter is not None:
            units = self.splitter.feed(data, ts_us)
            if units:
                self.units.extend(units)

    def hole(self) -> None:
        """Bytes are missing here: a compressed body cannot be decoded past them; plain text goes on."""
        if self.decoder is not None:
            self.holed = True

    def finish(self, ts_us: int, complete: bool) -> None:
        """End of the body. Only a complete body flushes the decoder and the splitter's unterminated last
        unit; a cut one keeps the units already completed."""
        if not complete or self.holed:
            return
        if self.decoder is not None:
            tail = self.decoder.finish()
            if tail:
                self._take(tail, ts_us)
        if self.splitter is not None and not self.too_large:
            units = self.splitter.finish(ts_us)
            if units:
                self.units.extend(units)

    @property
    def too_large(self) -> bool:
        return self.over or (self.decoder is not None and self.decoder.over_limit)

    def damage(self) -> set[str]:
        d: set[str] = set()
        if self.decoder is not None:
            d |= self.decoder.damage
        if self.splitter is not None:
            d |= self.splitter.damage
        if self.too_large:
            d.add("body_too_large")
        return d

    def data(self) -> bytes:
        return self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)


class _Pending:
    """An exchange in flight and which of its halves are done."""

    __slots__ = ("ex", "req_done", "resp_done", "finished", "closing", "upgrade_h2c")

    def __init__(self, ex: Exchange, closing: bool, upgrade_h2c: bool) -> None:
        self.ex = ex
        self.req_done = False
        self.resp_done = False
        self.finished = False
        self.closing = closing  # the request asked for the connection to close after its response
        self.upgrade_h2c = upgrade_h2c


def _closing(version: str, index: P.Index) -> bool:
    """Whether the sender will close after this message (§6.2: keep-alive is 1.1's default)."""
    conn = P.tokens(index, "connection")
    if "close" in conn:
        return True
    return version == "HTTP/1.0" and "keep-alive" not in conn


def _endpoint_text(flow: FlowInfo) -> tuple:
    """(client_ip, client_port, server_ip, server_port), all None while the sides are unknown, and for
    eBPF flows (a ``process`` is known): their endpoints are synthetic, the call's ``connection`` is
    null and its ``server`` comes from the Host header (interfaces.md §6.1)."""
    c, s = flow.client, flow.server
    if c is None or s is None or flow.process is not None:
        return None, None, None, None
    return format_ip(c[0]), c[1], format_ip(s[0]), s[1]


class HttpConnection:
    """``StreamHandler`` for one TCP flow: HTTP/1.x parsing, pairing and exchange assembly."""

    def __init__(
        self, flow: FlowInfo, sink: ExchangeSink, counters: Counter, cfg: Config, redactor: Redactor
    ) -> None:
        self._flow = flow
        self._sink = sink
        self._counters = counters
        self._redactor = redactor
        self._max_head = cfg.http_max_head_bytes
        self._max_body = cfg.http_max_body_bytes
        self._flow_key = flow.flow_key_text
        self._endpoints: tuple | None = None  # text form of client/server, made once they are known
        self._mode = _HTTP
        self._http_seen = False  # a valid request or status line was parsed on this flow
        self._queue: deque[_Pending] = deque()
        self._ordinal = 0
        self._last_ts = flow.first_ts_us  # last packet delivered on the flow (either direction)
        # client direction
        self._c_state = _HEAD
        self._c_head = P.HeadReader(True, self._max_head)
        self._c_reader: P.BodyReader | None = None
        self._c_body: _Body | None = None
        self._c_cur: _Pending | None = None
        self._c_resync: P.Resync | None = None
        self._c_last = flow.first_ts_us
        # server direction
        self._s_state = _HEAD
        self._s_head = P.HeadReader(False, self._max_head)
        self._s_reader: P.BodyReader | None = None
        self._s_body: _Body | None = None
        self._s_cur: _Pending | None = None  # None while framing an unpaired response
        self._s_resync: P.Resync | None = None
        self._s_last = flow.first_ts_us
        self._s_closing = False
        self._s_fin = False

    # --- StreamHandler ---------------------------------------------------------------------------------

    def data(self, from_client: bool, data: bytes, ts_us: int) -> None:
        if self._mode is not _HTTP:
            return
        self._last_ts = ts_us
        if from_client:
            self._c_last = ts_us
            self._client_data(data, ts_us)
        else:
            self._s_last = ts_us
            self._server_data(data, ts_us)

    def gap(self, from_client: bool, nbytes: int, ts_us: int, reason: str = "gap") -> None:
        """Lost bytes; ``reason`` (``gap`` or ``truncated``, the TCP stage's word for why) is the damage
        the affected exchange gets (§6.6)."""
        if self._mode is not _HTTP:
            return
        if from_client:
            self._client_gap(nbytes, reason)
        else:
            self._server_gap(nbytes, reason)

    def fin(self, from_client: bool, ts_us: int) -> None:
        # A client FIN finishes nothing: the server may still answer (§5.5).
        if not from_client and self._mode is _HTTP:
            self._server_eof(ts_us)

    def reset(self, ts_us: int) -> None:
        self._end(ts_us, "reset")

    def expire(self, ts_us: int, cause: str) -> None:
        # 'drained' (end of a capture file) is reported like expiry: the flow ended unobserved.
        self._end(ts_us, "expired")

    def closed(self, ts_us: int) -> None:
        if self._mode is _HTTP:
            self._server_eof(ts_us)  # normally already seen; harmless if so
        self._end(ts_us, "closed")

    def awaiting_response(self) -> bool:
        return self._mode is _HTTP and (bool(self._queue) or self._s_cur is not None)

    # --- client direction ------------------------------------------------------------------------------

    def _client_data(self, data: bytes, ts: int) -> None:
        pos, n = 0, len(data)
        while pos < n and self._mode is _HTTP:
            st = self._c_state
            if st == _BODY:
                start = pos
                reader = self._c_reader
                pos, payload = reader.feed(data, pos)
                body = self._c_body
                if body is not None:  # None once the exchange was finished early: framing goes on
                    self._c_cur.ex.request_wire_bytes += pos - start
                    if payload:
                        body.feed(payload, ts)
                if reader.done:
                    self._finish_request(ts)
                elif reader.error is not None:
                    self._client_body_error()
                    data, pos, n = self._start_client_resync(data[pos:], False)
            elif st == _HEAD:
                try:
                    pos, head = self._c_head.feed(data, pos, ts)
                except ParseError:
                    buf = bytes(self._c_head.buf)  # holds the rest of this packet too
                    self._c_head.reset()
                    self._client_head_failed(buf, ts)
                    data, pos, n = self._start_client_resync(buf, False)
                    continue
                if head is not None and not self._request_head(head, ts):
                    data, pos, n = self._start_client_resync(head + data[pos:], False)
            elif st == _RESYNC:
                resync = self._c_resync
                replay = resync.feed(data, pos, ts)
                if replay is None:
                    return
                self._c_resync = None
                self._c_state = _HEAD
                self._c_head.first_ts_hint = resync.match_ts
                data, pos, n = replay, 0, len(replay)
            else:
                return

    def _start_client_resync(self, rest: bytes, at_line_start: bool) -> tuple[bytes, int, int]:
        """Switch the client direction to resync; returns the bytes still to scan as (data, pos, n)."""
        self._c_state = _RESYNC
        self._c_resync = P.Resync(True, self._max_head, at_line_start)
        self._c_reader = None
        self._c_body = None
        self._c_cur = None
        return rest, 0, len(rest)

    def _request_head(self, raw: bytes, ts: int) -> bool:
        """A complete request head: start the exchange. False when the client must resync."""
        try:
            head = P.parse_head(raw, True)
        except ParseError:
            self._client_head_failed(raw, ts)
            return False
        self._http_seen = True
        method, target, version = head.start
        p = self._new_exchange(method, target, version, head.headers, head.index, len(raw),
                               self._c_head.first_ts)
        self._queue.append(p)
        try:
            kind, length = P.request_framing(head.index)
        except ParseError:
            self._counters["parse_errors"] += 1
            p.ex.damage.add("parse_error")
            self._end_request_early(p, ts)
            return False
        self._c_cur = p
        if kind == P.NONE:
            self._finish_request(ts)
            return True
        self._c_reader = P.BodyReader(kind, length, self._max_head)
        decoder = make_decoder(P.joined(head.index, "content-encoding"), self._max_body)
        self._c_body = _Body(decoder, None, self._max_body, [])
        self._c_state = _BODY
        return True

    def _new_exchange(
        self,
        method: str,
        target: str,
        version: str,
        headers: list[tuple[str, str]],
        index: P.Index,
        wire_len: int,
        first_ts: int,
    ) -> _Pending:
        flow = self._flow
        ordinal = self._ordinal
        self._ordinal += 1
        self._counters["requests"] += 1
        path, sep, query = target.partition("?")
        red = self._redactor
        ends = self._endpoints
        if ends is None:
            ends = _endpoint_text(flow)
            if ends[0] is not None:  # the TCP stage may learn the sides later: cache only when known
                self._endpoints = ends
        ex = Exchange(
            exchange_id=exchange_id(flow.source_id, self._flow_key, flow.first_ts_us, ordinal),
            source_id=flow.source_id,
            ordinal=ordinal,
            client_ip=ends[0],
            client_port=ends[1],
            server_ip=ends[2],
            server_port=ends[3],
            process=flow.process,
            method=method,
            path=red.text(path),
            query=red.query(query) if sep else None,
            http_version=version,
            request_headers=red.headers(headers),
            request_wire_bytes=wire_len,
            request_start=first_ts,
        )
        upgrade_h2c = "h2c" in P.tokens(index, "upgrade")
        return _Pending(ex, _closing(version, index), upgrade_h2c)

    def _client_head_failed(self, buf: bytes, ts: int) -> None:
        """A client head that cannot be parsed: the h2 preface, a flow that is not HTTP at all (dropped
        silently), or a parse error."""
        if buf.startswith(_H2_PREFACE_LINE):
            self._counters["h2_skipped"] += 1
            self._mode = _H2
            self._c_state = self._s_state = _IGNORE
            return
        line = P.first_line(buf)
        if not self._http_seen and (line is None or P.parse_request_line(line) is None):
            self._mode = _OPAQUE
            self._c_state = self._s_state = _IGNORE
            return
        self._counters["parse_errors"] += 1
        self._bad_request_head(buf, ts)

    def _bad_request_head(self, buf: bytes, ts: int) -> None:
        """A head that failed to parse: if its request line is valid the request is real and the server
        will answer it, so it becomes a damaged exchange that keeps its place in the queue."""
        line = P.first_line(buf)
        start = P.parse_request_line(line) if line is not None else None
        if start is None:
            return
        self._http_seen = True
        p = self._new_exchange(*start, [], {}, len(buf), self._c_head.first_ts)
        p.ex.damage.add("parse_error")
        self._queue.append(p)
        self._end_request_early(p, ts)

    def _end_request_early(self, p: _Pending, ts: int) -> None:
        """The request cannot be read to its end (parse error, lost framing): stop reading it; it stays
        in the queue for its response."""
        ex = p.ex
        if ex.request_end is None:
            ex.request_end = ts
        if p is self._c_cur and self._c_body is not None:
            self._close_body(ex, self._c_body, False, False, ts)
        p.req_done = True
        if p.resp_done and not p.finished:
            self._finalize(p, "complete", None, ts)

    def _finish_request(self, ts: int) -> None:
        p, body = self._c_cur, self._c_body
        self._c_cur = self._c_body = self._c_reader = None
        self._c_state = _IGNORE if p.closing else _HEAD
        if p.finished:
            return
        ex = p.ex
        ex.request_end = ts
        if body is not None:
            self._close_body(ex, body, True, False, ts)
        p.req_done = True
        self._sink.request_complete(ex)
        if p.resp_done:
            self._finalize(p, "complete", None, ts)

    def _client_body_error(self) -> None:
        self._counters["parse_errors"] += 1
        p = self._c_cur
        if not p.finished:
            p.ex.damage.add("parse_error")
            self._end_request_early(p, self._c_last)

    def _client_gap(self, nbytes: int, reason: str) -> None:
        st = self._c_state
        if st == _BODY:
            p = self._c_cur
            if self._c_reader.gap(nbytes):
                if not p.finished:
                    p.ex.damage.add(reason)
                    p.ex.request_wire_bytes += nbytes
                    if self._c_body is not None:
                        self._c_body.hole()
                if self._c_reader.done:
                    self._finish_request(self._c_last)
                return
            if not p.finished:
                p.ex.damage.add(reason)
                self._end_request_early(p, self._c_last)
        elif st == _HEAD:
            buf = bytes(self._c_head.buf)
            self._c_head.reset()
            line = P.first_line(buf)
            start = P.parse_request_line(line) if line is not None else None
            if start is not None:
                # Its response may already have passed unpaired: finish it now rather than let it take
                # a later request's response.
                self._http_seen = True
                p = self._new_exchange(*start, [], {}, len(buf), self._c_head.first_ts)
                p.ex.damage.add(reason)
                p.ex.request_end = self._c_last
                self._finalize(p, "aborted", "gap", self._last_ts)
        elif st == _RESYNC:
            self._c_resync.gap()
            return
        else:
            return
        self._start_client_resync(b"", True)

    # --- server direction ------------------------------------------------------------------------------

    def _server_data(self, data: bytes, ts: int) -> None:
        pos, n = 0, len(data)
        while pos < n and self._mode is _HTTP:
            st = self._s_state
            if st == _BODY:
                start = pos
                reader = self._s_reader
                pos, payload = reader.feed(data, pos)
                p = self._s_cur
                if p is not None:
                    p.ex.response_wire_bytes += pos - start
                    if payload:
                        self._s_body.feed(payload, ts)
                if reader.done:
                    self._finish_response(ts)
                elif reader.error is not None:
                    self._counters["parse_errors"] += 1
                    self._abort_response(ts, "gap", "parse_error")
                    data, pos, n = self._start_server_resync(data[pos:], False)
            elif st == _HEAD:
                try:
                    pos, head = self._s_head.feed(data, pos, ts)
                except ParseError:
                    buf = bytes(self._s_head.buf)
                    self._s_head.reset()
                    self._server_head_failed()
                    data, pos, n = self._start_server_resync(buf, False)
                    continue
                if head is not None and not self._response_head(head, ts):
                    data, pos, n = self._start_server_resync(head + data[pos:], False)
            elif st == _RESYNC:
                resync = self._s_resync
                replay = resync.feed(data, pos, ts)
                if replay is None:
                    return
                self._s_resync = None
                self._s_state = _HEAD
                self._s_head.first_ts_hint = resync.match_ts
                data, pos, n = replay, 0, len(replay)
            else:
                return

    def _start_server_resync(self, rest: bytes, at_line_start: bool) -> tuple[bytes, int, int]:
        self._s_state = _RESYNC
        self._s_resync = P.Resync(False, self._max_head, at_line_start)
        self._s_reader = None
        self._s_body = None
        self._s_cur = None
        return rest, 0, len(rest)

    def _response_head(self, raw: bytes, ts: int) -> bool:
        """A complete response head: pair it, or skip it if interim. False when the server must resync."""
        try:
            head = P.parse_head(raw, False)
        except ParseError:
            self._server_head_failed()
            return False
        self._http_seen = True
        version, status, reason = head.start
        if status < 200 and status != 101:
            self._counters["interim_responses_skipped"] += 1
            if self._queue:
                self._queue[0].ex.response_wire_bytes += len(raw)
            return True
        self._counters["responses"] += 1
        p = self._queue.popleft() if self._queue else None
        method = None
        if p is None:
            self._counters["unpaired_responses"] += 1
        else:
            ex = p.ex
            method = ex.method
            ex.status_code = status
            ex.reason = reason
            ex.response_headers = self._redactor.headers(head.headers)
            ex.response_start = ts
            ex.response_wire_bytes += len(raw)
        if status == 101 or (method == "CONNECT" and 200 <= status < 300):
            h2c = (p is not None and p.upgrade_h2c) or "h2c" in P.tokens(head.index, "upgrade")
            self._counters["h2_skipped" if h2c else "upgrades_skipped"] += 1
            self._mode = _UPGRADED
            self._c_state = self._s_state = _IGNORE
            if p is not None:
                p.ex.response_end = ts
                p.resp_done = True
                if not p.req_done:
                    self._end_request_early(p, self._c_last)
                self._finalize(p, "complete", None, ts)
            return True
        self._s_cur = p
        try:
            kind, length = P.response_framing(head.index, status, method)
        except ParseError:
            self._counters["parse_errors"] += 1
            self._abort_response(ts, "gap", "parse_error")
            return False
        self._s_closing = _closing(version, head.index) or (p is not None and p.closing)
        if kind == P.NONE:
            self._finish_response(ts)
            return True
        self._s_reader = P.BodyReader(kind, length, self._max_head)
        if p is not None:
            ex = p.ex
            fmt = stream_format_for(P.joined(head.index, "content-type"), ex.method, ex.path, ex.query)
            ex.stream_format = fmt
            splitter = make_splitter(fmt, self._counters, self._redactor.text) if fmt else None
            decoder = make_decoder(P.joined(head.index, "content-encoding"), self._max_body)
            self._s_body = _Body(decoder, splitter, self._max_body, ex.stream_units)
        self._s_state = _BODY
        return True

    def _server_head_failed(self) -> None:
        """A server head that cannot be parsed: a flow that never spoke HTTP is dropped silently (a
        server-first protocol); otherwise it is the oldest request's response, cut by a parse error."""
        if not self._http_seen:
            self._mode = _OPAQUE
            self._c_state = self._s_state = _IGNORE
            return
        self._counters["parse_errors"] += 1
        if self._queue:
            self._abort_next(self._s_last, "gap", "parse_error")

    def _finish_response(self, ts: int) -> None:
        """The response's last byte arrived at ``ts``."""
        p, body = self._s_cur, self._s_body
        self._s_cur = self._s_body = self._s_reader = None
        self._s_state = _IGNORE if self._s_closing else _HEAD
        if p is None or p.finished:
            return
        ex = p.ex
        ex.response_end = ts
        if body is not None:
            self._close_body(ex, body, True, True, ts)
        p.resp_done = True
        if p.req_done:
            self._finalize(p, "complete", None, ts)

    def _abort_response(self, ts: int, cause: str, damage: str | None = None) -> None:
        """The response in progress is cut at ``ts``; its exchange finishes aborted."""
        p, body = self._s_cur, self._s_body
        self._s_cur = self._s_body = self._s_reader = None
        self._s_state = _HEAD
        if p is None or p.finished:
            return
        ex = p.ex
        if damage:
            ex.damage.add(damage)
        ex.response_end = ts
        if body is not None:
            self._close_body(ex, body, False, True, ts)
        self._finalize(p, "aborted", cause, ts)

    def _abort_next(self, ts: int, cause: str, damage: str | None) -> None:
        """The oldest outstanding request's response started (or was lost) and is cut at ``ts``."""
        self._s_cur = self._queue.popleft()
        self._s_body = None
        self._abort_response(ts, cause, damage)

    def _server_gap(self, nbytes: int, reason: str) -> None:
        st = self._s_state
        if st == _BODY:
            if self._s_reader.gap(nbytes):
                p = self._s_cur
                if p is not None:
                    p.ex.damage.add(reason)
                    p.ex.response_wire_bytes += nbytes
                    self._s_body.hole()
                if self._s_reader.done:
                    self._finish_response(self._s_last)
                return
            self._abort_response(self._last_ts, "gap", reason)
        elif st == _HEAD:
            self._s_head.reset()
            if self._queue:
                self._abort_next(self._last_ts, "gap", reason)
        elif st == _RESYNC:
            self._s_resync.gap()
            return
        else:
            return
        self._start_server_resync(b"", True)

    def _server_eof(self, ts: int) -> None:
        """Server FIN: a close-delimited body ends at its last data packet; anything else in progress is
        cut (§5.5)."""
        if self._s_fin:
            return
        self._s_fin = True
        st = self._s_state
        if st == _BODY:
            if self._s_reader.kind == P.CLOSE:
                self._finish_response(self._s_last)
            else:
                self._abort_response(ts, "closed")
        elif st == _HEAD and self._s_head.started and self._queue:
            self._abort_next(ts, "closed", None)
        self._s_head.reset()
        self._s_state = _IGNORE

    # --- ending ----------------------------------------------------------------------------------------

    def _end(self, ts: int, cause: str) -> None:
        """The flow is gone (RST, both FINs, expiry/drain): finish every exchange still open."""
        if self._mode is _DONE:
            return
        if self._s_state == _BODY:
            self._abort_response(ts, cause)
        elif self._s_state == _HEAD and self._s_head.started and self._queue:
            self._abort_next(ts, cause, None)
        for p in self._queue:
            if cause == "reset":
                self._finalize(p, "aborted", "reset", ts)
            else:
                self._finalize(p, "no_response", "no_response", ts)
        self._queue.clear()
        c = self._c_cur
        if c is not None and not c.finished:  # response complete, request body never finished
            self._finalize(c, "complete", None, ts)
        self._mode = _DONE
        self._c_state = self._s_state = _IGNORE

    def _finalize(self, p: _Pending, state: str, cause: str | None, ts: int) -> None:
        """Hand the exchange to the sink, once. ``ts`` is the response end when none was set."""
        if p.finished:
            return
        ex = p.ex
        if not p.req_done:
            # The request was still being read: keep what arrived.
            if ex.request_end is None:
                ex.request_end = self._c_last
            if p is self._c_cur and self._c_body is not None:
                self._close_body(ex, self._c_body, False, False, ts)
                self._c_body = None  # framing goes on, bytes are no longer kept
        p.finished = True
        ex.state = state
        ex.end_cause = cause
        if ex.response_end is None:
            ex.response_end = ts
        if ex.stream_units and ex.first_chunk is None:
            ex.first_chunk = ex.stream_units[0][0]
        c = self._counters
        c["exchanges_" + state] += 1
        if ex.damage:
            c["exchanges_damaged"] += 1
        self._sink.exchange_done(ex)

    def _close_body(self, ex: Exchange, body: _Body, complete: bool, response: bool, ts: int) -> None:
        """Move a finished (or cut) body onto the exchange: redacted bytes, counts, damage."""
        body.finish(ts, complete)
        damage = body.damage()
        if damage:
            if "decode_error" in damage:
                self._counters["decode_errors"] += 1
            if "body_too_large" in damage:
                self._counters["bodies_over_limit"] += 1
            ex.damage |= damage
        data = self._redactor.bytes(body.data())
        if response:
            ex.response_body = data
            ex.response_body_bytes = body.total
            if ex.stream_units:
                ex.first_chunk = ex.stream_units[0][0]
        else:
            ex.request_body = data
            ex.request_body_bytes = body.total
