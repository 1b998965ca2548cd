"""Records passed between pipeline stages.

These types are the contract between the stages of the engine (reader → TCP reassembly → HTTP → wire
decoding → assembler → store). Every stage consumes and produces only these, so each can run in a
worker process unchanged: all of them pickle cheaply (NamedTuples and slotted dataclasses of plain
values).

Time inside the engine is an integer count of microseconds since the epoch (``ts_us``). Records that
leave the engine (store rows, exports, API) use float epoch seconds; ``us_to_s`` converts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

# --- TCP flag bits (the low byte of the TCP flags field) ---------------------------------------------
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10

Endpoint = tuple[bytes, int]
"""An endpoint as ``(packed ip address, port)``: 4 bytes for IPv4, 16 for IPv6. Packed bytes keep the
per-packet loop free of string formatting; ``format_ip`` makes the text form once per flow."""


class Process(NamedTuple):
    """The process that made a connection (eBPF source only)."""

    pid: int
    comm: str
    exe: str | None


class Segment(NamedTuple):
    """One TCP segment as the reader emits it (capture-and-http.md §2.1)."""

    source_id: str
    ts_us: int
    src: Endpoint
    dst: Endpoint
    seq: int
    ack: int
    flags: int
    payload: bytes
    wire_len: int  # TCP payload length from the IP/TCP headers; > len(payload) means snaplen truncation
    process: Process | None = None


class Heartbeat(NamedTuple):
    """In-band marker: event time of ``source_id`` has reached ``ts_us``."""

    source_id: str
    ts_us: int


class EndOfSource(NamedTuple):
    """In-band marker: ``source_id`` has no more data (drain)."""

    source_id: str


class Watermark(NamedTuple):
    """Worker → assembler: every record completed at event time <= ``ts_us`` has been sent."""

    source_id: str
    ts_us: int


def us_to_s(ts_us: int | None) -> float | None:
    """Integer microseconds → float epoch seconds (the unit of every stored and exported timestamp)."""
    return None if ts_us is None else ts_us / 1_000_000


def format_ip(packed: bytes) -> str:
    """Packed IPv4/IPv6 address → text (``127.0.0.1``, ``::1``)."""
    import ipaddress

    return str(ipaddress.ip_address(packed))


# --- Flow --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class FlowInfo:
    """What the TCP stage knows about a connection; handed to the HTTP stage when the flow is created.

    ``client``/``server`` are filled in once the client side is known (SYN, or the first request line
    of a flow picked up mid-stream) and may be None before that.
    """

    source_id: str
    lo: Endpoint
    hi: Endpoint
    first_ts_us: int
    client: Endpoint | None = None
    server: Endpoint | None = None
    process: Process | None = None

    @property
    def flow_key_text(self) -> str:
        """Stable text of the ordered endpoint pair, part of ``exchange_id`` (ids.py)."""
        return f"{format_ip(self.lo[0])}:{self.lo[1]}|{format_ip(self.hi[0])}:{self.hi[1]}"


# --- HTTP exchange -----------------------------------------------------------------------------------


class SseEvent(NamedTuple):
    """One dispatched Server-Sent Event (capture-and-http.md §8.1)."""

    event: str | None
    data: str
    id: str | None


class BadUnit(NamedTuple):
    """A stream unit (NDJSON line or JSON-array element) that was not valid JSON; kept as text."""

    text: str


StreamUnit = tuple[int, Any]
"""``(ts_us of the packet that completed the unit, unit)`` where unit is an ``SseEvent`` (SSE), a parsed
JSON value or ``BadUnit`` (NDJSON and JSON-array streams)."""

# Damage reasons (capture-and-http.md §6.6).
DAMAGE_REASONS = (
    "gap",
    "truncated",
    "parse_error",
    "decode_error",
    "undecodable_encoding",
    "body_too_large",
    "midstream",
)


@dataclass(slots=True)
class Exchange:
    """One HTTP request and its final response (capture-and-http.md §10).

    Bodies are *decoded* (content-encoding undone) and already *redacted*; they hold at most
    ``http.max_body_bytes`` (``*_body_bytes`` count everything that was decoded). For streamed
    responses ``response_body`` is the raw stream text and ``stream_units`` the split events.
    Timestamps are integer microseconds; None while unknown.
    """

    exchange_id: str
    source_id: str
    ordinal: int  # 0-based index of the request on its connection
    client_ip: str | None
    client_port: int | None
    server_ip: str | None
    server_port: int | None
    process: Process | None = None
    # request
    method: str = ""
    path: str = ""
    query: str | None = None
    http_version: str = ""
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    request_body: bytes = b""
    request_body_bytes: int = 0
    request_wire_bytes: int = 0
    # response
    status_code: int | None = None
    reason: str | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""
    response_body_bytes: int = 0
    response_wire_bytes: int = 0
    stream_format: str | None = None  # 'sse' | 'ndjson' | 'json-array' | None
    stream_units: list[StreamUnit] = field(default_factory=list)
    # timestamps (µs)
    request_start: int | None = None
    request_end: int | None = None
    response_start: int | None = None
    first_chunk: int | None = None
    response_end: int | None = None
    # outcome
    state: str = "complete"  # 'complete' | 'aborted' | 'no_response'
    end_cause: str | None = None  # network cause when not complete: reset|closed|gap|expired|no_response
    damage: set[str] = field(default_factory=set)

    @property
    def damaged(self) -> bool:
        return bool(self.damage)

    @property
    def is_stream(self) -> bool:
        return self.stream_format is not None

    def header(self, name: str, response: bool = False) -> str | None:
        """First value of header ``name`` (case-insensitive) on the request or the response."""
        lname = name.lower()
        for k, v in self.response_headers if response else self.request_headers:
            if k.lower() == lname:
                return v
        return None

    @property
    def host(self) -> str | None:
        return self.header("host")

    @property
    def server(self) -> str | None:
        """``ip:port`` of the server (``[v6]:port`` for IPv6), or the Host header without a 5-tuple."""
        if self.server_ip is None:
            return self.host
        ip = f"[{self.server_ip}]" if ":" in self.server_ip else self.server_ip
        return f"{ip}:{self.server_port}"


# --- LLM call ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class ToolCall:
    """A client tool call issued by a response (wire-apis.md §2.4). ``id`` is canonical."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class ToolResult:
    """A tool result found in a request (wire-apis.md §2.4, agents-and-turns.md §2)."""

    tool_call_id: str
    content_text: str  # at most 2 KiB kept (text_head)
    is_error_flag: bool
    bytes: int = 0
    name: str | None = None


@dataclass(slots=True)
class Call:
    """The normalized LLM call record (interfaces.md §6.1 and the extra `calls` columns of §3).

    The wire stage fills the wire fields; the agent, turn, hop, retry and cost fields are filled by
    later stages and stay None until then. Timestamps here are float epoch seconds (export units).
    Fields prefixed ``x_`` are engine-internal (not stored as columns, not exported).
    """

    call_id: str
    source_id: str
    # agents / sessions / turns (agents-and-turns.md)
    agent_kind: str | None = None
    session_id: str | None = None
    turn_id: str | None = None
    native_session_id: str | None = None
    session_source: str | None = None
    is_auxiliary: bool = False
    auxiliary_kind: str | None = None
    subagent: str | None = None
    hop_role: str | None = None
    hop_peer_call_id: str | None = None
    # where
    client_ip: str | None = None
    client_port: int | None = None
    server_ip: str | None = None
    server_port: int | None = None
    server: str | None = None
    host: str | None = None
    process: Process | None = None
    method: str = "POST"
    path: str = ""
    status_code: int | None = None
    # what
    wire_api: str = ""
    operation: str = ""
    detected_by: str = ""
    provider: str | None = None
    model_requested: str = "unknown"
    model: str = "unknown"
    response_id: str | None = None
    is_stream: bool = False
    stream_format: str | None = None
    # timing (epoch s) and derived figures (ms, metrics.md §2)
    request_start: float | None = None
    request_end: float | None = None
    response_start: float | None = None
    first_chunk: float | None = None
    first_token: float | None = None
    response_end: float | None = None
    ttft_ms: float | None = None
    e2e_ms: float | None = None
    tpot_ms: float | None = None
    upload_ms: float | None = None
    head_ms: float | None = None
    first_chunk_ms: float | None = None
    gen_ms: float | None = None
    # outcome
    finish_reason_raw: str | None = None
    finish: str = "other"
    ok: bool = False
    error: dict[str, Any] | None = None  # {source, type, message}
    refusal: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_count: int = 0
    server_tool_count: int = 0
    # tokens (wire-apis.md §2.3)
    input_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    cache_creation_1h_tokens: int | None = None
    input_total_tokens: int | None = None
    reasoning_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    usage_estimated: bool = False
    context_delta_tokens: int | None = None
    # cost (metrics.md §5)
    cost_usd: float | None = None
    cost_input_usd: float | None = None
    cost_output_usd: float | None = None
    cost_nocache_usd: float | None = None
    cache_savings_usd: float | None = None
    cost_status: str = "unpriced"
    price_version: str | None = None
    priced_model: str | None = None
    priced_provider: str | None = None
    # sizes
    request_body_bytes: int = 0
    response_body_bytes: int = 0
    request_wire_bytes: int = 0
    response_wire_bytes: int = 0
    # retries
    attempt: int = 1
    retry_of: str | None = None
    request_hash: str = ""
    ratelimit: dict[str, Any] | None = None
    # previews
    input_preview: str | None = None
    output_preview: str | None = None
    # damage
    damaged: bool = False
    damage: list[str] = field(default_factory=list)
    # extra table columns (interfaces.md §3)
    usage_raw: Any = None
    user_text: str | None = None
    assistant_text: str | None = None
    hop_overhead_ms: dict[str, Any] | None = None
    native_turn_id: str | None = None
    parent_tool_call_id: str | None = None
    choices_ignored: int | None = None
    # engine-internal, for the agents/turns stage and SFT export (not stored as columns)
    x_request: Any = None  # parsed request JSON (redacted), None if not JSON
    x_response_object: Any = None  # rebuilt non-streaming response object (wire-apis.md §2.8)
    x_tool_results: list[ToolResult] = field(default_factory=list)
    x_tool_definitions: list[dict[str, Any]] = field(default_factory=list)  # [{name, description, parameters}]
    x_reasoning: str | None = None  # reasoning / thinking text of the response
    x_first_user_text: str | None = None
    # (SHA-1, length) of the first user text's match forms (assemble.tools.first_text_keys): the worker
    # sends these to the assembler instead of the text, which is tens of KB for an agent's first prompt
    x_first_user_keys: tuple[tuple[str, int], ...] | None = None
    x_system_text: str | None = None
    x_envelope: dict[str, Any] | None = None  # gemini code-assist: {user_prompt_id, session_id}
    x_stream_orphan_deltas: int = 0
    # set by per-call agent classification (agents-and-turns.md §2), read by the assembler
    x_user_turn_start: bool = False
    x_terminal: bool = False
    x_parent_hint: str | None = None  # parent reference the client sent (codex parent thread id)
    x_tentative: bool = False  # generic text-only conversation not yet confirmed (§3.3)
    x_output_fingerprint: str | None = None  # for proxy-hop folding (§9): visible output + tool calls
