"""Speed-ups on the hot path must not change behaviour: each optimized function against its reference, and
the slimmer worker → assembler messages against what they replace."""

from __future__ import annotations

import copy
import dataclasses
import gc
import random
from collections import Counter

from heron_core.assemble.tools import first_text_keys, text_hash
from heron_core.capture.source import open_file_source, source_id_for
from heron_core.config import Config
from heron_core.messages import ExchangeFinished
from heron_core.parallel.protocol import pack, unpack
from heron_core.records import Call, Exchange, Segment
from heron_core.redact import Redactor
from heron_core.wire.common import _WS, PREVIEW_CHARS, clean_text, preview, strip_system_reminders
from heron_core.wire.decode import decode_call, ratelimit_from_headers
from heron_core.wire.detect import detect
from heron_core.worker import DecodeWorker, for_assembler

from .helpers import CAPTURES, run_engine


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


# --- the worker sends the assembler less; what it sends decides the same ---------------------------------



def _reference_first_texts(raw):
    """The assembler's former reading of ``x_first_user_text`` (before the worker sent hashes)."""
    if not raw:
        return []
    out = []
    for t in (clean_text(raw), raw.strip()):
        if t and t not in out:
            out.append(t)
    return out


def test_first_text_keys_match_the_texts_they_replace():
    rng = random.Random(3)
    parts = ["Fix the bug", "  ", "\n", "<system-reminder>x</system-reminder>", "语", "<system-reminder>open"]
    for _ in range(300):
        raw = "".join(rng.choice(parts) for _ in range(rng.randint(0, 12))) or None
        call = Call(call_id="c", source_id="s", x_first_user_text=raw)
        want = tuple((text_hash(t), len(t)) for t in _reference_first_texts(raw))
        assert first_text_keys(call) == want
        for_assembler(call)
        assert call.x_first_user_text is None and first_text_keys(call) == want


def _worker_output(path):
    out = []
    cfg = Config()
    w = DecodeWorker(cfg, Redactor(b"salt"), out.append)
    for item in open_file_source(path, source_id_for([path])[0], Counter(), cfg):
        (w.segment if type(item) is Segment else w.handle)(item)
    return out


def test_packed_messages_come_back_equal():
    msgs = [m for path in CAPTURES[:4] for m in _worker_output(path)]
    assert any(type(m) is ExchangeFinished and m.call is not None for m in msgs)
    assert unpack(pack(msgs)) == msgs
    # every field travels: a call with each field set to a distinct value survives
    call = Call(**{f.name: f"v{i}" for i, f in enumerate(dataclasses.fields(Call))})
    ex = Exchange(**{f.name: f"e{i}" for i, f in enumerate(dataclasses.fields(Exchange))})
    assert unpack(pack([ExchangeFinished(ex, call, [])])) == [ExchangeFinished(ex, call, [])]


def test_detection_passed_through_decodes_like_detecting_again():
    exchanges = []

    class Recorder(DecodeWorker):
        def exchange_done(self, ex):
            exchanges.append(copy.deepcopy(ex))
            super().exchange_done(ex)

    cfg = Config()
    for path in CAPTURES:
        w = Recorder(cfg, Redactor(b"salt"), lambda m: None)
        for item in open_file_source(path, source_id_for([path])[0], Counter(), cfg):
            (w.segment if type(item) is Segment else w.handle)(item)
        assert not w._detected and w._detected_bytes == 0  # every detection was used once
    assert exchanges
    for ex in exchanges:
        assert decode_call(ex, Counter(), detect(ex)) == decode_call(ex, Counter())


def test_rate_limit_headers_first_value_any_case():
    ex = Exchange(exchange_id="e", source_id="s", ordinal=0, client_ip=None, client_port=None, server_ip=None,
                  server_port=None, response_headers=[("X-RateLimit-Limit-Requests", "100"),
                                                      ("x-ratelimit-limit-requests", "5"),
                                                      ("Retry-After", "7")])
    rl = ratelimit_from_headers(ex)
    assert rl["limit_requests"] == 100 and rl["retry_after_s"] == 7.0 and rl["remaining_tokens"] is None


def test_children_are_forked_with_the_parents_objects_frozen_and_the_parent_unfrozen():
    seen = []
    orig = gc.freeze

    def spy():
        seen.append(True)
        orig()

    gc.freeze, before = spy, gc.get_freeze_count()
    try:
        dump, _counters, _ = run_engine(CAPTURES[:1], 1)
    finally:
        gc.freeze = orig
    assert dump["calls"] and len(seen) == 2  # the reader and one worker
    assert gc.get_freeze_count() == before
