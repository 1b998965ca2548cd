"""What the selected rows do: open (detail screens), copy (OSC 52), export SFT — a mixin of the app.

Kept apart from ``app.py`` because these are the touch points with other modules: the detail screens
(``heron_tui.screens``) and the SFT exporter (``heron_core.export.sft``) are imported lazily, so the list
UI works (with a notification) before they exist, and their work runs in thread workers like every
other query.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from heron_core.query.lists import open_target
from heron_tui.views.lists import ListView
from heron_tui.widgets import clipboard
from heron_tui.widgets.dialogs import ExportScreen
from heron_tui.widgets.format import one_line


class RowActions:
    """``enter``, ``y``, ``e`` and ``E``; expects the ``HeronApp`` attributes it uses (``reader``,
    ``list_view``, ``filterbar``, ``_apply_filter``, ``_from_thread`` …)."""

    def action_open(self) -> None:
        view = self.list_view()
        if view is None or view.table.current_id is None:
            return
        name, row_id = view.spec.name, view.table.current_id

        def work() -> None:
            with self.reader.read() as cur:
                target = open_target(cur, name, row_id)
            self._from_thread(self._open_target, target)

        self.run_worker(work, thread=True, group="open", exclusive=True, exit_on_error=False)

    def _open_target(self, target: tuple[str, Any] | None) -> None:
        if target is None:
            self.notify("nothing to open for this row", severity="warning")
            return
        kind, ident = target
        if kind == "service":
            text = f'server == "{ident}"'  # a service opens its calls
            self.filterbar.input.value = text
            self.filterbar.input.remember(text)
            if self._apply_filter(text, focus=False):
                self.action_view("calls")
            return
        try:
            if kind == "turn":
                from heron_tui.screens.turn_detail import TurnDetailScreen as Detail
            else:
                from heron_tui.screens.call_detail import CallDetailScreen as Detail  # type: ignore[assignment]
        except ImportError:
            self.notify(f"the {kind} detail screen is not available yet ({ident})", severity="warning")
            return
        # in-progress rows open too: the detail reads through the live overlay (its state when opened)
        self.push_screen(Detail(self.reader.cursor(("turns", "calls")), ident))

    def action_copy(self) -> None:
        view = self.list_view()
        row = view.table.current_row if view is not None else None
        if view is None or row is None:
            self.notify("no row selected")
            return
        flex = next((i for i, c in enumerate(view.spec.columns) if c.flex), None)
        preview = one_line(row[2 + flex]) if flex is not None else ""
        text = f"{row[0]}\t{preview}" if preview else str(row[0])
        clipboard.copy(self, text)
        self.last_copy = text
        self.notify(f"copied {row[0]}", timeout=2)

    def action_export_selected(self) -> None:
        self._export(all_rows=False)

    def action_export_all(self) -> None:
        self._export(all_rows=True)

    def _export(self, all_rows: bool) -> None:
        view = self.list_view()
        if view is None or view.spec.turn_id_sql is None:
            self.notify("SFT export works from the turns, sessions, calls and insights views", severity="warning")
            return
        table = view.table
        noun = view.spec.name
        if all_rows:
            row_ids = None
            what = f"all {view.count or 0:,} {noun}" + (" matching the filter" if self.filter_text and
                                                         self.filter_on else "")
        elif table.marks:
            row_ids = sorted(table.marks)
            what = f"{len(row_ids)} marked {noun}"
        elif table.current_id is not None:
            row_ids = [table.current_id]
            what = f"the selected {noun[:-1]} {str(table.current_id)[:12]}"
        else:
            self.notify("nothing selected")
            return
        default = f"./heron-sft-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
        self.push_screen(ExportScreen(what, default), partial(self._export_to, view, row_ids))

    def _export_to(self, view: ListView, row_ids: list[Any] | None, path: str | None) -> None:
        if not path:
            return
        query, name = view.query_obj, view.spec.name

        def work() -> None:
            try:
                from heron_core.export.sft import export_sft
            except ImportError:
                self._from_thread(self.notify, "SFT export is not available yet", severity="warning")
                return
            try:
                with self.reader.read() as cur:
                    if name == "sessions":
                        kwargs: dict[str, Any] = {"scope": "session",
                                                  "session_ids": row_ids if row_ids is not None else query.ids(cur)}
                    elif name == "turns":
                        kwargs = {"scope": "turn", "turn_ids": row_ids if row_ids is not None else query.ids(cur)}
                    else:
                        kwargs = {"scope": "turn", "turn_ids": query.turn_ids(cur, row_ids)}
                    if not (kwargs.get("turn_ids") or kwargs.get("session_ids")):
                        self._from_thread(self.notify, "no turns to export for these rows", severity="warning")
                        return
                    with open(path, "wb") as out:
                        result = export_sft(cur, out, **kwargs)
            except Exception as exc:
                self._from_thread(self.notify, f"{path}: {exc}", title="export failed", severity="error")
                return
            self._from_thread(self._exported, path, result)

        self.run_worker(work, thread=True, group="export", exit_on_error=False)

    def _exported(self, path: str, result: Any) -> None:
        self.last_export = (path, result)
        summary = result.summary() if hasattr(result, "summary") else \
            f"exported {result.exported}, skipped {sum(result.skipped.values())}"
        self.notify(f"{path}: {summary}", title="SFT export", timeout=8)

