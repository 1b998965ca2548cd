"""Redaction of secrets before anything is stored, shown or exported (interfaces.md §5).

The HTTP stage applies one ``Redactor`` to request/response heads, URL queries, decoded bodies and every
stream unit *before* anything parses them, so every field later extracted from a body is redacted by
construction. A replacement is ``[REDACTED:<8 hex>]`` — the start of HMAC-SHA256(salt, secret) — so two
different keys stay distinguishable without being readable; it holds no quote or backslash, so JSON stays
valid.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

# Secrets in free text. The look-behind keeps "task-…"/"disk-…" from matching.
_TEXT_PATTERNS = (
    r"sk-ant-[A-Za-z0-9_\-]{8,}",
    r"sk-[A-Za-z0-9_\-]{20,}",
    r"AIza[0-9A-Za-z_\-]{35}",
)
_LOOKBEHIND = r"(?<![A-Za-z0-9_\-])"

_SCHEME_HEADERS = frozenset({"authorization", "proxy-authorization"})
_WHOLE_HEADERS = frozenset({"x-api-key", "api-key", "x-goog-api-key", "cookie", "set-cookie"})
_QUERY_KEYS = frozenset({"key", "api_key", "api-key", "access_token", "token"})


class Redactor:
    """Replaces secrets with salted fingerprints. ``enabled=False`` (``--keep-secrets``) is a no-op."""

    def __init__(self, salt: bytes, enabled: bool = True, extra_patterns: Iterable[str] = ()) -> None:
        self.salt = salt
        self.enabled = enabled
        alternatives = "|".join((*_TEXT_PATTERNS, *extra_patterns))
        self._re_text = re.compile(f"{_LOOKBEHIND}(?:{alternatives})")
        self._re_bytes = re.compile(f"{_LOOKBEHIND}(?:{alternatives})".encode())
        self._quick = tuple(p.encode() for p in ("sk-", "AIza")) if not tuple(extra_patterns) else None

    def token(self, secret: str | bytes) -> str:
        """The replacement text for one secret."""
        if isinstance(secret, str):
            secret = secret.encode("utf-8", "surrogatepass")
        return "[REDACTED:" + hmac.new(self.salt, secret, hashlib.sha256).hexdigest()[:8] + "]"

    def text(self, s: str) -> str:
        if not self.enabled or not s:
            return s
        if self._quick is not None and "sk-" not in s and "AIza" not in s:
            return s
        return self._re_text.sub(lambda m: self.token(m.group(0)), s)

    def bytes(self, b: bytes) -> bytes:
        if not self.enabled or not b:
            return b
        if self._quick is not None and b"sk-" not in b and b"AIza" not in b:
            return b
        return self._re_bytes.sub(lambda m: self.token(m.group(0)).encode(), b)

    def headers(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if not self.enabled:
            return pairs
        out = []
        for name, value in pairs:
            lname = name.lower()
            if lname in _SCHEME_HEADERS:
                scheme, sep, cred = value.strip().partition(" ")
                value = f"{scheme} {self.token(cred.strip())}" if sep and cred.strip() else self.token(value)
            elif lname in _WHOLE_HEADERS:
                value = self.token(value)
            else:
                value = self.text(value)
            out.append((name, value))
        return out

    def query(self, q: str | None) -> str | None:
        if not self.enabled or not q:
            return q
        parts = []
        for item in q.split("&"):
            k, sep, v = item.partition("=")
            if sep and k.lower() in _QUERY_KEYS and v:
                v = self.token(v)
            parts.append(f"{k}{sep}{v}" if sep else item)
        return self.text("&".join(parts))
