"""Ground truth → per-field expectations for the accuracy harness.

Two truth formats exist (testdata/README.md "Truth format" for the mock-server captures, and
testdata/synth/README.md for synthesized ones). Both are turned into the same ``Expectation``: where the
call sits (connection, time, ordinal) and a dict of export fields with the values the spec
(wire-apis.md, capture-and-http.md §9, interfaces.md §6.1) says the engine must export.

This module deliberately imports nothing from ``heron_core``: the judge must not share code (and so
bugs) with the engine it judges. The few spec rules it needs (tool-id canonicalization, token
totals) are re-implemented here from the spec text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PSEUDO_ID = "<pseudo>"
"""Expected tool-call id for id-less tool calls (Gemini, Ollama): a pseudo id ``tu-`` + 16 hex
(agents-and-turns.md §6.2). Its value depends on the response parts, which truth does not list, so only
its form (and uniqueness within the call) is checked."""

_PSEUDO_RE = re.compile(r"^tu-[0-9a-f]{16}$")
_CANON_RE = re.compile(r"^(call|toolu|fc|chatcmpl)([A-Za-z0-9]{8,})$")

TOKEN_FIELDS = (
    "input_tokens", "cache_read_tokens", "cache_creation_tokens", "cache_creation_1h_tokens",
    "input_total_tokens", "output_tokens", "reasoning_tokens", "total_tokens",
)  # fmt: skip


@dataclass(slots=True)
class Tolerance:
    """Allowed absolute difference (seconds) for a time field, with the reason it is not exact."""

    seconds: float
    why: str


@dataclass(slots=True)
class Expectation:
    """One truth record: where to find its call and what the call's fields must be.

    ``fields`` maps an export field name (or a derived name such as ``error.source`` or
    ``tool_calls.ids``) to the expected value. A field that truth does not assert is simply absent.
    """

    key: str  # human-readable identity for mismatch lists
    client_ip: str
    client_port: int
    server: str | None  # "ip:port" of the server, to tell which engine calls truth covers
    match_time: float  # truth time of the request, compared with ``match_field`` of the call
    match_field: str  # 'request_start' (synth, exact) or 'request_end' (mock: "request fully read")
    path: str
    fields: dict[str, Any] = field(default_factory=dict)
    tolerances: dict[str, Tolerance] = field(default_factory=dict)
    order: int = 0  # position on the connection (synth ordinal, mock seq): breaks request-time ties
    is_llm: bool = True  # False for mock 'other' records: no call may be exported for them
    faulted: bool = False  # synth: some fault touched this exchange


def canonical_tool_id(raw: str | None) -> str:
    """agents-and-turns.md §6.1: trim; ``call``/``toolu``/``fc``/``chatcmpl`` + ≥ 8 alnum → add ``_``."""
    if raw is None:
        return PSEUDO_ID
    s = raw.strip()
    m = _CANON_RE.match(s)
    return f"{m.group(1)}_{m.group(2)}" if m else s


def is_pseudo_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_PSEUDO_RE.match(value))


def _split_hostport(text: str) -> tuple[str, int]:
    """``127.0.0.1:80`` / ``[::1]:80`` → (ip, port)."""
    if text.startswith("["):
        ip, _, port = text[1:].partition("]:")
        return ip, int(port)
    ip, _, port = text.rpartition(":")
    return ip, int(port)


def _tool_fields(tool_calls: list[dict[str, Any]] | None) -> dict[str, Any]:
    if tool_calls is None:
        return {}
    return {
        "tool_calls.ids": [canonical_tool_id(t.get("id")) for t in tool_calls],
        "tool_calls.names": [t["name"] for t in tool_calls],
        "tool_calls.arguments": [t["arguments"] for t in tool_calls],
    }


# --- mock-server truth (testdata/captures/*.truth.jsonl) ---------------------------------------------

# The mock's t_request/t_end are the server's own clock readings (after read() / write() returned),
# the capture timestamps are the kernel's on the loopback interface: they are the same events seen
# from two places, never µs-identical. With several client threads the mock reads a request up to
# ~30 ms after its last packet was captured (mixed_gzip). Synth truth is exact instead.
MOCK_TIME_TOLERANCE = Tolerance(0.050, "mock server clock vs kernel capture timestamp")


def mock_expectation(rec: dict[str, Any], name: str) -> Expectation:
    """One mock truth record (testdata/README.md "Truth format") → Expectation."""
    cip, cport = _split_hostport(rec["client"])
    key = f"{name}#{rec['seq']}"
    exp = Expectation(
        key=key, client_ip=cip, client_port=cport, server=rec["server"], match_time=rec["t_request"],
        match_field="request_end", path=rec["path"].split("?", 1)[0], order=rec["seq"],
    )
    if rec["api"] == "other":
        exp.is_llm = False
        return exp
    f = exp.fields
    status = rec["status"]
    cut = rec.get("cut")
    aborted = cut in ("fin", "rst")
    f["path"] = exp.path
    f["wire_api"] = rec["api"]
    f["operation"] = rec["operation"]
    f["model_requested"] = rec["model_requested"]
    # wire-apis.md §2.1: served model = the response's model field, else model_requested.
    f["model"] = rec["model"] if rec["model"] is not None else rec["model_requested"]
    f["is_stream"] = rec["stream"]
    f["status_code"] = status
    f["finish_reason_raw"] = rec["finish_reason_raw"]
    f["finish"] = rec["finish"]
    f["response_id"] = rec["response_id"]
    err = rec["error"]
    f["error.source"] = err["source"] if err else None
    if not (err and err["source"] == "http" and rec["api"] == "ollama"):
        # Ollama error bodies are {"error": "<message>"}: the spec names no type for them (§2.5).
        f["error.type"] = err["type"] if err else None
    f.update(_tool_fields(rec["tool_calls"]))
    usage = rec["usage"]
    if usage is not None:
        for k in TOKEN_FIELDS:
            f[k] = usage[k]
        f["usage_estimated"] = False
    elif status >= 400 or aborted:
        # §2.7 estimates only 2xx calls that completed; errors and aborted calls keep null tokens.
        for k in TOKEN_FIELDS:
            f[k] = None
        f["usage_estimated"] = False
    elif err is None and rec["complete"]:
        f["usage_estimated"] = True
    # else: a 2xx stream that ended in an error event without usage: whether §2.7 estimates it
    # ("completed without usage") is not decided by the spec, so it is not asserted.
    f["state"] = "aborted" if aborted else "complete"
    f["damaged"] = False  # loopback captures with snaplen 256 KiB: nothing is lost or cut
    f["request_end"] = rec["t_request"]
    exp.tolerances["request_end"] = MOCK_TIME_TOLERANCE
    if rec.get("t_first_byte") is not None and status is not None:
        f["response_start"] = rec["t_first_byte"]  # the head goes out in one write with the status line
        exp.tolerances["response_start"] = MOCK_TIME_TOLERANCE
    if rec.get("t_end") is not None:
        f["response_end"] = rec["t_end"]
        exp.tolerances["response_end"] = MOCK_TIME_TOLERANCE
    return exp


# --- synthesizer truth (testdata/synth) ----------------------------------------------------------------

# Network error type of an aborted exchange by its faults, first match (wire-apis.md §2.5). A gap is
# skipped even at the end of a cut file (watermark +∞) before the flow expires; an RST that fell after
# the cut was never seen, so the flow expired instead.
_NETWORK_TYPE_BY_FAULT = (("drop", "gap"), ("snaplen", "gap"), ("capture_cut", "expired"), ("rst", "reset"))


def _synth_tokens(rec: dict[str, Any]) -> dict[str, Any]:
    """wire-apis.md §2.3 from the as-reported counts of a synth record (null = absent on the wire)."""
    f: dict[str, Any] = {}
    if not rec["usage_reported"]:
        if rec["status_code"] is not None and rec["status_code"] >= 400:
            f.update({k: None for k in TOKEN_FIELDS})
            f["usage_estimated"] = False
        elif rec["finish"] not in ("error", "aborted"):
            f["usage_estimated"] = True  # §2.7; the estimate itself is not asserted
        return f
    inp, out = rec["input_tokens"], rec["output_tokens"]
    cr, cc = rec["cache_read_tokens"], rec["cache_creation_tokens"]
    f["input_tokens"] = inp
    f["output_tokens"] = out
    f["reasoning_tokens"] = rec["reasoning_tokens"]
    # Absent counts stay null (§2.3), except Ollama, whose usage has no cache fields: 0 (§8).
    f["cache_read_tokens"] = 0 if rec["wire_api"] == "ollama" and cr is None else cr
    # "Anthropic style only; else 0 when usage was reported"
    f["cache_creation_tokens"] = cc if cc is not None else 0
    f["cache_creation_1h_tokens"] = rec.get("cache_creation_1h_tokens")
    additive = rec["wire_api"] == "anthropic"
    if inp is not None:
        total_in = inp + ((cr or 0) + (cc or 0) if additive else 0)
        f["input_total_tokens"] = total_in
        if out is not None:
            f["total_tokens"] = total_in + out
    f["usage_estimated"] = False
    return f


def synth_expectation(rec: dict[str, Any]) -> Expectation:
    """One synth truth record (testdata/synth/README.md) → Expectation."""
    cip, cport = rec["client_ip"], rec["client_port"]
    sip, sport = rec["server_ip"], rec["server_port"]
    server = f"[{sip}]:{sport}" if ":" in sip else f"{sip}:{sport}"
    key = f"{rec['source_id']}:{cip}:{cport}#{rec['ordinal']}"
    exp = Expectation(
        key=key, client_ip=cip, client_port=cport, server=server, match_time=rec["request_start"],
        match_field="request_start", path=rec["path"], order=rec["ordinal"], faulted=bool(rec["faults"]),
    )
    f = exp.fields
    state = rec["state"]
    f["path"] = rec["path"]
    f["wire_api"] = rec["wire_api"]
    f["model_requested"] = rec["model_requested"]
    if state != "aborted":
        f["model"] = rec["model"] if rec["model"] is not None else rec["model_requested"]
    # else: the served model is known only if the event naming it arrived (and decompressed) before
    # the cut, which the truth does not record.
    f["status_code"] = rec["status_code"]
    f["state"] = state
    f["damaged"] = rec["damaged"]
    f["damage"] = sorted(rec["damage"])
    f["request_start"] = rec["request_start"]
    if rec["response_end"] is not None:
        f["response_end"] = rec["response_end"]
    if rec["finish"] is not None:
        f["finish"] = rec["finish"]
    status = rec["status_code"]
    if state == "no_response":
        f["error.source"], f["error.type"] = "network", "no_response"
    elif state != "complete":
        f["error.source"] = "network"
        for fault, typ in _NETWORK_TYPE_BY_FAULT:
            if fault in rec["faults"]:
                f["error.type"] = typ
                break
    elif status is not None and status >= 400:
        f["error.source"] = "http"
    elif rec["asserted"] and rec["finish"] == "error":
        f["error.source"] = "stream"
    elif rec["asserted"]:
        f["error.source"] = None
    if rec["is_stream"] is not None:
        f["is_stream"] = rec["is_stream"]
    if rec["asserted"]:
        f["finish_reason_raw"] = rec["finish_reason_raw"]
        f.update(_tool_fields(rec["tool_calls"]))
        f.update(_synth_tokens(rec))
    return exp


# --- loading -------------------------------------------------------------------------------------------


def load_expectations(truth_path: str | Path) -> list[Expectation]:
    """Read a truth JSONL of either format (told apart by its keys)."""
    p = Path(truth_path)
    name = p.name.removesuffix(".truth.jsonl")
    out: list[Expectation] = []
    for line in p.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        out.append(synth_expectation(rec) if "wire_api" in rec else mock_expectation(rec, name))
    return out
