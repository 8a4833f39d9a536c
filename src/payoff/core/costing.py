"""Cost of a model call from a price table, exact, in nano-USD.

A `PriceTable` is what the catalog resolves once per (provider, model, batch, price period);
costing an event is then a handful of integer multiplications. The arithmetic follows
genai-prices' leaf decomposition so that results equal `genai_prices.calc_price` to the
nano-USD:

- a part with its own price (cache read, cache write, reasoning, and in record format v2
  audio, image and video tokens, cached media, one-hour cache writes) is taken out of every
  part that holds it and priced at its own rate;
- a part without its own price stays inside its parent and is priced at the parent's rate;
- a per-request price adds `requests_kcount / 1000` per call, and a web search
  `web_searches_kcount / 1000` per search;
- tiered prices ("cliff" tiers) apply the tier's rate to all tokens once the call's total
  input exceeds the tier's start.

Which part holds which is said once, in `_PARTS`, by what sets each part apart (its
direction, modality, token type): a part holds every part whose description extends its own.
Each price then becomes one coefficient per part: its rate less the coefficients of the
priced parts that hold it, so that a token is priced at the rate of the most specific
priced part it is in.

The visible part of a visible step is its output outside reasoning, at the rates of its
parts (text at the output rate, an image at the image output rate): the tokens the end user
sees. The rest of a step's cost is hidden.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field, fields
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from payoff.core.errors import RateError
from payoff.core.money import round_div_half_even
from payoff.core.tokens import MODALITIES, TokenCounts, UsageDetails

TOKENS_PER_MTOK = 1_000_000
REQUESTS_PER_KCOUNT = 1_000
SECONDS_PER_HOUR = 3600
NANOUSD_PER_USD = 10**9


class PriceCatalog(NamedTuple):
    """What costs steps: the packaged prices' version and the overrides in force.

    `id` is derived from the other fields (`payoff.catalog.Catalog.identity`), so that a
    process building rows needs no round trip to the ledger to name it; event rows carry it
    in `cost_catalog`, and the store keeps one row of this per id in `price_catalogs`.
    """

    id: int
    catalog: str
    """The packaged prices: `genai-prices 0.2.3`."""
    overrides_sha256: str | None
    """`sha256:...` of the overrides as canonical JSON; None without overrides."""
    overrides: str | None
    """The overrides themselves, as that canonical JSON."""


@dataclass(frozen=True)
class TokenRates:
    """USD per million tokens for each part (per thousand for requests and web searches);
    `None` means "priced as its parent"."""

    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None
    reasoning_mtok: Decimal | None = None
    requests_kcount: Decimal | None = None
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

    def given(self) -> dict[str, Decimal]:
        """The rates set, by field name."""
        return {f.name: rate for f in fields(self) if (rate := getattr(self, f.name)) is not None}

    def decimal_places(self) -> int:
        return max(max(0, -int(rate.as_tuple().exponent)) for rate in self.given().values())

    def validate(self) -> None:
        for name, rate in self.given().items():
            if not rate.is_finite() or rate < 0:
                raise RateError(f"{name} must be a finite non-negative decimal, got {rate}")
        _check_parts_priced(set(self.given()))


@dataclass(frozen=True)
class _Part:
    """Something a rate prices: a bucket or a detail of a call, or the call itself."""

    rate: str
    """The TokenRates field that prices it."""
    count: str
    """Its TokenCounts or UsageDetails field; empty for the call itself."""
    nanousd_per_unit: int
    """nano-USD per counted unit at a rate of 1: 10**9 / 10**6 for a rate per million
    tokens, 10**9 / 10**3 for a rate per thousand requests."""
    traits: frozenset[tuple[str, str]]
    """What sets it apart; a part holds the parts whose traits include all of its own."""


_PER_TOKEN = NANOUSD_PER_USD // TOKENS_PER_MTOK
_PER_REQUEST = NANOUSD_PER_USD // REQUESTS_PER_KCOUNT


def _token_part(rate: str, count: str, **traits: str) -> _Part:
    return _Part(rate, count, _PER_TOKEN, frozenset({("family", "tokens"), *traits.items()}))


_PARTS: tuple[_Part, ...] = (
    _token_part("input_mtok", "input", direction="input"),
    _token_part("cache_read_mtok", "cache_read", direction="input", kind="cache_read"),
    _token_part("cache_write_mtok", "cache_write", direction="input", kind="cache_write"),
    _token_part(
        "cache_write_1h_mtok", "cache_write_1h", direction="input", kind="cache_write", ttl="1h"
    ),
    _token_part("output_mtok", "output", direction="output"),
    _token_part("reasoning_mtok", "reasoning", direction="output", kind="reasoning"),
    *(
        part
        for m in MODALITIES
        for part in (
            _token_part(f"input_{m}_mtok", f"input_{m}", direction="input", modality=m),
            _token_part(
                f"cache_{m}_read_mtok",
                f"cache_{m}_read",
                direction="input",
                modality=m,
                kind="cache_read",
            ),
            _token_part(f"output_{m}_mtok", f"output_{m}", direction="output", modality=m),
        )
    ),
    _Part(
        "web_searches_kcount",
        "web_search_requests",
        _PER_REQUEST,
        frozenset({("family", "web_searches")}),
    ),
    _Part("requests_kcount", "", _PER_REQUEST, frozenset({("family", "calls")})),
)
_PART_BY_RATE = {part.rate: part for part in _PARTS}
_PART_BY_TRAITS = {part.traits: part for part in _PARTS}
assert set(_PART_BY_RATE) == {f.name for f in fields(TokenRates)}
assert {p.count for p in _PARTS} - {""} == set(TokenCounts._fields) | set(UsageDetails._fields)


def _holders_of(part: _Part) -> tuple[_Part, ...]:
    """The parts that hold `part` (not itself), broadest first."""
    return tuple(
        sorted(
            (other for other in _PARTS if other is not part and other.traits < part.traits),
            key=lambda other: len(other.traits),
        )
    )


_HOLDERS = {part.rate: _holders_of(part) for part in _PARTS}
_NARROWING = tuple(sorted(_PARTS, key=lambda part: len(part.traits)))
"""The parts, each after every part that holds it."""


def _check_parts_priced(priced: set[str]) -> None:
    """Refuse rates whose leaf decomposition is not well defined (as genai-prices does):
    a part priced without the parts that hold it, or two priced parts that overlap without a
    price for what they share (cached audio is a cache read and audio input alike)."""
    for rate in sorted(priced):
        missing = [p.rate for p in _HOLDERS[rate] if p.rate not in priced]
        if missing:
            raise RateError(f"{rate} needs {' and '.join(missing)} too")
    chosen = sorted(priced)
    for index, first in enumerate(chosen):
        for second in chosen[index + 1 :]:
            a, b = _PART_BY_RATE[first].traits, _PART_BY_RATE[second].traits
            clash = any(key == k and value != v for key, value in a for k, v in b)
            if clash or a <= b or b <= a:
                continue
            shared = _PART_BY_TRAITS.get(a | b)
            if shared is None:
                raise RateError(
                    f"{first} and {second} cannot be priced together: their overlap has no "
                    "price of its own in payoff"
                )
            if shared.rate not in priced:
                raise RateError(
                    f"with {first} and {second}, give {shared.rate}: the tokens in both "
                    "would otherwise have two prices"
                )


@dataclass(frozen=True)
class _Coefficients:
    """Integer coefficients of one tier: cost * 10**places in nano-USD per unit of a part."""

    input: int
    cache_read: int
    cache_write: int
    output: int
    reasoning: int
    per_call: int
    visible_output: int
    details: tuple[int, ...]
    """Per UsageDetails field, in its order; empty when the tier prices no detail apart."""


def _scaled(rate: Decimal, places: int, unit_nanousd: int) -> int:
    """rate * 10**places * unit_nanousd as an exact integer (rate has at most `places` digits)."""
    value = rate.scaleb(places) * unit_nanousd
    assert value == value.to_integral_value()
    return int(value)


def _coefficients(rates: TokenRates, places: int) -> _Coefficients:
    # A part's coefficient is its rate less the coefficients of the priced parts holding
    # it: summed over every priced part a token is in, they give the most specific rate.
    given = rates.given()
    by_count: dict[str, int] = {}
    for part in _NARROWING:
        if part.rate not in given:
            continue
        own = _scaled(given[part.rate], places, part.nanousd_per_unit)
        held_by = sum(by_count.get(h.count, 0) for h in _HOLDERS[part.rate] if h.rate in given)
        by_count[part.count] = own - held_by
    details = tuple(by_count.get(name, 0) for name in UsageDetails._fields)
    return _Coefficients(
        input=by_count.get("input", 0),
        cache_read=by_count.get("cache_read", 0),
        cache_write=by_count.get("cache_write", 0),
        output=by_count.get("output", 0),
        reasoning=by_count.get("reasoning", 0),
        per_call=by_count.get("", 0),
        visible_output=by_count.get("output", 0),
        details=details if any(details) else (),
    )


_VISIBLE_DETAILS = tuple(
    UsageDetails._fields.index(f"output_{modality}") for modality in MODALITIES
)
"""Where the output media sit among the details: what a visible step shows besides text."""


@dataclass(frozen=True)
class PriceTable:
    """The prices of one model in one price period, ready for bulk costing.

    `tiers` is a tuple of (input_tokens_above, rates), ascending; the first entry's threshold
    is -1 (the base rates, which apply to every call).
    """

    tiers: tuple[tuple[int, TokenRates], ...]
    _thresholds: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _coefficients: tuple[_Coefficients, ...] = field(init=False, repr=False, compare=False)
    _denominator: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.tiers or self.tiers[0][0] != -1:
            raise RateError("a price table starts with its base rates (threshold -1)")
        thresholds = tuple(threshold for threshold, _ in self.tiers)
        if list(thresholds) != sorted(set(thresholds)):
            raise RateError("tier thresholds must be strictly ascending")
        for _, rates in self.tiers:
            rates.validate()
        places = max(rates.decimal_places() for _, rates in self.tiers)
        object.__setattr__(self, "_thresholds", thresholds)
        object.__setattr__(
            self, "_coefficients", tuple(_coefficients(rates, places) for _, rates in self.tiers)
        )
        object.__setattr__(self, "_denominator", 10**places)

    @classmethod
    def flat(cls, rates: TokenRates) -> PriceTable:
        return cls(tiers=((-1, rates),))

    def cost_nanousd(
        self, counts: TokenCounts, *, visible: bool = False, details: UsageDetails | None = None
    ) -> tuple[int, int]:
        """(total cost, visible part of it) of one call in nano-USD, each rounded half-even.

        `details` are the call's record format v2 parts; None (a version-1 record) prices
        every token as text, as NO_DETAILS would.
        """
        # The tier is the last whose threshold the call's total input exceeds.
        tier = bisect_left(self._thresholds, counts.input) - 1
        c = self._coefficients[tier]
        total_scaled = (
            c.input * counts.input
            + c.cache_read * counts.cache_read
            + c.cache_write * counts.cache_write
            + c.output * counts.output
            + c.reasoning * counts.reasoning
            + c.per_call
        )
        # Details cost nothing more unless the call has some and the tier prices one apart.
        if details is None or not c.details:
            details = None
        else:
            total_scaled += sum([a * b for a, b in zip(c.details, details, strict=True)])
        total = round_div_half_even(total_scaled, self._denominator)
        if not visible:
            return total, 0
        shown_scaled = c.visible_output * (counts.output - counts.reasoning)
        if details is not None:
            shown_scaled += sum([c.details[at] * details[at] for at in _VISIBLE_DETAILS])
        return total, round_div_half_even(shown_scaled, self._denominator)

    @property
    def reads_cache(self) -> bool:
        """Whether the model has a cache-read price (in its base rates)."""
        return self.tiers[0][1].cache_read_mtok is not None

    def bucket_cost_nanousd(
        self, counts: TokenCounts, calls: int, output_factor: Fraction = Fraction(1)
    ) -> int:
        """Cost of `calls` calls whose buckets sum to `counts`, rounded half-even once.

        A scenario re-costs aggregated usage, not events: the tier is the one the average
        call falls in (total input // calls), and `output_factor` scales the output part
        (speculative decoding on a model priced by GPU time), exactly, as a fraction.
        """
        assert calls >= 0 and output_factor >= 0
        tier = bisect_left(self._thresholds, counts.input // max(calls, 1)) - 1
        c = self._coefficients[tier]
        rest = (
            c.input * counts.input
            + c.cache_read * counts.cache_read
            + c.cache_write * counts.cache_write
            + c.per_call * calls
        )
        output = c.output * counts.output + c.reasoning * counts.reasoning
        if output_factor == 1:
            return round_div_half_even(rest + output, self._denominator)
        exact = rest + output_factor * output
        return round_div_half_even(exact.numerator, exact.denominator * self._denominator)


def rates_from_gpu_hour(
    gpu_hour_usd: Decimal,
    gpus: int,
    input_tokens_per_second: Decimal,
    output_tokens_per_second: Decimal,
    places: int = 9,
) -> TokenRates:
    """Per-token prices of a self-hosted model from what its GPUs cost and what they serve.

    USD per million tokens = gpu_hour_usd * gpus / (tokens_per_second * 3600) * 10**6,
    rounded half-even to `places` decimal places (the rate is usually a repeating decimal).
    """
    # Finite first: comparing a NaN Decimal raises InvalidOperation, not a refusal.
    if not gpu_hour_usd.is_finite() or gpu_hour_usd < 0 or gpus <= 0:
        raise RateError("gpu_hour_usd must be finite and non-negative, and gpus positive")
    throughputs = (input_tokens_per_second, output_tokens_per_second)
    if not all(tps.is_finite() and tps > 0 for tps in throughputs):
        raise RateError("throughputs must be finite and positive")
    quantum = Decimal(1).scaleb(-places)
    hourly = gpu_hour_usd * gpus * TOKENS_PER_MTOK

    def per_mtok(tokens_per_second: Decimal) -> Decimal:
        exact = hourly / (tokens_per_second * SECONDS_PER_HOUR)
        return exact.quantize(quantum, rounding="ROUND_HALF_EVEN")

    return TokenRates(
        input_mtok=per_mtok(input_tokens_per_second),
        output_mtok=per_mtok(output_tokens_per_second),
    )
