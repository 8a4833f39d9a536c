"""Invoice use cases: the invoice run, the lifecycle (finalize, pay, void), credit notes,
and invoices shown and listed as JSON documents.

An invoice run rates each customer's subscription windows in the period (`service.rating`),
adds late lines for earlier finalized periods whose records arrived after they were billed,
and stores the drafts in one transaction. Finalizing a draft whose late lines credit an
earlier invoice issues a credit note against it: nothing finalized is edited.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import replace
from typing import Any

from payoff.core.credit_notes import CreditNote, credit_note, credits_by_period
from payoff.core.invoicing import Invoice, make_invoice, transition
from payoff.core.periods import Period, from_us, iso_from_us
from payoff.core.plan import Plan
from payoff.core.printable import (
    CREDIT_NOTE_PREFIX,
    Issuer,
    Party,
    PrintableInvoice,
    Reference,
    due_date,
    printable_credit_note,
    printable_invoice,
    tax_on,
)
from payoff.core.rating import Fee, UsageTotals
from payoff.core.statuses import BILLED_STATUSES
from payoff.service.clock import now_us
from payoff.service.issuer import configured_issuer, logo_data_uri
from payoff.service.plans import BillingError, InvoiceNotFound, find_plan, plan_of
from payoff.service.rating import (
    LATE_LOOKBACK_PERIODS,
    Rated,
    billing_period,
    inputs_digest,
    late_lines,
    longest_acceptance_window,
    months_before,
    rate_period,
)
from payoff.store.billing import StoredInvoice
from payoff.store.protocol import BillingStore, RatingStore, RecordStore

# -- the invoice run ---------------------------------------------------------------------


def run_invoices(
    store: RatingStore, period_label: str, customer: str | None = None, as_of_us: int | None = None
) -> list[dict[str, Any]]:
    """Draft invoices for a period (replacing earlier drafts); finalized ones are kept."""
    period = billing_period(period_label)
    as_of_us = _checked_as_of(store, as_of_us)
    this_period: dict[str, list[StoredInvoice]] = defaultdict(list)
    for stored in store.list_invoices(customer, period.label):
        this_period[stored.customer].append(stored)
    billed = _billed_before(store, period, customer, as_of_us)
    deemed_days = longest_acceptance_window(store)
    drafts = []
    for name, rated in sorted(rate_period(store, period, as_of_us, customer).items()):
        if any(i.status in BILLED_STATUSES for i in this_period[name]):
            continue
        late = late_lines(store, name, period, as_of_us, billed[name], deemed_days)
        drafts.append(_draft(name, period, rated, late, this_period[name], billed[name], as_of_us))
    # One transaction for the whole run: every draft lands, or none does.
    store.save_drafts(drafts, as_of_us, now_us())
    return [draft.to_document() for draft in drafts]


def _checked_as_of(store: RecordStore, as_of_us: int | None) -> int:
    """The run's as-of time: now (as the store sees it) unless given, never in the future."""
    now = store.committed_now_us(now_us)
    if as_of_us is None:
        return now
    if as_of_us < 0:
        raise BillingError("the as-of time is before 1970, earlier than any record")
    if as_of_us > now:
        # Records received between now and a future as-of time would count as billed
        # without being on the invoice: rating only looks back.
        raise BillingError(f"the as-of time {iso_from_us(as_of_us)} is in the future")
    return as_of_us


def _billed_before(
    store: BillingStore, period: Period, customer: str | None, as_of_us: int
) -> dict[str, list[StoredInvoice]]:
    """The finalized and paid invoices of the look-back window, by customer."""
    billed: dict[str, list[StoredInvoice]] = defaultdict(list)
    since = months_before(period, LATE_LOOKBACK_PERIODS)
    for stored in store.list_invoices(
        customer, statuses=BILLED_STATUSES, since_period=since, limit=None
    ):
        billed[stored.customer].append(stored)
        if stored.as_of_us > as_of_us:
            # An earlier as-of would un-bill what the finalized invoice already counted.
            raise BillingError(
                f"invoice {stored.id} was rated as of {iso_from_us(stored.as_of_us)}, after "
                f"{iso_from_us(as_of_us)}: run with a later --as-of"
            )
    return billed


def _draft(
    customer: str,
    period: Period,
    rated: Rated,
    late: tuple[list[Fee], list[UsageTotals]],
    this_period: list[StoredInvoice],
    billed: list[StoredInvoice],
    as_of_us: int,
) -> Invoice:
    """A customer's draft: its own fees as rated, the late lines and what they were rated
    from, against the finalized invoices it was rated after (its basis)."""
    late_fees, late_inputs = late
    return make_invoice(
        invoice_id=_invoice_id(customer, period.label, this_period),
        customer=customer,
        period=period.label,
        status="draft",
        plan=rated.plan,
        fees=rated.fees,
        late=late_fees,
        as_of=iso_from_us(as_of_us),
        plan_digest=rated.plan_digest,
        inputs_digest=inputs_digest(rated.inputs + late_inputs),
        windows=rated.windows,
        basis=_basis_of(billed, period),
    )


def _invoice_id(customer: str, period: str, existing: list[StoredInvoice]) -> str:
    """The period's draft keeps its id; after voids, a new one is numbered."""
    for stored in existing:
        if stored.status == "draft":
            return stored.id
    return f"{customer}-{period}" + (f"-{len(existing) + 1}" if existing else "")


def _basis(store: BillingStore, customer: str, period: Period) -> list[str]:
    """The finalized invoices a draft was rated against: its late lines depend on them."""
    since = months_before(period, LATE_LOOKBACK_PERIODS)
    return _basis_of(
        store.list_invoices(customer, statuses=BILLED_STATUSES, since_period=since, limit=None),
        period,
    )


def _basis_of(billed: list[StoredInvoice], period: Period) -> list[str]:
    return sorted(f"{i.id}:{i.status}" for i in billed if i.period < period.label)


# -- the invoice lifecycle ---------------------------------------------------------------


def _load(store: BillingStore, invoice_id: str) -> Invoice:
    """An invoice from the store, which re-checks its totals and plan digests on loading."""
    stored = store.get_invoice(invoice_id)
    if stored is None:
        raise InvoiceNotFound(f"no invoice {invoice_id!r}")
    return stored.invoice


def invoice_document(store: BillingStore, invoice_id: str) -> dict[str, Any]:
    """An invoice as a JSON document, with its status and the credit notes against it;
    once finalized, with its number, issue date and due date too."""
    document = _as_stored(_load(store, invoice_id))
    stored = store.get_invoice(invoice_id)
    if stored is not None and stored.number is not None:
        issued_on = _issued_on(stored.finalized_at_us)
        document["number"] = stored.number
        document["issued_on"] = str(issued_on)
        document["due_on"] = str(due_date(issued_on, _issuer_of(stored.issuer)))
    notes = store.credit_notes(invoice=invoice_id)
    if notes:
        document["credit_notes"] = [_note_document(store, note) for note in notes]
    return document


def _note_document(store: BillingStore, note: CreditNote) -> dict[str, Any]:
    # A note applied on an invoice since voided no longer stands (it is kept, marked).
    applied = store.get_invoice(note.applied_on)
    voided = applied is not None and applied.status == "void"
    return {**json.loads(note.to_json()), "status": "void" if voided else "issued"}


def act_on_invoice(store: BillingStore, invoice_id: str, action: str) -> dict[str, Any]:
    """finalize, pay or void an invoice, by the lifecycle table."""
    invoice = _load(store, invoice_id)
    try:
        new = transition(invoice.status, action)
    except ValueError as exc:
        raise BillingError(f"invoice {invoice_id}: {exc}") from None
    if action == "void":
        _check_no_later_lines(store, invoice)
    if action == "finalize":
        _check_basis(store, invoice)
        _finalize(store, invoice)
    elif not store.set_invoice_status(invoice_id, invoice.status, new, now_us()):
        raise BillingError(f"invoice {invoice_id} changed while being {action}d; try again")
    return invoice_document(store, invoice_id)


def _finalize(store: BillingStore, invoice: Invoice) -> None:
    """Finalize with the next number of the issuer's year (given in the same transaction,
    so never twice) and the issuer's details as they are now; then the credit notes."""
    issuer, at_us = configured_issuer(), now_us()
    year = from_us(at_us).year
    prefix = f"{issuer.number_prefix}-{year}-"
    if store.finalize_invoice(invoice.id, prefix, issuer.to_json(), at_us) is None:
        raise BillingError(f"invoice {invoice.id} changed while being finalized; try again")
    _issue_credit_notes(store, invoice, f"{CREDIT_NOTE_PREFIX}-{year}-")


def _issue_credit_notes(store: BillingStore, invoice: Invoice, number_prefix: str) -> None:
    """Negative late lines credit an earlier finalized invoice: a credit note against it,
    applied on this one. Nothing finalized is edited."""
    for period, lines in credits_by_period(invoice).items():
        against = store.list_invoices(
            invoice.customer, period, statuses=BILLED_STATUSES, limit=None
        )
        if against:
            note = credit_note(invoice, against[-1].id, period, lines)
            store.save_credit_note(note, now_us(), number_prefix)


def _check_basis(store: BillingStore, invoice: Invoice) -> None:
    """Refuse to finalize a draft rated before another invoice of the customer changed."""
    current = _basis(store, invoice.customer, Period.month(invoice.period))
    if invoice.basis is None or list(invoice.basis) != current:
        raise BillingError(
            f"invoice {invoice.id} was rated before another of {invoice.customer}'s "
            "invoices was finalized or voided: run the period again, then finalize"
        )


def _check_no_later_lines(store: BillingStore, invoice: Invoice) -> None:
    """A period whose late lines sit on a later finalized invoice cannot be re-billed."""
    for other in store.list_invoices(invoice.customer, statuses=BILLED_STATUSES):
        if any(fee.period == invoice.period for fee in other.invoice.late):
            raise BillingError(
                f"invoice {other.id} bills late lines of {invoice.period}: void it first, "
                f"or keep {invoice.id}"
            )


# -- documents ---------------------------------------------------------------------------


def invoice_json(document: dict[str, Any]) -> str:
    """An invoice as JSON text: keys sorted, so the same invoice is the same bytes."""
    return json.dumps(document, sort_keys=True, indent=2) + "\n"


def list_invoices(
    store: BillingStore,
    customer: str | None = None,
    period: str | None = None,
    status: str | None = None,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Invoices as documents; all of them (up to the store's bound) unless `limit` is given."""
    found = (
        store.list_invoices(customer, period, status)
        if limit is None
        else store.list_invoices(customer, period, status, limit=limit, offset=offset)
    )
    return [_as_stored(stored.invoice) for stored in found]


def _as_stored(invoice: Invoice) -> dict[str, Any]:
    """An invoice's document as read back from the store (keys in canonical order), then
    its status."""
    document: dict[str, Any] = json.loads(invoice.to_json())
    document["status"] = invoice.status
    return document


# -- documents for a person --------------------------------------------------------------


def printable_document(store: BillingStore, document_id: str) -> PrintableInvoice:
    """An invoice or a credit note, by id, as a document for a person (see core.printable).

    A finalized invoice is printed with the issuer's details kept when it was finalized; a
    draft with the issuer configured now (PAYOFF_ISSUER)."""
    stored = store.get_invoice(document_id)
    if stored is None:
        note = store.get_credit_note(document_id)
        if note is None:
            raise InvoiceNotFound(f"no invoice or credit note {document_id!r}")
        return _printable_note(store, note.note, note.number, note.created_at_us)
    invoice = _load(store, document_id)
    issuer = _issuer_of(stored.issuer)
    plans = _plans_of(store, invoice)
    references = [
        _note_reference(store, note, issuer, plans[invoice.plan].rounding)
        for note in store.credit_notes(invoice=document_id)
    ]
    document = printable_invoice(
        invoice,
        plans,
        issuer,
        _party(store, invoice.customer),
        number=stored.number,
        issued_on=_issued_on(stored.finalized_at_us),
        credit_notes=references,
    )
    return _with_logo(document)


def _printable_note(
    store: BillingStore, note: CreditNote, number: str | None, created_at_us: int
) -> PrintableInvoice:
    corrected = store.get_invoice(note.invoice)
    if corrected is None:
        raise InvoiceNotFound(f"credit note {note.id}: no invoice {note.invoice!r}")
    issuer = _issuer_of(corrected.issuer)
    plans = _plans_of(store, corrected.invoice)
    rounding = plans[corrected.invoice.plan].rounding
    corrects = Reference(
        corrected.id,
        corrected.number,
        _issued_on(corrected.finalized_at_us),
        corrected.invoice.totals.total
        + (tax_on(corrected.invoice.totals.total, issuer, note.currency, rounding) or 0),
    )
    document = printable_credit_note(
        note,
        corrects,
        plans,
        rounding,
        issuer,
        _party(store, note.customer),
        number=number,
        issued_on=from_us(created_at_us).date(),
    )
    return _with_logo(document)


def _note_reference(
    store: BillingStore, note: CreditNote, issuer: Issuer, rounding: str
) -> Reference:
    stored = store.get_credit_note(note.id)
    number = None if stored is None else stored.number
    day = None if stored is None else from_us(stored.created_at_us).date()
    tax = tax_on(note.total, issuer, note.currency, rounding)
    return Reference(note.id, number, day, note.total + (tax or 0))


def _with_logo(document: PrintableInvoice) -> PrintableInvoice:
    return replace(document, logo_data_uri=logo_data_uri(document.issuer))


def _issuer_of(kept: str | None) -> Issuer:
    """The issuer kept on a finalized invoice; for a draft (or an invoice finalized before
    issuers were kept), the one configured now."""
    return Issuer.from_json(kept) if kept is not None else configured_issuer()


def _issued_on(finalized_at_us: int | None) -> dt.date | None:
    return None if finalized_at_us is None else from_us(finalized_at_us).date()


def _plans_of(store: BillingStore, invoice: Invoice) -> dict[str, Plan]:
    names = dict.fromkeys([*(w.plan for w in invoice.windows), invoice.plan])
    return {name: plan_of(find_plan(store, name)) for name in names}


def _party(store: BillingStore, customer: str) -> Party:
    found = store.get_customer(customer)
    if found is None:
        return Party(customer)
    return Party(customer, found.name, found.address or "", found.email, found.tax_id)
