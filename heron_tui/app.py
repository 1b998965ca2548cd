"""heron-tui: the Textual app — views of turns, sessions, calls, insights, services and pipeline health.

The UI thread only draws. Data arrives through a *feed* writing into the store on its own thread:
``Loader`` (capture files, one engine per file, ``--workers 0``) or ``PipelineRun`` (the engine's
pipeline: live capture, ZMQ probes, eBPF, paced replay, files with ``--workers N``). Every ~0.5 s a
poll re-counts the tables through the UI's own cursors and the visible list refreshes its rows in place,
so rows show up while a file is read or a capture runs. A running pipeline also publishes its in-memory
records (in-progress turns, calls in flight), which the turns and calls lists show merged with the
stored rows (``heron_tui.overlay``). Every query (pages, filters, search, sparklines, exports) runs in a
thread worker and answers with a generation number, so the screen keeps the last good result until the
new one is complete.

Keys come from one named table (``heron_tui.keys``), overridable by the user; list-screen keys live on
``MainScreen`` so detail screens pushed on top don't inherit them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer

from heron_core.query.filterlang import FilterError
from heron_core.query.lists import SPECS, compile_for, table_counts
from heron_core.query.sparks import calls_filter
from heron_core.query.sparks import compute as compute_sparks
from heron_tui import keys
from heron_tui.loader import StoreReader
from heron_tui.views.feedinfo import feed_status
from heron_tui.views.lists import ListView
from heron_tui.views.pipeline import PipelineView
from heron_tui.views.row_actions import RowActions
from heron_tui.widgets.bars import VIEWS, Status, StatusBar, ViewTabs
from heron_tui.widgets.dialogs import HelpScreen
from heron_tui.widgets.filterbar import FilterBar, FilterInput
from heron_tui.widgets.metrics import MetricsPane

THEMES = {"dark": "textual-dark", "light": "textual-light", "16": "ansi-dark", "low": "ansi-dark",
          "ansi": "ansi-dark"}
THEME_LABELS = (("dark", "Dark"), ("light", "Light"), ("16", "16-colour (SSH, old terminals)"))
SPARK_EVERY_S = 2.0
LIVE_WINDOW_S = 300.0
LIVE_MIN_WINDOW_S = 60.0
"""Live and replayed sources: the sparklines cover the event time since the capture started, at least a
minute, at most the last five minutes (then they scroll); a finished capture spans its data."""


@dataclass
class AppOptions:
    source_label: str = "heron"
    theme: str = "dark"
    keymap: dict[str, str] = field(default_factory=dict)
    keys_source: str = "built-in defaults"
    metrics: bool | None = None  # None: shown when the terminal has >= 32 lines
    initial_filter: str = ""
    poll_s: float = 0.5
    pipeline_counters: Counter | None = None  # browsing a database: counters of its last run


class MainScreen(Screen):
    """The lists screen: tabs, metrics, the six views, filter bar, status bar."""

    BINDINGS = keys.bindings("main", "app.")
    DEFAULT_CSS = """
    MainScreen #views { height: 1fr; }
    MainScreen #bottom { height: auto; }
    MainScreen MetricsPane.-hidden { display: none; }
    """

    def compose(self) -> ComposeResult:
        app: HeronApp = self.app  # type: ignore[assignment]
        yield ViewTabs(id="tabs")
        yield MetricsPane(id="metrics")
        with ContentSwitcher(initial="view-turns", id="views"):
            for name, spec in SPECS.items():
                yield ListView(spec, app.reader, id=f"view-{name}")
            yield PipelineView(id="view-pipeline")
        with Vertical(id="bottom", classes="bottom"):
            yield FilterBar(id="filterbar")
            yield StatusBar(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.app.start_ui(self)  # type: ignore[attr-defined]


class HeronApp(RowActions, App):
    """The terminal UI over one store, fed by a ``Loader`` or a ``PipelineRun`` (``loader``), or browsing
    a database (``loader=None``)."""

    TITLE = "heron"
    BINDINGS = keys.bindings("app")

    def __init__(self, store: Any, loader: Any = None, options: AppOptions | None = None) -> None:
        super().__init__()
        self.store = store
        self.reader = StoreReader(store.conn, loader.live_rows if loader is not None else None)
        self.loader = loader
        self.opts = options or AppOptions()
        self.current_view = "turns"
        self.filter_text = ""
        self.filter_on = True
        self.follow = False
        self.counts: dict[str, int] = {}
        self.last_export: tuple[str, Any] | None = None
        self.last_copy: str | None = None
        self._view_chosen = False
        self._spark_at = 0.0
        self._spark_gen = 0
        self._sparks_pending = False
        self._poll_timer: Any = None
        self._counting = False
        self._counts_seq = self._counts_applied = 0
        self._live_t0: float | None = None
        self._main: MainScreen | None = None
        self._loaded_at: float | None = None
        self._started = time.time()

    def get_default_screen(self) -> Screen:
        return MainScreen()

    # --- widgets ------------------------------------------------------------------------------------

    def list_view(self, name: str | None = None) -> ListView | None:
        name = name or self.current_view
        if name not in SPECS:
            return None
        return self.screen_main.query_one(f"#view-{name}", ListView)

    def _alive(self) -> bool:
        """The lists screen is up: answers of workers and feed polls that arrive while the app shuts
        down (a live feed keeps them coming) are dropped instead of querying widgets being removed."""
        main = self._main
        return main is not None and not self._closing and not main._closing and main.is_attached

    @property
    def screen_main(self) -> MainScreen:
        """The lists screen (whatever is pushed on top of it)."""
        assert self._main is not None, "the lists screen is not mounted yet"
        return self._main

    @property
    def filterbar(self) -> FilterBar:
        return self.screen_main.query_one(FilterBar)

    @property
    def metrics(self) -> MetricsPane:
        return self.screen_main.query_one(MetricsPane)

    @property
    def pipeline(self) -> PipelineView:
        return self.screen_main.query_one(PipelineView)

    # --- start-up and polling -----------------------------------------------------------------------

    def on_mount(self) -> None:
        if self.opts.keymap:
            self.set_keymap(self.opts.keymap)
        self.theme = THEMES.get(self.opts.theme, self.opts.theme)

    def start_ui(self, screen: MainScreen) -> None:
        """Called once the lists screen is mounted: first queries, loaders, the poll timer."""
        self._main = screen
        show_metrics = self.opts.metrics if self.opts.metrics is not None else self.size.height >= 32
        self.metrics.set_class(not show_metrics, "-hidden")
        if self.opts.initial_filter:
            self.filterbar.input.value = self.opts.initial_filter
            self.filterbar.input.remember(self.opts.initial_filter)
        if not self._apply_filter(self.opts.initial_filter, focus=False):
            self._apply_filter("", focus=False)
        self._update_tabs()
        self._focus_list()
        if self.loader is not None:
            self.loader.start()
            self._poll_timer = self.set_interval(self.opts.poll_s, self._poll)
        else:
            self._loaded_at = time.time()
            self._refresh_counts(final=True)
        self._update_pipeline()

    def _poll(self) -> None:
        if not self._alive():
            return
        done = self.loader is None or self.loader.done
        self._refresh_counts(final=done)
        view = self.list_view()
        if view is not None:
            view.poll()
        if self.current_view == "pipeline":
            self._update_pipeline()
        if not self.metrics.has_class("-hidden") and time.time() - self._spark_at >= SPARK_EVERY_S \
                and not (view is not None and view.busy):
            self._refresh_sparks()
        if done and self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
            self._loaded_at = time.time()
            self._after_load()
        self._update_status()

    def _after_load(self) -> None:
        """Everything is read: final refresh of the shown view (others when shown) and a summary."""
        for name in SPECS:
            view = self.list_view(name)
            if view is not None:
                view.stale = True
        view = self.list_view()
        if view is not None:
            view.load()
        self._sparks_pending = True
        if view is None:
            self._maybe_sparks()
        self._update_pipeline()
        feed = self.loader
        assert feed is not None
        for f in feed.failed:
            self.notify(f"{f.path}: {f.error}", title="cannot read", severity="error", timeout=10)
        error = getattr(feed, "error", None)
        if error and not feed.failed:
            self.notify(error, title="capture stopped", severity="error", timeout=10)
        if feed.live:
            self.notify(f"capture {feed.status}: {feed.counters().get('calls_received', 0):,} calls", timeout=4)
            return
        calls = feed.counters().get("calls_received", 0) if feed.state is not None else \
            sum(f.calls for f in feed.files)
        verb = "replayed" if feed.paced else "loaded"
        self.notify(f"{verb} {calls:,} calls from {len(feed.files)} file(s) "
                    f"in {time.time() - self._started:.1f}s", timeout=4)

    def _refresh_counts(self, final: bool = False) -> None:
        if self._counting and not final:  # one count at a time (see ListView.poll)
            return
        self._counting = True
        self._counts_seq += 1
        seq = self._counts_seq

        def work() -> None:
            counts = None
            try:
                with self.reader.read(("turns", "calls")) as cur:
                    counts = table_counts(cur)
            finally:
                self._from_thread(self._counts_ready, seq, counts, final)

        self.run_worker(work, thread=True, group="counts", exit_on_error=False)

    def _counts_ready(self, seq: int, counts: dict[str, int] | None, final: bool) -> None:
        if seq == self._counts_seq:
            self._counting = False
        if counts is None or seq < self._counts_applied or not self._alive():
            return
        self._counts_applied = seq
        self.counts = counts
        self._update_tabs()
        self._update_status()
        if final and not self._view_chosen and self.current_view == "turns" and not counts["turns"] \
                and counts["calls"]:
            self._view_chosen = True
            self.action_view("calls")
            self.notify("no agent turns in this capture: showing calls (1 goes back to turns)", timeout=5)

    def _from_thread(self, fn: Any, *args: Any) -> None:
        try:
            self.call_from_thread(fn, *args)
        except RuntimeError:  # shutting down
            pass

    def _refresh_sparks(self) -> None:
        """Sparklines of the calls behind the rows on screen (the filter as the current list reads it);
        over the last ``LIVE_WINDOW_S`` of event time while a source is live or replayed."""
        self._spark_at = time.time()
        self._spark_gen += 1
        gen = self._spark_gen
        where = None
        view = self.current_view if self.current_view in SPECS else "calls"
        if self.filter_on and self.filter_text:
            try:
                where = calls_filter(view, self.filter_text)
            except FilterError:
                where = None
        scope = "all calls" if where is None else \
            ("filter" if view in ("calls", "services") else f"filter ({view})")
        t0 = t1 = None
        in_flight: tuple[float, ...] = ()
        state = getattr(self.loader, "state", None)
        if state is not None and (self.loader.live or self.loader.paced) and not self.loader.done \
                and state.watermark is not None:
            t1 = state.watermark
            self._live_t0 = self._live_t0 or t1  # the first event time seen: where the capture began
            t0 = min(max(t1 - LIVE_WINDOW_S, self._live_t0), t1 - LIVE_MIN_WINDOW_S)
            in_flight = state.in_flight_starts

        def work() -> None:
            with self.reader.read(("turns",)) as cur:  # a turns filter reaches in-progress turns' calls
                sparks = compute_sparks(cur, where, buckets=60, t0=t0, t1=t1, in_flight=in_flight)
            self._from_thread(self._sparks_ready, gen, sparks, scope)

        self.run_worker(work, thread=True, group="sparks", exit_on_error=False)

    def _maybe_sparks(self) -> None:
        if self._sparks_pending and not self.metrics.has_class("-hidden"):
            self._sparks_pending = False
            self._refresh_sparks()

    def _sparks_ready(self, gen: int, sparks: Any, scope: str) -> None:
        if gen == self._spark_gen and self._alive():
            self.metrics.show(sparks, scope)

    def _update_pipeline(self) -> None:
        if self.loader is not None and self.loader.state is not None:
            self.pipeline.show_run(self.loader)
        elif self.loader is not None:
            self.pipeline.show(self.loader.files, self.loader.counters())
        else:
            self.pipeline.show([], self.opts.pipeline_counters or Counter(),
                               note=f"{self.opts.source_label}: counters of the last recorded run")

    def _update_tabs(self) -> None:
        """Unfiltered totals; with a filter on, the filtered count of views that ran it (others blank)."""
        counts = dict(self.counts)
        if self.filter_on and self.filter_text:
            for name in SPECS:
                view = self.list_view(name)
                if view is not None:
                    if view.stale or view.count is None:
                        counts.pop(name, None)
                    else:
                        counts[name] = view.count
        self.screen_main.query_one(ViewTabs).show(self.current_view, counts)

    def _update_status(self) -> None:
        view = self.list_view()
        s = Status(source=self.opts.source_label, view=self.current_view, calls=self.counts.get("calls", 0),
                   filter_text=self.filter_text, filter_on=self.filter_on, follow=self.follow)
        if view is not None:
            s.shown = view.count
            if self.filter_on and self.filter_text:  # else both count the same rows (one may lag a poll)
                s.total = self.counts.get(self.current_view)
            t = view.table
            s.follow_active = t.at_newest
            s.marks = len(t.marks)
        fs = feed_status(self.loader, self._started, self._loaded_at)
        s.loading, s.progress, s.load_text, s.extras, s.live = fs.loading, fs.progress, fs.text, fs.extras, fs.live
        self.screen_main.query_one(StatusBar).show(s)

    # --- messages -----------------------------------------------------------------------------------

    def on_list_view_updated(self, message: ListView.Updated) -> None:
        if not self._alive():
            return
        if message.view.spec.name == self.current_view:
            self._set_filter_state()
            self._maybe_sparks()
        self._update_tabs()
        self._update_status()

    def on_list_view_failed(self, message: ListView.Failed) -> None:
        self.filterbar.show_error(message.error)
        self.notify(message.error, title="query failed", severity="error")
        self._set_filter_state()

    def on_virtual_table_cursor_moved(self, message: Any) -> None:
        self._update_status()

    def on_virtual_table_header_clicked(self, message: Any) -> None:
        view = self.list_view()
        if view is not None:
            view.sort_by(message.key)

    def on_virtual_table_activated(self, message: Any) -> None:
        self.action_open()

    def on_filter_bar_applied(self, message: FilterBar.Applied) -> None:
        self._apply_filter(message.text)

    def on_filter_input_leave(self, message: FilterInput.Leave) -> None:
        self.filterbar.toggle_help(False)
        self._focus_list()

    # --- filter -------------------------------------------------------------------------------------

    def _apply_filter(self, text: str, on: bool = True, focus: bool = True) -> bool:
        """Compile for every list (fast, here) and start their queries (workers). False on an error."""
        try:
            compiled = {name: compile_for(spec, text) for name, spec in SPECS.items()}
        except FilterError as exc:
            self.filterbar.check(text)
            self.notify(exc.message, title="filter", severity="error")
            return False
        self.filter_text, self.filter_on = text, on
        for name in SPECS:  # hidden views query when shown: the visible one gets the machine
            view = self.list_view(name)
            if view is not None:
                view.set_filter(compiled[name] if on else None)
        view = self.list_view()
        if view is not None:
            view.load(keep_cursor=False)
        self._sparks_pending = True  # after the list has its rows (sparklines are the slower query)
        if view is None:
            self._maybe_sparks()
        self._set_filter_state()
        if focus:
            self._focus_list()
        self._update_status()
        return True

    def _set_filter_state(self) -> None:
        view = self.list_view()
        busy = view is not None and view.busy
        if not self.filter_text:
            self.filterbar.set_state("…" if busy else "", "busy" if busy else "none")
        elif not self.filter_on:
            self.filterbar.set_state("off (ctrl+f)", "off")
        elif busy:
            self.filterbar.set_state("filtering…", "busy")
        else:
            n = view.count if view is not None else None
            self.filterbar.set_state("on" + (f" · {n:,} rows" if n is not None else ""), "on")

    def action_focus_filter(self) -> None:
        self.filterbar.input.focus()

    def action_toggle_filter(self) -> None:
        if not self.filter_text:
            self.notify("no filter yet: press / to write one")
            return
        self._apply_filter(self.filter_text, on=not self.filter_on, focus=False)

    def action_search(self, direction: int) -> None:
        view = self.list_view()
        text = self.filterbar.text
        if view is None or not text:
            self.notify("search uses the filter text: type one with / (enter filters, esc keeps it for n/N)")
            return
        try:
            match = compile_for(view.spec, text)
        except FilterError as exc:
            self.filterbar.check(text)
            self.notify(exc.message, title="search", severity="error")
            return
        assert match is not None

        def done(idx: int | None) -> None:
            if idx is None:
                self.notify(f"no row matches {text!r}", severity="warning")

        view.find(match, direction > 0, done)

    # --- views, panes, sorting ----------------------------------------------------------------------

    def action_view(self, name: str) -> None:
        if name not in dict(VIEWS):
            return
        self._view_chosen = True
        if self.filter_on and self.filter_text and name != self.current_view and name in SPECS:
            self._sparks_pending = True  # the filter reads differently on this list: its rows' calls
        self.current_view = name
        self.screen_main.query_one("#views", ContentSwitcher).current = f"view-{name}"
        view = self.list_view()
        if view is None:
            self._update_pipeline()
        elif view.stale or not view.table.loaded:
            view.load(keep_cursor=view.table.loaded)
        else:
            view.poll()
        self._set_filter_state()
        self._update_tabs()
        self._update_status()
        self._focus_list()

    def _focus_list(self) -> None:
        view = self.list_view()
        (view.table if view is not None else self.pipeline).focus()

    def _panes(self) -> list[Any]:
        view = self.list_view()
        panes: list[Any] = [view.table if view is not None else self.pipeline]
        if not self.metrics.has_class("-hidden"):
            panes.append(self.metrics)
        panes.append(self.filterbar.input)
        return panes

    def action_next_pane(self, step: int = 1) -> None:
        panes = self._panes()
        focused = self.focused
        idx = next((i for i, p in enumerate(panes) if p is focused), -1)
        panes[(idx + step) % len(panes)].focus()

    def action_prev_pane(self) -> None:
        self.action_next_pane(-1)

    def action_sort(self) -> None:
        view = self.list_view()
        if view is not None:
            view.cycle_sort()  # the header shows the sorted column and its direction

    def action_sort_reverse(self) -> None:
        view = self.list_view()
        if view is not None:
            view.reverse_sort()

    def action_toggle_follow(self) -> None:
        """Follow the newest row: on, the cursor jumps to it and stays on it as rows arrive; moving the
        cursor away pauses following (the status bar says so) until it is back on the newest row."""
        self.follow = not self.follow
        for name in SPECS:
            view = self.list_view(name)
            if view is not None:
                view.table.follow = self.follow
        view = self.list_view()
        if self.follow and view is not None:
            view.table.action_newest()
        self._update_status()

    def action_toggle_metrics(self) -> None:
        hidden = not self.metrics.has_class("-hidden")
        self.metrics.set_class(hidden, "-hidden")
        if not hidden:
            self._refresh_sparks()

    def action_mark(self) -> None:
        view = self.list_view()
        if view is not None and view.toggle_mark() is not None:
            view.table.action_cursor(1)
            self._update_status()

    def action_back(self) -> None:
        if self.screen is not self._main:
            self.pop_screen()
        elif self.filterbar.toggle_help(False) or self.filterbar.input.has_focus:
            self._focus_list()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.opts.keymap, self.opts.keys_source))

    # --- palette, themes, lifecycle -----------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for n, (key, label) in enumerate(VIEWS, 1):
            yield SystemCommand(f"View: {label}", f"Show the {label.lower()} view (key {n})",
                                partial(self.action_view, key))
        yield SystemCommand("Export SFT: selected", "Marked rows, else the selected one (e)",
                            self.action_export_selected)
        yield SystemCommand("Export SFT: all matching", "Every row matching the filter (E)", self.action_export_all)
        yield SystemCommand("Toggle metrics pane", "Sparklines of the calls (M)", self.action_toggle_metrics)
        yield SystemCommand("Toggle follow", "Keep the newest row in view as rows arrive (f)",
                            self.action_toggle_follow)
        yield SystemCommand("Toggle filter", "Filter on/off, keeping its text (ctrl+f)", self.action_toggle_filter)
        for key, label in THEME_LABELS:
            yield SystemCommand(f"Theme: {label}", f"Switch to the {label} theme", partial(self.set_theme, key))
        yield SystemCommand("Help: keys and filter fields", "(?)", self.action_help)

    def set_theme(self, name: str) -> None:
        self.theme = THEMES.get(name, name)

    async def wait_idle(self, timeout: float = 15.0) -> None:
        """Until files are loaded and no query is running (for tests, benchmarks and screenshots). A live
        capture never finishes loading: then only the queries count."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._main is None:
                await asyncio.sleep(0.02)
                continue
            loading = self.loader is not None and not self.loader.live and (
                not self.loader.done or self._poll_timer is not None)
            busy = loading or any(
                not w.is_finished for w in self.workers) or any(
                v.busy for v in (self.list_view(n) for n in SPECS) if v is not None)
            if not busy:
                return
            await asyncio.sleep(0.02)
        raise TimeoutError("heron-tui did not become idle")

    def on_unmount(self) -> None:
        if self.loader is not None:  # a pipeline drains in the background; the CLI waits for it
            self.loader.stop(timeout=0.0 if self.loader.state is not None else 0.5)
