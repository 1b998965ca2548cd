"""Speed-ups on the hot path must not change behaviour: each optimized function against its reference."""

from __future__ import annotations

import random

from heron_core.wire.common import _WS, PREVIEW_CHARS, preview, strip_system_reminders


def _reference_preview(text, limit=PREVIEW_CHARS):
    if not text:
        return None
    s = _WS.sub(" ", strip_system_reminders(text)).strip()
    if not s:
        return None
    return s if len(s) <= limit else s[: limit - 1] + "…"


def test_preview_matches_the_reference():
    rng = random.Random(7)
    alphabet = ["a", "é", "语", " ", "  ", "\n", "\t", "\u00a0", "\u2003", "x" * 40, " " * 500,
                "<system-reminder>hidden</system-reminder>", "<system-reminder>unclosed"]
    cases = ["", " ", "\n\n", "x" * 10_000, " " * 10_000 + "y", "a " * 5000]
    for _ in range(600):
        cases.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400))))
    for text in cases:
        for limit in (PREVIEW_CHARS, 1, 2, 3, 40):
            assert preview(text, limit) == _reference_preview(text, limit), (text[:80], limit)
