"""Aggregated usage as the economics core reads it: token buckets of one task on one model.

The store sums events in SQL into `Bucket`s keyed by (customer, task, cost source,
provider, model, batch, visible, day); the core never sees events. Token classes are kept
disjoint here (uncached input, cache reads, cache writes, text output, reasoning), so that a
scenario can scale or move each one without breaking the rule that parts fit their totals.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, NamedTuple

from payoff.core.costing import PriceTable
from payoff.core.token_classes import PART_COLUMNS, VISIBLE_PART
from payoff.core.tokens import TokenCounts

ONE = Fraction(1)
COST_FROM_CATALOG = "catalog"
"""Cost source of steps priced from the catalog: the only ones a scenario re-costs."""
COST_FROM_RECORD = "record"
"""Cost source of steps whose record gave their cost."""


class Bucket(NamedTuple):
    customer: str
    task: str | None
    source: str | None  # COST_FROM_CATALOG, COST_FROM_RECORD, None: unpriced
    provider: str | None
    model: str | None
    batch: bool
    visible: bool
    day: int  # days since the Unix epoch, UTC: which day's prices apply
    calls: int
    # The disjoint parts of `token_classes.PART_COLUMNS`, in its order: the store sums them.
    uncached: int
    cache_read: int
    cache_write: int
    text_output: int  # output less reasoning
    reasoning: int
    cost_nanousd: int  # of the priced steps
    cost_visible_nanousd: int
    unpriced: int  # steps whose cost is unknown
    passes_factor: Fraction = ONE
    """Target-model forward passes per output token (speculative decoding lowers it)."""
    cost_factor: Fraction = ONE
    """What the output part of the cost is multiplied by (speculative decoding, GPU time)."""

    def replaced(self, **changes: Any) -> Bucket:
        """`_replace`, faster: a scenario replaces fields of every bucket it touches."""
        values: list[Any] = list(self)
        for name, value in changes.items():
            values[_FIELD_INDEX[name]] = value
        return Bucket(*values)

    @property
    def parts(self) -> tuple[int, int, int, int, int]:
        """The disjoint token parts, in `PART_COLUMNS` order."""
        return (self.uncached, self.cache_read, self.cache_write, self.text_output, self.reasoning)

    @property
    def counts(self) -> TokenCounts:
        """The inclusive buckets, as the price table reads them: the inverse of
        `PART_COLUMNS` (a test checks it)."""
        return TokenCounts(
            input=self.uncached + self.cache_read + self.cache_write,
            cache_read=self.cache_read,
            cache_write=self.cache_write,
            output=self.text_output + self.reasoning,
            reasoning=self.reasoning,
        )

    @property
    def tokens(self) -> int:
        inputs = self.uncached + self.cache_read + self.cache_write
        return inputs + self.text_output + self.reasoning

    @property
    def tokens_visible(self) -> int:
        """What the end user sees: the text output of visible steps."""
        return self.text_output if self.visible else 0


_FIELD_INDEX = {name: index for index, name in enumerate(Bucket._fields)}
_PARTS_AT = _FIELD_INDEX["uncached"]
assert Bucket._fields[_PARTS_AT : _PARTS_AT + len(PART_COLUMNS)] == tuple(PART_COLUMNS)
assert VISIBLE_PART == "text_output", "tokens_visible reads the part named visible"

PriceKey = tuple[str, str, bool, int]
"""(provider, model, batch, day since the epoch)."""


class BucketCoster:
    """Re-costs buckets with the catalog's price tables, resolved by the shell beforehand."""

    def __init__(
        self,
        tables: dict[PriceKey, PriceTable | None],
        gpu_priced: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.tables = tables
        self.gpu_priced = gpu_priced
        """(provider, model) priced from GPU time: a self-hosted model, whose cost follows
        the forward passes it runs."""

    def table(self, bucket: Bucket, batch: bool | None = None) -> PriceTable | None:
        if bucket.provider is None or bucket.model is None:
            return None
        key = (bucket.provider, bucket.model, bucket.batch if batch is None else batch, bucket.day)
        return self.tables.get(key)

    def cost(self, bucket: Bucket, batch: bool | None = None) -> int | None:
        """The bucket's cost at its (or the given batch) price, or None when unpriceable."""
        table = self.table(bucket, batch)
        if table is None:
            return None
        return table.bucket_cost_nanousd(bucket.counts, bucket.calls, bucket.cost_factor)

    def visible_cost(self, bucket: Bucket, batch: bool | None = None) -> int | None:
        """The catalog cost of the bucket's visible output (text output of a visible step):
        its cost less its cost without that output, at its tier; None when unpriceable."""
        if not bucket.visible or bucket.text_output == 0:
            return 0
        whole, rest = self.cost(bucket, batch), self.cost(bucket.replaced(text_output=0), batch)
        return None if whole is None or rest is None else whole - rest
