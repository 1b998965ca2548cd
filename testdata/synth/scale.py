"""Fast large-capture generator (``python -m testdata.synth scale --mb 250``).

Rendering JSON/SSE and packetizing is the slow part, so a few dozen connection *templates* are rendered
once; each instance then only gets new addresses/ports/ISNs/start time and a fixed-length instance tag
patched into the uncompressed bytes (tool-call ids and the first prompt), which keeps every
Content-Length and chunk size valid.  Instances overlap (``concurrency``) and are merged by timestamp
with a heap, streaming straight to the writer, so memory stays flat whatever the size.
"""
from __future__ import annotations

import heapq
import ipaddress
import os
import random
from dataclasses import dataclass
from typing import Any

import orjson

from .apis import WIRE_APIS, Msg
from .calls import llm_exchange, other_exchange
from .capture import WriteOptions
from .frames import FrameEncoder
from .mix import SERVERS, random_plan
from .pcapio import CaptureWriter
from .scenarios import BASE_US, Result
from .tcpflow import ACK, C2S, ConnSpec, packetize
from .faults import FaultLog
from .truth import TruthWriter, conn_truth

PH = b"QZQZQZQZQZQZ"  # instance-tag placeholder, 12 bytes
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"

HISTORY_CHUNK = ("def handle(self, request):\n    # read the request body and dispatch to the right handler\n"
                 "    body = request.read()\n    return self.router.dispatch(request.path, body)\n") * 6


@dataclass
class Template:
    segs: list[tuple[int, int, int, int, int, int]]  # rel_ts, dir, off, len, ack, flags
    streams: tuple[bytes, bytes]
    patch: tuple[bool, bool]
    truth: list[dict[str, Any]]
    duration: int
    server_ip: str
    server_port: int
    v6: bool


def _tag(i: int) -> bytes:
    s = ""
    while i:
        i, r = divmod(i, 36)
        s = _B36[r] + s
    return s.rjust(12, "0").encode()


def _shift(rel_s: float | None, t0_us: int) -> float | None:
    """Template-relative seconds (exact µs) + instance start → epoch seconds, computed on integers."""
    return None if rel_s is None else round((round(rel_s * 1e6) + t0_us) / 1e6, 6)


def build_templates(rng: random.Random, n: int = 48) -> list[Template]:
    out: list[Template] = []
    for k in range(n):
        api = WIRE_APIS[k % len(WIRE_APIS)]
        ip4, ip6, port, host = SERVERS[api]
        v6 = k % 5 == 4
        exchanges = []
        if k % 9 == 0:
            exchanges.append(other_exchange("health", host, rng))
        for j in range(rng.choice([1, 2, 3])):
            plan = random_plan(api, rng)
            hist = rng.randint(0, 120)  # agent-like requests resend long histories
            plan.messages = [Msg("user", f"Context (ref {PH.decode()}):\n" + HISTORY_CHUNK * hist)] + plan.messages
            for c in plan.tool_calls:
                if c.id and plan.resp_encoding is None:  # compressed bytes cannot be patched
                    c.id = c.id[:-12] + PH.decode()
            exchanges.append(llm_exchange(plan, rng, think_s=rng.uniform(0.01, 1.0)))
        loop = api == "ollama"
        spec = ConnSpec("127.0.0.1" if loop else ("2001:db8::1" if v6 else "10.0.0.1"), 40000,
                        (ip6 if v6 else ip4), port, exchanges, 0,
                        rtt_us=rng.randint(40, 200) if loop else rng.randint(5_000, 40_000),
                        mss_client=65483 if loop else 1440 if v6 else 1460,
                        mss_server=65483 if loop else 1440 if v6 else 1460, isn_c=0, isn_s=0)
        tr = packetize(spec, rng)
        truth = conn_truth(tr, FaultLog(), None)
        segs = [(s.ts, s.d, s.off, s.length, s.ack, s.flags) for s in tr.segs]
        out.append(Template(segs, tr.streams, (PH in tr.streams[0], PH in tr.streams[1]), truth,
                            tr.segs[-1].ts, spec.server_ip, spec.server_port, v6))
    return out


def scale(seed: int, out: str, truth_path: str | None, opts: WriteOptions, *, mb: float = 250.0,
          concurrency: int = 64) -> Result:
    """Write at least ``mb`` megabytes of interleaved template instances."""
    rng = random.Random(f"scale:{seed}")
    templates = build_templates(rng)
    mean_dur = sum(t.duration for t in templates) // len(templates)
    spacing = max(1, mean_dur // concurrency)
    target = int(mb * 1e6)
    w = CaptureWriter(out, opts.link.linktype, fmt=opts.fmt, nanosecond=opts.nanosecond, buffer_bytes=16 << 20)
    tw = TruthWriter(truth_path)
    heap: list[tuple[int, int, int]] = []  # (abs ts, instance, seg index)
    live: dict[int, tuple[Template, int, Any, Any, tuple[bytes, bytes], int, int]] = {}
    next_start = BASE_US
    inst = 0
    ck = opts.tcp_checksum
    source_id = os.path.splitext(os.path.basename(out))[0]
    link = opts.link

    def start(i: int, t0: int) -> None:
        tp = templates[rng.randrange(len(templates))]
        loop = tp.server_ip in ("127.0.0.1", "::1")
        cport = 1024 + i % 64000
        n = i // 64000
        if loop:
            cip = "::1" if tp.v6 else "127.0.0.1"
        elif tp.v6:
            cip = ipaddress.ip_address(f"2001:db8:{(n >> 16) & 0xFFFF:x}:{n & 0xFFFF:x}::{(i % 64000) // 4096 + 2:x}"
                                       ).compressed  # canonical text form, as readers print it
        else:
            cip = f"10.{(n >> 8) & 255}.{n & 255}.{(i % 64000) // 4096 + 2}"
        if loop:
            cport = 1024 + i % 64000  # loopback: port alone must be unique per live window
        isn_c, isn_s = rng.getrandbits(32), rng.getrandbits(32)
        tag = _tag(i)
        streams = tuple(s.replace(PH, tag) if p else s for s, p in zip(tp.streams, tp.patch))
        ec = FrameEncoder(link, cip, tp.server_ip, cport, tp.server_port, True, tcp_checksum=ck)
        es = FrameEncoder(link, tp.server_ip, cip, tp.server_port, cport, False, tcp_checksum=ck)
        live[i] = (tp, t0, ec, es, streams, isn_c, isn_s)  # type: ignore[assignment]
        heapq.heappush(heap, (t0 + tp.segs[0][0], i, 0))
        for rec in tp.truth:
            r = dict(rec)
            r.update(source_id=source_id, client_ip=cip, client_port=cport, flow_first_ts=round((t0 + tp.segs[0][0]) / 1e6, 6),
                     request_start=_shift(rec["request_start"], t0), response_end=_shift(rec["response_end"], t0))
            if tp.patch[1]:
                r = orjson.loads(orjson.dumps(r).replace(PH, tag))
            tw.write(r)

    while w.bytes_written < target or heap:
        while w.bytes_written < target and (not heap or heap[0][0] >= next_start):
            start(inst, next_start)
            inst += 1
            next_start += rng.randint(spacing // 2, spacing * 3 // 2 + 1)
        if not heap:
            continue
        ts, i, k = heapq.heappop(heap)
        tp, t0, ec, es, streams, isn_c, isn_s = live[i]
        _, d, off, length, ack, flags = tp.segs[k]
        if d == C2S:
            enc, isn, peer = ec, isn_c, isn_s
        else:
            enc, isn, peer = es, isn_s, isn_c
        seq = isn + 1 + off if off >= 0 else isn
        a = peer + 1 + ack if flags & ACK else 0
        w.write(ts, enc.encode(seq, a, flags, streams[d][off:off + length] if length else b"", ts))
        k += 1
        if k < len(tp.segs):
            heapq.heappush(heap, (t0 + tp.segs[k][0], i, k))
        else:
            del live[i]
    w.close()
    tw.close()
    return Result(out, truth_path, w.packets, w.bytes_written, tw.count, inst)
