"""Query-time call metrics (metrics.md §3): exact values on hand-built stores."""

from __future__ import annotations

import pytest
from metrics_helpers import B, Builder

from heron_core.query.metrics import (
    DEFAULT_SERIES,
    MetricFilters,
    TooManyBuckets,
    auto_window,
    breakdown,
    summary,
    timeseries,
)

RANGE = MetricFilters(since=B, until=B + 20)


def _counts_store() -> Builder:
    b = Builder()
    ttfts = [100.0, 200.0, 300.0, 400.0, 1000.0]
    for i, t in enumerate(ttfts):
        b.call(i, i + 1, ttft_ms=t, e2e_ms=t * 2, is_stream=i < 3, tpot_ms=[10.0, 20.0, 40.0, 99.0, 99.0][i])
    b.call(5, 6, status_code=429, finish="error", ttft_ms=5.0, e2e_ms=50.0)
    b.call(6, 7, status_code=500, finish="error", e2e_ms=70.0)
    b.call(7, 8, status_code=400, finish="error")
    b.call(8, 9, status_code=200, finish="aborted", ttft_ms=7.0, e2e_ms=9.0, is_stream=True)
    b.call(9, 10)  # ok, no latency figures
    return b


def test_summary_counts_error_classes_and_rates():
    s = summary(_counts_store().conn, RANGE)
    assert (s["calls"], s["stream_calls"], s["errors"]) == (10, 4, 4)
    assert (s["errors_4xx"], s["errors_5xx"], s["aborted"], s["rate_limited"]) == (2, 1, 1, 1)
    assert s["error_rate"] == 0.4 and s["rate_limited_share"] == 0.1
    assert s["call_rate"] == 10 / 20
    assert s["range"] == {"since": B, "until": B + 20, "seconds": 20}


def test_percentiles_are_quantile_cont_over_ok_calls():
    s = summary(_counts_store().conn, RANGE)
    # ok ttft values 100, 200, 300, 400, 1000: position (n-1)·q, linear between neighbours
    assert s["ttft_ms"] == pytest.approx({"p50": 300.0, "p90": 760.0, "p95": 880.0, "p99": 976.0, "avg": 400.0,
                                          "max": 1000.0, "n": 5}, rel=1e-12)
    assert s["e2e_ms"]["p50"] == 600.0 and s["e2e_ms"]["n"] == 5
    # tpot: ok *streaming* calls only (10, 20, 40)
    assert s["tpot_ms"] == pytest.approx({"p50": 20.0, "p90": 36.0, "p95": 38.0, "p99": 39.6, "avg": 70 / 3,
                                          "max": 40.0, "n": 3}, rel=1e-12)
    with_errors = summary(_counts_store().conn, RANGE, include_errors=True)
    # adds 5.0 (429) and 7.0 (aborted): 5, 7, 100, 200, 300, 400, 1000
    assert with_errors["ttft_ms"]["n"] == 7 and with_errors["ttft_ms"]["p50"] == 200.0


def test_empty_range():
    s = summary(Builder().conn, RANGE)
    assert s["calls"] == 0 and s["error_rate"] is None and s["ttft_ms"]["p50"] is None
    assert s["active_peak"] == 0 and s["cache_hit_ratio"] is None and s["priced_share"] is None
    ts = timeseries(Builder().conn)
    assert ts["buckets"] == [] and ts["series"] == []


def test_tokens_cache_ratios_per_usage_style_and_cost():
    b = Builder()
    # Anthropic style: 100 uncached + 900 read + 200 written = 1200 total
    b.call(0, 1, input_tokens=100, cache_read_tokens=900, cache_creation_tokens=200, input_total_tokens=1200,
           output_tokens=10, cost_usd=0.5, cache_savings_usd=0.25)
    # OpenAI style: prompt 1000 including 500 cached
    b.call(1, 2, input_tokens=1000, cache_read_tokens=500, cache_creation_tokens=0, input_total_tokens=1000,
           output_tokens=20, reasoning_tokens=5, cost_usd=0.25, cache_savings_usd=0.125)
    # Ollama style: no cache reporting
    b.call(2, 3, input_tokens=800, cache_read_tokens=0, cache_creation_tokens=0, input_total_tokens=800,
           output_tokens=30)
    # estimated usage: in the sums, not in the cache ratios
    b.call(3, 4, input_total_tokens=5000, output_tokens=40, usage_estimated=True, cost_usd=1.0)
    b.call(4, 5, status_code=500, finish="error")  # no usage
    s = summary(b.conn, RANGE)
    assert s["input_total_tokens"] == 8000 and s["output_tokens"] == 100 and s["reasoning_tokens"] == 5
    assert s["cache_read_tokens"] == 1400 and s["cache_creation_tokens"] == 200
    assert s["cache_hit_ratio"] == 1400 / 3000
    assert s["cache_write_ratio"] == 200 / 3000
    assert s["cost_usd"] == 1.75 and s["cache_savings_usd"] == 0.375
    assert s["priced_share"] == 3 / 4
    assert s["output_tps"] == 100 / 20


def test_active_metrics_with_an_end_exactly_at_a_start():
    b = Builder()
    b.call(0, 10)   # A
    b.call(10, 20)  # B starts exactly when A ends: never both in flight
    b.call(5, 15)   # C
    s = summary(b.conn, RANGE)
    assert s["active_avg"] == 30 / 20 and s["active_peak"] == 2 and s["active_overlapping"] == 3
    ts = timeseries(b.conn, RANGE, window="10s", metrics=["active_avg", "active_peak", "active_overlapping"])
    v = ts["series"][0]["values"]
    assert ts["buckets"] == [B, B + 10]
    assert v["active_avg"] == [1.5, 1.5]        # bucket 0: A 10 s + C 5 s; bucket 1: B 10 s + C 5 s
    assert v["active_peak"] == [2, 2]           # A ends before B starts at B+10
    assert v["active_overlapping"] == [2, 2]    # A does not reach bucket 1, B does not reach bucket 0


def test_active_peak_carried_in_and_empty_buckets():
    b = Builder()
    b.call(-5, 35)  # started before the range, spans four buckets
    b.call(12, 13)
    b.call(12.5, 14)
    b.call(2, 3, hop_role="proxy_out")  # hop leg: not counted by default
    f = MetricFilters(since=B, until=B + 40)
    ts = timeseries(b.conn, f, window="10s", metrics=["active_peak", "active_overlapping", "active_avg", "calls"])
    v = ts["series"][0]["values"]
    assert v["active_peak"] == [1, 3, 1, 1]
    assert v["active_overlapping"] == [1, 3, 1, 1]
    assert v["active_avg"] == [1.0, 1.25, 1.0, 0.5]
    assert v["calls"] == [0, 2, 0, 0]  # the long call started before the range
    s = summary(b.conn, f)
    assert s["active_peak"] == 3 and s["active_overlapping"] == 3 and s["active_avg"] == (35 + 1 + 1.5) / 40
    inc = summary(b.conn, MetricFilters(since=B, until=B + 40, hops="include"))
    assert inc["active_overlapping"] == 4 and inc["calls"] == 3


def test_live_in_flight_calls_count_as_active_until_the_watermark():
    b = Builder()
    b.call(0, 5)
    s = summary(b.conn, RANGE, watermark=B + 8, in_flight=[B + 4, B + 6])
    assert s["active_overlapping"] == 3 and s["active_peak"] == 2
    assert s["active_avg"] == (5 + 4 + 2) / 20
    ts = timeseries(b.conn, RANGE, window="10s", metrics=["active_peak"], watermark=B + 8,
                    in_flight=[B + 4, B + 6])
    assert ts["series"][0]["values"]["active_peak"] == [2, 0]
    assert ts["partial_from"] == B


def test_window_alignment_and_output_tps_by_response_end():
    b = Builder()
    b.call(65, 70, output_tokens=60)
    b.call(118, 125, output_tokens=120)  # starts in bucket 60, delivers in bucket 120
    ts = timeseries(b.conn, MetricFilters(since=B + 61, until=B + 150), window="1m",
                    metrics=["calls", "output_tps", "call_rate"])
    assert ts["window"] == "1m" and ts["buckets"] == [B + 60, B + 120]
    v = ts["series"][0]["values"]
    assert v["calls"] == [2, 0]
    assert v["output_tps"] == [1.0, 2.0]
    assert v["call_rate"] == [2 / 60, 0.0]
    assert ts["partial_from"] is None


def test_automatic_windows():
    assert auto_window(900) == "10s" and auto_window(901) == "1m"
    assert auto_window(3 * 3600) == "1m" and auto_window(3 * 3600 + 1) == "5m"
    assert auto_window(86400) == "5m" and auto_window(86401) == "1h"
    b = Builder()
    b.call(0, 1)
    for span, win in ((600, "10s"), (3600, "1m"), (6 * 3600, "5m"), (3 * 86400, "1h")):
        ts = timeseries(b.conn, MetricFilters(since=B, until=B + span), metrics=["calls"])
        assert ts["window"] == win
        assert ts["buckets"][0] == B and ts["series"][0]["values"]["calls"][0] == 1


def test_too_many_buckets():
    b = Builder()
    b.call(0, 1)
    with pytest.raises(TooManyBuckets) as exc:
        timeseries(b.conn, MetricFilters(since=B, until=B + 100_010), window="10s")
    assert exc.value.buckets == 10_001 and exc.value.max_buckets == 10_000
    ts = timeseries(b.conn, MetricFilters(since=B, until=B + 100_000), window="10s", metrics=["calls"])
    assert len(ts["buckets"]) == 10_000
    with pytest.raises(TooManyBuckets):
        timeseries(b.conn, MetricFilters(since=B, until=B + 100), window="10s", max_buckets=5)


def test_hop_and_auxiliary_defaults():
    b = Builder()
    b.call(0, 1)
    b.call(1, 2, hop_role="proxy_in")
    b.call(1, 2, hop_role="proxy_out")
    b.call(3, 4, hop_role="mirror_primary")
    b.call(3, 4, hop_role="mirror_secondary")
    b.call(5, 6, is_auxiliary=True, auxiliary_kind="title")
    assert summary(b.conn, RANGE)["calls"] == 4
    assert summary(b.conn, MetricFilters(since=B, until=B + 20, hops="include"))["calls"] == 6
    assert summary(b.conn, MetricFilters(since=B, until=B + 20, auxiliary="exclude"))["calls"] == 3
    with pytest.raises(ValueError):
        summary(b.conn, MetricFilters(hops="maybe"))


def test_filters():
    b = Builder()
    b.call(0, 1, model="a", agent_kind="claude-cli", is_stream=True, process_comm="node", provider="anthropic")
    b.call(1, 2, model="b", agent_kind=None, model_requested="x")
    b.call(2, 3, model="b", agent_kind="codex", session_id="s1", server="10.0.0.9:80")

    def n(**kw) -> int:
        return summary(b.conn, MetricFilters(since=B, until=B + 20, **kw))["calls"]

    assert n(model="b") == 2 and n(model="a,b") == 3 and n(model_requested="x") == 1
    assert n(agent_kind="none") == 1 and n(agent_kind=["none", "codex"]) == 2
    assert n(is_stream="true") == 1 and n(is_stream=False) == 2
    assert n(process_comm="node") == 1 and n(provider="anthropic") == 1 and n(session_id="s1") == 1
    assert n(server="10.0.0.9:80") == 1 and n(source_id="other") == 0 and n(wire_api="anthropic") == 3
    assert summary(b.conn, MetricFilters(since=B + 1))["calls"] == 2  # open end: data extent


def test_group_by_top_ten_and_other():
    b = Builder()
    for i in range(12):
        for _ in range(12 - i):
            b.call(i, i + 0.5, model=f"m{i:02d}")
    ts = timeseries(b.conn, MetricFilters(since=B, until=B + 20), window="10s", metrics=["calls"],
                    group_by="model")
    keys = [s["key"]["model"] for s in ts["series"]]
    assert keys == [f"m{i:02d}" for i in range(10)] + ["other"]
    other = ts["series"][-1]["values"]["calls"]
    assert other == [0, 2 + 1]  # m10 (2 calls) and m11 (1 call) start in bucket B+10
    assert ts["series"][0]["values"]["calls"] == [12, 0]


def test_peaks_over_a_long_range_grouped():
    """µs keys of a multi-day range need more than 32 bits next to the group id."""
    b = Builder()
    b.call(86400 * 3, 86400 * 3 + 10, model="a")
    b.call(86400 * 3 + 5, 86400 * 3 + 6, model="a")
    b.call(86400 * 3 + 5, 86400 * 3 + 6, model="b")
    f = MetricFilters(since=B, until=B + 86400 * 5)
    rows = {r["key"]: r["active_peak"] for r in breakdown(b.conn, "model", f)["rows"]}
    assert rows == {"a": 2, "b": 1}
    assert summary(b.conn, f)["active_peak"] == 3
    ts = timeseries(b.conn, f, window="1h", metrics=["active_peak"], group_by="model")
    assert [max(s["values"]["active_peak"]) for s in ts["series"]] == [2, 1]


def test_breakdown_sorted_by_calls_with_none_key():
    b = Builder()
    b.call(0, 1, agent_kind="codex", ttft_ms=10.0)
    b.call(1, 2, agent_kind=None, ttft_ms=20.0)
    b.call(2, 3, agent_kind=None, ttft_ms=40.0)
    rows = breakdown(b.conn, "agent_kind", RANGE)["rows"]
    assert [(r["key"], r["calls"]) for r in rows] == [("none", 2), ("codex", 1)]
    assert rows[0]["ttft_ms"]["p50"] == 30.0 and rows[0]["active_peak"] == 1
    with pytest.raises(ValueError):
        breakdown(b.conn, "color", RANGE)


def test_timeseries_defaults_and_metric_validation():
    b = Builder()
    b.call(0, 1, ttft_ms=5.0)
    ts = timeseries(b.conn, RANGE, window="10s")
    assert list(ts["series"][0]["values"]) == list(DEFAULT_SERIES)
    assert ts["series"][0]["key"] is None
    with pytest.raises(ValueError):
        timeseries(b.conn, RANGE, metrics=["ttft_ms.p42"])
    with pytest.raises(ValueError):
        timeseries(b.conn, RANGE, window="2m")
    v = timeseries(b.conn, RANGE, window="10s", metrics="ttft_ms.n,ttft_ms.max,errors")["series"][0]["values"]
    assert v == {"ttft_ms.n": [1, 0], "ttft_ms.max": [5.0, None], "errors": [0, 0]}


def _brute(calls: list[tuple[float, float]], lo: float, w: float, n: int) -> tuple[list, list, list]:
    """Reference: events applied in (time, ends first) order; per bucket peak, overlap/w, overlapping."""
    peaks, avgs, over = [], [], []
    for i in range(n):
        s, e = lo + i * w, lo + (i + 1) * w
        level = sum(1 for cs, ce in calls if cs <= s < ce)  # in flight at s once its events are applied
        peak = level
        ev = sorted([(cs, 1) for cs, _ in calls if s < cs < e] + [(ce, -1) for _, ce in calls if s < ce < e])
        for _t, d in ev:
            level += d
            peak = max(peak, level)
        peaks.append(peak)
        avgs.append(sum(max(0.0, min(ce, e) - max(cs, s)) for cs, ce in calls) / w)
        over.append(sum(1 for cs, ce in calls if cs < e and ce > s))
    return peaks, avgs, over


@pytest.mark.parametrize("seed", range(12))
def test_active_metrics_match_brute_force(seed):
    import random

    rnd = random.Random(seed)
    b = Builder()
    calls = []
    for _ in range(60):
        cs = rnd.randrange(-20, 100) / 2  # half-second grid: many ties and boundary hits
        ce = cs + rnd.randrange(1, 30) / 2  # (a zero-length call is never in flight: left out of the reference)
        model = rnd.choice(["a", "b"])
        b.call(cs, ce, model=model)
        calls.append((B + cs, B + ce, model))
    f = MetricFilters(since=B, until=B + 60)
    ts = timeseries(b.conn, f, window="10s", metrics=["active_peak", "active_avg", "active_overlapping"])
    peaks, avgs, over = _brute([(cs, ce) for cs, ce, _m in calls], B, 10, 6)
    v = ts["series"][0]["values"]
    assert v["active_peak"] == peaks and v["active_overlapping"] == over
    assert v["active_avg"] == pytest.approx(avgs, abs=1e-9)
    grouped = timeseries(b.conn, f, window="10s", metrics=["active_peak", "active_overlapping"], group_by="model")
    for series in grouped["series"]:
        m = series["key"]["model"]
        gp, _ga, go = _brute([(cs, ce) for cs, ce, mm in calls if mm == m], B, 10, 6)
        assert series["values"]["active_peak"] == gp and series["values"]["active_overlapping"] == go
    s = summary(b.conn, f)
    sp, sa, so = _brute([(cs, ce) for cs, ce, _m in calls], B, 60, 1)
    assert (s["active_peak"], s["active_overlapping"]) == (sp[0], so[0])
    assert s["active_avg"] == pytest.approx(sa[0], abs=1e-9)
