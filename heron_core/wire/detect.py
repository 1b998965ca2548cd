"""Which wire API an exchange speaks (wire-apis.md §1).

Detection must work on captures taken behind gateways, so it never looks at authentication headers:
the route pass trusts well-known paths (when the body is a JSON object with a ``model``), the shape pass
recognises the request body alone, and the response may later overrule a shape-based guess (§1.3).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from heron_core.records import Exchange, SseEvent
from heron_core.wire.common import parse_json, unit_json

WIRE_APIS = ("anthropic", "openai-chat", "openai-responses", "gemini", "ollama", "openai-completions")

_OPERATION = {
    "anthropic": "chat",
    "openai-chat": "chat",
    "openai-responses": "chat",
    "gemini": "generate_content",
    "openai-completions": "text_completion",
}


class Detection(NamedTuple):
    wire_api: str
    detected_by: str  # 'route' | 'shape'
    operation: str
    req: dict[str, Any]  # the parsed request body


def clean_path(path: str) -> str:
    """Path without the query (and without a fragment)."""
    for sep in ("?", "#"):
        i = path.find(sep)
        if i >= 0:
            path = path[:i]
    return path


def route_api(path: str) -> str | None:
    """§1.1 route pass on a path (query removed); first match wins."""
    p = clean_path(path)
    if p.endswith("/v1/messages"):
        return "anthropic"
    if p.endswith("/responses"):
        return "openai-responses"
    if p.endswith("/chat/completions"):
        return "openai-chat"
    if p.endswith("/completions"):
        return "openai-completions"
    if p.endswith(":generateContent") or p.endswith(":streamGenerateContent"):
        if "/models/" in p or p.endswith("/v1internal:generateContent") or p.endswith(
                "/v1internal:streamGenerateContent"):
            return "gemini"
        return None
    if p.endswith("/api/chat") or p.endswith("/api/generate"):
        return "ollama"
    return None


_EXCLUDED_SUFFIXES = (":countTokens", ":embedContent", ":batchEmbedContents")


def excluded_path(path: str) -> bool:
    """The §1.1 exclusions (token counting, batches, embeddings). They are final: such an exchange is
    not an LLM call even when its body has a chat shape (Claude Code's ``count_tokens`` body does)."""
    p = clean_path(path)
    if "/v1/messages/count_tokens" in p or "/v1/messages/batches" in p:
        return True
    return p.endswith(_EXCLUDED_SUFFIXES)


def operation_for(wire_api: str, path: str, req: Any) -> str:
    """Operation name: fixed per API except ollama (``/api/generate`` or a ``prompt`` body →
    ``text_completion``, else ``chat``)."""
    op = _OPERATION.get(wire_api)
    if op is not None:
        return op
    p = clean_path(path)
    if p.endswith("/api/generate"):
        return "text_completion"
    if p.endswith("/api/chat"):
        return "chat"
    if isinstance(req, dict) and "prompt" in req and "messages" not in req:
        return "text_completion"
    return "chat"


def _json_media(ex: Exchange) -> bool:
    ctype = ex.header("content-type")
    if ctype is None:
        return ex.request_body.lstrip()[:1] == b"{"
    return ctype.split(";", 1)[0].strip().lower() == "application/json"


_ANTHROPIC_BLOCKS = frozenset(("tool_use", "tool_result", "thinking"))


def _anthropic_blocks(messages: list[Any]) -> bool:
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            for b in content:
                if isinstance(b, dict) and b.get("type") in _ANTHROPIC_BLOCKS:
                    return True
    return False


def shape_api(req: dict[str, Any], ex: Exchange | None = None) -> str | None:
    """§1.2 body-shape pass on a parsed JSON object; the first rule that holds wins."""
    messages = req.get("messages")
    has_messages = "messages" in req
    if (isinstance(req.get("model"), str) and isinstance(messages, list) and "input" not in req
            and "contents" not in req):
        if ((ex is not None and ex.header("anthropic-version") is not None) or "system" in req
                or "stop_sequences" in req or _anthropic_blocks(messages)):
            return "anthropic"
    if "model" in req and "input" in req and not has_messages:
        return "openai-responses"
    if not has_messages and "input" not in req:
        contents = req.get("contents")
        inner = req.get("request")
        if isinstance(contents, list) and contents:
            return "gemini"
        if ("model" in req and isinstance(inner, dict) and isinstance(inner.get("contents"), list)
                and inner["contents"]):
            return "gemini"
    if "model" in req and isinstance(messages, list) and messages:
        return "openai-chat"
    if "model" in req and "prompt" in req:
        return "openai-completions"
    return None


def detect(ex: Exchange) -> Detection | None:
    """Route pass, then shape pass; None when the exchange is not an LLM call (or not a POST)."""
    if ex.method.upper() != "POST" or excluded_path(ex.path):
        return None
    body = ex.request_body
    req: Any = None
    parsed = False
    api = route_api(ex.path)
    if api is not None:
        parsed = True
        ok, req = parse_json(body) if body else (False, None)
        if ok and isinstance(req, dict) and (api == "gemini" or "model" in req):
            return Detection(api, "route", operation_for(api, ex.path, req), req)
    if not _json_media(ex):
        return None
    if not parsed:
        ok, req = parse_json(body) if body else (False, None)
    if not isinstance(req, dict):
        return None
    api = shape_api(req, ex)
    if api is None:
        return None
    return Detection(api, "shape", operation_for(api, ex.path, req), req)


def detect_request(ex: Exchange) -> tuple[str, str] | None:
    """``(wire_api, detected_by)`` as soon as the request is complete (for ``CallStarted``)."""
    d = detect(ex)
    return None if d is None else (d.wire_api, d.detected_by)


def _object_api(obj: Any) -> str | None:
    """The API a response object (or stream chunk) clearly belongs to, per §1.3."""
    if isinstance(obj, list):
        return _object_api(obj[0]) if obj else None
    if not isinstance(obj, dict):
        return None
    otype = obj.get("type")
    if otype in ("message", "message_start"):
        return "anthropic"
    obj_kind = obj.get("object")
    if obj_kind == "response" or (isinstance(otype, str) and otype.startswith("response.")):
        return "openai-responses"
    if isinstance(obj_kind, str) and obj_kind.startswith("chat.completion"):
        return "openai-chat"
    if obj_kind == "text_completion":
        return "openai-completions"
    if isinstance(obj.get("done"), bool) and ("message" in obj or "response" in obj):
        return "ollama"
    if "candidates" in obj or (isinstance(obj.get("response"), dict) and "candidates" in obj["response"]):
        return "gemini"
    return None


def refine_by_response(ex: Exchange, max_units: int = 8) -> str | None:
    """The wire API the response's shape clearly belongs to (§1.3), or None when it says nothing.

    Looks at the first few stream units (SSE event names count: ``message_start``) or the whole body.
    The caller applies it only to shape-detected calls.
    """
    if ex.stream_format == "ndjson" and ex.stream_units:
        return "ollama"
    if ex.stream_units:
        for _ts, unit in ex.stream_units[:max_units]:
            if isinstance(unit, SseEvent):
                if unit.event == "message_start":
                    return "anthropic"
                if unit.event and unit.event.startswith("response."):
                    return "openai-responses"
            ok, value, _ev = unit_json(unit)
            api = _object_api(value) if ok else None
            if api is not None:
                return api
        return None
    if not ex.response_body:
        return None
    try:
        obj = orjson.loads(ex.response_body)
    except orjson.JSONDecodeError:
        return None
    return _object_api(obj)
