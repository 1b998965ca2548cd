"""Per-call cost (metrics.md §5): resolution order, statuses, fields, agreement with genai-prices."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price

from heron_core.config import Config
from heron_core.pricing import Pricer, normalize_model, price_version, runtime_marker
from heron_core.records import Call, Exchange, SseEvent

T = 1_750_000_000.0  # 2025-06-15
TS = datetime.fromtimestamp(T, tz=UTC)
CAPTURES = Path(__file__).parent.parent / "testdata" / "captures"


def _ex(server_header: str | None = None, units: list | None = None) -> Exchange:
    ex = Exchange("x", "s", 0, "10.0.0.1", 5000, "10.0.0.2", 443)
    if server_header:
        ex.response_headers = [("Server", server_header)]
    if units:
        ex.stream_units = units
        ex.stream_format = "sse"
    return ex


def _anthropic(**kw) -> Call:
    base = dict(call_id="c1", source_id="s", wire_api="anthropic", provider="anthropic",
                host="api.anthropic.com", path="/v1/messages", model="claude-sonnet-4-20250514",
                model_requested="claude-sonnet-4-20250514", request_start=T, input_tokens=1000,
                cache_read_tokens=20000, cache_creation_tokens=3000, cache_creation_1h_tokens=1000,
                input_total_tokens=24000, output_tokens=500)
    base.update(kw)
    return Call(**base)


def _priced(call: Call, ex: Exchange | None = None, counters: Counter | None = None) -> Call:
    Pricer(counters).price(call, ex or _ex())
    return call


def test_anthropic_cache_read_and_write_match_genai_prices():
    c = _priced(_anthropic())
    ref = calc_price(Usage(input_tokens=24000, cache_read_tokens=20000, cache_write_tokens=3000,
                           cache_write_1h_tokens=1000, output_tokens=500),
                     "claude-sonnet-4-20250514", provider_api_url="https://api.anthropic.com/v1/messages",
                     genai_request_timestamp=TS)
    nocache = calc_price(Usage(input_tokens=24000, output_tokens=500), "claude-sonnet-4-20250514",
                         provider_api_url="https://api.anthropic.com/v1/messages", genai_request_timestamp=TS)
    assert c.cost_status == "priced"
    assert c.cost_usd == pytest.approx(float(ref.total_price), rel=1e-12)
    assert c.cost_input_usd == pytest.approx(float(ref.input_price), rel=1e-12)
    assert c.cost_output_usd == pytest.approx(float(ref.output_price), rel=1e-12)
    assert c.cost_nocache_usd == pytest.approx(float(nocache.total_price), rel=1e-12)
    assert c.cache_savings_usd == pytest.approx(float(nocache.total_price - ref.total_price), rel=1e-12)
    # by hand: $3 in, $15 out, $0.30 cache read, $3.75 5m write, $6 1h write per MTok
    assert c.cost_usd == pytest.approx((1000 * 3 + 20000 * 0.3 + 2000 * 3.75 + 1000 * 6 + 500 * 15) / 1e6)
    assert c.priced_provider == "anthropic" and c.priced_model == ref.model.id
    assert c.price_version == f"genai-prices {version('genai-prices')}" == price_version()


def test_cache_write_1h_is_capped_at_cache_write():
    c = _priced(_anthropic(cache_creation_1h_tokens=9999))
    ref = calc_price(Usage(input_tokens=24000, cache_read_tokens=20000, cache_write_tokens=3000,
                           cache_write_1h_tokens=3000, output_tokens=500),
                     "claude-sonnet-4-20250514", provider_id="anthropic", genai_request_timestamp=TS)
    assert c.cost_usd == pytest.approx(float(ref.total_price), rel=1e-12)


def test_cache_writes_can_cost_more_than_reads_save():
    c = _priced(_anthropic(cache_read_tokens=0, cache_creation_tokens=20000, cache_creation_1h_tokens=0,
                           input_total_tokens=21000))
    assert c.cache_savings_usd < 0


def test_openai_call_with_cached_tokens():
    c = _priced(Call(call_id="c2", source_id="s", wire_api="openai-chat", provider="openai",
                     host="api.openai.com", path="/v1/chat/completions", model="gpt-4o-2024-08-06",
                     model_requested="gpt-4o", request_start=T, input_total_tokens=10000,
                     cache_read_tokens=4000, output_tokens=300))
    ref = calc_price(Usage(input_tokens=10000, cache_read_tokens=4000, output_tokens=300), "gpt-4o-2024-08-06",
                     provider_api_url="https://api.openai.com/v1/chat/completions", genai_request_timestamp=TS)
    assert c.cost_status == "priced" and c.priced_provider == "openai"
    assert c.cost_usd == pytest.approx(float(ref.total_price), rel=1e-12)
    assert c.cost_usd == pytest.approx((6000 * 2.5 + 4000 * 1.25 + 300 * 10) / 1e6)


def test_service_tier_selects_variant_prices():
    """The flex variant of the bundled data is dated, so this also shows request_start picks the prices."""
    t = datetime(2026, 10, 12, tzinfo=UTC).timestamp()

    def call(tier: str | None) -> Call:
        obj = {"service_tier": tier} if tier else {}
        return _priced(Call(call_id="c", source_id="s", wire_api="openai-responses", provider="openai",
                            host="api.openai.com", path="/v1/responses", model="o3", model_requested="o3",
                            request_start=t, input_total_tokens=1_000_000, output_tokens=1_000_000,
                            x_response_object=obj))
    ts = datetime.fromtimestamp(t, tz=UTC)
    flex = calc_price(Usage(input_tokens=1_000_000, output_tokens=1_000_000), "o3", provider_id="openai",
                      genai_request_timestamp=ts, price_context={"service_tier": "flex"})
    std = calc_price(Usage(input_tokens=1_000_000, output_tokens=1_000_000), "o3", provider_id="openai",
                     genai_request_timestamp=ts)
    assert call("flex").cost_usd == pytest.approx(float(flex.total_price))
    assert call("default").cost_usd == call("auto").cost_usd == call(None).cost_usd == pytest.approx(
        float(std.total_price))
    assert flex.total_price != std.total_price


def test_tiered_prices_follow_total_input():
    for total in (10_000, 300_000):
        c = _priced(Call(call_id="g", source_id="s", wire_api="gemini", provider="google",
                         host="generativelanguage.googleapis.com",
                         path="/v1beta/models/gemini-2.5-pro:generateContent", model="gemini-2.5-pro",
                         model_requested="gemini-2.5-pro", request_start=T, input_total_tokens=total,
                         cache_read_tokens=1000, output_tokens=800))
        ref = calc_price(Usage(input_tokens=total, cache_read_tokens=1000, output_tokens=800), "gemini-2.5-pro",
                         provider_id="google", genai_request_timestamp=TS)
        assert c.cost_usd == pytest.approx(float(ref.total_price), rel=1e-12), total


def test_cached_rates_reused_across_calls_stay_exact():
    p = Pricer()
    for n in (1500, 1501, 99_999, 7):
        c = _anthropic(input_total_tokens=n + 50, cache_read_tokens=50, cache_creation_tokens=0,
                       cache_creation_1h_tokens=None, output_tokens=n % 97)
        p.price(c, _ex())
        ref = calc_price(Usage(input_tokens=n + 50, cache_read_tokens=50, output_tokens=n % 97),
                         "claude-sonnet-4-20250514", provider_id="anthropic", genai_request_timestamp=TS)
        assert c.cost_usd == pytest.approx(float(ref.total_price), rel=1e-12, abs=1e-15)


def test_unknown_model_is_unpriced_and_counted():
    counters: Counter = Counter()
    c = _priced(Call(call_id="u", source_id="s", wire_api="openai-chat", host="10.1.1.1:8000", model="mystery-7b",
                     model_requested="mystery-7b", request_start=T, input_total_tokens=10, output_tokens=5),
                counters=counters)
    assert c.cost_status == "unpriced" and c.cost_usd is None and c.price_version is None
    assert counters["calls_unpriced"] == 1


def test_known_provider_unknown_model_falls_back_to_unpriced():
    c = _priced(_anthropic(model="claude-nonexistent-9", model_requested="claude-nonexistent-9"))
    assert c.cost_status == "unpriced"


def test_gateway_model_only_lookup_and_normalized_names():
    c = _priced(Call(call_id="g", source_id="s", wire_api="openai-chat", host="litellm:4000",
                     model="openai/gpt-4o-2024-08-06", model_requested="my-alias", request_start=T,
                     input_total_tokens=1000, output_tokens=100))
    assert c.cost_status == "priced_by_model" and c.priced_model == "gpt-4o"
    # served model unknown, requested known
    c = _priced(Call(call_id="g2", source_id="s", wire_api="openai-chat", host="gw", model="unknown",
                     model_requested="gpt-4o-mini", request_start=T, input_total_tokens=1000, output_tokens=100))
    assert c.cost_status == "priced_by_model" and c.priced_model == "gpt-4o-mini"


def test_self_hosted_markers():
    base = dict(source_id="s", host="10.0.0.9:8000", model="gpt-4o", model_requested="gpt-4o", request_start=T,
                input_total_tokens=100, output_tokens=10)
    assert _priced(Call(call_id="o", wire_api="ollama", **base)).cost_status == "self_hosted"
    assert _priced(Call(call_id="l", wire_api="openai-chat", **base),
                   _ex(server_header="llama.cpp")).cost_status == "self_hosted"
    vllm = {"choices": [{"index": 0, "finish_reason": "stop", "stop_reason": None}]}
    assert _priced(Call(call_id="v", wire_api="openai-chat", x_response_object=vllm, **base)).cost_status == \
        "self_hosted"
    chunk = SseEvent(None, '{"choices":[{"index":0,"delta":{},"finish_reason":"stop","matched_stop":2}]}', None)
    assert _priced(Call(call_id="g", wire_api="openai-chat", **base),
                   _ex(units=[(1, chunk)])).cost_status == "self_hosted"
    # the same model name on a plain gateway is priced by model
    assert _priced(Call(call_id="p", wire_api="openai-chat", **base)).cost_status == "priced_by_model"
    # a public provider wins over markers (step 1 first)
    assert _priced(_anthropic(), _ex(server_header="ollama")).cost_status == "priced"


def test_no_usage_and_estimated():
    c = _priced(_anthropic(input_total_tokens=None, output_tokens=None, input_tokens=None, cache_read_tokens=None,
                           cache_creation_tokens=None, cache_creation_1h_tokens=None, status_code=500))
    assert c.cost_status == "no_usage" and c.cost_usd is None
    c = _priced(_anthropic(usage_estimated=True, cache_read_tokens=0, cache_creation_tokens=0,
                           cache_creation_1h_tokens=None, input_total_tokens=1000))
    assert c.cost_status == "estimated" and c.cost_usd == pytest.approx((1000 * 3 + 500 * 15) / 1e6)
    assert c.priced_provider == "anthropic" and c.price_version == price_version()


def test_inconsistent_usage_never_raises():
    c = _priced(_anthropic(cache_read_tokens=50_000, input_total_tokens=100))
    assert c.cost_status == "unpriced"


def test_normalize_model():
    assert normalize_model("anthropic/Claude-3-5-Haiku-20241022") == "claude-3-5-haiku"
    assert normalize_model("models/gemini-2.5-flash-latest") == "gemini-2.5-flash"
    assert normalize_model("gpt-4o-2024-08-06") == "gpt-4o"
    assert normalize_model("gpt-4-0613") == "gpt-4"
    assert normalize_model("llama3.2:latest") == "llama3.2"
    assert normalize_model("claude@20240620") == "claude"
    assert normalize_model(None) is None


def test_runtime_marker():
    assert runtime_marker({"choices": [{"matched_stop": 1}]}) == "sglang"
    assert runtime_marker({"choices": [{"stop_reason": None}]}) == "vllm"
    assert runtime_marker({"prompt_logprobs": None, "choices": []}) == "vllm"
    assert runtime_marker({"stop_reason": "end_turn"}) is None  # Anthropic: not a choice


@pytest.mark.skipif(not (CAPTURES / "sdk_anthropic.pcap").exists(), reason="captures not present")
@pytest.mark.parametrize("enabled", [True, False])
def test_worker_prices_calls_at_ingest(tmp_path, enabled):
    from heron_core.engine import Engine
    from heron_core.store.db import open_store

    store = open_store(None)
    Engine(store, Config(cost_enabled=enabled), salt=b"s").ingest([str(CAPTURES / "ollama.pcap"),
                                                                   str(CAPTURES / "sdk_anthropic.pcap")],
                                                                  ["ollama", "sdk_anthropic"])
    rows = dict(store.conn.execute(
        "SELECT source_id, list(DISTINCT cost_status) FROM calls GROUP BY 1").fetchall())
    if enabled:
        assert set(rows["ollama"]) <= {"self_hosted", "no_usage"}
        assert "priced_by_model" in rows["sdk_anthropic"]  # loopback mock server: no public host
        n = store.conn.execute("SELECT count(*) FROM calls WHERE cost_usd IS NOT NULL AND price_version = ?",
                               [price_version()]).fetchone()[0]
        assert n > 0
    else:
        assert all(s == ["unpriced"] for s in rows.values())
