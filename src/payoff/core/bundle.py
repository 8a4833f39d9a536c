"""A customer's bundle: one invoice with everything it was computed from, in one file, so
that the customer can re-derive it offline, with payoff and nothing else.

The file is JSON Lines, each line canonical JSON (keys sorted, no spaces, ASCII):

    line 1           the header: what the bundle holds (format, customer, period, invoice,
                     how many documents and rows, digests, the prices used at ingest)
    next `documents` the invoice as stored (`"document": "invoice"`), then the credit notes
                     issued with it (`"document": "credit_note"`)
    the rest         the ledger rows the invoice read (`core.ledger_rows`), one a line, in
                     order: their sha256, each line ended by a newline, is the records digest
                     the invoice's seal holds

Checking a bundle (`check_bundle`) re-derives the invoice from the rows alone, the same way
`payoff verify` does from the ledger, and compares it with the stored invoice to the byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from payoff.core.canonical import DocumentError, canonical_json, check_keys, text_digest
from payoff.core.credit_notes import CreditNote
from payoff.core.derivation import rederive_credit_note, rederive_invoice, select_rows
from payoff.core.invoicing import Invoice
from payoff.core.ledger_rows import (
    LedgerRows,
    lines_digest,
    parse_line,
    rows_from_lines,
)
from payoff.core.plan import Plan
from payoff.core.verification import Mismatch, document_mismatches

FORMAT = "payoff-bundle"
VERSION = 1
HEADER_KEYS = {
    "bundle", "version", "customer", "period", "invoice", "number", "documents", "rows",
    "records_digest", "document_digest", "prices", "exported_at", "exported_by",
}  # fmt: skip
OPTIONAL_HEADER_KEYS = {"repriced_since", "other_prices"}
"""Events re-priced (`payoff recost`) after the invoice's as-of time: the bundle holds the
cost that held then, priced with earlier prices than `prices` names. `other_prices`: when
the invoice's costs came from several catalogs (prices overridden between steps), the others
beside `prices`."""


@dataclass(frozen=True)
class Bundle:
    """A bundle as read: its header, the invoice and its notes as stored, and its rows."""

    header: dict[str, Any]
    invoice_text: str
    invoice: Invoice
    notes: tuple[tuple[str, CreditNote], ...]
    """Each credit note issued with the invoice: its stored text and the note."""
    rows: LedgerRows
    """The rows, in the file's order."""
    row_lines: tuple[str, ...]
    """The rows' lines as the file holds them."""

    @property
    def label(self) -> str:
        seal = self.invoice.seal
        return f"{seal.number} ({self.invoice.id})" if seal is not None else self.invoice.id


def header(
    invoice: Invoice,
    invoice_text: str,
    notes: int,
    rows: LedgerRows,
    prices: Mapping[str, Any],
    exported_at: str,
    exported_by: str,
    repriced_since: tuple[str, ...] = (),
    other_prices: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The first line of a bundle."""
    head = {
        "bundle": FORMAT,
        "version": VERSION,
        "customer": invoice.customer,
        "period": invoice.period,
        "invoice": invoice.id,
        "number": invoice.seal.number if invoice.seal is not None else None,
        "documents": 1 + notes,
        "rows": rows.count(),
        "records_digest": rows.digest(),
        "document_digest": text_digest(invoice_text),
        "prices": dict(prices),
        "exported_at": exported_at,
        "exported_by": exported_by,
    }
    if repriced_since:
        head["repriced_since"] = list(repriced_since)
    if other_prices:
        head["other_prices"] = [dict(p) for p in other_prices]
    return head


def bundle_lines(
    head: Mapping[str, Any], invoice_text: str, note_texts: Iterable[str], rows: LedgerRows
) -> Iterable[str]:
    """The lines of a bundle, without their newlines."""
    yield canonical_json(head)
    yield canonical_json({"document": "invoice", "body": json.loads(invoice_text)})
    for text in note_texts:
        yield canonical_json({"document": "credit_note", "body": json.loads(text)})
    yield from rows.in_order().lines()


def read_bundle(lines: Iterable[str]) -> Bundle:
    """A bundle from its lines (without newlines); DocumentError naming the line at fault
    when one is not what the format says."""
    numbered = enumerate(lines, start=1)
    number, first = next(numbered, (1, ""))
    head = parse_line(first, f"line {number}")
    check_keys(head, HEADER_KEYS, OPTIONAL_HEADER_KEYS, f"line {number}: header")
    assert isinstance(head, dict)
    if (head["bundle"], head["version"]) != (FORMAT, VERSION):
        raise DocumentError(f"line 1: not a {FORMAT} of version {VERSION}")
    documents = head["documents"]
    if not isinstance(documents, int) or isinstance(documents, bool) or documents < 1:
        raise DocumentError(f"line 1: documents: expected a count of at least 1, got {documents!r}")
    texts: list[str] = []
    for _ in range(documents):
        number, line = next(numbered, (number + 1, ""))
        texts.append(_document(line, number, "invoice" if not texts else "credit_note"))
    invoice = Invoice.from_json(texts[0], "finalized")
    notes = tuple((text, CreditNote.from_json(text)) for text in texts[1:])
    row_lines = [(line, f"line {number}") for number, line in numbered]
    rows = rows_from_lines(row_lines)
    return Bundle(dict(head), texts[0], invoice, notes, rows, tuple(t for t, _ in row_lines))


def _document(line: str, number: int, kind: str) -> str:
    """A document line's stored text (the canonical JSON of its body)."""
    value = parse_line(line, f"line {number}")
    check_keys(value, {"document", "body"}, set(), f"line {number}: document")
    assert isinstance(value, dict)
    if value["document"] != kind:
        raise DocumentError(f"line {number}: document: expected {kind}, got {value['document']!r}")
    return canonical_json(value["body"])


def check_bundle(bundle: Bundle, plans: Mapping[str, Plan]) -> list[Mismatch]:
    """Every way the bundle's invoice is not what its rows give; none when it re-derives to
    the byte. Expected is what the bundle's invoice says; found is what its rows give."""
    label, invoice = bundle.label, bundle.invoice
    mismatches = _header_mismatches(bundle)
    chosen = select_rows(bundle.rows, invoice)
    if chosen != bundle.rows:  # each row was checked to be its line: rows equal, lines equal
        mismatches.append(
            Mismatch(label, "rows", f"the {chosen.count():,} rows the invoice reads, in order",
                     _rows_found(chosen, bundle.row_lines))
        )  # fmt: skip
    digest = lines_digest(bundle.row_lines)
    seal = invoice.seal
    if seal is None or seal.records_digest is None:
        mismatches.append(Mismatch(label, "seal.records_digest", "a digest of its rows", "none"))
    try:
        derived = rederive_invoice(invoice, chosen, plans, digest)
    except DocumentError as exc:
        return [*mismatches, Mismatch(label, "re-derivation", "possible", str(exc))]
    mismatches += _compared(label, bundle.invoice_text, derived.to_json())
    for text, note in bundle.notes:
        if note.applied_on != invoice.id:
            mismatches.append(Mismatch(note.id, "applied_on", invoice.id, note.applied_on))
        mismatches += _compared(note.id, text, rederive_credit_note(note, derived).to_json())
    return mismatches


def _compared(label: str, issued: str, derived: str) -> list[Mismatch]:
    if issued == derived:
        return []
    found = document_mismatches(label, json.loads(issued), json.loads(derived))
    return found or [Mismatch(label, "bytes", issued, derived)]


def _header_mismatches(bundle: Bundle) -> list[Mismatch]:
    """What the header says (expected) against what the file holds (found)."""
    head, invoice = bundle.header, bundle.invoice
    said = {
        "customer": invoice.customer,
        "period": invoice.period,
        "invoice": invoice.id,
        "number": invoice.seal.number if invoice.seal is not None else None,
        "documents": 1 + len(bundle.notes),
        "rows": len(bundle.row_lines),
        "records_digest": lines_digest(bundle.row_lines),
        "document_digest": text_digest(bundle.invoice_text),
    }
    return [
        Mismatch("header", key, _text(head[key]), _text(value))
        for key, value in said.items()
        if head[key] != value
    ]


def _text(value: object) -> str:
    return value if isinstance(value, str) else canonical_json(value)


def _rows_found(chosen: LedgerRows, lines: tuple[str, ...]) -> str:
    wanted = set(chosen.lines())
    extra = [line for line in lines if line not in wanted]
    missing = len(wanted - set(lines))
    if extra:
        return f"{len(extra):,} more, the first: {extra[0][:200]}"
    if missing:
        return f"{missing:,} missing"
    return "the same rows in another order"
