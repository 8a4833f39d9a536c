"""The price catalog: genai-prices data plus local overrides, resolved to `PriceTable`s.

Prices come from the pinned `genai-prices` package (never fetched at run time) and from an
optional overrides file for negotiated rates and self-hosted models. A price is resolved once
per (provider, model, batch, price period) and reused for every event in that period, which
is what makes bulk costing cheap; a price period is a UTC day, split further for the few
models whose price depends on the time of day.

Overrides file (YAML)::

    prices:
      - provider: openai            # negotiated rate; wins over genai-prices
        model: gpt-4o
        from: 2026-01-01            # optional, UTC date the rate starts; the latest started wins
        batch: false                # optional: true = batch calls only, false = others only
        input_mtok: "2.00"          # USD per million tokens
        cache_read_mtok: "0.50"
        output_mtok: "8.00"
      - provider: self-hosted       # priced from what the GPUs cost and what they serve
        model: llama-3.3-70b
        gpu_hour_usd: "2.50"
        gpus: 4
        input_tokens_per_second: 12000
        output_tokens_per_second: 900
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from genai_prices import data_snapshot
from genai_prices import types as gp

from payoff.core.costing import PriceTable, TokenRates, rates_from_gpu_hour
from payoff.core.errors import CatalogError
from payoff.core.periods import US_PER_DAY, US_PER_SECOND, from_us

MAX_CACHED_MODELS = 10_000
MAX_CACHED_TABLES = 100_000
"""Bounds of the resolution caches: a file naming endless distinct models cannot grow memory
without limit; past a bound a cache starts over (it only ever costs a re-resolution)."""

# genai-prices price keys that payoff's buckets map to, by TokenRates field.
_PRICE_KEYS = {
    "input_mtok": "input_mtok",
    "output_mtok": "output_mtok",
    "cache_read_mtok": "cache_read_mtok",
    "cache_write_mtok": "cache_write_mtok",
    "reasoning_mtok": "output_reasoning_mtok",
    "requests_kcount": "requests_kcount",
}


class Override(msgspec.Struct, forbid_unknown_fields=True, rename={"from_date": "from"}):
    """One line of the overrides file: token rates, or a GPU-hour cost and throughputs."""

    provider: str
    model: str
    from_date: dt.date | None = None
    batch: bool | None = None
    input_mtok: Decimal | None = None
    output_mtok: Decimal | None = None
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None
    reasoning_mtok: Decimal | None = None
    gpu_hour_usd: Decimal | None = None
    gpus: int = 1
    input_tokens_per_second: Decimal | None = None
    output_tokens_per_second: Decimal | None = None

    def rates(self) -> TokenRates:
        if self.gpu_hour_usd is not None:
            if self.input_tokens_per_second is None or self.output_tokens_per_second is None:
                raise CatalogError(
                    "gpu_hour_usd needs input_tokens_per_second and output_tokens_per_second"
                )
            return rates_from_gpu_hour(
                self.gpu_hour_usd,
                self.gpus,
                self.input_tokens_per_second,
                self.output_tokens_per_second,
            )
        if self.input_mtok is None or self.output_mtok is None:
            raise CatalogError("give input_mtok and output_mtok, or gpu_hour_usd and throughputs")
        rates = TokenRates(
            input_mtok=self.input_mtok,
            output_mtok=self.output_mtok,
            cache_read_mtok=self.cache_read_mtok,
            cache_write_mtok=self.cache_write_mtok,
            reasoning_mtok=self.reasoning_mtok,
        )
        rates.validate()
        return rates


class _OverridesFile(msgspec.Struct, forbid_unknown_fields=True):
    prices: list[Override] = []


def load_overrides(path: str | Path) -> list[Override]:
    """Read and check an overrides file; CatalogError names the entry and field at fault."""
    try:
        parsed = msgspec.yaml.decode(Path(path).read_bytes(), type=_OverridesFile)
    except OSError as exc:
        raise CatalogError(f"cannot read price overrides {path}: {exc.strerror}") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise CatalogError(f"price overrides {path}: {exc}") from None
    for index, override in enumerate(parsed.prices):
        try:
            override.rates()
        except CatalogError as exc:  # a RateError from the core is one too
            raise CatalogError(f"price overrides {path}: $.prices[{index}]: {exc}") from None
    return parsed.prices


def _tiered_rate(price: Decimal | gp.TieredPrices | None, input_tokens: int) -> Decimal | None:
    """The rate genai-prices applies to a call with this many input tokens."""
    if not isinstance(price, gp.TieredPrices):
        return price
    applicable = price.base
    for tier in reversed(price.tiers):
        if input_tokens > tier.start:
            applicable = tier.price
            break
    return applicable


def table_from_model_price(model_price: gp.ModelPrice) -> PriceTable | None:
    """A PriceTable equivalent to genai-prices' arithmetic for payoff's buckets."""
    prices = {field: getattr(model_price, key) for field, key in _PRICE_KEYS.items()}
    if prices["input_mtok"] is None and prices["output_mtok"] is None:
        return None
    thresholds = sorted(
        {-1}
        | {
            tier.start
            for price in prices.values()
            if isinstance(price, gp.TieredPrices)
            for tier in price.tiers
        }
    )
    tiers = []
    for threshold in thresholds:
        at = {field: _tiered_rate(price, threshold + 1) for field, price in prices.items()}
        tiers.append(
            (
                threshold,
                TokenRates(
                    input_mtok=at.pop("input_mtok") or Decimal(0),
                    output_mtok=at.pop("output_mtok") or Decimal(0),
                    **at,
                ),
            )
        )
    return PriceTable(tiers=tuple(tiers))


@dataclass
class _ModelEntry:
    """A model's resolution: an override list or a genai-prices model, and its price periods."""

    provider: gp.Provider | None
    model: gp.ModelInfo | None
    overrides: list[Override]
    seconds_of_day_bounds: tuple[int, ...]


class Catalog:
    """Resolves (provider, model, time, batch) to a PriceTable, caching per price period."""

    def __init__(self, overrides: Sequence[Override] = ()) -> None:
        self._overrides = list(overrides)
        self._entries: dict[tuple[str, str], _ModelEntry | None] = {}
        self._day_tables: dict[tuple[str, str, bool, int], PriceTable | None] = {}
        self._tables: dict[tuple[str, str, bool, int, int], PriceTable | None] = {}

    @property
    def overrides(self) -> list[Override]:
        return list(self._overrides)

    @classmethod
    def from_file(cls, path: str | Path | None) -> Catalog:
        return cls(load_overrides(path) if path else ())

    @staticmethod
    def source() -> str:
        """Where the packaged prices come from, for reports."""
        from genai_prices import __version__

        return f"genai-prices {__version__}"

    def price_table(self, provider: str, model: str, batch: bool, at_us: int) -> PriceTable | None:
        """The table for a call, or None when the catalog cannot price it."""
        # Hot path: one dict lookup for models whose price is the same all day (nearly all).
        day_key = (provider, model, batch, at_us // US_PER_DAY)
        try:
            return self._day_tables[day_key]  # a try costs nothing when it does not raise
        except KeyError:
            return self._price_table_slow(provider, model, batch, at_us, day_key)

    def _price_table_slow(
        self,
        provider: str,
        model: str,
        batch: bool,
        at_us: int,
        day_key: tuple[str, str, bool, int],
    ) -> PriceTable | None:
        if len(self._entries) >= MAX_CACHED_MODELS:
            self._entries.clear()
        if len(self._day_tables) >= MAX_CACHED_TABLES:
            self._day_tables.clear()
            self._tables.clear()
        entry_key = (provider, model)
        if entry_key not in self._entries:
            self._entries[entry_key] = self._resolve_entry(provider, model)
        entry = self._entries[entry_key]
        if entry is None:
            self._day_tables[day_key] = None
            return None
        if not entry.seconds_of_day_bounds:
            table = self._day_tables[day_key] = self._resolve_table(entry, batch, at_us)
            return table
        # A model with off-peak windows: resolve per window of the day.
        microsecond_of_day = at_us % US_PER_DAY
        slot = bisect_right(entry.seconds_of_day_bounds, microsecond_of_day // US_PER_SECOND)
        table_key = (*day_key, slot)
        if table_key not in self._tables:
            self._tables[table_key] = self._resolve_table(entry, batch, at_us)
        return self._tables[table_key]

    def _resolve_entry(self, provider: str, model: str) -> _ModelEntry | None:
        overrides = [
            o
            for o in self._overrides
            if o.provider.lower() == provider.lower() and o.model.lower() == model.lower()
        ]
        gp_provider: gp.Provider | None = None
        gp_model: gp.ModelInfo | None = None
        try:
            gp_provider, gp_model = data_snapshot.get_snapshot().find_provider_model(
                model, None, provider, None
            )
        except LookupError:
            if not overrides:
                return None
        return _ModelEntry(gp_provider, gp_model, overrides, _time_of_day_bounds(gp_model))

    def _resolve_table(self, entry: _ModelEntry, batch: bool, at_us: int) -> PriceTable | None:
        when = from_us(at_us)
        started = [
            o
            for o in entry.overrides
            if (o.batch is None or o.batch == batch)
            and (o.from_date is None or o.from_date <= when.date())
        ]
        if started:
            latest = max(started, key=lambda o: o.from_date or dt.date.min)
            return PriceTable.flat(latest.rates())
        if entry.model is None or entry.provider is None:
            return None
        return table_from_model_price(_genai_model_price(entry.provider, entry.model, batch, when))


def _genai_model_price(
    provider: gp.Provider, model: gp.ModelInfo, batch: bool, when: dt.datetime
) -> gp.ModelPrice:
    # Mirrors genai_prices.types.ModelInfo.calc_price: request variants (batch) apply only to
    # a model found in the provider's own list, not to one borrowed from another provider.
    context: dict[str, Any] | None = {"processing": "batch"} if batch else None
    if context and not any(model is m for m in provider.models):
        return model.get_prices(when)
    return model.get_prices(when, context)


def _time_of_day_bounds(model: gp.ModelInfo | None) -> tuple[int, ...]:
    """Seconds of the UTC day at which this model's price may change (off-peak windows)."""
    if model is None or isinstance(model.prices, gp.ModelPrice):
        return ()
    bounds: set[int] = set()
    for conditional in model.prices:
        constraint = conditional.constraint
        if isinstance(constraint, gp.TimeOfDateConstraint):
            for moment in (constraint.start_time, constraint.end_time):
                utc = gp._utc_timetz(moment)
                bounds.add(utc.hour * 3600 + utc.minute * 60 + utc.second)
    return tuple(sorted(bounds))
