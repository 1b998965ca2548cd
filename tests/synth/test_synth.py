"""Tests of the capture synthesizer itself (testdata/synth): readable, deterministic, truthful."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import brotli
import dpkt
import pytest
import zstandard

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from testdata.synth.__main__ import main as synth_main  # noqa: E402

TSHARK = shutil.which("tshark")


def _run(tmp: Path, *args: str) -> None:
    assert synth_main(list(args)) == 0


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _truth(p: Path) -> list[dict]:
    return [json.loads(line) for line in p.read_text().splitlines()]


_POSTS: dict[str, int] = {}


def _read_ok(pcap: Path, allow_cut: bool = False) -> int:
    """Number of packets; tshark when available (stderr must be clean), else dpkt."""
    if TSHARK:
        r = subprocess.run([TSHARK, "-r", str(pcap), "-T", "fields", "-E", "separator=|", "-e", "frame.number",
                            "-e", "http.request.method"], capture_output=True, text=True)
        err = [ln for ln in r.stderr.splitlines() if ln.strip() and "Running as user" not in ln]
        if allow_cut:
            assert all("cut short in the middle of a packet" in ln for ln in err), err
        else:
            assert r.returncode == 0 and not err, err
        lines = r.stdout.splitlines()
        _POSTS[str(pcap)] = sum(ln.split("|")[1].split(",").count("POST") for ln in lines if "|" in ln)
        return len(lines)
    with open(pcap, "rb") as f:
        rd = dpkt.pcapng.Reader(f) if pcap.suffix == ".pcapng" else dpkt.pcap.Reader(f)
        n = 0
        try:
            for _ in rd:
                n += 1
        except dpkt.NeedData:
            assert allow_cut
        return n


def _tshark_posts(pcap: Path) -> int:
    """POST requests tshark saw (from the pass made by :func:`_read_ok`)."""
    if str(pcap) not in _POSTS:
        _read_ok(pcap)
    return _POSTS[str(pcap)]


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth")


@pytest.mark.parametrize("name,ext", [("clean_mix", ".pcap"), ("faults_mix", ".pcap"),
                                      ("agent_sessions", ".pcapng")])
def test_scenario_readable_and_deterministic(outdir: Path, name: str, ext: str) -> None:
    (outdir / "a").mkdir(exist_ok=True)
    (outdir / "b").mkdir(exist_ok=True)
    a, b = outdir / "a" / f"{name}{ext}", outdir / "b" / f"{name}{ext}"  # same stem → same source_id
    for p in (a, b):
        _run(outdir, "scenario", name, "-o", str(p), "--truth", str(p) + ".truth.jsonl", "--seed", "7")
    assert _sha(a) == _sha(b)
    assert _sha(Path(str(a) + ".truth.jsonl")) == _sha(Path(str(b) + ".truth.jsonl"))
    n = _read_ok(a, allow_cut=name == "faults_mix")
    assert n > 500
    truth = _truth(Path(str(a) + ".truth.jsonl"))
    assert len(truth) >= (40 if name == "agent_sessions" else 150)
    if TSHARK and name != "faults_mix":
        assert _tshark_posts(a) == len(truth)
    c = outdir / f"{name}-c{ext}"
    _run(outdir, "scenario", name, "-o", str(c), "--seed", "8")
    assert _sha(c) != _sha(a)


def test_capture_cut_truncates_last_record(outdir: Path) -> None:
    p = outdir / "cut.pcap"
    _run(outdir, "scenario", "faults_mix", "-o", str(p), "--seed", "3")
    data = p.read_bytes()
    pos, last_incl, last_start = 24, 0, 24
    while pos + 16 <= len(data):
        _, _, incl, orig = struct.unpack_from("<IIII", data, pos)
        last_start, last_incl = pos, incl
        pos += 16 + incl
    assert pos > len(data), "last record should extend past the end of the file"
    assert len(data) - last_start - 16 < last_incl


def test_faults_truth_states(outdir: Path) -> None:
    p = outdir / "f.pcap"
    _run(outdir, "scenario", "faults_mix", "-o", str(p), "--truth", str(p) + ".t", "--seed", "5")
    truth = _truth(Path(str(p) + ".t"))
    states = {r["state"] for r in truth}
    assert {"complete", "aborted"} <= states
    assert any(r["damaged"] for r in truth)
    faults = {f for r in truth for f in r["faults"]}
    assert {"reorder", "retransmit", "rst"} <= faults
    for r in truth:
        if r["state"] != "complete":
            assert r["finish"] == "aborted" and not r["asserted"]


def test_linktypes_and_formats(outdir: Path) -> None:
    p = outdir / "lt.pcap"
    _run(outdir, "scenario", "linktypes", "-o", str(p), "--truth", str(outdir / "lt.truth.jsonl"), "--seed", "2")
    for kind in ("ethernet", "vlan", "qinq", "mpls", "sll", "sll2", "null", "raw"):
        f = outdir / f"lt-{kind}.pcap"
        assert _read_ok(f) > 50
        if TSHARK:
            assert _tshark_posts(f) == len(_truth(outdir / f"lt-{kind}.truth.jsonl")), kind
    for fmt_args, name in ((["--ns"], "ns.pcap"), ([], "ng.pcapng"), (["--ns"], "ngns.pcapng")):
        q = outdir / name
        _run(outdir, "scenario", "clean_mix", "-o", str(q), "--calls", "20", *fmt_args)
        assert _read_ok(q) > 50
    assert (outdir / "ns.pcap").read_bytes()[:4] == struct.pack("<I", 0xA1B23C4D)


def test_scale_small(outdir: Path) -> None:
    p = outdir / "big.pcap"
    _run(outdir, "scale", "-o", str(p), "--truth", str(p) + ".t", "--mb", "3")
    assert p.stat().st_size >= 3_000_000
    assert _read_ok(p) > 1000
    truth = _truth(Path(str(p) + ".t"))
    assert len(truth) > 10
    flows, exact = _streams(p), 0
    for r in truth:  # instances are re-timed/re-addressed templates: truth must still match the bytes
        fl = flows[(r["client_ip"], r["client_port"], r["server_ip"], r["server_port"])]
        try:
            req, resp = _messages(fl[0])[r["ordinal"]], _messages(fl[1])[r["ordinal"]]
        except (ValueError, IndexError, StopIteration):
            continue  # last instances may still be in flight when the size target is reached
        assert req[0] == pytest.approx(r["request_start"], abs=1e-6)
        assert resp[1] == pytest.approx(r["response_end"], abs=1e-6)
        for c in r["tool_calls"]:
            assert c["id"] is None or c["id"].encode() in resp[3]
        exact += 1
    assert exact >= len(truth) * 0.8


# --- independent check of the truth against the bytes (clean capture, dpkt reassembly) --------------

def _streams(pcap: Path) -> dict[tuple, dict[int, list[tuple[int, float, bytes]]]]:
    """(client ip, client port, server ip, server port) -> {0: c2s segments, 1: s2c segments}."""
    flows: dict[tuple, dict[int, list]] = {}
    with open(pcap, "rb") as f:
        for ts, buf in dpkt.pcap.Reader(f):
            ip = dpkt.ethernet.Ethernet(buf).data
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP):
                continue
            src = (dpkt.utils.inet_to_str(ip.src), tcp.sport)
            dst = (dpkt.utils.inet_to_str(ip.dst), tcp.dport)
            if tcp.flags & dpkt.tcp.TH_SYN and not tcp.flags & dpkt.tcp.TH_ACK:
                flows[src + dst] = {0: [], 1: [], "isn": {0: tcp.seq + 1}}
            key, d = (src + dst, 0) if src + dst in flows else (dst + src, 1)
            fl = flows.get(key)
            if fl is None:
                continue
            if d == 1 and tcp.flags & dpkt.tcp.TH_SYN:
                fl["isn"][1] = tcp.seq + 1
            if tcp.data:
                fl[d].append(((tcp.seq - fl["isn"][d]) % 2**32, ts, bytes(tcp.data)))
    return flows


def _messages(segs: list[tuple[int, float, bytes]]) -> list[tuple[float, float, bytes, bytes]]:
    """Split an in-order stream into HTTP messages: (first-byte ts, last-byte ts, head, decoded body)."""
    data = b"".join(s[2] for s in segs)
    ts_at = []
    for off, ts, p in segs:
        ts_at.append((off, off + len(p), ts))

    def when(o: int) -> float:
        return next(t for a, b, t in ts_at if a <= o < b)

    out, pos = [], 0
    while pos < len(data):
        he = data.index(b"\r\n\r\n", pos) + 4
        head = data[pos:he]
        hd = {k.strip().lower(): v.strip() for k, v in
              (ln.split(b":", 1) for ln in head.split(b"\r\n")[1:] if b":" in ln)}
        if hd.get(b"transfer-encoding") == b"chunked":
            body, p = b"", he
            while True:
                le = data.index(b"\r\n", p)
                n = int(data[p:le], 16)
                body += data[le + 2:le + 2 + n]
                p = le + 2 + n + 2
                if n == 0:
                    break
            end = p
        else:
            n = int(hd.get(b"content-length", b"0"))
            body, end = data[he:he + n], he + n
        enc = hd.get(b"content-encoding")
        if enc == b"gzip":
            body = gzip.decompress(body)
        elif enc == b"br":
            body = brotli.decompress(body)
        elif enc == b"zstd":
            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        out.append((when(pos), when(end - 1), head, body))
        pos = end
    return out


def test_truth_matches_bytes(outdir: Path) -> None:
    p = outdir / "exact.pcap"
    _run(outdir, "scenario", "clean_mix", "-o", str(p), "--truth", str(p) + ".t", "--seed", "11")
    flows = _streams(p)
    checked = 0
    for r in _truth(Path(str(p) + ".t")):
        fl = flows[(r["client_ip"], r["client_port"], r["server_ip"], r["server_port"])]
        reqs, resps = _messages(fl[0]), _messages(fl[1])
        req, resp = reqs[r["ordinal"]], resps[r["ordinal"]]
        assert req[0] == pytest.approx(r["request_start"], abs=1e-6)
        assert resp[1] == pytest.approx(r["response_end"], abs=1e-6)
        assert int(resp[2].split(b" ")[1]) == r["status_code"]
        assert req[2].split(b" ")[1].split(b"?")[0].decode() == r["path"]
        if r["wire_api"] != "gemini":
            assert json.loads(req[3])["model"] == r["model_requested"]
        if r["is_stream"] and r["status_code"] == 200 and r["wire_api"] != "gemini":
            assert len(resp[3].splitlines()) >= 2
        if not r["is_stream"] and r["status_code"] == 200:
            json.loads(resp[3])
        checked += 1
    assert checked >= 150
