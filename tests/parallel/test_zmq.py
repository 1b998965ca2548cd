"""ZMQ probe batches (capture-and-http.md §2.4): the format, and ``heron run --zmq`` end to end.

Batches made from a capture in the probe format (plus hand-made malformed ones) are pushed to a
running ``heron run --zmq tcp://127.0.0.1:PORT``: every packet is accounted for, malformed batches are
counted and dropped whole, and the calls are those of ingesting the same capture directly.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest

from heron_core.capture.pcapfile import read_frames
from heron_core.capture.sources import SourceSpec
from heron_core.capture.zmq_source import HEADER, encode_batch, heartbeat_record, parse_batch
from heron_core.config import Config
from heron_core.records import EndOfSource, Heartbeat, Segment

from .helpers import CAPTURES, ROOT, free_port

zmq = pytest.importorskip("zmq", reason="pyzmq (the 'live' extra) is not installed")

PROBE = uuid.UUID("0b7c6a52-9d1e-4f3a-8a6b-2c4d5e6f7a8b")
CAPTURE = next(p for p in CAPTURES if p.endswith("sdk_openai.pcap"))


def _frames(path: str) -> list[tuple[int, bytes, int]]:
    return [(ts, data, orig) for ts, _lt, data, orig in read_frames(path, Counter())]


def _batches(frames, size=40, probe=PROBE):
    out = []
    for i in range(0, len(frames), size):
        recs = list(frames[i:i + size])
        if i % (3 * size) == 0:  # a heartbeat frame now and then, like an idle probe sends
            recs.append(heartbeat_record(recs[-1][0]))
        out.append(encode_batch(probe.bytes, recs))
    return out


def _malformed(frames) -> list[bytes]:
    good = encode_batch(PROBE.bytes, frames[:3])
    short_count = bytearray(good)
    short_count[2:4] = (4).to_bytes(2, "big")  # claims 4 records, holds 3
    long_count = bytearray(good)
    long_count[2:4] = (2).to_bytes(2, "big")  # claims 2, holds 3: trailing bytes
    return [good[:-1], good + b"\x00", good[:20], bytes(short_count), bytes(long_count)]


def test_format_round_trip_and_length_check():
    frames = _frames(CAPTURE)[:5]
    msg = encode_batch(PROBE.bytes, frames + [heartbeat_record(frames[-1][0] + 5)], version=7)
    assert HEADER.unpack_from(msg)[:2] == (7, 6)
    sid, version, recs = parse_batch(msg)
    assert sid == str(PROBE) and version == 7 and len(recs) == 6
    assert [msg[s:e] for _ts, s, e in recs[:5]] == [f[1] for f in frames]
    assert [ts for ts, _s, _e in recs[:5]] == [f[0] for f in frames]
    for bad in _malformed(_frames(CAPTURE)):
        assert parse_batch(bad) is None
    assert parse_batch(encode_batch(PROBE.bytes, [])) == (str(PROBE), 1, [])


def test_source_records_per_probe_with_heartbeats():
    """In-process: two probes are two sources; heartbeat frames become heartbeats; close drains both."""
    from heron_core.capture.zmq_source import ZmqSource

    port = free_port()
    counters: Counter = Counter()
    src = ZmqSource(SourceSpec("zmq", endpoint=f"tcp://127.0.0.1:{port}"), counters, Config())
    other = uuid.uuid4()
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    frames = _frames(CAPTURE)[:30]
    push.send(encode_batch(PROBE.bytes, frames[:20]))
    push.send(encode_batch(other.bytes, frames[20:] + [heartbeat_record(frames[-1][0] + 3_000_000)]))
    push.send(b"garbage")
    recs = []
    deadline = time.time() + 5
    while counters["zmq_batches"] + counters["zmq_batches_malformed"] < 3 and time.time() < deadline:
        recs += src.poll(0.1)
    recs += src.close()
    push.close(0)
    ctx.term()
    segs = [r for r in recs if type(r) is Segment]
    assert {s.source_id for s in segs} == {str(PROBE), str(other)}
    assert counters["packets_read"] == 30 and counters["zmq_batches"] == 2 and counters["zmq_batches_malformed"] == 1
    assert Heartbeat(str(other), frames[-1][0] + 3_000_000) in recs
    assert {r.source_id for r in recs if type(r) is EndOfSource} == {str(PROBE), str(other)}


def _status(path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _counters(st: dict) -> dict:
    flat: dict = {}
    for group in st.get("pipeline", {}).get("counters", {}).values():
        flat.update(group)
    return flat


@pytest.mark.parametrize("workers", [0, 2])
def test_heron_run_zmq_accounts_for_every_packet(tmp_path, workers):
    frames = _frames(CAPTURE)
    good = _batches(frames)
    bad = _malformed(frames)
    port = free_port()
    db = tmp_path / "zmq.duckdb"
    status = tmp_path / "status.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from heron_tui.cli import heron_main; heron_main()", "run", "--zmq",
         f"tcp://127.0.0.1:{port}", "--db", str(db), "--workers", str(workers), "--status-file", str(status)],
        cwd=ROOT, stderr=subprocess.PIPE, text=True)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    try:
        deadline = time.time() + 30
        while _status(status).get("state") != "running":
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline
            time.sleep(0.1)
        push.connect(f"tcp://127.0.0.1:{port}")
        for i, msg in enumerate(good):
            push.send(msg)
            if i % 7 == 3:
                push.send(bad[(i // 7) % len(bad)])
        n_bad = sum(1 for i in range(len(good)) if i % 7 == 3)
        deadline = time.time() + 30
        while True:
            c = _counters(_status(status))
            if c.get("zmq_batches", 0) + c.get("zmq_batches_malformed", 0) >= len(good) + n_bad:
                break
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, c
            time.sleep(0.2)
    finally:
        push.close(0)
        ctx.term()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(30)
    assert rc == 0, proc.stderr.read()
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    counters = con.execute("SELECT counters FROM runs").fetchone()[0]
    counters = json.loads(counters) if isinstance(counters, str) else counters
    assert counters["zmq_batches"] == len(good)
    assert counters["zmq_batches_malformed"] == n_bad
    assert counters["packets_read"] == len(frames)
    assert counters["packets_decoded"] + counters.get("not_ip", 0) + counters.get("not_tcp", 0) == len(frames)
    assert counters.get("zmq_batches_dropped", 0) == 0 and counters.get("packets_dropped_overload", 0) == 0
    got = con.execute("SELECT call_id, source_id, wire_api, model, status_code, output_tokens, request_start "
                      "FROM calls ORDER BY call_id").fetchall()
    con.close()
    # The same packets ingested as a file named by the probe id give the same calls.
    from heron_core.engine import Engine
    from heron_core.store.db import open_store

    store = open_store(None)
    Engine(store, Config()).ingest([CAPTURE], [str(PROBE)])
    want = store.conn.execute("SELECT call_id, source_id, wire_api, model, status_code, output_tokens, "
                              "request_start FROM calls ORDER BY call_id").fetchall()
    store.close()
    assert got == want and len(got) == 32


def test_idle_probe_heartbeats_follow_the_probe_clock():
    """A probe whose clock is 100 s behind ours: idle heartbeats come at wall − offset, not at our wall."""
    from heron_core.capture.sources import wall_us
    from heron_core.capture.zmq_source import ZmqSource

    port = free_port()
    counters: Counter = Counter()
    src = ZmqSource(SourceSpec("zmq", endpoint=f"tcp://127.0.0.1:{port}"), counters,
                    Config(capture_heartbeat_s=0.2))
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    skew = 100_000_000
    ts0 = wall_us() - skew
    frames = _frames(CAPTURE)[:3]
    push.send(encode_batch(PROBE.bytes, [(ts0 + i, f[1], f[2]) for i, f in enumerate(frames)]))
    recs = []
    deadline = time.time() + 5
    while not any(type(r) is Heartbeat for r in recs) and time.time() < deadline:
        recs += src.poll(0.05)
    src.close()
    push.close(0)
    ctx.term()
    hb = next(r for r in recs if type(r) is Heartbeat)
    assert hb.source_id == str(PROBE)
    assert ts0 < hb.ts_us < ts0 + 5_000_000  # the probe's time, about 0.2 s after its last packet
