"""eBPF chunks → segments → the real decode pipeline, without a kernel: the events are built by hand the
way program.bpf.c emits them, so the flow mapping, the losses and the call fields can be checked exactly."""

from __future__ import annotations

import json
from collections import Counter
from zlib import crc32

from heron_core.capture.ebpf import frames as F
from heron_core.capture.ebpf.convert import ChunkConverter, endpoints
from heron_core.config import Config
from heron_core.engine import Engine
from heron_core.records import ACK, FIN, SYN, EndOfSource, Segment
from heron_core.store.db import open_store

PID, CONN = 3210, 0x55AA00112233
OFFSET_NS = 1_700_000_000 * 10**9  # monotonic 0 = this epoch instant
EXE = "/usr/bin/curl"


def _request(host: str = "api.example.test", content: str = "hello over TLS") -> bytes:
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}).encode()
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer sk-test-unit\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def _response(text: str = "hi there", rid: str = "chatcmpl-unit1") -> bytes:
    body = json.dumps({"id": rid, "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}}).encode()
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def _ev(kind, data=b"", offset=0, ts_ms=0, gen=0, pid=PID, conn=CONN, chunk=0, flags=0, aux=None, comm="curl"):
    return F.Event(kind, flags, chunk, pid, pid, conn, gen, ts_ms * 1_000_000, offset,
                   len(data) if aux is None else aux, comm, data)


def _exchange_events(req: bytes, resp: bytes, t0: int = 0, gen: int = 0, split: int = 100) -> list[F.Event]:
    """One request written at once, the response read in two SSL_read calls, then SSL_shutdown."""
    return [
        _ev(F.KIND_WRITE, req, 0, t0, gen),
        _ev(F.KIND_READ, resp[:split], 0, t0 + 40, gen),
        _ev(F.KIND_READ, resp[split:], split, t0 + 41, gen),
        _ev(F.KIND_CLOSE, b"", len(req), t0 + 42, gen, aux=len(resp)),
    ]


def _convert(events, counters=None, exe=EXE) -> tuple[list[Segment], ChunkConverter]:
    conv = ChunkConverter("ebpf", OFFSET_NS, counters if counters is not None else Counter())
    conv.identity(PID, "curl", exe)
    out: list = []
    for e in events:
        conv.event(e, out)
    return out, conv


def test_request_response_close_becomes_one_clean_flow():
    req, resp = _request(), _response()
    segs, conv = _convert(_exchange_events(req, resp))
    p, r = endpoints(PID, CONN, 0)
    assert [(s.src, s.dst, s.flags) for s in segs] == [
        (p, r, SYN), (r, p, SYN | ACK),  # the process wrote a request line at offset 0: it is the client
        (p, r, 0), (r, p, 0), (r, p, 0),
        (p, r, FIN | ACK), (r, p, FIN | ACK),
    ]
    assert [s.seq for s in segs] == [0xFFFFFFFF, 0xFFFFFFFF, 0, 0, 100, len(req), len(resp)]
    assert segs[2].payload == req and segs[3].payload + segs[4].payload == resp
    assert all(s.process == (PID, "curl", EXE) for s in segs)
    assert segs[0].ts_us == OFFSET_NS // 1000 and segs[3].ts_us == OFFSET_NS // 1000 + 40_000
    assert not conv.conns  # closed


def test_generations_and_processes_get_distinct_endpoints_that_route_both_directions_together():
    keys = [(PID, CONN, 0), (PID, CONN, 1), (PID + 1, CONN, 0), (PID, CONN + 8, 0)]
    eps = [endpoints(*k) for k in keys]
    assert len({e for pair in eps for e in pair}) == 2 * len(keys)
    assert eps[0] == endpoints(PID, CONN, 0)  # stable
    for p, r in eps:
        assert len(p[0]) == 16 and p[0][:8] == bytes.fromhex("0100000000000000")  # 100::/64, RFC 6666
        # the parallel reader's worker choice (parallel/reader.py) is symmetric: one worker per flow
        fwd = (crc32(p[0]) ^ crc32(r[0])) + p[1] + r[1]
        rev = (crc32(r[0]) ^ crc32(p[0])) + r[1] + p[1]
        assert fwd == rev
    spread = {((crc32(p[0]) ^ crc32(r[0])) + p[1] + r[1]) % 4 for p, r in
              (endpoints(PID, CONN + i * 64, 0) for i in range(64))}
    assert len(spread) == 4  # connections spread over the workers


def test_server_side_of_a_connection_is_skipped_and_counted():
    c = Counter()
    req, resp = _request(), _response()
    # the mock server's view: it *reads* the request and *writes* the response
    segs, _ = _convert([_ev(F.KIND_READ, req, 0), _ev(F.KIND_WRITE, resp, 0, 5),
                        _ev(F.KIND_CLOSE, b"", len(resp), 6, aux=len(req))], c)
    assert segs == [] and c["ebpf_server_flows_skipped"] == 1


def test_connection_seen_mid_stream_opens_without_syn():
    req, resp = _request(), _response()
    segs, _ = _convert([_ev(F.KIND_READ, resp[50:], 0), _ev(F.KIND_WRITE, req, 0, 10)])
    assert all(not s.flags & SYN for s in segs)
    # a request line later on a connection of unknown role still marks the process as the client
    segs, conv = _convert([_ev(F.KIND_READ, b"tail of an old body", 0), _ev(F.KIND_WRITE, req, 500, 1)])
    assert len(segs) == 2 and not any(s.flags & SYN for s in segs)
    assert next(iter(conv.conns.values())).role == "client"


def test_truncated_call_and_failed_copy_become_sized_holes():
    big = 8 * F.MAX_CHUNK + 12345
    last = F.Event(F.KIND_READ, F.FLAG_TRUNCATED, 7, PID, PID, CONN, 0, 0, 1000 + 7 * F.MAX_CHUNK, big, "curl",
                   b"x" * F.MAX_CHUNK)
    segs, _ = _convert([_ev(F.KIND_WRITE, _request(), 0), last])
    seg = segs[-1]
    assert len(seg.payload) == F.MAX_CHUNK and seg.wire_len == F.MAX_CHUNK + 12345  # the cut tail is a gap
    failed = F.Event(F.KIND_READ, F.FLAG_COPY_FAILED, 1, PID, PID, CONN, 0, 0, F.MAX_CHUNK, F.MAX_CHUNK + 7,
                     "curl", b"")
    segs, _ = _convert([_ev(F.KIND_WRITE, _request(), 0), failed])
    assert segs[-1].payload == b"" and segs[-1].wire_len == 7


def test_dead_processes_get_fins_after_a_grace_period():
    req = _request()
    _segs, conv = _convert([_ev(F.KIND_WRITE, req, 0), _ev(F.KIND_READ, b"HTTP/1.1 200 OK\r\n", 0, 1)])
    alive = {PID: True}
    assert conv.reap(5, lambda pid: alive.get(pid, False)) == []
    alive[PID] = False
    assert conv.reap(6, lambda pid: alive.get(pid, False)) == []  # first sight of the exit: wait
    fins = conv.reap(7, lambda pid: alive.get(pid, False))
    p, r = endpoints(PID, CONN, 0)
    assert [(s.src, s.seq, s.flags) for s in fins] == [(p, len(req), FIN | ACK), (r, 17, FIN | ACK)]
    assert not conv.conns and PID not in conv.procs


def _run_pipeline(segs: list[Segment]):
    store = open_store(None)
    engine = Engine(store, Config(), salt=b"ebpf-unit")
    for s in segs:
        engine.worker.segment(s)
    engine.worker.handle(EndOfSource("ebpf"))
    engine.writer.flush()
    return store, engine


def test_chunks_through_the_pipeline_give_a_call_with_its_process():
    req, resp = _request(), _response()
    events = _exchange_events(req, resp)
    events += _exchange_events(_request(content="second"), _response("again", "chatcmpl-unit2"), 100, gen=1)
    segs, _ = _convert(events)
    store, engine = _run_pipeline(segs)
    try:
        rows = store.conn.execute(
            "SELECT process_pid, process_comm, process_exe, client_ip, client_port, server_ip, server, host, "
            "response_id, input_tokens, output_tokens, finish, damaged, source_id FROM calls ORDER BY request_start"
        ).fetchall()
        assert rows == [
            (PID, "curl", EXE, None, None, None, "api.example.test", "api.example.test", "chatcmpl-unit1", 11, 3,
             "stop", False, "ebpf"),
            (PID, "curl", EXE, None, None, None, "api.example.test", "api.example.test", "chatcmpl-unit2", 11, 3,
             "stop", False, "ebpf"),
        ]
        c = engine.counters
        assert c["flows_created"] == 2 and c["flows_closed"] == 2 and c["midstream_syncs"] == 0
        from heron_core.export.calls import SELECT_COLUMNS, call_record

        cols = ", ".join(f'"{x}"' for x in SELECT_COLUMNS)
        rec = call_record(store.conn.execute(f"SELECT {cols} FROM calls LIMIT 1").fetchone())
        assert rec["connection"] is None and rec["process"] == {"pid": PID, "comm": "curl", "exe": EXE}
    finally:
        store.close()


def test_a_lost_chunk_damages_only_its_exchange():
    req, resp = _request(), _response()
    events = _exchange_events(req, resp)
    del events[2]  # the ring buffer was full: the second part of the response never arrived
    events += _exchange_events(_request(content="next"), _response("fine", "chatcmpl-unit2"), 100, gen=1)
    segs, _ = _convert(events)
    store, engine = _run_pipeline(segs)
    try:
        rows = store.conn.execute(
            "SELECT damaged, damage, ok, response_id FROM calls ORDER BY request_start").fetchall()
        assert rows[0][0] and rows[0][1] == ["gap"] and not rows[0][2]
        assert rows[1] == (False, [], True, "chatcmpl-unit2")
        assert engine.counters["tcp_gap_bytes"] == len(resp) - 100
    finally:
        store.close()


def test_stream_closed_by_the_client_after_its_completion_marker_is_complete():
    """SDKs stop reading an SSE stream at ``[DONE]`` and close: eBPF never sees the chunked terminator."""
    events_body = b"".join(
        f"data: {json.dumps(d)}\n\n".encode() for d in (
            {"id": "chatcmpl-s1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}]},
            {"id": "chatcmpl-s1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
             "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]})) + b"data: [DONE]\n\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked = f"{len(events_body):x}\r\n".encode() + events_body + b"\r\n"  # the "0\r\n\r\n" is never read
    req = _request()
    segs, _ = _convert([_ev(F.KIND_WRITE, req, 0), _ev(F.KIND_READ, head + chunked, 0, 30),
                        _ev(F.KIND_CLOSE, b"", len(req), 31, aux=len(head + chunked))])
    store, _engine = _run_pipeline(segs)
    try:
        (finish, ok, text, error), = store.conn.execute(
            "SELECT finish, ok, assistant_text, error FROM calls").fetchall()
        assert (finish, ok, text, error) == ("stop", True, "Hello", None)
    finally:
        store.close()


def test_source_counts_bad_frames_and_keeps_going():
    """What the agent sends is still input: a frame that does not parse is a counted read error."""
    from heron_core.capture.ebpf.source import EbpfSource
    from heron_core.capture.sources import EventClock

    src = EbpfSource.__new__(EbpfSource)  # no agent: only the frame handling is under test
    src.source_id, src.counters = "ebpf", Counter()
    src.conv = ChunkConverter("ebpf", OFFSET_NS, src.counters)
    src.clock = EventClock("ebpf", Config())
    good = F.encode_event(_ev(F.KIND_WRITE, _request(), 0))[5:]
    frames = [(F.PROC, b"not json"), (F.STATS, b'{"events_lost": "many"}'), (F.PROC, b"[1, 2]"),
              (F.EVENT, good[:30]), (F.TARGETS, b'{"probes": 10, "attached": [{"path": "/x/libssl.so.3"}]}'),
              (F.PROC, json.dumps({"pid": PID, "comm": "curl", "exe": EXE}).encode()), (F.EVENT, good),
              (F.STATS, b'{"events_lost": 2, "chunks_dropped": 1, "probes": 10}')]
    out: list = []
    src._frames(frames, out)
    c = src.counters
    assert c["read_errors"] == 4
    assert (c["ebpf_events"], c["ebpf_events_lost"], c["ebpf_chunks_dropped"], c["ebpf_uprobes_attached"]) == (
        1, 2, 1, 10)
    segs = [r for r in out if type(r) is Segment]
    assert len(segs) == 3 and segs[-1].process == (PID, "curl", EXE)  # SYN, SYN+ACK, the request


def test_process_is_shown_and_filterable_in_the_api_and_the_tui():
    """Two processes' calls: the API filters by process (parameters and the display filter) and shows
    it in the call detail; the TUI's HTTP tab names the process instead of a 5-tuple."""
    from fastapi.testclient import TestClient

    from heron_tui.api import create_app
    from heron_tui.screens.render import http_text

    other = 7777
    conv = ChunkConverter("ebpf", OFFSET_NS, Counter())
    conv.identity(PID, "curl", EXE)
    conv.identity(other, "node", "/usr/bin/node")
    segs: list = []
    for e in _exchange_events(_request(), _response()):
        conv.event(e, segs)
    for e in _exchange_events(_request(content="from node"), _response("yo", "chatcmpl-node"), 50):
        conv.event(e._replace(pid=other, tid=other, comm="node"), segs)
    store, _engine = _run_pipeline(segs)
    try:
        api = TestClient(create_app(store))

        def ids(**params) -> list[str]:
            r = api.get("/api/calls", params=params)
            assert r.status_code == 200, r.text
            return sorted(c["response_id"] for c in r.json()["items"])

        assert ids() == ["chatcmpl-node", "chatcmpl-unit1"]
        assert ids(process_comm="curl") == ids(filter="comm == curl") == ["chatcmpl-unit1"]
        assert ids(process_pid=other) == ids(filter=f"pid == {other}") == ["chatcmpl-node"]
        assert ids(filter="exe ~ node") == ["chatcmpl-node"]
        assert ids(filter="process == nosuch") == []
        item = api.get("/api/calls", params={"process_pid": PID}).json()["items"][0]
        assert item["process"] == {"pid": PID, "comm": "curl", "exe": EXE} and item["connection"] is None
        detail = api.get(f"/api/calls/{item['call_id']}").json()
        assert detail["exchange"]["process_pid"] == PID
        text = http_text(detail)
        assert f"client curl[{PID}] → server api.example.test" in text
        assert f"process pid {PID}, curl, {EXE} (eBPF)" in text
        # the TUI's calls list (and the plain table) names the process in its source column
        from heron_core.query.lists import CALLS, ListQuery

        src = CALLS.columns.index(CALLS.column("source")) + 2  # rows: id, style, then the columns
        rows = ListQuery(CALLS, None).fetch(store.conn.cursor(), 0, 10)
        assert sorted(r[src] for r in rows) == [f"curl/{PID}", f"node/{other}"]
    finally:
        store.close()
