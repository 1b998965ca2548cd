"""``query.cache.QueryCache``: a result is reused only while the store file is unchanged — any commit, from
any cursor, invalidates it — and nothing is cached for a store in memory."""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from heron_core.query import cache as cache_mod
from heron_core.query.cache import QueryCache, store_generation
from heron_core.query.metrics import MetricFilters, summary
from heron_core.store.db import open_store
from heron_core.store.writer import StoreWriter

B = 1_699_999_200.0


@pytest.fixture
def settled(monkeypatch):
    """Results count as settled at once (the real delay guards a commit racing a read; tests are serial)."""
    monkeypatch.setattr(cache_mod, "SETTLE_S", 0.0)


def _call(i: int) -> dict:
    return {"call_id": f"c{i}", "source_id": "s", "request_start": B + i, "response_end": B + i + 1,
            "status_code": 200, "finish": "stop", "ok": True, "ttft_ms": 100.0 + i, "e2e_ms": 1000.0, "model": "m"}


def _counting(fn):
    calls = Counter()

    def run():
        calls["n"] += 1
        return fn()
    return run, calls


def test_reused_until_a_commit_from_any_cursor(tmp_path, settled):
    store = open_store(tmp_path / "h.duckdb")
    writer = StoreWriter(store, Counter())
    writer.add_rows("calls", [_call(0)])
    writer.flush()
    qc = QueryCache(store.path)
    f = MetricFilters(since=B, until=B + 100)
    run, n = _counting(lambda: summary(store.conn, f)["calls"])
    assert qc.get("k", run) == 1 and qc.get("k", run) == 1
    assert n["n"] == 1 and qc.hits == 1
    writer.add_rows("calls", [_call(1)])  # through the writer
    writer.flush()
    assert qc.get("k", run) == 2 and n["n"] == 2
    store.cursor().execute("UPDATE calls SET status_code = 500 WHERE call_id = 'c0'")  # any other cursor
    run2, n2 = _counting(lambda: summary(store.conn, f)["errors"])
    assert qc.get("e", run2) == 1
    store.cursor().execute("CHECKPOINT")
    store.cursor().execute("UPDATE calls SET status_code = 200 WHERE call_id = 'c0'")
    assert qc.get("e", run2) == 0 and n2["n"] == 2
    store.close()


def test_in_memory_store_is_never_cached():
    store = open_store(None)
    qc = QueryCache(store.path)
    run, n = _counting(lambda: 42)
    assert qc.get("k", run) == 42 and qc.get("k", run) == 42
    assert n["n"] == 2 and qc.hits == 0
    store.close()


def test_not_stored_when_the_store_changes_during_the_computation(tmp_path, settled):
    gens = iter([(1, 1), (2, 2), (2, 2), (2, 2)])
    qc = QueryCache("x", generation=lambda _p: next(gens))
    run, n = _counting(lambda: "v")
    qc.get("k", run)  # computed under (1, 1), which was gone by the end: not kept
    qc.get("k", run)  # (2, 2) before and after: kept
    assert n["n"] == 2 and len(qc._entries) == 1


def test_a_fresh_generation_is_not_trusted(tmp_path):
    now = time.time_ns()
    qc = QueryCache("x", generation=lambda _p: (10, now))  # the file changed just now
    run, n = _counting(lambda: "v")
    qc.get("k", run)
    qc.get("k", run)
    assert n["n"] == 2


def test_bounded_lru(settled):
    qc = QueryCache("x", max_entries=2, generation=lambda _p: (1, 1))
    for k in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" arrives
        qc.get(k, lambda k=k: k)
    assert list(qc._entries) == ["a", "c"]


def test_generation_of_missing_and_present_files(tmp_path):
    p = str(tmp_path / "none.duckdb")
    assert store_generation(p) == (-1, -1, -1, -1) and store_generation(None) is None
    with open(p, "wb") as fh:
        fh.write(b"x")
    assert store_generation(p)[0] == 1 and store_generation(p)[2:] == (-1, -1)
    os.remove(p)
