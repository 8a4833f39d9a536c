"""Splitting an integer amount by weights so that the parts sum back to it exactly.

The largest-remainder method: each part is the floor of its exact share, and the units left
over go, one each, to the parts with the largest remainders (ties to the earlier part). The
arithmetic is on integers, so no share is ever rounded twice and the sum is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` split in proportion to non-negative integer `weights` (not all zero).

    A negative amount is split as its opposite, then negated: a discount is shared the way
    a fee is.
    """
    assert weights and all(w >= 0 for w in weights), "weights are non-negative"
    total = sum(weights)
    assert total > 0, "at least one weight is positive"
    if amount < 0:
        return [-part for part in allocate(-amount, weights)]
    shares = [divmod(amount * weight, total) for weight in weights]
    parts = [part for part, _ in shares]
    left = amount - sum(parts)
    assert 0 <= left < len(weights)
    if left:  # a stable sort: equal remainders keep the earlier part first
        for index in sorted(range(len(shares)), key=lambda i: -shares[i][1])[:left]:
            parts[index] += 1
    assert sum(parts) == amount
    return parts


def integer_weights(weights: Sequence[Decimal]) -> list[int]:
    """Decimal weights scaled to integers by the same power of ten (their ratios kept)."""
    places = max((max(0, -int(w.as_tuple().exponent)) for w in weights), default=0)
    scaled = [w.scaleb(places) for w in weights]
    assert all(s == s.to_integral_value() and s >= 0 for s in scaled)
    return [int(s) for s in scaled]
