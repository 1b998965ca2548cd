"""Per-call cost with the ``genai-prices`` package (metrics.md §5).

Only the price data bundled with the installed package is used: the ``Pricer`` builds its own
``DataSnapshot`` from ``genai_prices.data.providers`` and never touches the package's process-wide
custom snapshot, so neither its background updater (``UpdatePrices``) nor any download can change a
price here. Prices are fixed at ingest; ``price_version`` records which package version priced a call.

Speed. A straight ``calc_price`` costs ~250 µs (usage decomposition and validation run every time) and a
call needs two (with and without cache). Prices are piecewise linear in the token counts — linear inside
one tier region (tiers are chosen by the total input) — so the ``Pricer`` prices a handful of probe usages
once per (provider, model, resolved price set, tier region) with the package itself and derives per-token
coefficients; every later call is a few Decimal multiplications. Lookups (hits *and* misses, which the
package does not cache for models) are cached per (provider, model ref). All caches live on the instance.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from heron_core.records import Call, Exchange, SseEvent
from heron_core.wire.common import unit_json

__all__ = [
    "Pricer", "normalize_model", "preload_price_data", "price_version", "runtime_marker", "self_hosted_markers",
]


def preload_price_data() -> None:
    """Import the package's price data now (~0.45 s of CPU: thousands of model objects are built at
    import). The parallel engine calls this before it forks its decode workers, so they inherit the
    loaded modules instead of each paying for the import on its first priced call."""
    import genai_prices.data
    import genai_prices.data_snapshot  # noqa: F401

_MAX_CACHE = 4096  # per dict; cleared when full (keys are URLs and model refs seen on the wire)
_NO_TIER = ("default", "auto")
_D0 = Decimal(0)

_PREFIX_RE = re.compile(r"^.*/")
_SUFFIX_RE = re.compile(r"(-\d{8}|-\d{4}-\d{2}-\d{2}|@\d{8}|-\d{4}|-latest|:latest)$")


@cache
def price_version() -> str:
    """``"genai-prices <installed version>"`` (stored on priced calls and in ``runs``). Cached: reading
    package metadata scans ``site-packages`` (~30 ms), and every decode worker builds a ``Pricer``."""
    try:
        return f"genai-prices {version('genai-prices')}"
    except PackageNotFoundError:  # pragma: no cover - the package is a hard dependency
        return "genai-prices unknown"


def normalize_model(name: str | None) -> str | None:
    """agents-and-turns.md §12.3: lowercase, drop a provider prefix up to the last ``/`` and a trailing
    date or alias suffix (``-YYYYMMDD``, ``-YYYY-MM-DD``, ``@YYYYMMDD``, ``-MMDD``, ``-latest``, ``:latest``)."""
    if not name:
        return None
    n = _PREFIX_RE.sub("", name.strip().lower())
    n = _SUFFIX_RE.sub("", n)
    return n or None


# --- self-hosted runtime markers (metrics.md §5 step 2, §6 rules 2, 5, 6) --------------------------------

_ENGINE_KEYS = ("prompt_logprobs", "kv_transfer_params")
_CHOICE_KEYS = ("stop_reason", "matched_stop")
_STREAM_TAIL_UNITS = 4
_STREAM_APIS = frozenset(("openai-chat", "openai-completions"))


def runtime_marker(obj: Any) -> str | None:
    """Engine named by an OpenAI-style response object's own keys (metrics.md §6 rules 5–6): ``sglang``
    when a choice carries ``matched_stop``; ``vllm`` for top-level ``prompt_logprobs``/``kv_transfer_params``
    or a choice with ``stop_reason``; else None. (Anthropic's top-level ``stop_reason`` is not a marker.)"""
    if not isinstance(obj, dict):
        return None
    choices = obj.get("choices")
    if isinstance(choices, list):
        if any(isinstance(ch, dict) and "matched_stop" in ch for ch in choices):
            return "sglang"
        if any(isinstance(ch, dict) and "stop_reason" in ch for ch in choices):
            return "vllm"
    if any(k in obj for k in _ENGINE_KEYS):
        return "vllm"
    return None


def _obj_has_markers(obj: Any) -> bool:
    return runtime_marker(obj) is not None


def self_hosted_markers(call: Call, ex: Exchange) -> bool:
    """Does this one call show a self-hosted runtime? Wire API ``ollama``, a ``Server`` header naming
    ollama or llama.cpp, or vLLM/SGLang response keys. Streams are rebuilt without engine-specific keys,
    so the last few stream units are checked too (a bounded cost per call)."""
    if call.wire_api == "ollama":
        return True
    server = (ex.header("server", response=True) or "").lower()
    if "ollama" in server or "llama.cpp" in server:
        return True
    if _obj_has_markers(call.x_response_object):
        return True
    if call.wire_api in _STREAM_APIS and ex.stream_units:
        for _ts, unit in ex.stream_units[-_STREAM_TAIL_UNITS:]:
            if isinstance(unit, SseEvent) and not any(k in unit.data for k in _CHOICE_KEYS + _ENGINE_KEYS):
                continue  # cheap text pre-check before parsing
            ok, value, _event = unit_json(unit)
            if ok and _obj_has_markers(value):
                return True
    return False


# --- price computation ------------------------------------------------------------------------------------

Pair = tuple[Decimal, Decimal]  # (input price, output price)


@dataclass(slots=True, frozen=True)
class _Rates:
    """Affine price of one price set inside one tier region, as (input, output) Decimal pairs."""

    base: Pair
    per_input: Pair
    cache_read: Pair
    cache_write: Pair
    cache_write_1h: Pair
    per_output: Pair


def _add(a: Pair, b: Pair, n: int = 1) -> Pair:
    return (a[0] + b[0] * n, a[1] + b[1] * n)


def _sub(a: Pair, b: Pair) -> Pair:
    return (a[0] - b[0], a[1] - b[1])


def _price_sig(mp: Any) -> tuple:
    """Identity of a resolved price set: Decimal values as is, tier tables by object identity (they are
    objects of the bundled data, held by the snapshot for the Pricer's lifetime)."""
    return tuple((k, v if isinstance(v, Decimal) or v is None else id(v)) for k, v in vars(mp).items())


def _tier_starts(mp: Any) -> tuple[int, ...]:
    starts: set[int] = set()
    for v in vars(mp).values():
        tiers = getattr(v, "tiers", None)
        if tiers:
            starts.update(t.start for t in tiers)
    return tuple(sorted(starts))


class Pricer:
    """Fills the cost fields of calls (metrics.md §5). One per decode worker; not thread-safe."""

    def __init__(self, counters: Counter | None = None) -> None:
        self.counters = counters if counters is not None else Counter()
        self.version = price_version()
        self._snap: Any = None  # loaded on first use: importing the price data takes ~0.5 s
        self._usage_cls: Any = None
        self._find_by_id: Any = None
        self._providers: list[Any] = []
        self._url_provider: dict[str, Any] = {}
        self._id_provider: dict[str, Any] = {}
        self._model_in: dict[tuple[str, str], Any] = {}
        self._by_model: dict[str, Any] = {}
        self._rates: dict[tuple, _Rates] = {}

    def _load(self) -> None:
        from genai_prices import Usage, data
        from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id

        self._usage_cls = Usage
        self._find_by_id = find_provider_by_id
        self._snap = DataSnapshot(providers=data.providers, from_auto_update=False)
        self._providers = self._snap.providers

    # --- public -------------------------------------------------------------------------------------

    def price(self, call: Call, ex: Exchange) -> None:
        """Set ``cost_*``, ``cost_status``, ``price_version``, ``priced_model``, ``priced_provider``.

        Never raises: the wire is untrusted and pricing must not stop a capture; an unexpected failure
        leaves the call ``unpriced`` (counted ``calls_unpriced``)."""
        try:
            self._price(call, ex)
        except Exception:
            call.cost_usd = call.cost_input_usd = call.cost_output_usd = None
            call.cost_nocache_usd = call.cache_savings_usd = None
            call.price_version = call.priced_model = call.priced_provider = None
            call.cost_status = "unpriced"
            self.counters["calls_unpriced"] += 1

    def _price(self, call: Call, ex: Exchange) -> None:
        if self._snap is None:
            self._load()
        call.cost_usd = call.cost_input_usd = call.cost_output_usd = None
        call.cost_nocache_usd = call.cache_savings_usd = None
        call.price_version = call.priced_model = call.priced_provider = None
        if call.input_total_tokens is None and call.output_tokens is None:
            call.cost_status = "no_usage"
            return
        status, provider, model = self._resolve(call, ex)
        if status == "self_hosted" or provider is None:
            call.cost_status = status
            if status == "unpriced":
                self.counters["calls_unpriced"] += 1
            return
        try:
            total, inp, out, nocache = self._compute(call, provider, model)
        except (ValueError, ArithmeticError):  # usage the package rejects (cache > input, …)
            call.cost_status = "unpriced"
            self.counters["calls_unpriced"] += 1
            return
        call.cost_usd, call.cost_input_usd, call.cost_output_usd = float(total), float(inp), float(out)
        call.cost_nocache_usd = float(nocache)
        call.cache_savings_usd = float(nocache - total)
        call.cost_status = "estimated" if call.usage_estimated else status
        call.price_version = self.version
        call.priced_model = model.id
        call.priced_provider = provider.id

    # --- resolution ---------------------------------------------------------------------------------

    def _resolve(self, call: Call, ex: Exchange) -> tuple[str, Any, Any]:
        refs = _model_refs(call)
        if call.provider:
            url = "https://" + (call.host or call.server or "") + (call.path or "")
            for prov in (self._provider_for_url(url), self._provider_for_id(call.provider)):
                if prov is None:
                    continue
                for ref in refs:
                    model = self._model_in_provider(prov, ref)
                    if model is not None:
                        return "priced", prov, model
        if self_hosted_markers(call, ex):
            return "self_hosted", None, None
        for ref in refs:
            hit = self._model_only(ref)
            if hit is not None:
                return "priced_by_model", hit[0], hit[1]
        return "unpriced", None, None

    def _provider_for_url(self, url: str) -> Any:
        if url not in self._url_provider:
            _bound(self._url_provider)
            try:
                self._url_provider[url] = self._snap.find_provider(None, None, url)
            except LookupError:
                self._url_provider[url] = None
        return self._url_provider[url]

    def _provider_for_id(self, provider_id: str) -> Any:
        if provider_id not in self._id_provider:
            self._id_provider[provider_id] = self._find_by_id(self._providers, provider_id)
        return self._id_provider[provider_id]

    def _model_in_provider(self, prov: Any, ref: str) -> Any:
        key = (prov.id, ref)
        if key not in self._model_in:
            _bound(self._model_in)
            self._model_in[key] = prov.find_model(ref, all_providers=self._providers)
        return self._model_in[key]

    def _model_only(self, ref: str) -> tuple[Any, Any] | None:
        if ref not in self._by_model:
            _bound(self._by_model)
            try:
                self._by_model[ref] = self._snap.find_provider_model(ref, None, None, None)
            except LookupError:
                self._by_model[ref] = None
        return self._by_model[ref]

    # --- computation --------------------------------------------------------------------------------

    def _compute(self, call: Call, provider: Any, model: Any) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """``(total, input, output, nocache)`` in USD for the call's usage (§5 "usage passed")."""
        i = call.input_total_tokens or 0
        r = call.cache_read_tokens or 0
        w = call.cache_creation_tokens or 0
        h = min(call.cache_creation_1h_tokens or 0, w)
        o = call.output_tokens or 0
        ts = (datetime.fromtimestamp(call.request_start, tz=UTC)
              if call.request_start is not None else datetime.now(tz=UTC))
        ctx = _price_context(call)
        if i <= 0 or r + w > i or min(i, r, w, o) < 0:
            # Outside the probes' domain: let the package decide (it raises on inconsistent usage).
            full = self._direct(provider, model, ts, ctx, i, r, w, h, o)
            bare = self._direct(provider, model, ts, ctx, i, 0, 0, 0, o)
            return full[0] + full[1], full[0], full[1], bare[0] + bare[1]
        rates = self._rates_for(provider, model, ts, ctx, i)
        p = _add(rates.base, rates.per_input, i)
        nocache = _add(p, rates.per_output, o)
        p = _add(p, rates.cache_read, r)
        p = _add(p, rates.cache_write, w)
        p = _add(p, rates.cache_write_1h, h)
        p = _add(p, rates.per_output, o)
        return p[0] + p[1], p[0], p[1], nocache[0] + nocache[1]

    def _rates_for(self, provider: Any, model: Any, ts: datetime, ctx: dict[str, str] | None, i: int) -> _Rates:
        std = model.get_prices(ts)
        sig: tuple = (_price_sig(std),)
        if ctx:
            sig += (tuple(sorted(ctx.items())), _price_sig(model.get_prices(ts, ctx)))
        starts = _tier_starts(std) if not ctx else tuple(sorted(set(_tier_starts(std))
                                                                | set(_tier_starts(model.get_prices(ts, ctx)))))
        region = tuple(s for s in starts if i > s)
        key = (provider.id, model.id, sig, region)
        rates = self._rates.get(key)
        if rates is None:
            _bound(self._rates)
            rates = self._probe(provider, model, ts, ctx, i)
            self._rates[key] = rates
        return rates

    def _probe(self, provider: Any, model: Any, ts: datetime, ctx: dict[str, str] | None, i: int) -> _Rates:
        """Price six usages with the package at total input ``i`` (same tier region as the call) and
        difference them into per-token coefficients."""
        d = self._direct
        p0 = d(provider, model, ts, ctx, 0, 0, 0, 0, 0)
        pi = d(provider, model, ts, ctx, i, 0, 0, 0, 0)
        pr = d(provider, model, ts, ctx, i, 1, 0, 0, 0)
        pw = d(provider, model, ts, ctx, i, 0, 1, 0, 0)
        ph = d(provider, model, ts, ctx, i, 0, 1, 1, 0)
        po = d(provider, model, ts, ctx, i, 0, 0, 0, 1)
        per_in = _sub(pi, p0)
        return _Rates(
            base=p0,
            per_input=(per_in[0] / i, per_in[1] / i),
            cache_read=_sub(pr, pi),
            cache_write=_sub(pw, pi),
            cache_write_1h=_sub(ph, pw),
            per_output=_sub(po, pi),
        )

    def _direct(self, provider: Any, model: Any, ts: datetime, ctx: dict[str, str] | None,
                i: int, r: int, w: int, h: int, o: int) -> Pair:
        """One ``calc_price`` with the package, usage as §5 passes it."""
        kw: dict[str, int] = {"input_tokens": i, "output_tokens": o}
        if r:
            kw["cache_read_tokens"] = r
        if w:
            kw["cache_write_tokens"] = w
        if h:
            kw["cache_write_1h_tokens"] = h
        pc = model.calc_price(self._usage_cls(**kw), provider, genai_request_timestamp=ts, price_context=ctx)
        return pc.input_price, pc.output_price


def _bound(cache: dict) -> None:
    if len(cache) >= _MAX_CACHE:
        cache.clear()


def _model_refs(call: Call) -> list[str]:
    """Served model, requested model, then their normalized names (unknowns skipped, no repeats)."""
    out: list[str] = []
    for name in (call.model, call.model_requested, normalize_model(call.model),
                 normalize_model(call.model_requested)):
        if name and name != "unknown" and name.lower() not in out:
            out.append(name.lower())
    return out


def _price_context(call: Call) -> dict[str, str] | None:
    """``{"service_tier": v}`` when the response reports a tier other than default/auto."""
    for src in (call.x_response_object, call.usage_raw):
        if isinstance(src, dict):
            tier = src.get("service_tier")
            if isinstance(tier, str) and tier and tier.lower() not in _NO_TIER:
                return {"service_tier": tier.lower()}
    return None
