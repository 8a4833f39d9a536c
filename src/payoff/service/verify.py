"""`payoff verify`: does the ledger still prove every document it issued?

    chain      every finalized invoice and credit note chained, in order, unedited, each
               sealed with the digest of the one before it            (core.verification)
    invoices   each re-derived from the rows it was computed from, as of its as-of time,
               and the plan versions it names: the same document, to the byte
                                                         (core.derivation, service.derivation)
    notes      each re-derived from the late lines of the invoice it is applied on
    columns    the total, number, dates and issuer kept beside each document agree with it
    the file   the database's own integrity check
    rollups    the daily sums rating reads, recomputed from the events they sum

Expected is what was issued; found is what the ledger gives now. The ledger is only read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from payoff.core.canonical import DocumentError, text_digest
from payoff.core.credit_notes import CreditNote
from payoff.core.derivation import NotDerivable, rederive_credit_note, rederive_invoice
from payoff.core.invoicing import Invoice, plain
from payoff.core.ledger_rows import LedgerRows
from payoff.core.periods import iso_from_us
from payoff.core.statuses import is_invoice_status
from payoff.core.verification import Chained, Mismatch, chain_mismatches, document_mismatches
from payoff.service.derivation import plans_of, rows_of_each, window_mismatches
from payoff.store.audit import IssuedDocument
from payoff.store.protocol import AuditStore


@dataclass
class Verification:
    """What `payoff verify` found."""

    invoices: int = 0
    """Invoices re-derived."""
    credit_notes: int = 0
    chained: int = 0
    """Documents in the chain, all checked."""
    rows: int = 0
    """Ledger rows read to re-derive the invoices."""
    mismatches: list[Mismatch] = field(default_factory=list)
    not_rederived: list[str] = field(default_factory=list)
    """Documents checked in the chain but not re-derived, each with why."""
    integrity: list[str] = field(default_factory=list)
    """What the database's integrity check found."""
    rollups: list[str] = field(default_factory=list)
    """Where the rollups differ from the events (`store/rollups.py`)."""

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.integrity and not self.rollups


def verify_ledger(
    store: AuditStore, period: str | None = None, customer: str | None = None
) -> Verification:
    """Check the whole chain and the file, and re-derive the finalized invoices and credit
    notes of a period and a customer (all when not given)."""
    result = Verification(integrity=store.integrity_problems(), rollups=store.rollup_mismatches())
    documents = store.issued_documents()
    entries = store.document_chain()
    chained = [Chained(d.kind, d.id, label_of(d), d.text) for d in documents]
    result.chained = len(entries)
    result.mismatches += chain_mismatches(entries, chained)
    invoices = {d.id: d for d in documents if d.kind == "invoice"}
    derivable = []
    for document in invoices.values():
        if _chosen(document, period, customer):
            invoice = _checked(document, result)
            if invoice is not None:
                derivable.append(invoice)
    for invoice, rows in rows_of_each(store, derivable):
        _rederive(invoices[invoice.id], invoice, rows, result)
    for document in documents:
        if document.kind == "credit_note" and (customer is None or document.customer == customer):
            _verify_note(document, invoices, period, result)
    return result


def label_of(document: IssuedDocument) -> str:
    """How a person knows a document: its number, then its id."""
    return f"{document.number} ({document.id})" if document.number else document.id


def _chosen(document: IssuedDocument, period: str | None, customer: str | None) -> bool:
    return (period is None or document.period == period) and (
        customer is None or document.customer == customer
    )


def _decoded(document: IssuedDocument, result: Verification) -> Invoice | None:
    """The invoice's document, or None (and a mismatch) when it does not hold together."""
    status = document.status if is_invoice_status(document.status) else "finalized"
    try:
        return Invoice.from_json(document.text, status)
    except DocumentError as exc:
        result.mismatches.append(
            Mismatch(label_of(document), "document", "one that holds together", str(exc))
        )
        return None


def _checked(document: IssuedDocument, result: Verification) -> Invoice | None:
    """The invoice, its columns checked, when it can be re-derived; else None (and why)."""
    invoice = _decoded(document, result)
    if invoice is None:
        return None
    result.mismatches += _column_mismatches(document, invoice)
    why_not = _why_not_rederived(invoice)
    if why_not is not None:
        result.not_rederived.append(f"{label_of(document)}: {why_not}")
        return None
    return invoice


def _rederive(
    document: IssuedDocument, invoice: Invoice, rows: LedgerRows, result: Verification
) -> None:
    """Re-derive the invoice from its rows and name each field that differs."""
    label = label_of(document)
    result.rows += rows.count()
    plans, plan_mismatches = plans_of(rows, label)
    result.mismatches += plan_mismatches + window_mismatches(invoice, rows, label)
    try:
        derived = rederive_invoice(invoice, rows, plans, rows.digest())
    except NotDerivable as exc:
        result.not_rederived.append(f"{label}: not re-derived: {exc}")
        return
    except DocumentError as exc:  # a plan or an earlier invoice it names is missing or edited
        result.mismatches.append(Mismatch(label, "re-derivation", "possible", str(exc)))
        return
    result.invoices += 1
    issued, again = json.loads(document.text), json.loads(derived.to_json())
    result.mismatches += document_mismatches(label, issued, again)


def _why_not_rederived(invoice: Invoice) -> str | None:
    """Why a document written by an earlier payoff cannot be re-derived, if it cannot."""
    if not invoice.windows:
        return "not re-derived: written before invoices named their subscription windows"
    if invoice.rerated is None and (invoice.late or invoice.basis is None or invoice.basis):
        return (
            "not re-derived: written before invoices recorded which earlier periods their "
            "late lines rated again (its chain link and columns are checked)"
        )
    return None


def _column_mismatches(document: IssuedDocument, invoice: Invoice) -> list[Mismatch]:
    """The columns kept beside the document say what it says."""
    label = label_of(document)
    found = []
    if document.total != plain(invoice.totals.total):
        found.append(
            Mismatch(label, "total column", plain(invoice.totals.total), str(document.total))
        )
    seal = invoice.seal
    if seal is not None:
        at = None if document.issued_at_us is None else iso_from_us(document.issued_at_us)
        issuer = None if document.issuer is None else text_digest(document.issuer)
        for what, sealed, column in (
            ("number column", seal.number, document.number),
            ("finalized_at column", seal.issued_at, at),
            ("issuer column digest", seal.issuer_digest, issuer),
        ):
            if sealed != column:
                found.append(Mismatch(label, what, str(sealed), str(column)))
    return found


def _verify_note(
    document: IssuedDocument,
    invoices: dict[str, IssuedDocument],
    period: str | None,
    result: Verification,
) -> None:
    label = label_of(document)
    try:
        note = CreditNote.from_json(document.text)
    except DocumentError as exc:
        result.mismatches.append(Mismatch(label, "document", "one that holds together", str(exc)))
        return
    applied = invoices.get(note.applied_on)
    if period is not None and period not in (note.period, applied and applied.period):
        return
    result.mismatches += _note_references(label, note, invoices)
    if note.seal is not None and note.seal.number != document.number:
        result.mismatches.append(
            Mismatch(label, "number column", note.seal.number, str(document.number))
        )
    on = None if applied is None else _decoded(applied, Verification())
    if on is None:
        return  # named above
    derived = rederive_credit_note(note, on)
    result.credit_notes += 1
    issued, again = json.loads(document.text), json.loads(derived.to_json())
    result.mismatches += document_mismatches(label, issued, again)


def _note_references(
    label: str, note: CreditNote, invoices: dict[str, IssuedDocument]
) -> Iterable[Mismatch]:
    """The invoices a note names exist: the one it corrects (of its customer and period)
    and the one it is applied on."""
    corrected, applied = invoices.get(note.invoice), invoices.get(note.applied_on)
    if applied is None:
        yield Mismatch(label, "applied_on", f"invoice {note.applied_on}", "missing")
    if corrected is None:
        yield Mismatch(label, "invoice", f"invoice {note.invoice}", "missing")
    elif (corrected.customer, corrected.period) != (note.customer, note.period):
        yield Mismatch(
            label,
            "invoice",
            f"an invoice of {note.customer} for {note.period}",
            f"{corrected.customer}'s for {corrected.period}",
        )
