"""Legacy OpenAI Completions (wire-apis.md §6), as served by OpenAI and self-hosted servers (vLLM, SGLang,
llama.cpp). Text in, text out: no tools, no system text; only choice 0 is represented."""

from __future__ import annotations

from collections import Counter
from typing import Any

from heron_core.records import Call, Exchange
from heron_core.wire.common import (
    DONE,
    apply_usage,
    as_list,
    clean_text,
    iter_stream_json,
    parse_error,
    parse_json,
    set_outcome,
    stream_error,
)


def prompt_text(prompt: Any) -> str | None:
    """The (first) prompt as text: a string; the first of a list of strings; a token array (or a list of
    them) as ``[n tokens]``."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt:
        first = prompt[0]
        if isinstance(first, str):
            return first
        if isinstance(first, int) and not isinstance(first, bool):
            return f"[{len(prompt)} tokens]"
        if isinstance(first, list):
            return f"[{len(first)} tokens]"
    return None


def decode_request(req: dict[str, Any], call: Call) -> None:
    text = clean_text(prompt_text(req.get("prompt")))
    call.user_text = text
    call.x_first_user_text = text


def apply_completion(obj: dict[str, Any], call: Call) -> None:
    """Fill the call from a (possibly rebuilt) ``text_completion`` object."""
    if isinstance(obj.get("id"), str) and obj["id"]:
        call.response_id = obj["id"]
    if isinstance(obj.get("model"), str) and obj["model"]:
        call.model = obj["model"]
    choices = obj.get("choices")
    if isinstance(choices, list) and choices:
        choice = next((c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0), choices[0])
        if len(choices) > 1:
            call.choices_ignored = len(choices) - 1
        if isinstance(choice, dict):
            text = choice.get("text")
            call.assistant_text = clean_text(text) if isinstance(text, str) else None
            raw = choice.get("finish_reason")
            call.finish_reason_raw = raw if isinstance(raw, str) else None
    apply_usage(call, obj.get("usage"))


class _Rebuild:
    """Accumulates the chunks of one streamed completion (choice 0)."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.parts: list[str] = []
        self.finish_reason: Any = None
        self.stop_reason: Any = None
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
        for key in ("id", "model", "created", "system_fingerprint"):
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
            text = ch.get("text")
            if isinstance(text, str):
                self.parts.append(text)
                if text:
                    self.content_units += 1
                    if self.first_token is None:
                        self.first_token = ts
            if ch.get("finish_reason") is not None:
                self.finish_reason = ch["finish_reason"]
            if ch.get("stop_reason") is not None:
                self.stop_reason = ch["stop_reason"]

    def completion(self) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "text": "".join(self.parts), "logprobs": None,
                                  "finish_reason": self.finish_reason}
        if self.stop_reason is not None:
            choice["stop_reason"] = self.stop_reason
        obj: dict[str, Any] = {"id": self.head.get("id"), "object": "text_completion"}
        if "created" in self.head:
            obj["created"] = self.head["created"]
        obj["model"] = self.head.get("model")
        obj["choices"] = [choice]
        obj["usage"] = self.usage
        if "system_fingerprint" in self.head:
            obj["system_fingerprint"] = self.head["system_fingerprint"]
        return obj


def _rebuild(ex: Exchange, counters: Counter | None) -> _Rebuild:
    rb = _Rebuild()
    for ts, obj, event_name in iter_stream_json(ex.stream_units, counters):
        rb.chunk(ts, obj, event_name)
    return rb


def count_content_units(ex: Exchange) -> int:
    """Chunks of choice 0 with non-empty text (§2.7 output estimate)."""
    return _rebuild(ex, None).content_units


def decode(ex: Exchange, req: dict[str, Any], call: Call, counters: Counter) -> int | None:
    """Fill the call from the request and the (streamed or whole) response; returns first_token ts_us."""
    decode_request(req, call)
    status = ex.status_code
    first_token: int | None = None
    if ex.is_stream and (status is None or status < 400):
        rb = _rebuild(ex, counters)
        obj = rb.completion()
        call.x_response_object = obj
        call.error = rb.error
        apply_completion(obj, call)
        if rb.other_choices:
            call.choices_ignored = len(rb.other_choices)
        first_token = rb.first_token
        completed = rb.completed
    else:
        ok, obj = parse_json(ex.response_body) if ex.response_body else (False, None)
        if ok:
            call.x_response_object = obj
        completed = ok and isinstance(obj, dict)
        if status is not None and status < 400:
            if completed and obj.get("error") and not obj.get("choices"):
                call.error = stream_error(obj)
            elif completed:
                apply_completion(obj, call)
            elif ex.state == "complete" and 200 <= status < 300:
                call.error = parse_error(ex)
    set_outcome(call, ex, completed=completed)
    return first_token
