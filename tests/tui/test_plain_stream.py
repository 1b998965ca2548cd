"""The non-TTY live printer (heron_tui/plain.py): one line per call, even when DuckDB moves an amended
row to a new ``rowid``."""

from __future__ import annotations

import io

from heron_core.query.lists import CALLS, ListQuery
from heron_tui.plain import _Stream
from tests.tui.tui_helpers import DEMO, ingest


def test_a_call_moved_by_an_update_is_not_printed_twice():
    store = ingest([DEMO])
    cur = store.conn.cursor()
    n = len(ListQuery(CALLS, None).fetch(cur, 0, 1 << 20))  # the list folds a proxy hop's two legs
    out = io.StringIO()
    stream = _Stream(store, None, out)
    assert stream.emit() == n
    first = cur.execute("SELECT call_id, rowid FROM calls WHERE hop_role IS NULL ORDER BY rowid LIMIT 1").fetchone()
    # a list column update is a delete + insert in DuckDB: the row gets a new, higher rowid
    cur.execute("UPDATE calls SET damage = ['moved'] WHERE call_id = ?", [first[0]])
    moved = cur.execute("SELECT rowid FROM calls WHERE call_id = ?", [first[0]]).fetchone()[0]
    assert moved > first[1], "DuckDB kept the rowid: this test no longer exercises the move"
    assert stream.emit() == 0
    assert len(out.getvalue().splitlines()) == n


def test_new_calls_after_the_mark_are_printed_once():
    store = ingest([DEMO])
    cur = store.conn.cursor()
    out = io.StringIO()
    stream = _Stream(store, "status >= 500", out)
    errors = cur.execute("SELECT count(*) FROM calls WHERE status_code >= 500").fetchone()[0]
    assert errors and stream.emit() == errors
    assert stream.emit() == 0
