"""Builders for assembler tests: hand-made calls (as the decode worker and agent classification leave
them) and a feeder that plays them to an ``Assembler`` in event time, with any watermark spacing and
any arrival order that respects the watermark contract (a record arrives before the watermark passes
the time it completed)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from heron_core import ids
from heron_core.assemble import Assembler
from heron_core.config import Config
from heron_core.messages import CallStarted, ExchangeFinished
from heron_core.records import Call, EndOfSource, Exchange, Process, ToolCall, ToolResult, Watermark
from heron_core.store.db import open_store
from heron_core.store.writer import StoreWriter

T0 = 1_700_000_000.0
SRC = "cap"


def us(t: float) -> int:
    return round(t * 1_000_000)


def sid(native: str, kind: str = "claude-cli", source: str = SRC) -> str:
    return ids.session_id(source, kind, native)


def tc(tid: str, name: str, **args: Any) -> ToolCall:
    return ToolCall(tid, name, args)


def tr(tid: str, text: str = "done", error: bool = False, nbytes: int | None = None) -> ToolResult:
    return ToolResult(tid, text, error, len(text) if nbytes is None else nbytes)


def mk_call(
    cid: str,
    start: float,
    dur: float = 1.0,
    *,
    native: str | None = "n1",
    kind: str | None = "claude-cli",
    source: str = SRC,
    user_start: bool = False,
    terminal: bool | None = None,
    finish: str | None = None,
    tools: list[ToolCall] | None = None,
    results: list[ToolResult] | None = None,
    subagent: str | None = None,
    aux: str | None = None,
    model: str = "claude-sonnet-4-5",
    requested: str | None = None,
    in_tok: int | None = 1000,
    out_tok: int | None = 100,
    cost: float | None = 0.01,
    status: int = 200,
    text: str | None = None,
    user_text: str | None = None,
    first_user: str | None = None,
    client: tuple[str, int] = ("10.0.0.1", 40000),
    server: tuple[str, int] = ("10.0.0.2", 443),
    pid: int | None = None,
    request_hash: str | None = None,
    fingerprint: str | None = "auto",
    tentative: bool = False,
    parent_hint: str | None = None,
    error: dict | None = None,
    retry_after: float | None = None,
    wire_api: str = "anthropic",
    session_id: str | None = "auto",
) -> Call:
    """A released-ready call. ``start``/``dur`` are seconds after ``T0``. Turn flags follow §4/§5 the way
    the worker sets them: only main-agent (no sub-agent, not auxiliary) calls start or end turns."""
    tools = tools or []
    if finish is None:
        finish = "error" if status >= 400 else ("tool_use" if tools else "stop")
    main = subagent is None and aux is None
    if terminal is None:
        terminal = finish in ("stop", "length", "content_filter")
    rs = T0 + start
    re_ = rs + dur
    c = Call(call_id=cid, source_id=source)
    c.agent_kind = kind
    c.native_session_id = native if kind else None
    c.session_source = "header" if native else None
    if session_id == "auto":
        c.session_id = ids.session_id(source, kind, native) if kind and native else None
    else:
        c.session_id = session_id
    c.subagent = subagent
    c.is_auxiliary = aux is not None
    c.auxiliary_kind = aux
    c.client_ip, c.client_port = client
    c.server_ip, c.server_port = server
    c.server = f"{server[0]}:{server[1]}"
    c.host = "api.example.com"
    c.process = Process(pid, "node", None) if pid is not None else None
    c.path = "/v1/messages"
    c.status_code = status
    c.wire_api = wire_api
    c.operation = "chat"
    c.model_requested = requested or model
    c.model = model if status < 400 else "unknown"
    c.request_start = rs
    c.request_end = rs + 0.001
    c.response_start = rs + 0.2
    c.first_token = rs + 0.3 if status < 400 else None
    c.response_end = re_
    c.ttft_ms = 300.0 if status < 400 else None
    c.e2e_ms = dur * 1000
    c.finish = finish
    c.finish_reason_raw = {"stop": "end_turn", "tool_use": "tool_use"}.get(finish, finish)
    c.ok = status < 400 and finish not in ("error", "aborted")
    c.error = (
        error
        if error is not None
        else (
            {"source": "http", "type": "rate_limit_error", "message": "rate limited"}
            if status >= 400
            else None
        )
    )
    c.tool_calls = tools
    c.tool_call_count = len(tools)
    if status < 400:
        c.input_tokens = in_tok
        c.input_total_tokens = in_tok
        c.output_tokens = out_tok
        c.total_tokens = (in_tok or 0) + (out_tok or 0) if in_tok is not None or out_tok is not None else None
        c.cost_usd = cost
        c.cost_status = "priced" if cost is not None else "unpriced"
    c.request_hash = request_hash or f"h-{cid}"
    c.ratelimit = {"retry_after_s": retry_after} if retry_after is not None else None
    c.assistant_text = text if text is not None else (f"answer of {cid}" if finish == "stop" else None)
    c.user_text = user_text if user_text is not None else (f"question {cid}" if user_start else None)
    c.x_first_user_text = first_user
    c.x_tool_results = results or []
    c.x_user_turn_start = main and user_start
    c.x_terminal = main and terminal
    c.x_tentative = tentative
    c.x_parent_hint = parent_hint
    if fingerprint == "auto":
        c.x_output_fingerprint = f"fp-{cid}" if status < 400 else None
    else:
        c.x_output_fingerprint = fingerprint
    c.x_request = {"big": "payload"}
    return c


def exchange_for(c: Call) -> Exchange:
    return Exchange(
        exchange_id=c.call_id,
        source_id=c.source_id,
        ordinal=0,
        client_ip=c.client_ip,
        client_port=c.client_port,
        server_ip=c.server_ip,
        server_port=c.server_port,
        method="POST",
        path=c.path,
        http_version="HTTP/1.1",
        status_code=c.status_code,
        request_start=us(c.request_start),
        request_end=us(c.request_end),
        response_start=us(c.response_start) if c.response_start else None,
        response_end=us(c.response_end) if c.response_end else None,
    )


@dataclass
class Harness:
    """An assembler over an in-memory store, plus the feeding helpers."""

    cfg: Config = field(default_factory=Config)
    counters: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.store = open_store(None)
        self.writer = StoreWriter(self.store, self.counters)
        self.asm = Assembler(self.writer, self.counters, self.cfg)

    # --- feeding ---------------------------------------------------------------------------------------

    def started(self, c: Call) -> None:
        self.asm(CallStarted(c.source_id, c.call_id, us(c.request_start), c.wire_api))

    def finished(self, c: Call) -> None:
        self.asm(ExchangeFinished(exchange_for(c), c, []))

    def send(self, c: Call) -> None:
        self.started(c)
        self.finished(c)

    def wm(self, t: float, source: str = SRC) -> None:
        self.asm(Watermark(source, us(T0 + t)))

    def end(self, source: str = SRC) -> None:
        self.asm(EndOfSource(source))

    def play(
        self,
        calls: list[Call],
        step: float | None = 1.0,
        seed: int | None = None,
        end: bool = True,
        until: float | None = None,
    ) -> None:
        """Deliver calls in event time: each message (CallStarted at request end, ExchangeFinished at
        response end) before the first watermark at or after its time; watermarks every ``step`` s
        (None: only the drain). ``seed`` shuffles the messages between two watermarks."""
        rng = random.Random(seed)
        msgs: list[tuple[float, int, str, Call]] = []
        for c in calls:
            msgs.append((c.request_end - T0, 0, "s", c))
            msgs.append((c.response_end - T0, 1, "f", c))
        msgs.sort(key=lambda m: (m[0], m[1], m[3].call_id))
        last = max(m[0] for m in msgs) if msgs else 0.0
        stop = until if until is not None else last
        marks: list[float] = []
        if step is not None:
            k = 1
            while k * step <= stop + step:
                marks.append(k * step)
                k += 1
        i = 0
        for w in marks + [float("inf")]:
            group = []
            while i < len(msgs) and msgs[i][0] <= w:
                group.append(msgs[i])
                i += 1
            if seed is not None:
                rng.shuffle(group)
                # a call's CallStarted still precedes its own ExchangeFinished (one worker, in order)
                starts = {m[3].call_id: m for m in group if m[2] == "s"}
                ordered = []
                for m in group:
                    if m[2] == "s" and m[3].call_id not in starts:
                        continue
                    if m[2] == "f" and m[3].call_id in starts:
                        ordered.append(starts.pop(m[3].call_id))
                    elif m[2] == "s":
                        starts.pop(m[3].call_id)
                    ordered.append(m)
                group = ordered
            for _, _, kind, c in group:
                (self.started if kind == "s" else self.finished)(c)
            if w != float("inf") and (until is None or w <= until):
                self.wm(w)
        if end:
            self.end()
        self.writer.flush()

    # --- reading ---------------------------------------------------------------------------------------

    def rows(self, table: str, where: str = "", order: str | None = None) -> list[dict[str, Any]]:
        self.writer.flush()
        cur = self.store.cursor()
        keys = {
            "turns": "turn_id",
            "sessions": "session_id",
            "tool_calls": "call_id, tool_call_id",
            "insights": "insight_id",
            "calls": "call_id",
        }
        sql = f"SELECT * FROM {table} {('WHERE ' + where) if where else ''} ORDER BY {order or keys[table]}"
        res = cur.execute(sql)
        cols = [d[0] for d in res.description]
        return [dict(zip(cols, r)) for r in res.fetchall()]

    def turns(self) -> list[dict[str, Any]]:
        return self.rows("turns", order='"start", turn_id')

    def call(self, cid: str) -> dict[str, Any]:
        return self.rows("calls", f"call_id = '{cid}'")[0]

    def insights(self, kind: str | None = None) -> list[dict[str, Any]]:
        return self.rows("insights", f"kind = '{kind}'" if kind else "", order="dedupe_key")

    def tool(self, tool_call_id: str) -> dict[str, Any]:
        return self.rows("tool_calls", f"tool_call_id = '{tool_call_id}'")[0]
