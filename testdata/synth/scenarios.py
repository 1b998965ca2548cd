"""Named scenarios: ``clean_mix``, ``faults_mix``, ``linktypes`` (and ``agent_sessions`` via agents.py).

A scenario is a list of :class:`ConnSpec` built from one seeded RNG, then packetized, faulted, written and
turned into truth.  Everything is derived from ``seed`` so the same seed gives byte-identical files.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

from .calls import llm_exchange, other_exchange
from .capture import WriteOptions, choose_cut, mark_cut, merged, write_capture
from .faults import FaultConfig, FaultLog, apply_benign, apply_gap
from .frames import LinkSpec
from .mix import SERVERS, random_plan
from .tcpflow import ConnSpec, ConnTrace, packetize
from .truth import TruthWriter, conn_truth

BASE_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z

API_WEIGHTS = {"anthropic": 26, "openai-chat": 22, "openai-responses": 16, "gemini": 14, "ollama": 12,
               "openai-completions": 10}

FAULTS_MIX = FaultConfig(reorder=0.03, retransmit=0.03, dup_capture=0.01, drop=0.10, snaplen=0.06, rst=0.08,
                         no_response=0.04, tiny=0.05, capture_cut=True)


@dataclass
class Result:
    """What a scenario run produced (for the CLI summary and the tests)."""

    pcap: str
    truth: str | None
    packets: int
    bytes: int
    calls: int
    connections: int
    extra_files: list[str] = field(default_factory=list)


def client_addr(rng: random.Random, v6: bool, loopback: bool, i: int) -> str:
    if loopback:
        return "::1" if v6 else "127.0.0.1"
    if v6:
        return f"2001:db8:10::{(i % 250) + 2:x}"
    return f"10.1.{(i // 250) % 250}.{(i % 250) + 2}"


def build_mix_conns(rng: random.Random, n_calls: int, *, faults: FaultConfig | None = None,
                    v6_share: float = 0.25, spread_s: float = 90.0) -> list[ConnSpec]:
    """Connections carrying ~``n_calls`` LLM calls of all six APIs plus some non-LLM exchanges."""
    conns: list[ConnSpec] = []
    apis = list(API_WEIGHTS)
    made = 0
    port = 40000 + rng.randrange(2000)
    i = 0
    while made < n_calls:
        api = apis[i % len(apis)] if i < len(apis) else rng.choices(apis, list(API_WEIGHTS.values()))[0]
        ip4, ip6, sport, host = SERVERS[api]
        v6 = rng.random() < v6_share
        loop = api == "ollama"
        n_ex = min(rng.choice([1, 1, 2, 3, 4, 6]), n_calls - made)
        pipelined = n_ex > 1 and rng.random() < 0.08
        exchanges = []
        if rng.random() < 0.1:
            exchanges.append(other_exchange(rng.choice(["health", "models"]), host, rng))
        for k in range(n_ex):
            plan = random_plan(api, rng, stream=False if pipelined else None)
            exchanges.append(llm_exchange(plan, rng, think_s=rng.uniform(0.001, 0.2) if k == 0
                                          else rng.uniform(0.05, 3.0)))
            made += 1
        port += rng.randint(1, 7)
        conn = ConnSpec(client_ip=client_addr(rng, v6, loop, i), client_port=port,
                        server_ip=ip6 if v6 else ip4, server_port=sport, exchanges=exchanges,
                        start_us=BASE_US + int(rng.uniform(0, spread_s) * 1e6),
                        rtt_us=rng.randint(40, 200) if loop else rng.randint(5_000, 60_000),
                        mss_client=65483 if loop else 1460 - (20 if v6 else 0),
                        mss_server=65483 if loop else 1460 - (20 if v6 else 0),
                        pipelined=pipelined, close=rng.choice(["client_fin", "client_fin", "server_fin", "rst",
                                                              "none"]),
                        isn_c=rng.getrandbits(32), isn_s=rng.getrandbits(32))
        conns.append(conn)
        i += 1
    if faults:
        for c in conns:
            _plan_conn_faults(c, faults, rng)
    return conns


def _plan_conn_faults(c: ConnSpec, f: FaultConfig, rng: random.Random) -> None:
    """Spec-level faults: RST mid-stream, no response, 1-byte segments, and gap hosting (close=none)."""
    for ex in c.exchanges:
        if rng.random() < f.tiny and not c.pipelined:
            ex.tiny_prefix = rng.randint(40, 300)
    roll = rng.random()
    llm = [k for k, ex in enumerate(c.exchanges) if ex.truth and (ex.truth.get("status_code") or 0) < 400]
    if not llm or c.pipelined:
        return
    if roll < f.rst:
        k = rng.choice(llm)
        ex = c.exchanges[k]
        if len(ex.response_chunks) >= 2:
            ex.abort = (rng.choice(["client", "server"]), rng.randint(1, len(ex.response_chunks) - 1))
            del c.exchanges[k + 1:]
            ex.truth = dict(ex.truth, fault_plan="rst")
    elif roll < f.rst + f.no_response:
        ex = c.exchanges[llm[-1]]
        ex.no_response = True
        del c.exchanges[llm[-1] + 1:]
        ex.truth = dict(ex.truth, fault_plan="no_response")
    elif roll < f.rst + f.no_response + f.drop + f.snaplen:
        last = c.exchanges[-1]
        if last.truth and (last.truth.get("status_code") or 0) < 400:
            c.close = "none"
            last.truth = dict(last.truth, fault_plan="drop" if roll < f.rst + f.no_response + f.drop else "snaplen")


def run_conns(conns: list[ConnSpec], rng: random.Random, out: str, truth_path: str | None, opts: WriteOptions,
              faults: FaultConfig | None = None, source_id: str | None = None) -> Result:
    """Packetize, fault, write the capture and the truth for a list of connections."""
    traces: list[ConnTrace] = []
    logs: list[FaultLog] = []
    for c in conns:
        tr = packetize(c, rng)
        log = FaultLog()
        if faults:
            apply_benign(tr, faults, rng, log)
            plan = tr.ranges[-1].spec.truth.get("fault_plan") if tr.ranges and tr.ranges[-1].spec.truth else None
            if plan in ("drop", "snaplen") and not apply_gap(tr, plan, rng, log):
                pass
            for rg in tr.ranges:
                if rg.spec.abort:
                    log.add(rg.ordinal, "rst")
                if rg.spec.no_response:
                    log.add(rg.ordinal, "no_response")
                if rg.spec.tiny_prefix:
                    log.add(rg.ordinal, "tiny_segments")
        traces.append(tr)
        logs.append(log)
    return write_run(traces, logs, rng, out, truth_path, opts, faults, source_id, len(conns))


def write_run(traces: list[ConnTrace], logs: list[FaultLog], rng: random.Random, out: str, truth_path: str | None,
              opts: WriteOptions, faults: FaultConfig | None = None, source_id: str | None = None,
              n_conns: int | None = None) -> Result:
    """Merge, optionally cut, write the capture, then compute and write the truth."""
    conns = [t.spec for t in traces]
    order = merged(traces)
    cut = None
    if faults and faults.capture_cut:
        cut = choose_cut(order, rng)
        mark_cut(order, cut)
    w = write_capture(out, traces, opts, order, cut)
    sid = source_id or os.path.splitext(os.path.basename(out))[0]
    tw = TruthWriter(truth_path)
    recs = []
    for tr, log in zip(traces, logs):
        recs += conn_truth(tr, log, sid)
    recs.sort(key=lambda r: (r["request_start"], r["client_port"], r["ordinal"]))
    for r in recs:
        r.pop("fault_plan", None)
        tw.write(r)
    tw.close()
    return Result(out, truth_path, w.packets, w.bytes_written, tw.count, len(conns))


def clean_mix(seed: int, out: str, truth: str | None, opts: WriteOptions, n_calls: int = 200) -> Result:
    rng = random.Random(f"clean_mix:{seed}")
    return run_conns(build_mix_conns(rng, n_calls), rng, out, truth, opts)


def faults_mix(seed: int, out: str, truth: str | None, opts: WriteOptions, n_calls: int = 200,
               faults: FaultConfig = FAULTS_MIX) -> Result:
    rng = random.Random(f"faults_mix:{seed}")
    return run_conns(build_mix_conns(rng, n_calls, faults=faults), rng, out, truth, opts, faults)


def linktypes(seed: int, out: str, truth: str | None, opts: WriteOptions, n_calls: int = 24,
              kinds: tuple[str, ...] = ("ethernet", "vlan", "qinq", "mpls", "sll", "sll2", "null", "raw")
              ) -> Result:
    """One small mixed capture per link-layer variant: ``<out stem>-<kind><ext>`` (+ truth alongside)."""
    stem, ext = os.path.splitext(out)
    files: list[str] = []
    total = Result(out, truth, 0, 0, 0, 0)
    for kind in kinds:
        rng = random.Random(f"linktypes:{seed}:{kind}")
        p = f"{stem}-{kind}{ext or '.pcap'}"
        tp = None
        if truth:
            tstem = truth[:-len(".truth.jsonl")] if truth.endswith(".truth.jsonl") else os.path.splitext(truth)[0]
            tp = f"{tstem}-{kind}.truth.jsonl"
        o = WriteOptions(LinkSpec.named(kind), opts.fmt, opts.nanosecond, opts.tcp_checksum)
        r = run_conns(build_mix_conns(rng, n_calls, v6_share=0.4, spread_s=10), rng, p, tp, o)
        files += [p] + ([tp] if tp else [])
        total.packets += r.packets
        total.bytes += r.bytes
        total.calls += r.calls
        total.connections += r.connections
    total.extra_files = files
    return total
