"""Snapshot tests (pytest-textual-snapshot): each view at a comfortable size with the metrics pane, and
each view on an 80×24 16-colour terminal. The data is ``storegen.synth_rows`` (deterministic and
independent of engine changes), so a snapshot changes only when the UI does.

Update after a deliberate UI change with ``pytest tests/tui/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections import Counter

import pytest

from heron_tui.app import AppOptions, HeronApp

VIEW_KEYS = [("1", "turns"), ("2", "sessions"), ("3", "calls"), ("4", "insights"), ("5", "services"),
             ("6", "pipeline")]
PIPELINE = Counter({"packets_read": 2680, "bytes_read": 574824, "packets_decoded": 2680, "flows_created": 41,
                    "flows_closed": 41, "requests": 112, "responses": 112, "exchanges_complete": 112,
                    "sse_events": 1630, "calls_detected.anthropic": 29, "detected_by_route": 108,
                    "exchanges_not_llm": 4, "calls_received": 108, "turns_finalized.complete": 20,
                    "turns_finalized.incomplete": 6, "rows_written.calls": 108, "tcp_retransmits": 3,
                    "duplicates_skipped": 0, "parse_errors": 1})


def app(store, theme: str = "dark", metrics: bool = True) -> HeronApp:
    return HeronApp(store, None, AppOptions(source_label="bench (2,000 calls)", theme=theme, metrics=metrics,
                                            pipeline_counters=PIPELINE))


def before(*keys: str):
    async def run(pilot) -> None:
        await pilot.app.wait_idle()
        pilot.app.filterbar.input.cursor_blink = False  # a blinking cursor makes screenshots random
        await pilot.pause()
        for k in keys:
            await pilot.press(k)
            await pilot.app.wait_idle()
        await pilot.pause()

    return run


@pytest.mark.parametrize("key,view", VIEW_KEYS)
def test_view(snap_compare, synth_store, key, view):
    assert snap_compare(app(synth_store), terminal_size=(130, 36), run_before=before(key))


@pytest.mark.parametrize("key,view", VIEW_KEYS)
def test_view_80x24_16_colours(snap_compare, synth_store, key, view):
    assert snap_compare(app(synth_store, theme="16", metrics=False), terminal_size=(80, 24),
                        run_before=before(key))


def test_filter_applied_and_sorted(snap_compare, synth_store):
    keys = ("slash", *"agent == claude-cli && ttft > 2s", "enter", "s", "s", "s", "home", "m", "down", "m")
    assert snap_compare(app(synth_store), terminal_size=(130, 36), run_before=before(*keys))


def test_filter_error_and_field_help(snap_compare, synth_store):
    keys = ("slash", *"cost > 0.10 && ", "question_mark", *"agnt")
    assert snap_compare(app(synth_store, metrics=False), terminal_size=(110, 40), run_before=before(*keys))


def test_help_screen(snap_compare, synth_store):
    assert snap_compare(app(synth_store, metrics=False), terminal_size=(110, 40), run_before=before("question_mark"))


def test_light_theme(snap_compare, synth_store):
    assert snap_compare(app(synth_store, theme="light"), terminal_size=(130, 36), run_before=before("3"))
