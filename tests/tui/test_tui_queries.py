"""The UI-free query layer the TUI (and the web API) use: paged lists, search, targets, sparklines."""

from __future__ import annotations

import pytest

from heron_core.query.filterlang import compile_filter
from heron_core.query.lists import SPECS, ListQuery, compile_for, open_target, table_counts
from heron_core.query.sparks import METRICS, compute


@pytest.mark.parametrize("name", list(SPECS))
def test_pages_cover_every_row_once_in_a_stable_order(synth_store, name):
    cur = synth_store.conn.cursor()
    for sort in [c.key for c in SPECS[name].columns][:4]:
        for desc in (False, True):
            q = ListQuery(SPECS[name], None, sort, desc)
            n = q.count(cur)
            ids = []
            for off in range(0, n, 97):
                ids += [r[0] for r in q.fetch(cur, off, 97)]
            assert len(ids) == n == len(set(ids))
            assert ids == q.ids(cur)


def test_rows_are_id_style_then_columns(synth_store):
    cur = synth_store.conn.cursor()
    q = ListQuery(SPECS["calls"], compile_for("calls", "status >= 500"))
    rows = q.fetch(cur, 0, 10)
    assert rows and all(r[1] == "error" for r in rows)  # style role of errored calls
    assert all(len(r) == 2 + len(SPECS["calls"].columns) for r in rows)


def test_sort_orders_by_the_column(synth_store):
    cur = synth_store.conn.cursor()
    spec = SPECS["turns"]
    i = [c.key for c in spec.columns].index("cost")
    vals = [r[2 + i] for r in ListQuery(spec, None, "cost", True).fetch(cur, 0, 50)]
    assert vals == sorted(vals, reverse=True)


def test_find_next_previous_and_wrap(synth_store):
    cur = synth_store.conn.cursor()
    q = ListQuery(SPECS["turns"])
    match = compile_for("turns", "insight")
    hits = [i for i, r in enumerate(q.fetch(cur, 0, 10_000)) if r[2 + 9]]  # 'insights' column
    assert len(hits) >= 3
    assert q.find(cur, match, -1) == hits[0]
    assert q.find(cur, match, hits[0]) == hits[1]
    assert q.find(cur, match, hits[1], forward=False) == hits[0]
    assert q.find(cur, match, hits[-1]) == hits[0]  # wraps
    assert q.find(cur, match, hits[0], forward=False) == hits[-1]
    assert q.find(cur, compile_for("turns", "agent == nobody"), 0) is None


def test_services_filter_applies_to_their_calls(synth_store):
    cur = synth_store.conn.cursor()
    q = ListQuery(SPECS["services"], compile_for("services", "status >= 500"))
    rows = q.fetch(cur, 0, 100)
    i = [c.key for c in SPECS["services"].columns].index("errors")
    assert rows and all(r[2 + 1] == r[2 + i] for r in rows)  # every counted call is an error
    assert q.find(cur, compile_for("services", "model ~ llama"), -1) is not None


def test_index_of_and_turn_ids(synth_store):
    cur = synth_store.conn.cursor()
    q = ListQuery(SPECS["calls"], compile_for("calls", "agent == codex-cli"))
    ids = q.ids(cur)
    assert q.index_of(cur, ids[5]) == 5 and q.index_of(cur, "nope") is None
    tids = q.turn_ids(cur)
    expected = dict.fromkeys(r[0] for r in cur.execute(
        "SELECT turn_id FROM calls WHERE agent_kind = 'codex-cli' ORDER BY request_start, call_id").fetchall())
    assert tids == [t for t in expected if t]
    assert q.turn_ids(cur, ids[:1]) == [tids[0]]
    sq = ListQuery(SPECS["sessions"])
    sid = sq.ids(cur, 1)[0]
    assert sq.turn_ids(cur, [sid]) == [r[0] for r in cur.execute(
        "SELECT turn_id FROM turns WHERE session_id = ? ORDER BY start, turn_id", [sid]).fetchall()]
    assert ListQuery(SPECS["services"]).turn_ids(cur) == []


def test_open_targets(synth_store):
    cur = synth_store.conn.cursor()
    assert open_target(cur, "turns", "t1") == ("turn", "t1")
    assert open_target(cur, "calls", "c1") == ("call", "c1")
    assert open_target(cur, "services", "s:1") == ("service", "s:1")
    sid, first = cur.execute("SELECT session_id, first_turn_id FROM sessions LIMIT 1").fetchone()
    assert open_target(cur, "sessions", sid) == ("turn", first)
    iid, tid = cur.execute("SELECT insight_id, turn_id FROM insights LIMIT 1").fetchone()
    assert open_target(cur, "insights", iid) == ("turn", tid)
    assert open_target(cur, "sessions", "missing") is None and open_target(cur, "turns", None) is None


def test_table_counts(synth_store):
    counts = table_counts(synth_store.conn.cursor())
    assert counts == {"calls": 2000, "turns": 400, "sessions": 40, "insights": counts["insights"],
                      "services": 7}
    assert counts["insights"] > 0


def test_sparks_series_and_totals(synth_store):
    cur = synth_store.conn.cursor()
    s = compute(cur, None, buckets=30)
    assert [x.key for x in s.series] == [k for k, _, _ in METRICS]
    assert all(len(x.values) == 30 for x in s.series) and s.calls == 2000
    t0, t1, n, errs = cur.execute("SELECT min(request_start), max(response_end), count(*), count(*) FILTER "
                                  "(WHERE status_code >= 400 OR finish IN ('error','aborted')) FROM calls").fetchone()
    assert s.get("calls_s").total == pytest.approx(n / (t1 - t0))
    assert s.get("error_rate").total == pytest.approx(errs / n)
    assert sum(s.get("calls_s").values) * s.bucket_s == pytest.approx(n)
    p95 = cur.execute("SELECT quantile_cont(ttft_ms, 0.95) FILTER (WHERE ok) FROM calls").fetchone()[0]
    assert s.get("ttft_p95").total == pytest.approx(p95)
    busy = cur.execute("SELECT sum(response_end - request_start) FROM calls").fetchone()[0]
    assert sum(s.get("active").values) * s.bucket_s == pytest.approx(busy, rel=1e-6)
    f = compute(cur, compile_filter("status >= 500", "calls"))
    assert f.get("error_rate").total == 1.0 and f.calls < n
    empty = compute(cur, compile_filter("agent == nobody", "calls"))
    assert empty.calls == 0 and empty.t0 is None and all(x.total is None for x in empty.series)


@pytest.mark.parametrize("name", ["turns", "calls", "sessions", "services"])
@pytest.mark.parametrize("sort_i", [0, 2, 5, 9])
@pytest.mark.parametrize("desc", [False, True])
def test_keyset_and_reverse_pages_equal_offset_pages(synth_store, name, sort_i, desc):
    """The fast paths (keyset after the previous row, reversed read of the second half) return exactly
    the rows LIMIT/OFFSET returns, NULL sort values included."""
    cur = synth_store.conn.cursor()
    spec = SPECS[name]
    q = ListQuery(spec, None, spec.columns[sort_i % len(spec.columns)].key, desc)
    n = q.count(cur)
    page = max(1, n // 7)
    plain = [q.fetch(cur, off, page) for off in range(0, n, page)]
    assert sum(len(p) for p in plain) == n
    for i in range(1, len(plain)):
        assert q.fetch(cur, i * page, page, after=plain[i - 1][-1]) == plain[i]
        assert q.fetch(cur, i * page, page, total=n) == plain[i]
