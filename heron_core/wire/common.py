"""Helpers shared by every wire-API decoder (wire-apis.md §2, agents-and-turns.md §3.4, §6).

Each API module (``anthropic``, ``openai_chat``, ``openai_responses``, ``gemini``, ``ollama``,
``openai_completions``) implements::

    def decode(ex: Exchange, req: dict, call: Call, counters: Counter) -> int | None

and may also define ``count_content_units(ex) -> int`` (number of content-bearing stream units, used by
``estimate_usage`` for §2.7). Everything that is the same across APIs lives here so the six decoders
agree on finish mapping, token normalization, tool ids, errors and previews:

* JSON: ``parse_json``, ``canonical_json``, ``as_int``, ``as_list`` (defined in ``json_util.py``),
  ``unit_json``, ``iter_stream_json``, ``DONE``
* finish: ``map_finish_raw``, ``set_outcome``, ``TOKEN_FIELDS``
* tokens: ``normalize_usage``, ``apply_usage``, ``estimate_usage``, ``request_text_chars``
* tools: ``make_tool_result``, ``tool_definition``, ``result_text``, ``result_flag_from_output``; tool
  ids and arguments live in ``tool_ids.py`` (``canonical_tool_id``, ``parse_tool_arguments``,
  ``make_tool_call``, the §6.2 pseudo ids and signatures, ``pair_idless_results``) and are re-exported
* errors: ``error_from_body``, ``http_error``, ``stream_error``, ``network_error``, ``parse_error``
* text: ``strip_system_reminders``, ``clean_text``, ``content_text``, ``text_head``, ``preview``,
  ``tool_call_preview``, ``set_previews``

Conventions every module follows (decode.py relies on them):

* ``decode`` fills the wire fields listed in wire-apis.md (model, response_id, finish_reason_raw, finish,
  error, refusal, tool_calls, server_tool_count, tokens, x_response_object, x_reasoning, assistant_text,
  user_text, x_first_user_text, x_system_text, x_tool_results, x_tool_definitions, choices_ignored,
  x_stream_orphan_deltas) and ends with ``set_outcome``. It returns the ts_us of the stream unit that
  carried the first token (§2.6), or None; for non-streamed responses decode.py uses ``response_start``.
* decode.py fills everything else: connection, detection, model_requested (before ``decode`` runs, so a
  module only sets ``call.model`` when the response names one), previews (``set_previews``),
  ``tool_call_count``, timing, ``ok``, ratelimit, request_hash, §2.7 estimation.
* ``call.usage_raw`` is set (by ``apply_usage``) **only** when the wire reported a usage object; None means
  "usage missing" and triggers §2.7 estimation for completed 2xx calls.
* ``call.error`` set by the module before ``set_outcome`` (stream error, Responses ``failed``, parse
  error) forces ``finish = error``.
* Tool ids always go through ``canonical_tool_id`` (``make_tool_call`` / ``make_tool_result`` do it);
  name look-ups between calls and results must key on the canonical id.
* Stream units are read with ``iter_stream_json`` (SSE, NDJSON and JSON-array alike).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from heron_core.records import BadUnit, Call, Exchange, SseEvent, ToolResult
from heron_core.wire.json_util import as_int, as_list, canonical_json, canonical_json_bytes, parse_json
from heron_core.wire.tool_ids import (
    canonical_tool_id,
    gemini_parts_signature,
    make_tool_call,
    ollama_message_signature,
    pair_idless_results,
    parse_tool_arguments,
    pseudo_signature,
    pseudo_tool_id,
    pseudo_tool_ids,
)

__all__ = [  # the re-exported names (every decoder imports its helpers from here)
    "as_int", "as_list", "canonical_json", "canonical_json_bytes", "canonical_tool_id", "gemini_parts_signature",
    "make_tool_call", "ollama_message_signature", "pair_idless_results", "parse_json", "parse_tool_arguments",
    "pseudo_signature", "pseudo_tool_id", "pseudo_tool_ids",
]

PREVIEW_CHARS = 300
RESULT_HEAD_BYTES = 2048

# --- JSON streams --------------------------------------------------------------------------------------

DONE = object()
"""Yielded by ``iter_stream_json`` for an SSE ``data: [DONE]`` (the OpenAI-style completion marker)."""


def unit_json(unit: Any) -> tuple[bool, Any, str | None]:
    """One stream unit → ``(ok, value, sse_event_name)``.

    ``SseEvent``: its data parsed (``[DONE]`` → ``DONE``); ``BadUnit``: not ok; anything else is an NDJSON
    line or JSON-array element that the HTTP stage already parsed.
    """
    if isinstance(unit, SseEvent):
        data = unit.data
        if data.strip() == "[DONE]":
            return True, DONE, unit.event
        ok, value = parse_json(data)
        return ok, value, unit.event
    if isinstance(unit, BadUnit):
        return False, None, None
    return True, unit, None


def iter_stream_json(units: Iterable[tuple[int, Any]], counters: Counter | None = None,
                     ) -> Iterator[tuple[int, Any, str | None]]:
    """``(ts_us, value, sse_event_name)`` for each stream unit; units that are not JSON (SSE data that does
    not parse, ``BadUnit`` lines, empty data such as a bare ``event: ping``) are skipped, and the ones that
    had data are counted ``extract_errors``."""
    for ts, unit in units:
        ok, value, event = unit_json(unit)
        if ok:
            yield ts, value, event
        elif counters is not None and not (isinstance(unit, SseEvent) and not unit.data.strip()):
            counters["extract_errors"] += 1


# --- finish (§2.2) -----------------------------------------------------------------------------------

_FINISH_TABLE: dict[str, str] = {}
for _finish, _raws in {
    "tool_use": ("tool_use", "tool_calls", "function_call"),
    "stop": ("end_turn", "stop_sequence", "stop", "eos", "STOP", "completed"),
    "length": ("max_tokens", "length", "model_context_window_exceeded", "MAX_TOKENS",
               "incomplete:max_output_tokens"),
    "content_filter": ("refusal", "content_filter", "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT",
                       "SPII", "IMAGE_SAFETY", "incomplete:content_filter"),
    "error": ("MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "failed", "error"),
    "aborted": ("cancelled", "abort", "cut"),
    "other": ("pause_turn", "OTHER", "LANGUAGE", "FINISH_REASON_UNSPECIFIED", "load", "unload"),
}.items():
    for _raw in _raws:
        _FINISH_TABLE[_raw] = _finish


def map_finish_raw(raw: str | None) -> str:
    """Raw finish value → normalized finish by the §2.2 table alone (no precedence applied).

    ``completed`` maps to ``stop``; the Responses decoder turns it into ``other`` itself when there is no
    message item. Prefixed values: ``blocked:*`` → content_filter, ``failed:*`` → error; unknown → other.
    """
    if raw is None:
        return "other"
    hit = _FINISH_TABLE.get(raw)
    if hit is not None:
        return hit
    if raw.startswith("blocked:"):
        return "content_filter"
    if raw.startswith("failed:"):
        return "error"
    return "other"


def set_outcome(
    call: Call,
    ex: Exchange,
    *,
    completed: bool,
    refusal_only: bool = False,
    mapped: str | None = None,
) -> None:
    """Set ``call.finish`` and ``call.error`` with the §2.2 precedence error > aborted > tool_use > raw.

    ``completed``: the API's completion marker was seen (non-stream: a whole JSON body).
    ``mapped``: a normalized finish to use instead of ``map_finish_raw(call.finish_reason_raw)`` (e.g.
    Responses ``completed`` without a message item → ``"other"``); precedence still applies.
    ``refusal_only``: refusal text and no other output → content_filter.
    An error already on the call (stream error, Responses failed, parse error) is kept → ``error``.
    HTTP ≥ 400 → http error from the body. A cut exchange or a missing marker → ``aborted`` with a
    network error (type = ``ex.end_cause``, or ``closed`` when the body ended cleanly without the marker).
    """
    status = ex.status_code
    if status is not None and status >= 400:
        if call.error is None or call.error.get("source") != "http":
            call.error = http_error(status, ex.response_body, ex.reason)
        call.finish = "error"
        return
    if call.error is not None and call.error.get("source") in ("stream", "http", "parse"):
        call.finish = "error"
        return
    cut = ex.state != "complete"
    if cut and completed and ex.process is not None and ex.end_cause == "closed":
        # eBPF sees what the application read, not what the server sent: SDKs stop reading a stream at
        # its completion marker and close the connection, so the chunked terminator after it is never
        # read. Marker seen + a clean close = the call completed (docs/ebpf.md).
        cut = False
    if cut or not completed:
        call.finish = "aborted"
        call.error = network_error(ex)
        return
    if call.tool_calls:
        call.finish = "tool_use"
        return
    finish = mapped if mapped is not None else map_finish_raw(call.finish_reason_raw)
    if finish in ("stop", "other") and refusal_only:
        finish = "content_filter"
    call.finish = finish


# --- tokens (§2.3, §2.7) -----------------------------------------------------------------------------

TOKEN_FIELDS = (
    "input_tokens", "cache_read_tokens", "cache_creation_tokens", "cache_creation_1h_tokens",
    "input_total_tokens", "output_tokens", "reasoning_tokens", "total_tokens",
)


def _sub(obj: Any, key: str, sub: str) -> int | None:
    inner = obj.get(key) if isinstance(obj, dict) else None
    return as_int(inner.get(sub)) if isinstance(inner, dict) else None


def normalize_usage(usage: Any) -> dict[str, int | None] | None:
    """A wire usage object → the normalized token fields of §2.3, or None when it is not a usage object.

    The style is decided by the field names present, not by the wire API:

    * Gemini ``usageMetadata`` (``promptTokenCount``…): inclusive; input_total = prompt + toolUsePrompt;
      output = candidates + thoughts; reasoning = thoughts; cache_read = cachedContentTokenCount.
    * Ollama (``prompt_eval_count``/``eval_count``): input = input_total = prompt_eval_count; cache 0.
    * OpenAI chat/completions (``prompt_tokens``/``completion_tokens``): inclusive; cache_read from
      ``prompt_tokens_details.cached_tokens``, DeepSeek ``prompt_cache_hit_tokens`` or a gateway's
      ``cache_read_input_tokens``; reasoning from ``completion_tokens_details.reasoning_tokens``.
    * Anthropic additive (``input_tokens`` + ``cache_read_input_tokens``/``cache_creation_input_tokens``):
      input_total = input + cache_read + cache_creation; 1h writes from ``cache_creation``.
    * Responses (``input_tokens`` with ``input_tokens_details``/``output_tokens``): inclusive.

    ``cache_creation_tokens`` is 0 for inclusive styles; other absent counts stay None; total =
    input_total + output (the wire ``total_tokens``/``totalTokenCount`` only when one side is unknown).
    """
    if not isinstance(usage, dict):
        return None
    t: dict[str, int | None] = dict.fromkeys(TOKEN_FIELDS)
    wire_total: int | None = None
    if "promptTokenCount" in usage or "candidatesTokenCount" in usage or "totalTokenCount" in usage:
        prompt = as_int(usage.get("promptTokenCount"))
        tool_prompt = as_int(usage.get("toolUsePromptTokenCount"))
        cand = as_int(usage.get("candidatesTokenCount"))
        thoughts = as_int(usage.get("thoughtsTokenCount"))
        t["input_tokens"] = prompt
        t["input_total_tokens"] = None if prompt is None and tool_prompt is None else (prompt or 0) + (
            tool_prompt or 0)
        t["output_tokens"] = None if cand is None and thoughts is None else (cand or 0) + (thoughts or 0)
        t["reasoning_tokens"] = thoughts
        t["cache_read_tokens"] = as_int(usage.get("cachedContentTokenCount"))
        t["cache_creation_tokens"] = 0
        wire_total = as_int(usage.get("totalTokenCount"))
    elif "prompt_eval_count" in usage or "eval_count" in usage:
        t["input_tokens"] = t["input_total_tokens"] = as_int(usage.get("prompt_eval_count"))
        t["output_tokens"] = as_int(usage.get("eval_count"))
        t["cache_read_tokens"] = t["cache_creation_tokens"] = 0
    elif "prompt_tokens" in usage or "completion_tokens" in usage:
        prompt = as_int(usage.get("prompt_tokens"))
        t["input_tokens"] = t["input_total_tokens"] = prompt
        t["output_tokens"] = as_int(usage.get("completion_tokens"))
        t["reasoning_tokens"] = _sub(usage, "completion_tokens_details", "reasoning_tokens")
        cached = _sub(usage, "prompt_tokens_details", "cached_tokens")
        if cached is None:
            cached = as_int(usage.get("prompt_cache_hit_tokens"))
        if cached is None:
            cached = as_int(usage.get("cache_read_input_tokens"))
        t["cache_read_tokens"] = cached
        # Gateways (LiteLLM) report Anthropic cache writes next to inclusive prompt_tokens: informational.
        t["cache_creation_tokens"] = as_int(usage.get("cache_creation_input_tokens")) or 0
        wire_total = as_int(usage.get("total_tokens"))
    elif "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage or (
        "input_tokens" in usage and "input_tokens_details" not in usage
        and "output_tokens_details" not in usage
    ):
        inp = as_int(usage.get("input_tokens"))
        cr = as_int(usage.get("cache_read_input_tokens"))
        cc = as_int(usage.get("cache_creation_input_tokens"))
        t["input_tokens"] = inp
        t["cache_read_tokens"] = cr
        t["cache_creation_tokens"] = cc if cc is not None else 0
        t["cache_creation_1h_tokens"] = _sub(usage, "cache_creation", "ephemeral_1h_input_tokens")
        t["input_total_tokens"] = None if inp is None and cr is None and cc is None else (
            (inp or 0) + (cr or 0) + (cc or 0))
        t["output_tokens"] = as_int(usage.get("output_tokens"))
        t["reasoning_tokens"] = _sub(usage, "output_tokens_details", "reasoning_tokens")
    elif "input_tokens" in usage or "output_tokens" in usage:
        inp = as_int(usage.get("input_tokens"))
        t["input_tokens"] = t["input_total_tokens"] = inp
        t["cache_read_tokens"] = _sub(usage, "input_tokens_details", "cached_tokens")
        t["cache_creation_tokens"] = 0
        t["output_tokens"] = as_int(usage.get("output_tokens"))
        t["reasoning_tokens"] = _sub(usage, "output_tokens_details", "reasoning_tokens")
        wire_total = as_int(usage.get("total_tokens"))
    else:
        return None
    if t["input_total_tokens"] is not None and t["output_tokens"] is not None:
        t["total_tokens"] = t["input_total_tokens"] + t["output_tokens"]
    else:
        t["total_tokens"] = wire_total
    return t


def apply_usage(call: Call, usage: Any) -> bool:
    """Normalize ``usage`` onto the call and keep it verbatim in ``usage_raw``; False if not usage."""
    t = normalize_usage(usage)
    if t is None:
        return False
    for k, v in t.items():
        setattr(call, k, v)
    call.usage_raw = usage
    call.usage_estimated = False
    return True


_TEXT_REQUEST_KEYS = ("system", "messages", "input", "instructions", "contents", "systemInstruction",
                      "prompt", "suffix")
_SKIP_KEYS = frozenset((
    "model", "role", "type", "id", "tool_call_id", "tool_use_id", "call_id", "data", "image_url", "images",
    "url", "signature", "thoughtSignature", "encrypted_content", "mimeType", "mime_type", "media_type",
    "source", "inlineData", "fileData", "file_id", "cache_control", "status", "index",
))


def _string_chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_string_chars(v) for v in value)
    if isinstance(value, dict):
        return sum(_string_chars(v) for k, v in value.items() if k not in _SKIP_KEYS)
    return 0


def request_text_chars(req: Any) -> int:
    """Characters of request text for §2.7: system, messages/input/contents/prompt (string leaves, minus
    ids, roles and binary data) plus tool definitions (their JSON length). Works for every API shape,
    including the Gemini code-assist envelope (``request``)."""
    if not isinstance(req, dict):
        return 0
    n = 0
    for key in _TEXT_REQUEST_KEYS:
        if key in req:
            n += _string_chars(req[key])
    tools = req.get("tools")
    if tools:
        n += len(canonical_json(tools))
    inner = req.get("request")
    if isinstance(inner, dict):
        n += request_text_chars(inner)
    return n


def estimate_usage(call: Call, req: Any, content_units: int | None = None) -> None:
    """§2.7: fill tokens from text lengths; ``usage_estimated = True``, ``usage_raw`` stays None.

    ``content_units``: number of content-bearing stream chunks (openai-chat/-completions/ollama streams);
    otherwise output = ceil(output characters / 4) over visible text, reasoning and tool arguments.
    """
    if content_units is not None:
        out = content_units
    else:
        chars = len(call.assistant_text or "") + len(call.x_reasoning or "") + len(call.refusal or "")
        for tc in call.tool_calls:
            chars += len(tc.name) + len(canonical_json(tc.arguments))
        out = math.ceil(chars / 4)
    inp = math.ceil(request_text_chars(req) / 4)
    call.input_tokens = inp
    call.input_total_tokens = inp
    call.cache_read_tokens = 0
    call.cache_creation_tokens = 0
    call.cache_creation_1h_tokens = None
    call.reasoning_tokens = None
    call.output_tokens = out
    call.total_tokens = inp + out
    call.usage_estimated = True


# --- tools (§2.4, agents-and-turns.md §6) ------------------------------------------------------------

def result_text(content: Any) -> str:
    """Tool-result content → text: a string; text parts joined with ``\\n`` (non-text parts become
    ``[type]``); any other value as canonical JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out: list[str] = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict):
                txt = part.get("text")
                if isinstance(txt, str):
                    out.append(txt)
                elif part.get("type"):
                    out.append(f"[{part['type']}]")
        return "\n".join(out)
    return canonical_json(content)


def result_flag_from_output(text: str) -> bool:
    """A JSON tool output whose ``metadata.exit_code`` or ``exit_code`` is non-zero is flagged as an error
    (agents-and-turns.md §11); anything else → False (the text heuristics run at link time)."""
    s = text.lstrip()
    if not s.startswith("{"):
        return False
    ok, obj = parse_json(s)
    if not ok or not isinstance(obj, dict):
        return False
    code = obj.get("exit_code")
    meta = obj.get("metadata")
    if code is None and isinstance(meta, dict):
        code = meta.get("exit_code")
    return isinstance(code, int) and not isinstance(code, bool) and code != 0


def make_tool_result(tool_call_id: Any, content: Any, is_error: bool = False, name: str | None = None,
                     counters: Counter | None = None) -> ToolResult:
    """A ``ToolResult``: canonical id, text head ≤ 2 KiB, full UTF-8 size in ``bytes``."""
    text = result_text(content)
    raw = text.encode("utf-8", "surrogatepass")
    return ToolResult(
        tool_call_id=canonical_tool_id(tool_call_id, counters),
        content_text=text_head(text, RESULT_HEAD_BYTES),
        is_error_flag=bool(is_error),
        bytes=len(raw),
        name=name,
    )


def tool_definition(name: Any, description: Any = None, parameters: Any = None) -> dict[str, Any]:
    """One entry of ``x_tool_definitions``: ``{name, description, parameters}``."""
    return {"name": name if isinstance(name, str) else "",
            "description": description if isinstance(description, str) else None,
            "parameters": parameters}


# --- errors (§2.5) -----------------------------------------------------------------------------------


def error_from_body(obj: Any) -> tuple[str | None, str | None] | None:
    """``(type, message)`` from any of the four error shapes, or None when ``obj`` is not an error:
    Anthropic ``{type:"error", error:{type,message}}``, OpenAI ``{error:{message,type,code}}``, Gemini
    ``{error:{code,message,status}}`` (also ``[{error:…}]``), Ollama ``{error:"…"}``; also a bare
    ``{type:"error", code, message}`` object (Responses ``error`` events) and the flat
    ``{object:"error", message, type, code}`` of vLLM/SGLang."""
    if isinstance(obj, list) and obj:
        return error_from_body(obj[0])
    if not isinstance(obj, dict):
        return None
    err = obj.get("error")
    if isinstance(err, str):
        return None if not err else ("error", err)
    if isinstance(err, dict):
        etype = err.get("type") or err.get("status") or err.get("code")
        msg = err.get("message")
        return (str(etype) if etype is not None else None, msg if isinstance(msg, str) else
                (canonical_json(msg) if msg is not None else None))
    if obj.get("type") == "error" and ("message" in obj or "code" in obj):
        msg = obj.get("message")
        return str(obj.get("code") or "error"), msg if isinstance(msg, str) else None
    if obj.get("object") == "error" and isinstance(obj.get("message"), str):  # vLLM / SGLang flat errors
        etype = obj.get("type") or obj.get("code")
        return (str(etype) if etype is not None else None, obj["message"])
    return None


def http_error(status: int, body: bytes | str | None, reason: str | None = None) -> dict[str, Any]:
    """``{source:"http", type, message}`` for status ≥ 400: type/message from the error body when it has
    one of the known shapes, else ``http_<status>`` and the start of the body (or the reason phrase)."""
    etype: str | None = None
    msg: str | None = None
    if body:
        ok, obj = parse_json(body)
        found = error_from_body(obj) if ok else None
        if found is not None:
            etype, msg = found
        elif not ok:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            msg = text.strip()[:PREVIEW_CHARS] or None
    return {"source": "http", "type": etype or f"http_{status}", "message": msg or reason}


def stream_error(obj: Any, default_type: str = "error") -> dict[str, Any]:
    """``{source:"stream", type, message}`` for an error event/chunk/line inside a 2xx stream."""
    found = error_from_body(obj)
    if found is None and isinstance(obj, dict):
        found = (obj.get("type") or obj.get("code"), obj.get("message"))
    etype, msg = found if found else (None, None)
    return {"source": "stream", "type": str(etype) if etype else default_type,
            "message": msg if isinstance(msg, str) else None}


def network_error(ex: Exchange) -> dict[str, Any]:
    """``{source:"network", type}``: ``ex.end_cause`` (reset/closed/gap/expired/no_response) or
    ``closed`` when the body ended cleanly without the completion marker; ``no_response`` without any."""
    cause = ex.end_cause or ("no_response" if ex.state == "no_response" else "closed")
    msg = {"no_response": "no response", "reset": "connection reset", "gap": "capture gap",
           "expired": "flow expired"}.get(cause, "response ended before completion")
    return {"source": "network", "type": cause, "message": msg}


def parse_error(ex: Exchange, message: str | None = None) -> dict[str, Any]:
    """``{source:"parse", type}``: ``truncated`` when the body was cut by the capture (damage truncated/
    body_too_large/gap), else ``bad_json``."""
    cut = ex.damage & {"truncated", "body_too_large", "gap"}
    return {"source": "parse", "type": "truncated" if cut else "bad_json",
            "message": message or "response body is not valid JSON"}


# --- text (§2.9, agents-and-turns.md §3.4) -----------------------------------------------------------

_REMINDER = re.compile(r"<system-reminder>.*?(?:</system-reminder>|\Z)", re.DOTALL)
_WS = re.compile(r"\s+")
TEXT_PART_TYPES = frozenset(("text", "input_text", "output_text"))


def strip_system_reminders(text: str) -> str:
    """Remove ``<system-reminder>…</system-reminder>`` blocks (an unclosed one runs to the end)."""
    if "<system-reminder>" not in text:
        return text
    return _REMINDER.sub("", text)


def clean_text(text: str | None) -> str | None:
    """Reminders removed and outer whitespace trimmed; None when nothing visible is left."""
    if not text:
        return None
    out = strip_system_reminders(text).strip()
    return out or None


def content_text(content: Any) -> str:
    """Message text (§3.4): a string, or the text parts (``text``/``input_text``/``output_text``, or a
    typeless part with ``text`` that is not a thought) joined with ``\\n``. Thinking is not text."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    out: list[str] = []
    for part in content:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict):
            ptype = part.get("type")
            txt = part.get("text")
            if isinstance(txt, str) and (ptype in TEXT_PART_TYPES
                                         or (ptype is None and not part.get("thought"))):
                out.append(txt)
    return "\n".join(out)


def text_head(text: str, limit_bytes: int = RESULT_HEAD_BYTES) -> str:
    """At most ``limit_bytes`` of UTF-8, cut on a character boundary."""
    if len(text) * 4 <= limit_bytes:
        return text
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit_bytes:
        return text
    return raw[:limit_bytes].decode("utf-8", "ignore")


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str | None:
    """One-line preview: reminders removed, whitespace runs collapsed, ≤ ``limit`` characters (``…`` ends
    a cut preview); None when empty."""
    if not text:
        return None
    t = strip_system_reminders(text)
    # Fast path for long texts (agent prompts run to 100 KB; collapsing all of it was a tenth of the
    # whole pipeline): the collapsed form of a prefix is a prefix of the collapsed whole, so once a
    # prefix yields limit + 2 visible characters the cut preview is known.
    n = 4 * limit + 64
    while limit >= 2 and n < len(t):
        head = _WS.sub(" ", t[:n]).lstrip()
        if len(head) > limit + 1:
            return head[: limit - 1] + "…"
        n *= 4
    s = _WS.sub(" ", t).strip()
    if not s:
        return None
    return s if len(s) <= limit else s[: limit - 1] + "…"


def tool_call_preview(name: str, arguments: Any, limit: int = PREVIEW_CHARS) -> str:
    """``→ name(args…)`` with compact JSON arguments, ≤ ``limit`` characters."""
    args = canonical_json(arguments) if arguments not in (None, {}) else ""
    s = _WS.sub(" ", f"→ {name}({args})")
    return s if len(s) <= limit else s[: limit - 2] + "…)"


def set_previews(call: Call) -> None:
    """``input_preview`` from ``user_text``; ``output_preview`` from the visible assistant text, else the
    first tool call, else the refusal text."""
    call.input_preview = preview(call.user_text)
    out = preview(call.assistant_text)
    if out is None and call.tool_calls:
        tc = call.tool_calls[0]
        out = tool_call_preview(tc.name, tc.arguments)
    if out is None:
        out = preview(call.refusal)
    call.output_preview = out
