"""``heron-tui`` without a terminal: the calls as a plain fixed-width table on stdout.

``heron-tui x.pcap | less`` prints every call once the files are read; a live or replayed source
(``heron-tui -i lo | grep …``) prints calls as they are stored, until Ctrl+C or SIGTERM, which drain the
pipeline (every open turn closes, the last calls are written) before the last rows are printed.
"""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

from heron_core.query.filterlang import Compiled
from heron_core.query.lists import CALLS, ListQuery, compile_for
from heron_tui.widgets.format import fit, one_line

COLUMNS = (("time", 8), ("source", 12), ("wire api", 18), ("model", 26), ("status", 6), ("finish", 9),
           ("tok in", 7), ("tok out", 7), ("ttft ms", 8), ("e2e ms", 8))
_WANT = ("start", "source", "wire", "model", "status", "finish", "tokens_in", "tokens_out", "ttft", "e2e")
_KEYS = [c.key for c in CALLS.columns]
_IDX = [_KEYS.index(k) + 2 for k in _WANT]
_PREVIEW = _KEYS.index("preview") + 2
STREAM_POLL_S = 0.5


def header() -> str:
    return (" ".join(fit(label, w) for label, w in COLUMNS) + " preview").rstrip()


def line(r: tuple) -> str:
    """One ``ListQuery(CALLS)`` row as a table line (no colours, no escapes)."""
    vals = [r[i] for i in _IDX]
    vals[0] = time.strftime("%H:%M:%S", time.localtime(vals[0])) if vals[0] is not None else ""
    for j in (8, 9):
        vals[j] = f"{vals[j]:.0f}" if vals[j] is not None else ""
    cells = [fit("" if v is None else str(v), w, right=j >= 6 or j == 4)
             for j, ((_, w), v) in enumerate(zip(COLUMNS, vals))]
    return (" ".join(cells) + " " + one_line(r[_PREVIEW])[:120]).rstrip()


def print_calls(store: Any, display_filter: str | None, out: Any = None) -> int:
    """Every stored call (matching the filter) in list order. Returns 0."""
    out = out or sys.stdout
    cur = store.conn.cursor()
    query = ListQuery(CALLS, compile_for(CALLS, display_filter) if display_filter else None)
    print(header(), file=out)
    offset = 0
    while True:
        rows = query.fetch(cur, offset, 1000)
        if not rows:
            break
        for r in rows:
            print(line(r), file=out)
        offset += len(rows)
    return 0


class _Stream:
    """Prints the calls stored since the last look, by ``rowid``.

    DuckDB moves a row to a new ``rowid`` when some updates rewrite it (delete + insert), so a call
    amended after it was printed (its turn or session found later) shows up again above the mark. The
    ids printed recently are remembered (a bounded window: amendments come within the turn idle
    timeout, long before ``RECENT_IDS`` newer calls) and skipped.
    """

    RECENT_IDS = 100_000

    def __init__(self, store: Any, display_filter: str | None, out: Any) -> None:
        self.cur = store.conn.cursor()
        self.where = compile_for(CALLS, display_filter) if display_filter else None
        self.out = out
        self.last = -1
        self.recent: dict[str, None] = {}

    def emit(self) -> int:
        top = self.cur.execute("SELECT max(rowid) FROM calls").fetchone()[0]
        if top is None or top <= self.last:
            return 0
        window = Compiled("calls.rowid > ? AND calls.rowid <= ?", (self.last, top))
        where = window.and_(self.where) if self.where else window
        rows = ListQuery(CALLS, where).fetch(self.cur, 0, 1 << 40)
        printed = 0
        for r in rows:
            cid = r[0]  # ListQuery rows start with the record id
            if cid in self.recent:
                continue
            self.recent[cid] = None
            print(line(r), file=self.out)
            printed += 1
        while len(self.recent) > self.RECENT_IDS:
            del self.recent[next(iter(self.recent))]
        self.out.flush()
        self.last = top
        return printed


def stream_calls(store: Any, run: Any, display_filter: str | None, out: Any = None) -> int:
    """Print calls as ``run`` (a started ``PipelineRun``) stores them, until it ends or a signal; the first
    signal drains the run, a second one leaves at once. Returns the exit code."""
    out = out or sys.stdout
    stream = _Stream(store, display_filter, out)
    print(header(), file=out)
    out.flush()

    def term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, term)
    try:
        try:
            while not run.done:
                stream.emit()
                time.sleep(STREAM_POLL_S)
        except KeyboardInterrupt:
            run.stop()
            try:
                while not run.wait(STREAM_POLL_S):
                    stream.emit()
            except KeyboardInterrupt:  # a second signal: leave at once
                run.kill()
                return 130
        stream.emit()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if run.status == "failed":
        print(f"heron: error: {run.error}", file=sys.stderr)
        return 1
    return 0
