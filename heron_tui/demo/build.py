"""Rebuild ``demo.pcap``, the capture ``heron-tui --demo`` opens (a developer tool, not imported at run time).

The demo should look like a real workstation: coding agents in sessions (Claude Code, Codex, a generic
tool agent), plain SDK traffic with errors, refusals and every wire API, and a client retrying into
429/5xx answers (so the Insights view has retry storms). The synthesizer makes the first two as their
own files; the third is ``testdata/captures/errors_retries.pcap`` (SDK clients against the mock server),
shifted in time to start ``RETRY_OFFSET_S`` into the synthetic traffic. Everything is merged by timestamp
into one classic pcap, so it interleaves like concurrent traffic (the synthetic scenarios use 10.x
clients, the recorded one loopback: no 4-tuple can collide). Kept under 1 MB so the wheel stays small.

    python -m heron_tui.demo.build            # writes heron_tui/demo/demo.pcap
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tempfile
from pathlib import Path

_GLOBAL = struct.Struct("<IHHiIII")
_REC = struct.Struct("<IIII")


def read_records(path: Path) -> tuple[bytes, list[tuple[int, bytes]]]:
    """The global header and ``(ts_us, record bytes)`` of a little-endian µs classic pcap."""
    data = path.read_bytes()
    header = data[: _GLOBAL.size]
    if _GLOBAL.unpack(header)[0] != 0xA1B2C3D4:
        raise ValueError(f"{path}: expected a little-endian microsecond pcap")
    out = []
    pos = _GLOBAL.size
    while pos + _REC.size <= len(data):
        sec, usec, caplen, _ = _REC.unpack_from(data, pos)
        end = pos + _REC.size + caplen
        out.append((sec * 1_000_000 + usec, data[pos:end]))
        pos = end
    return header, out


RETRY_OFFSET_S = 20


def shifted(rec: bytes, delta_us: int) -> tuple[int, bytes]:
    """A record moved in time by ``delta_us`` (its header rewritten)."""
    sec, usec, caplen, orig = _REC.unpack_from(rec, 0)
    ts = sec * 1_000_000 + usec + delta_us
    return ts, _REC.pack(ts // 1_000_000, ts % 1_000_000, caplen, orig) + rec[_REC.size:]


def merge(inputs: list[Path], out: Path, starts_at: dict[Path, float] | None = None) -> int:
    """Merge classic pcaps by timestamp (stable: ties keep input order); returns the packet count.
    ``starts_at`` moves a file so that its first packet is that many seconds after the first input's."""
    header = None
    records: list[tuple[int, int, int, bytes]] = []
    base = None
    for n, path in enumerate(inputs):
        h, recs = read_records(path)
        header = header or h
        base = recs[0][0] if base is None and recs else base
        if starts_at and path in starts_at and recs and base is not None:
            delta = base + int(starts_at[path] * 1e6) - recs[0][0]
            recs = [shifted(rec, delta) for _, rec in recs]
        records.extend((ts, n, i, rec) for i, (ts, rec) in enumerate(recs))
    records.sort(key=lambda r: (r[0], r[1], r[2]))
    with open(out, "wb") as f:
        f.write(header or b"")
        f.writelines(rec for *_, rec in records)
    return len(records)


def main() -> None:
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for name, seed, calls in (("agent_sessions", 7, None), ("clean_mix", 11, 60)):
            p = Path(tmp) / f"{name}.pcap"
            cmd = [sys.executable, "-m", "testdata.synth", "scenario", name, "-o", str(p), "--seed", str(seed)]
            if calls:
                cmd += ["--calls", str(calls)]
            subprocess.run(cmd, check=True, cwd=here.parent.parent)
            parts.append(p)
        retries = here.parent.parent / "testdata" / "captures" / "errors_retries.pcap"
        n = merge(parts + [retries], here / "demo.pcap", {retries: RETRY_OFFSET_S})
    size = (here / "demo.pcap").stat().st_size
    print(f"wrote {here / 'demo.pcap'}: {n} packets, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
