"""Cost of a model call from a price table, exact, in nano-USD.

A `PriceTable` is what the catalog resolves once per (provider, model, batch, price period);
costing an event is then a handful of integer multiplications. The arithmetic follows
genai-prices' leaf decomposition so that results equal `genai_prices.calc_price` to the
nano-USD:

- a bucket with its own price (cache read, cache write, reasoning) is taken out of its parent
  (input, output) and priced at its own rate;
- a bucket without its own price stays inside its parent and is priced at the parent's rate;
- a per-request price adds `requests_kcount / 1000` per call;
- tiered prices ("cliff" tiers) apply the tier's rate to all tokens once the call's total
  input exceeds the tier's start.

The visible part of a visible step is its non-reasoning output at the output rate: the
tokens the end user sees. The rest of a step's cost is hidden.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from payoff.core.errors import RateError
from payoff.core.money import round_div_half_even
from payoff.core.tokens import TokenCounts

TOKENS_PER_MTOK = 1_000_000
SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class TokenRates:
    """USD per million tokens for each bucket; `None` means "priced as its parent"."""

    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None
    reasoning_mtok: Decimal | None = None
    requests_kcount: Decimal | None = None

    def decimal_places(self) -> int:
        places = [
            max(0, -int(rate.as_tuple().exponent))
            for rate in (
                self.input_mtok,
                self.output_mtok,
                self.cache_read_mtok,
                self.cache_write_mtok,
                self.reasoning_mtok,
                self.requests_kcount,
            )
            if rate is not None
        ]
        return max(places)

    def validate(self) -> None:
        for name in self.__dataclass_fields__:
            rate = getattr(self, name)
            if rate is not None and (not rate.is_finite() or rate < 0):
                raise RateError(f"{name} must be a finite non-negative decimal, got {rate}")


@dataclass(frozen=True)
class _Coefficients:
    """Integer coefficients of one tier: cost * 10**places in nano-USD per token of a bucket."""

    input: int
    cache_read: int
    cache_write: int
    output: int
    reasoning: int
    per_call: int
    visible_output: int


def _scaled(rate: Decimal | None, places: int, unit_nanousd: int) -> int:
    """rate * 10**places * unit_nanousd as an exact integer (rate has at most `places` digits)."""
    if rate is None:
        return 0
    value = rate.scaleb(places) * unit_nanousd
    assert value == value.to_integral_value()
    return int(value)


def _coefficients(rates: TokenRates, places: int) -> _Coefficients:
    # nano-USD per token for a price in USD per million tokens: 10**9 / 10**6 = 1000.
    per_token = 10**9 // TOKENS_PER_MTOK
    input_ = _scaled(rates.input_mtok, places, per_token)
    output = _scaled(rates.output_mtok, places, per_token)

    def own_rate_minus_parent(rate: Decimal | None, parent: int) -> int:
        return 0 if rate is None else _scaled(rate, places, per_token) - parent

    return _Coefficients(
        input=input_,
        cache_read=own_rate_minus_parent(rates.cache_read_mtok, input_),
        cache_write=own_rate_minus_parent(rates.cache_write_mtok, input_),
        output=output,
        reasoning=own_rate_minus_parent(rates.reasoning_mtok, output),
        per_call=_scaled(rates.requests_kcount, places, 10**9 // 1000),
        visible_output=output,
    )


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

    def cost_nanousd(self, counts: TokenCounts, *, visible: bool = False) -> tuple[int, int]:
        """(total cost, visible part of it) of one call in nano-USD, each rounded half-even."""
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
        total = round_div_half_even(total_scaled, self._denominator)
        if not visible:
            return total, 0
        shown = counts.output - counts.reasoning
        return total, round_div_half_even(c.visible_output * shown, self._denominator)

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
