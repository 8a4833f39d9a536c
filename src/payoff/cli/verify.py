"""Proving invoices: `payoff verify` over the ledger, and a customer's bundle written and
checked (`payoff export-bundle`, `payoff verify-bundle`).

Each command imports the service it calls when it runs (see `payoff.cli`).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from payoff.cli import Settings, app, emit_json, out
from payoff.cli.options import AsJson
from payoff.core.periods import Period

if TYPE_CHECKING:
    from payoff.service.verify import Verification


def _month(value: str | None) -> str | None:
    """A period option: YYYY-MM, checked when given."""
    if value is not None:
        try:
            Period.month(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


@app.command()
def verify(
    ctx: typer.Context,
    period: Annotated[
        str | None,
        typer.Option(help="Re-derive only this period's invoices (YYYY-MM).", callback=_month),
    ] = None,
    customer: Annotated[str | None, typer.Option(help="Re-derive only this customer's.")] = None,
    as_json: AsJson = False,
) -> None:
    """Prove the ledger: re-derive each finalized invoice and credit note from the records,
    verdicts and plan versions it was computed from, check the hash chain of finalized
    documents, the database's integrity, and the daily rollups rating reads against the
    events they sum.

    Exit status 0 when everything is as issued; 1 when anything is not, each mismatch
    named (document, what differs, expected as issued, found as the ledger gives it now).
    The chain and the file are always checked whole; --period and --customer narrow what
    is re-derived. The ledger is only read.
    """
    from payoff.service.verify import verify_ledger

    settings: Settings = ctx.obj
    store = settings.store(create=False)
    try:
        result = verify_ledger(store, period, customer)
    finally:
        store.close()
    if as_json:
        emit_json(
            {
                "ok": result.ok,
                "invoices": result.invoices,
                "credit_notes": result.credit_notes,
                "chained": result.chained,
                "rows": result.rows,
                "mismatches": [asdict(m) for m in result.mismatches],
                "not_rederived": result.not_rederived,
                "integrity": result.integrity,
                "rollups": result.rollups,
            }
        )
    else:
        _print(result)
    raise typer.Exit(0 if result.ok else 1)


def _print(result: Verification) -> None:
    for mismatch in result.mismatches:
        out.print(f"mismatch: {mismatch}", markup=False, highlight=False, soft_wrap=True)
    for problem in result.integrity:
        out.print(f"integrity: {problem}", markup=False, highlight=False, soft_wrap=True)
    for problem in result.rollups:
        out.print(f"rollups: {problem}", markup=False, highlight=False, soft_wrap=True)
    for note in result.not_rederived:
        out.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    summary = (
        f"{_plural(result.invoices, 'invoice')} and {_plural(result.credit_notes, 'credit note')}"
        f" re-derived from {_plural(result.rows, 'ledger row')}; a chain of "
        f"{_plural(result.chained, 'document')}; integrity check "
        + ("ok" if not result.integrity else "failed")
        + ("; rollups agree with the events" if not result.rollups else "; rollups differ")
    )
    if result.ok:
        out.print(f"verified: {summary}", markup=False, highlight=False)
    else:
        count = _plural(len(result.mismatches), "mismatch").replace("mismatchs", "mismatches")
        out.print(
            f"NOT VERIFIED: {count} (expected: as issued; found: as the ledger gives it now); "
            f"{summary}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@app.command("export-bundle")
def export_bundle(
    ctx: typer.Context,
    customer: Annotated[str, typer.Option(help="The customer whose invoice it is.")],
    period: Annotated[str, typer.Option(help="The invoice's period (YYYY-MM).", callback=_month)],
    output: Annotated[Path, typer.Option(help="The bundle file to write (JSON Lines).")],
) -> None:
    """Write one file holding a finalized invoice and what it was computed from (the
    customer's records, the verdicts, the plan versions, the prices used at ingest, the
    credit notes issued with it), for the customer to check with `payoff verify-bundle`.

    The prices named are those of this payoff's catalog and --prices: give the same
    overrides file the records were ingested with.
    """
    from payoff.service import bundles

    settings: Settings = ctx.obj
    store = settings.store(create=False)
    try:
        written = bundles.export_bundle(store, customer, period, output, settings.catalog())
    finally:
        store.close()
    out.print(
        f"wrote {written.path} ({written.size_bytes:,} bytes): invoice {written.invoice}, "
        f"{_plural(written.documents, 'document')}, {_plural(written.rows, 'ledger row')}; "
        f"records digest {written.records_digest}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command("verify-bundle")
def verify_bundle(
    file: Annotated[Path, typer.Argument(help="A bundle written by `payoff export-bundle`.")],
    as_json: AsJson = False,
) -> None:
    """Re-derive a bundle's invoice from the bundle alone (no ledger, offline) and say
    whether it matches the invoice byte for byte; each event's cost is priced again from
    the catalog and the overrides the bundle names.

    Exit status 0 on a match; 1 with each difference named (expected: what the invoice
    says; found: what the bundle's records give).
    """
    from payoff.service import bundles

    check = bundles.check_bundle_file(file)
    if as_json:
        emit_json(
            {
                "ok": check.ok,
                "invoice": check.invoice,
                "rows": check.rows,
                "records_digest": check.records_digest,
                "events_priced": check.events_priced,
                "mismatches": [asdict(m) for m in check.mismatches],
                "notes": check.notes,
            }
        )
        raise typer.Exit(0 if check.ok else 1)
    for mismatch in check.mismatches:
        out.print(f"mismatch: {mismatch}", markup=False, highlight=False, soft_wrap=True)
    for note in check.notes:
        out.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    what = (
        f"invoice {check.invoice} re-derived from {_plural(check.rows, 'row')} "
        f"(records digest {check.records_digest}); "
        f"{_plural(check.events_priced, 'event')} priced again"
    )
    if check.ok:
        out.print(f"match: {what}: byte for byte", markup=False, highlight=False, soft_wrap=True)
    else:
        count = _plural(len(check.mismatches), "difference")
        out.print(f"NO MATCH: {count}; {what}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(0 if check.ok else 1)
