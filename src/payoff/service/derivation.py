"""An invoice's rows read from the ledger, and its plans: what re-deriving it needs.

The store reads a superset of the customer's rows (`store.audit.RowsWanted`); the core
narrows it to exactly the rows the invoice reads (`core.derivation.select_rows`), so the
ledger, a bundle and finalizing all agree on which rows those are, by one rule.
"""

from __future__ import annotations

from collections.abc import Mapping

from payoff.core.canonical import digest
from payoff.core.derivation import as_of_us, periods_of, plan_refs, select_rows
from payoff.core.invoicing import Invoice
from payoff.core.ledger_rows import LedgerRows
from payoff.core.outcomes import VERIFICATION_LOOKBACK_DAYS
from payoff.core.periods import US_PER_DAY
from payoff.core.plan import Plan
from payoff.core.verification import Mismatch
from payoff.plan_files import PlanError, plan_from_body
from payoff.store.audit import RowsWanted
from payoff.store.protocol import AuditStore


def rows_wanted(invoice: Invoice) -> RowsWanted:
    """The superset of rows the store reads for an invoice."""
    periods = periods_of(invoice)
    start_us = min(period.start_us for period in periods)
    return RowsWanted(
        customer=invoice.customer,
        start_us=start_us,
        end_us=periods[0].end_us,
        as_of_us=as_of_us(invoice),
        claimed_from_us=start_us - VERIFICATION_LOOKBACK_DAYS * US_PER_DAY,
        plans=tuple(sorted(plan_refs(invoice))),
        invoices=tuple(sorted({i for r in invoice.rerated or () for i in r.billed})),
    )


def invoice_rows(store: AuditStore, invoice: Invoice) -> LedgerRows:
    """Exactly the rows of the ledger the invoice reads, in order."""
    return select_rows(store.ledger_rows(rows_wanted(invoice)), invoice)


def plans_of(rows: LedgerRows, label: str) -> tuple[dict[str, Plan], list[Mismatch]]:
    """The plan versions among the rows, by "ID@VERSION", and each whose body is not the
    one its digest names (an edited plan) or not a plan at all."""
    plans: dict[str, Plan] = {}
    mismatches = []
    for row in rows.plans:
        reference = f"{row.id}@{row.version}"
        found = digest(row.body)
        if found != row.digest:
            mismatches.append(Mismatch(label, f"plan {reference}: body digest", row.digest, found))
        try:
            plans[reference] = plan_from_body(row.body)
        except (PlanError, ValueError) as exc:  # msgspec's ValidationError is a ValueError
            mismatches.append(Mismatch(label, f"plan {reference}", "a valid plan", str(exc)))
    return plans, mismatches


def window_mismatches(invoice: Invoice, rows: LedgerRows, label: str) -> list[Mismatch]:
    """Windows whose plan is not the version, by digest, that the invoice was rated with."""
    stored: Mapping[str, str] = {f"{p.id}@{p.version}": p.digest for p in rows.plans}
    windows = [
        (f"windows[{i}]", w) for i, w in enumerate(invoice.windows)
    ] + [
        (f"rerated {r.period} windows[{i}]", w)
        for r in invoice.rerated or ()
        for i, w in enumerate(r.windows)
    ]  # fmt: skip
    return [
        Mismatch(
            label, f"{where}.plan_digest ({w.plan})", w.plan_digest, stored.get(w.plan, "none")
        )
        for where, w in windows
        if stored.get(w.plan) != w.plan_digest
    ]
