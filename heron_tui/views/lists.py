"""A list view (turns, sessions, calls, insights, services): a virtual table driven by a ``ListQuery``.

All database work happens in thread workers; results come back with a generation number so a slow
answer to an old filter can never overwrite a newer one, and the table keeps showing the last good
result until the new one is swapped in whole.

During a live capture the turns and calls views also show what is only in the assembler's memory
(in-progress turns, calls in flight): their reads name ``LIVE_TABLES`` and the reader merges those rows
in (``heron_tui.overlay``), so counting, paging, sorting, filtering and search treat them as rows.
"""

from __future__ import annotations

import threading
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message

from heron_core.query.filterlang import Compiled
from heron_core.query.lists import ListQuery, ListSpec
from heron_tui.loader import StoreReader
from heron_tui.widgets.vtable import PAGE, VirtualTable

_NUMERIC = ("int", "tokens", "ms", "usd", "pct", "status")

LIVE_TABLES: dict[str, tuple[str, ...]] = {"turns": ("turns",), "calls": ("calls",)}
"""Per list, the tables whose in-progress rows it shows (sessions, insights and services: stored only)."""


class QuerySource:
    """``RowSource`` of the table: pages of one query, each read on its own cursor."""

    def __init__(self, reader: StoreReader, query: ListQuery, tables: tuple[str, ...] = ()) -> None:
        self.reader, self.query, self.tables = reader, query, tables

    def fetch(self, offset: int, limit: int, total: int | None = None, after: tuple | None = None) -> list[tuple]:
        with self.reader.read(self.tables) as cur:
            return self.query.fetch(cur, offset, limit, total=total, after=after)


class _Background:
    """One page read on its own thread and cursor, so a filter's count and first page run side by side
    (the two scans overlap on a multi-core machine: DuckDB releases the GIL while it works)."""

    def __init__(self, reader: StoreReader, query: ListQuery, offset: int, tables: tuple[str, ...] = ()) -> None:
        self.offset = offset
        self._rows: list[tuple] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(reader, query, tables), daemon=True)
        self._thread.start()

    def _run(self, reader: StoreReader, query: ListQuery, tables: tuple[str, ...]) -> None:
        try:
            with reader.read(tables) as cur:
                self._rows = query.fetch(cur, self.offset, PAGE)
        except BaseException as exc:  # handed to the waiting worker
            self._error = exc

    def result(self) -> list[tuple] | None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._rows


class ListView(Vertical):
    DEFAULT_CSS = "ListView { height: 1fr; }"

    class Updated(Message):
        """The view's row count or data changed (the app refreshes the status bar)."""

        def __init__(self, view: ListView) -> None:
            super().__init__()
            self.view = view

    class Failed(Message):
        def __init__(self, view: ListView, error: str) -> None:
            super().__init__()
            self.view, self.error = view, error

    def __init__(self, spec: ListSpec, reader: StoreReader, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec = spec
        self.reader = reader
        self.live_tables = LIVE_TABLES.get(spec.name, ())
        self.where: Compiled | None = None
        self.sort_key = spec.default_sort
        self.sort_desc = spec.default_sort in ("calls",)
        self.query_obj = ListQuery(spec, None, self.sort_key, self.sort_desc)
        self.count: int | None = None
        self.busy = False
        self.stale = True  # filter or data changed while the view was hidden: reload when shown
        self._polling = False
        self._gen = 0
        self._applied_gen = 0

    def compose(self) -> ComposeResult:
        yield VirtualTable(self.spec.columns, id=f"table-{self.spec.name}")

    @property
    def table(self) -> VirtualTable:
        return self.query_one(VirtualTable)

    # --- queries ------------------------------------------------------------------------------------

    def set_filter(self, where: Compiled | None) -> None:
        """New filter for later: the query runs when the view is shown (hidden views cost nothing)."""
        self.where = where
        self.stale = True

    def load(self, where: Compiled | None | type[Ellipsis] = ..., sort_key: str | None = None,
             sort_desc: bool | None = None, keep_cursor: bool = True) -> int:
        """Start a query (new filter and/or sort); the table swaps when it is done. Returns its generation.

        ``keep_cursor`` keeps the selected row selected (one more ranking query); a new filter starts at
        the top instead, which is both what users expect and the cheapest answer."""
        if where is not ...:
            self.where = where  # type: ignore[assignment]
        if sort_key is not None:
            self.sort_key = sort_key
        if sort_desc is not None:
            self.sort_desc = sort_desc
        query = ListQuery(self.spec, self.where, self.sort_key, self.sort_desc)
        keep_id = self.table.current_id if keep_cursor else None
        self.stale = False
        self._gen += 1
        gen = self._gen
        self.busy = True
        follow = self.table.follow
        newest_first = self.newest_first(query)
        cursor = self.table.cursor if keep_cursor else 0
        tables = self.live_tables

        def work() -> None:
            try:
                early = None
                if keep_id is None and not follow:  # the page is known: read it while counting
                    early = _Background(self.reader, query, (cursor // PAGE) * PAGE, tables)
                with self.reader.read(tables) as cur:
                    n = query.count(cur)
                    idx = query.index_of(cur, keep_id) if keep_id is not None else None
                    newest = 0 if newest_first else n - 1
                    at = idx if idx is not None else (newest if follow else min(cursor, max(0, n - 1)))
                    page = max(0, at) // PAGE
                    rows = early.result() if early is not None and early.offset == page * PAGE else None
                    pages = {page: rows if rows is not None else query.fetch(cur, page * PAGE, PAGE, total=n)}
            except Exception as exc:  # a bad query must not kill the app: keep the last good rows
                self._post(self._failed, gen, f"{type(exc).__name__}: {exc}")
                return
            self._post(self._swap, gen, query, n, pages, at)

        self.run_worker(work, thread=True, group=f"query-{self.spec.name}", exit_on_error=False)
        return gen

    def _post(self, fn: Any, *args: Any) -> None:
        def call() -> None:
            if self.is_attached and not self._closing:  # not while the app is being torn down
                fn(*args)

        try:
            self.app.call_from_thread(call)
        except RuntimeError:  # app is shutting down
            pass

    def _swap(self, gen: int, query: ListQuery, n: int, pages: dict[int, list[tuple]], at: int) -> None:
        if gen != self._gen:
            return
        self.busy = False
        self._applied_gen = gen
        self.query_obj = query
        self.count = n
        self.table.newest_first = self.newest_first(query)
        self.table.set_source(QuerySource(self.reader, query, self.live_tables), n, pages, cursor=at,
                              sort_key=query.sort_key, sort_desc=query.desc)
        self.post_message(self.Updated(self))

    def newest_first(self, query: ListQuery) -> bool:
        """Sorted by the list's time column, newest first: the newest row is the top one."""
        return query.desc and self.spec.column(query.sort_key).kind == "time"

    def _failed(self, gen: int, error: str) -> None:
        if gen == self._gen:
            self.busy = False
            self.post_message(self.Failed(self, error))

    def poll(self) -> None:
        """Live update (files loading, live capture): new count and the visible rows refreshed in place.

        One poll at a time: under load a count can take longer than the poll period, and an older count
        answering after a newer one would make the list shrink and grow back."""
        if not self.table.loaded or self.busy or self._polling:
            return
        query, gen = self.query_obj, self._applied_gen
        table = self.table
        visible, following, newest_first = table.poll_pages(), table.following, table.newest_first
        self._polling = True

        def work() -> None:
            n, pages = None, {}
            try:
                with self.reader.read(self.live_tables) as cur:
                    n = query.count(cur)
                    want = set(visible)
                    if following and n:  # where the cursor is about to go
                        want.add(0 if newest_first else (n - 1) // PAGE)
                    for page in sorted(want):
                        if page * PAGE < n:
                            pages[page] = query.fetch(cur, page * PAGE, PAGE, total=n)
            except Exception:  # noqa: BLE001 - the store may be closing: skip this poll, the next one retries
                n = None
            finally:
                self._post(self._polled, gen, n, pages)

        self.run_worker(work, thread=True, group=f"poll-{self.spec.name}", exit_on_error=False)

    def _polled(self, gen: int, n: int | None, pages: dict[int, list[tuple]]) -> None:
        self._polling = False
        if n is None or gen != self._applied_gen or self.busy:
            return
        if n != self.count:
            self.count = n
            self.table.update_count(n, pages)
            self.post_message(self.Updated(self))
        else:
            self.table.invalidate(pages)

    # --- sorting, search, selection -----------------------------------------------------------------

    def cycle_sort(self) -> str:
        """Sort by the next visible column (numbers biggest first, the rest ascending)."""
        keys = self.table.visible_columns() or [c.key for c in self.spec.columns]
        nxt = keys[(keys.index(self.sort_key) + 1) % len(keys)] if self.sort_key in keys else keys[0]
        desc = self.spec.column(nxt).kind in _NUMERIC
        self.load(sort_key=nxt, sort_desc=desc)
        return nxt

    def reverse_sort(self) -> None:
        self.load(sort_desc=not self.sort_desc)

    def sort_by(self, key: str) -> None:
        if key == self.sort_key:
            self.reverse_sort()
        else:
            self.load(sort_key=key, sort_desc=self.spec.column(key).kind in _NUMERIC)

    def find(self, match: Compiled, forward: bool, on_done: Any) -> None:
        """Move to the next/previous row matching ``match`` (same order as shown); ``on_done(found)``."""
        query, after = self.query_obj, self.table.cursor

        def work() -> None:
            try:
                with self.reader.read(self.live_tables) as cur:
                    idx = query.find(cur, match, after, forward)
            except Exception as exc:
                self._post(self._failed, self._gen, f"search: {exc}")
                return
            self._post(self._found, idx, on_done)

        self.run_worker(work, thread=True, group=f"find-{self.spec.name}", exclusive=True, exit_on_error=False)

    def _found(self, idx: int | None, on_done: Any) -> None:
        if idx is not None:
            self.table.move_cursor(idx, center=True)
        on_done(idx)

    def toggle_mark(self) -> bool | None:
        rid = self.table.current_id
        if rid is None:
            return None
        marks = self.table.marks
        if rid in marks:
            marks.discard(rid)
        else:
            marks.add(rid)
        self.table.refresh()
        return rid in marks
