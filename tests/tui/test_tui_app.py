"""Pilot tests: every key of the TUI on real captures, asserting what the screen and the app show."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from textual.command import CommandPalette
from textual.widgets import Static

from heron_core.config import Config
from heron_core.query.lists import HIDDEN_HOPS as HOPS
from heron_core.query.lists import SPECS
from heron_core.store.db import open_store
from heron_tui.app import AppOptions, HeronApp
from heron_tui.loader import Loader
from heron_tui.widgets.bars import StatusBar, ViewTabs
from heron_tui.widgets.dialogs import ExportScreen, HelpScreen
from tests.tui.tui_helpers import CAPTURES, ROOT, ingest


def make_app(store, **kw) -> HeronApp:
    kw.setdefault("metrics", False)
    return HeronApp(store, None, AppOptions(source_label="demo.pcap", **kw))


async def idle(app, pilot) -> None:
    await app.wait_idle()
    await pilot.pause()


def table_text(app) -> str:
    return "\n".join(app.list_view().table.visible_text())


def status_text(app) -> str:
    return str(app.screen_main.query_one(StatusBar).render())


def sql_count(store, entity: str, where: str = "TRUE") -> int:
    return store.conn.cursor().execute(f"SELECT count(*) FROM {entity} WHERE {where}").fetchone()[0]


async def test_views_switch_with_number_keys(demo_store):
    app = make_app(demo_store)
    async with app.run_test(size=(140, 36)) as pilot:
        await idle(app, pilot)
        assert app.current_view == "turns"
        assert "first user words" in table_text(app)
        expected = {"2": ("sessions", "turns"), "3": ("calls", "wire api"), "4": ("insights", "severity"),
                    "5": ("services", "server"), "1": ("turns", "agent")}
        for key, (view, header) in expected.items():
            await pilot.press(key)
            await idle(app, pilot)
            assert app.current_view == view
            assert app.screen_main.query_one("#views").current == f"view-{view}"
            assert header in table_text(app).splitlines()[0]
            if view != "services":
                where = HOPS if view == "calls" else "TRUE"
                assert app.list_view().count == sql_count(demo_store, view, where)
        await pilot.press("6")
        await idle(app, pilot)
        assert app.current_view == "pipeline" and app.focused is app.pipeline
        assert "Pipeline counters" in app.pipeline.text()
        tabs = str(app.screen_main.query_one(ViewTabs).render())
        assert f"Calls {sql_count(demo_store, 'calls', HOPS)}" in tabs


async def test_rows_show_real_values(demo_store):
    app = make_app(demo_store)
    async with app.run_test(size=(140, 36)) as pilot:
        await idle(app, pilot)
        await pilot.press("3")
        await idle(app, pilot)
        first = demo_store.conn.cursor().execute(
            "SELECT model, status_code, input_preview FROM calls ORDER BY request_start, call_id LIMIT 1").fetchone()
        line = table_text(app).splitlines()[1]
        assert first[0][:15] in line and str(first[1]) in line and first[2][:10] in line
        assert app.list_view().table.current_row[0] is not None


async def test_sort_cycles_and_reverses(demo_store):
    app = make_app(demo_store)
    async with app.run_test(size=(140, 36)) as pilot:
        await idle(app, pilot)
        view = app.list_view()
        assert view.sort_key == "start" and not view.sort_desc
        await pilot.press("s")
        await idle(app, pilot)
        assert view.sort_key == "agent"
        header = table_text(app).splitlines()[0]
        assert "agent▲" in header
        await pilot.press("s", "s", "s")  # status, calls, tokens
        await idle(app, pilot)
        assert view.sort_key == "tokens" and view.sort_desc  # numbers sort biggest first
        top = demo_store.conn.cursor().execute("SELECT max(total_tokens) FROM turns").fetchone()[0]
        assert view.table.current_row is not None and view.table.row_at(0)[2 + 4] == top
        await pilot.press("S")
        await idle(app, pilot)
        assert not view.sort_desc and "tokens▲" in table_text(app).splitlines()[0]
        low = demo_store.conn.cursor().execute("SELECT min(total_tokens) FROM turns").fetchone()[0]
        assert view.table.row_at(0)[2 + 4] == low


async def test_filter_apply_toggle_and_counts(demo_store):
    app = make_app(demo_store)
    async with app.run_test(size=(120, 30)) as pilot:
        await idle(app, pilot)
        total = sql_count(demo_store, "turns")
        await pilot.press("slash")
        assert app.focused is app.filterbar.input
        await pilot.press(*"agent == codex-cli", "enter")
        await idle(app, pilot)
        want = sql_count(demo_store, "turns", "agent_kind = 'codex-cli'")
        assert 0 < want < total
        assert app.list_view().count == want
        assert all("codex-cli" in line for line in table_text(app).splitlines()[1:want + 1])
        assert app.focused is app.list_view().table
        assert f"{want} of {total} turns" in status_text(app) and "filter on" in status_text(app)
        state = str(app.filterbar.query_one("#filter-state").render())
        assert state == f"on · {want} rows"
        # the filter applies to every view (calls: calls of codex turns → via agent on calls)
        await pilot.press("3")
        await idle(app, pilot)
        assert app.list_view().count == sql_count(demo_store, "calls", f"agent_kind = 'codex-cli' AND {HOPS}")
        await pilot.press("1", "ctrl+f")
        await idle(app, pilot)
        assert app.list_view().count == total and not app.filter_on
        assert "filter off" in status_text(app)
        await pilot.press("ctrl+f")
        await idle(app, pilot)
        assert app.list_view().count == want


async def test_filter_error_shown_in_place_and_not_applied(demo_store):
    app = make_app(demo_store)
    async with app.run_test(size=(120, 30)) as pilot:
        await idle(app, pilot)
        await pilot.press("slash", *"agnt == x")
        await pilot.pause()
        err = app.filterbar.query_one("#filter-error", Static)
        assert err.has_class("-shown")
        assert "did you mean 'agent'" in str(err.render()) and "^^^^" in str(err.render())
        await pilot.press("enter")
        await idle(app, pilot)
        assert app.filter_text == "" and app.list_view().count == sql_count(demo_store, "turns")
        for _ in range(4):
            await pilot.press("backspace")
        await pilot.press("home", "delete", "delete", "delete", "delete", *"agent")
        await pilot.pause()
        assert not err.has_class("-shown")


async def test_filter_help_completion_and_history(demo_store):
    app = make_app(demo_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await idle(app, pilot)
        await pilot.press("slash", "question_mark")
        await pilot.pause()
        help_ = app.filterbar.query_one("#filter-help", Static)
        assert help_.has_class("-shown") and "ttft" in str(help_.render())
        assert app.filterbar.input.value == ""  # '?' was not typed
        await pilot.press("question_mark")
        await pilot.pause()
        assert not help_.has_class("-shown")
        await pilot.press(*"text ~ wh?")  # inside a value '?' is a character (regex)
        assert app.filterbar.input.value == "text ~ wh?"
        app.filterbar.input.value = ""
        await pilot.press(*"ag")
        await pilot.pause()
        await pilot.press("tab")  # completes the field name
        assert app.filterbar.input.value == "agent"
        await pilot.press(*" == gen", "tab")
        assert app.filterbar.input.value == "agent == generic"
        await pilot.press("enter")
        await idle(app, pilot)
        await pilot.press("slash")
        app.filterbar.input.value = "stream"
        await pilot.press("enter")
        await idle(app, pilot)
        await pilot.press("slash", "up")
        assert app.filterbar.input.value == "stream"
        await pilot.press("up")
        assert app.filterbar.input.value == "agent == generic"
        await pilot.press("down", "down")
        assert app.filterbar.input.value == "stream"  # back to the draft
        await pilot.press("escape")
        assert app.focused is app.list_view().table


async def test_search_next_previous_without_filtering(demo_store):
    app = make_app(demo_store)
    async with app.run_test(size=(120, 30)) as pilot:
        await idle(app, pilot)
        await pilot.press("slash", *"agent == codex-cli", "escape")  # keep the text, don't filter
        assert app.filter_text == ""
        total = app.list_view().count
        cur = demo_store.conn.cursor()
        order = [r[0] for r in cur.execute(
            "SELECT agent_kind FROM turns ORDER BY start ASC NULLS LAST, turn_id ASC").fetchall()]
        hits = [i for i, a in enumerate(order) if a == "codex-cli"]
        table = app.list_view().table
        start = table.cursor
        await pilot.press("n")
        await idle(app, pilot)
        first = next(i for i in hits if i > start) if any(i > start for i in hits) else hits[0]
        assert table.cursor == first and table.current_row[2 + 1] == "codex-cli"
        await pilot.press("n")
        await idle(app, pilot)
        assert table.cursor == hits[(hits.index(first) + 1) % len(hits)]
        await pilot.press("N")
        await idle(app, pilot)
        assert table.cursor == first
        assert app.list_view().count == total  # nothing was filtered


async def test_enter_opens_detail_screens_and_escape_goes_back(demo_store):
    from heron_tui.screens.call_detail import CallDetailScreen
    from heron_tui.screens.turn_detail import TurnDetailScreen

    app = make_app(demo_store)
    async with app.run_test(size=(120, 30)) as pilot:
        await idle(app, pilot)
        turn_id = app.list_view().table.current_id
        await pilot.press("enter")
        await idle(app, pilot)
        assert isinstance(app.screen, TurnDetailScreen) and app.screen.turn_id == turn_id
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.screen_main
        await pilot.press("2", "enter")
        await idle(app, pilot)
        sid = app.list_view().table.current_id
        first = demo_store.conn.cursor().execute(
            "SELECT first_turn_id FROM sessions WHERE session_id = ?", [sid]).fetchone()[0]
        assert isinstance(app.screen, TurnDetailScreen) and app.screen.turn_id == first
        await pilot.press("escape", "3")
        await idle(app, pilot)
        call_id = app.list_view().table.current_id
        await pilot.press("enter")
        await idle(app, pilot)
        assert isinstance(app.screen, CallDetailScreen) and app.screen.call_id == call_id
        await pilot.press("escape", "5")
        await idle(app, pilot)
        server = app.list_view().table.current_id
        await pilot.press("enter")  # a service opens its calls
        await idle(app, pilot)
        assert app.current_view == "calls" and app.filter_text == f'server == "{server}"'
        assert app.list_view().count == sql_count(demo_store, "calls", f"server = '{server}' AND {HOPS}")


async def test_insights_open_their_turn(synth_store):
    from heron_tui.screens.turn_detail import TurnDetailScreen

    app = make_app(synth_store)
    async with app.run_test(size=(120, 30)) as pilot:
        await idle(app, pilot)
        await pilot.press("4")
        await idle(app, pilot)
        assert app.list_view().count == sql_count(synth_store, "insights") > 0
        iid = app.list_view().table.current_id
        await pilot.press("enter")
        await idle(app, pilot)
        want = synth_store.conn.cursor().execute("SELECT turn_id FROM insights WHERE insight_id = ?",
                                                 [iid]).fetchone()[0]
        assert isinstance(app.screen, TurnDetailScreen) and app.screen.turn_id == want


async def test_mark_and_export_sft(demo_store, in_tmp):
    app = make_app(demo_store)
    async with app.run_test(size=(120, 30)) as pilot:
        await idle(app, pilot)
        table = app.list_view().table
        a = table.current_id
        await pilot.press("m")
        b = table.current_id
        await pilot.press("m")
        assert table.marks == {a, b} and table.cursor == 2
        assert "2 marked" in status_text(app)
        assert table.visible_text()[1].startswith("●")
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen) and "2 marked turns" in app.screen.what
        path = app.screen.query_one("Input").value
        assert path.startswith("./heron-sft-") and path.endswith(".jsonl")
        await pilot.press("enter")
        await idle(app, pilot)
        out, result = app.last_export
        lines = (in_tmp / out).read_bytes().splitlines()
        assert result.exported == len(lines) and result.exported + sum(result.skipped.values()) == 2
        await pilot.press("E")
        await pilot.pause()
        app.screen.query_one("Input").value = "all.jsonl"
        await pilot.press("enter")
        await idle(app, pilot)
        out, result = app.last_export
        assert out == "all.jsonl"
        assert result.exported + sum(result.skipped.values()) == sql_count(demo_store, "turns")
        # Sessions view: the session scope
        await pilot.press("2", "e")
        await pilot.pause()
        app.screen.query_one("Input").value = "session.jsonl"
        await pilot.press("enter")
        await idle(app, pilot)
        assert app.last_export[0] == "session.jsonl" and (in_tmp / "session.jsonl").exists()
        # escape cancels
        await pilot.press("e", "escape")
        await idle(app, pilot)
        assert app.last_export[0] == "session.jsonl"


async def test_copy_writes_osc52(demo_store):
    app = make_app(demo_store)
    async with app.run_test(size=(120, 30)) as pilot:
        await idle(app, pilot)
        row = app.list_view().table.current_row
        await pilot.press("y")
        assert app.clipboard == f"{row[0]}\t{' '.join(row[-1].split())}"
        assert app.last_copy == app.clipboard


async def test_metrics_pane_toggle(demo_store):
    app = make_app(demo_store)
    async with app.run_test(size=(120, 36)) as pilot:
        await idle(app, pilot)
        assert app.metrics.display is False or app.metrics.has_class("-hidden")
        await pilot.press("M")
        await idle(app, pilot)
        vals = app.metrics.values()
        assert not app.metrics.has_class("-hidden")
        assert vals["calls_s"] != "–" and vals["ttft_p95"].endswith("s")
        assert "all calls" in app.metrics.border_title
        await pilot.press("3")  # on the calls list, the filter selects the calls themselves
        await idle(app, pilot)
        await pilot.press("slash", *"status >= 500", "enter")
        await idle(app, pilot)
        assert "filter ·" in app.metrics.border_title and app.metrics.values()["error_rate"] == "100%"
        await pilot.press("M")
        assert app.metrics.has_class("-hidden")


async def test_tab_cycles_panes(demo_store):
    app = make_app(demo_store, metrics=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await idle(app, pilot)
        table = app.list_view().table
        assert app.focused is table
        await pilot.press("tab")
        assert app.focused is app.metrics
        await pilot.press("tab")
        assert app.focused is app.filterbar.input
        await pilot.press("tab")
        assert app.focused is table
        await pilot.press("shift+tab")
        assert app.focused is app.filterbar.input


async def test_help_lists_keys_in_effect(demo_store):
    app = make_app(demo_store, keymap={"filter": "ctrl+l"}, keys_source="test.toml")
    async with app.run_test(size=(120, 40)) as pilot:
        await idle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.text()
        assert "ctrl+l" in text and "Edit the display filter" in text and "ctrl+f" in text
        assert "cost > 0.10" in text and "ttft" in text
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.screen_main
        await pilot.press("ctrl+l")  # the override works
        assert app.focused is app.filterbar.input


async def test_command_palette_switches_views_and_theme(demo_store):
    app = make_app(demo_store)
    async with app.run_test(size=(120, 30)) as pilot:
        await idle(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"View: Calls")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await idle(app, pilot)
        assert app.current_view == "calls"
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Export SFT: selected", "Export SFT: all matching", "Theme: Light"} <= set(commands)
        app.set_theme("16")
        assert app.theme == "ansi-dark"


async def test_quit(demo_store):
    app = make_app(demo_store)
    async with app.run_test(size=(80, 24)) as pilot:
        await idle(app, pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_no_turns_falls_back_to_calls():
    store = ingest([CAPTURES / "sdk_openai.pcap"], derive=False)
    store.conn.execute("DELETE FROM turns")  # plain SDK traffic without agent turns
    store.conn.execute("DELETE FROM sessions")
    app = make_app(store)
    async with app.run_test(size=(100, 30)) as pilot:
        await idle(app, pilot)
        await pilot.pause(0.1)
        assert app.current_view == "calls"
        assert app.list_view().count == sql_count(store, "calls", HOPS)


@pytest.fixture(scope="module")
def big_pcap(tmp_path_factory):
    """~30 MB synthetic capture: long enough (seconds) to see rows before the end of the file."""
    out = tmp_path_factory.mktemp("big") / "scale.pcap"
    subprocess.run([sys.executable, "-m", "testdata.synth", "scale", "-o", str(out), "--mb", "24", "--seed", "3"],
                   check=True, cwd=ROOT, capture_output=True)
    return out


async def test_progressive_load_follow_and_pipeline(big_pcap, monkeypatch):
    import time

    import heron_tui.loader as loader_mod

    real = loader_mod.open_file_source

    def paced(*args, **kwargs):  # a load that lasts seconds however fast the machine: rows must show first
        for n, item in enumerate(real(*args, **kwargs)):
            if n % 200 == 0:
                time.sleep(0.02)
            yield item

    monkeypatch.setattr(loader_mod, "open_file_source", paced)
    store = open_store(None)
    loader = Loader(store, Config(), [str(big_pcap)], ["scale"], flush_s=0.2)
    app = HeronApp(store, loader, AppOptions(source_label="scale.pcap", metrics=False, poll_s=0.1))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("3")  # calls: every call counts, no wait for turns
        seen_partial = None
        for _ in range(400):
            await asyncio.sleep(0.05)
            view = app.list_view()
            if view.count and not loader.done:
                seen_partial = view.count
                break
        assert seen_partial, "rows appear while the file is still being read"
        assert "loading" in status_text(app)
        await pilot.press("f")  # follow: cursor on the last row, kept there as rows arrive
        table = app.list_view().table
        # rows keep arriving: the cursor catches up with the refresh that brought them, so look until it
        # is seen on the last row (never a fixed pause: the loader may add rows in between)
        for _ in range(200):
            await pilot.pause(0.02)
            if table.cursor == table.row_count - 1:
                break
        assert app.follow and table.cursor == table.row_count - 1
        while not loader.done:
            await asyncio.sleep(0.05)
        await idle(app, pilot)
        assert table.row_count == sql_count(store, "calls", HOPS) > seen_partial
        assert table.cursor == table.row_count - 1
        assert "follow" in status_text(app) and "loaded" in status_text(app)
        await pilot.press("up")
        assert "follow (paused)" in status_text(app)
        await pilot.press("6")
        await idle(app, pilot)
        text = app.pipeline.text(160)
        assert "scale" in text and "ok" in text and "packets_read" in text and "reader" in text


@pytest.mark.parametrize("key,view,columns", [
    ("1", "turns", ["agent", "status", "words"]),
    ("2", "sessions", ["agent", "turns", "words"]),
    ("3", "calls", ["model", "status", "preview"]),
    ("4", "insights", ["severity", "kind", "summary"]),
    ("5", "services", ["server", "calls", "models"]),
])
async def test_80x24_16_colours_key_columns_visible(synth_store, key, view, columns):
    app = make_app(synth_store, theme="16")
    async with app.run_test(size=(80, 24)) as pilot:
        await idle(app, pilot)
        assert app.theme == "ansi-dark"
        await pilot.press(key)
        await idle(app, pilot)
        shown = app.list_view().table.visible_columns()
        assert set(columns) <= set(shown), shown
        lines = app.list_view().table.visible_text()
        assert len(lines) >= 10 and all(len(line) == 80 for line in lines)
        assert lines[1].strip()  # a data row is drawn
        assert app.current_view == view and SPECS[view].title


async def test_80x24_pipeline_view(demo_store):
    app = make_app(demo_store, theme="16")
    async with app.run_test(size=(80, 24)) as pilot:
        await idle(app, pilot)
        await pilot.press("6")
        await idle(app, pilot)
        assert "Pipeline counters" in app.pipeline.text(80)
