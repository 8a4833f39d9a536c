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

import dataclasses
import datetime as dt
import hashlib
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from genai_prices import data_snapshot
from genai_prices import types as gp

from payoff.core.costing import PriceCatalog, PriceTable, TokenRates, rates_from_gpu_hour
from payoff.core.errors import CatalogError
from payoff.core.periods import US_PER_DAY, US_PER_SECOND, from_us

MAX_CACHED_MODELS = 10_000
MAX_CACHED_TABLES = 100_000
"""Bounds of the resolution caches: a file naming endless distinct models cannot grow memory
without limit; past a bound a cache starts over (it only ever costs a re-resolution)."""

# genai-prices price keys that payoff's parts map to, by TokenRates field: every one is
# genai-prices' own name but reasoning's.
_PRICE_KEYS = {
    field.name: "output_reasoning_mtok" if field.name == "reasoning_mtok" else field.name
    for field in dataclasses.fields(TokenRates)
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
    input_audio_mtok: Decimal | None = None
    input_image_mtok: Decimal | None = None
    input_video_mtok: Decimal | None = None
    cache_audio_read_mtok: Decimal | None = None
    cache_image_read_mtok: Decimal | None = None
    cache_video_read_mtok: Decimal | None = None
    cache_write_1h_mtok: Decimal | None = None
    output_audio_mtok: Decimal | None = None
    output_image_mtok: Decimal | None = None
    output_video_mtok: Decimal | None = None
    web_searches_kcount: Decimal | None = None
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
            **{name: getattr(self, name) for name in _PRICE_KEYS if name != "requests_kcount"}
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
        self._identity: PriceCatalog | None = None

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

    def identity(self) -> PriceCatalog:
        """What this catalog is, for the costs it produces: the packaged prices' version and
        the digest of the overrides (canonical JSON, so a file's layout does not matter)."""
        if self._identity is None:
            self._identity = price_catalog(self.source(), self._overrides)
        return self._identity

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


def price_catalog(source: str, overrides: Sequence[Override]) -> PriceCatalog:
    """The identity of a catalog: its id is the first 47 bits of the sha256 of the rest, so
    every process names the same catalog the same way, with no ledger to ask."""
    text, digest = None, None
    if overrides:
        canonical = [_canonical(override) for override in overrides]
        text = msgspec.json.encode(canonical, order="sorted").decode()
        digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    key = hashlib.sha256(f"{source}\n{digest or ''}".encode()).digest()
    return PriceCatalog(int.from_bytes(key[:6], "big") >> 1, source, digest, text)


def _canonical(override: Override) -> dict[str, Any]:
    """An override as plain values, the fields it leaves out dropped and every rate in its
    shortest form ("2.50" is "2.5"): what it prices, not how the file was written."""
    values = msgspec.to_builtins(override)
    for name in override.__struct_fields__:
        rate = getattr(override, name)
        if isinstance(rate, Decimal):
            values[name] = format(rate.normalize(), "f")
    return {key: value for key, value in values.items() if value is not None}


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
