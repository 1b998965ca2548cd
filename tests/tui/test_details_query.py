"""heron_core.query.details: call_detail, body, turn_detail, conversation blocks."""

from __future__ import annotations

from heron_core.query.details import Block, body, call_detail, conversation, turn_detail
from tests.export.store_builder import StoreBuilder
from tests.tui.detail_fixtures import ANTHROPIC_SSE, anthropic_store, timeline_store


def test_call_detail_shape():
    b = anthropic_store()
    d = call_detail(b.conn, "call-anthropic-1")
    assert list(d) == ["call", "exchange", "bodies", "tool_calls", "tool_results", "hop_peer", "insights"]
    call = d["call"]
    assert call["call_id"] == "call-anthropic-1" and call["turn_id"] == "turn-anthropic"
    assert call["tool_calls"] == [{"id": "toolu_01READ", "name": "Read", "arguments": {"path": "README.md"}}]
    assert call["connection"]["protocol"] == "tcp" and "usage_raw" in call and "parent_tool_call_id" in call
    assert d["exchange"]["request_headers"][0] == ["Host", "api.example.com"]
    assert d["exchange"]["stream_format"] == "sse"
    assert set(d["bodies"]) == {"request", "response", "response_object"}
    resp = d["bodies"]["response"]
    assert resp["text"] == ANTHROPIC_SSE and resp["is_text"] and not resp["truncated"]
    assert resp["original_bytes"] == len(ANTHROPIC_SSE) and resp["stored_bytes"] > 0
    assert d["hop_peer"] is None and d["tool_calls"] == [] and d["insights"] == []
    assert call_detail(b.conn, "missing") is None


def test_binary_body_bytes_and_body_helper():
    b = StoreBuilder()
    b.add_call("bin", "openai-chat", {"model": "m", "messages": []}, None, raw_response=b"\xff\xfe\x00binary")
    b.flush()
    d = call_detail(b.conn, "bin")
    assert (
        d["bodies"]["response"]["bytes"] == b"\xff\xfe\x00binary" and not d["bodies"]["response"]["is_text"]
    )
    assert body(b.conn, "bin", "response") == (b"\xff\xfe\x00binary", False, False)
    assert body(b.conn, "bin", "response_object") is None
    blocks = conversation(d)
    assert blocks[-1].kind == "note" and blocks[-1].text.startswith("no rebuilt response (missing)")


def test_hop_peer_tool_rows_and_insights():
    b = timeline_store()
    b.add_call(
        "outer",
        "anthropic",
        {"model": "m", "messages": []},
        None,
        hop_role="proxy_in",
        hop_peer_call_id="m1",
        start=20,
    )
    b.flush()
    d = call_detail(b.conn, "outer")
    assert d["hop_peer"]["call_id"] == "m1"
    m1 = call_detail(b.conn, "m1")
    assert [t["name"] for t in m1["tool_calls"]] == ["Task", "Read"]
    assert m1["tool_calls"][0]["arguments"] == {"prompt": "explore"}
    m2 = call_detail(b.conn, "m2")
    assert [t["tool_call_id"] for t in m2["tool_results"]] == ["toolu_task", "toolu_read"]
    assert [i["kind"] for i in m2["insights"]] == ["retry_storm"]


def test_turn_detail_members_order_and_rows():
    b = timeline_store()
    d = turn_detail(b.conn, "t-1")
    assert d["turn"]["status"] == "incomplete" and d["turn"]["call_ids"][0] == "m1"
    assert [c["call_id"] for c in d["calls"]] == ["m1", "s1", "s2", "m2", "m3", "m4"]
    s1 = d["calls"][1]
    assert (s1["subagent"], s1["parent_tool_call_id"]) == ("Explore", "toolu_task")
    assert (d["calls"][4]["attempt"], d["calls"][4]["retry_of"]) == (2, "m2")
    assert [(t["call_id"], t["tool_call_id"]) for t in d["tool_calls"]] == [
        ("m1", "toolu_task"),
        ("m1", "toolu_read"),
        ("m3", "toolu_bash"),
    ]
    assert [i["insight_id"] for i in d["insights"]] == ["i-1", "i-2"]
    assert turn_detail(b.conn, "nope") is None


def test_turn_detail_finds_calls_by_turn_id_too():
    b = StoreBuilder()
    c1 = b.add_call("a", "openai-chat", {"model": "m", "messages": []}, None)
    b.add_call("late", "openai-chat", {"model": "m", "messages": []}, None, start=3, turn_id="t")
    b.add_turn("t", [c1])
    b.flush()
    b.conn.execute("UPDATE calls SET turn_id = 't' WHERE call_id = 'late'")
    assert [c["call_id"] for c in turn_detail(b.conn, "t")["calls"]] == ["a", "late"]


def test_conversation_blocks_anthropic():
    blocks = conversation(call_detail(anthropic_store().conn, "call-anthropic-1"))
    assert blocks == [
        Block("system", "You are a coding agent."),
        Block("user", "What is in README.md?"),
        Block("thinking", "I should read the file first.", source="response"),
        Block("assistant", "Let me look.", source="response"),
        Block(
            "tool_call",
            None,
            name="Read",
            arguments={"path": "README.md"},
            id="toolu_01READ",
            source="response",
        ),
    ]


def test_conversation_tool_results_errors_and_dropped_parts():
    b = StoreBuilder()
    req = {
        "model": "c",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image", "source": {}}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_x", "name": "Bash", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_x", "content": "boom", "is_error": True}
                ],
            },
        ],
    }
    b.add_call("c", "anthropic", req, {"content": []})
    blocks = conversation(call_detail(b.flush().conn, "c"))
    assert blocks[0] == Block("user", "look", dropped=["image"])
    assert blocks[2] == Block("tool_result", "boom", name="Bash", id="toolu_x", is_error=True)
    assert blocks[3] == Block("assistant", None, source="response")


def test_conversation_notes_for_unreadable_bodies():
    b = StoreBuilder()
    b.add_call("bad", "gemini", b"{nope", {"candidates": []})
    b.add_call("odd", "openai-chat", {"model": "m", "prompt": "p"}, {"choices": []}, start=1)
    b.add_call(
        "err",
        "anthropic",
        {"model": "m", "messages": []},
        None,
        start=2,
        raw_response=b"x",
        error={"source": "http", "type": "overloaded_error", "message": "Overloaded"},
    )
    b.flush()
    assert conversation(call_detail(b.conn, "bad"))[0] == Block(
        "note", "request body not valid JSON: the history cannot be shown (see Request)"
    )
    assert conversation(call_detail(b.conn, "odd"))[0].text.startswith("request body not understood")
    last = conversation(call_detail(b.conn, "err"))[-1]
    assert last.kind == "note" and last.text.endswith("error: overloaded_error: Overloaded")
