"""Tool-call ids per wire API message (wire/tool_ids.py): own ids kept, §6.2 pseudo ids for the rest, the
message signature made only when needed."""

from __future__ import annotations

from heron_core.wire.tool_ids import (
    gemini_call_ids,
    gemini_parts_signature,
    message_call_ids,
    ollama_call_ids,
    ollama_message_signature,
    openai_chat_message_calls,
    pseudo_signature,
    pseudo_tool_id,
)


def test_own_ids_are_kept_and_the_signature_is_not_made():
    def no_signature() -> str:
        raise AssertionError("signature made although every call has an id")

    assert message_call_ids(["a", "b"], no_signature) == ["a", "b"]
    assert message_call_ids([], no_signature) == []


def test_pseudo_ids_count_every_call_of_the_message():
    made = []

    def sig() -> str:
        made.append(1)
        return "SIG"

    assert message_call_ids(["a", None, " ", 7], sig) == [
        "a", pseudo_tool_id("SIG", 1), pseudo_tool_id("SIG", 2), pseudo_tool_id("SIG", 3)]
    assert made == [1]  # once per message


def test_openai_chat_idless_calls_and_legacy_function_call():
    msg = {"content": "ok", "tool_calls": [
        {"id": "call_1", "function": {"name": "a", "arguments": "{}"}},
        {"function": {"name": "b", "arguments": '{"x": 1}'}}]}
    sig = pseudo_signature([("t", "ok"), ("f", "a", "{}"), ("f", "b", '{"x": 1}')])
    assert openai_chat_message_calls(msg) == [("call_1", "a", "{}"), (pseudo_tool_id(sig, 1), "b", '{"x": 1}')]
    legacy = {"content": None, "function_call": {"name": "f", "arguments": "{}"}}
    assert openai_chat_message_calls(legacy) == [
        (pseudo_tool_id(pseudo_signature([("f", "f", "{}")]), 0), "f", "{}")]


def test_gemini_and_ollama_messages():
    parts = [{"text": "t"}, {"functionCall": {"name": "g", "args": {}}}, {"functionCall": {"id": "fc1", "name": 3}}]
    assert gemini_call_ids(parts) == [(pseudo_tool_id(gemini_parts_signature(parts), 0), "g"), ("fc1", None)]
    msg = {"content": "", "tool_calls": [{"function": {"name": "o", "arguments": {}}}, "junk", {"id": "x"}]}
    assert ollama_call_ids(msg) == [(pseudo_tool_id(ollama_message_signature(msg), 0), "o"), ("x", None)]
    assert ollama_call_ids("not a message") == []
