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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from payoff.core.canonical import text_digest
from payoff.core.credit_notes import CreditNote, credit_note, credits_by_period
from payoff.core.credits import CreditEntry, applied_minor, balance_minor, draw_down, expiries
from payoff.core.credits import restorations as credit_restorations
from payoff.core.currency import minor_unit, to_minor
from payoff.core.invoicing import Invoice, make_invoice, plain, transition
from payoff.core.periods import Period, from_us, iso_from_us
from payoff.core.plan import Plan
from payoff.core.printable import (
    CREDIT_NOTE_PREFIX,
    Issuer,
    Party,
    PrintableInvoice,
    Reference,
    amount_due,
    due_date,
    printable_credit_note,
    printable_invoice,
)
from payoff.core.rating import Unbilled, inputs_digest
from payoff.core.statuses import BILLED_STATUSES
from payoff.service.clock import now_us
from payoff.service.derivation import invoice_rows
from payoff.service.issuer import configured_issuer, logo_data_uri
from payoff.service.plans import BillingError, InvoiceNotFound, PlanStore, find_plan, plan_of
from payoff.service.rating import (
    LATE_LOOKBACK_PERIODS,
    RATING_ERRORS,
    Late,
    Rated,
    Unrated,
    billing_period,
    late_lines,
    longest_acceptance_window,
    months_before,
    rate_period,
    rating_refusal,
)
from payoff.store.billing import Finalizing, StoredInvoice
from payoff.store.protocol import CreditStore, RatingStore, RecordStore, VerifiedBillingStore

if TYPE_CHECKING:
    from payoff.catalog import Override  # genai-prices: loaded only where prices are read

# -- the invoice run ---------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceRun:
    """What an invoice run drafted, and the customers it could not rate, each with why."""

    drafts: list[dict[str, Any]]
    unrated: Unrated


class InvoiceRunIncomplete(BillingError):
    """Some customers of an invoice run could not be rated; the others' drafts were saved."""

    def __init__(self, run: InvoiceRun) -> None:
        self.run = run
        reasons = "; ".join(f"{name}: {why}" for name, why in sorted(run.unrated.items()))
        super().__init__(
            f"{len(run.unrated)} customer(s) not invoiced ({reasons}); "
            f"{len(run.drafts)} draft(s) saved for the others"
        )


def run_invoices(
    store: RatingStore,
    period_label: str,
    customer: str | None = None,
    as_of_us: int | None = None,
    overrides: Sequence[Override] = (),
) -> list[dict[str, Any]]:
    """Draft invoices for a period (replacing earlier drafts); finalized ones are kept.

    Raises InvoiceRunIncomplete, after saving the other drafts, when a customer cannot be
    rated: `invoice_run` says the same without raising.
    """
    run = invoice_run(store, period_label, customer, as_of_us, overrides)
    if run.unrated:
        raise InvoiceRunIncomplete(run)
    return run.drafts


def invoice_run(
    store: RatingStore,
    period_label: str,
    customer: str | None = None,
    as_of_us: int | None = None,
    overrides: Sequence[Override] = (),
) -> InvoiceRun:
    """Draft invoices for a period, customer by customer: one that cannot be rated (its plans,
    its data) is named in `unrated` and never stops the others' drafts. `overrides`: the
    price overrides whose GPU-hour figures compute charges count by."""
    period = billing_period(period_label)
    as_of_us = _checked_as_of(store, as_of_us)
    this_period: dict[str, list[StoredInvoice]] = defaultdict(list)
    for stored in store.list_invoices(customer, period.label):
        this_period[stored.customer].append(stored)
    unrated: Unrated = {}
    billed = _billed_before(store, period, customer, as_of_us, unrated)
    deemed_days = longest_acceptance_window(store)
    drafts = []
    missed: dict[str, list[dict[str, Any]]] = {}
    found = rate_period(store, period, as_of_us, customer, unrated, overrides)
    for name, rated in sorted(found.items()):
        if name in unrated or any(i.status in BILLED_STATUSES for i in this_period[name]):
            continue
        try:
            late = late_lines(store, name, period, as_of_us, billed[name], deemed_days, overrides)
            drafts.append(
                _draft(name, period, rated, late, this_period[name], billed[name], as_of_us)
            )
            if rated.unbilled:
                missed[drafts[-1].id] = unbilled_rows(rated.unbilled)
        except RATING_ERRORS as error:
            unrated[name] = rating_refusal(error)
    # One transaction for the whole run: every draft lands, or none does.
    store.save_drafts(drafts, as_of_us, now_us())
    documents = [draft.to_document() for draft in drafts]
    for document in documents:
        if document["id"] in missed:
            # Said by the run, beside the draft: never a line, never in the stored invoice.
            document["unbilled"] = missed[document["id"]]
    return InvoiceRun(documents, unrated)


def unbilled_rows(found: list[Unbilled]) -> list[dict[str, Any]]:
    """Unbilled usage by task type, provider and model (windows summed), tokens by class."""
    rows: dict[tuple[str | None, str | None, str | None], dict[str, int]] = {}
    for item in found:
        tokens = rows.setdefault((item.task_type, item.provider, item.model), {})
        for name, count in item.tokens.items():
            tokens[name] = tokens.get(name, 0) + count
    return [
        {"task_type": key[0], "provider": key[1], "model": key[2], "tokens": rows[key]}
        for key in sorted(rows, key=lambda k: tuple(v or "" for v in k))
    ]


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
    store: PlanStore, period: Period, customer: str | None, as_of_us: int, unrated: Unrated
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
            unrated[stored.customer] = (
                f"invoice {stored.id} was rated as of {iso_from_us(stored.as_of_us)}, after "
                f"{iso_from_us(as_of_us)}: run with a later --as-of"
            )
    return billed


def _draft(
    customer: str,
    period: Period,
    rated: Rated,
    late: Late,
    this_period: list[StoredInvoice],
    billed: list[StoredInvoice],
    as_of_us: int,
) -> Invoice:
    """A customer's draft: its own fees as rated, the late lines and what they were rated
    from, against the finalized invoices it was rated after (its basis)."""
    return make_invoice(
        invoice_id=_invoice_id(customer, period.label, this_period),
        customer=customer,
        period=period.label,
        status="draft",
        plan=rated.plan,
        fees=rated.fees,
        late=late.lines,
        as_of=iso_from_us(as_of_us),
        plan_digest=rated.plan_digest,
        inputs_digest=inputs_digest(rated.inputs + late.inputs),
        windows=rated.windows,
        basis=_basis_of(billed, period),
        rerated=late.rerated,
    )


def _invoice_id(customer: str, period: str, existing: list[StoredInvoice]) -> str:
    """The period's draft keeps its id; after voids, a new one is numbered."""
    for stored in existing:
        if stored.status == "draft":
            return stored.id
    return f"{customer}-{period}" + (f"-{len(existing) + 1}" if existing else "")


def _basis(store: PlanStore, customer: str, period: Period) -> list[str]:
    """The finalized invoices a draft was rated against: its late lines depend on them."""
    since = months_before(period, LATE_LOOKBACK_PERIODS)
    return _basis_of(
        store.list_invoices(customer, statuses=BILLED_STATUSES, since_period=since, limit=None),
        period,
    )


def _basis_of(billed: list[StoredInvoice], period: Period) -> list[str]:
    return sorted(f"{i.id}:{i.status}" for i in billed if i.period < period.label)


# -- the invoice lifecycle ---------------------------------------------------------------


def _load(store: PlanStore, invoice_id: str) -> Invoice:
    """An invoice from the store, which re-checks its totals and plan digests on loading."""
    stored = store.get_invoice(invoice_id)
    if stored is None:
        raise InvoiceNotFound(f"no invoice {invoice_id!r}")
    return stored.invoice


class InvoiceStore(PlanStore, CreditStore, Protocol):
    """Invoices beside the wallets they draw credits from."""


def invoice_document(store: InvoiceStore, invoice_id: str) -> dict[str, Any]:
    """An invoice as a JSON document, with its status, tax and amount due, and the credit
    notes against it; once finalized, with its number, issue date and due date too."""
    stored = store.get_invoice(invoice_id)
    if stored is None:
        raise InvoiceNotFound(f"no invoice {invoice_id!r}")
    document = _as_stored(stored.invoice) | Amounts(store).shown(stored)
    document |= _credits_shown(store, stored.invoice, document["amount_due"])
    notes = store.credit_notes(invoice=invoice_id)
    if notes:
        document["credit_notes"] = [_note_document(store, note) for note in notes]
    return document


def _credits_shown(store: CreditStore, invoice: Invoice, amount_due: str) -> dict[str, Any]:
    """For an invoice that drew credits: what it drew, the wallet's balance left just after,
    and the amount due less the credits. Nothing for an invoice that drew none, so its
    document is what it was before wallets existed."""
    entries = store.credit_entries(invoice.customer)
    applied = applied_minor(entries, invoice.id)
    if applied == 0:
        return {}
    drawn_at = max(e.at_us for e in entries if e.kind == "consumption" and e.invoice == invoice.id)
    places = Decimal(1).scaleb(-minor_unit(invoice.currency))
    credits = Decimal(applied).scaleb(-minor_unit(invoice.currency)).quantize(places)
    left = Decimal(balance_minor(entries, drawn_at)).scaleb(-minor_unit(invoice.currency))
    return {
        "credits_applied": plain(credits),
        "credit_balance": plain(left.quantize(places)),
        "amount_due": plain(Decimal(amount_due) - credits),
    }


class Amounts:
    """What an invoice shows beside its stored document: number and dates once finalized,
    and tax and amount due by `core.printable.amount_due` (the printed documents' rule),
    with the issuer kept when it was finalized, or for a draft the one configured now.
    Each plan's rounding and the configured issuer are read once."""

    def __init__(self, store: PlanStore) -> None:
        self.store = store
        self.roundings: dict[str, str] = {}
        self.configured: Issuer | None = None

    def issuer(self, stored: StoredInvoice) -> Issuer:
        if stored.issuer is not None:
            return Issuer.from_json(stored.issuer)
        if self.configured is None:
            self.configured = configured_issuer()
        return self.configured

    def shown(self, stored: StoredInvoice) -> dict[str, Any]:
        invoice, issuer = stored.invoice, self.issuer(stored)
        if invoice.plan not in self.roundings:
            plan = plan_of(self.store, find_plan(self.store, invoice.plan))
            self.roundings[invoice.plan] = plan.rounding
        rounding = self.roundings[invoice.plan]
        tax, due = amount_due(invoice.totals.total, issuer, invoice.currency, rounding)
        shown: dict[str, Any] = {}
        if stored.number is not None:
            issued_on = _issued_on(stored.finalized_at_us)
            shown["number"] = stored.number
            shown["issued_on"] = str(issued_on)
            shown["due_on"] = str(due_date(issued_on, issuer))
        shown["tax"] = (
            None
            if tax is None or issuer.tax_rate is None
            else {"label": issuer.tax_label, "rate": plain(issuer.tax_rate), "amount": plain(tax)}
        )
        shown["amount_due"] = plain(due)
        return shown


def _note_document(store: PlanStore, note: CreditNote) -> dict[str, Any]:
    # A note applied on an invoice since voided no longer stands (it is kept, marked).
    applied = store.get_invoice(note.applied_on)
    voided = applied is not None and applied.status == "void"
    found = store.get_credit_note(note.id)
    return {
        **json.loads(note.to_json()),
        "number": None if found is None else found.number,
        "status": "void" if voided else "issued",
    }


def act_on_invoice(store: VerifiedBillingStore, invoice_id: str, action: str) -> dict[str, Any]:
    """finalize, pay or void an invoice, by the lifecycle table."""
    invoice = _load(store, invoice_id)
    try:
        new = transition(invoice.status, action)
    except ValueError as exc:
        raise BillingError(f"invoice {invoice_id}: {exc}") from None
    if action == "void":
        _check_no_later_lines(store, invoice)
    at_us = now_us()

    def given_back(entries: list[CreditEntry]) -> list[CreditEntry]:
        return credit_restorations(entries, invoice_id, at_us) if action == "void" else []

    if action == "finalize":
        _finalize(store, invoice)
    elif not store.set_invoice_status(invoice_id, invoice.status, new, at_us, given_back):
        raise BillingError(f"invoice {invoice_id} changed while being {action}d; try again")
    return invoice_document(store, invoice_id)


def _finalize(store: VerifiedBillingStore, invoice: Invoice) -> None:
    """Finalize the draft as it was read and checked, with the next number of the issuer's
    year and the issuer's details as they are now, and issue its credit notes: one
    transaction, which the store refuses if the draft changed since it was read (a run
    replaced it), so what is finalized is what was checked. The checks that read other
    invoices run inside it, under the write lock, so those cannot change either.

    The seal records the digest of the rows the invoice was computed from: read before the
    transaction, since rows received by the draft's as-of time never change (records are
    stamped under the write lock, and the as-of time was read under it)."""
    records_digest = invoice_rows(store, invoice).digest()
    issuer, at_us = configured_issuer(), now_us()
    year = from_us(at_us).year
    finalizing = Finalizing(
        draft_digest=text_digest(invoice.to_json()),
        number_prefix=f"{issuer.number_prefix}-{year}-",
        note_prefix=f"{CREDIT_NOTE_PREFIX}-{year}-",
        issuer=issuer.to_json(),
        at_us=at_us,
        records_digest=records_digest,
    )

    def checked_under_lock() -> list[CreditNote]:
        _check_basis(store, invoice)
        return _credit_notes(store, invoice)

    due = _amount_due_minor(store, invoice, issuer)

    def drawn(entries: list[CreditEntry]) -> list[CreditEntry]:
        # Expiries due by now go first, each at its own instant, so no expired credit is drawn.
        expired = expiries(entries, at_us)
        drawing = draw_down([*entries, *expired], invoice.id, due, invoice.currency, at_us)
        return [*expired, *drawing]

    if store.finalize_invoice(invoice.id, finalizing, checked_under_lock, drawn) is None:
        raise BillingError(f"invoice {invoice.id} changed while being finalized; try again")


def _amount_due_minor(store: PlanStore, invoice: Invoice, issuer: Issuer) -> int:
    """What the invoice asks to be paid, tax included, in minor units: what credits cover."""
    rounding = plan_of(store, find_plan(store, invoice.plan)).rounding
    _, due = amount_due(invoice.totals.total, issuer, invoice.currency, rounding)
    return to_minor(due, invoice.currency)


def _credit_notes(store: PlanStore, invoice: Invoice) -> list[CreditNote]:
    """Negative late lines credit an earlier finalized invoice: a credit note against it,
    applied on this one. Nothing finalized is edited."""
    notes = []
    for period, lines in credits_by_period(invoice).items():
        against = store.list_invoices(
            invoice.customer, period, statuses=BILLED_STATUSES, limit=None
        )
        if against:
            notes.append(credit_note(invoice, against[-1].id, period, lines))
    return notes


def _check_basis(store: PlanStore, invoice: Invoice) -> None:
    """Refuse to finalize a draft rated before another invoice of the customer changed."""
    current = _basis(store, invoice.customer, Period.month(invoice.period))
    if invoice.basis is None or list(invoice.basis) != current:
        raise BillingError(
            f"invoice {invoice.id} was rated before another of {invoice.customer}'s "
            "invoices was finalized or voided: run the period again, then finalize"
        )


def _check_no_later_lines(store: PlanStore, invoice: Invoice) -> None:
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
    store: PlanStore,
    customer: str | None = None,
    period: str | None = None,
    status: str | None = None,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Invoices as documents, each with what `invoice_document` shows beside it (number
    and dates once finalized, tax, amount due); all of them (up to the store's bound)
    unless `limit` is given."""
    found = (
        store.list_invoices(customer, period, status)
        if limit is None
        else store.list_invoices(customer, period, status, limit=limit, offset=offset)
    )
    amounts = Amounts(store)
    return [_as_stored(stored.invoice) | amounts.shown(stored) for stored in found]


def _as_stored(invoice: Invoice) -> dict[str, Any]:
    """An invoice's document as read back from the store (keys in canonical order), then
    its status."""
    document: dict[str, Any] = json.loads(invoice.to_json())
    document["status"] = invoice.status
    return document


# -- documents for a person --------------------------------------------------------------


def printable_document(store: PlanStore, document_id: str) -> PrintableInvoice:
    """An invoice or a credit note, by id, as a document for a person (see core.printable).

    A finalized invoice is printed with the issuer's details kept when it was finalized; a
    draft with the issuer configured now (PAYOFF_ISSUER). Each names the other: an invoice
    its credit notes and where each is deducted, a credit line the note that documents it,
    a credit note the invoice it corrects and the one it is deducted on."""
    stored = store.get_invoice(document_id)
    if stored is None:
        note = store.get_credit_note(document_id)
        if note is None:
            raise InvoiceNotFound(f"no invoice or credit note {document_id!r}")
        return _printable_note(store, note.note, note.number, note.created_at_us)
    invoice = stored.invoice
    issuer = _issuer_of(stored.issuer)
    plans = _plans_of(store, invoice)
    rounding = plans[invoice.plan].rounding
    references = [
        _note_reference(store, note, issuer, rounding)
        for note in store.credit_notes(invoice=document_id)
    ]
    applied = {
        note.period: _note_reference(store, note, issuer, rounding)
        for note in store.credit_notes(customer=invoice.customer)
        if note.applied_on == invoice.id
    }
    document = printable_invoice(
        invoice,
        plans,
        issuer,
        _party(store, invoice.customer),
        number=stored.number,
        issued_on=_issued_on(stored.finalized_at_us),
        credit_notes=references,
        applied_notes=applied,
        period_quantities=_period_quantities(store, invoice),
    )
    return _with_logo(document)


def _printable_note(
    store: PlanStore, note: CreditNote, number: str | None, created_at_us: int
) -> PrintableInvoice:
    corrected = store.get_invoice(note.invoice)
    if corrected is None:
        raise InvoiceNotFound(f"credit note {note.id}: no invoice {note.invoice!r}")
    issuer = _issuer_of(corrected.issuer)
    plans = _plans_of(store, corrected.invoice)
    rounding = plans[corrected.invoice.plan].rounding
    applied = store.get_invoice(note.applied_on)
    document = printable_credit_note(
        note,
        _invoice_reference(corrected, issuer, rounding),
        plans,
        rounding,
        issuer,
        _party(store, note.customer),
        number=number,
        issued_on=from_us(created_at_us).date(),
        deducted_on=None if applied is None else _invoice_reference(applied, issuer, rounding),
        period_quantities={} if applied is None else _period_quantities(store, applied.invoice),
    )
    if applied is not None and applied.status == "void":
        document = replace(document, status="void")  # deducted on nothing any more
    return _with_logo(document)


def _invoice_reference(stored: StoredInvoice, issuer: Issuer, rounding: str) -> Reference:
    """An invoice as another document names it: number, issue date and amount due."""
    invoice = stored.invoice
    _, due = amount_due(invoice.totals.total, issuer, invoice.currency, rounding)
    return Reference(stored.id, stored.number, _issued_on(stored.finalized_at_us), due)


def _note_reference(store: PlanStore, note: CreditNote, issuer: Issuer, rounding: str) -> Reference:
    stored = store.get_credit_note(note.id)
    number = None if stored is None else stored.number
    day = None if stored is None else from_us(stored.created_at_us).date()
    _, credited = amount_due(note.total, issuer, note.currency, rounding)
    applied = store.get_invoice(note.applied_on)
    deducted_on = None if applied is None else applied.number or applied.id
    return Reference(note.id, number, day, credited, deducted_on)


def _period_quantities(store: PlanStore, invoice: Invoice) -> dict[tuple[str, str], Decimal]:
    """For each late line, its period's whole quantity now, by (period, charge): what the
    invoices the line was rated against billed for it, plus the line's own."""
    if not invoice.late or not invoice.basis:
        return {}
    periods = {fee.period for fee in invoice.late}
    billed: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for entry in invoice.basis:
        earlier = store.get_invoice(entry.rpartition(":")[0])
        if earlier is None or earlier.period not in periods:
            continue
        for fee in earlier.invoice.billed_for(earlier.period):
            billed[fee.period, fee.charge] += fee.quantity
    return {
        (fee.period, fee.charge): billed[fee.period, fee.charge] + fee.quantity
        for fee in invoice.late
        if (fee.period, fee.charge) in billed
    }


def _with_logo(document: PrintableInvoice) -> PrintableInvoice:
    return replace(document, logo_data_uri=logo_data_uri(document.issuer))


def _issuer_of(kept: str | None) -> Issuer:
    """The issuer kept on a finalized invoice; for a draft (or an invoice finalized before
    issuers were kept), the one configured now."""
    return Issuer.from_json(kept) if kept is not None else configured_issuer()


def _issued_on(finalized_at_us: int | None) -> dt.date | None:
    return None if finalized_at_us is None else from_us(finalized_at_us).date()


def _plans_of(store: PlanStore, invoice: Invoice) -> dict[str, Plan]:
    names = dict.fromkeys([*(w.plan for w in invoice.windows), invoice.plan])
    return {name: plan_of(store, find_plan(store, name)) for name in names}


def _party(store: PlanStore, customer: str) -> Party:
    found = store.get_customer(customer)
    if found is None:
        return Party(customer)
    return Party(customer, found.name, found.address or "", found.email, found.tax_id)
