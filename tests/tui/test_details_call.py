"""CallDetailScreen: tab contents for an anthropic streamed call with thinking and tools (hand-made and
captured), an openai-chat call and a gemini call (captured); keys; big and capped bodies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import duckdb
import pytest
from textual.widgets import Collapsible, Static, TabbedContent

from heron_core.config import Config
from heron_core.engine import Engine
from heron_core.query.details import call_detail
from heron_core.store.db import open_store
from heron_tui.screens import render
from heron_tui.screens.call_detail import CallDetailScreen
from tests.export.store_builder import StoreBuilder
from tests.tui.detail_fixtures import Host, anthropic_store

CAPTURES = Path(__file__).resolve().parents[2] / "testdata" / "captures"


def run_screen(conn, call_id: str, check, size=(150, 45)) -> None:
    """Show ``CallDetailScreen(conn, call_id)`` in a host app and run ``await check(app, pilot)``."""

    async def main() -> None:
        app = Host(lambda: CallDetailScreen(conn, call_id))
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await check(app, pilot)

    asyncio.run(main())


@pytest.fixture(scope="module")
def captured(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    """sdk_anthropic, sdk_openai and sdk_gemini captures ingested by the engine."""
    names = ["sdk_anthropic.pcap", "sdk_openai.pcap", "sdk_gemini.pcap"]
    if not all((CAPTURES / n).exists() for n in names):
        pytest.skip("captures not present")
    store = open_store(str(tmp_path_factory.mktemp("db") / "cap.duckdb"))
    engine = Engine(store, Config(), salt=b"fixed-test-salt")
    engine.ingest([str(CAPTURES / n) for n in names], [n.split(".")[0] for n in names])
    return store.conn


def _first(conn, where: str) -> str:
    row = conn.execute(f"SELECT call_id FROM calls WHERE {where} ORDER BY request_start LIMIT 1").fetchone()
    assert row is not None, where
    return row[0]


def test_anthropic_stream_with_thinking_and_tools_all_tabs():
    b = anthropic_store()

    async def check(app, pilot) -> None:
        screen = app.screen
        assert isinstance(screen, CallDetailScreen)
        summary = str(screen.query_one("#call-summary", Static).content)
        assert "anthropic · claude-sonnet-4-5 · 200 tool_use" in summary and "ttft 600 ms" in summary
        # Conversation: system, user, then the response: thinking (folded), text, tool call
        assert [(b.kind, b.source) for b in screen.blocks] == [
            ("system", "request"),
            ("user", "request"),
            ("thinking", "response"),
            ("assistant", "response"),
            ("tool_call", "response"),
        ]
        folds = list(screen.query(Collapsible))
        assert len(folds) == 1 and folds[0].collapsed and "thinking" in folds[0].title
        conv = screen.tab_text("conversation")
        assert "── tool call → Read  toolu_01READ (response)" in conv and '"path": "README.md"' in conv
        # Request: pretty JSON
        req = screen.tab_text("request")
        assert req.startswith('{\n  "model": "claude-sonnet-4-5"')
        # Response: the rebuilt object, noted as such
        resp = screen.tab_text("response")
        assert (
            resp.splitlines()[0].startswith("rebuilt from the stream") and '"stop_reason": "tool_use"' in resp
        )
        # Stream: re-split events, first event timed, footnote
        stream = screen.tab_text("stream").splitlines()
        assert stream[0] == "sse stream: 12 events; first chunk +540 ms, first token +600 ms, end +2.0 s"
        assert stream[2].split() == ["#0", "+540", "ms", "message_start", stream[2].split()[-1]]
        assert stream[3].split()[:2] == ["#1", "content_block_start"]
        assert stream[-1] == render.STREAM_FOOTNOTE
        # HTTP: heads as stored (redacted)
        http = screen.tab_text("http")
        assert http.startswith("POST /v1/messages HTTP/1.1\nHost: api.example.com")
        assert (
            "x-api-key: [REDACTED:0badc0de]" in http
            and "HTTP/1.1 200\nContent-Type: text/event-stream" in http
        )
        # Hex: the stored raw stream
        hexd = screen.tab_text("hex").splitlines()
        assert hexd[2].startswith(
            "00000000  65 76 65 6e 74 3a 20 6d  65 73 73 61 67 65 5f 73  |event: message_s|"
        )
        # keys: 1–6, tab / shift+tab, y copies the current tab
        tabs = screen.query_one("#call-tabs", TabbedContent)
        await pilot.press("2")
        assert tabs.active == "request"
        await pilot.press("tab", "tab")
        assert tabs.active == "stream"
        await pilot.press("shift+tab")
        assert tabs.active == "response"
        await pilot.press("6", "tab")
        assert tabs.active == "conversation"  # wraps around
        await pilot.press("5", "y")
        assert app.clipboard == screen.tab_text("http")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, CallDetailScreen)

    run_screen(b.conn, "call-anthropic-1", check)


def test_big_body_cut_for_display_until_a():
    b = StoreBuilder()
    big = {"model": "m", "messages": [{"role": "user", "content": "x" * (300 * 1024)}]}
    b.add_call(
        "big", "openai-chat", big, {"choices": [{"message": {"content": "ok"}}]}, path="/v1/chat/completions"
    )
    b.flush()

    async def check(app, pilot) -> None:
        screen = app.screen
        before = screen.tab_text("request")
        assert "press a to show all" in before and len(before) < 260 * 1024
        await pilot.press("2", "a")
        after = screen.tab_text("request")
        assert "press a to show all" not in after and len(after) > 300 * 1024
        assert screen.tab_text("conversation").count("x" * 100) >= 1  # the block is shown (cut)

    run_screen(b.conn, "big", check)


def test_capped_body_shows_the_heron_marker():
    b = StoreBuilder()
    big = {"model": "m", "messages": [{"role": "user", "content": "y" * 5000}]}
    b.add_call("capped", "openai-chat", big, {"choices": [{"message": {"content": "ok"}}]}, cap=1000)
    b.flush()

    async def check(app, pilot) -> None:
        screen = app.screen
        req = screen.tab_text("request")
        assert req.startswith("stored body capped:") and "[… heron: " in req and "bytes elided …]" in req
        assert screen.blocks[0].kind == "note" and "capped in the store" in screen.blocks[0].text

    run_screen(b.conn, "capped", check)


def test_missing_call_says_so():
    b = StoreBuilder().flush()

    async def check(app, pilot) -> None:
        assert "no call nope" in str(app.screen.query_one("#call-summary", Static).content)
        await pilot.press("y", "2", "tab")  # no crash without data

    run_screen(b.conn, "nope", check)


def test_captured_anthropic_stream_with_thinking_and_tools(captured):
    cid = _first(captured, "wire_api = 'anthropic' AND is_stream AND tool_call_count > 0")

    async def check(app, pilot) -> None:
        screen = app.screen
        kinds = [b.kind for b in screen.blocks]
        assert "tool_call" in kinds and kinds[-1] == "tool_call"
        assert screen.tab_text("stream").startswith("sse stream: ")
        assert "|event: message_s|" in screen.tab_text("hex")
        assert "[REDACTED:" in screen.tab_text("http")

    run_screen(captured, cid, check)


def test_captured_anthropic_thinking_is_folded(captured):
    ids = [
        r[0]
        for r in captured.execute(
            "SELECT call_id FROM calls WHERE wire_api = 'anthropic' AND is_stream ORDER BY request_start"
        ).fetchall()
    ]
    from heron_core.query.details import conversation

    cid = next(i for i in ids if any(b.kind == "thinking" for b in conversation(call_detail(captured, i))))

    async def check(app, pilot) -> None:
        folds = list(app.screen.query(Collapsible))
        assert folds and all(f.collapsed for f in folds if "thinking" in f.title)

    run_screen(captured, cid, check)


def test_captured_openai_chat_call(captured):
    cid = _first(captured, "wire_api = 'openai-chat' AND NOT is_stream AND tool_call_count > 0")

    async def check(app, pilot) -> None:
        screen = app.screen
        kinds = [b.kind for b in screen.blocks]
        assert kinds[0] in ("system", "user") and kinds[-1] == "tool_call"
        assert screen.tab_text("stream") == "not a streamed response"
        assert screen.tab_text("response").startswith('{\n  "')
        assert "/chat/completions" in screen.tab_text("http").splitlines()[0]

    run_screen(captured, cid, check)


def test_captured_gemini_call_with_pseudo_ids(captured):
    cid = _first(captured, "wire_api = 'gemini' AND is_stream AND tool_call_count > 1")

    async def check(app, pilot) -> None:
        screen = app.screen
        calls = [b for b in screen.blocks if b.kind == "tool_call"]
        assert len(calls) >= 2 and all(b.id and b.id.startswith("tu-") for b in calls)
        assert screen.tab_text("stream").split(":")[0] in ("sse stream", "json-array stream")
        assert screen.tab_text("conversation").count("── tool call → ") >= 2

    run_screen(captured, cid, check)


def test_render_ndjson_stream_and_hexdump():
    b = StoreBuilder()
    lines = (
        b'{"message":{"content":"Hel"},"done":false}\n{"message":{"content":"lo"},"done":false}\nnot json\n'
    )
    b.add_call(
        "nd",
        "ollama",
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        {"message": {"role": "assistant", "content": "Hello"}, "done": True},
        raw_response=lines,
        stream_format="ndjson",
        path="/api/chat",
        ttft=0.5,
    )
    b.flush()
    d = call_detail(b.conn, "nd")
    text = render.stream_text(d).splitlines()
    assert text[0].startswith("ndjson stream: 3 events; first chunk +450 ms, first token +500 ms")
    assert text[2].split()[:3] == ["#0", "+450", "ms"]
    assert text[2].endswith('{"message":{"content":"Hel"},"done":false}')
    assert text[4].split()[:3] == ["#2", "invalid", "not"]
    assert render.hexdump(b"0123456789abcdef\x00\xff") == (
        "00000000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n"
        "00000010  00 ff                                             |..|"
    )
    assert render.hex_text(d).startswith(f"response body: {len(lines)} B stored\n\n00000000  7b 22 6d 65")
