"""The metrics pane: one sparkline per call metric over the capture's time range, its figure beside it.

Two columns of four (calls/s, output tokens/s, TTFT p50/p95, E2E p95, error rate, active calls, cache
hit ratio) keep it to four lines, so it fits above the list even on a 24-line terminal. The data comes
from ``heron_core.query.sparks`` in a worker of the app; this widget only displays it.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid, Horizontal
from textual.widgets import Label, Sparkline

from heron_core.query.sparks import METRICS, Series, Sparks

from . import format as fmt


def figure(s: Series) -> str:
    v = s.total
    if v is None:
        return "–"
    if s.kind == "ms":
        return fmt.ms(v)
    if s.kind == "pct":
        return fmt.pct(v)
    return fmt.rate(v)


class MetricsPane(Grid, can_focus=True):
    DEFAULT_CSS = """
    MetricsPane { grid-size: 2; grid-columns: 1fr 1fr; grid-gutter: 0 2; height: 6; padding: 0 1;
                  border: round $primary-darken-2; border-title-color: $text-muted; background: $surface; }
    MetricsPane:focus-within { border: round $primary; }
    MetricsPane > Horizontal { height: 1; }
    MetricsPane .m-label { width: 10; color: $text-muted; }
    MetricsPane Sparkline { width: 1fr; height: 1; }
    MetricsPane .m-value { width: 8; text-align: right; text-style: bold; }
    MetricsPane .m-value.-bad { color: $error; }
    """

    def compose(self) -> ComposeResult:
        for key, label, _ in METRICS:
            with Horizontal(id=f"m-{key}"):
                yield Label(label, classes="m-label")
                yield Sparkline([], id=f"spark-{key}")
                yield Label("–", id=f"val-{key}", classes="m-value")

    def on_mount(self) -> None:
        self.border_title = "metrics"

    def show(self, sparks: Sparks, scope: str) -> None:
        span = ""
        if sparks.t0 is not None and sparks.t1 is not None:
            span = f" · {fmt.clock(sparks.t0)}–{fmt.clock(sparks.t1)} · {len(sparks.series[0].values)}×" \
                   f"{fmt.ms(sparks.bucket_s * 1000)}"
        self.border_title = f"metrics · {scope} · {sparks.calls} calls{span}"
        for s in sparks.series:
            self.query_one(f"#spark-{s.key}", Sparkline).data = s.values or [0.0]
            val = self.query_one(f"#val-{s.key}", Label)
            val.update(figure(s))
            val.set_class(s.key == "error_rate" and (s.total or 0) >= 0.05, "-bad")

    def values(self) -> dict[str, str]:
        """Displayed figures by metric key (for tests)."""
        return {key: str(self.query_one(f"#val-{key}", Label).render()) for key, _, _ in METRICS}
