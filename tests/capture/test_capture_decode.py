"""decode_frame / decode_span: every link type, tags, MPLS, IP options, IPv6 extension headers, the
length rules of capture-and-http.md §4 and the counters of each way a frame can fail to decode."""

from __future__ import annotations

import struct
from collections import Counter

import pytest
from capture_builders import (
    ACK,
    CLIENT4,
    CLIENT6,
    DPORT,
    PAYLOAD,
    SEQ,
    SERVER4,
    SERVER6,
    SPORT,
    ip4,
    ip6,
    tcp,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import ARP, ICMP, IP, UDP, Dot1AD, Dot1Q, Ether, IPOption_Router_Alert, IPv6
from scapy.contrib.mpls import MPLS
from scapy.layers.inet6 import IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.ipsec import AH
from scapy.layers.l2 import CookedLinux, CookedLinuxV2

from heron_core.capture.decode import LINKTYPES, decode_frame, decode_span
from heron_core.records import Segment

V4 = IP(src=CLIENT4, dst=SERVER4)
V6 = IPv6(src=CLIENT6, dst=SERVER6)
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def seg4(payload: bytes = PAYLOAD, wire_len: int | None = None, flags: int = 0x18) -> Segment:
    return Segment(
        "src",
        7,
        (ip4(CLIENT4), SPORT),
        (ip4(SERVER4), DPORT),
        SEQ,
        ACK,
        flags,
        payload,
        len(payload) if wire_len is None else wire_len,
    )


def seg6(payload: bytes = PAYLOAD, wire_len: int | None = None) -> Segment:
    return Segment(
        "src",
        7,
        (ip6(CLIENT6), SPORT),
        (ip6(SERVER6), DPORT),
        SEQ,
        ACK,
        0x18,
        payload,
        len(payload) if wire_len is None else wire_len,
    )


def decode(linktype: int, data: bytes, counters: Counter | None = None) -> Segment | None:
    return decode_frame("src", 7, linktype, data, Counter() if counters is None else counters)


def only(counters: Counter) -> dict[str, int]:
    return {k: v for k, v in counters.items() if v}


V4_TCP = bytes(V4 / tcp())
V6_TCP = bytes(V6 / tcp())

LINK_CASES = [
    # (id, linktype, frame bytes, expected segment)
    ("ethernet-v4", 1, bytes(ETH / V4 / tcp()), seg4()),
    ("ethernet-v6", 1, bytes(ETH / V6 / tcp()), seg6()),
    ("null-le-v4", 0, struct.pack("<I", 2) + V4_TCP, seg4()),
    ("null-be-v4", 0, struct.pack(">I", 2) + V4_TCP, seg4()),
    ("null-le-v6-24", 0, struct.pack("<I", 24) + V6_TCP, seg6()),
    ("null-le-v6-28", 0, struct.pack("<I", 28) + V6_TCP, seg6()),
    ("null-be-v6-30", 0, struct.pack(">I", 30) + V6_TCP, seg6()),
    ("loop-v4", 108, struct.pack(">I", 2) + V4_TCP, seg4()),
    ("loop-v6", 108, struct.pack(">I", 24) + V6_TCP, seg6()),
    ("raw101-v4", 101, V4_TCP, seg4()),
    ("raw101-v6", 101, V6_TCP, seg6()),
    ("raw12-v4", 12, V4_TCP, seg4()),
    ("raw14-v6", 14, V6_TCP, seg6()),
    ("ipv4-228", 228, V4_TCP, seg4()),
    ("ipv6-229", 229, V6_TCP, seg6()),
    (
        "sll-v4",
        113,
        bytes(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, proto=0x0800) / V4 / tcp()),
        seg4(),
    ),
    ("sll-v6", 113, bytes(CookedLinux(proto=0x86DD) / V6 / tcp()), seg6()),
    ("sll2-v4", 276, bytes(CookedLinuxV2(proto=0x0800) / V4 / tcp()), seg4()),
    ("sll2-v6", 276, bytes(CookedLinuxV2(proto=0x86DD) / V6 / tcp()), seg6()),
    ("vlan", 1, bytes(ETH / Dot1Q(vlan=5) / V4 / tcp()), seg4()),
    ("qinq-88a8", 1, bytes(ETH / Dot1AD(vlan=7) / Dot1Q(vlan=5) / V4 / tcp()), seg4()),
    ("qinq-9100", 1, bytes(Ether(type=0x9100) / Dot1Q(vlan=7) / Dot1Q(vlan=5) / V6 / tcp()), seg6()),
    ("vlan-x3", 1, bytes(ETH / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / V4 / tcp()), seg4()),
    ("sll-vlan", 113, bytes(CookedLinux(proto=0x8100) / Dot1Q(vlan=5) / V4 / tcp()), seg4()),
    ("mpls-1", 1, bytes(ETH / MPLS(label=16, s=1) / V4 / tcp()), seg4()),
    ("mpls-2-v6", 1, bytes(ETH / MPLS(label=16, s=0) / MPLS(label=17, s=1) / V6 / tcp()), seg6()),
    ("mpls-8848", 1, bytes(Ether(type=0x8848) / MPLS(label=16, s=1) / V4 / tcp()), seg4()),
    ("vlan-mpls", 1, bytes(ETH / Dot1Q(vlan=5, type=0x8847) / MPLS(label=9, s=1) / V4 / tcp()), seg4()),
]


@pytest.mark.parametrize(
    ("linktype", "data", "expected"), [c[1:] for c in LINK_CASES], ids=[c[0] for c in LINK_CASES]
)
def test_link_types(linktype: int, data: bytes, expected: Segment) -> None:
    counters: Counter = Counter()
    assert decode(linktype, data, counters) == expected
    assert only(counters) == {"packets_decoded": 1}


def test_every_documented_linktype_is_covered() -> None:
    assert {c[1] for c in LINK_CASES} == set(LINKTYPES)


def test_decode_span_reads_inside_a_larger_buffer() -> None:
    frame = bytes(ETH / V4 / tcp())
    buf = b"\xff" * 11 + frame + bytes(ETH / V6 / tcp())  # bytes after the frame must not leak in
    counters: Counter = Counter()
    seg = decode_span("src", 7, 1, buf, 11, 11 + len(frame), counters)
    assert seg == seg4()
    assert counters["packets_decoded"] == 0  # left to the caller
    v6 = bytes(V6 / tcp())
    assert decode_span("src", 7, 229, b"xx" + v6[:-5] + b"yyyyy", 2, 2 + len(v6) - 5, counters) == seg6(
        PAYLOAD[:-5], len(PAYLOAD)
    )


def test_flags_seq_ack_and_empty_payload() -> None:
    data = bytes(ETH / V4 / tcp(b"", flags="S"))
    assert decode(1, data) == seg4(b"", flags=0x02)
    data = bytes(ETH / V4 / tcp(b"", flags="FA"))
    assert decode(1, data) == seg4(b"", flags=0x11)


def test_tcp_options_honour_data_offset() -> None:
    layer = tcp(options=[("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAckOK", b""), ("Timestamp", (1, 2))])
    data = bytes(ETH / V4 / layer)
    assert decode(1, data) == seg4()
    assert decode(101, bytes(V6 / layer)) == seg6()


def test_ipv4_options_honour_ihl() -> None:
    pkt = IP(src=CLIENT4, dst=SERVER4, options=[IPOption_Router_Alert()]) / tcp()
    assert bytes(pkt)[0] == 0x46
    assert decode(1, bytes(ETH / pkt)) == seg4()
    assert decode(228, bytes(pkt)) == seg4()


def test_link_padding_is_trimmed_to_total_length() -> None:
    counters: Counter = Counter()
    short = bytes(ETH / V4 / tcp(b"hi")) + b"\0" * 4 + b"FCS!"  # Ethernet minimum padding + trailer
    assert decode(1, short, counters) == seg4(b"hi")
    padded_v6 = bytes(ETH / V6 / tcp(b"hi")) + b"junk"
    assert decode(1, padded_v6, counters) == seg6(b"hi")
    vlan_padded = bytes(ETH / Dot1Q(vlan=3) / V4 / tcp(b"")) + b"\0" * 8
    assert decode(1, vlan_padded, counters) == seg4(b"")
    assert only(counters) == {"packets_decoded": 3}


def test_total_length_zero_uses_captured_length() -> None:
    data = bytes(ETH / IP(src=CLIENT4, dst=SERVER4, len=0) / tcp())
    assert struct.unpack_from("!H", data, 16)[0] == 0
    assert decode(1, data) == seg4()
    assert decode(101, bytes(IP(src=CLIENT4, dst=SERVER4, len=0) / tcp())) == seg4()  # general path too
    v6 = bytearray(bytes(V6 / tcp()))
    v6[4:6] = b"\0\0"
    assert decode(229, bytes(v6)) == seg6()


@pytest.mark.parametrize("linktype", [1, 101])
def test_snaplen_truncated_payload(linktype: int) -> None:
    full = bytes(ETH / V4 / tcp()) if linktype == 1 else V4_TCP
    counters: Counter = Counter()
    seg = decode(linktype, full[:-10], counters)
    assert seg == seg4(PAYLOAD[:-10], wire_len=len(PAYLOAD))
    assert only(counters) == {"packets_decoded": 1, "packets_truncated": 1}
    # cut inside the TCP options: no payload captured, base header still decodable
    opts = bytes(ETH / V4 / tcp(options=[("NOP", None)] * 8))
    seg = decode(1, opts[: 14 + 20 + 24], counters)
    assert seg is not None and seg.payload == b"" and seg.wire_len == len(PAYLOAD)


def test_ipv6_truncated_payload() -> None:
    counters: Counter = Counter()
    assert decode(229, V6_TCP[:-3], counters) == seg6(PAYLOAD[:-3], len(PAYLOAD))
    assert counters["packets_truncated"] == 1


IPV6_EXT_CASES = [
    ("hop-by-hop", V6 / IPv6ExtHdrHopByHop() / tcp()),
    ("routing", V6 / IPv6ExtHdrRouting(addresses=["2001:db8::9"]) / tcp()),
    ("dest-opts", V6 / IPv6ExtHdrDestOpt() / tcp()),
    ("ah", V6 / AH(nh=6, payloadlen=4, spi=1, seq=1, icv=b"\0" * 12) / tcp()),  # 24 bytes: (4 + 2) * 4
    ("atomic-fragment", V6 / IPv6ExtHdrFragment(offset=0, m=0, id=9) / tcp()),
    (
        "chain",
        V6
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrRouting()
        / IPv6ExtHdrFragment(id=1)
        / AH(nh=60, payloadlen=2, spi=1, icv=b"\0" * 4)
        / IPv6ExtHdrDestOpt()
        / tcp(),
    ),
]


@pytest.mark.parametrize("pkt", [c[1] for c in IPV6_EXT_CASES], ids=[c[0] for c in IPV6_EXT_CASES])
def test_ipv6_extension_headers(pkt) -> None:
    counters: Counter = Counter()
    assert decode(1, bytes(ETH / pkt), counters) == seg6()
    assert only(counters) == {"packets_decoded": 1}


NOT_DECODED = [
    # (id, linktype, frame, counter)
    ("arp", 1, bytes(ETH / ARP()), "not_ip"),
    ("llc-length", 1, bytes(Ether(type=100)) + b"\xaa" * 100, "not_ip"),
    ("null-af-unknown", 0, struct.pack("<I", 7) + V4_TCP, "not_ip"),
    ("loop-host-order", 108, struct.pack("<I", 2) + V4_TCP, "not_ip"),
    ("sll-arp", 113, bytes(CookedLinux(proto=0x0806)) + b"\0" * 28, "not_ip"),
    ("mpls-ethernet-pw", 1, bytes(ETH / MPLS(s=1) / Ether()) + b"\0" * 40, "not_ip"),
    ("udp", 1, bytes(ETH / V4 / UDP(sport=53, dport=53) / b"x"), "not_tcp"),
    ("icmp", 101, bytes(V4 / ICMP()), "not_tcp"),
    ("udp6", 229, bytes(V6 / UDP()), "not_tcp"),
    ("v6-no-next", 229, bytes(IPv6(src=CLIENT6, dst=SERVER6, nh=59)), "not_tcp"),
    ("v6-hbh-udp", 1, bytes(ETH / V6 / IPv6ExtHdrHopByHop() / UDP()), "not_tcp"),
    ("v4-mf", 1, bytes(ETH / IP(src=CLIENT4, dst=SERVER4, flags="MF") / tcp()), "ip_fragments"),
    ("v4-offset", 1, bytes(ETH / IP(src=CLIENT4, dst=SERVER4, frag=100) / tcp()), "ip_fragments"),
    ("v4-offset-general", 228, bytes(IP(src=CLIENT4, dst=SERVER4, frag=1) / tcp()), "ip_fragments"),
    ("v4-mf-udp", 1, bytes(ETH / IP(src=CLIENT4, dst=SERVER4, flags="MF") / UDP()), "ip_fragments"),
    ("v6-fragment-first", 1, bytes(ETH / V6 / IPv6ExtHdrFragment(offset=0, m=1) / tcp()), "ip_fragments"),
    ("v6-fragment-later", 229, bytes(V6 / IPv6ExtHdrFragment(offset=3, m=0) / tcp()), "ip_fragments"),
    ("unsupported", 147, bytes(ETH / V4 / tcp()), "unsupported_linktype"),
    ("eth-short", 1, b"\x02" * 13, "packets_malformed"),
    ("eth-ip-short", 1, bytes(ETH / V4 / tcp())[:30], "packets_malformed"),
    ("tcp-base-cut", 1, bytes(ETH / V4 / tcp())[: 14 + 20 + 19], "packets_malformed"),
    ("v6-short", 229, V6_TCP[:39], "packets_malformed"),
    ("v6-tcp-cut", 229, V6_TCP[:50], "packets_malformed"),
    ("ihl-too-small", 228, b"\x44" + V4_TCP[1:], "packets_malformed"),
    ("ip-version-mismatch", 1, bytes(ETH / V4 / tcp())[:14] + b"\x65" + V4_TCP[1:], "packets_malformed"),
    ("raw-version-7", 101, b"\x75" + V4_TCP[1:], "packets_malformed"),
    ("v4-totlen-lt-ihl", 228, V4_TCP[:2] + b"\x00\x10" + V4_TCP[4:], "packets_malformed"),
    (
        "v4-totlen-lt-tcp",
        1,
        bytes(ETH / V4 / tcp())[:16] + b"\x00\x1e" + bytes(ETH / V4 / tcp())[18:],
        "packets_malformed",
    ),
    ("tcp-doff-small", 1, bytes(ETH / V4 / tcp(dataofs=4)), "packets_malformed"),
    (
        "tcp-doff-beyond-ip",
        228,
        bytes(IP(src=CLIENT4, dst=SERVER4) / tcp(b"", dataofs=15)),
        "packets_malformed",
    ),
    ("v6-ext-beyond", 229, bytes(V6 / IPv6ExtHdrHopByHop() / tcp())[:44], "packets_malformed"),
    ("mpls-no-bottom", 1, bytes(ETH / MPLS(s=0) / MPLS(s=0)), "packets_malformed"),
    ("vlan-cut", 1, bytes(ETH / Dot1Q())[:16], "packets_malformed"),
    ("null-short", 0, b"\x02\x00", "packets_malformed"),
    ("sll-short", 113, b"\0" * 15, "packets_malformed"),
    ("sll2-short", 276, b"\0" * 19, "packets_malformed"),
    ("raw-empty", 101, b"", "packets_malformed"),
    ("ipv4-empty", 228, b"", "packets_malformed"),
]


@pytest.mark.parametrize(
    ("linktype", "data", "counter"), [c[1:] for c in NOT_DECODED], ids=[c[0] for c in NOT_DECODED]
)
def test_frames_without_a_segment_are_counted(linktype: int, data: bytes, counter: str) -> None:
    counters: Counter = Counter()
    assert decode(linktype, data, counters) is None
    assert only(counters) == {counter: 1}


def test_fast_path_and_general_path_agree() -> None:
    """The specialised one-unpack path (Ethernet, SLL, SLL2 + IPv4/IHL 5) and the general path (raw IPv4,
    or a VLAN tag in front) give the same segments, including short/padded/truncated/malformed ones."""
    packets = [
        bytes(V4 / tcp(b"x" * n, flags=f, options=o))
        for n in (0, 1, 100, 1460)
        for f in ("S", "SA", "PA", "FA", "R")
        for o in ([], [("NOP", None), ("NOP", None), ("Timestamp", (5, 6))])
    ]
    packets += [p + b"\0" * 7 for p in packets[:5]] + [p[:-3] for p in packets[-5:]]
    packets += [V4_TCP[:2] + b"\x00\x1e" + V4_TCP[4:], bytes(IP(src=CLIENT4, dst=SERVER4, len=0) / tcp())]
    for ip in packets:
        general_counters: Counter = Counter()
        general = decode(228, ip, general_counters)
        assert decode(1, bytes(ETH / Dot1Q(vlan=1, type=0x0800)) + ip) == general
        for link in (
            bytes(ETH)[:12] + b"\x08\x00",
            bytes(CookedLinux(proto=0x0800)),
            bytes(CookedLinuxV2(proto=0x0800)),
        ):
            linktype = {14: 1, 16: 113, 20: 276}[len(link)]
            fast_counters: Counter = Counter()
            assert decode(linktype, link + ip, fast_counters) == general
            assert fast_counters == general_counters


def test_ipv6_fast_path_and_general_path_agree() -> None:
    """IPv6 with TCP right after the fixed header is decoded in one unpack on Ethernet, SLL and SLL2; raw
    IPv6 (and anything with extension headers, a VLAN tag, a bad version) takes the general path. Both
    give the same segments and counters, including padded, truncated, jumbogram and malformed packets."""
    packets = [
        bytes(V6 / tcp(b"x" * n, flags=f, options=o))
        for n in (0, 1, 100, 1440)
        for f in ("S", "PA", "FA")
        for o in ([], [("NOP", None), ("NOP", None), ("Timestamp", (5, 6))])
    ]
    packets += [p + b"\0" * 7 for p in packets[:4]] + [p[:-3] for p in packets[-4:]]
    packets += [bytes(V6 / IPv6ExtHdrHopByHop() / tcp()), bytes(V6 / UDP()), bytes(IPv6(plen=0) / tcp())]
    small = bytearray(bytes(V6 / tcp(b"abc")))
    small[4:6] = (8).to_bytes(2, "big")  # payload length shorter than the TCP header: malformed
    bad_version = bytearray(bytes(V6 / tcp()))
    bad_version[0] = 0x40
    packets += [bytes(small), bytes(bad_version)]
    for ip in packets:
        general_counters: Counter = Counter()
        general = decode(229, ip, general_counters)
        assert decode(1, bytes(ETH / Dot1Q(vlan=1, type=0x86DD)) + ip) == general
        for link in (
            bytes(ETH)[:12] + b"\x86\xdd",
            bytes(CookedLinux(proto=0x86DD)),
            bytes(CookedLinuxV2(proto=0x86DD)),
        ):
            linktype = {14: 1, 16: 113, 20: 276}[len(link)]
            fast_counters: Counter = Counter()
            assert decode(linktype, link + ip, fast_counters) == general
            assert fast_counters == general_counters


@settings(max_examples=400, deadline=None)
@given(
    linktype=st.sampled_from(sorted(LINKTYPES) + [147]), data=st.binary(max_size=120), cut=st.integers(0, 200)
)
def test_garbage_never_raises(linktype: int, data: bytes, cut: int) -> None:
    counters: Counter = Counter()
    base = bytes(ETH / V6 / IPv6ExtHdrHopByHop() / tcp())
    for frame in (data, base[:cut] + data, V4_TCP[:cut] + data):
        seg = decode(linktype, frame, counters)
        assert seg is None or (seg.wire_len >= 0 and len(seg.payload) <= len(frame))
    assert sum(counters.values()) >= 3
