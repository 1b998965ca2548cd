"""Exchange → Call: detection, the per-API decoder, and the fields every API shares.

``decode_call`` never raises: the wire is untrusted and one odd body must not stop a capture, so an
exception inside an API module is counted (``extract_errors``) and the call is returned with whatever was
filled, with a finish/error derived from the HTTP outcome alone.
"""

from __future__ import annotations

import hashlib
import importlib
from collections import Counter
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any

from heron_core.records import Call, Exchange, us_to_s
from heron_core.wire.common import (
    canonical_json_bytes,
    estimate_usage,
    set_outcome,
    set_previews,
)
from heron_core.wire.detect import clean_path, detect, detect_request, operation_for, refine_by_response

__all__ = [
    "decode_call", "detect_request", "preload_wire_modules", "provider_for_host", "ratelimit_from_headers",
    "request_hash",
]

_MODULES = {
    "anthropic": "heron_core.wire.anthropic",
    "openai-chat": "heron_core.wire.openai_chat",
    "openai-responses": "heron_core.wire.openai_responses",
    "gemini": "heron_core.wire.gemini",
    "ollama": "heron_core.wire.ollama",
    "openai-completions": "heron_core.wire.openai_completions",
}

_PROVIDER_EXACT = {
    "api.anthropic.com": "anthropic",
    "api.openai.com": "openai",
    "chatgpt.com": "openai",
    "generativelanguage.googleapis.com": "google",
    "cloudcode-pa.googleapis.com": "google",
    "aiplatform.googleapis.com": "google",
    "openrouter.ai": "openrouter",
    "api.deepseek.com": "deepseek",
}


def _module(wire_api: str) -> ModuleType:
    """The API module, imported on first use (modules of APIs never seen are never loaded)."""
    return importlib.import_module(_MODULES[wire_api])


def preload_wire_modules() -> None:
    """Import every API module now: the parallel engine does this once before it forks its decode
    workers, which would otherwise each import the modules on first use."""
    for wire_api in _MODULES:
        _module(wire_api)


def provider_for_host(host: str | None) -> str | None:
    """§2.1 host table (port and case ignored); None for self-hosted servers and gateways."""
    if not host:
        return None
    h = host.strip().lower()
    if h.startswith("["):
        h = h[1:h.find("]")] if "]" in h else h
    elif h.count(":") == 1:
        h = h.split(":", 1)[0]
    h = h.rstrip(".")
    hit = _PROVIDER_EXACT.get(h)
    if hit is not None:
        return hit
    if h.endswith("-aiplatform.googleapis.com"):
        return "google"
    if h.endswith(".openai.azure.com"):
        return "azure"
    return None


def model_requested(wire_api: str, path: str, req: Any) -> str:
    """§2.1: body ``model``; gemini: the path segment before ``:`` without ``models/`` (envelope: body)."""
    if wire_api == "gemini":
        p = clean_path(path)
        i = p.rfind("/models/")
        if i >= 0:
            name = p[i + len("/models/"):].split(":", 1)[0]
            if name:
                return name
    if isinstance(req, dict):
        model = req.get("model")
        if isinstance(model, str) and model:
            return model[len("models/"):] if wire_api == "gemini" and model.startswith("models/") else model
    return "unknown"


def request_hash(body: bytes, req: Any) -> str:
    """agents-and-turns.md §2: first 16 hex of SHA-256 over the decoded request body with the top-level
    ``stream``/``stream_options`` keys removed and keys sorted (raw bytes when the body is not JSON)."""
    if isinstance(req, dict):
        data = canonical_json_bytes({k: v for k, v in req.items() if k not in ("stream", "stream_options")})
    else:
        data = body
    return hashlib.sha256(data).hexdigest()[:16]


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        try:
            return int(float(value.strip()))
        except ValueError:
            return None


def _retry_after_s(ex: Exchange, header: Any) -> float | None:
    ms = header("retry-after-ms")
    if ms is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    ra = header("retry-after")
    if ra is None:
        return None
    try:
        return float(ra)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(ra).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    now: float | None = None
    date = header("date")
    if date:
        try:
            now = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            now = None
    if now is None and ex.response_start is not None:
        now = ex.response_start / 1_000_000
    return None if now is None else max(0.0, when - now)


def _response_header_index(ex: Exchange) -> dict[str, str]:
    """Lower-cased response header name → its first value: the ~20 rate-limit names below are looked up
    in one dict instead of ~20 scans of the header list (``Exchange.header``), the same first-match rule."""
    index: dict[str, str] = {}
    for k, v in ex.response_headers:
        index.setdefault(k.lower(), v)
    return index


def ratelimit_from_headers(ex: Exchange) -> dict[str, Any] | None:
    """``{limit_requests, remaining_requests, limit_tokens, remaining_tokens, reset, retry_after_s}`` from
    ``anthropic-ratelimit-*``, ``x-ratelimit-*`` and ``retry-after(-ms)`` headers; None when none."""
    header = _response_header_index(ex).get

    def first(*names: str) -> str | None:
        for n in names:
            v = header(n)
            if v is not None:
                return v
        return None

    out: dict[str, Any] = {
        "limit_requests": _int(first("anthropic-ratelimit-requests-limit", "x-ratelimit-limit-requests")),
        "remaining_requests": _int(first("anthropic-ratelimit-requests-remaining",
                                         "x-ratelimit-remaining-requests")),
        "limit_tokens": _int(first("anthropic-ratelimit-tokens-limit", "x-ratelimit-limit-tokens",
                                   "anthropic-ratelimit-input-tokens-limit")),
        "remaining_tokens": _int(first("anthropic-ratelimit-tokens-remaining", "x-ratelimit-remaining-tokens",
                                       "anthropic-ratelimit-input-tokens-remaining")),
        "reset": first("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset",
                       "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens", "x-ratelimit-reset",
                       "anthropic-ratelimit-input-tokens-reset"),
        "retry_after_s": _retry_after_s(ex, header),
    }
    if all(v is None for v in out.values()):
        return None
    return out


def _ms(end_us: int | None, start_us: int | None) -> float | None:
    return None if end_us is None or start_us is None else (end_us - start_us) / 1000


def _fill_common(call: Call, ex: Exchange, req: Any, wire_api: str, detected_by: str) -> None:
    call.client_ip, call.client_port = ex.client_ip, ex.client_port
    call.server_ip, call.server_port = ex.server_ip, ex.server_port
    call.server = ex.server
    call.host = ex.host
    call.process = ex.process
    call.method = ex.method
    call.path = clean_path(ex.path)
    call.status_code = ex.status_code
    call.wire_api = wire_api
    call.operation = operation_for(wire_api, ex.path, req)
    call.detected_by = detected_by
    call.provider = provider_for_host(ex.host)
    call.model_requested = model_requested(wire_api, ex.path, req)
    call.is_stream = ex.is_stream
    call.stream_format = ex.stream_format
    call.request_start = us_to_s(ex.request_start)
    call.request_end = us_to_s(ex.request_end)
    call.response_start = us_to_s(ex.response_start)
    call.response_end = us_to_s(ex.response_end)
    call.request_body_bytes = ex.request_body_bytes
    call.response_body_bytes = ex.response_body_bytes
    call.request_wire_bytes = ex.request_wire_bytes
    call.response_wire_bytes = ex.response_wire_bytes
    call.damaged = ex.damaged
    call.damage = sorted(ex.damage)
    call.x_request = req
    call.request_hash = request_hash(ex.request_body, req)
    call.ratelimit = ratelimit_from_headers(ex)


def _timing(call: Call, ex: Exchange, first_us: int | None) -> None:
    """metrics.md §2 figures, computed from the µs timestamps (no float rounding)."""
    status = ex.status_code
    if status is None or status >= 400 or ex.response_start is None:
        first_us = None
    elif not call.is_stream:
        first_us = ex.response_start if 200 <= status < 300 else None
    call.first_token = us_to_s(first_us)
    call.first_chunk = us_to_s(ex.first_chunk) if call.is_stream else None  # a module may set is_stream
    rs = ex.request_start
    call.ttft_ms = _ms(first_us, rs)
    call.e2e_ms = _ms(ex.response_end, rs)
    call.upload_ms = _ms(ex.request_end, rs)
    call.head_ms = _ms(ex.response_start, rs)
    call.first_chunk_ms = _ms(ex.first_chunk, rs) if call.is_stream else None
    call.gen_ms = _ms(ex.response_end, first_us)
    out = call.output_tokens
    if (call.is_stream and out is not None and out >= 2 and call.finish != "aborted"
            and call.gen_ms is not None):
        call.tpot_ms = call.gen_ms / (out - 1)
    else:
        call.tpot_ms = None


_DETECT = object()


def decode_call(ex: Exchange, counters: Counter, detection: Any = _DETECT) -> Call | None:
    """Decode one finished exchange into a ``Call``, or None (counted ``exchanges_not_llm``).

    ``detection``: what ``detect(ex)`` returned when the request completed (a ``Detection`` or None), so
    the request body — ~100 KB of JSON for an agent — is parsed once per exchange, not twice. Detection
    reads only the request, which is final by then. Left out, detection runs here."""
    d = detect(ex) if detection is _DETECT else detection
    if d is None:
        counters["exchanges_not_llm"] += 1
        return None
    wire_api, detected_by, req = d.wire_api, d.detected_by, d.req
    counters[f"detected_by_{detected_by}"] += 1
    if detected_by == "shape":
        refined = refine_by_response(ex)
        if refined is not None and refined != wire_api:
            wire_api, detected_by = refined, "response"
            counters["refined_by_response"] += 1
    counters[f"calls_detected.{wire_api}"] += 1

    call = Call(call_id=ex.exchange_id, source_id=ex.source_id)
    _fill_common(call, ex, req, wire_api, detected_by)
    first_us: int | None = None
    module: ModuleType | None = None
    try:
        module = _module(wire_api)
        first_us = module.decode(ex, req, call, counters)
    except Exception:  # noqa: BLE001 - untrusted input: count and keep what was filled
        counters["extract_errors"] += 1
        try:
            set_outcome(call, ex, completed=ex.state == "complete")
        except Exception:  # noqa: BLE001
            call.finish = "error" if (ex.status_code or 0) >= 400 else "other"
    if call.model in ("", "unknown"):
        call.model = call.model_requested
    call.tool_call_count = len(call.tool_calls)

    status = ex.status_code
    if status is not None and 200 <= status < 300 and call.usage_raw is None and not call.usage_estimated:
        counters["usage_missing"] += 1
        if call.finish not in ("aborted", "error"):
            units: int | None = None
            counter_fn = getattr(module, "count_content_units", None) if call.is_stream else None
            try:
                if counter_fn is not None:
                    units = counter_fn(ex)
                estimate_usage(call, req, units)
                counters["usage_estimated"] += 1
            except Exception:  # noqa: BLE001
                counters["extract_errors"] += 1
    try:
        set_previews(call)
    except Exception:  # noqa: BLE001
        counters["extract_errors"] += 1
    call.ok = status is not None and 200 <= status < 300 and call.finish not in ("error", "aborted")
    _timing(call, ex, first_us)
    return call
