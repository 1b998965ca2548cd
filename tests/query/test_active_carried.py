"""Active-call figures of a call in flight over the whole range (no start or end inside it): §3.4 takes
the level carried into the range as the peak, so the summary and every bucket see it."""

from __future__ import annotations

from metrics_helpers import B, Builder

from heron_core.query.metrics import MetricFilters, breakdown, summary, timeseries


def test_a_call_spanning_the_range_counts_as_in_flight():
    b = Builder()
    b.call(-10, 100, model="a")
    f = MetricFilters(since=B, until=B + 60)
    s = summary(b.conn, f)
    assert (s["active_peak"], s["active_overlapping"], s["active_avg"]) == (1, 1, 1.0)
    v = timeseries(b.conn, f, window="10s", metrics=["active_peak", "active_avg"])["series"][0]["values"]
    assert v["active_peak"] == [1] * 6 and v["active_avg"] == [1.0] * 6
    b.call(5, 6, model="a")  # a start inside the range: the breakdown row exists, its peak counts both
    assert breakdown(b.conn, "model", f)["rows"][0]["active_peak"] == 2
