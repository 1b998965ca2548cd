"""The status bar's account of where the rows come from: files loading, a paced replay, or a live capture.

Kept out of the app so the wording lives in one place: a glance over SSH must tell whether data is still
arriving, how fast, and whether anything is being lost — packets/s, drops (kernel + overload), event-time
lag and the pipeline's health for a live capture; bytes, packets and time for a file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from heron_tui.widgets.format import clock, ms, rate


@dataclass
class FeedStatus:
    loading: bool = False  # a progress bar is shown
    progress: float = 1.0
    text: str = ""
    extras: list[str] = field(default_factory=list)
    live: str = ""  # '' | 'running' | 'starting' | 'stopped' | 'failed': the live dot's state


def feed_status(feed: Any, started: float, loaded_at: float | None, now: float | None = None) -> FeedStatus:
    """Status of ``feed`` (a ``Loader``, a ``PipelineRun``, or None when browsing a database)."""
    now = time.time() if now is None else now
    if feed is None:
        return FeedStatus(text="read-only database")
    if getattr(feed, "live", False):
        return _live(feed, now)
    st = FeedStatus()
    files = feed.files
    read = sum(f.bytes_read for f in files)
    size = sum(f.size for f in files)
    pk = sum(f.packets for f in files)
    st.loading = not feed.done and not feed.paced  # a replay's byte count lags (read in big blocks): no bar
    st.progress = feed.fraction()
    if feed.paced:
        state = feed.state
        at = f" · at {clock(state.watermark)}" if state is not None and state.watermark else ""
        if not feed.done:
            st.text = f"replay ×{feed.spec.replay_speed:g}{at}"
        else:
            took = (loaded_at or now) - started
            st.text = f"replayed {size / 1e6:.1f} MB · {feed.counters().get('packets_read', 0):,} pkts · {took:.1f}s"
    elif st.loading:
        st.text = f"loading {read / 1e6:.1f}/{size / 1e6:.1f} MB · {pk:,} pkts"
    else:
        took = (loaded_at or now) - started
        st.text = f"loaded {size / 1e6:.1f} MB · {pk:,} pkts · {took:.1f}s"
    if feed.failed:
        st.extras.append(f"{len(feed.failed)} file(s) failed")
    error = getattr(feed, "error", None)
    if error and not feed.failed:
        st.extras.append(error)
    return st


def _live(run: Any, now: float) -> FeedStatus:
    state = run.state
    st = FeedStatus(live=run.status if run.status != "drained" else "stopped")
    if run.status == "starting":
        st.text = "live · starting…"
        return st
    parts = ["live" if run.status == "running" else run.status]
    if state.pps is not None:
        parts.append(f"{rate(state.pps)} pkt/s")
    parts.append(f"drops {state.drops:,}")
    lag = state.lag_s(now)
    if lag is not None and run.status == "running":
        parts.append(f"lag {ms(lag * 1000)}")
    health = (state.snapshot or {}).get("health")
    if health and health != "ok":
        parts.append(f"health {health}")
    st.text = " · ".join(parts)
    if run.error:
        st.extras.append(run.error)
    return st
