"""Modal screens of the lists screen: help (keys in effect + filter fields) and the export path prompt."""

from __future__ import annotations

import io
from typing import ClassVar

from rich.console import Console
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from heron_core.query import filterlang
from heron_tui.keys import display_keys, effective_keys


def keys_table(keymap: dict[str, str]) -> Table:
    t = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=False)
    t.add_column("key", style="bold", no_wrap=True)
    t.add_column("does")
    for spec, keys in effective_keys(keymap):
        t.add_row(display_keys(keys), spec.description)
    t.add_row("↑ ↓ pgup pgdn home end", "Move in the list (also j k g G space)")
    return t


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 96; max-width: 100%; height: 90%; border: round $primary;
                            background: $surface; padding: 0 1; }
    HelpScreen VerticalScroll { height: 1fr; }
    HelpScreen .title { text-style: bold; color: $accent; margin-top: 1; }
    HelpScreen #help-foot { color: $text-muted; height: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close", show=False)]

    def __init__(self, keymap: dict[str, str], keys_source: str) -> None:
        super().__init__()
        self.keymap = keymap
        self.keys_source = keys_source

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll():
                yield Label("Keys", classes="title")
                yield Static(keys_table(self.keymap), id="help-keys")
                yield Label("Display filter", classes="title")
                yield Static(Text(filterlang.help_text()), id="help-filter")
            yield Label(f"keys from {self.keys_source} · esc closes", id="help-foot")

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)

    def text(self, width: int = 100) -> str:
        """The help as plain text (for tests and for piping into a pager)."""
        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        console.print(keys_table(self.keymap))
        console.print(filterlang.help_text())
        return console.export_text()


class ExportScreen(ModalScreen[str | None]):
    """Asks where to write an SFT export; enter accepts, escape cancels."""

    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    ExportScreen > Vertical { width: 80; max-width: 100%; height: auto; border: round $primary;
                              background: $surface; padding: 0 1; }
    ExportScreen Input { margin: 1 0 0 0; }
    ExportScreen #export-what { text-style: bold; }
    ExportScreen #export-hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, what: str, default_path: str) -> None:
        super().__init__()
        self.what = what
        self.default_path = default_path

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Export SFT: {self.what}", id="export-what")
            yield Input(value=self.default_path, id="export-path")
            yield Label("enter writes the file (JSONL, one trajectory per line) · esc cancels", id="export-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
