"""What OpenAI Chat Completions (wire-apis.md §4) and legacy Completions (§6) share: the chunk envelope
of their streams and the decode skeleton.

Both stream ``data:`` chunks that carry a ``choices`` list, end with ``data: [DONE]``, may send an error
object instead, repeat head fields (``id``, ``model`` …) and put ``usage`` on one chunk. ``ChoiceStream``
handles that envelope and hands each chunk's choice 0 to its subclass, which accumulates the API's own
delta format and rebuilds the non-streaming object (``completion``). ``decode_choices`` then reads a
streamed or whole response the same way for both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from heron_core.records import Call, Exchange
from heron_core.wire.json_util import response_json
from heron_core.wire.common import (
    DONE,
    as_list,
    iter_stream_json,
    parse_error,
    set_outcome,
    stream_error,
)


class ChoiceStream:
    """Accumulates the chunks of one streamed completion; subclasses read choice 0 (``choice0``) and
    build the non-streaming object (``completion``)."""

    HEAD_KEYS: tuple[str, ...] = ("id", "model", "created", "system_fingerprint")

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.usage: Any = None
        self.other_choices: set[int] = set()
        self.completed = False
        self.first_token: int | None = None
        self.content_units = 0
        self.error: dict[str, Any] | None = None

    def chunk(self, ts: int, obj: Any, event_name: str | None) -> None:
        if obj is DONE:
            self.completed = True
            return
        if event_name == "error":
            self.error = stream_error(obj)
            return
        if event_name not in (None, "message") or not isinstance(obj, dict):
            return
        if obj.get("error") and not obj.get("choices"):
            self.error = stream_error(obj)
            return
        for key in self.HEAD_KEYS:
            if key not in self.head and obj.get(key):
                self.head[key] = obj[key]
        if obj.get("usage") is not None:
            self.usage = obj["usage"]
        for ch in as_list(obj.get("choices")):
            if not isinstance(ch, dict):
                continue
            idx = ch.get("index", 0)
            if idx != 0:
                self.other_choices.add(idx)
                continue
            self.choice0(ts, ch)

    def content(self, ts: int) -> None:
        """Choice 0 produced content in the chunk at ``ts`` (§2.6 first token, §2.7 content units)."""
        self.content_units += 1
        if self.first_token is None:
            self.first_token = ts

    def choice0(self, ts: int, ch: dict[str, Any]) -> None:
        raise NotImplementedError

    def completion(self) -> dict[str, Any]:
        raise NotImplementedError


def rebuild(stream: ChoiceStream, ex: Exchange, counters: Counter | None) -> ChoiceStream:
    """Feed every JSON stream unit of ``ex`` to ``stream``."""
    for ts, obj, event_name in iter_stream_json(ex.stream_units, counters):
        stream.chunk(ts, obj, event_name)
    return stream


def decode_choices(
    ex: Exchange,
    call: Call,
    counters: Counter,
    new_stream: Callable[[], ChoiceStream],
    apply: Callable[[dict[str, Any], Call], None],
) -> int | None:
    """Fill ``call`` from the response (the request was decoded by the caller); ``apply`` reads a whole
    (or rebuilt) response object. Returns the ts_us of the first content chunk of a stream, else None."""
    status = ex.status_code
    first_token: int | None = None
    if ex.is_stream and (status is None or status < 400):
        rb = rebuild(new_stream(), ex, counters)
        obj = rb.completion()
        call.x_response_object = obj
        call.error = rb.error
        apply(obj, call)
        if rb.other_choices:
            call.choices_ignored = len(rb.other_choices)
        first_token = rb.first_token
        completed = rb.completed
    else:
        obj, completed = response_json(ex, call)
        if status is not None and status < 400:
            if completed and obj.get("error") and not obj.get("choices"):
                call.error = stream_error(obj)
            elif completed:
                apply(obj, call)
            elif ex.state == "complete" and 200 <= status < 300:
                call.error = parse_error(ex)
    refusal_only = call.refusal is not None and call.assistant_text is None and not call.tool_calls
    set_outcome(call, ex, completed=completed, refusal_only=refusal_only)
    return first_token
