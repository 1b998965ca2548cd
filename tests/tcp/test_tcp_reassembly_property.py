"""Property: any segmentation, reordering, duplication and re-segmented retransmission of two byte streams
(with no byte missing) reassembles to exactly those streams, around the 2**32 wrap too."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from heron_core.records import ACK, FIN, PSH, Segment
from tcp_fakes import M32, SEC, T0, Conn, Harness

isns = st.one_of(st.integers(0, M32), st.integers(M32 - 600, M32))


@st.composite
def pieces(draw: st.DrawFn, data: bytes) -> list[tuple[int, int]]:
    """A segmentation of ``data`` into [start, end) ranges plus re-segmented retransmissions."""
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=20))))
    bounds = [0, *[c for c in cuts if 0 < c < len(data)], len(data)]
    ranges = [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
    if data:
        extra = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 64)), max_size=6))
        ranges += [(a, min(len(data), a + n)) for a, n in extra]
    return ranges


@st.composite
def scenario(draw: st.DrawFn) -> tuple[bytes, bytes, bool, list[Segment]]:
    cdata = draw(st.binary(max_size=400))
    sdata = draw(st.binary(max_size=400))
    with_fin = draw(st.booleans())
    c = Conn(cisn=draw(isns), sisn=draw(isns))
    tail: list[Segment] = []
    for a, b in draw(pieces(cdata)):
        tail.append(c.c(a, cdata[a:b]))
    for a, b in draw(pieces(sdata)):
        tail.append(c.s(a, sdata[a:b]))
    if with_fin:
        tail.append(c.cfin(len(cdata)))
        tail.append(c.s(len(sdata), b"", flags=ACK | FIN))
        if sdata:  # a FIN carried on the last data segment, too
            tail.append(c.s(len(sdata) - 1, sdata[-1:], flags=ACK | PSH | FIN))
    tail += [c.syn(), c.synack(), c.ack()]  # late duplicates of the handshake
    dups = draw(st.lists(st.sampled_from(tail), max_size=10)) if tail else []
    order = draw(st.permutations(tail + dups))
    segs = [c.syn(), c.synack(), *order]
    # arrival order is time order
    segs = [s._replace(ts_us=T0 + i) for i, s in enumerate(segs)]
    return cdata, sdata, with_fin, segs


@settings(max_examples=400, deadline=None)
@given(scenario())
def test_random_segmentation_reassembles_exactly(sc: tuple[bytes, bytes, bool, list[Segment]]) -> None:
    cdata, sdata, with_fin, segs = sc
    hs = Harness()
    hs.feed(*segs)
    hs.r.end_source("s1")
    h = hs.h
    assert h.stream(True) == cdata
    assert h.stream(False) == sdata
    kinds = h.kinds()
    assert "gap" not in kinds and "reset" not in kinds
    for side in (True, False):
        times = [e[-1] for e in h.events if e[0] in ("data", "fin") and e[1] == side]
        assert times == sorted(times)  # per-direction timestamps never go back
    if with_fin:
        assert kinds[-1] == "closed"
        for side in (True, False):
            fin_at = h.events.index(next(e for e in h.events if e[0] == "fin" and e[1] == side))
            assert all(not (e[0] == "data" and e[1] == side) for e in h.events[fin_at:])
        assert hs.counters["flows_closed"] == 1
    else:
        assert kinds.count("fin") == 0 and h.events[-1][0] == "expire" and h.events[-1][2] == "drained"
    assert hs.counters["tcp_ooo_bytes"] == 0 and hs.counters["flows_active"] == 0
    assert hs.counters["flows_created"] == 1


@st.composite
def lossy_scenario(draw: st.DrawFn) -> tuple[bytes, bytes, bool, int, list[Segment], set[int]]:
    """Like ``scenario`` but pieces may be lost or snaplen-truncated, the per-direction bound may be small,
    and gap timeouts fire at random points (``marks``: watermark after those segments)."""
    cdata = draw(st.binary(max_size=300))
    sdata = draw(st.binary(max_size=300))
    with_fin = draw(st.booleans())
    bound = draw(st.sampled_from([1, 16, 64, 4 * 1024 * 1024]))
    c = Conn(cisn=draw(isns), sisn=draw(isns))
    tail: list[Segment] = []
    for data, mk in ((cdata, c.c), (sdata, c.s)):
        for a, b in draw(pieces(data)):
            fate = draw(st.sampled_from(["keep", "keep", "keep", "lose", "truncate"]))
            if fate == "keep":
                tail.append(mk(a, data[a:b]))
            elif fate == "truncate":
                k = draw(st.integers(0, b - a - 1))
                tail.append(mk(a, data[a:a + k], wire_len=b - a))
    if with_fin:
        tail.append(c.cfin(len(cdata)))
        tail.append(c.sfin(len(sdata)))
    order = draw(st.permutations(tail))
    segs = [c.syn(), c.synack(), *order]
    segs = [s._replace(ts_us=T0 + i) for i, s in enumerate(segs)]
    marks = draw(st.sets(st.integers(0, len(segs) - 1), max_size=5))
    return cdata, sdata, with_fin, bound, segs, marks


@settings(max_examples=400, deadline=None)
@given(lossy_scenario())
def test_lossy_streams_keep_every_delivered_byte_in_place(
    sc: tuple[bytes, bytes, bool, int, list[Segment], set[int]],
) -> None:
    """Delivered bytes and declared gaps tile each stream exactly: every byte lands at its true offset."""
    cdata, sdata, with_fin, bound, segs, marks = sc
    hs = Harness(tcp_ooo_max_bytes=bound)
    for i, s in enumerate(segs):
        hs.feed(s)
        if i in marks:
            hs.r.watermark("s1", s.ts_us + 2 * SEC)  # every gap open now has timed out
    hs.r.end_source("s1")
    h = hs.h
    for side, data in ((True, cdata), (False, sdata)):
        pos = 0
        for e in h.events:
            if e[1] is not side:
                continue
            if e[0] == "data":
                assert e[2] == data[pos:pos + len(e[2])] and len(e[2]) > 0
                pos += len(e[2])
            elif e[0] == "gap":
                assert e[2] > 0
                pos += e[2]
        assert pos <= len(data)
        if with_fin:
            assert pos == len(data)
    if with_fin:
        assert h.kinds()[-1] == "closed"
    assert hs.counters["tcp_gap_bytes"] == sum(e[2] for e in h.events if e[0] == "gap")
    assert hs.counters["tcp_ooo_bytes"] == 0 and hs.r.ooo_bytes() == 0 and hs.counters["flows_active"] == 0
