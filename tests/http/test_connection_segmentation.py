"""HttpConnection: packet boundaries must not matter (§6, §8, §9).

Any segmentation of either direction gives identical exchanges (timestamps aside), and with one byte per
packet every timestamp lands on the exact byte the spec names.
"""

from __future__ import annotations

import gzip
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from heron_core.config import Config
from heron_core.http.connection import HttpConnection
from heron_core.records import FlowInfo, SseEvent
from heron_core.redact import Redactor

CLIENT = (bytes([10, 0, 0, 1]), 40000)
SERVER = (bytes([10, 0, 0, 2]), 8080)
T0 = 1_700_000_000_000_000


class Sink:
    def __init__(self) -> None:
        self.started, self.done = [], []

    def request_complete(self, ex) -> None:
        self.started.append(ex)

    def exchange_done(self, ex) -> None:
        self.done.append(ex)


def new_conn() -> tuple[HttpConnection, Sink, Counter]:
    flow = FlowInfo("src", CLIENT, SERVER, T0, client=CLIENT, server=SERVER)
    sink, counters = Sink(), Counter()
    return HttpConnection(flow, sink, counters, Config(), Redactor(b"salt")), sink, counters


def chunked(pieces: list[bytes], ext: bool, trailer: bool) -> bytes:
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(p), b";e=1" if ext else b"", p) for p in pieces if p)
    return out + b"0\r\n" + (b"X-T: 1\r\n" if trailer else b"") + b"\r\n"


# --- conversation strategy ---------------------------------------------------------------------------

_payload = st.binary(min_size=0, max_size=40)
_text = st.text(alphabet="ab€😀 {}\"", min_size=0, max_size=8)


@st.composite
def request(draw, i: int) -> tuple[bytes, str, bool]:
    """(bytes, method, expects 100-continue)."""
    kind = draw(st.sampled_from(["get", "post", "chunked", "gzip", "expect", "head"]))
    path = f"/p{i}?q={i}"
    if kind in ("get", "head"):
        m = "GET" if kind == "get" else "HEAD"
        return f"{m} {path} HTTP/1.1\r\nHost: h\r\n\r\n".encode(), m, False
    body = draw(_payload)
    if kind == "chunked":
        pieces = draw(st.lists(_payload, max_size=3))
        return (f"POST {path} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                + chunked(pieces, draw(st.booleans()), draw(st.booleans())), "POST", False)
    extra = ""
    if kind == "gzip":
        body = gzip.compress(body)
        extra = "Content-Encoding: gzip\r\n"
    if kind == "expect":
        extra = "Expect: 100-continue\r\n"
    head = f"POST {path} HTTP/1.1\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
    return head + body, "POST", kind == "expect"


def sse_body(draw) -> bytes:
    events = draw(st.lists(st.tuples(st.sampled_from(["", "event: delta\n"]), _text,
                                     st.sampled_from(["\n", "\r\n"])), min_size=1, max_size=4))
    return "".join(f"{ev}data: {d}{nl}{nl}" for ev, d, nl in events).encode()


@st.composite
def response(draw, method: str, expect: bool, last: bool) -> bytes:
    kind = draw(st.sampled_from(["cl", "chunked", "sse", "ndjson", "gzip", "204", "hints"]
                                + (["close"] if last and method != "HEAD" else [])))
    pre = b"HTTP/1.1 100 Continue\r\n\r\n" if expect else b""
    if kind == "204":
        return pre + b"HTTP/1.1 204 No Content\r\n\r\n"
    if kind == "hints":
        pre += b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    if kind in ("sse", "ndjson"):
        if kind == "sse":
            body, ctype = sse_body(draw), b"text/event-stream"
        else:
            lines = draw(st.lists(st.integers(0, 99), min_size=1, max_size=4))
            body, ctype = b"".join(b'{"n":%d}\n' % n for n in lines), b"application/x-ndjson"
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
        head = b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        return pre + head + (b"" if method == "HEAD" else chunked(pieces, draw(st.booleans()), False))
    body = draw(_payload)
    if kind == "chunked":
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        return pre + head + (b"" if method == "HEAD" else chunked([body[:5], body[5:]], True, True))
    if kind == "close":
        return pre + b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body
    extra = b""
    if kind == "gzip":
        body = gzip.compress(body)
        extra = b"Content-Encoding: gzip\r\n"
    head = b"HTTP/1.1 200 OK\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body)
    return pre + head + (b"" if method == "HEAD" else body)


@st.composite
def conversation(draw) -> list[tuple[bytes, bytes]]:
    n = draw(st.integers(1, 4))
    out = []
    for i in range(n):
        req, method, expect = draw(request(i))
        out.append((req, draw(response(method, expect, i == n - 1))))
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted({c % (len(data) + 1) for c in cuts})
    return [p for p in (data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])) if p]


def summary(ex) -> tuple:
    """Everything but timestamps."""
    return (
        ex.exchange_id, ex.ordinal, ex.method, ex.path, ex.query, ex.http_version, ex.request_headers,
        ex.request_body, ex.request_body_bytes, ex.request_wire_bytes, ex.status_code, ex.reason,
        ex.response_headers, ex.response_body, ex.response_body_bytes, ex.response_wire_bytes,
        ex.stream_format, [u for _, u in ex.stream_units], ex.state, ex.end_cause, sorted(ex.damage),
    )


def run(conv: list[tuple[bytes, bytes]], client_cuts: list[int], server_cuts: list[int],
        interleave: bool) -> tuple[list[tuple], Counter]:
    h, sink, counters = new_conn()
    t = 0
    if interleave:  # request i, then response i: cuts within each message
        for req, resp in conv:
            for seg in split(req, client_cuts):
                t += 1
                h.data(True, seg, T0 + t)
            for seg in split(resp, server_cuts):
                t += 1
                h.data(False, seg, T0 + t)
    else:  # all requests pipelined, then all responses: cuts span messages
        for seg in split(b"".join(r for r, _ in conv), client_cuts):
            t += 1
            h.data(True, seg, T0 + t)
        for seg in split(b"".join(r for _, r in conv), server_cuts):
            t += 1
            h.data(False, seg, T0 + t)
    h.fin(True, T0 + t + 1)
    h.fin(False, T0 + t + 2)
    h.closed(T0 + t + 3)
    return [summary(e) for e in sink.done], counters


_cuts = st.lists(st.integers(0, 10_000), max_size=12)


@settings(max_examples=300, deadline=None)
@given(conv=conversation(), client_cuts=_cuts, server_cuts=_cuts, interleave=st.booleans())
def test_any_segmentation_gives_identical_exchanges(conv, client_cuts, server_cuts, interleave) -> None:
    ref, ref_counters = run(conv, [], [], interleave)
    assert len(ref) == len(conv)
    assert all(s[18] == "complete" and s[20] == [] for s in ref)
    got, counters = run(conv, client_cuts, server_cuts, interleave)
    assert got == ref
    assert counters == ref_counters


@settings(max_examples=60, deadline=None)
@given(conv=conversation(), interleave=st.booleans())
def test_one_byte_per_packet(conv, interleave) -> None:
    ref, _ = run(conv, [], [], interleave)
    every = list(range(1, 20_000))
    got, _ = run(conv, every, every, interleave)
    assert got == ref


# --- exact timestamps at byte granularity ------------------------------------------------------------


def test_every_byte_its_own_packet_timestamps() -> None:
    """With packet k carrying byte k of the (client + server) transcript, each timestamp is the index of
    the byte the spec names (§9)."""
    req = b"POST /v1/messages HTTP/1.1\r\nContent-Length: 4\r\n\r\n" + b'{"a"'
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    # LF endings: with CRLF the CR already ends the line (§8.1), so the unit would complete one byte earlier
    ev1, ev2 = b"data: one\n\n", b"event: e\ndata: two\n\n"
    body = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(ev1), ev1, len(ev2), ev2)
    resp = interim + head + body
    h, sink, _ = new_conn()
    for i, b in enumerate(req):
        h.data(True, bytes([b]), T0 + i)
    base = len(req)
    for i, b in enumerate(resp):
        h.data(False, bytes([b]), T0 + base + i)
    (ex,) = sink.done
    ev1_end = base + len(interim) + len(head) + len(b"%x\r\n" % len(ev1)) + len(ev1) - 1
    ev2_end = ev1_end + len(b"\r\n%x\r\n" % len(ev2)) + len(ev2)
    assert ex.request_start == T0
    assert ex.request_end == T0 + len(req) - 1
    assert ex.response_start == T0 + base + len(interim) + len(head) - 1
    assert ex.stream_units == [(T0 + ev1_end, SseEvent(None, "one", None)),
                               (T0 + ev2_end, SseEvent("e", "two", None))]
    assert ex.first_chunk == T0 + ev1_end
    assert ex.response_end == T0 + base + len(resp) - 1


# --- robustness: damage anywhere ---------------------------------------------------------------------


@st.composite
def damaged_run(draw) -> list[tuple]:
    """A conversation's bytes fed with gaps (bytes dropped and reported), garbage and FINs sprinkled in."""
    conv = draw(conversation())
    ops: list[tuple] = []
    for direction, stream in ((True, b"".join(r for r, _ in conv)), (False, b"".join(r for _, r in conv))):
        pieces = split(stream, draw(_cuts))
        for piece in pieces:
            action = draw(st.sampled_from(["data"] * 6 + ["gap", "garbage"]))
            if action == "gap":
                ops.append(("gap", direction, len(piece)))
            elif action == "garbage":
                ops.append(("data", direction, draw(st.binary(min_size=1, max_size=30))))
            else:
                ops.append(("data", direction, piece))
    ops = draw(st.permutations(ops)) if draw(st.booleans()) else ops
    ops.append(draw(st.sampled_from([("reset",), ("closed",), ("expire",), ("fin-closed",)])))
    return ops


@settings(max_examples=300, deadline=None)
@given(ops=damaged_run())
def test_every_request_finishes_exactly_once_whatever_happens(ops) -> None:
    h, sink, counters = new_conn()
    for t, op in enumerate(ops, start=1):
        ts = T0 + t
        if op[0] == "data":
            h.data(op[1], op[2], ts)
        elif op[0] == "gap":
            h.gap(op[1], op[2], ts)
        elif op[0] == "reset":
            h.reset(ts)
        elif op[0] == "expire":
            h.expire(ts, "expired")
        elif op[0] == "closed":
            h.closed(ts)
        else:
            h.fin(False, ts)
            h.fin(True, ts)
            h.closed(ts)
    assert not h.awaiting_response()
    ids = [e.exchange_id for e in sink.done]
    assert len(ids) == len(set(ids)) == counters["requests"]
    assert sorted(e.ordinal for e in sink.done) == list(range(counters["requests"]))
    assert all(e.response_end is not None and e.state in ("complete", "aborted", "no_response")
               for e in sink.done)
    started = {e.exchange_id for e in sink.started}
    assert started <= set(ids)
    assert counters["exchanges_complete"] + counters["exchanges_aborted"] + counters[
        "exchanges_no_response"] == len(ids)
    assert counters["exchanges_damaged"] == sum(1 for e in sink.done if e.damage)
