"""An invoice's rows read from the ledger, and its plans: what re-deriving it needs.

The store reads a superset of the customer's rows (`store.audit.RowsWanted`); the core
narrows it to exactly the rows the invoice reads (`core.derivation.select_rows`), so the
ledger, a bundle and finalizing all agree on which rows those are, by one rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence

from payoff.contract_files import ContractError, contract_from_body
from payoff.core.canonical import digest
from payoff.core.contracts import Contract
from payoff.core.derivation import as_of_us, periods_of, plan_refs, replaced_since, select_rows
from payoff.core.invoicing import Invoice
from payoff.core.ledger_rows import LedgerRows
from payoff.core.outcomes import VERIFICATION_LOOKBACK_DAYS
from payoff.core.periods import US_PER_DAY
from payoff.core.plan import Plan
from payoff.core.verification import Mismatch
from payoff.plan_files import PlanError, plan_from_body
from payoff.store.audit import RowsWanted
from payoff.store.protocol import AuditStore


def rows_wanted(invoices: Sequence[Invoice]) -> RowsWanted:
    """The superset of rows the store reads for invoices of the same periods (one pass)."""
    periods = periods_of(invoices[0])
    start_us = min(period.start_us for period in periods)
    return RowsWanted(
        customers=tuple(sorted({invoice.customer for invoice in invoices})),
        start_us=start_us,
        end_us=periods[0].end_us,
        as_of_us=max(as_of_us(invoice) for invoice in invoices),
        claimed_from_us=start_us - VERIFICATION_LOOKBACK_DAYS * US_PER_DAY,
        plans=tuple(sorted(set().union(*(plan_refs(invoice) for invoice in invoices)))),
        invoices=tuple(
            sorted({i for invoice in invoices for r in invoice.rerated or () for i in r.billed})
        ),
    )


def same_periods(invoice: Invoice) -> tuple[str, ...]:
    """What invoices read in one pass share: the periods they rated."""
    return tuple(period.label for period in periods_of(invoice))


def invoice_rows(store: AuditStore, invoice: Invoice) -> LedgerRows:
    """Exactly the rows of the ledger the invoice reads, in order (each event with the cost
    that held at the invoice's as-of time)."""
    return invoice_rows_and_repriced(store, invoice)[0]


def invoice_rows_and_repriced(
    store: AuditStore, invoice: Invoice
) -> tuple[LedgerRows, tuple[str, ...]]:
    """The rows the invoice reads, and the ids of its events re-priced since its as-of time
    (their cost in the rows is the one that held then)."""
    (rows,) = store.ledger_rows(rows_wanted([invoice]))
    selected = select_rows(rows, invoice)
    read = {event.id for event in selected.events}
    repriced = tuple(i for i in replaced_since(rows, as_of_us(invoice)) if i in read)
    return selected, repriced


def rows_of_each(
    store: AuditStore, invoices: Sequence[Invoice]
) -> Iterator[tuple[Invoice, LedgerRows]]:
    """Each invoice with exactly the rows it reads; those of the same periods are read in
    one pass (customer by customer), not one pass each."""
    groups: dict[tuple[str, ...], list[Invoice]] = defaultdict(list)
    for invoice in invoices:
        groups[same_periods(invoice)].append(invoice)
    for group in groups.values():
        by_customer: dict[str, list[Invoice]] = defaultdict(list)
        for invoice in group:
            by_customer[invoice.customer].append(invoice)
        wanted = rows_wanted(group)
        for customer, rows in zip(wanted.customers, store.ledger_rows(wanted), strict=True):
            for invoice in by_customer[customer]:
                yield invoice, select_rows(rows, invoice)


def plans_of(rows: LedgerRows, label: str) -> tuple[dict[str, Plan], list[Mismatch]]:
    """The plan versions among the rows, by "ID@VERSION", with the outcome contracts among
    the rows that their charges name; and each plan or contract whose body is not the one
    its digest names (edited) or not a plan or contract at all."""
    contracts, mismatches = _contracts_of(rows, label)
    plans: dict[str, Plan] = {}
    for row in rows.plans:
        reference = f"{row.id}@{row.version}"
        found = digest(row.body)
        if found != row.digest:
            mismatches.append(Mismatch(label, f"plan {reference}: body digest", row.digest, found))
        try:
            plans[reference] = plan_from_body(row.body, contracts.get)
        except (PlanError, ValueError) as exc:  # msgspec's ValidationError is a ValueError
            mismatches.append(Mismatch(label, f"plan {reference}", "a valid plan", str(exc)))
    return plans, mismatches


def _contracts_of(rows: LedgerRows, label: str) -> tuple[dict[str, Contract], list[Mismatch]]:
    contracts: dict[str, Contract] = {}
    mismatches = []
    for row in rows.contracts:
        reference = f"{row.id}@{row.version}"
        found = digest(row.body)
        if found != row.digest:
            mismatches.append(
                Mismatch(label, f"contract {reference}: body digest", row.digest, found)
            )
        try:
            contracts[reference] = contract_from_body(row.body)
        except ContractError as exc:
            mismatches.append(
                Mismatch(label, f"contract {reference}", "a valid contract", str(exc))
            )
    return contracts, mismatches


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
