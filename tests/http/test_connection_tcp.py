"""HttpConnection behind the real TcpReassembler: segments in, exchanges out (§5, §6, §9)."""

from __future__ import annotations

from collections import Counter

from heron_core.config import Config
from heron_core.http.connection import HttpConnection
from heron_core.records import ACK, FIN, PSH, RST, SYN, Segment
from heron_core.redact import Redactor
from heron_core.tcp.reassembly import TcpReassembler

CLIENT = (bytes([192, 168, 1, 5]), 51000)
SERVER = (bytes([192, 168, 1, 9]), 11434)
T0 = 1_700_000_000_000_000
SEC = 1_000_000


class Sink:
    def __init__(self) -> None:
        self.started, self.done = [], []

    def request_complete(self, ex) -> None:
        self.started.append(ex)

    def exchange_done(self, ex) -> None:
        self.done.append(ex)


class Wire:
    """Builds both directions' segments with running sequence numbers."""

    def __init__(self) -> None:
        self.counters: Counter = Counter()
        self.sink = Sink()
        cfg = Config()
        redactor = Redactor(b"salt")
        self.tcp = TcpReassembler(
            lambda flow: HttpConnection(flow, self.sink, self.counters, cfg, redactor), self.counters, cfg)
        self.seq = {True: 1000, False: 5000}

    def send(self, from_client: bool, t: int, payload: bytes = b"", flags: int = ACK | PSH,
             seq: int | None = None) -> None:
        src, dst = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
        s = self.seq[from_client] if seq is None else seq
        ack = self.seq[not from_client]
        self.tcp.segment(Segment("src", T0 + t, src, dst, s, ack, flags, payload, len(payload)))
        if seq is None:
            self.seq[from_client] = s + len(payload) + (1 if flags & (SYN | FIN) else 0)

    def handshake(self) -> None:
        self.send(True, 0, flags=SYN)
        self.send(False, 1, flags=SYN | ACK)
        self.send(True, 2, flags=ACK)


REQ = b'POST /api/chat HTTP/1.1\r\nHost: localhost:11434\r\nContent-Length: 17\r\n\r\n{"model":"llama"}'
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"


def ndjson_chunk(line: bytes) -> bytes:
    return b"%x\r\n%s\n\r\n" % (len(line) + 1, line)


def test_handshake_stream_and_close() -> None:
    w = Wire()
    w.handshake()
    w.send(True, 10, REQ[:30])
    w.send(True, 11, REQ[30:])
    w.send(False, 20, HEAD)
    w.send(False, 30, ndjson_chunk(b'{"message":{"content":"Hi"},"done":false}'))
    w.send(False, 40, ndjson_chunk(b'{"done":true}') + b"0\r\n\r\n")
    w.send(True, 50, flags=FIN | ACK)
    w.send(False, 51, flags=FIN | ACK)
    (ex,) = w.sink.done
    assert (ex.client_ip, ex.client_port, ex.server_port) == ("192.168.1.5", 51000, 11434)
    assert ex.request_body == b'{"model":"llama"}'
    assert (ex.request_start, ex.request_end, ex.response_start) == (T0 + 10, T0 + 11, T0 + 20)
    assert [t - T0 for t, _ in ex.stream_units] == [30, 40]
    assert (ex.first_chunk, ex.response_end, ex.state) == (T0 + 30, T0 + 40, "complete")


def test_out_of_order_response_segments() -> None:
    w = Wire()
    w.handshake()
    w.send(True, 10, REQ)
    body = ndjson_chunk(b'{"done":true}') + b"0\r\n\r\n"
    base = w.seq[False]
    w.send(False, 20, body, seq=base + len(HEAD))  # arrives first
    w.send(False, 21, HEAD, seq=base)
    (ex,) = w.sink.done
    assert ex.response_start == T0 + 21 and ex.response_end == T0 + 21 and ex.damage == set()


def test_rst_mid_stream() -> None:
    w = Wire()
    w.handshake()
    w.send(True, 10, REQ)
    w.send(False, 20, HEAD + ndjson_chunk(b'{"message":{"content":"Hi"},"done":false}'))
    w.send(False, 30, flags=RST)
    (ex,) = w.sink.done
    assert (ex.state, ex.end_cause, ex.response_end, len(ex.stream_units)) == ("aborted", "reset", T0 + 30, 1)


def test_midstream_sync_and_drain() -> None:
    w = Wire()
    w.send(False, 5, b"tail of an earlier response")  # before sync: skipped by the TCP stage
    w.send(True, 10, REQ)
    w.tcp.end_source("src")
    (ex,) = w.sink.done
    assert (ex.path, ex.state, ex.end_cause) == ("/api/chat", "no_response", "no_response")
    assert ex.client_ip == "192.168.1.5"
