"""Re-pricing steps with the catalog of now: the `payoff recost` use case.

    count the selected steps (for the progress bar)
    └─ batch after batch, by seq: store.recost_batch(revise) ── one transaction each
         revise: each step priced by the catalog (core/costing.py), kept when a finalized
                 invoice billed it (core/recosting.py), revised when its cost changes

What a crash can lose: the batch in flight, never half of it (`store/costs.py`). A second
run changes nothing a first run committed: a step already at the catalog's price is left
alone, which is also why running again after a crash finishes the job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from payoff.catalog import Catalog
from payoff.core.buckets import COST_FROM_CATALOG
from payoff.core.costing import PriceCatalog
from payoff.core.money import format_nanousd
from payoff.core.periods import to_us
from payoff.core.recosting import BilledMonths, RecostTotals
from payoff.core.tokens import TokenCounts
from payoff.rows import details_from_text
from payoff.service.clock import now_us
from payoff.service.rating import LATE_LOOKBACK_PERIODS
from payoff.store.protocol import CostedStep, CostRevision, CostRevisions, RecostSelection

Progress = Callable[[int, int], None]
"""Called after each batch with (steps examined, steps to examine)."""


def recost(
    store: CostRevisions,
    catalog: Catalog,
    selection: RecostSelection,
    *,
    progress: Progress | None = None,
    clock: Callable[[], int] = now_us,
) -> RecostTotals:
    """Price the selected steps again with `catalog`, batch by batch; what it did."""
    billed = BilledMonths(store.billed_invoices(), LATE_LOOKBACK_PERIODS)
    to_examine = store.count_steps_to_recost(selection)
    identity = catalog.identity()
    done, after_seq = RecostTotals(), 0
    while True:
        reviser = _Reviser(catalog, identity, billed)
        batch = store.recost_batch(selection, after_seq, reviser, identity, clock)
        if batch.examined == 0:
            return done
        # Counted once the batch has committed: a failed batch counts nothing.
        done.add(reviser.totals)
        after_seq = batch.last_seq
        if progress is not None:
            progress(done.examined, max(to_examine, done.examined))


class _Reviser:
    """Prices one batch of steps; `totals` says what it found."""

    def __init__(self, catalog: Catalog, identity: PriceCatalog, billed: BilledMonths) -> None:
        self.price_table = catalog.price_table
        self.identity = identity
        self.billed = billed
        self.totals = RecostTotals()

    def __call__(self, steps: list[CostedStep]) -> list[CostRevision]:
        revisions = []
        for step in steps:
            revision = self._revise(step)
            if revision is not None:
                revisions.append(revision)
        return revisions

    def _revise(self, step: CostedStep) -> CostRevision | None:
        # Once per step of a re-pricing: positional reads, no intermediate objects.
        (
            seq, customer, occurred_at_us, received_at_us, costed_at_us, provider, model,
            batch, visible, input_tokens, cache_read, cache_write, output_tokens, reasoning,
            usage_details, old_cost, old_visible, _, _,
        ) = step  # fmt: skip
        totals = self.totals
        totals.examined += 1
        priced = old_cost is not None
        if priced and self.billed.billed(
            customer, occurred_at_us, received_at_us if costed_at_us is None else costed_at_us
        ):
            totals.billed += 1
            return None
        table = self.price_table(provider, model, batch, occurred_at_us)
        if table is None:
            if priced:
                totals.not_priceable += 1
            else:
                totals.still_unpriced += 1
            return None
        counts = tuple.__new__(
            TokenCounts, (input_tokens, cache_read, cache_write, output_tokens, reasoning)
        )
        details = None if usage_details is None else details_from_text(usage_details)
        cost, cost_visible = table.cost_nanousd(counts, visible=visible, details=details)
        if cost == old_cost and cost_visible == old_visible:
            totals.unchanged += 1
            return None
        totals.repriced += 1
        totals.newly_priced += 0 if priced else 1
        totals.cost_before_nanousd += old_cost or 0
        totals.cost_after_nanousd += cost
        if self.billed.billed_as_of(customer, occurred_at_us) is not None:
            totals.in_billed_months += 1
        return CostRevision(seq, cost, cost_visible, COST_FROM_CATALOG, self.identity.id)


def selection(customer: str | None, since: dt.date | None, include_priced: bool) -> RecostSelection:
    """The steps a re-pricing examines, from what a person asks for (`since` a UTC day)."""
    since_us = None if since is None else to_us(dt.datetime.combine(since, dt.time(), dt.UTC))
    return RecostSelection(customer, since_us, include_priced)


def recost_json(totals: RecostTotals, catalog: Catalog) -> dict[str, Any]:
    """What a re-pricing did, costs as exact USD strings, and the catalog it priced with."""
    identity = catalog.identity()
    shown: dict[str, Any] = {
        name: value for name, value in asdict(totals).items() if not name.endswith("_nanousd")
    }
    shown["cost_before_usd"] = format_nanousd(totals.cost_before_nanousd)
    shown["cost_after_usd"] = format_nanousd(totals.cost_after_nanousd)
    shown["catalog"] = identity.catalog
    shown["overrides_sha256"] = identity.overrides_sha256
    return shown
