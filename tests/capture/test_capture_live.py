"""Live-capture backends (heron_core/capture/live.py) against frames injected with a packet socket.

Loopback packets pass the packet taps twice (sent, then received), so on ``lo`` both backends must see
each frame once and the kernel must not even queue the sent copy (``PACKET_IGNORE_OUTGOING``: it would
take ring space and count as a second kernel drop). On any other interface the sent copy is the
host's own traffic — a local agent's request — and must be captured. That case runs on a veth pair
inside a private network namespace (``unshare -n``), so nothing touches the machine's interfaces.

Needs root (or CAP_NET_RAW); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from heron_core.capture import live
from heron_core.capture.live import AfPacketCapture, open_capture
from heron_core.config import Config

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root or CAP_NET_RAW")

SRC_MAC = bytes.fromhex("024852000a01")
DST_MAC = bytes.fromhex("024852000a02")
BPF = "ether src 02:48:52:00:0a:01"


def _frame(i: int) -> bytes:
    """An Ethernet/IPv4/TCP frame between two 127.x addresses, tagged with ``i`` in its payload.
    Its MACs are not lo's (all zeros), so the kernel's IP layer ignores it."""
    payload = b"heron-live-test %06d" % i
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 20 + len(payload), i & 0xFFFF, 0, 64, 6, 0,
                     bytes([127, 77, 0, 1]), bytes([127, 77, 0, 2]))
    tcp = struct.pack("!HHIIBBHHH", 40000, 8080, 1000 + i * 100, 1, 0x50, 0x18, 65535, 0, 0)
    return DST_MAC + SRC_MAC + b"\x08\x00" + ip + tcp + payload


def _collect(cap, want: int, timeout: float = 5.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < want:
        ready, _, _ = select.select([cap.fileno()], [], [], 0.1)
        if ready:
            got += [bytes(buf[start:end]) for _ts, buf, start, end in cap.read()]
    # a little longer: a duplicate would arrive right behind the original
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        if select.select([cap.fileno()], [], [], 0.1)[0]:
            got += [bytes(buf[start:end]) for _ts, buf, start, end in cap.read()]
    return got


def _ignore_outgoing_set(fd: int) -> bool:
    s = socket.socket(fileno=os.dup(fd))
    try:
        return s.getsockopt(263, 23) == 1  # SOL_PACKET, PACKET_IGNORE_OUTGOING
    finally:
        s.close()


@pytest.mark.parametrize("backend", ["pcapy", "afpacket"])
def test_loopback_frames_are_seen_once(backend):
    if backend == "pcapy":
        pytest.importorskip("pcapy", reason="pcapy-ng (the 'live' extra) is not installed")
    elif shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is needed to compile the BPF filter for AF_PACKET")
    cap = open_capture("lo", BPF, Config(), backend)
    try:
        assert cap.ignores_outgoing and _ignore_outgoing_set(cap.fileno())
        frames = [_frame(i) for i in range(50)]
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as tx:
            tx.bind(("lo", 0))
            for f in frames:
                tx.send(f)
        got = _collect(cap, len(frames))
        assert got == frames  # each once, whole, in order
        assert cap.kernel_drops() == 0
    finally:
        cap.close()


_VETH_CHILD = textwrap.dedent("""
    import json, select, socket, subprocess, sys, time
    sys.path.insert(0, sys.argv[1])
    from heron_core.capture.live import open_capture
    from heron_core.config import Config
    from tests.capture.test_capture_live import BPF, _collect, _frame, _ignore_outgoing_set
    for cmd in (["ip", "link", "add", "hv0", "type", "veth", "peer", "name", "hv1"],
                ["ip", "link", "set", "hv0", "up"], ["ip", "link", "set", "hv1", "up"]):
        subprocess.run(cmd, check=True)
    time.sleep(0.2)
    out = {}
    for backend in sys.argv[2:]:
        cap = open_capture("hv0", BPF, Config(), backend)
        sent = [_frame(i) for i in range(10)]
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as tx:
            tx.bind(("hv0", 0))  # leaves through hv0: an outgoing packet there
            for f in sent:
                tx.send(f)
        got = _collect(cap, len(sent))
        out[backend] = {"same": got == sent, "n": len(got), "ignores": cap.ignores_outgoing,
                        "sockopt": _ignore_outgoing_set(cap.fileno())}
        cap.close()
    print(json.dumps(out))
""")


def test_outgoing_packets_are_kept_off_loopback():
    """On a veth (not loopback) the host's own sent packets are captured, once, by both backends."""
    import json

    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare and ip (iproute2) are needed for a private network namespace")
    backends = ["afpacket"] if shutil.which("tcpdump") else []
    try:
        import pcapy  # noqa: F401

        backends.append("pcapy")
    except ImportError:
        pass
    if not backends:
        pytest.skip("neither pcapy-ng nor tcpdump (for AF_PACKET filters) is available")
    proc = subprocess.run(["unshare", "-n", sys.executable, "-c", _VETH_CHILD, str(ROOT), *backends],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    if proc.returncode != 0 and "veth" in proc.stderr.lower():
        pytest.skip("this kernel has no veth support")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for backend in backends:
        r = result[backend]
        assert r == {"same": True, "n": 10, "ignores": False, "sockopt": False}, (backend, r)


def test_any_interface_skips_only_loopback_outgoing_copies():
    """``-i any`` (cooked) cannot ignore outgoing packets wholesale: only lo's copies are duplicates."""
    cap = AfPacketCapture("any", None, Config())
    try:
        assert not cap.ignores_outgoing
        assert "lo" in cap._skip_outgoing_on
        assert live._loopback_names() == cap._skip_outgoing_on
    finally:
        cap.close()


def test_missing_interface_is_one_reason():
    from heron_core.capture.sources import CaptureError

    with pytest.raises(CaptureError) as err:
        AfPacketCapture("heron-nope0", "tcp", Config())
    assert (err.value.what, err.value.why) == ("-i heron-nope0", "no such interface")
