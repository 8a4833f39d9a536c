"""Bundles: one invoice and everything it was computed from, written for its customer, and
a bundle checked offline, with payoff and nothing else (no ledger).

    payoff export-bundle --customer C --period P --output FILE
      ledger ──the invoice, the credit notes issued with it, its rows──▶ FILE (core.bundle)

    payoff verify-bundle FILE
      FILE ──read_bundle──▶ rows ──check_bundle (re-derived, to the byte)──▶ mismatches
           ──each event priced again from the catalog and overrides the bundle names──▶

What a crash can lose: nothing; the ledger is only read, and FILE is written beside itself
under a hidden name and renamed once complete, so it never holds half a bundle.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import msgspec

from payoff.catalog import Catalog, Override
from payoff.core.buckets import COST_FROM_CATALOG, COST_FROM_RECORD
from payoff.core.bundle import Bundle, bundle_lines, check_bundle, header, read_bundle
from payoff.core.canonical import DocumentError
from payoff.core.ledger_rows import EventRow, LedgerRows, lines_digest
from payoff.core.periods import iso_from_us
from payoff.core.statuses import BILLED_STATUSES
from payoff.core.tokens import TokenCounts
from payoff.core.verification import Mismatch
from payoff.nesting import too_deep, too_deep_reason
from payoff.service.clock import now_us
from payoff.service.derivation import invoice_rows_and_repriced, plans_of, window_mismatches
from payoff.service.plans import BillingError, InvoiceNotFound
from payoff.store.protocol import VerifiedBillingStore


@dataclass(frozen=True)
class Exported:
    """A bundle written: where, for which invoice, and what it holds."""

    path: Path
    invoice: str
    documents: int
    rows: int
    size_bytes: int
    records_digest: str


def export_bundle(
    store: VerifiedBillingStore, customer: str, period: str, output: Path, catalog: Catalog
) -> Exported:
    """Write the bundle of a customer's finalized invoice for a period to `output`."""
    found = store.list_invoices(customer, period, statuses=BILLED_STATUSES, limit=None)
    if not found:
        raise InvoiceNotFound(f"no finalized invoice of {customer!r} for {period}")
    invoice = found[-1].invoice
    if invoice.seal is None:
        raise BillingError(
            f"invoice {invoice.id} was finalized before invoices were sealed with the digest "
            "of their rows: a bundle of it could not be checked"
        )
    rows, repriced = invoice_rows_and_repriced(store, invoice)
    notes = [
        n.to_json() for n in store.credit_notes(customer=customer) if n.applied_on == invoice.id
    ]
    text = invoice.to_json()
    prices = _prices(store, rows, repriced, catalog)
    head = header(
        invoice,
        text,
        len(notes),
        rows,
        prices[0],
        iso_from_us(now_us()),
        f"payoff {version('payoff')}",
        repriced,
        prices[1:],
    )
    size = _write(output, bundle_lines(head, text, notes, rows))
    return Exported(output, head["number"] or invoice.id, 1 + len(notes), rows.count(), size,
                    head["records_digest"])  # fmt: skip


def _prices(
    store: VerifiedBillingStore, rows: LedgerRows, repriced: tuple[str, ...], catalog: Catalog
) -> list[dict[str, Any]]:
    """The catalogs and overrides that priced the invoice's costs (as the ledger recorded
    them beside each cost), the catalog of this process when none did."""
    skipped = set(repriced)
    used = store.price_catalogs_of([e.id for e in rows.events if e.id not in skipped])
    if not used:
        return [{"catalog": Catalog.source(), "overrides": msgspec.to_builtins(catalog.overrides)}]
    return [
        {"catalog": source, "overrides": json.loads(overrides) if overrides else []}
        for source, overrides in used
    ]


def _write(output: Path, lines: Any) -> int:
    """Write the lines beside `output` under a hidden name, then rename it `output`."""
    if not output.parent.is_dir():
        raise BillingError(f"cannot write {output}: folder {output.parent} does not exist")
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        with partial.open("w", encoding="ascii", newline="\n") as file:
            for line in lines:
                file.write(line + "\n")
        os.replace(partial, output)
    except OSError as exc:
        raise BillingError(f"cannot write {output}: {exc.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)
    return output.stat().st_size


@dataclass
class BundleCheck:
    """What checking a bundle found."""

    invoice: str
    rows: int
    records_digest: str
    """Of the rows the file holds."""
    events_priced: int = 0
    """Events whose cost was priced again from the catalog and overrides."""
    mismatches: list[Mismatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def check_bundle_file(path: Path) -> BundleCheck:
    """Re-derive a bundle's invoice from the bundle alone and compare it to the byte."""
    bundle = read_bundle(_lines(path))
    label = bundle.label
    plans, mismatches = plans_of(bundle.rows, label)
    mismatches += window_mismatches(bundle.invoice, bundle.rows, label)
    mismatches += check_bundle(bundle, plans)
    result = BundleCheck(label, len(bundle.row_lines), lines_digest(bundle.row_lines))
    result.mismatches = mismatches
    _check_costs(bundle, result)
    return result


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_bytes().decode("ascii")
    except OSError as exc:
        raise DocumentError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{path}: not a bundle: byte {exc.start} is not ASCII") from None
    if not text.endswith("\n"):
        raise DocumentError(f"{path}: cut short: the last line has no newline")
    lines = text[:-1].split("\n")
    for number, line in enumerate(lines, start=1):
        if too_deep(line):  # before any line is decoded: decoders recurse once a level
            raise DocumentError(f"{path}: line {number}: {too_deep_reason()}")
    return lines


def _check_costs(bundle: Bundle, result: BundleCheck) -> None:
    """Price each event again from the catalog and overrides the bundle names (an event
    matches when one of the catalogs it names gives its cost)."""
    named = [bundle.header.get("prices"), *bundle.header.get("other_prices", ())]
    installed = Catalog.source()
    catalogs = []
    for index, prices in enumerate(named):
        key = "prices" if index == 0 else f"other_prices[{index - 1}]"
        if not isinstance(prices, dict) or prices.get("catalog") != installed:
            found = prices.get("catalog") if isinstance(prices, dict) else None
            result.notes.append(
                f"costs not priced again: the bundle was priced with {found}, this payoff has "
                f"{installed}"
            )
            return
        try:
            overrides = msgspec.convert(prices.get("overrides", []), list[Override])
        except msgspec.ValidationError as exc:
            raise DocumentError(f"line 1: {key}.overrides: {exc}") from None
        catalogs.append(Catalog(overrides))
    repriced = set(bundle.header.get("repriced_since", ()))
    if repriced:
        result.notes.append(
            f"{len(repriced)} event(s) not priced again: re-priced after the invoice, their "
            "cost is the one that held then, from earlier prices than the bundle names"
        )
    for event in bundle.rows.events:
        if event.id in repriced:
            continue
        found = (event.cost_nanousd, event.cost_visible_nanousd, event.cost_source)
        expected = [event_cost(catalog, event) for catalog in catalogs]
        if found not in expected:
            result.mismatches.append(
                Mismatch(f"event {event.id}", "cost (nano-USD, visible, source)",
                         " or ".join(map(str, expected)), str(found))
            )  # fmt: skip
        result.events_priced += 1


def event_cost(catalog: Catalog, event: EventRow) -> tuple[int | None, int | None, str | None]:
    """(cost, visible cost, source) of an event as ingest costs it (`payoff.rows`): a cost
    the record gave, else the catalog's price of a model call, else unknown."""
    if event.cost_given_nanousd is not None:
        return event.cost_given_nanousd, 0, COST_FROM_RECORD
    if event.kind != "llm" or event.provider is None or event.model is None:
        return None, None, None
    table = catalog.price_table(event.provider, event.model, event.batch, event.occurred_at_us)
    if table is None:
        return None, None, None
    counts = TokenCounts(
        event.input_tokens,
        event.cache_read_tokens,
        event.cache_write_tokens,
        event.output_tokens,
        event.reasoning_tokens,
    )
    cost, visible = table.cost_nanousd(counts, visible=event.visible)
    return cost, visible, COST_FROM_CATALOG
