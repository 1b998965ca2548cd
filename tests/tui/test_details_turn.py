"""TurnDetailScreen and its timeline model: rows, nesting, bars and marks, header, insights, navigation."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import DataTable, Static

from heron_core.query.details import turn_detail
from heron_tui.screens.call_detail import CallDetailScreen
from heron_tui.screens.timeline import ABORT, GEN, MARK, TOOL, TOOL_OPEN, WAIT, Scale, build_rows
from heron_tui.screens.turn_detail import TurnDetailScreen
from tests.tui.detail_fixtures import Host, timeline_store

W = 40  # 10 s turn over 40 cells: 4 cells per second


@pytest.fixture(scope="module")
def store():
    return timeline_store()


def test_rows_order_depth_and_targets(store):
    rows = build_rows(turn_detail(store.conn, "t-1"), W)
    assert [(r.kind, r.depth, r.call_id) for r in rows] == [
        ("call", 0, "m1"),
        ("tool", 1, "m2"),  # Task: result carried by m2 → enter opens m2
        ("call", 2, "s1"),  # linked by parent_tool_call_id
        ("call", 2, "s2"),  # unlinked: placed under the spawn-like tool whose wait contains its start
        ("tool", 1, "m2"),  # Read
        ("call", 0, "m2"),
        ("call", 0, "m3"),
        ("tool", 1, "m3"),  # Bash: never resolved → opens the issuing call
        ("call", 0, "m4"),
    ]
    assert rows[1].key == "tool:m1:toolu_task" and rows[1].label.plain.strip() == "⚙ Task"
    assert rows[2].label.plain == "    ● Explore"
    assert rows[6].label.plain == "● main ↻2"


def test_bars_marks_and_colors(store):
    rows = {r.key: r for r in build_rows(turn_detail(store.conn, "t-1"), W)}
    m1 = rows["m1"].bar
    assert m1.plain == WAIT * 2 + MARK + GEN + " " * 36  # 0→1 s, first token at 0.4 s (cell 2)
    assert m1.spans[0].style == "green"
    s1 = rows["s1"].bar.plain  # 1.5→3 s: cells 6..11, first token 1.75 s → cell 7
    assert s1 == " " * 6 + WAIT + MARK + GEN * 4 + " " * 28
    assert rows["s1"].bar.spans[0].style == "cyan"
    task = rows["tool:m1:toolu_task"].bar.plain  # wait 1 s → 5 s (result at m2's request_start)
    assert task == " " * 4 + TOOL * 16 + " " * 20
    m2 = rows["m2"].bar  # error: no first token
    assert m2.plain.strip() == WAIT * 4 and m2.spans[0].style == "red"
    assert rows["m3"].bar.spans[0].style == "yellow"  # retry (attempt 2)
    bash = rows["tool:m3:toolu_bash"].bar.plain  # missing: drawn to the turn's end
    assert bash == " " * 30 + TOOL_OPEN * 10
    assert rows["tool:m3:toolu_bash"].status.plain == "missing"
    m4 = rows["m4"].bar  # aborted: 8→10 s, first token 8.5 s
    assert m4.plain == " " * 32 + WAIT * 2 + MARK + GEN * 4 + ABORT and m4.spans[0].style == "magenta"
    assert rows["m2"].status.plain == "529 error"


def test_scale_keeps_one_cell_inside_width():
    sc = Scale(0.0, 10.0, 40)
    assert sc.cells(10.0, 10.0) == (39, 40)
    assert sc.cells(2.0, 2.01) == (8, 9)
    assert sc.col(None, 5) == 5 and sc.col(-3) == 0 and sc.col(99) == 40


def test_screen_header_table_insights_and_navigation(store):
    asyncio.run(_navigation(store))


async def _navigation(store) -> None:
    app = Host(lambda: TurnDetailScreen(store.conn, "t-1", bar_width=W))
    async with app.run_test(size=(170, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, TurnDetailScreen)
        header = str(screen.query_one("#turn-header", Static).content)
        assert "claude-cli" in header and "incomplete (idle)" in header and "10.0 s" in header
        assert "6 calls (4 main, 2 sub-agent, 1 retry)" in header
        assert "▸ user: fix the bug" in header and "◂ answer: –" in header
        table = screen.query_one("#timeline", DataTable)
        assert table.row_count == 9
        assert [str(c.label) for c in table.columns.values()][1] == "0" + "10.0 s".rjust(W - 1)
        insights = str(screen.query_one("#turn-insights", Static).content)
        assert "retry_storm: 3 attempts of one request" in insights and "stalled_tool" in insights
        await pilot.press("down", "down", "enter")  # third row: sub-agent call s1
        await pilot.pause()
        assert isinstance(app.screen, CallDetailScreen) and app.screen.call_id == "s1"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("down", "enter")  # fourth row: s2
        await pilot.pause()
        assert app.screen.call_id == "s2"


def test_missing_turn_says_so(store):
    async def run() -> None:
        app = Host(lambda: TurnDetailScreen(store.conn, "nope"))
        async with app.run_test(size=(100, 20)):
            assert "no turn nope" in str(app.screen.query_one("#turn-header", Static).content)

    asyncio.run(run())


def test_value_formats():
    from heron_tui.screens import fmt

    assert [fmt.ms(v) for v in (None, 850, 12_340, 245_000, 7_500_000)] == [
        "–",
        "850 ms",
        "12.3 s",
        "4m05s",
        "2h05m",
    ]
    assert [fmt.tokens(v) for v in (None, 950, 12_345, 1_234_567)] == ["–", "950", "12.3k", "1.2M"]
    assert [fmt.cost(v) for v in (None, 0, 0.0042, 1.5)] == ["–", "$0", "$0.0042", "$1.50"]
    assert [fmt.nbytes(v) for v in (None, 10, 2048, 3 * 1024 * 1024)] == ["–", "10 B", "2.0 KiB", "3.0 MiB"]
    assert fmt.one_line("a\n  b " + "c" * 200, 10) == "a b ccccc…" and fmt.one_line(None) == ""
