"""Turn detail: what one user turn cost and how its time was spent.

A header (agent, status and end reason, duration, calls, tokens, cost, the user's input and the final
answer), the call timeline (``timeline.build_rows``: one row per call, tool waits between them,
sub-agent calls nested under the tool that spawned them) and the turn's insights. Enter on a row opens
the call (a tool row opens the call that carried its result); escape goes back.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from heron_core.query.details import turn_detail
from heron_tui.screens import fmt
from heron_tui.screens.call_detail import CallDetailScreen
from heron_tui.screens.timeline import Row, axis, build_rows

BAR_WIDTH = 48
_STATUS_STYLE = {"complete": "green", "incomplete": "yellow", "partial": "magenta"}
_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def header_text(turn: dict[str, Any]) -> Text:
    """The turn's header lines (plain facts; the previews cut to one line)."""
    t = Text()
    t.append(f"turn {fmt.short_id(turn['turn_id'])}", style="bold")
    t.append(f"  {turn.get('agent_kind') or '?'}  ")
    status = turn.get("status") or "?"
    t.append(status, style=_STATUS_STYLE.get(status, ""))
    t.append(f" ({turn.get('end_reason') or '?'})")
    t.append(f"  {fmt.ms(turn.get('duration_ms'))}")
    if turn.get("first_response_ms") is not None:
        t.append(f"  first response {fmt.ms(turn['first_response_ms'])}")
    t.append("\n")
    parts = [f"{turn.get('call_count') or 0} calls ({turn.get('main_call_count') or 0} main"]
    if turn.get("subagent_call_count"):
        parts[0] += f", {turn['subagent_call_count']} sub-agent"
    if turn.get("retry_count"):
        n = turn["retry_count"]
        parts[0] += f", {n} {'retry' if n == 1 else 'retries'}"
    parts[0] += ")"
    parts.append(f"tools {turn.get('tool_call_count') or 0}"
                 + (f" ({turn['tool_error_count']} errors)" if turn.get("tool_error_count") else ""))
    cache = f" (cache {fmt.tokens(turn['cache_read_tokens'])})" if turn.get("cache_read_tokens") else ""
    parts.append(f"tokens {fmt.tokens(turn.get('input_total_tokens'))} in{cache}"
                 f" / {fmt.tokens(turn.get('output_tokens'))} out")
    parts.append(f"cost {fmt.cost(turn.get('cost_usd'))}" + ("" if turn.get("cost_complete", True) else "+"))
    if turn.get("models"):
        parts.append(", ".join(turn["models"]))
    t.append("  ".join(parts))
    t.append("\n▸ user: ", style="bold")
    t.append(fmt.one_line(turn.get("user_input_preview"), 300) or "–")
    t.append("\n◂ answer: ", style="bold")
    t.append(fmt.one_line(turn.get("final_answer_preview"), 300) or "–")
    if turn.get("error"):
        err = turn["error"]
        t.append(f"\n✕ {err.get('source')}/{err.get('type')}: {fmt.one_line(err.get('message'), 200)}",
                 style="red")
    return t


def insights_text(insights: list[dict[str, Any]]) -> Text:
    t = Text()
    if not insights:
        t.append("no insights for this turn", style="dim")
        return t
    t.append("Insights\n", style="bold")
    for i, ins in enumerate(insights):
        sev = ins.get("severity") or "info"
        t.append(f"● {sev:<8} ", style=_SEVERITY_STYLE.get(sev, ""))
        t.append(f"{ins.get('kind')}: {fmt.one_line(ins.get('summary'), 200)}")
        if (ins.get("count") or 1) > 1:
            t.append(f" ({ins['count']}×)", style="dim")
        if i < len(insights) - 1:
            t.append("\n")
    return t


class TurnDetailScreen(Screen):
    """The detail of turn ``turn_id``; pushed by the turn and session views."""

    DEFAULT_CSS = """
    TurnDetailScreen #turn-header { height: auto; padding: 0 1; background: $boost; }
    TurnDetailScreen #timeline { height: 1fr; }
    TurnDetailScreen #turn-insights { height: auto; max-height: 12; padding: 0 1; }
    """

    BINDINGS = [Binding("escape", "back", "Back"), Binding("enter", "open_call", "Open call", show=True)]

    def __init__(self, conn: Any, turn_id: str, *, bar_width: int = BAR_WIDTH, name: str | None = None,
                 id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.conn = conn
        self.turn_id = turn_id
        self.bar_width = bar_width
        self.detail: dict[str, Any] | None = None
        self.rows: list[Row] = []

    def compose(self) -> ComposeResult:
        self.detail = turn_detail(self.conn, self.turn_id)
        if self.detail is None:
            yield Static(Text(f"no turn {self.turn_id} in this database"), id="turn-header")
            yield Footer()
            return
        self.rows = build_rows(self.detail, self.bar_width)
        yield Static(header_text(self.detail["turn"]), id="turn-header")
        yield DataTable(id="timeline", cursor_type="row", show_row_labels=False)
        yield Static(insights_text(self.detail["insights"]), id="turn-insights")
        yield Footer()

    def on_mount(self) -> None:
        if self.detail is None:
            return
        turn = self.detail["turn"]
        starts = [c["request_start"] for c in self.detail["calls"] if c.get("request_start") is not None]
        t0 = turn.get("start") if turn.get("start") is not None else min(starts, default=0.0)
        t1 = turn.get("end") if turn.get("end") is not None else t0
        table = self.query_one("#timeline", DataTable)
        table.add_column("Call", key="call")
        table.add_column(axis(t0, t1, self.bar_width), key="bar", width=self.bar_width)
        for label, key in (("Model", "model"), ("Status", "status"), ("TTFT", "ttft"), ("Dur", "dur"),
                           ("Tok in/out", "tokens"), ("Cost", "cost")):
            table.add_column(label, key=key)
        for r in self.rows:
            table.add_row(r.label, r.bar, r.model, r.status, r.ttft, r.duration, r.tokens, r.cost, key=r.key)
        table.focus()

    def row_call_id(self, key: str) -> str | None:
        return next((r.call_id for r in self.rows if r.key == key), None)

    def _open(self, key: str | None) -> None:
        call_id = self.row_call_id(key) if key is not None else None
        if call_id is not None:
            self.app.push_screen(CallDetailScreen(self.conn, call_id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._open(event.row_key.value)

    def action_open_call(self) -> None:
        if self.detail is None or not self.rows:
            return
        table = self.query_one("#timeline", DataTable)
        self._open(self.rows[table.cursor_row].key if 0 <= table.cursor_row < len(self.rows) else None)

    def action_back(self) -> None:
        self.dismiss()
