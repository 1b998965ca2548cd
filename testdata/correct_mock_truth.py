"""Correct the committed mock truth files (testdata/captures/*.truth.jsonl) where they contradict the spec.

The captures themselves cannot be regenerated here (root, tcpdump, the agent CLIs), so the truth written by
the mock at capture time is fixed in place by these rules. Each rule is also fixed in the mock
(testdata/mock_llm) so a regenerated capture gets the right truth directly. The script is idempotent:
``python testdata/correct_mock_truth.py --check`` exits 1 if any file still needs a correction
(tests/e2e/test_accuracy.py runs that check).

Rules (the spec decides):

1. ``usage.cache_read_tokens`` is null when the wire usage has no cache-read field (Gemini without
   ``cachedContentTokenCount``, completions without ``prompt_tokens_details``): wire-apis.md §2.3
   "absent counts stay null; usage present with a zero stays 0". Ollama keeps 0 (§8 "no cache fields (0)").
2. Gemini ``usage.output_tokens`` is null when neither ``candidatesTokenCount`` nor ``thoughtsTokenCount``
   was sent (a blocked prompt), by the same rule.
3. OpenAI-style HTTP errors: ``error.type`` is the body's ``error.type`` (``requests``,
   ``invalid_request_error``), not its ``code``: §2.5 maps ``{error:{message, type, code}}`` onto
   ``{source, type, message}`` by name.
4. Connections the mock cut with ``reset``: Python's socketserver sent FIN before the RST, so the response
   was ended by the FIN (capture-and-http.md §5.5) and the network error type is ``closed``.
5. A Responses stream that ends in an ``error`` event without a terminal event has status ``failed``, so
   ``finish_reason_raw`` is ``failed:<code>`` (wire-apis.md §5, rebuild step 4).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CAPTURES = Path(__file__).resolve().parent / "captures"

# The mock's OpenAI error bodies by status (testdata/mock_llm/openai_api.py ERRORS; 529 is sent as 503).
_OPENAI_ERROR_TYPE = {400: "invalid_request_error", 401: "invalid_request_error", 429: "requests",
                      500: "server_error", 503: "server_error", 529: "server_error"}
_OPENAI_APIS = ("openai-chat", "openai-responses", "openai-completions")


def _has_cache_read(api: str, raw: dict[str, Any]) -> bool:
    if api == "gemini":
        return "cachedContentTokenCount" in raw
    if api == "anthropic":
        return "cache_read_input_tokens" in raw
    if api == "openai-responses":
        return "cached_tokens" in (raw.get("input_tokens_details") or {})
    if api in ("openai-chat", "openai-completions"):
        return "cached_tokens" in (raw.get("prompt_tokens_details") or {})
    return True  # ollama: 0 by §8


def correct(rec: dict[str, Any]) -> dict[str, Any]:
    """The corrected record (a new dict; unchanged when nothing applies)."""
    if rec.get("api") in (None, "other"):
        return rec
    out = json.loads(json.dumps(rec))
    api, usage, raw = out["api"], out.get("usage"), out.get("usage_raw")
    if usage is not None and raw is not None:
        if not _has_cache_read(api, raw):
            usage["cache_read_tokens"] = None
        if api == "gemini" and "candidatesTokenCount" not in raw and "thoughtsTokenCount" not in raw:
            usage["output_tokens"] = None
    err = out.get("error")
    if err and err.get("source") == "http" and api in _OPENAI_APIS and out["status"] in _OPENAI_ERROR_TYPE:
        err["type"] = _OPENAI_ERROR_TYPE[out["status"]]
    if err and out.get("cut") == "rst" and err.get("type") == "reset":
        err["type"] = "closed"
    if (api == "openai-responses" and err and err.get("source") == "stream" and out.get("stream")
            and out.get("finish_reason_raw") is None):
        out["finish_reason_raw"] = f"failed:{err['type']}"
    return out


def correct_file(path: Path, write: bool) -> int:
    """Apply the rules to one truth file; returns how many records changed."""
    lines = path.read_text(encoding="utf-8").splitlines()
    new_lines, changed = [], 0
    for line in lines:
        rec = json.loads(line)
        fixed = correct(rec)
        if fixed != rec:
            changed += 1
            new_lines.append(json.dumps(fixed, ensure_ascii=False))
        else:
            new_lines.append(line)
    if changed and write:
        path.write_text("\n".join(new_lines) + "\n", encoding="utf-8")
    return changed


def main(argv: list[str]) -> int:
    check = "--check" in argv
    total = 0
    for path in sorted(CAPTURES.glob("*.truth.jsonl")):
        n = correct_file(path, write=not check)
        total += n
        if n:
            print(f"{path.name}: {n} record(s) {'need correcting' if check else 'corrected'}")
    return 1 if check and total else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
