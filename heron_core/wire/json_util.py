"""JSON basics every wire stage shares: tolerant parsing, canonical text, lenient type coercion.

Kept apart from ``common.py`` so that the low-level helper modules (``tool_ids.py``) can use them without
importing the decoders' big helper module (``common.py`` re-exports every name here).
"""

from __future__ import annotations

import math
from typing import Any

import orjson


def parse_json(data: bytes | str | None) -> tuple[bool, Any]:
    """``(ok, value)``; never raises. Wire bodies are untrusted, so callers branch on ``ok``."""
    if data is None:
        return False, None
    try:
        return True, orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return False, None


def response_json(ex: Any, call: Any) -> tuple[Any, bool]:
    """A non-streamed response body parsed: ``(value, completed)``, the value also kept as the call's
    ``x_response_object``; completed means a whole JSON object arrived (truncated or aborted bodies don't)."""
    ok, obj = parse_json(ex.response_body) if ex.response_body else (False, None)
    if ok:
        call.x_response_object = obj
    return obj, ok and isinstance(obj, dict)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept (agents-and-turns.md §6.2): equal values → equal text."""
    return canonical_json_bytes(value).decode()


def canonical_json_bytes(value: Any) -> bytes:
    """``canonical_json`` as UTF-8 bytes, for hashing: orjson's output is already UTF-8, so this skips a
    decode and re-encode of what may be a 100 KB request."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return orjson.dumps(str(value))


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a list, else ``[]``: lets loops over wire fields skip odd types silently."""
    return value if isinstance(value, list) else []


def as_int(value: Any) -> int | None:
    """Token counts as int; bools, strings and garbage → None (absent counts stay null, §2.3)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None
