"""Re-pricing steps after a price changes, without rewriting what was billed.

A step's cost is set when it is ingested, by the catalog of that moment. After a price
override or a catalog update, `payoff recost` prices steps again:

- unpriced steps, wherever they are: their cost was unknown and counted in no invoice's
  cost, so pricing them rewrites nothing. In a month already billed, the cost a cost-plus
  charge now sees lands on the next invoice as a late line, as late usage does;
- with `--all`, every step the catalog priced that no finalized invoice billed yet.

A step was billed when a finalized (or paid) invoice billed its month, and an invoice of
that month or of one of the `lookback` months after it (whose late lines re-rate it) was
rated as of a time at or after the step's cost was set: that invoice counted the cost.
Nothing here decides what an invoice says; the rating of any period as of any time reads the
cost that held then (the store keeps every replaced cost), so an invoice re-derived later is
the same as when it was made.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from payoff.core.periods import Period


class BilledInvoice(NamedTuple):
    """A finalized or paid invoice, as far as re-pricing cares."""

    customer: str
    period: str
    """YYYY-MM."""
    as_of_us: int


class _BilledMonth(NamedTuple):
    start_us: int
    end_us: int
    billed_as_of_us: int
    """The latest as-of time of the invoices that bill the month (its own or late lines)."""


class BilledMonths:
    """For each customer, the months finalized invoices billed, and until when."""

    def __init__(self, invoices: Iterable[BilledInvoice], lookback: int) -> None:
        assert lookback >= 0
        as_of: dict[tuple[str, str], int] = {}
        for invoice in invoices:
            key = (invoice.customer, invoice.period)
            as_of[key] = max(as_of.get(key, invoice.as_of_us), invoice.as_of_us)
        months: dict[str, list[_BilledMonth]] = defaultdict(list)
        for (customer, label), own_as_of in as_of.items():
            month = Period.month(label)
            latest, later = own_as_of, month
            # The invoices of the months after it re-rate it for late lines.
            for _ in range(lookback):
                later = later.next()
                latest = max(latest, as_of.get((customer, later.label), latest))
            months[customer].append(_BilledMonth(month.start_us, month.end_us, latest))
        self._months = {customer: sorted(found) for customer, found in months.items()}
        self._starts = {c: [m.start_us for m in found] for c, found in self._months.items()}

    def billed_as_of(self, customer: str, occurred_at_us: int) -> int | None:
        """Until when the month of a step was billed; None when no invoice billed it."""
        months = self._months.get(customer)
        if months is None:
            return None
        at = bisect_right(self._starts[customer], occurred_at_us) - 1
        if at < 0 or occurred_at_us >= months[at].end_us:
            return None
        return months[at].billed_as_of_us

    def billed(self, customer: str, occurred_at_us: int, cost_set_at_us: int) -> bool:
        """Whether a finalized invoice counted the cost a step has held since a time."""
        billed_as_of = self.billed_as_of(customer, occurred_at_us)
        return billed_as_of is not None and billed_as_of >= cost_set_at_us


@dataclass
class RecostTotals:
    """What a re-pricing found and did; costs in nano-USD, of the steps it re-priced."""

    examined: int = 0
    repriced: int = 0
    newly_priced: int = 0
    """Of the re-priced steps, those that were unpriced."""
    unchanged: int = 0
    """Steps the catalog prices as they are already priced."""
    still_unpriced: int = 0
    billed: int = 0
    """Priced steps left as they are: a finalized invoice billed them."""
    not_priceable: int = 0
    """Priced steps the catalog can no longer price: their cost is kept."""
    in_billed_months: int = 0
    """Re-priced steps of months already billed: their change lands on the next invoice."""
    cost_before_nanousd: int = 0
    """What the re-priced steps cost before (unpriced ones counting nothing)."""
    cost_after_nanousd: int = 0

    def add(self, other: RecostTotals) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
