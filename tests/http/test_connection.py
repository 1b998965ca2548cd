"""HttpConnection: messages, pairing, framing, timestamps and ids (capture-and-http.md §6, §9, §10).

Every test feeds exact bytes per direction with explicit packet timestamps and checks what a recording
sink received.
"""

from __future__ import annotations

from collections import Counter

from heron_core.config import Config
from heron_core.http.connection import HttpConnection
from heron_core.ids import exchange_id
from heron_core.records import FlowInfo
from heron_core.redact import Redactor

CLIENT = (bytes([10, 0, 0, 1]), 40000)
SERVER = (bytes([10, 0, 0, 2]), 8080)
T0 = 1_700_000_000_000_000


class Sink:
    def __init__(self) -> None:
        self.started = []
        self.done = []
        self.log = []

    def request_complete(self, ex) -> None:
        self.started.append(ex)
        self.log.append(("req", ex.ordinal))

    def exchange_done(self, ex) -> None:
        self.done.append(ex)
        self.log.append(("done", ex.ordinal))


class Conn:
    """A connection under test: ``c``/``s`` feed client/server bytes at a timestamp offset from T0."""

    def __init__(self, cfg: Config | None = None, redact: bool = True) -> None:
        self.flow = FlowInfo("src", CLIENT, SERVER, T0, client=CLIENT, server=SERVER)
        self.sink = Sink()
        self.counters = Counter()
        self.redactor = Redactor(b"salt", enabled=redact)
        self.h = HttpConnection(self.flow, self.sink, self.counters, cfg or Config(), self.redactor)

    def c(self, data: bytes, t: int) -> None:
        self.h.data(True, data, T0 + t)

    def s(self, data: bytes, t: int) -> None:
        self.h.data(False, data, T0 + t)

    @property
    def done(self):
        return self.sink.done


def get(path: str = "/", extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: api.example\r\n" + extra + b"\r\n"


def ok(body: bytes = b"", extra: bytes = b"", status: bytes = b"200 OK") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + extra
        + b"\r\n" + body
    )


def chunk(data: bytes, ext: bytes = b"") -> bytes:
    return b"%x%s\r\n%s\r\n" % (len(data), ext, data)


# --- basics ------------------------------------------------------------------------------------------


def test_simple_get() -> None:
    k = Conn()
    req = get("/v1/models?limit=2&order=asc")
    k.c(req, 10)
    assert k.sink.started and not k.done
    assert k.h.awaiting_response()
    resp = ok(b'{"data":[]}', b"Content-Type: application/json\r\n")
    k.s(resp, 50)
    assert not k.h.awaiting_response()
    (ex,) = k.done
    assert k.sink.log == [("req", 0), ("done", 0)]
    assert ex.exchange_id == exchange_id("src", k.flow.flow_key_text, T0, 0)
    assert (ex.source_id, ex.ordinal) == ("src", 0)
    assert (ex.client_ip, ex.client_port) == ("10.0.0.1", 40000)
    assert (ex.server_ip, ex.server_port) == ("10.0.0.2", 8080)
    assert (ex.method, ex.path, ex.query) == ("GET", "/v1/models", "limit=2&order=asc")
    assert ex.http_version == "HTTP/1.1"
    assert ex.request_headers == [("Host", "api.example")]
    assert ex.host == "api.example"
    assert (ex.status_code, ex.reason) == (200, "OK")
    assert ex.response_headers == [("Content-Length", "11"), ("Content-Type", "application/json")]
    assert ex.response_body == b'{"data":[]}' and ex.response_body_bytes == 11
    assert ex.request_body == b"" and ex.request_body_bytes == 0
    assert ex.request_wire_bytes == len(req) and ex.response_wire_bytes == len(resp)
    assert (ex.request_start, ex.request_end, ex.response_start, ex.response_end) == (
        T0 + 10, T0 + 10, T0 + 50, T0 + 50)
    assert ex.first_chunk is None and ex.stream_format is None and ex.stream_units == []
    assert (ex.state, ex.end_cause, ex.damage) == ("complete", None, set())
    assert k.counters == Counter(requests=1, responses=1, exchanges_complete=1)


def test_post_body_across_packets_and_timestamps() -> None:
    k = Conn()
    body = b'{"model":"m","messages":[]}'
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    k.c(head[:7], 1)  # request line split too
    k.c(head[7:] + body[:5], 2)
    assert not k.sink.started
    k.c(body[5:], 3)
    assert k.sink.started
    k.s(b"HTTP/1.1 200 OK\r\nContent-", 7)
    k.s(b"Length: 2\r\n\r", 8)
    k.s(b"\n{", 9)  # the head completes in this packet
    k.s(b"}", 12)
    (ex,) = k.done
    assert ex.request_body == body and ex.request_body_bytes == len(body)
    assert ex.request_wire_bytes == len(head) + len(body)
    assert (ex.request_start, ex.request_end) == (T0 + 1, T0 + 3)
    assert (ex.response_start, ex.response_end) == (T0 + 9, T0 + 12)
    assert ex.response_body == b"{}"


def test_bare_lf_heads_and_mixed_endings() -> None:
    k = Conn()
    k.c(b"GET /x HTTP/1.1\nHost: h\n\n", 1)
    k.s(b"HTTP/1.1 200 OK\nContent-Length: 3\r\n\nabc", 2)
    (ex,) = k.done
    assert ex.request_headers == [("Host", "h")] and ex.response_body == b"abc"


def test_keep_alive_three_exchanges_ids_ordinal_based() -> None:
    k = Conn()
    for i in range(3):
        k.c(get(f"/r{i}"), 10 * i)
        k.s(ok(b"x" * i), 10 * i + 5)
    assert [e.path for e in k.done] == ["/r0", "/r1", "/r2"]
    assert [e.ordinal for e in k.done] == [0, 1, 2]
    assert [e.response_body for e in k.done] == [b"", b"x", b"xx"]
    ids = [e.exchange_id for e in k.done]
    assert ids == [exchange_id("src", k.flow.flow_key_text, T0, i) for i in range(3)]
    assert len(set(ids)) == 3
    # same flow, same bytes → same ids
    k2 = Conn()
    for i in range(3):
        k2.c(get(f"/r{i}"), 10 * i)
        k2.s(ok(b"x" * i), 10 * i + 5)
    assert [e.exchange_id for e in k2.done] == ids


def test_pipelining_pairs_fifo() -> None:
    k = Conn()
    k.c(get("/a") + get("/b"), 1)
    assert len(k.sink.started) == 2
    k.s(ok(b"A") + ok(b"BB"), 5)
    a, b = k.done
    assert (a.path, a.response_body, b.path, b.response_body) == ("/a", b"A", "/b", b"BB")
    assert a.request_start == b.request_start == T0 + 1
    assert k.counters["exchanges_complete"] == 2


def test_expect_100_continue() -> None:
    k = Conn()
    k.c(b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n", 1)
    cont = b"HTTP/1.1 100 Continue\r\n\r\n"
    k.s(cont, 2)
    k.c(b"data", 3)
    resp = ok(b"done", status=b"201 Created")
    k.s(resp, 4)
    (ex,) = k.done
    assert ex.status_code == 201 and ex.request_body == b"data"
    assert ex.request_end == T0 + 3 and ex.response_start == T0 + 4
    assert ex.response_wire_bytes == len(cont) + len(resp)
    assert k.counters["interim_responses_skipped"] == 1 and k.counters["responses"] == 1


def test_103_early_hints_then_final() -> None:
    k = Conn()
    k.c(get(), 1)
    k.s(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", 2)
    assert not k.done
    k.s(ok(b"hi"), 3)
    (ex,) = k.done
    assert ex.status_code == 200 and ex.response_start == T0 + 3
    assert ex.response_headers == [("Content-Length", "2")]
    assert k.counters["interim_responses_skipped"] == 1


def test_chunked_with_extensions_and_trailers() -> None:
    k = Conn()
    k.c(b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"hello", b";a=1") + b"0\r\n\r\n",
        1)
    assert k.sink.started[0].request_body == b"hello"
    body = chunk(b"abc", b";name=value;x") + chunk(b"defgh") + b"0;last\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    k.s(head, 2)
    k.s(body, 3)
    (ex,) = k.done
    assert ex.response_body == b"abcdefgh" and ex.response_body_bytes == 8
    assert ex.response_wire_bytes == len(head) + len(body)
    assert ex.response_end == T0 + 3 and ex.state == "complete"
    k.c(get("/next"), 4)
    k.s(ok(b"n"), 5)
    assert k.done[-1].response_body == b"n"


def test_close_delimited_ends_at_last_data_packet_on_fin() -> None:
    k = Conn()
    k.c(get(), 1)
    k.s(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart1 ", 2)
    k.s(b"part2", 3)
    k.h.fin(True, T0 + 4)  # client FIN finishes nothing
    assert not k.done
    k.h.fin(False, T0 + 9)
    (ex,) = k.done
    assert ex.response_body == b"part1 part2" and ex.state == "complete"
    assert ex.response_end == T0 + 3
    k.h.closed(T0 + 10)
    assert len(k.done) == 1


def test_transfer_encoding_without_chunked_is_close_delimited() -> None:
    k = Conn()
    k.c(get(), 1)
    k.s(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nabcdef", 2)
    k.h.fin(False, T0 + 3)
    assert k.done[0].response_body == b"abcdef"


def test_http10_closes_after_one_exchange() -> None:
    k = Conn()
    k.c(b"GET /old HTTP/1.0\r\n\r\n", 1)
    k.s(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 junk-after-close\r\n\r\n", 2)
    (ex,) = k.done
    assert ex.http_version == "HTTP/1.0" and ex.response_body == b"ok"
    assert k.counters["responses"] == 1 and k.counters["parse_errors"] == 0


def test_http10_keep_alive_and_connection_close() -> None:
    k = Conn()
    k.c(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1)
    k.s(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\na", 2)
    k.c(b"GET /b HTTP/1.1\r\nConnection: close\r\n\r\n", 3)
    k.s(ok(b"b") + ok(b"ignored"), 4)
    assert [e.response_body for e in k.done] == [b"a", b"b"]
    assert k.counters["responses"] == 2


def test_head_response_has_no_body() -> None:
    k = Conn()
    k.c(b"HEAD /f HTTP/1.1\r\nHost: h\r\n\r\n" + get("/g"), 1)
    k.s(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + ok(b"g"), 2)
    h, g = k.done
    assert h.method == "HEAD" and h.response_body == b"" and h.response_end == T0 + 2
    assert g.response_body == b"g"


def test_204_and_304_have_no_body() -> None:
    k = Conn()
    k.c(get("/a") + get("/b") + get("/c"), 1)
    k.s(b"HTTP/1.1 204 No Content\r\n\r\n", 2)
    k.s(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", 3)
    k.s(ok(b"c"), 4)
    assert [(e.status_code, e.response_body, e.response_end) for e in k.done] == [
        (204, b"", T0 + 2), (304, b"", T0 + 3), (200, b"c", T0 + 4)]


def test_leading_blank_lines_are_skipped() -> None:
    k = Conn()
    k.c(b"POST /p HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\n", 1)  # stray CRLF after a body
    k.c(get("/q"), 2)
    k.s(ok() + ok(), 3)
    assert [e.path for e in k.done] == ["/p", "/q"]
    assert k.done[1].request_start == T0 + 2
    assert k.counters["parse_errors"] == 0


def test_unpaired_response_is_framed_and_dropped() -> None:
    k = Conn()
    k.c(get("/first"), 1)
    k.s(ok(b"1"), 2)
    k.s(ok(b"stray body"), 3)  # nothing outstanding
    k.c(get("/second"), 4)
    k.s(ok(b"2"), 5)
    assert [(e.path, e.response_body) for e in k.done] == [("/first", b"1"), ("/second", b"2")]
    assert k.counters["unpaired_responses"] == 1 and k.counters["responses"] == 3


def test_early_final_response_waits_for_request_end() -> None:
    k = Conn()
    k.c(b"POST /big HTTP/1.1\r\nContent-Length: 6\r\n\r\nabc", 1)
    k.s(ok(b"no", status=b"413 Too Large"), 2)
    assert not k.done
    k.c(b"def", 3)
    (ex,) = k.done
    assert k.sink.log == [("req", 0), ("done", 0)]
    assert ex.status_code == 413 and ex.request_body == b"abcdef" and ex.request_end == T0 + 3


def test_101_upgrade_stops_parsing() -> None:
    k = Conn()
    k.c(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 1)
    k.s(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello", 2)
    k.c(b"\x81\x85garbage", 3)
    (ex,) = k.done
    assert ex.status_code == 101 and ex.state == "complete" and ex.response_end == T0 + 2
    assert k.counters["upgrades_skipped"] == 1 and k.counters["parse_errors"] == 0
    assert not k.h.awaiting_response()
    k.h.closed(T0 + 5)
    assert len(k.done) == 1


def test_h2c_upgrade_counts_h2_skipped() -> None:
    k = Conn()
    k.c(b"GET / HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAM\r\n\r\n", 1)
    k.s(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 2)
    k.c(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 3)
    assert k.counters["h2_skipped"] == 1 and k.counters["upgrades_skipped"] == 0
    assert k.done[0].status_code == 101


def test_connect_2xx_ends_http1() -> None:
    k = Conn()
    k.c(b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n", 1)
    k.s(b"HTTP/1.1 200 Connection established\r\n\r\n", 2)
    k.c(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 3)
    k.s(b"\x16\x03\x03\x00\x5a", 4)
    (ex,) = k.done
    assert ex.method == "CONNECT" and ex.path == "api.example:443" and ex.status_code == 200
    assert k.counters["upgrades_skipped"] == 1 and k.counters["parse_errors"] == 0


def test_h2_prior_knowledge_preface_is_skipped() -> None:
    k = Conn()
    k.c(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00", 1)
    k.s(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", 2)
    k.c(get(), 3)
    k.h.closed(T0 + 4)
    assert k.done == [] and k.counters == Counter(h2_skipped=1)


def test_h2_preface_split_across_packets() -> None:
    k = Conn()
    for i, b in enumerate(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):
        k.c(bytes([b]), i)
    assert k.counters == Counter(h2_skipped=1)


def test_non_http_flow_is_dropped_silently() -> None:
    k = Conn()
    k.c(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\r\n\r\n" * 3, 1)
    k.s(b"\x16\x03\x03\x00\x5a\x02", 2)
    k.h.closed(T0 + 3)
    assert k.done == [] and k.counters == Counter()


def test_ids_use_flow_first_ts_and_source() -> None:
    k = Conn()
    k.c(get(), 1)
    k.s(ok(), 2)
    other = FlowInfo("other-src", CLIENT, SERVER, T0, client=CLIENT, server=SERVER)
    s2 = Sink()
    h2 = HttpConnection(other, s2, Counter(), Config(), Redactor(b"salt"))
    h2.data(True, get(), T0 + 1)
    h2.data(False, ok(), T0 + 2)
    assert k.done[0].exchange_id != s2.done[0].exchange_id
    assert s2.done[0].exchange_id == exchange_id("other-src", k.flow.flow_key_text, T0, 0)


def test_unknown_client_side_gives_null_endpoints_and_process() -> None:
    from heron_core.records import Process

    flow = FlowInfo("ebpf", CLIENT, SERVER, T0, process=Process(42, "node", "/usr/bin/node"))
    sink = Sink()
    h = HttpConnection(flow, sink, Counter(), Config(), Redactor(b"salt"))
    h.data(True, get(), T0 + 1)
    h.data(False, ok(), T0 + 2)
    (ex,) = sink.done
    assert ex.client_ip is None and ex.server_port is None and ex.process.pid == 42


def test_server_first_protocol_is_dropped_silently() -> None:
    k = Conn()
    k.s(b"SSH-2.0-OpenSSH_9.6\r\n", 1)
    k.c(b"SSH-2.0-client\r\n", 2)
    k.h.closed(T0 + 3)
    assert k.done == [] and k.counters == Counter()


def test_client_side_learned_after_flow_creation() -> None:
    flow = FlowInfo("src", CLIENT, SERVER, T0)
    sink = Sink()
    h = HttpConnection(flow, sink, Counter(), Config(), Redactor(b"salt"))
    flow.client, flow.server = CLIENT, SERVER  # the TCP stage syncs on the request line
    h.data(True, get(), T0 + 1)
    assert sink.started[0].client_ip == "10.0.0.1" and sink.started[0].server_port == 8080


def test_absolute_form_target_and_empty_query() -> None:
    k = Conn()
    k.c(b"POST http://proxy.example/v1/chat/completions? HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 1)
    (ex,) = k.sink.started
    assert (ex.path, ex.query) == ("http://proxy.example/v1/chat/completions", "")
