"""The credit commands: grant credit to a customer's wallet, show its balance and ledger.

Each command imports the service it calls when it runs (see `payoff.cli`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from payoff.cli import Settings, app, emit_json, out
from payoff.cli.options import AsJson
from payoff.cli.tables import Column, cells, show

LEDGER_COLUMNS = (
    Column("at", "At", "time"),
    Column("kind", "Kind", "id"),
    Column("grant", "Grant", "id"),
    Column("amount", "Amount", "exact"),
    Column("balance", "Balance", "exact"),
    Column("invoice", "Invoice", "id"),
)

credits_app = typer.Typer(help="Prepaid credits: wallets, grants, balances.", no_args_is_help=True)
app.add_typer(credits_app, name="credits")

Customer = Annotated[str, typer.Argument(help="The customer's id.")]


@credits_app.command("grant")
def credits_grant(
    ctx: typer.Context,
    customer: Customer,
    amount: Annotated[str, typer.Argument(help="Decimal amount, exact to the minor unit.")],
    expires: Annotated[
        str | None, typer.Option(help="Expiry: a day (its first instant, UTC) or a UTC time.")
    ] = None,
    priority: Annotated[int, typer.Option(help="Drawn in order: 1 before 2 (1-1000).")] = 100,
    promo: Annotated[bool, typer.Option("--promo", help="Promotional, not paid.")] = False,
    effective: Annotated[
        str | None, typer.Option(help="When it takes effect (default: now): a day or UTC time.")
    ] = None,
    grant_id: Annotated[
        str | None, typer.Option("--id", help="The grant's id: sent twice, one grant.")
    ] = None,
    currency: Annotated[
        str | None, typer.Option(help="ISO 4217 code (default: the wallet's, else the plan's).")
    ] = None,
    top_up: Annotated[bool, typer.Option("--top-up", help="Record it as a paid top-up.")] = False,
) -> None:
    """Grant credit to a customer's wallet."""
    from payoff.service import credits

    settings: Settings = ctx.obj
    terms = credits.GrantTerms(
        grant_id=grant_id,
        currency=currency,
        priority=priority,
        promo=promo,
        effective_at_us=None if effective is None else credits.moment_us(effective, "--effective"),
        expires_at_us=None if expires is None else credits.moment_us(expires, "--expires"),
        top_up=top_up,
    )
    entry = credits.grant_credits(settings.store(create=False), customer, amount, terms)
    shown = credits.entry_json(entry)
    out.print(
        f"granted {shown['amount']} {shown['currency']} to {customer} as {entry.id}", markup=False
    )


@credits_app.command("balance")
def credits_balance(ctx: typer.Context, customer: Customer, as_json: AsJson = False) -> None:
    """Show a wallet's balance, the credit pending and the credit available now."""
    from payoff.service import credits

    settings: Settings = ctx.obj
    balance = credits.wallet_balance(settings.store(create=False), customer)
    if as_json:
        emit_json(balance)
        return
    out.print(
        f"{customer}: balance {balance['balance']} {balance['currency']}, "
        f"pending {balance['pending']}, available {balance['available']}",
        markup=False,
    )


@credits_app.command("ledger")
def credits_ledger(ctx: typer.Context, customer: Customer, as_json: AsJson = False) -> None:
    """List a wallet's entries, oldest first, each with the balance after it."""
    from payoff.service import credits

    settings: Settings = ctx.obj
    rows = credits.wallet_ledger(settings.store(create=False), customer)
    if as_json:
        emit_json(rows)
        return
    shown = [{**row, "invoice": row["invoice"] or "-"} for row in rows]
    show(out, f"Credits of {customer}", LEDGER_COLUMNS, [cells(r, LEDGER_COLUMNS) for r in shown])


@credits_app.command("limit")
def credits_limit(
    ctx: typer.Context,
    customer: Customer,
    soft: Annotated[
        str | None, typer.Option(help="Soft limit: reservations past it are held, and say so.")
    ] = None,
    hard: Annotated[
        str | None, typer.Option(help="Hard limit: reservations past it are refused.")
    ] = None,
) -> None:
    """Set a customer's spend limits for a period: its spend so far plus what is reserved."""
    from payoff.service import reservations

    settings: Settings = ctx.obj
    limit = reservations.set_spend_limit(settings.store(create=False), customer, soft, hard)
    out.print(
        f"{customer}: soft limit {limit['soft'] or 'none'}, hard limit {limit['hard'] or 'none'} "
        f"{limit['currency']}",
        markup=False,
    )
