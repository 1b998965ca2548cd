"""Legacy OpenAI Completions (wire-apis.md §6), as served by OpenAI and self-hosted servers (vLLM, SGLang,
llama.cpp). Text in, text out: no tools, no system text; only choice 0 is represented."""

from __future__ import annotations

from collections import Counter
from typing import Any

from heron_core.records import Call, Exchange
from heron_core.wire.common import apply_usage, clean_text
from heron_core.wire.openai_stream import ChoiceStream, decode_choices, rebuild


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


class _Rebuild(ChoiceStream):
    """Accumulates the chunks of one streamed completion (choice 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.finish_reason: Any = None
        self.stop_reason: Any = None

    def choice0(self, ts: int, ch: dict[str, Any]) -> None:
        text = ch.get("text")
        if isinstance(text, str):
            self.parts.append(text)
            if text:
                self.content(ts)
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


def count_content_units(ex: Exchange) -> int:
    """Chunks of choice 0 with non-empty text (§2.7 output estimate)."""
    return rebuild(_Rebuild(), ex, None).content_units


def decode(ex: Exchange, req: dict[str, Any], call: Call, counters: Counter) -> int | None:
    """Fill the call from the request and the (streamed or whole) response; returns first_token ts_us."""
    decode_request(req, call)
    return decode_choices(ex, call, counters, _Rebuild, apply_completion)
