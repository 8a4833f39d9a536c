"""Compute: GPU-seconds of self-hosted usage, from what the GPUs serve per second.

A self-hosted model is priced in the catalog by its GPU-hour cost, its GPU count and its
throughputs (input and output tokens per second). The same figures turn tokens into the
GPU time they took: gpus x (input-side tokens / input throughput + output tokens / output
throughput), where the input side is uncached input, cache reads and cache writes. Exact
(fractions); a charge's total is rounded once, to the microsecond, half-even.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

GPU_SECONDS = "gpu_seconds"
COMPUTE_UNITS = (GPU_SECONDS,)
INPUT_SIDE = ("input", "cache_read", "cache_write")
MICROSECOND = Decimal("0.000001")


@dataclass(frozen=True)
class GpuRate:
    """What one self-hosted model's GPUs serve: the catalog override's figures."""

    gpus: int
    input_tokens_per_second: Decimal
    output_tokens_per_second: Decimal

    def seconds(self, tokens: Mapping[str, int], classes: tuple[str, ...]) -> Fraction:
        """GPU-seconds the counted classes of `tokens` took, exactly."""
        inputs = sum(tokens.get(name, 0) for name in classes if name in INPUT_SIDE)
        outputs = sum(tokens.get(name, 0) for name in classes if name not in INPUT_SIDE)
        return self.gpus * (
            Fraction(inputs) / Fraction(self.input_tokens_per_second)
            + Fraction(outputs) / Fraction(self.output_tokens_per_second)
        )


def rounded_seconds(seconds: Fraction) -> Decimal:
    """A total of GPU-seconds to the microsecond, half-even: the quantity a charge prices."""
    micro = seconds * 1_000_000
    floor = micro.numerator // micro.denominator
    rest = micro - floor
    up = rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1)
    return (Decimal(floor + up) * MICROSECOND).quantize(MICROSECOND, rounding=ROUND_HALF_EVEN)
