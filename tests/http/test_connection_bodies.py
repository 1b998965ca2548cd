"""HttpConnection: content decoding, streamed bodies, body limits and redaction (§6.4, §6.5, §8, §9)."""

from __future__ import annotations

import gzip
from collections import Counter

import brotli
import orjson
import zstandard

from heron_core.config import Config
from heron_core.http.connection import HttpConnection
from heron_core.records import BadUnit, FlowInfo, SseEvent
from heron_core.redact import Redactor

CLIENT = (bytes([10, 0, 0, 1]), 40000)
SERVER = (bytes([10, 0, 0, 2]), 8080)
T0 = 1_700_000_000_000_000
SECRET = "sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAA"


class Sink:
    def __init__(self) -> None:
        self.started, self.done = [], []

    def request_complete(self, ex) -> None:
        self.started.append(ex)

    def exchange_done(self, ex) -> None:
        self.done.append(ex)


class Conn:
    def __init__(self, cfg: Config | None = None) -> None:
        self.flow = FlowInfo("src", CLIENT, SERVER, T0, client=CLIENT, server=SERVER)
        self.sink = Sink()
        self.counters = Counter()
        self.redactor = Redactor(b"salt")
        self.h = HttpConnection(self.flow, self.sink, self.counters, cfg or Config(), self.redactor)

    def c(self, data: bytes, t: int) -> None:
        self.h.data(True, data, T0 + t)

    def s(self, data: bytes, t: int) -> None:
        self.h.data(False, data, T0 + t)

    @property
    def done(self):
        return self.sink.done


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    head = b"POST %s HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n" % (path.encode(), len(body))
    return head + extra + b"\r\n" + body


def resp(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


JSON = b'{"id":"msg_1","content":[{"type":"text","text":"' + b"hello " * 200 + b'"}]}'


# --- content decoding --------------------------------------------------------------------------------


def _roundtrip(encoding: bytes, compressed: bytes) -> None:
    k = Conn()
    k.c(post("/v1/messages", b"{}"), 1)
    wire = resp(compressed, b"Content-Encoding: " + encoding + b"\r\n")
    k.s(wire[:60], 2)
    k.s(wire[60:90], 3)
    k.s(wire[90:], 4)
    (ex,) = k.done
    assert ex.response_body == JSON and ex.response_body_bytes == len(JSON)
    assert ex.response_wire_bytes == len(wire)
    assert ex.header("content-encoding", response=True) == encoding.decode()
    assert ex.damage == set() and ex.response_end == T0 + 4


def test_gzip_response() -> None:
    _roundtrip(b"gzip", gzip.compress(JSON))


def test_br_response() -> None:
    _roundtrip(b"br", brotli.compress(JSON))


def test_zstd_response() -> None:
    _roundtrip(b"zstd", zstandard.ZstdCompressor().compress(JSON))


def test_gzip_and_zstd_request_bodies() -> None:
    k = Conn()
    k.c(post("/v1/messages", gzip.compress(JSON), b"Content-Encoding: gzip\r\n"), 1)
    k.c(post("/v1/responses", zstandard.ZstdCompressor().compress(JSON), b"Content-Encoding: zstd\r\n"), 2)
    a, b = k.sink.started
    assert a.request_body == JSON == b.request_body
    assert a.request_body_bytes == len(JSON) and a.request_wire_bytes > len(gzip.compress(JSON))


def test_corrupt_gzip_is_decode_error() -> None:
    k = Conn()
    k.c(post("/x", b""), 1)
    bad = gzip.compress(JSON)[:40] + b"\xff" * 40
    k.s(resp(bad, b"Content-Encoding: gzip\r\n"), 2)
    (ex,) = k.done
    assert "decode_error" in ex.damage and ex.state == "complete"
    assert k.counters["decode_errors"] == 1 and k.counters["exchanges_damaged"] == 1


def test_unknown_encoding_kept_raw() -> None:
    k = Conn()
    k.c(post("/x", b""), 1)
    k.s(resp(b"\x01\x02raw", b"Content-Encoding: compress\r\n"), 2)
    (ex,) = k.done
    assert ex.response_body == b"\x01\x02raw" and ex.damage == {"undecodable_encoding"}


# --- streams -----------------------------------------------------------------------------------------

SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")


def test_sse_over_chunked_with_crlf_split_and_timestamps() -> None:
    k = Conn()
    k.c(post("/v1/messages", b'{"stream":true}'), 1)
    k.s(SSE_HEAD, 10)
    e1 = b'event: message_start\r\ndata: {"type":"message_start"}\r'
    k.s(chunk(e1), 20)
    assert k.sink.started[0].stream_units == []  # the data line ended, the empty line has not come
    k.s(chunk(b"\n\r\n: keep-alive\r\n\r\n"), 30)  # completes event 1; a comment dispatches nothing
    e2 = b'event: content_block_delta\r\ndata: {"delta":"hi"}\r\n\r\n'
    k.s(chunk(e2[:15]), 40)
    k.s(chunk(e2[15:]) + b"0\r\n", 50)
    assert not k.done
    k.s(b"\r\n", 60)
    (ex,) = k.done
    assert ex.stream_format == "sse" and ex.is_stream
    assert ex.stream_units == [
        (T0 + 30, SseEvent("message_start", '{"type":"message_start"}', None)),
        (T0 + 50, SseEvent("content_block_delta", '{"delta":"hi"}', None)),
    ]
    assert (ex.response_start, ex.first_chunk, ex.response_end) == (T0 + 10, T0 + 30, T0 + 60)
    assert ex.response_body == e1 + b"\n\r\n: keep-alive\r\n\r\n" + e2
    assert k.counters["sse_events"] == 2


def test_sse_unterminated_last_event_dispatched_at_body_end() -> None:
    k = Conn()
    k.c(post("/v1/chat/completions", b"{}"), 1)
    body = b"data: one\n\ndata: two"
    k.s(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(body), 2)
    k.s(body, 3)
    (ex,) = k.done
    assert [u[1].data for u in ex.stream_units] == ["one", "two"]


def test_gzip_compressed_sse_is_split_as_it_flows() -> None:
    k = Conn()
    k.c(post("/v1/responses", b"{}"), 1)
    comp = zlib_stream = gzip.compress(b"data: a\n\n" + b"data: b\n\n")
    k.s(SSE_HEAD.replace(b"\r\n\r\n", b"\r\nContent-Encoding: gzip\r\n\r\n"), 2)
    k.s(chunk(zlib_stream) + b"0\r\n\r\n", 3)
    (ex,) = k.done
    assert [u[1].data for u in ex.stream_units] == ["a", "b"] and comp
    assert ex.response_body == b"data: a\n\ndata: b\n\n"


def test_ndjson_stream() -> None:
    k = Conn()
    k.c(post("/api/chat", b'{"model":"llama"}'), 1)
    k.s(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n", 2)
    k.s(chunk(b'{"message":{"content":"He"},"done":false}\n{"mess'), 3)
    k.s(chunk(b'age":{"content":"y"},"done":false}\nnot json\n'), 4)
    k.s(chunk(b'{"done":true}\n') + b"0\r\n\r\n", 5)
    (ex,) = k.done
    assert ex.stream_format == "ndjson"
    assert [u[0] - T0 for u in ex.stream_units] == [3, 4, 4, 5]
    assert ex.stream_units[0][1] == {"message": {"content": "He"}, "done": False}
    assert ex.stream_units[2][1] == BadUnit("not json")
    assert ex.first_chunk == T0 + 3 and ex.response_end == T0 + 5
    assert k.counters["ndjson_lines"] == 4 and k.counters["ndjson_bad_lines"] == 1


def test_gemini_json_array_stream() -> None:
    k = Conn()
    k.c(post("/v1beta/models/gemini-2.5-pro:streamGenerateContent", b'{"contents":[]}'), 1)
    k.s(b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n", 2)
    k.s(chunk(b'[{"candidates": [{"content": {"parts": [{"text": "A"}]}}]}'), 3)
    k.s(chunk(b',\r\n{"candidates": [{"content": {"parts": [{"text": "B]}"}]}}]}\r\n]'), 4)
    k.s(b"0\r\n\r\n", 5)
    (ex,) = k.done
    assert ex.stream_format == "json-array"
    assert [(t - T0, u["candidates"][0]["content"]["parts"][0]["text"]) for t, u in ex.stream_units] == [
        (3, "A"), (4, "B]}")]
    assert ex.first_chunk == T0 + 3


def test_gemini_alt_sse_is_sse() -> None:
    k = Conn()
    k.c(post("/v1beta/models/g:streamGenerateContent?alt=sse", b"{}"), 1)
    body = b'data: {"candidates":[]}\r\n\r\n'
    k.s(resp(body, b"Content-Type: text/event-stream\r\n"), 2)
    (ex,) = k.done
    assert ex.stream_format == "sse" and ex.query == "alt=sse"
    assert ex.stream_units == [(T0 + 2, SseEvent(None, '{"candidates":[]}', None))]


def test_non_stream_json_is_whole_body() -> None:
    k = Conn()
    k.c(post("/v1/messages", b"{}"), 1)
    k.s(resp(JSON, b"Content-Type: application/json\r\n"), 2)
    (ex,) = k.done
    assert ex.stream_format is None and ex.stream_units == [] and ex.first_chunk is None
    assert orjson.loads(ex.response_body)["id"] == "msg_1"


# --- limits ------------------------------------------------------------------------------------------


def test_oversize_body_keeps_prefix_and_framing_continues() -> None:
    k = Conn(Config(http_max_body_bytes=10))
    k.c(post("/a", b"0123456789ABCDEF") + post("/b", b"ok"), 1)
    k.s(resp(b"x" * 25) + resp(b"tiny"), 2)
    a, b = k.done
    assert a.request_body == b"0123456789" and a.request_body_bytes == 16
    assert a.response_body == b"x" * 10 and a.response_body_bytes == 25
    assert a.damage == {"body_too_large"} and a.state == "complete"
    assert b.response_body == b"tiny" and b.damage == set()
    assert k.counters["bodies_over_limit"] == 2 and k.counters["exchanges_damaged"] == 1


def test_oversize_compressed_body() -> None:
    k = Conn(Config(http_max_body_bytes=100))
    k.c(post("/a", b"") + post("/b", b""), 1)
    k.s(resp(gzip.compress(JSON), b"Content-Encoding: gzip\r\n") + resp(b"next"), 2)
    a, b = k.done
    assert a.response_body == JSON[:100] and "body_too_large" in a.damage
    assert b.response_body == b"next"


def test_oversize_stream_keeps_units_of_kept_part() -> None:
    k = Conn(Config(http_max_body_bytes=20))
    k.c(post("/v1/messages", b""), 1)
    body = b"data: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n"
    k.s(resp(body, b"Content-Type: text/event-stream\r\n"), 2)
    (ex,) = k.done
    assert [u[1].data for u in ex.stream_units] == ["1", "2"]
    assert ex.response_body == body[:20] and ex.response_body_bytes == len(body)
    assert "body_too_large" in ex.damage


# --- redaction ---------------------------------------------------------------------------------------


def test_redaction_of_heads_query_bodies_and_stream_units() -> None:
    k = Conn()
    body = ('{"model":"m","note":"%s"}' % SECRET).encode()
    k.c(post("/v1/messages?key=AIzaSyA-secretsecretsecret&beta=true", body,
             b"Authorization: Bearer " + SECRET.encode() + b"\r\nx-api-key: " + SECRET.encode() + b"\r\n"), 1)
    sse = b"event: delta\ndata: {\"text\":\"" + SECRET.encode() + b"\"}\n\n"
    k.s(resp(sse, b"Content-Type: text/event-stream\r\nSet-Cookie: session=abc\r\n"), 2)
    (ex,) = k.done
    tok = k.redactor.token(SECRET)
    assert ex.header("authorization") == "Bearer " + tok
    assert ex.header("x-api-key") == tok
    assert ex.header("set-cookie", response=True) == k.redactor.token("session=abc")
    assert ex.query.startswith("key=[REDACTED:") and ex.query.endswith("&beta=true")
    assert SECRET.encode() not in ex.request_body and tok.encode() in ex.request_body
    assert orjson.loads(ex.request_body)["note"] == tok
    assert SECRET.encode() not in ex.response_body
    assert ex.stream_units[0][1].data == '{"text":"%s"}' % tok
    assert SECRET not in repr(ex)


def test_redaction_of_compressed_request_body() -> None:
    k = Conn()
    body = ('{"key":"%s"}' % SECRET).encode()
    k.c(post("/v1/messages", gzip.compress(body), b"Content-Encoding: gzip\r\n"), 1)
    (ex,) = k.sink.started
    assert ex.request_body == ('{"key":"%s"}' % k.redactor.token(SECRET)).encode()


def test_redaction_disabled_keeps_secrets() -> None:
    k = Conn()
    k.redactor.enabled = False
    k.c(post("/v1/messages", SECRET.encode(), b"x-api-key: " + SECRET.encode() + b"\r\n"), 1)
    (ex,) = k.sink.started
    assert ex.request_body == SECRET.encode() and ex.header("x-api-key") == SECRET
