"""Credit notes: corrections of a finalized invoice. Nothing finalized is edited: when a
later invoice credits an earlier period (negative late lines), a credit note against the
earlier invoice records those lines, applied on the later one.

    total = sum of the note's lines (each negative: a credit)

One JSON codec, as for invoices: `to_json()` is canonical JSON; `from_json()` reads it back
and re-checks the total.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from payoff.core.canonical import (
    DocumentError,
    canonical_json,
    check_keys,
    decimal_field,
    text_field,
    typed_field,
)
from payoff.core.chain import Seal
from payoff.core.invoicing import Invoice, line_from_json, line_json, plain
from payoff.core.money import ZERO
from payoff.core.rating import Fee

NOTE_KEYS = {"id", "invoice", "customer", "period", "applied_on", "currency", "lines", "total"}


@dataclass(frozen=True)
class CreditNote:
    """A credit of `period`'s finalized invoice `invoice`, applied on invoice `applied_on`."""

    id: str
    invoice: str
    customer: str
    period: str
    applied_on: str
    currency: str
    lines: tuple[Fee, ...]
    total: Decimal
    seal: Seal | None = None
    """What issuing it added (`core.chain`); None on notes issued before notes were sealed."""

    def __post_init__(self) -> None:
        # The pair assertion: the total is what the lines add up to.
        summed = sum((fee.amount for fee in self.lines), ZERO)
        if self.total != summed:
            raise DocumentError(
                f"credit note {self.id}: total {plain(self.total)} is not the sum of its "
                f"lines, {plain(summed)}"
            )
        if not all(fee.late and fee.period == self.period for fee in self.lines):
            raise DocumentError(f"credit note {self.id}: a line is not a late one of {self.period}")

    def sealed(self, seal: Seal) -> CreditNote:
        """The note as issued: with its seal."""
        return replace(self, seal=seal)

    def unsealed(self) -> CreditNote:
        return replace(self, seal=None)

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "id": self.id,
            "invoice": self.invoice,
            "customer": self.customer,
            "period": self.period,
            "applied_on": self.applied_on,
            "currency": self.currency,
            "lines": [line_json(fee) for fee in self.lines],
            "total": plain(self.total),
        }
        if self.seal is not None:
            document["seal"] = self.seal.to_json_value()
        return document

    def to_json(self) -> str:
        """The note as stored: canonical JSON."""
        return canonical_json(self.to_document())

    @classmethod
    def from_json(cls, text: str | bytes) -> CreditNote:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise DocumentError(f"credit note: not JSON: {exc}") from None
        return cls.from_document(document)

    @classmethod
    def from_document(cls, document: object) -> CreditNote:
        check_keys(document, NOTE_KEYS, {"seal"}, "credit note")
        assert isinstance(document, Mapping)
        period = text_field(document, "period")
        lines = typed_field(document, "lines", list)
        return cls(
            id=text_field(document, "id"),
            invoice=text_field(document, "invoice"),
            customer=text_field(document, "customer"),
            period=period,
            applied_on=text_field(document, "applied_on"),
            currency=text_field(document, "currency"),
            lines=tuple(line_from_json(line, period) for line in lines),
            total=decimal_field(document, "total"),
            seal=Seal.from_json_value(document["seal"]) if "seal" in document else None,
        )


def credits_by_period(invoice: Invoice) -> dict[str, list[Fee]]:
    """The invoice's negative late lines, by the earlier period they credit, in period order."""
    credits: dict[str, list[Fee]] = {}
    for fee in invoice.late:
        if fee.amount < 0:
            credits.setdefault(fee.period, []).append(fee)
    return dict(sorted(credits.items()))


def credit_note(invoice: Invoice, against: str, period: str, lines: Sequence[Fee]) -> CreditNote:
    """The note crediting `period`'s finalized invoice `against` with `lines` of `invoice`."""
    return CreditNote(
        id=f"{invoice.id}-credit-{period}",
        invoice=against,
        customer=invoice.customer,
        period=period,
        applied_on=invoice.id,
        currency=invoice.currency,
        lines=tuple(lines),
        total=sum((fee.amount for fee in lines), ZERO),
    )
