"""Call detail: everything heron stored about one LLM call, in six tabs.

Conversation (the normalized history and response, thinking folded), Request and Response (pretty JSON,
highlighted; big bodies cut for display until ``a``), Stream (events re-split from the stored raw
stream), HTTP (heads as stored, redacted) and Hex (first 64 KiB of the response body). Keys: tab /
shift+tab or 1–6 switch tabs, ``y`` copies the current tab's text (OSC 52), escape goes back.

Data comes from ``heron_core.query.details`` (the REST API serves the same), text from ``render``.
"""

from __future__ import annotations

from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Collapsible, Footer, Static, TabbedContent, TabPane

from heron_core.query.details import Block, call_detail, conversation
from heron_tui.screens import render

TABS = ("conversation", "request", "response", "stream", "http", "hex")
TAB_TITLES = ("Conversation", "Request", "Response", "Stream", "HTTP", "Hex")
BLOCK_CHARS = 20_000
"""Characters of one conversation block shown (the full text is in Request/Response)."""
MAX_BLOCKS = 600
"""Newest blocks shown; a long agent history keeps its latest exchanges visible without mounting
thousands of widgets."""
FOLD_SYSTEM_CHARS = 1_500


class CallDetailScreen(Screen):
    """The detail of call ``call_id``; pushed by the call list and the turn timeline."""

    DEFAULT_CSS = """
    CallDetailScreen #call-summary { height: auto; padding: 0 1; background: $boost; }
    CallDetailScreen TabbedContent { height: 1fr; }
    CallDetailScreen TabPane { padding: 0; }
    CallDetailScreen .tab-scroll { height: 1fr; }
    CallDetailScreen .notes { color: $warning; padding: 0 1; height: auto; }
    CallDetailScreen .body { padding: 0 1; height: auto; }
    CallDetailScreen .block { height: auto; border: round $panel-lighten-2; padding: 0 1; margin: 0 1; }
    CallDetailScreen .block.system { border: round $secondary; }
    CallDetailScreen .block.user { border: round $primary; }
    CallDetailScreen .block.assistant { border: round $success; }
    CallDetailScreen .block.tool_call { border: round $warning; }
    CallDetailScreen .block.tool_result { border: round $accent; }
    CallDetailScreen .block.error { border: round $error; }
    CallDetailScreen .block.note { border: none; color: $text-muted; }
    CallDetailScreen Collapsible { margin: 0 1; padding: 0; }
    CallDetailScreen .separator { color: $text-muted; padding: 0 1; height: auto; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("tab", "cycle_tab(1)", "Next tab", priority=True, show=False),
        Binding("shift+tab", "cycle_tab(-1)", "Previous tab", priority=True, show=False),
        *(Binding(str(i + 1), f"show_tab('{tab}')", TAB_TITLES[i], show=False) for i, tab in enumerate(TABS)),
        Binding("y", "copy", "Copy tab"),
        Binding("a", "show_all", "Show all"),
    ]

    def __init__(self, conn: Any, call_id: str, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.conn = conn
        self.call_id = call_id
        self.detail: dict[str, Any] | None = None
        self.blocks: list[Block] = []
        self.shown_all: set[str] = set()

    # --- layout ---

    def compose(self) -> ComposeResult:
        self.detail = call_detail(self.conn, self.call_id)
        if self.detail is None:
            yield Static(Text(f"no call {self.call_id} in this database"), id="call-summary")
            yield Footer()
            return
        self.blocks = conversation(self.detail)
        yield Static(Text(render.summary_line(self.detail["call"])), id="call-summary")
        with TabbedContent(id="call-tabs", initial="conversation"):
            with TabPane(f"1 {TAB_TITLES[0]}", id="conversation"):
                with VerticalScroll(classes="tab-scroll", id="conversation-scroll"):
                    yield from self._conversation_widgets()
            for i, tab in enumerate(TABS[1:], start=2):
                with TabPane(f"{i} {TAB_TITLES[i - 1]}", id=tab):
                    with VerticalScroll(classes="tab-scroll", id=f"{tab}-scroll"):
                        if tab in ("request", "response"):
                            yield Static(id=f"{tab}-notes", classes="notes")
                        yield Static(id=f"{tab}-body", classes="body")
        yield Footer()

    def on_mount(self) -> None:
        if self.detail is None:
            return
        for tab in ("request", "response"):
            self._show_body(tab)
        for tab in ("stream", "http", "hex"):  # one event / header / dump line per row: cut, never wrap
            self.query_one(f"#{tab}-body", Static).update(
                Text(self.tab_text(tab), no_wrap=tab != "http", overflow="ellipsis"))

    def _conversation_widgets(self) -> list[Widget]:
        widgets: list[Widget] = []
        blocks = self.blocks
        if len(blocks) > MAX_BLOCKS:
            hidden = len(blocks) - MAX_BLOCKS
            widgets.append(Static(Text(f"… {hidden} earlier blocks not shown (see Request)"),
                                  classes="separator"))
            blocks = blocks[-MAX_BLOCKS:]
        in_response = False
        for b in blocks:
            if b.source == "response" and not in_response:
                in_response = True
                widgets.append(Static(Text("── response ──"), classes="separator"))
            widgets.append(_block_widget(b))
        return widgets

    def _show_body(self, tab: str) -> None:
        view = render.body_view(self.detail, tab, show_all=tab in self.shown_all)
        self.query_one(f"#{tab}-notes", Static).update(Text("\n".join(view.notes)))
        self.query_one(f"#{tab}-notes", Static).display = bool(view.notes)
        body = self.query_one(f"#{tab}-body", Static)
        if view.is_json:
            body.update(Syntax(view.text, "json", theme="ansi_dark", word_wrap=True,
                               background_color="default"))
        else:
            body.update(Text(view.text))

    # --- text of a tab (what y copies) ---

    def tab_text(self, tab: str) -> str:
        """Plain text of ``tab`` as shown (the Request/Response bodies honour ``a``)."""
        if self.detail is None:
            return ""
        if tab == "conversation":
            return render.conversation_text(self.blocks)
        if tab in ("request", "response"):
            view = render.body_view(self.detail, tab, show_all=tab in self.shown_all)
            return "\n".join(view.notes + [view.text]) if view.notes else view.text
        if tab == "stream":
            return render.stream_text(self.detail)
        if tab == "http":
            return render.http_text(self.detail)
        if tab == "hex":
            return render.hex_text(self.detail)
        raise ValueError(f"unknown tab {tab!r}")

    @property
    def active_tab(self) -> str:
        if self.detail is None:
            return "conversation"
        return self.query_one("#call-tabs", TabbedContent).active or "conversation"

    # --- actions ---

    def action_back(self) -> None:
        self.dismiss()

    def action_show_tab(self, tab: str) -> None:
        if self.detail is not None:
            self.query_one("#call-tabs", TabbedContent).active = tab

    def action_cycle_tab(self, step: int) -> None:
        if self.detail is not None:
            i = TABS.index(self.active_tab) if self.active_tab in TABS else 0
            self.action_show_tab(TABS[(i + step) % len(TABS)])

    def action_copy(self) -> None:
        text = self.tab_text(self.active_tab)
        self.app.copy_to_clipboard(text)
        self.notify(f"copied {self.active_tab}: {len(text)} characters")

    def action_show_all(self) -> None:
        tab = self.active_tab
        if self.detail is None or tab not in ("request", "response") or tab in self.shown_all:
            return
        self.shown_all.add(tab)
        self._show_body(tab)


def _block_widget(b: Block) -> Widget:
    title = render.block_title(b)
    body = render.block_body(b)
    if len(body) > BLOCK_CHARS:
        body = body[:BLOCK_CHARS] + f"\n… {len(body) - BLOCK_CHARS} more characters (see Request/Response)"
    classes = f"block {b.kind}" + (" error" if b.is_error else "")
    if b.kind == "thinking" or (b.kind == "system" and len(body) > FOLD_SYSTEM_CHARS):
        return Collapsible(Static(Text(body), classes="body"), title=f"{title} · {len(body)} chars",
                           collapsed=True, classes=classes)
    widget = Static(Text(body), classes=classes)
    widget.border_title = title
    return widget
