"""Proving invoices: `payoff verify` over the ledger.

Each command imports the service it calls when it runs (see `payoff.cli`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from payoff.cli import Settings, app, emit_json, out
from payoff.cli.options import AsJson

if TYPE_CHECKING:
    from payoff.service.verify import Verification


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


@app.command()
def verify(
    ctx: typer.Context,
    period: Annotated[
        str | None, typer.Option(help="Re-derive only this period's invoices (YYYY-MM).")
    ] = None,
    customer: Annotated[str | None, typer.Option(help="Re-derive only this customer's.")] = None,
    as_json: AsJson = False,
) -> None:
    """Prove the ledger: re-derive each finalized invoice and credit note from the records,
    verdicts and plan versions it was computed from, check the hash chain of finalized
    documents and the database's integrity.

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
    for note in result.not_rederived:
        out.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    summary = (
        f"{_plural(result.invoices, 'invoice')} and {_plural(result.credit_notes, 'credit note')}"
        f" re-derived from {_plural(result.rows, 'ledger row')}; a chain of "
        f"{_plural(result.chained, 'document')}; integrity check "
        + ("ok" if not result.integrity else "failed")
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
