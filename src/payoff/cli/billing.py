"""The billing commands: plans, customers, subscriptions, subscribe, quote, invoice.

Each command imports the service it calls when it runs (see `payoff.cli`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from payoff.cli import Settings, app, emit_json, err, out
from payoff.cli.options import AsJson
from payoff.cli.tables import Column, cells, show
from payoff.core.errors import PayoffError
from payoff.core.periods import to_us

CHARGE_COLUMNS = (
    Column("name", "Charge", "id"),
    Column("type", "Type", "id"),
    Column("counts", "Counts"),
    Column("price", "Price"),
    Column("free", "Free units", "exact"),
)
CUSTOMER_COLUMNS = (
    Column("id", "Customer", "id"),
    Column("name", "Name"),
    Column("created_at", "Added", "time"),
    Column("plan", "Plan now", "id"),
)
CUSTOMER_INVOICE_COLUMNS = (
    Column("id", "Invoice", "id"),
    Column("period", "Period", "id"),
    Column("status", "Status", "id"),
    Column("currency", "Currency", "id"),
    Column("total", "Total", "exact"),
)
SUBSCRIPTION_COLUMNS = (
    Column("customer", "Customer", "id"),
    Column("plan", "Plan", "id"),
    Column("starts_at", "Starts", "time"),
    Column("ends_at", "Ends", "time"),
)

plans_app = typer.Typer(help="Versioned, immutable price plans.", no_args_is_help=True)
customers_app = typer.Typer(help="Billed accounts.", no_args_is_help=True)
subscriptions_app = typer.Typer(help="Customers on plans, from a day.", no_args_is_help=True)
invoice_app = typer.Typer(
    help="Invoices: run, finalize, pay, void, show, export.", no_args_is_help=True
)
app.add_typer(plans_app, name="plans")
app.add_typer(customers_app, name="customers")
app.add_typer(subscriptions_app, name="subscriptions")
app.add_typer(invoice_app, name="invoice")


@plans_app.command("apply")
def plans_apply(
    ctx: typer.Context, file: Annotated[Path, typer.Argument(help="Plan YAML.")]
) -> None:
    """Store a plan version; the same (id, version) with another body is refused."""
    from payoff.service import plans

    settings: Settings = ctx.obj
    plan, created, warnings = plans.apply_plan(settings.store(), file)
    for warning in warnings:
        err.print(f"warning: {warning}", markup=False)
    state = "applied" if created else "unchanged (already applied)"
    out.print(f"plan {plan.id}@{plan.version} {state}", markup=False)


PLAN_COLUMNS = (
    Column("id", "Plan", "id"),
    Column("version", "Version", "count"),
    Column("currency", "Currency", "id"),
    Column("charges", "Charges"),
)


@plans_app.command("list")
def plans_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List every plan version."""
    from payoff.service import plans

    settings: Settings = ctx.obj
    rows = plans.list_plans(settings.store(create=False))
    if as_json:
        emit_json(rows)
        return
    shown = [{**row, "charges": ", ".join(row["charges"])} for row in rows]
    show(out, "Plans", PLAN_COLUMNS, [cells(row, PLAN_COLUMNS) for row in shown])


@plans_app.command("show")
def plans_show(
    ctx: typer.Context,
    plan: Annotated[str, typer.Argument(help="PLAN_ID (the latest version) or PLAN_ID@VERSION.")],
    as_json: AsJson = False,
) -> None:
    """Show a plan version: its charges, what each counts and how it is priced."""
    from payoff.service import plans

    settings: Settings = ctx.obj
    document = plans.show_plan(settings.store(create=False), plan)
    if as_json:
        emit_json(document)
        return
    body = document["body"]
    limits = "".join(
        f", {key} {body[key]}" for key in ("minimum", "maximum") if body.get(key) is not None
    )
    out.print(
        f"plan {document['id']}@{document['version']}: amounts in {document['currency']}{limits}",
        markup=False,
    )
    show(out, "Charges", CHARGE_COLUMNS, [list(charge_cells(c)) for c in body["charges"]])


def charge_cells(charge: dict[str, Any]) -> tuple[str, str, str, str, str]:
    """A stored plan charge (every field present, null when unset) as table cells: name,
    type, what it counts, its price, and the units free before it is charged."""
    kind = charge["type"]
    if kind == "subscription":
        counts = "each period"
    elif kind == "tokens":
        classes = charge["classes"]
        counts = " + ".join(classes) + " tokens" if classes else "all tokens"
        if charge["hidden_tokens_per_task_max"] is not None:
            budget = _count(charge["hidden_tokens_per_task_max"])
            counts += f"; hidden tokens over {budget} a task"
    elif kind == "task":
        counts = f"{charge['count']} {charge['task_type'] or 'tasks'}"
    elif charge.get("contract") is not None:
        counts = f"{charge['outcome']}, verified by contract {charge['contract']}"
    else:
        verification = charge["verification"]
        how = "as claimed" if verification == "none" else f"verified by {verification}"
        counts = f"{charge['outcome']}, {how}"
    free = "" if Decimal(charge["free_units"] or 0) == 0 else _count(charge["free_units"])
    return charge["name"], kind, counts, _price_text(charge), free


def _price_text(charge: dict[str, Any]) -> str:
    per = "" if charge["per"] in (None, "1") else f" per {_count(charge['per'])}"
    if charge["amount"] is not None:
        return f"{charge['amount']} a period"
    if charge["markup"] is not None:
        return f"provider cost x (1 + {charge['markup']})"
    if charge["tiers"]:
        tiers = "; ".join(_tier_text(tier) for tier in charge["tiers"])
        return f"{charge['model']}{per}: {tiers}"
    if charge["package_size"] is not None:
        return f"{charge['package_price']} a package of {_count(charge['package_size'])}"
    if charge["rate"] is not None:
        percent = (Decimal(charge["rate"]) * 100).normalize()
        return f"{percent:f}% of the outcome's value"
    return f"{charge['unit_price']} each{per}"


def _tier_text(tier: dict[str, Any]) -> str:
    upper = "above" if tier["up_to"] is None else f"up to {_count(tier['up_to'])}"
    flat = "" if Decimal(tier.get("flat") or 0) == 0 else f" + {tier['flat']} flat"
    return f"{upper} at {tier['unit_price']}{flat}"


def _count(text: str | int) -> str:
    """A quantity with thousands separators (3,000,000), as exact as it is written."""
    value = Decimal(text)
    return f"{int(value):,}" if value == value.to_integral_value() else str(value)


@customers_app.command("list")
def customers_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List customers: id, name, when added, and the plan they are on now."""
    from payoff.service import plans
    from payoff.store.billing import MAX_CUSTOMERS_LISTED

    settings: Settings = ctx.obj
    rows = plans.list_customers(settings.store(create=False))
    if len(rows) >= MAX_CUSTOMERS_LISTED:
        err.print(f"showing the first {MAX_CUSTOMERS_LISTED:,} customers")
    if as_json:
        emit_json(rows)
        return
    shown = [{**row, "name": row["name"] or "", "plan": row["plan"] or "-"} for row in rows]
    show(out, "Customers", CUSTOMER_COLUMNS, [cells(row, CUSTOMER_COLUMNS) for row in shown])


@customers_app.command("show")
def customers_show(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="The customer's id.")],
    as_json: AsJson = False,
) -> None:
    """Show a customer with its subscriptions and invoices."""
    from payoff.service import plans

    settings: Settings = ctx.obj
    document = plans.show_customer(settings.store(create=False), customer)
    if as_json:
        emit_json(document)
        return
    name = f" ({document['name']})" if document["name"] else ""
    out.print(
        f"customer {document['id']}{name}, added {document['created_at']}, "
        f"on {document['plan'] or 'no plan'} now",
        markup=False,
    )
    print_subscriptions(document["subscriptions"])
    show(
        out,
        "Invoices",
        CUSTOMER_INVOICE_COLUMNS,
        [cells(row, CUSTOMER_INVOICE_COLUMNS) for row in document["invoices"]],
    )


@subscriptions_app.command("list")
def subscriptions_list(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="Only this customer.")] = None,
    as_json: AsJson = False,
) -> None:
    """List subscriptions: customer, plan version, first day and first day not billed."""
    from payoff.service import plans

    settings: Settings = ctx.obj
    rows = plans.list_subscriptions(settings.store(create=False), customer)
    if as_json:
        emit_json(rows)
        return
    print_subscriptions(rows)


def print_subscriptions(rows: list[dict[str, Any]]) -> None:
    shown = [{**row, "ends_at": row["ends_at"] or "-"} for row in rows]
    show(
        out, "Subscriptions", SUBSCRIPTION_COLUMNS, [cells(r, SUBSCRIPTION_COLUMNS) for r in shown]
    )


@customers_app.command("add")
def customers_add(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="The customer's external id.")],
    name: Annotated[str | None, typer.Option(help="The name printed on invoices.")] = None,
    address: Annotated[
        str | None, typer.Option(help="Postal address; \\n or new lines separate lines.")
    ] = None,
    email: Annotated[str | None, typer.Option(help="Billing email address.")] = None,
    tax_id: Annotated[str | None, typer.Option("--tax-id", help="VAT or tax number.")] = None,
) -> None:
    """Add a customer, or update its name and contact details (printed on invoices)."""
    from payoff.service import plans

    settings: Settings = ctx.obj
    address = None if address is None else address.replace("\\n", "\n")
    created = plans.add_customer(
        settings.store(), customer, name, address=address, email=email, tax_id=tax_id
    )
    out.print(f"customer {customer} {'added' if created else 'updated'}", markup=False)


def parse_day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"a date is YYYY-MM-DD, got {value!r}") from None


@app.command()
def subscribe(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="The customer's id.")],
    plan: Annotated[str, typer.Argument(help="PLAN_ID or PLAN_ID@VERSION (default: latest).")],
    starts: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")],
    create: Annotated[
        bool, typer.Option("--create", help="Add the customer if it is not registered yet.")
    ] = False,
) -> None:
    """Put a customer on a plan version from a date; the previous subscription ends then.

    The customer must be registered (`payoff customers add`) unless --create is given: a
    mistyped id must not become a billed customer.
    """
    from payoff.service import plans

    settings: Settings = ctx.obj
    chosen = plans.subscribe(settings.store(), customer, plan, parse_day(starts), create=create)
    out.print(f"{customer} on {chosen.id}@{chosen.version} from {starts}", markup=False)


@app.command()
def unsubscribe(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="The customer's id.")],
    ends: Annotated[str, typer.Option("--from", help="First day not billed, YYYY-MM-DD (UTC).")],
) -> None:
    """End a customer's subscription; it is billed up to the day before."""
    from payoff.service import plans

    settings: Settings = ctx.obj
    plans.unsubscribe(settings.store(create=False), customer, parse_day(ends))
    out.print(f"{customer} unsubscribed from {ends}", markup=False)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    parsed = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{what} are CHARGE=VALUE, got {item!r}")
        parsed[name] = value
    return parsed


def _decimal(text: str, where: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"{where}: {text!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise typer.BadParameter(f"{where}: {text!r} must be a non-negative number")
    return value


@app.command()
def quote(
    plan_file: Annotated[Path, typer.Argument(help="Plan YAML (need not be applied).")],
    units: Annotated[
        list[str] | None,
        typer.Option("--units", help="CHARGE=QTY, repeatable (cost-plus: provider cost in USD)."),
    ] = None,
    values: Annotated[
        list[str] | None,
        typer.Option("--values", help="CHARGE=V1,V2,... outcome values for a percentage charge."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Price a plan for given units, without a ledger: a price calculator."""
    from payoff.plan_files import load_plan
    from payoff.service import rating

    plan, _ = load_plan(plan_file)
    quantities = {k: _decimal(v, k) for k, v in _pairs(units or [], "units").items()}
    value_lists = {
        k: [_decimal(part, k) for part in v.split(",") if part]
        for k, v in _pairs(values or [], "values").items()
    }
    result = rating.quote_document(plan, quantities, value_lists)
    if as_json:
        emit_json(result)
        return
    _print_fees(result, plan.currency)


FEE_COLUMNS = (
    Column("charge", "Charge", "id"),
    Column("units", "Units", "exact"),
    Column("amount", "Amount", "exact"),
    Column("precise_amount", "Precise amount", "exact"),
)
TOTALS = {
    "subtotal": "Subtotal",
    "minimum_true_up": "Minimum true-up",
    "maximum_discount": "Cap discount",
    "total": "Total",
}


def _print_fees(document: dict[str, Any], currency: str) -> None:
    rows = []
    for fee in document["fees"]:
        late = f" (late, {fee['late_period']})" if "late_period" in fee else ""
        rows.append(cells({**fee, "charge": fee["charge"] + late}, FEE_COLUMNS))
    for key, label in TOTALS.items():
        rows.append([label, "", document[key], ""])
    show(out, f"Fees, {currency}", FEE_COLUMNS, rows)


def parse_as_of(value: str | None) -> int | None:
    """An RFC 3339 `--as-of` time in microseconds since the epoch (None: now)."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"--as-of is an RFC 3339 time, got {value!r}") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("--as-of needs a time-zone offset (e.g. Z)")
    return to_us(moment)


INVOICE_COLUMNS = (
    Column("id", "Invoice", "id"),
    Column("customer", "Customer", "id"),
    Column("period", "Period", "id"),
    Column("status", "Status", "id"),
    Column("total", "Total", "exact"),
    Column("currency", "Currency", "id"),
)
INVOICE_LIST_COLUMNS = (
    INVOICE_COLUMNS[0],
    Column("number", "Number"),
    *INVOICE_COLUMNS[1:5],
    Column("amount_due", "Amount due", "exact"),
    INVOICE_COLUMNS[5],
)


@invoice_app.command("run")
def invoice_run(
    ctx: typer.Context,
    period: Annotated[str, typer.Option(help="The period, YYYY-MM.")],
    customer: Annotated[str | None, typer.Option(help="Only this customer.")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Rate what the ledger held at this time (RFC 3339); default now."
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Make draft invoices for a period from the ledger (replacing earlier drafts).

    A customer that cannot be rated is named on stderr (exit status 1); the others' drafts
    are made all the same. Usage a filtered plan bills to no charge is named as unbilled
    (in --json, the draft's `unbilled`). Compute charges read GPU figures from --prices.
    """
    from payoff.service import invoices

    settings: Settings = ctx.obj
    overrides = settings.overrides()
    store = settings.store(create=False)
    run = invoices.invoice_run(store, period, customer, parse_as_of(as_of), overrides)
    documents = run.drafts
    if as_json:
        emit_json(documents)
    else:
        columns = (*INVOICE_COLUMNS[:2], Column("plan", "Plan", "id"), *INVOICE_COLUMNS[3:])
        rows = [cells(doc, columns) for doc in documents]
        show(out, f"Draft invoices, {period}", columns, rows)
        if not documents and not run.unrated:
            out.print("no invoices: no subscription in that period, or all are finalized")
        for doc in documents:
            for row in doc.get("unbilled", ()):
                out.print(_unbilled_line(doc["customer"], row), markup=False, highlight=False)
    for name, why in sorted(run.unrated.items()):
        err.print(f"error: {name} not invoiced: {why}", markup=False, highlight=False)
    if run.unrated:
        raise typer.Exit(1)


def _unbilled_line(customer: str, row: dict[str, Any]) -> str:
    """One key of unbilled usage: no charge of the customer's filtered plan matches it."""
    key = ", ".join(
        f"{name} {row[name]}" if row[name] is not None else f"no {name}"
        for name in ("provider", "model", "task_type")
    )
    tokens = ", ".join(f"{count} {name}" for name, count in row["tokens"].items())
    return f"unbilled: {customer}: {key}: {tokens} tokens match no charge"


def _lifecycle(action: str, help_text: str) -> None:
    def command(
        ctx: typer.Context,
        invoice_id: Annotated[str, typer.Argument(help="The invoice id.")],
    ) -> None:
        from payoff.service import invoices

        settings: Settings = ctx.obj
        result = invoices.act_on_invoice(settings.store(create=False), invoice_id, action)
        out.print(f"invoice {invoice_id} {result['status']}", markup=False)
        if action == "finalize":
            _print_header(result)

    command.__doc__ = help_text
    invoice_app.command(action)(command)


_lifecycle("finalize", "Finalize a draft invoice: from now on it is never edited.")
_lifecycle("pay", "Mark a finalized invoice paid.")
_lifecycle("void", "Void a finalized invoice; a new draft for its period can then be run.")


@invoice_app.command("show")
def invoice_show(
    ctx: typer.Context,
    invoice_id: Annotated[str, typer.Argument(help="The invoice id.")],
    as_json: AsJson = False,
) -> None:
    """Show one invoice."""
    from payoff.service import invoices

    settings: Settings = ctx.obj
    document = invoices.invoice_document(settings.store(create=False), invoice_id)
    if as_json:
        emit_json(document)
        return
    out.print(
        f"{document['id']}  {document['customer']}  {document['period']}  "
        f"{document['plan']}  {document['status']}",
        markup=False,
    )
    _print_header(document)
    _print_fees(document, document["currency"])


def _print_header(document: dict[str, Any]) -> None:
    """Number and dates (once finalized), then total, tax and amount due."""
    currency = document["currency"]
    if "number" in document:
        out.print(
            f"Number {document['number']}  issued {document['issued_on']}  "
            f"due {document['due_on']}",
            markup=False,
        )
    tax = document["tax"]
    taxed = "no tax" if tax is None else f"{tax['label']} ({_percent(tax['rate'])}) {tax['amount']}"
    out.print(
        f"Total {document['total']} {currency}  {taxed}  "
        f"Amount due {document['amount_due']} {currency}",
        markup=False,
    )


def _percent(fraction: str) -> str:
    return f"{format((Decimal(fraction) * 100).normalize(), 'f')} %"


@invoice_app.command("list")
def invoice_list(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="Only this customer.")] = None,
    period: Annotated[str | None, typer.Option(help="Only this period, YYYY-MM.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    as_json: AsJson = False,
) -> None:
    """List invoices."""
    from payoff.service import invoices

    settings: Settings = ctx.obj
    found = invoices.list_invoices(settings.store(create=False), customer, period, status)
    if as_json:
        emit_json(found)
        return
    rows = [cells({"number": "", **doc}, INVOICE_LIST_COLUMNS) for doc in found]
    show(out, "Invoices", INVOICE_LIST_COLUMNS, rows)


@invoice_app.command("export")
def invoice_export(
    ctx: typer.Context,
    invoice_id: Annotated[
        str, typer.Argument(help="An invoice id (or, for html and pdf, a credit note id).")
    ],
    fmt: Annotated[str, typer.Option("--format", help="json, csv, html or pdf.")] = "json",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Export an invoice as JSON or CSV, or an invoice or credit note as a document for the
    customer: one self-contained HTML page, or PDF. The issuer printed on it comes from the
    PAYOFF_ISSUER settings file (see docs/invoices.md)."""
    from payoff.service import invoices

    settings: Settings = ctx.obj
    if fmt not in EXPORT_FORMATS:
        raise typer.BadParameter(f"--format is one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    store = settings.store(create=False)
    data: str | bytes
    if fmt in ("json", "csv"):
        document = invoices.invoice_document(store, invoice_id)
        data = invoices.invoice_json(document) if fmt == "json" else invoice_csv(document)
    else:
        from payoff.invoice_print import printable_html, printable_pdf

        page = printable_html(invoices.printable_document(store, invoice_id))
        data = page if fmt == "html" else printable_pdf(page)
    _write(data, output)


EXPORT_FORMATS = ("json", "csv", "html", "pdf")


def _write(data: str | bytes, output: Path | None) -> None:
    if output is None:
        if isinstance(data, bytes):
            out.file.flush()
            sys.stdout.buffer.write(data)
        else:
            out.file.write(data)
        return
    try:
        output.write_bytes(data) if isinstance(data, bytes) else output.write_text(data)
    except OSError as exc:
        raise PayoffError(f"cannot write {output}: {exc.strerror}") from None
    out.print(f"wrote {output}", markup=False)


def invoice_csv(document: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["invoice", "line", "late_period", "units", "amount", "precise_amount", "currency"]
    )
    for fee in document["fees"]:
        writer.writerow(
            [
                document["id"],
                fee["charge"],
                fee.get("late_period", ""),
                fee["units"],
                fee["amount"],
                fee["precise_amount"],
                document["currency"],
            ]
        )
    for key in ("subtotal", "minimum_true_up", "maximum_discount", "total"):
        writer.writerow([document["id"], key, "", "", document[key], "", document["currency"]])
    return buffer.getvalue()
