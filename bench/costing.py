"""Bulk costing of M model calls, against `genai_prices.calc_price` once per call.

payoff costs each call from a PriceTable it resolves once per (provider, model, batch, price
period); the reference recomputes the price from genai-prices' data for every call. The
reference is timed on a random sample and extrapolated to M, and must agree on that sample
to the nano-USD.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import genai_prices
from genai_prices import Usage

from payoff.catalog import Catalog
from payoff.core.money import round_usd_to_nanousd
from payoff.core.periods import to_us
from payoff.core.tokens import TokenCounts
from payoff.records import UsageRecord, decode_record

SAMPLE_SEED = 11


@dataclass(frozen=True)
class Call:
    provider: str
    model: str
    batch: bool
    time: dt.datetime
    at_us: int
    counts: TokenCounts
    visible: bool


@dataclass(frozen=True)
class CostingResult:
    calls: int
    bulk_seconds: list[float]
    sample_size: int
    sample_seconds: list[float]
    unpriced: int  # calls neither side can price (a model the packaged catalog lacks)
    mismatches: int

    @property
    def reference_seconds(self) -> float:
        """calc_price's time for all M calls, extrapolated from the sample."""
        return statistics.median(self.sample_seconds) * self.calls / self.sample_size

    @property
    def ratio(self) -> float:
        return self.reference_seconds / statistics.median(self.bulk_seconds)


def load_calls(path: Path) -> list[Call]:
    calls = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            r = decode_record(line, number)
            assert isinstance(r, UsageRecord) and r.provider and r.model, r
            calls.append(
                Call(
                    r.provider, r.model, r.batch, r.time, to_us(r.time), r.token_counts(), r.visible
                )
            )
    return calls


def bulk_costs(calls: list[Call]) -> list[int | None]:
    """Total cost of each call in nano-USD (None: unpriced), as ingest computes it."""
    catalog = Catalog()  # fresh each time, so that resolving prices is part of the time
    costs: list[int | None] = []
    for call in calls:
        table = catalog.price_table(call.provider, call.model, call.batch, call.at_us)
        costs.append(
            None if table is None else table.cost_nanousd(call.counts, visible=call.visible)[0]
        )
    return costs


def reference_cost(call: Call) -> int | None:
    """The same cost from genai-prices, one call at a time."""
    c = call.counts
    usage = Usage(
        input_tokens=c.input,
        cache_read_tokens=c.cache_read,
        cache_write_tokens=c.cache_write,
        output_tokens=c.output,
        output_reasoning_tokens=c.reasoning,
    )
    try:
        price = genai_prices.calc_price(
            usage,
            call.model,
            provider_id=call.provider,
            genai_request_timestamp=call.time,
            price_context={"processing": "batch"} if call.batch else None,
        )
    except LookupError:
        return None
    return round_usd_to_nanousd(price.total_price)


def measure(
    path: Path, repeats: int, sample_size: int, log: Callable[[str], None] = print
) -> CostingResult:
    log("  loading calls (not timed)...")
    calls = load_calls(path)
    bulk_seconds = []
    for repeat in range(1, repeats + 1):
        start = time.perf_counter()
        costs = bulk_costs(calls)
        bulk_seconds.append(time.perf_counter() - start)
        log(f"  repeat {repeat}/{repeats}: bulk {bulk_seconds[-1]:.2f} s for {len(calls):,} calls")
    sample = random.Random(SAMPLE_SEED).sample(range(len(calls)), k=min(sample_size, len(calls)))
    sample_seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        reference = [reference_cost(calls[i]) for i in sample]
        sample_seconds.append(time.perf_counter() - start)
    log(f"  calc_price: {statistics.median(sample_seconds):.2f} s for a sample of {len(sample):,}")
    mismatches = sum(costs[i] != expected for i, expected in zip(sample, reference, strict=True))
    unpriced = sum(cost is None for cost in costs)
    return CostingResult(
        len(calls), bulk_seconds, len(sample), sample_seconds, unpriced, mismatches
    )
