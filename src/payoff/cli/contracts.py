"""The contract commands: apply, list and show outcome contracts.

Each command imports the service it calls when it runs (see `payoff.cli`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from payoff.cli import Settings, app, emit_json, out
from payoff.cli.options import AsJson
from payoff.cli.tables import Column, cells, show

contracts_app = typer.Typer(
    help="Outcome contracts: what one unit of work is and how it is verified.",
    no_args_is_help=True,
)
app.add_typer(contracts_app, name="contracts")

CONTRACT_COLUMNS = (
    Column("reference", "Contract", "id"),
    Column("outcome", "Outcome type", "id"),
    Column("unit", "Unit", "id"),
    Column("rule", "Verification"),
    Column("evidence", "Evidence"),
)


@contracts_app.command("apply")
def contracts_apply(
    ctx: typer.Context, file: Annotated[Path, typer.Argument(help="Contract YAML.")]
) -> None:
    """Store a contract version; the same (id, version) with another body is refused."""
    from payoff.service import contracts

    settings: Settings = ctx.obj
    contract, created = contracts.apply_contract(settings.store(), file)
    state = "applied" if created else "unchanged (already applied)"
    out.print(f"contract {contract.reference} {state}", markup=False)


@contracts_app.command("list")
def contracts_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List every contract version."""
    from payoff.service import contracts

    settings: Settings = ctx.obj
    rows = contracts.list_contracts(settings.store(create=False))
    if as_json:
        emit_json(rows)
        return
    show(out, "Contracts", CONTRACT_COLUMNS, [cells(_shown(row), CONTRACT_COLUMNS) for row in rows])


@contracts_app.command("show")
def contracts_show(
    ctx: typer.Context,
    contract: Annotated[
        str, typer.Argument(help="CONTRACT_ID (the latest version) or CONTRACT_ID@VERSION.")
    ],
    as_json: AsJson = False,
) -> None:
    """Show a contract version: its outcome type, unit, evidence and verification rule."""
    from payoff.service import contracts

    settings: Settings = ctx.obj
    document = contracts.show_contract(settings.store(create=False), contract)
    if as_json:
        emit_json(document)
        return
    show(out, "Contract", CONTRACT_COLUMNS, [cells(_shown(document), CONTRACT_COLUMNS)])
    description = document["body"].get("description")
    if description:
        out.print(description, markup=False)


def _shown(row: dict[str, object]) -> dict[str, object]:
    unit = row["unit"]
    assert isinstance(unit, dict)
    evidence = row["evidence"]
    assert isinstance(evidence, list)
    return {
        **row,
        "reference": f"{row['id']}@{row['version']}",
        "unit": f"{unit['singular']} / {unit['plural']}",
        "evidence": ", ".join(evidence) or "none",
    }
