"""The metric endpoints reuse results while the store file is unchanged and never serve a stale one after
a write (heron_core/query/cache.py)."""

from __future__ import annotations

from collections import Counter

from fastapi.testclient import TestClient

from heron_core.query import cache as cache_mod
from heron_core.store.db import open_store
from heron_core.store.writer import StoreWriter
from heron_tui.api import create_app

B = 1_699_999_200.0


def _call(i: int) -> dict:
    return {"call_id": f"c{i}", "source_id": "s", "request_start": B + i, "response_end": B + i + 2,
            "status_code": 200, "finish": "stop", "ok": True, "ttft_ms": 10.0 * (i + 1), "e2e_ms": 2000.0,
            "model": "m", "wire_api": "anthropic"}


def test_metric_results_are_reused_and_invalidated_by_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "SETTLE_S", 0.0)
    store = open_store(tmp_path / "h.duckdb")
    writer = StoreWriter(store, Counter())
    writer.add_rows("calls", [_call(0), _call(1)])
    writer.flush()
    client = TestClient(create_app(store))
    ctx = client.app.state.ctx
    q = {"since": str(B), "until": str(B + 60)}
    paths = ["/api/metrics/summary", "/api/metrics/timeseries", "/api/metrics/breakdown"]
    first = {p: client.get(p, params=q).json() for p in paths}
    assert first["/api/metrics/summary"]["calls"] == 2
    again = {p: client.get(p, params=q).json() for p in paths}
    assert again == first and ctx.cache.hits == len(paths)
    other = client.get("/api/metrics/summary", params={**q, "model": "x"}).json()
    assert other["calls"] == 0  # other filters: another key
    writer.add_rows("calls", [_call(2)])
    writer.flush()
    after = client.get("/api/metrics/summary", params=q).json()
    assert after["calls"] == 3 and after["ttft_ms"]["max"] == 30.0
    assert client.get("/api/metrics/breakdown", params=q).json()["rows"][0]["calls"] == 3
    store.close()
