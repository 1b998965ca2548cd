"""A virtual table: renders only the visible rows, fetched in pages by background workers.

Textual's ``DataTable`` keeps every row as widgets' data and slows to a crawl at 100k rows. This widget
is a ``ScrollView`` on the Line API (like toolong's log view): it knows only the row *count*; each
``render_line`` formats one row from a small LRU cache of pages and, when a page is missing or stale,
a thread worker fetches it (``RowSource.fetch(offset, limit)``) and the row is drawn when it arrives. A
placeholder stands in meanwhile, so scrolling never waits for the database.

Swapping the data (new filter or sort) is atomic: ``set_source`` receives the new count and first page
together, so the old rows stay on screen until the new ones are ready. ``update_count`` is the live
path: pages are marked stale but kept, so rows update in place without flicker, and the selected row
stays selected when rows are inserted before it (the cursor follows its row id when the refetched pages
arrive, and the viewport moves with it).

Follow mode: ``newest_first`` says where the newest row is (the top when sorted by time, newest first;
the bottom otherwise). With ``follow`` on, a cursor on the newest row stays on the newest row as rows
arrive; a cursor moved elsewhere stays where it is (following is paused until it comes back).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar, Protocol

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from heron_core.query.lists import Column

from .format import cell, fit

PAGE = 100
MAX_PAGES = 64
MARK = "●"


_KIND_WIDTH = {"tstatus": 11}
"""Columns widened to their longest value: a turn's ``in_progress`` (a call in flight shows ``in_prog…``
in the narrower finish column rather than costing the calls list a column at 130 cells)."""


def _fit_values(c: Column) -> Column:
    w = max(c.width, _KIND_WIDTH.get(c.kind, 0))
    return c if w == c.width else replace(c, width=w)


class RowSource(Protocol):
    def fetch(self, offset: int, limit: int, total: int | None = None,
              after: tuple | None = None) -> list[tuple]: ...


class VirtualTable(ScrollView, can_focus=True):
    """Rows are tuples ``(id, style role, value…)`` in ``columns`` order."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "vtable--header", "vtable--sorted", "vtable--cursor", "vtable--error", "vtable--warn",
        "vtable--good", "vtable--dim", "vtable--accent", "vtable--mark", "vtable--placeholder",
        "vtable--empty",
    }
    DEFAULT_CSS = """
    VirtualTable { height: 1fr; overflow-x: hidden; overflow-y: auto; background: $surface;
                   scrollbar-size-vertical: 1; }
    VirtualTable > .vtable--header { text-style: bold; background: $panel; color: $foreground; }
    VirtualTable > .vtable--sorted { text-style: bold underline; background: $panel; color: $accent; }
    VirtualTable > .vtable--cursor { background: $block-cursor-blurred-background; color: $foreground; }
    VirtualTable:focus > .vtable--cursor { background: $block-cursor-background;
                                           color: $block-cursor-foreground; text-style: bold; }
    VirtualTable > .vtable--error { color: $error; }
    VirtualTable > .vtable--warn { color: $warning; }
    VirtualTable > .vtable--good { color: $success; }
    VirtualTable > .vtable--dim { color: $text-muted; }
    VirtualTable > .vtable--accent { color: $accent; }
    VirtualTable > .vtable--mark { color: $accent; text-style: bold; }
    VirtualTable > .vtable--placeholder { color: $text-disabled; }
    VirtualTable > .vtable--empty { color: $text-muted; text-style: italic; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False),
        Binding("pagedown,ctrl+d,space", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
    ]

    class CursorMoved(Message):
        def __init__(self, table: VirtualTable, index: int, row: tuple | None) -> None:
            super().__init__()
            self.table, self.index, self.row = table, index, row

        @property
        def control(self) -> VirtualTable:
            return self.table

    class Activated(Message):
        """Double click on a row (enter is the app's named ``open`` key)."""

        def __init__(self, table: VirtualTable, index: int) -> None:
            super().__init__()
            self.table, self.index = table, index

    class HeaderClicked(Message):
        def __init__(self, table: VirtualTable, key: str) -> None:
            super().__init__()
            self.table, self.key = table, key

    def __init__(self, columns: Sequence[Column], *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.columns = [_fit_values(c) for c in columns]
        self.row_count = 0
        self.cursor = 0
        self.sort_key: str | None = None
        self.sort_desc = False
        self.follow = False
        self.newest_first = False  # the newest row is at the top (sorted by time, newest first)
        self.marks: set[Any] = set()
        self.empty_message = "no rows"
        self.loaded = False  # a source was set at least once
        self._source: RowSource | None = None
        self._gen = 0
        self._pages: OrderedDict[int, list[tuple]] = OrderedDict()
        self._fresh: set[int] = set()
        self._inflight: set[tuple[int, int]] = set()
        self._col_layout: tuple[int, list[tuple[int, int, int]]] | None = None
        self._styles: dict[str, Style] = {}
        self._line_cache: LRUCache[tuple, Strip] = LRUCache(2048)
        self._cache_key: tuple = ()
        self._cursor_id: Any = None  # id of the selected row, followed across live updates

    # --- data ---------------------------------------------------------------------------------------

    def set_source(self, source: RowSource, count: int, pages: dict[int, list[tuple]] | None = None,
                   cursor: int | None = None, sort_key: str | None = None, sort_desc: bool = False) -> None:
        """Swap to new data in one step (count and first pages fetched by the caller's worker)."""
        self._gen += 1
        self._source = source
        self._pages = OrderedDict(pages or {})
        self._fresh = set(self._pages)
        self._inflight.clear()
        self.sort_key, self.sort_desc = sort_key, sort_desc
        self.loaded = True
        self._set_count(count)
        self._cursor_id = None
        target = self.cursor if cursor is None else cursor
        if self.follow and cursor is None:
            target = self.newest_index
        self.move_cursor(max(0, min(target, count - 1)), center=cursor is not None)
        self.refresh()
        self._want_visible()

    @property
    def newest_index(self) -> int:
        return 0 if self.newest_first else max(0, self.row_count - 1)

    @property
    def at_newest(self) -> bool:
        """The cursor is on the newest row (follow mode keeps it there)."""
        return self.cursor <= 0 if self.newest_first else self.cursor >= self.row_count - 1

    @property
    def following(self) -> bool:
        return self.follow and self.at_newest

    def poll_pages(self) -> list[int]:
        """The pages on screen: a live poll reads them with the count (``update_count``), so new and
        changed rows arrive together with the count instead of as placeholders a moment later."""
        top = int(self.scroll_offset.y)
        body = max(1, self.size.height - 1)
        return list(range(top // PAGE, (top + body) // PAGE + 1))

    def _install(self, pages: dict[int, list[tuple]] | None) -> None:
        """Pages read for the current count: fresh; every other cached page becomes stale (kept and drawn
        until refetched, so nothing blinks)."""
        self._fresh.clear()
        self._gen += 1  # fetches started before this poll answer for an older state: ignore them
        self._inflight.clear()
        for page, rows in (pages or {}).items():
            self._pages[page] = rows
            self._pages.move_to_end(page)
            self._fresh.add(page)
        while len(self._pages) > MAX_PAGES:
            old, _ = self._pages.popitem(last=False)
            self._fresh.discard(old)

    def update_count(self, count: int, pages: dict[int, list[tuple]] | None = None) -> None:
        """Live update: new row count (with the pages read alongside); cached pages become stale and the
        visible ones are refetched in place."""
        following = self.following
        self._install(pages)
        self._set_count(count)
        if following and count:
            self._cursor_id = None
            self.move_cursor(self.newest_index)
        elif self.cursor >= count:
            self.move_cursor(max(0, count - 1))
        elif pages:
            self._track_cursor()
        self.refresh()
        self._want_visible()

    def invalidate(self, pages: dict[int, list[tuple]] | None = None) -> None:
        """Refetch visible rows (rows changed without the count changing: an in-progress turn grew, a
        turn was amended); ``pages`` are already read."""
        self._install(pages)
        if pages:
            self._track_cursor()
            self.refresh()
        self._want_visible()

    def _set_count(self, count: int) -> None:
        self.row_count = max(0, count)
        self.virtual_size = Size(self.size.width, self.row_count + 1)

    def row_at(self, index: int) -> tuple | None:
        rows = self._pages.get(index // PAGE)
        if rows is None:
            return None
        off = index % PAGE
        return rows[off] if off < len(rows) else None

    @property
    def current_row(self) -> tuple | None:
        return self.row_at(self.cursor) if self.row_count else None

    @property
    def current_id(self) -> Any:
        row = self.current_row
        return row[0] if row else None

    def _want_visible(self) -> None:
        """Fetch the visible pages, then prefetch around them: one screen above, three below (the
        direction people scroll). A page below whose previous page is loaded is read by keyset from
        that page's last row, which stays cheap at any depth; the others by offset."""
        if self._source is None or not self.row_count:
            return
        top = int(self.scroll_offset.y)
        h = max(1, self.size.height - 1)
        last = self.row_count - 1
        visible = range(top // PAGE, min(last, top + h) // PAGE + 1)
        around = range(max(0, top - h) // PAGE, min(last, top + 3 * h) // PAGE + 1)
        for page in list(visible) + [p for p in around if p not in visible]:
            if page in self._fresh or (self._gen, page) in self._inflight:
                continue
            prev = self._pages.get(page - 1) if page - 1 in self._fresh else None
            after = prev[-1] if prev and len(prev) == PAGE else None
            if page not in visible and page > top // PAGE and after is None:
                continue  # prefetch below waits for its previous page (keyset), see _loaded
            self._inflight.add((self._gen, page))
            self.run_worker(self._fetch(self._source, self._gen, page, after), thread=True, group="pages",
                            exit_on_error=False)

    def _fetch(self, source: RowSource, gen: int, page: int, after: tuple | None):
        total = self.row_count

        def work() -> None:
            try:
                rows = source.fetch(page * PAGE, PAGE, total=total, after=after)
            except Exception as exc:  # the store may be closing; show nothing rather than crash
                rows = None
                err = exc
            else:
                err = None
            try:
                self.app.call_from_thread(self._loaded, gen, page, rows, err)
            except RuntimeError:  # app already gone
                pass

        return work

    def _loaded(self, gen: int, page: int, rows: list[tuple] | None, err: Exception | None) -> None:
        self._inflight.discard((gen, page))
        if not self.is_attached or self._closing:
            return
        if gen != self._gen or rows is None:
            if err is not None and gen == self._gen:
                self.log.error(f"page {page}: {err}")
            return
        self._pages[page] = rows
        self._pages.move_to_end(page)
        self._fresh.add(page)
        while len(self._pages) > MAX_PAGES:
            old, _ = self._pages.popitem(last=False)
            self._fresh.discard(old)
        self.refresh()
        self._want_visible()  # the next page can now be read by keyset
        if page == self.cursor // PAGE or (self._cursor_id is not None and not self._cursor_on_its_row()):
            self._track_cursor()
            self.post_message(self.CursorMoved(self, self.cursor, self.current_row))

    def _cursor_on_its_row(self) -> bool:
        row = self.current_row
        return row is not None and row[0] == self._cursor_id

    def _track_cursor(self) -> None:
        """Keep the selected row selected after a live update moved it (rows inserted before it, or an
        in-progress row replaced by its stored record elsewhere in the order). Looks for its id in the
        fresh pages; waits while pages next to the cursor are still being fetched; otherwise the row is
        gone and the cursor adopts the row now under it. The viewport moves by the same amount, so the
        row stays put on screen."""
        if self.following:
            self._cursor_id = None
        row = self.current_row
        if self._cursor_id is None or row is None or self.cursor // PAGE not in self._fresh:
            if row is not None and self.cursor // PAGE in self._fresh:
                self._cursor_id = row[0]
            return
        if row[0] == self._cursor_id:
            return
        for page in sorted(self._fresh, key=lambda p: abs(p - self.cursor // PAGE)):
            for off, r in enumerate(self._pages[page]):
                if r[0] == self._cursor_id:
                    index = page * PAGE + off
                    delta = index - self.cursor
                    self.cursor = index
                    self.scroll_to(y=max(0, int(self.scroll_offset.y) + delta), animate=False, immediate=True)
                    self.refresh()
                    return
        near = {self.cursor // PAGE - 1, self.cursor // PAGE + 1}
        if any((self._gen, p) in self._inflight for p in near):
            return  # it may be on the neighbouring page, still on its way
        self._cursor_id = row[0]

    # --- cursor and scrolling ----------------------------------------------------------------------

    def move_cursor(self, index: int, center: bool = False) -> None:
        if not self.row_count:
            self.cursor = 0
            self.refresh()
            return
        index = max(0, min(index, self.row_count - 1))
        self.cursor = index
        row = self.row_at(index)
        self._cursor_id = row[0] if row is not None and index // PAGE in self._fresh else None
        body = max(1, self.size.height - 1)
        top = int(self.scroll_offset.y)
        if center and not (top <= index < top + body):
            self.scroll_to(y=max(0, index - body // 2), animate=False, immediate=True)
        elif index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + body:
            self.scroll_to(y=index - body + 1, animate=False, immediate=True)
        self.refresh()
        self._want_visible()
        self.post_message(self.CursorMoved(self, index, self.current_row))

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor + delta)

    def action_page(self, delta: int) -> None:
        body = max(1, self.size.height - 1)
        self.scroll_to(y=max(0, int(self.scroll_offset.y) + delta * body), animate=False, immediate=True)
        self.move_cursor(self.cursor + delta * body)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(self.row_count - 1)

    def action_newest(self) -> None:
        self.move_cursor(self.newest_index)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._want_visible()

    def on_resize(self, event: events.Resize) -> None:
        self._col_layout = None
        self.virtual_size = Size(event.size.width, self.row_count + 1)
        self.call_after_refresh(self._keep_cursor_visible)
        self._want_visible()

    def _keep_cursor_visible(self) -> None:
        """After a resize (metrics pane shown, terminal resized) the cursor row must stay on screen."""
        body = max(1, self.size.height - 1)
        top = int(self.scroll_offset.y)
        if self.row_count and not (top <= self.cursor < top + body):
            self.scroll_to(y=max(0, self.cursor - body + 1), animate=False, immediate=True)

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            key = self._column_at(event.x)
            if key:
                self.post_message(self.HeaderClicked(self, key))
            return
        index = int(self.scroll_offset.y) + event.y - 1
        if 0 <= index < self.row_count:
            self.move_cursor(index)
            if event.chain >= 2:
                self.post_message(self.Activated(self, index))

    # --- layout and rendering ----------------------------------------------------------------------

    def layout_for(self, width: int) -> list[tuple[int, int, int]]:
        """``(column index, x, width)`` of the columns shown at ``width``: columns are dropped from the
        highest priority number down until the rest fit; the flex column takes what is left."""
        if self._col_layout and self._col_layout[0] == width:
            return self._col_layout[1]
        shown = list(range(len(self.columns)))
        avail = width - 2  # mark column + space

        def need(idx: list[int]) -> int:
            return sum(self.columns[i].width + 1 for i in idx)

        while need(shown) > avail:
            droppable = [i for i in shown if self.columns[i].priority > 0]
            if not droppable:
                break
            shown.remove(max(droppable, key=lambda i: (self.columns[i].priority, i)))
        extra = max(0, avail - need(shown))
        out, x = [], 2
        for i in shown:
            w = self.columns[i].width + (extra if self.columns[i].flex else 0)
            if x + w > width:
                w = max(0, width - x)
            out.append((i, x, w))
            x += w + 1
        self._col_layout = (width, out)
        return out

    def visible_columns(self) -> list[str]:
        return [self.columns[i].key for i, _, w in self.layout_for(self.size.width) if w > 0]

    def _column_at(self, x: int) -> str | None:
        for i, cx, w in self.layout_for(self.size.width):
            if cx <= x < cx + w:
                return self.columns[i].key
        return None

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"vtable--{name}", partial=True)
        return style

    def render_line(self, y: int) -> Strip:
        """One line of the viewport. Row strips are cached (keyed by the row itself, cursor and mark),
        so scrolling over cached pages formats nothing; the cache resets when what styles depend on
        changes (focus, theme, width)."""
        width = self.size.width
        key = (self.has_focus, self.app.theme, width)
        if key != self._cache_key:
            self._cache_key = key
            self._styles.clear()
            self._line_cache.clear()
        if y == 0:
            return self._render_header(width)
        index = int(self.scroll_offset.y) + y - 1
        row = self.row_at(index) if index < self.row_count else None
        if row is None:
            return self._render_row(index, None, width)
        ckey = (row, index == self.cursor, row[0] in self.marks)
        try:
            strip = self._line_cache.get(ckey)
        except TypeError:  # an unhashable value: render uncached
            return self._render_row(index, row, width)
        if strip is None:
            strip = self._line_cache[ckey] = self._render_row(index, row, width)
        return strip

    def _render_row(self, index: int, row: tuple | None, width: int) -> Strip:
        base = self.rich_style
        if index >= self.row_count:
            if self.row_count == 0 and index == 1:
                text = "  loading…" if not self.loaded else f"  {self.empty_message}"
                return Strip([Segment(fit(text, width), base + self._style("empty"))], width)
            return Strip.blank(width, base)
        cursor = index == self.cursor
        row_style = base
        if row is None:
            segs = [Segment(fit("  …", width), base + self._style("placeholder"))]
        else:
            role = row[1]
            if role:
                row_style = base + self._style(role)
            mark = MARK if row[0] in self.marks else " "
            segs = [Segment(mark + " ", row_style + self._style("mark"))]
            pos = 2
            for i, x, w in self.layout_for(width):
                if x > pos:
                    segs.append(Segment(" " * (x - pos), row_style))
                col = self.columns[i]
                text, cell_role = cell(col.kind, row[2 + i])
                style = row_style + self._style(cell_role) if cell_role and not role else row_style
                segs.append(Segment(fit(text, w, col.right), style))
                pos = x + w
            if pos < width:
                segs.append(Segment(" " * (width - pos), row_style))
        if cursor:  # on top of the row's own colours (Strip.apply_style would put it underneath)
            cur = self._style("cursor")
            segs = [Segment(text, (style or base) + cur) for text, style, _ in segs]
            row_style = row_style + cur
        return Strip(segs).crop_extend(0, width, row_style)

    def _render_header(self, width: int) -> Strip:
        head = self._style("header")
        segs = [Segment("  ", head)]
        pos = 2
        for i, x, w in self.layout_for(width):
            if x > pos:
                segs.append(Segment(" " * (x - pos), head))
            col = self.columns[i]
            label = col.label
            style = head
            if col.key == self.sort_key:
                arrow = "▼" if self.sort_desc else "▲"
                label = (label if len(label) < w else label[: max(0, w - 1)]) + arrow
                style = self._style("sorted")
            segs.append(Segment(fit(label, w, col.right), style))
            pos = x + w
        return Strip(segs).crop_extend(0, width, head)

    def visible_text(self) -> list[str]:
        """The rendered lines as plain text (header first) — for tests and screen readers."""
        return [self.render_line(y).text for y in range(self.size.height)]
