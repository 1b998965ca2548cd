"""Ground truth: replays TCP delivery over the captured segments and writes one JSONL line per LLM call.

Timestamps follow the engine's reassembly semantics: a byte "arrives" when the in-order stream first
covers it (so a reordered first segment moves ``request_start`` to the packet that completes the
prefix).  Damage/state follow capture-and-http.md §5–§6 (see README.md for the exact model).
"""
from __future__ import annotations

import bisect
from typing import Any, BinaryIO

import orjson

from .faults import FaultLog
from .tcpflow import C2S, S2C, ConnTrace

_NOT_ASSERTED_ON_DAMAGE = ("finish_reason_raw", "tool_calls", "input_tokens", "output_tokens",
                           "cache_read_tokens", "cache_creation_tokens", "cache_creation_1h_tokens",
                           "reasoning_tokens")


class Delivery:
    """In-order delivery timeline of one direction: ``(ts, delivered_upto)`` advances."""

    def __init__(self, trace: ConnTrace, d: int) -> None:
        nxt = 0
        pending: dict[int, int] = {}
        self.ts: list[int] = []
        self.upto: list[int] = []
        for s in trace.segs:
            if s.d != d or not s.length or s.cut:
                continue
            end = s.off + (s.length if s.snap is None else s.snap)
            if s.off > nxt:
                pending[s.off] = max(pending.get(s.off, 0), end)
                continue
            if end <= nxt:
                continue
            nxt = end
            while True:
                grown = False
                for off in [o for o in pending if o <= nxt]:
                    e = pending.pop(off)
                    if e > nxt:
                        nxt, grown = e, True
                if not grown:
                    break
            self.ts.append(s.ts)
            self.upto.append(nxt)
            if s.snap is not None:
                break  # captured part delivered; the missing tail is a gap
        self.final = nxt

    def at(self, off: int) -> int | None:
        """Time at which byte ``off`` was delivered in order (None if never)."""
        i = bisect.bisect_right(self.upto, off)
        return self.ts[i] if i < len(self.ts) else None


def first_packet_with(trace: ConnTrace, d: int, off: int) -> int | None:
    for s in trace.segs:
        if s.d == d and not s.cut and s.off <= off < s.off + (s.length if s.snap is None else s.snap):
            return s.ts
    return None


def _inside_chunk_data(stream: bytes, lo: int, hi: int, hole: tuple[int, int]) -> bool:
    """Whether the hole lies within the data of one chunk of the chunked response ``stream[lo:hi]``:
    the chunk size already read tells the parser how much to skip, so the framing survives the hole."""
    pos = stream.find(b"\r\n\r\n", lo, hi)
    if pos < 0:
        return False
    pos += 4
    while pos < hi:
        eol = stream.find(b"\r\n", pos, hi)
        if eol < 0:
            return False
        size = int(stream[pos:eol].split(b";", 1)[0], 16)
        if size == 0:
            return False
        start = eol + 2
        if start <= hole[0] and hole[1] <= start + size:
            return True
        pos = start + size + 2
    return False


def us_to_s(ts: int | None) -> float | None:
    return None if ts is None else round(ts / 1e6, 6)


def conn_truth(trace: ConnTrace, log: FaultLog, source_id: str | None = None) -> list[dict[str, Any]]:
    """Truth records for every LLM exchange of a connection that made it into the capture."""
    spec = trace.spec
    cdel, sdel = Delivery(trace, C2S), Delivery(trace, S2C)
    captured = [s for s in trace.segs if not s.cut]
    last_ts = captured[-1].ts if captured else None
    out: list[dict[str, Any]] = []
    for rg in trace.ranges:
        api = rg.spec.truth
        if api is None:
            continue
        req_start = cdel.at(rg.req[0])
        if req_start is None:
            continue  # request never reached the capture (cut)
        faults = sorted(log.by_ordinal.get(rg.ordinal, ()))
        rec: dict[str, Any] = {
            "source_id": source_id,
            "client_ip": spec.client_ip, "client_port": spec.client_port,
            "server_ip": spec.server_ip, "server_port": spec.server_port,
            "ordinal": rg.ordinal, "flow_first_ts": us_to_s(trace.first_ts),
        }
        rec.update(api)
        lo, hi = rg.resp
        gap = log.gap_at.get(rg.ordinal)
        damage: list[str] = []
        state = "complete"
        resp_end: int | None
        if gap is not None:
            damage = ["truncated" if "snaplen" in faults else "gap"]
            hole = (gap, log.gap_end.get(rg.ordinal, gap + 1))
            if rg.spec.framing == "length" or _inside_chunk_data(trace.streams[S2C], lo, hi, hole):
                # the parser counts the missing bytes as consumed and the body completes (§5.4)
                resp_end = first_packet_with(trace, S2C, hi - 1)
            else:
                state = "aborted"
                resp_end = sdel.at(gap - 1) if gap > lo else None
        elif rg.spec.no_response:
            state, resp_end = "no_response", rg.close_ts
        elif rg.spec.abort:
            state, resp_end = "aborted", rg.close_ts
            if lo < hi and sdel.at(lo) is not None and sdel.at(hi - 1) is not None \
                    and rg.sent_chunks == len(rg.spec.response_chunks):
                state, resp_end = "complete", sdel.at(hi - 1)
        else:
            resp_end = sdel.at(hi - 1) if hi > lo else None
        head_end = trace.streams[S2C].find(b"\r\n\r\n", lo, hi) if hi > lo else -1
        # Status, framing and media type are known once the response head is complete (§9
        # response_start); a response cut inside its head is aborted with none of them.
        head_done = head_end >= 0 and sdel.at(head_end + 3) is not None
        if state == "complete" and gap is None and (hi <= lo or resp_end is None):
            # cut capture: the response never completed before the file ended (expiry at last packet)
            state = "no_response" if sdel.at(lo) is None else "aborted"
            resp_end = last_ts
            faults = sorted(set(faults) | {"capture_cut"})
        if last_ts is not None and resp_end is not None and resp_end > last_ts:
            resp_end = last_ts  # the closing packet fell after the capture cut: flow expires at its last packet
            faults = sorted(set(faults) | {"capture_cut"})
        if state == "aborted" and (hi <= lo or sdel.at(lo) is None):
            state = "no_response"  # cut before any response byte reached the capture (§9)
        if state in ("aborted", "no_response"):
            rec["finish"] = "aborted"
            for k in _NOT_ASSERTED_ON_DAMAGE:
                rec[k] = None
            if state == "no_response" or not head_done:
                rec["status_code"] = None
                rec["model"] = None
                rec["is_stream"] = False  # no (complete) response head, nothing streamed (§6.5)
        elif damage:
            for k in _NOT_ASSERTED_ON_DAMAGE:
                rec[k] = None
            rec["finish"] = None
        rec["request_start"] = us_to_s(req_start)
        rec["response_end"] = us_to_s(resp_end)
        rec["state"] = state
        rec["damaged"] = bool(damage)
        rec["damage"] = damage
        rec["faults"] = faults
        rec["asserted"] = state == "complete" and not damage
        out.append(rec)
    return out


class TruthWriter:
    """Appends truth records as JSONL (sorted keys, so files are byte-deterministic)."""

    def __init__(self, path: str | None) -> None:
        self._f: BinaryIO | None = open(path, "wb") if path else None
        self.count = 0

    def write(self, rec: dict[str, Any]) -> None:
        self.count += 1
        if self._f is not None:
            self._f.write(orjson.dumps(rec, option=orjson.OPT_SORT_KEYS) + b"\n")

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
