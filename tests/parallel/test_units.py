"""Unit tests of the parallel engine's parts: watermark merge, source sequencing, routing, event clock,
replay pacing, pipeline snapshot and health."""

from __future__ import annotations

import queue
import struct
import time
from collections import Counter

from heron_core.capture.sources import EventClock, FileSource, SourceSpec
from heron_core.config import Config
from heron_core.messages import CallStarted
from heron_core.parallel.merge import SourceSequencer, WatermarkMerger
from heron_core.parallel.protocol import Producer
from heron_core.parallel.reader import Router
from heron_core.parallel.stats import HealthTracker, snapshot
from heron_core.records import EndOfSource, Heartbeat, Segment, Watermark

from .helpers import CAPTURES


def test_merger_passes_the_minimum_over_workers_and_drains_once():
    out = []
    m = WatermarkMerger(out.append, 3)
    m.feed(0, [Watermark("s", 10)])
    m.feed(1, [Watermark("s", 20), CallStarted("s", "c1", 5, "anthropic")])
    assert out == [CallStarted("s", "c1", 5, "anthropic")]  # worker 2 has not reached any watermark
    m.feed(2, [Watermark("s", 15)])
    assert out[-1] == Watermark("s", 10)
    m.feed(0, [Watermark("s", 12)])
    assert out[-1] == Watermark("s", 12)
    m.feed(0, [Watermark("s", 11)])  # never back
    m.feed(0, [EndOfSource("s")])  # worker 0 no longer holds the minimum back
    assert out[-1] == Watermark("s", 15)
    m.feed(1, [EndOfSource("s")])
    assert EndOfSource("s") not in out
    m.feed(2, [EndOfSource("s")])
    assert out[-1] == EndOfSource("s") and out.count(EndOfSource("s")) == 1
    m.finish()
    assert out.count(EndOfSource("s")) == 1


def test_merger_finish_drains_sources_a_dead_worker_left_open():
    out = []
    m = WatermarkMerger(out.append, 2)
    m.feed(0, [Watermark("a", 1), EndOfSource("a")])
    m.finish()
    assert out[-1] == EndOfSource("a")


def test_sequencer_keeps_sequential_sources_in_order():
    out = []
    seq = SourceSequencer(out.append, ["a", "b", "c", "d"])
    seq(CallStarted("b", "b1", 1, "x"))
    seq(EndOfSource("b"))
    seq(CallStarted("c", "c1", 1, "x"))
    seq(CallStarted("a", "a1", 1, "x"))
    assert [getattr(m, "call_id", None) for m in out] == ["a1"]
    seq.skip("d")  # its file failed to open: it will send nothing
    seq(EndOfSource("a"))
    assert out == [CallStarted("a", "a1", 1, "x"), EndOfSource("a"), CallStarted("b", "b1", 1, "x"),
                   EndOfSource("b"), CallStarted("c", "c1", 1, "x")]
    seq(EndOfSource("c"))
    assert out[-1] == EndOfSource("c") and seq.pos == 4


def _seg(src, dst, seq=1, payload=b"x") -> Segment:
    return Segment("s", 1, src, dst, seq, 0, 0x18, payload, len(payload))


def test_router_keeps_flows_together_and_broadcasts_markers_after_segments():
    qs = [queue.Queue() for _ in range(4)]
    producers = [Producer(q, f"worker-{i}", 100) for i, q in enumerate(qs)]
    cfg = Config(pipeline_batch_segments=1000)
    r = Router(producers, cfg, lossless=True, counters=Counter())
    flows = [((bytes([10, 0, 0, i]), 40000 + i), (b"\x0a\x00\x00\xfe", 443)) for i in range(40)]
    recs = []
    for a, b in flows:
        recs += [_seg(a, b), _seg(b, a)]
    recs.append(Heartbeat("s", 5))
    r.route(recs, time.monotonic())
    batches = [q.get_nowait() for q in qs]
    assert all(b[-1] == Heartbeat("s", 5) for b in batches)  # every worker, after its segments
    owner = {}
    for w, b in enumerate(batches):
        for t in b[:-1]:
            assert type(t) is tuple  # segments travel as plain tuples
            key = frozenset((t[2], t[3]))
            assert owner.setdefault(key, w) == w  # both directions on one worker
    assert len(set(owner.values())) > 1  # and flows spread over workers
    assert sum(len(b) - 1 for b in batches) == 80


def test_router_lossy_drops_segments_but_keeps_markers():
    q = queue.Queue(maxsize=1)
    p = Producer(q, "worker-0", 1)
    c = Counter()
    r = Router([p], Config(pipeline_batch_segments=2, pipeline_live_wait_s=0), lossless=False, counters=c)
    a, b = (b"\x01\x02\x03\x04", 1), (b"\x05\x06\x07\x08", 2)
    r.route([_seg(a, b), _seg(a, b, 2)], time.monotonic())  # fills the queue
    r.route([_seg(a, b, 3), Heartbeat("s", 9)], time.monotonic())  # no room: segment dropped, heartbeat kept
    assert c["packets_dropped_overload"] == 1 and p.dropped == 1
    assert r.batches[0] == [Heartbeat("s", 9)]
    q.get_nowait()
    r.flush_all()
    assert q.get_nowait() == [Heartbeat("s", 9)]


def test_router_lossy_waits_for_a_busy_worker_before_dropping():
    """A live source's reader waits up to pipeline.live_wait_s (the kernel ring holds the burst): room that
    comes within the wait loses nothing; a worker that stays busy costs the batch after the wait."""
    import threading

    a, b = (b"\x01\x02\x03\x04", 1), (b"\x05\x06\x07\x08", 2)
    q = queue.Queue(maxsize=1)
    p = Producer(q, "worker-0", 1)
    c = Counter()
    r = Router([p], Config(pipeline_batch_segments=1, pipeline_live_wait_s=5.0), lossless=False, counters=c)
    r.route([_seg(a, b)], time.monotonic())  # fills the queue
    drain = threading.Timer(0.3, q.get_nowait)
    drain.start()
    r.route([_seg(a, b, 2)], time.monotonic())  # waits for the timer's get, then goes in
    drain.join()
    assert c["packets_dropped_overload"] == 0 and p.dropped == 0 and p.blocked_s > 0.1
    assert q.get_nowait()[0][4] == 2  # the waiting batch, not lost

    q = queue.Queue(maxsize=1)
    p = Producer(q, "worker-0", 1)
    r = Router([p], Config(pipeline_batch_segments=1, pipeline_live_wait_s=0.3), lossless=False, counters=c)
    r.route([_seg(a, b)], time.monotonic())
    r.route([_seg(a, b, 2)], time.monotonic())  # nobody reads: dropped once the wait is over
    assert c["packets_dropped_overload"] == 1 and p.dropped == 1


def test_event_clock_heartbeats():
    clock = EventClock("s", Config(capture_heartbeat_s=1.0))
    assert clock.packet(10_000_000) is None  # the first packet sets the reference
    assert clock.packet(10_500_000) is None
    assert clock.packet(11_000_000) == Heartbeat("s", 11_000_000)
    assert clock.packet(10_000_001) is None  # late packet: event time does not go back
    assert clock.heartbeat_at(10_900_000) is None
    assert clock.heartbeat_at(12_000_000) == Heartbeat("s", 12_000_000)
    now = time.monotonic()
    clock.last_packet_wall = now - 2
    assert clock.idle(now, 13_000_000, 1.0) == Heartbeat("s", 13_000_000)
    assert clock.idle(now + 0.5, 14_000_000, 1.0) is None  # at most one idle heartbeat a period


def _pcap(path, n: int, span_us: int) -> None:
    def frame(i: int) -> bytes:
        payload = b"x" * 10
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 20 + len(payload), 0, 0, 64, 6, 0,
                         b"\x0a\0\0\x01", b"\x0a\0\0\x02")
        tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1000 + 10 * i, 0, 5 << 4, 0x18, 65535, 0, 0)
        return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp + payload

    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for i in range(n):
        ts = 1_700_000_000_000_000 + span_us * i // (n - 1)
        data = frame(i)
        out.append(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(data), len(data)) + data)
    path.write_bytes(b"".join(out))


def test_replay_speed_paces_by_packet_time_and_keeps_event_time(tmp_path):
    path = tmp_path / "paced.pcap"
    _pcap(path, 11, 1_000_000)  # 11 packets over 1 s
    src = FileSource(SourceSpec("files", paths=[str(path)], source_ids=["p"], replay_speed=4.0), Counter(), Config())
    t0 = time.monotonic()
    recs = []
    while not src.finished:
        recs += src.poll(0.05)
    took = time.monotonic() - t0
    segs = [r for r in recs if type(r) is Segment]
    assert len(segs) == 11 and recs[-1] == EndOfSource("p")
    assert 0.2 <= took < 0.6, took  # 1 s of packets at 4x
    assert [s.ts_us for s in segs] == [1_700_000_000_000_000 + 100_000 * i for i in range(11)]
    assert src.outcomes[0].status == "ok" and src.outcomes[0].packets == 11


def test_health_rules():
    t = HealthTracker()
    q = [{"name": "worker-0", "depth": 10, "capacity": 100}]
    assert t.assess(Counter(packets_read=5), q, lossy=True) == ("ok", [])
    assert t.assess(Counter(tcp_gaps_skipped=2), q, lossy=True) == ("warning", ["tcp_gaps_skipped +2"])
    assert t.assess(Counter(tcp_gaps_skipped=2), q, lossy=True) == ("ok", [])  # since the previous sample
    status, reasons = t.assess(Counter(tcp_gaps_skipped=2, packets_dropped_overload=1), q, lossy=True)
    assert status == "critical" and reasons == ["packets_dropped_overload +1"]
    full = [{"name": "worker-0", "depth": 96, "capacity": 100}]
    assert t.assess(Counter(tcp_gaps_skipped=2, packets_dropped_overload=1), full, lossy=True)[0] == "critical"
    assert t.assess(Counter(tcp_gaps_skipped=2, packets_dropped_overload=1), full, lossy=False)[0] == "ok"
    half = [{"name": "worker-0", "depth": 91, "capacity": 100}]
    assert t.assess(Counter(tcp_gaps_skipped=2, packets_dropped_overload=1), half, lossy=True)[0] == "warning"
    snap = snapshot(Counter(packets_read=1, calls_received=2), [], [], HealthTracker(), lossy=False)
    assert set(snap) == {"health", "reasons", "counters", "queues", "workers", "sampled_at"}
    assert snap["counters"]["reader"]["packets_read"] == 1


def test_pipeline_snapshot_after_a_parallel_run():
    from heron_core.capture.source import source_id_for
    from heron_core.engine import Engine

    engine = Engine(None, Config(), workers=2)
    engine.ingest(CAPTURES[:2], source_id_for(CAPTURES[:2]))
    snap = engine.pipeline_snapshot()
    assert snap["health"] in ("ok", "warning")
    assert [q["name"] for q in snap["queues"]] == ["worker-0", "worker-1", "assembler"]
    assert all(q["capacity"] > 0 and q["high_water"] >= 0 for q in snap["queues"])
    assert len(snap["workers"]) == 2 and sum(w["segments"] for w in snap["workers"]) > 0
    assert snap["counters"]["reader"]["packets_read"] == engine.counters["packets_read"] > 0
