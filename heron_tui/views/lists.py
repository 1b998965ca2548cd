"""A list view (turns, sessions, calls, insights, services): a virtual table driven by a ``ListQuery``.

All database work happens in thread workers; results come back with a generation number so a slow
answer to an old filter can never overwrite a newer one, and the table keeps showing the last good
result until the new one is swapped in whole.
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


class QuerySource:
    """``RowSource`` of the table: pages of one query, each read on its own cursor."""

    def __init__(self, reader: StoreReader, query: ListQuery) -> None:
        self.reader, self.query = reader, query

    def fetch(self, offset: int, limit: int, total: int | None = None, after: tuple | None = None) -> list[tuple]:
        with self.reader.read() as cur:
            return self.query.fetch(cur, offset, limit, total=total, after=after)


class _Background:
    """One page read on its own thread and cursor, so a filter's count and first page run side by side
    (the two scans overlap on a multi-core machine: DuckDB releases the GIL while it works)."""

    def __init__(self, reader: StoreReader, query: ListQuery, offset: int) -> None:
        self.offset = offset
        self._rows: list[tuple] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(reader, query), daemon=True)
        self._thread.start()

    def _run(self, reader: StoreReader, query: ListQuery) -> None:
        try:
            with reader.read() as cur:
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
        self.where: Compiled | None = None
        self.sort_key = spec.default_sort
        self.sort_desc = spec.default_sort in ("calls",)
        self.query_obj = ListQuery(spec, None, self.sort_key, self.sort_desc)
        self.count: int | None = None
        self.busy = False
        self.stale = True  # filter or data changed while the view was hidden: reload when shown
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
        cursor = self.table.cursor if keep_cursor else 0

        def work() -> None:
            try:
                early = None
                if keep_id is None and not follow:  # the page is known: read it while counting
                    early = _Background(self.reader, query, (cursor // PAGE) * PAGE)
                with self.reader.read() as cur:
                    n = query.count(cur)
                    idx = query.index_of(cur, keep_id) if keep_id is not None else None
                    at = idx if idx is not None else (n - 1 if follow else min(cursor, max(0, n - 1)))
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
        try:
            self.app.call_from_thread(fn, *args)
        except RuntimeError:  # app is shutting down
            pass

    def _swap(self, gen: int, query: ListQuery, n: int, pages: dict[int, list[tuple]], at: int) -> None:
        if gen != self._gen:
            return
        self.busy = False
        self._applied_gen = gen
        self.query_obj = query
        self.count = n
        self.table.set_source(QuerySource(self.reader, query), n, pages, cursor=at,
                              sort_key=query.sort_key, sort_desc=query.desc)
        self.post_message(self.Updated(self))

    def _failed(self, gen: int, error: str) -> None:
        if gen == self._gen:
            self.busy = False
            self.post_message(self.Failed(self, error))

    def poll(self) -> None:
        """Live update while files load: new count (rows appended) and visible rows refreshed in place."""
        if not self.table.loaded or self.busy:
            return
        query, gen = self.query_obj, self._applied_gen

        def work() -> None:
            try:
                with self.reader.read() as cur:
                    n = query.count(cur)
            except Exception:
                return
            self._post(self._polled, gen, n)

        self.run_worker(work, thread=True, group=f"poll-{self.spec.name}", exclusive=True, exit_on_error=False)

    def _polled(self, gen: int, n: int) -> None:
        if gen != self._applied_gen or self.busy:
            return
        if n != self.count:
            self.count = n
            self.table.update_count(n)
            self.post_message(self.Updated(self))
        else:
            self.table.invalidate()

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
                with self.reader.read() as cur:
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
