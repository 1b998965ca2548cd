"""HttpConnection: aborts, expiry, gaps, parse errors, resync and limits (§5.4–§5.6, §6.6, §9)."""

from __future__ import annotations

import gzip
from collections import Counter

from heron_core.config import Config
from heron_core.http.connection import HttpConnection
from heron_core.records import FlowInfo, SseEvent
from heron_core.redact import Redactor

CLIENT = (bytes([10, 0, 0, 1]), 40000)
SERVER = (bytes([10, 0, 0, 2]), 8080)
T0 = 1_700_000_000_000_000


class Sink:
    def __init__(self) -> None:
        self.started, self.done, self.log = [], [], []

    def request_complete(self, ex) -> None:
        self.started.append(ex)
        self.log.append(("req", ex.ordinal))

    def exchange_done(self, ex) -> None:
        self.done.append(ex)
        self.log.append(("done", ex.ordinal))


class Conn:
    def __init__(self, cfg: Config | None = None) -> None:
        self.flow = FlowInfo("src", CLIENT, SERVER, T0, client=CLIENT, server=SERVER)
        self.sink = Sink()
        self.counters = Counter()
        self.h = HttpConnection(self.flow, self.sink, self.counters, cfg or Config(), Redactor(b"salt"))

    def c(self, data: bytes, t: int) -> None:
        self.h.data(True, data, T0 + t)

    def s(self, data: bytes, t: int) -> None:
        self.h.data(False, data, T0 + t)

    def gap(self, from_client: bool, n: int, t: int) -> None:
        self.h.gap(from_client, n, T0 + t)

    @property
    def done(self):
        return self.sink.done


def get(path: str = "/") -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: h\r\n\r\n" % path.encode()


def ok(body: bytes = b"", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


# --- RST, FIN, close, expiry -------------------------------------------------------------------------


def test_rst_mid_stream_aborts_keeping_partial_units() -> None:
    k = Conn()
    k.c(b"POST /v1/messages HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 1)
    k.s(SSE_HEAD, 2)
    k.s(chunk(b"data: one\n\n"), 3)
    k.s(chunk(b"data: two\n\ndata: cut-"), 4)
    k.h.reset(T0 + 9)
    (ex,) = k.done
    assert (ex.state, ex.end_cause, ex.response_end) == ("aborted", "reset", T0 + 9)
    assert [u[1] for u in ex.stream_units] == [SseEvent(None, "one", None), SseEvent(None, "two", None)]
    assert ex.first_chunk == T0 + 3 and ex.status_code == 200
    assert ex.response_body == b"data: one\n\ndata: two\n\ndata: cut-"
    assert ex.damage == set()
    assert k.counters["exchanges_aborted"] == 1
    k.h.closed(T0 + 10)  # nothing more after the flow is gone
    k.s(ok(), 11)
    assert len(k.done) == 1


def test_rst_aborts_unanswered_and_pipelined_requests() -> None:
    k = Conn()
    k.c(get("/a") + get("/b"), 1)
    k.h.reset(T0 + 5)
    assert [(e.path, e.state, e.end_cause, e.response_end, e.status_code) for e in k.done] == [
        ("/a", "aborted", "reset", T0 + 5, None), ("/b", "aborted", "reset", T0 + 5, None)]


def test_server_fin_mid_content_length_aborts() -> None:
    k = Conn()
    k.c(get(), 1)
    k.s(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", 2)
    k.h.fin(False, T0 + 3)
    (ex,) = k.done
    assert (ex.state, ex.end_cause, ex.response_end) == ("aborted", "closed", T0 + 3)
    assert ex.response_body == b"partial" and ex.response_body_bytes == 7


def test_server_fin_mid_head_aborts_oldest() -> None:
    k = Conn()
    k.c(get(), 1)
    k.s(b"HTTP/1.1 200 OK\r\nContent-", 2)
    k.h.fin(False, T0 + 3)
    (ex,) = k.done
    assert (ex.state, ex.end_cause, ex.response_start, ex.status_code) == ("aborted", "closed", None, None)


def test_no_response_at_close() -> None:
    k = Conn()
    k.c(get("/a"), 1)
    k.s(ok(b"a"), 2)
    k.c(get("/b"), 3)
    k.h.fin(True, T0 + 4)
    k.h.fin(False, T0 + 5)
    assert len(k.done) == 1
    k.h.closed(T0 + 6)
    b = k.done[1]
    assert (b.path, b.state, b.end_cause, b.response_end, b.status_code, b.response_start) == (
        "/b", "no_response", "no_response", T0 + 6, None, None)
    assert b.request_end == T0 + 3
    assert k.counters["exchanges_no_response"] == 1


def test_expire_response_in_progress_and_unanswered() -> None:
    k = Conn()
    k.c(get("/a") + get("/b"), 1)
    k.s(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nclose-delimited...", 2)
    assert k.h.awaiting_response()
    k.h.expire(T0 + 2, "expired")
    a, b = k.done
    assert (a.state, a.end_cause, a.response_end) == ("aborted", "expired", T0 + 2)
    assert a.response_body == b"close-delimited..."
    assert (b.state, b.end_cause, b.response_end) == ("no_response", "no_response", T0 + 2)


def test_drain_is_reported_like_expiry() -> None:
    k = Conn()
    k.c(get(), 1)
    k.h.expire(T0 + 1, "drained")
    (ex,) = k.done
    assert (ex.state, ex.end_cause) == ("no_response", "no_response")
    k2 = Conn()
    k2.c(get(), 1)
    k2.s(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 2)
    k2.h.expire(T0 + 2, "drained")
    assert (k2.done[0].state, k2.done[0].end_cause) == ("aborted", "expired")


def test_rst_during_request_upload() -> None:
    k = Conn()
    k.c(b"POST /up HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345", 1)
    k.h.reset(T0 + 2)
    (ex,) = k.done
    assert not k.sink.started  # never fully read
    assert (ex.state, ex.request_body) == ("aborted", b"12345")
    assert (ex.request_end, ex.response_end) == (T0 + 1, T0 + 2)


def test_client_fin_alone_finishes_nothing() -> None:
    k = Conn()
    k.c(get(), 1)
    k.h.fin(True, T0 + 2)
    assert k.done == [] and k.h.awaiting_response()
    k.s(ok(b"late"), 3)
    assert k.done[0].response_body == b"late"


# --- gaps --------------------------------------------------------------------------------------------


def test_gap_inside_content_length_body_is_consumed() -> None:
    k = Conn()
    k.c(get("/a") + get("/b"), 1)
    k.s(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123", 2)
    k.gap(False, 3, 5)
    k.s(b"789" + ok(b"next"), 6)
    a, b = k.done
    assert (a.state, a.damage, a.response_body, a.response_end) == ("complete", {"gap"}, b"0123789", T0 + 6)
    assert a.response_wire_bytes == len(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n") + 10
    assert b.response_body == b"next" and b.damage == set()
    assert k.counters["exchanges_damaged"] == 1


def test_gap_at_end_of_body_completes_at_last_packet() -> None:
    k = Conn()
    k.c(get(), 1)
    k.s(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc", 2)
    k.gap(False, 3, 9)
    (ex,) = k.done
    assert (ex.state, ex.damage, ex.response_end) == ("complete", {"gap"}, T0 + 2)


def test_gap_inside_client_body() -> None:
    k = Conn()
    k.c(b"POST /p HTTP/1.1\r\nContent-Length: 8\r\n\r\nab", 1)
    k.gap(True, 4, 2)
    k.c(b"gh" + get("/q"), 3)
    p, q = k.sink.started
    assert p.request_body == b"abgh" and p.damage == {"gap"} and p.request_wire_bytes > 8
    assert q.path == "/q" and q.damage == set()


def test_gap_in_compressed_body_stops_decoding() -> None:
    k = Conn()
    k.c(get(), 1)
    plain = b"".join(b"line %d: %x\n" % (i, i * 7919 % 65521) for i in range(300))
    comp = gzip.compress(plain)
    assert len(comp) > 200
    wire = ok(comp, b"Content-Encoding: gzip\r\n")
    k.s(wire[:-len(comp) + 20], 2)
    k.gap(False, 30, 3)
    k.s(wire[-len(comp) + 50:], 4)
    (ex,) = k.done
    assert ex.state == "complete" and ex.damage == {"gap"}
    assert plain.startswith(ex.response_body) and len(ex.response_body) < len(plain)


def test_gap_inside_chunk_data_is_consumed() -> None:
    k = Conn()
    k.c(get(), 1)
    k.s(SSE_HEAD + b"20\r\ndata: aaaa", 2)
    k.gap(False, 8, 3)
    k.s(b"bbbbbbbbbbbb\n\n\r\n" + chunk(b"data: two\n\n") + b"0\r\n\r\n", 4)
    (ex,) = k.done
    assert ex.state == "complete" and ex.damage == {"gap"}
    assert ex.stream_units[-1] == (T0 + 4, SseEvent(None, "two", None))


def test_gap_across_chunk_framing_aborts_stream_and_resyncs() -> None:
    k = Conn()
    k.c(get("/s") + get("/n"), 1)
    k.s(SSE_HEAD + chunk(b"data: one\n\n") + b"5\r\nda", 2)
    k.gap(False, 100, 7)  # loses the rest of the chunk and the framing after it
    k.s(b"ta: x\n\n\r\n0\r\n\r\n" + ok(b"next"), 8)
    s, n = k.done
    assert (s.state, s.end_cause, s.damage, s.response_end) == ("aborted", "gap", {"gap"}, T0 + 2)
    assert [u[1].data for u in s.stream_units] == ["one"]
    assert n.response_body == b"next" and n.state == "complete"


def test_server_gap_between_responses_aborts_oldest() -> None:
    k = Conn()
    k.c(get("/a"), 1)
    k.c(get("/b"), 2)
    k.gap(False, 50, 9)  # /a's response head lost
    k.s(b"rest of a's response\r\n" + ok(b"B"), 10)
    a, b = k.done
    assert (a.path, a.state, a.end_cause, a.damage) == ("/a", "aborted", "gap", {"gap"})
    assert a.response_end == T0 + 2  # last packet delivered before the gap
    assert (b.path, b.response_body, b.state) == ("/b", b"B", "complete")


def test_client_gap_in_head_resyncs_on_next_request_line() -> None:
    k = Conn()
    k.c(b"POST /v1/messages HTTP/1.1\r\nHost: h\r\nCont", 1)
    k.gap(True, 40, 5)
    k.c(b'ength": 5}\r\nmore body\n' + get("/next"), 6)
    lost, nxt = k.done[0], k.sink.started[0]
    assert (lost.path, lost.state, lost.end_cause, lost.damage) == ("/v1/messages", "aborted", "gap", {"gap"})
    assert lost.ordinal == 0 and nxt.ordinal == 1 and nxt.path == "/next" and nxt.damage == set()
    k.s(ok(b"n"), 7)
    assert k.done[1].path == "/next" and k.done[1].response_body == b"n"


def test_client_gap_resync_across_packets() -> None:
    k = Conn()
    k.c(get("/a"), 1)
    k.s(ok(), 2)
    k.gap(True, 10, 3)
    k.c(b"garbage\r\nGET /b HT", 4)
    k.c(b"TP/1.1\r\nHost: h\r\n\r\n", 5)
    assert [e.path for e in k.sink.started] == ["/a", "/b"]
    assert k.sink.started[1].request_start == T0 + 4  # the replayed bytes keep the resync packet's time


def test_server_resync_on_status_line() -> None:
    k = Conn()
    k.c(get("/a"), 1)
    k.s(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 2)
    k.gap(False, 20, 3)
    k.s(b"garbage\nHTTP/1.1 ", 4)  # resync line split across packets
    k.c(get("/b"), 5)
    k.s(b"200 OK\r\nContent-Length: 1\r\n\r\nb", 6)
    a, b = k.done
    assert a.state == "aborted" and b.response_body == b"b"


# --- parse errors ------------------------------------------------------------------------------------


def test_bad_chunk_size_aborts_and_resyncs() -> None:
    k = Conn()
    k.c(get("/a") + get("/b"), 1)
    k.s(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"ok") + b"zz\r\nbad\r\n", 2)
    k.s(ok(b"B"), 3)
    a, b = k.done
    assert (a.state, a.end_cause, a.damage, a.response_body) == ("aborted", "gap", {"parse_error"}, b"ok")
    assert (b.state, b.response_body) == ("complete", b"B")
    assert k.counters["parse_errors"] == 1


def test_bad_chunk_size_in_request() -> None:
    k = Conn()
    k.c(b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 1)
    k.c(get("/q"), 2)
    k.s(ok(b"P") + ok(b"Q"), 3)
    p, q = k.done
    assert (p.path, p.damage, p.state, p.response_body) == ("/p", {"parse_error"}, "complete", b"P")
    assert (q.path, q.damage) == ("/q", set())
    assert [e.path for e in k.sink.started] == ["/q"]


def test_conflicting_content_length_is_parse_error() -> None:
    k = Conn()
    k.c(get("/a"), 1)
    k.s(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 2)
    (a,) = k.done
    assert a.state == "aborted" and a.damage == {"parse_error"} and a.status_code == 200
    k2 = Conn()
    k2.c(b"POST /x HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc", 1)
    assert k2.sink.started[0].request_body == b"abc"  # repeated equal values are fine


def test_request_transfer_encoding_without_chunked_is_parse_error() -> None:
    k = Conn()
    k.c(b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 1)
    k.s(ok(b"r"), 2)
    (ex,) = k.done
    assert ex.damage == {"parse_error"} and ex.response_body == b"r"


def test_bad_status_line_aborts_oldest() -> None:
    k = Conn()
    k.c(get("/a"), 1)
    k.s(b"HTTP/1.1 2xx Weird\r\n\r\n", 2)
    k.c(get("/b"), 3)
    k.s(ok(b"b"), 4)
    a, b = k.done
    assert (a.state, a.damage) == ("aborted", {"parse_error"}) and b.response_body == b"b"


def test_bad_request_line_after_http_seen() -> None:
    k = Conn()
    k.c(get("/a"), 1)
    k.c(b"\x00\x01 garbage\r\n\r\n" + get("/b"), 2)
    assert [e.path for e in k.sink.started] == ["/a", "/b"]
    assert k.counters["parse_errors"] == 1


def test_too_many_header_fields() -> None:
    k = Conn()
    fields = b"".join(b"X-H%d: v\r\n" % i for i in range(257))
    k.c(b"GET /many HTTP/1.1\r\n" + fields + b"\r\n", 1)
    k.s(ok(b"400-ish"), 2)
    k.c(get("/after"), 3)
    k.s(ok(b"fine"), 4)
    many, after = k.done
    assert (many.path, many.damage, many.response_body, many.request_headers) == (
        "/many", {"parse_error"}, b"400-ish", [])
    assert after.path == "/after" and after.damage == set()
    # exactly 256 is fine
    k2 = Conn()
    k2.c(b"GET /ok HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(256)) + b"\r\n", 1)
    assert len(k2.sink.started[0].request_headers) == 256


def test_head_too_large() -> None:
    k = Conn(Config(http_max_head_bytes=200))
    k.c(b"GET /big HTTP/1.1\r\nX-Pad: " + b"a" * 150, 1)
    k.c(b"b" * 100 + b"\r\n\r\n", 2)
    k.c(get("/after"), 3)
    k.s(ok(b"1") + ok(b"2"), 4)
    big, after = k.done
    assert (big.path, big.damage, big.response_body) == ("/big", {"parse_error"}, b"1")
    assert after.path == "/after" and after.response_body == b"2"


def test_response_head_too_large() -> None:
    k = Conn(Config(http_max_head_bytes=100))
    k.c(get("/a"), 1)
    k.s(b"HTTP/1.1 200 OK\r\nX: " + b"y" * 200, 2)
    (a,) = k.done
    assert a.state == "aborted" and a.damage == {"parse_error"}
    assert k.counters["parse_errors"] == 1


def test_obs_fold_and_header_value_decoding() -> None:
    k = Conn()
    k.c(b"GET / HTTP/1.1\r\nX-Fold: a\r\n  b\r\nX-Utf: caf\xc3\xa9 \xff\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n", 1)
    (ex,) = k.sink.started
    assert ex.request_headers == [
        ("X-Fold", "a b"), ("X-Utf", "café \ufffd"), ("X-Dup", "1"), ("x-dup", "2")]


def test_snaplen_truncation_is_damage_truncated_not_gap() -> None:
    """§5.6/§6.6: a snaplen-cut tail is handled like a gap but recorded as ``truncated`` (the accuracy
    harness found every snaplen exchange reported as ``gap``)."""
    k = Conn()
    k.c(get("/s") + get("/n"), 1)
    k.s(SSE_HEAD + chunk(b"data: one\n\n") + b"5\r\nda", 2)
    k.h.gap(False, 100, T0 + 2, "truncated")
    k.s(b"ta: x\n\n\r\n0\r\n\r\n" + ok(b"next"), 8)
    s, n = k.done
    assert (s.state, s.end_cause, s.damage) == ("aborted", "gap", {"truncated"})
    assert n.damage == set()


def test_snaplen_truncation_inside_content_length_body() -> None:
    k = Conn()
    k.c(get(), 1)
    k.s(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123", 2)
    k.h.gap(False, 3, T0 + 2, "truncated")
    k.s(b"789", 6)
    (ex,) = k.done
    assert (ex.state, ex.damage) == ("complete", {"truncated"})
