"""OpenAI Chat Completions (wire-apis.md §4), as served by OpenAI, Azure, DeepSeek, OpenRouter, vLLM,
llama.cpp, LiteLLM and other gateways.

Streams are rebuilt into the non-streaming ``chat.completion`` object and then read like a whole
response. Only choice 0 is represented; further choices are counted in ``choices_ignored``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from heron_core.records import Call, Exchange
from heron_core.wire.common import (
    apply_usage,
    as_list,
    canonical_tool_id,
    clean_text,
    content_text,
    make_tool_call,
    make_tool_result,
    result_flag_from_output,
    result_text,
    tool_definition,
)
from heron_core.wire.openai_stream import ChoiceStream, decode_choices, rebuild
from heron_core.wire.tool_ids import openai_chat_message_calls

_REASONING_KEYS = ("reasoning_content", "reasoning")


# --- request -----------------------------------------------------------------------------------------


def _tool_defs(req: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for t in as_list(req.get("tools")):
        if not isinstance(t, dict):
            continue
        fn = t.get("function") if isinstance(t.get("function"), dict) else t
        if isinstance(fn.get("name"), str):
            out.append(tool_definition(fn["name"], fn.get("description"), fn.get("parameters")))
    for fn in as_list(req.get("functions")):  # legacy function calling
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            out.append(tool_definition(fn["name"], fn.get("description"), fn.get("parameters")))
    return out


def decode_request(req: dict[str, Any], call: Call, counters: Counter) -> None:
    """System text (first system/developer message), first/last user text, tool results of ``tool``
    messages (named from the history's assistant ``tool_calls``) and tool definitions."""
    messages = req.get("messages")
    if not isinstance(messages, list):
        messages = []
    names: dict[str, str | None] = {}
    system: str | None = None
    first_user: str | None = None
    last_user: str | None = None
    seen_user = False
    results = []
    for m in messages:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        content = m.get("content")
        if role in ("system", "developer"):
            if system is None:
                system = content_text(content) or None
        elif role == "user":
            text = clean_text(content_text(content))
            if not seen_user:
                first_user, seen_user = text, True
            last_user = text
        elif role == "assistant":
            for tc in as_list(m.get("tool_calls")):
                if isinstance(tc, dict) and isinstance(tc.get("id"), str):
                    fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
                    names[canonical_tool_id(tc["id"])] = fn.get("name")
        elif role == "tool":
            text = result_text(content)
            res = make_tool_result(m.get("tool_call_id"), text, result_flag_from_output(text), None, counters)
            res.name = m["name"] if isinstance(m.get("name"), str) else names.get(res.tool_call_id)
            results.append(res)
    call.x_system_text = system
    call.x_first_user_text = first_user
    call.user_text = last_user
    call.x_tool_results = results
    call.x_tool_definitions = _tool_defs(req)


# --- response ----------------------------------------------------------------------------------------


def _choice0(choices: Any) -> tuple[dict[str, Any] | None, int]:
    """Choice with index 0 (else the first) and the number of other choices."""
    if not isinstance(choices, list) or not choices:
        return None, 0
    pick = None
    for ch in choices:
        if isinstance(ch, dict) and ch.get("index", 0) == 0:
            pick = ch
            break
    if pick is None and isinstance(choices[0], dict):
        pick = choices[0]
    return pick, len(choices) - 1


def _message_tool_calls(msg: dict[str, Any], call: Call, counters: Counter) -> None:
    """Tool calls of an assistant message; id-less calls (some local servers, legacy ``function_call``)
    get §6.2 pseudo ids so a resent history yields the same ids."""
    for tid, name, args in openai_chat_message_calls(msg):
        call.tool_calls.append(make_tool_call(tid, name, args, counters))


def apply_completion(obj: dict[str, Any], call: Call, counters: Counter) -> None:
    """Fill the call from a (possibly rebuilt) non-streaming ``chat.completion`` object."""
    if isinstance(obj.get("id"), str) and obj["id"]:
        call.response_id = obj["id"]
    if isinstance(obj.get("model"), str) and obj["model"]:
        call.model = obj["model"]
    choice, extra = _choice0(obj.get("choices"))
    if extra > 0:
        call.choices_ignored = extra
    if choice is not None:
        msg = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        call.assistant_text = clean_text(content_text(msg.get("content")))
        for key in _REASONING_KEYS:
            if isinstance(msg.get(key), str) and msg[key]:
                call.x_reasoning = msg[key]
                break
        if isinstance(msg.get("refusal"), str) and msg["refusal"]:
            call.refusal = msg["refusal"]
        _message_tool_calls(msg, call, counters)
        raw = choice.get("finish_reason")
        call.finish_reason_raw = raw if isinstance(raw, str) else None
    apply_usage(call, obj.get("usage"))


def _delta_has_content(delta: dict[str, Any]) -> bool:
    """§2.6: content, reasoning, refusal, or a tool-call name/arguments with a non-empty value."""
    for key in ("content", "reasoning_content", "reasoning", "refusal"):
        v = delta.get(key)
        if isinstance(v, str) and v:
            return True
    for tc in as_list(delta.get("tool_calls")):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if isinstance(fn, dict) and (fn.get("name") or fn.get("arguments")):
            return True
    fc = delta.get("function_call")
    return isinstance(fc, dict) and bool(fc.get("name") or fc.get("arguments"))


class _Rebuild(ChoiceStream):
    """Accumulates chunks of one streamed completion (choice 0)."""

    HEAD_KEYS = ("id", "model", "created", "system_fingerprint", "service_tier")

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, list[str]] = {"content": [], "reasoning_content": [], "reasoning": [],
                                           "refusal": []}
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.function_call: dict[str, Any] | None = None
        self.finish_reason: Any = None

    def choice0(self, ts: int, ch: dict[str, Any]) -> None:
        if ch.get("finish_reason") is not None:
            self.finish_reason = ch["finish_reason"]
        delta = ch.get("delta")
        if isinstance(delta, dict):
            self._delta(ts, delta)

    def _delta(self, ts: int, delta: dict[str, Any]) -> None:
        if _delta_has_content(delta):
            self.content(ts)
        for key, parts in self.text.items():
            v = delta.get(key)
            if isinstance(v, str):
                parts.append(v)
        for pos, tc in enumerate(as_list(delta.get("tool_calls"))):
            if isinstance(tc, dict):
                self._tool_delta(pos, tc)
        fc = delta.get("function_call")
        if isinstance(fc, dict):
            if self.function_call is None:
                self.function_call = {"name": "", "arguments": ""}
            if fc.get("name") and not self.function_call["name"]:
                self.function_call["name"] = fc["name"]
            if isinstance(fc.get("arguments"), str):
                self.function_call["arguments"] += fc["arguments"]

    def _tool_delta(self, pos: int, tc: dict[str, Any]) -> None:
        """Merge by ``index``; servers that omit it get one entry per new id (else the last one)."""
        idx = tc.get("index")
        if not isinstance(idx, int):
            tid = tc.get("id")
            known = [i for i, e in self.tool_calls.items() if tid and e["id"] == tid]
            if known:
                idx = known[0]
            elif tid or not self.tool_calls:
                idx = max(self.tool_calls, default=-1) + 1
            else:
                idx = max(self.tool_calls)
        entry = self.tool_calls.get(idx)
        if entry is None:
            entry = {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            self.tool_calls[idx] = entry
        if isinstance(tc.get("id"), str) and tc["id"] and not entry["id"]:
            entry["id"] = tc["id"]
        if isinstance(tc.get("type"), str) and tc["type"]:
            entry["type"] = tc["type"]
        fn = tc.get("function")
        if isinstance(fn, dict):
            if isinstance(fn.get("name"), str) and fn["name"] and not entry["function"]["name"]:
                entry["function"]["name"] = fn["name"]
            if isinstance(fn.get("arguments"), str):
                entry["function"]["arguments"] += fn["arguments"]

    def completion(self) -> dict[str, Any]:
        """The non-streaming ``chat.completion`` shape with whatever arrived."""
        msg: dict[str, Any] = {"role": "assistant",
                               "content": "".join(self.text["content"]) if self.text["content"] else None}
        for key in _REASONING_KEYS:
            if self.text[key]:
                msg[key] = "".join(self.text[key])
        msg["refusal"] = "".join(self.text["refusal"]) if self.text["refusal"] else None
        if self.tool_calls:
            msg["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        if self.function_call is not None:
            msg["function_call"] = self.function_call
        obj: dict[str, Any] = {"id": self.head.get("id"), "object": "chat.completion"}
        if "created" in self.head:
            obj["created"] = self.head["created"]
        obj["model"] = self.head.get("model")
        obj["choices"] = [{"index": 0, "message": msg, "finish_reason": self.finish_reason}]
        obj["usage"] = self.usage
        for key in ("system_fingerprint", "service_tier"):
            if key in self.head:
                obj[key] = self.head[key]
        return obj


def count_content_units(ex: Exchange) -> int:
    """Content-bearing chunks of choice 0 (§2.7 output estimate for streams without usage)."""
    return rebuild(_Rebuild(), ex, None).content_units


def decode(ex: Exchange, req: dict[str, Any], call: Call, counters: Counter) -> int | None:
    """Fill the call from the request and the (streamed or whole) response; returns first_token ts_us."""
    decode_request(req, call, counters)
    return decode_choices(ex, call, counters, _Rebuild, lambda obj, c: apply_completion(obj, c, counters))
