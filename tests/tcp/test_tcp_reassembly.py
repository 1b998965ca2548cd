"""TCP reassembly (capture-and-http.md §5): exact delivered bytes, callbacks and counters."""

from __future__ import annotations

import pytest

from heron_core.records import ACK, FIN, PSH, SYN, Process
from tcp_fakes import CLIENT, M32, SEC, SERVER, T0, Conn, Harness, seg

REQ = b"POST /v1/messages HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\n\r\nhello"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# --- opening -----------------------------------------------------------------------------------------


def test_handshake_and_data_both_directions() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake())
    hs.feed(c.c(0, REQ[:10], ts=T0 + 10), c.c(10, REQ[10:], ts=T0 + 11))
    hs.feed(c.s(0, RESP[:4], ts=T0 + 20), c.s(4, RESP[4:], ts=T0 + 21))
    h = hs.h
    assert h.events == [
        ("data", True, REQ[:10], T0 + 10),
        ("data", True, REQ[10:], T0 + 11),
        ("data", False, RESP[:4], T0 + 20),
        ("data", False, RESP[4:], T0 + 21),
    ]
    assert h.info.client == CLIENT and h.info.server == SERVER
    assert h.info.first_ts_us == T0
    assert (h.info.lo, h.info.hi) == (CLIENT, SERVER)
    assert hs.counters["flows_created"] == 1 and hs.counters["flows_active"] == 1
    assert hs.counters["midstream_syncs"] == 0


def test_flow_key_orders_endpoints_and_sources_are_separate() -> None:
    hs = Harness()
    hi_client = (bytes([10, 0, 0, 9]), 40000)
    c1 = Conn(client=hi_client, server=SERVER, source="a")
    c2 = Conn(client=hi_client, server=SERVER, source="b")
    hs.feed(c1.syn(), c2.syn())
    assert len(hs.handlers) == 2
    assert (hs.handlers[0].info.lo, hs.handlers[0].info.hi) == (SERVER, hi_client)
    assert hs.handlers[0].info.client == hi_client
    assert [h.info.source_id for h in hs.handlers] == ["a", "b"]


def test_synack_only_syncs_both_sides() -> None:
    hs, c = Harness(), Conn()
    hs.feed(c.synack(ts=T0), c.c(0, REQ), c.s(0, RESP))
    h = hs.h
    assert h.info.client == CLIENT
    assert h.stream(True) == REQ and h.stream(False) == RESP


def test_synack_joins_flow_opened_by_stray_packet() -> None:
    hs, c = Harness(), Conn()
    hs.feed(c.ack(ts=T0), c.synack(ts=T0 + 1), c.c(0, REQ, ts=T0 + 2), c.s(0, RESP, ts=T0 + 3))
    h = hs.h
    assert h.info.first_ts_us == T0 and h.info.client == CLIENT
    assert h.events == [("data", True, REQ, T0 + 2), ("data", False, RESP, T0 + 3)]


def test_syn_with_payload_after_isn() -> None:
    hs, c = Harness(), Conn()
    hs.feed(seg(CLIENT, SERVER, c.cisn, b"GET / HTTP/1.1\r\n", flags=SYN), c.c(16, b"\r\n"))
    assert hs.h.stream(True) == b"GET / HTTP/1.1\r\n\r\n"


def test_process_is_learned() -> None:
    hs, c = Harness(), Conn()
    p = Process(42, "claude", "/usr/bin/claude")
    hs.feed(c.syn(), seg(CLIENT, SERVER, c.cisn + 1, b"x", process=p))
    assert hs.h.info.process == p


# --- mid-stream pickup --------------------------------------------------------------------------------


def test_midstream_pickup_skips_until_request_then_status_line() -> None:
    hs = Harness()
    cseq, sseq = 7_000, 90_000
    old_resp = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    hs.feed(
        seg(SERVER, CLIENT, sseq, old_resp, ts=T0),  # response to a request we never saw: skipped
        seg(CLIENT, SERVER, cseq, b"tail of an old body", ts=T0 + 1),  # not a request line: skipped
        seg(CLIENT, SERVER, cseq + 19, REQ, ts=T0 + 2, ack=sseq + len(old_resp)),
        seg(SERVER, CLIENT, sseq + len(old_resp), b"more old bytes", ts=T0 + 3),  # not a status line
        seg(SERVER, CLIENT, sseq + len(old_resp) + 14, RESP, ts=T0 + 4),
        seg(CLIENT, SERVER, cseq + 19 + len(REQ), b"GET /x HTTP/1.1\r\n\r\n", ts=T0 + 5),
    )
    h = hs.h
    assert h.events == [
        ("data", True, REQ, T0 + 2),
        ("data", False, RESP, T0 + 4),
        ("data", True, b"GET /x HTTP/1.1\r\n\r\n", T0 + 5),
    ]
    assert h.info.client == CLIENT and h.info.server == SERVER
    assert h.info.first_ts_us == T0
    assert hs.counters["midstream_syncs"] == 1
    assert hs.counters["bytes_skipped_unsynced"] == len(old_resp) + 19 + 14


def test_midstream_status_line_older_than_request_is_skipped() -> None:
    hs = Harness()
    # fed after the request but timestamped before it (capture reordering): not the answer to it
    hs.feed(
        seg(CLIENT, SERVER, 100, REQ, ts=T0 + 10, flags=ACK | PSH, ack=0),
        seg(SERVER, CLIENT, 500, RESP, ts=T0 + 5),
        seg(SERVER, CLIENT, 500 + len(RESP), RESP, ts=T0 + 20),
    )
    assert hs.h.events == [("data", True, REQ, T0 + 10), ("data", False, RESP, T0 + 20)]
    assert hs.counters["bytes_skipped_unsynced"] == len(RESP)


def test_midstream_status_line_behind_request_ack_is_skipped() -> None:
    hs = Harness()
    # the client had already acknowledged server bytes up to 1000 when it sent the request
    hs.feed(
        seg(CLIENT, SERVER, 100, REQ, ts=T0, ack=1000),
        seg(SERVER, CLIENT, 1000 - len(RESP), RESP, ts=T0 + 1),
        seg(SERVER, CLIENT, 1000, RESP, ts=T0 + 2),
    )
    assert hs.h.stream(False) == RESP
    assert hs.counters["bytes_skipped_unsynced"] == len(RESP)


def test_midstream_h2_preface_syncs_client() -> None:
    hs = Harness()
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    hs.feed(
        seg(CLIENT, SERVER, 10, preface, ts=T0),
        seg(SERVER, CLIENT, 20, b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", ts=T0 + 1),
    )
    assert hs.h.stream(True) == preface
    assert hs.h.stream(False) == b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    assert hs.counters["midstream_syncs"] == 1


# --- ordering ----------------------------------------------------------------------------------------


def test_out_of_order_is_held_then_delivered_in_order() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake())
    hs.feed(c.c(10, REQ[10:20], ts=T0 + 10), c.c(20, REQ[20:], ts=T0 + 11))
    assert hs.h.events == []
    assert hs.counters["tcp_ooo_segments"] == 2
    assert hs.counters["tcp_ooo_bytes"] == len(REQ) - 10
    hs.feed(c.c(0, REQ[:10], ts=T0 + 12))
    assert hs.h.events == [
        ("data", True, REQ[:10], T0 + 12),
        ("data", True, REQ[10:20], T0 + 12),  # available only once the hole was filled
        ("data", True, REQ[20:], T0 + 12),
    ]
    assert hs.counters["tcp_ooo_bytes"] == 0
    # back on the fast path afterwards
    hs.feed(c.c(len(REQ), b"next", ts=T0 + 13))
    assert hs.h.events[-1] == ("data", True, b"next", T0 + 13)


def test_retransmit_is_counted_and_not_redelivered() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake(), c.c(0, b"abcdef"), c.c(0, b"abcdef"), c.c(2, b"cd"), c.c(6, b"gh"))
    assert hs.h.stream(True) == b"abcdefgh"
    assert hs.counters["tcp_retransmits"] == 2


def test_partial_overlap_behind_delivers_only_new_bytes() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake(), c.c(0, b"0123456789"), c.c(5, b"56789ABCDE", ts=T0 + 50))
    assert hs.h.events[-1] == ("data", True, b"ABCDE", T0 + 50)
    assert hs.h.stream(True) == b"0123456789ABCDE"
    assert hs.counters["tcp_retransmits"] == 0


def test_overlapping_stored_segments_are_not_double_delivered() -> None:
    data = bytes(range(65, 65 + 40))
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake())
    hs.feed(c.c(10, data[10:25]), c.c(15, data[15:30]), c.c(12, data[12:14]), c.c(28, data[28:40]),
            c.c(10, data[10:25]))
    hs.feed(c.c(0, data[:11]))
    assert hs.h.stream(True) == data
    assert hs.counters["tcp_ooo_bytes"] == 0


def test_one_byte_segments_in_reverse_order() -> None:
    data = b"POST /a HTTP/1.1\r\n\r\n"
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake())
    hs.feed(*[c.c(i, data[i:i + 1], ts=T0 + 100 + i) for i in reversed(range(len(data)))])
    assert hs.h.stream(True) == data
    assert all(len(e[2]) == 1 for e in hs.h.events)
    assert hs.counters["tcp_ooo_segments"] == len(data) - 1


@pytest.mark.parametrize("cisn", [M32 - 4, M32, 0x7FFFFFFF - 3])
def test_sequence_wraparound(cisn: int) -> None:
    data = bytes(range(48, 48 + 30))
    hs, c = Harness(), Conn(cisn=cisn, sisn=M32 - 1)
    hs.feed(*c.handshake())
    # in order across the wrap, then out of order across it
    hs.feed(c.c(0, data[:3]), c.c(8, data[8:20]), c.c(3, data[3:8]), c.c(20, data[20:]))
    hs.feed(c.s(0, RESP[:1]), c.s(1, RESP[1:]))
    assert hs.h.stream(True) == data
    assert hs.h.stream(False) == RESP
    assert hs.counters["tcp_retransmits"] == 0 and hs.counters["tcp_gaps_skipped"] == 0


# --- gaps --------------------------------------------------------------------------------------------


def test_gap_skipped_after_timeout_on_watermark() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake(), c.c(0, b"aaaa", ts=T0 + 10), c.c(10, b"bbbb", ts=T0 + 20))
    hs.r.watermark("s1", T0 + 20 + 2 * SEC - 1)
    assert hs.h.events == [("data", True, b"aaaa", T0 + 10)]
    hs.r.watermark("other-source", T0 + 100 * SEC)
    assert len(hs.h.events) == 1
    hs.r.watermark("s1", T0 + 20 + 2 * SEC)
    assert hs.h.events[1:] == [("gap", True, 6, T0 + 10), ("data", True, b"bbbb", T0 + 20)]
    assert hs.counters["tcp_gaps_skipped"] == 1 and hs.counters["tcp_gap_bytes"] == 6
    hs.feed(c.c(4, b"late!!", ts=T0 + 30))  # the missing bytes arriving after all: old news
    hs.feed(c.c(14, b"cc", ts=T0 + 31))
    assert hs.h.events[-1] == ("data", True, b"cc", T0 + 31)
    assert hs.counters["tcp_retransmits"] == 1


def test_second_gap_times_out_from_when_data_beyond_it_was_seen() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake(), c.c(0, b"a", ts=T0 + 10), c.c(2, b"c", ts=T0 + 20), c.c(4, b"e", ts=T0 + SEC))
    hs.r.watermark("s1", T0 + 20 + 2 * SEC)
    assert hs.h.events[1:] == [("gap", True, 1, T0 + 10), ("data", True, b"c", T0 + 20)]
    hs.r.watermark("s1", T0 + 3 * SEC)
    assert hs.h.events[3:] == [("gap", True, 1, T0 + 20), ("data", True, b"e", T0 + SEC)]


def test_gap_skipped_when_direction_bound_exceeded() -> None:
    hs, c = Harness(tcp_ooo_max_bytes=10), Conn()
    hs.feed(*c.handshake(), c.c(0, b"ab", ts=T0 + 10), c.c(5, b"fghij", ts=T0 + 11))
    assert hs.h.stream(True) == b"ab"  # 5 bytes stored: within the bound
    hs.feed(c.c(10, b"klmnop", ts=T0 + 12))  # 11 stored > 10
    assert hs.h.events[1:] == [
        ("gap", True, 3, T0 + 10),
        ("data", True, b"fghij", T0 + 11),
        ("data", True, b"klmnop", T0 + 12),
    ]
    assert hs.counters["tcp_ooo_bytes"] == 0 and hs.counters["tcp_gaps_skipped"] == 1


def test_worker_bound_skips_the_oldest_gap() -> None:
    hs = Harness(tcp_ooo_worker_max_bytes=100)
    c1 = Conn(client=(bytes([10, 0, 0, 1]), 1))
    c2 = Conn(client=(bytes([10, 0, 0, 1]), 2))
    hs.feed(*c1.handshake(), *c2.handshake())
    hs.feed(c1.c(10, b"x" * 60, ts=T0 + 10))
    hs.feed(c2.c(10, b"y" * 60, ts=T0 + 20))
    h1, h2 = hs.handlers
    assert h1.events == [("gap", True, 10, T0), ("data", True, b"x" * 60, T0 + 10)]
    assert h1.gap_reasons == ["gap"]
    assert h2.events == []
    assert hs.counters["tcp_ooo_bytes"] == 60 and hs.r.ooo_bytes() == 60


def test_truncated_segment_in_order_then_resume() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake())
    hs.feed(c.c(0, b"12345", wire_len=10, ts=T0 + 10), c.c(10, b"after", ts=T0 + 11))
    assert hs.h.events == [
        ("data", True, b"12345", T0 + 10),
        ("gap", True, 5, T0 + 10),
        ("data", True, b"after", T0 + 11),
    ]
    assert hs.counters["tcp_gap_bytes"] == 5
    assert hs.h.gap_reasons == ["truncated"]  # §5.6: the HTTP stage records damage "truncated"


def test_truncated_segment_out_of_order() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake())
    hs.feed(c.c(4, b"EF", wire_len=6, ts=T0 + 10), c.c(10, b"KL", ts=T0 + 11), c.c(0, b"ABCD", ts=T0 + 12))
    assert hs.h.events == [
        ("data", True, b"ABCD", T0 + 12),
        ("data", True, b"EF", T0 + 12),
        ("gap", True, 4, T0 + 12),
        ("data", True, b"KL", T0 + 12),
    ]
    assert hs.h.gap_reasons == ["truncated"]
    # a retransmission overlapping the gap only contributes bytes beyond it
    hs.feed(c.c(8, b"IJKLMN", ts=T0 + 13))
    assert hs.h.events[-1] == ("data", True, b"MN", T0 + 13)


# --- closing -----------------------------------------------------------------------------------------


def test_rst_resets_and_removes_flow() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake(), c.c(0, REQ), c.rst(from_client=False, ts=T0 + 40))
    assert hs.h.events[-1] == ("reset", T0 + 40)
    assert hs.counters["flows_active"] == 0 and hs.counters["flows_closed"] == 1
    hs.feed(c.c(len(REQ), b"late", ts=T0 + 41), c.rst(ts=T0 + 42))  # stray packets: no new flow
    assert len(hs.handlers) == 1 and hs.counters["flows_created"] == 1


def test_fin_both_sides_closes() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake(), c.c(0, REQ, ts=T0 + 10), c.cfin(len(REQ), ts=T0 + 11))
    hs.feed(c.s(0, RESP, ts=T0 + 20), c.sfin(len(RESP), ts=T0 + 21))
    assert hs.h.events == [
        ("data", True, REQ, T0 + 10),
        ("fin", True, T0 + 11),
        ("data", False, RESP, T0 + 20),
        ("fin", False, T0 + 21),
        ("closed", T0 + 21),
    ]
    assert hs.counters["flows_closed"] == 1 and hs.counters["flows_active"] == 0
    hs.feed(c.ack(ts=T0 + 22))  # the final ACK must not open a new flow
    assert len(hs.handlers) == 1


def test_fin_with_data_in_same_segment() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake(), c.s(0, RESP, flags=ACK | PSH | FIN, ts=T0 + 20))
    assert hs.h.events == [("data", False, RESP, T0 + 20), ("fin", False, T0 + 20)]


def test_out_of_order_fin_waits_for_data() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake(), c.c(0, REQ))
    hs.feed(c.sfin(len(RESP), ts=T0 + 30), c.s(4, RESP[4:], ts=T0 + 31))
    assert hs.h.events == [("data", True, REQ, T0 + 10)]
    hs.feed(c.sfin(len(RESP), ts=T0 + 32))  # retransmitted early FIN
    assert hs.counters["tcp_retransmits"] == 1
    hs.feed(c.s(0, RESP[:4], ts=T0 + 33))
    assert hs.h.events[1:] == [
        ("data", False, RESP[:4], T0 + 33),
        ("data", False, RESP[4:], T0 + 33),
        ("fin", False, T0 + 33),
    ]
    hs.feed(c.cfin(len(REQ), ts=T0 + 40))
    assert hs.h.events[-2:] == [("fin", True, T0 + 40), ("closed", T0 + 40)]


def test_early_fin_applied_at_gap_skip() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake(), c.s(0, b"HTTP/1.1 200 OK\r\n", ts=T0 + 20), c.sfin(30, ts=T0 + 30))
    hs.r.watermark("s1", T0 + 30 + 2 * SEC)
    assert hs.h.events[1:] == [("gap", False, 13, T0 + 20), ("fin", False, T0 + 30)]


def test_unsynced_flow_fins_close_it() -> None:
    hs = Harness()
    hs.feed(seg(CLIENT, SERVER, 5, b"junk", flags=ACK | FIN))
    hs.feed(seg(SERVER, CLIENT, 9, flags=ACK | FIN, ts=T0 + 1))
    assert hs.h.events == [("closed", T0 + 1)]
    assert hs.counters["bytes_skipped_unsynced"] == 4 and hs.counters["flows_active"] == 0


# --- expiry and drain --------------------------------------------------------------------------------


def test_idle_and_pending_expiry() -> None:
    hs = Harness()
    idle, pending = Conn(client=(CLIENT[0], 1)), Conn(client=(CLIENT[0], 2))
    hs.feed(*idle.handshake(), idle.c(0, REQ, ts=T0 + 100))
    hs.feed(*pending.handshake(), pending.c(0, REQ, ts=T0 + 200))
    h_idle, h_pending = hs.handlers
    h_pending.awaiting = True
    hs.r.watermark("s1", T0 + 290 * SEC)
    assert h_idle.events[-1][0] == "data" and hs.counters["flows_expired"] == 0
    hs.r.watermark("s1", T0 + 100 + 300 * SEC)
    assert h_idle.events[-1] == ("expire", T0 + 100, "expired")
    assert h_pending.events[-1][0] == "data"
    assert hs.counters["flows_expired"] == 1 and hs.counters["flows_active"] == 1
    hs.r.watermark("s1", T0 + 1790 * SEC)
    assert h_pending.events[-1][0] == "data"
    hs.r.watermark("s1", T0 + 200 + 1800 * SEC)
    assert h_pending.events[-1] == ("expire", T0 + 200, "expired")
    assert hs.counters["flows_active"] == 0 and hs.counters["flows_expired"] == 2


def test_expiry_only_checked_every_ten_seconds() -> None:
    hs, c = Harness(tcp_idle_timeout_s=5.0), Conn()
    hs.feed(*c.handshake())
    hs.r.watermark("s1", T0 + 1 * SEC)
    hs.r.watermark("s1", T0 + 6 * SEC)  # idle long enough, but the next sweep is at T0 + 11 s
    assert hs.h.events == []
    hs.r.watermark("s1", T0 + 11 * SEC)
    assert hs.h.events == [("expire", T0 + 2, "expired")]


def test_end_source_drains_stored_data_then_expires() -> None:
    hs, c = Harness(), Conn()
    other = Conn(source="s2")
    hs.feed(*other.handshake())
    hs.feed(*c.handshake(), c.c(0, REQ, ts=T0 + 10), c.s(0, b"HTTP/1.1 ", ts=T0 + 20))
    hs.feed(c.s(20, b"tail", ts=T0 + 21), c.c(len(REQ) + 3, b"zz", ts=T0 + 22))
    hs.r.end_source("s1")
    h = hs.handlers[1]
    assert h.events[2:] == [
        ("gap", True, 3, T0 + 10),
        ("data", True, b"zz", T0 + 22),
        ("gap", False, 11, T0 + 20),
        ("data", False, b"tail", T0 + 21),
        ("expire", T0 + 22, "drained"),
    ]
    assert hs.handlers[0].events == []  # another source is untouched
    assert hs.counters["flows_active"] == 1 and hs.counters["tcp_ooo_bytes"] == 0


def test_end_source_applies_stored_fin() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake(), c.cfin(5, ts=T0 + 10), c.sfin(0, ts=T0 + 11))
    hs.r.end_source("s1")
    assert hs.h.events == [
        ("fin", False, T0 + 11),
        ("gap", True, 5, T0),  # nothing delivered yet: the SYN is the last packet before the gap
        ("fin", True, T0 + 10),
        ("closed", T0 + 10),
    ]
    assert hs.counters["flows_closed"] == 1 and hs.counters["flows_expired"] == 0


# --- port reuse --------------------------------------------------------------------------------------


def test_new_syn_after_close_opens_new_flow() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake(), c.cfin(0, ts=T0 + 10), c.sfin(0, ts=T0 + 11))
    hs.feed(c.syn(ts=T0 + 12))  # retransmitted SYN of the closed connection: ignored
    assert len(hs.handlers) == 1
    c2 = Conn(cisn=777_777, sisn=888_888)
    hs.feed(*c2.handshake(ts=T0 + 50), c2.c(0, REQ, ts=T0 + 60))
    assert len(hs.handlers) == 2
    assert hs.handlers[1].events == [("data", True, REQ, T0 + 60)]
    assert hs.handlers[1].info.first_ts_us == T0 + 50


def test_new_syn_on_live_flow_with_other_isn_expires_old() -> None:
    hs, c = Harness(), Conn()
    hs.feed(*c.handshake(), c.c(0, REQ, ts=T0 + 10))
    hs.feed(c.syn(ts=T0 + 11))  # retransmitted SYN, same ISN
    assert len(hs.handlers) == 1 and hs.counters["tcp_retransmits"] == 1
    c2 = Conn(cisn=123, sisn=456)
    hs.feed(*c2.handshake(ts=T0 + 100), c2.c(0, b"GET / HTTP/1.1\r\n\r\n", ts=T0 + 110))
    old, new = hs.handlers
    assert old.events[-1] == ("expire", T0 + 11, "expired")  # the duplicate SYN was its last packet
    assert new.events == [("data", True, b"GET / HTTP/1.1\r\n\r\n", T0 + 110)]
    assert hs.counters["flows_created"] == 2 and hs.counters["flows_active"] == 1
    assert hs.counters["flows_expired"] == 1


def test_syn_after_midstream_flow_expires_it() -> None:
    hs, c = Harness(), Conn()
    hs.feed(seg(CLIENT, SERVER, 99, REQ, ts=T0))
    hs.feed(*c.handshake(ts=T0 + 5), c.c(0, REQ, ts=T0 + 6))
    assert hs.handlers[0].events == [("data", True, REQ, T0), ("expire", T0, "expired")]
    assert hs.handlers[1].events == [("data", True, REQ, T0 + 6)]


def test_counters_are_conserved() -> None:
    hs = Harness()
    for port in range(1, 6):
        c = Conn(client=(CLIENT[0], port))
        hs.feed(*c.handshake(), c.c(0, REQ))
        if port == 1:
            hs.feed(c.rst())
        if port == 2:
            hs.feed(c.cfin(len(REQ)), c.sfin(0))
    hs.r.end_source("s1")
    n = hs.counters
    assert n["flows_created"] == 5 and n["flows_closed"] == 2 and n["flows_expired"] == 3
    assert n["flows_active"] == 0 and hs.r.flow_count() == 0
