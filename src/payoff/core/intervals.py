"""Confidence intervals without floating point: Wilson's for a rate, the percentile
bootstrap for a mean of exact integers.

Both are reproducible to the last digit. Wilson's interval is computed in `Decimal` at 34
significant digits and rounded outwards to `RATE_PLACES`, so the printed interval holds the
exact one. The bootstrap draws its resamples from SHAKE-256 (a standard extendable-output
hash) keyed by a seed and the resample's number, never from the clock or a generator whose
sequence could change between Python versions: the same tasks and seed give the same
interval anywhere.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

RATE_PLACES = Decimal("0.0001")
Z_95 = Decimal("1.959963984540054")
"""The standard normal quantile at 0.975: two-sided 95 % intervals."""
CONFIDENCE = Decimal("0.95")
TAIL_PER_MILLE = 25
"""Each tail a 95 % percentile interval leaves out, in thousandths of the resamples."""


def wilson(successes: int, trials: int) -> tuple[Decimal, Decimal] | None:
    """Wilson's 95 % score interval for `successes` out of `trials` (None without trials).

    Unlike the normal approximation it stays within [0, 1] and is sensible at 0 or all
    successes and on a few trials, which a band of tasks often is."""
    assert 0 <= successes <= trials
    if trials == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 34
        n = Decimal(trials)
        p = Decimal(successes) / n
        z2 = Z_95 * Z_95
        scale = 1 + z2 / n
        center = (p + z2 / (2 * n)) / scale
        half = Z_95 * (p * (1 - p) / n + z2 / (4 * n * n)).sqrt() / scale
        low = max(Decimal(0), center - half)
        high = min(Decimal(1), center + half)
        return (
            low.quantize(RATE_PLACES, rounding=ROUND_FLOOR),
            high.quantize(RATE_PLACES, rounding=ROUND_CEILING),
        )


def resample(count: int, seed: int, number: int) -> list[int]:
    """The indices (into `count` items) of bootstrap resample `number`: `count` draws with
    replacement. Each draw is 64 bits of SHAKE-256 reduced modulo `count`, uniform to within
    count / 2**64 (below 10**-13 for any ledger)."""
    assert count > 0
    stream = hashlib.shake_256(f"payoff.bootstrap/{seed}/{number}".encode()).digest(8 * count)
    return [draw % count for draw in struct.unpack(f"<{count}Q", stream)]


def bootstrap_totals(
    series: Sequence[Sequence[int]], seed: int, resamples: int
) -> list[tuple[int, int]]:
    """For each series of per-item integers (all of one length), the 95 % percentile
    interval of its total over `resamples` resamples of the items, as (low, high) totals.

    Every series is summed over the same resamples, so that intervals of related figures
    (a margin and its gain over another budget) come from the same draws. The bounds are
    order statistics: the (25 per mille)-th smallest total and as many from the top."""
    count = len(series[0])
    assert resamples > 0 and all(len(values) == count for values in series)
    totals: list[list[int]] = [[] for _ in series]
    for number in range(resamples):
        drawn = resample(count, seed, number)
        for values, found in zip(series, totals, strict=True):
            found.append(sum(map(values.__getitem__, drawn)))
    tail = resamples * TAIL_PER_MILLE // 1000
    intervals = []
    for found in totals:
        found.sort()
        intervals.append((found[tail], found[resamples - 1 - tail]))
    return intervals
