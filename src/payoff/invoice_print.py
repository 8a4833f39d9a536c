"""A printable invoice or credit note (`core.printable.PrintableInvoice`) as one HTML file
and as PDF.

The HTML stands alone: styles inline, the logo a data URI, no script, font or image from
anywhere else, so it can be mailed, archived or printed as it is. The PDF is that HTML
laid out by WeasyPrint (the `pdf` extra; it needs the Pango system library).
"""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal

from payoff.core.errors import Unsupported
from payoff.core.invoicing import plain
from payoff.core.printable import PrintableInvoice, PrintableLine
from payoff.extras import needs

STYLE = """
@page { size: A4; margin: 16mm 15mm 18mm; }
* { box-sizing: border-box; }
body { font: 10.5pt/1.45 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #1d2330;
  margin: 0 auto; max-width: 190mm; padding: 12mm 0; background: #fff; }
@media print { body { padding: 0; } }
header { display: flex; justify-content: space-between; align-items: flex-start;
  border-bottom: 2px solid #1d2330; padding-bottom: 6mm; }
header .issuer { max-width: 55%; }
header .issuer img { max-height: 18mm; max-width: 60mm; display: block; margin-bottom: 3mm; }
header .issuer b { font-size: 12.5pt; }
h1 { margin: 0 0 2mm; font-size: 22pt; letter-spacing: .04em; text-transform: uppercase;
  text-align: right; }
dl.meta { display: grid; grid-template-columns: auto auto; gap: .5mm 6mm; margin: 0;
  justify-content: end; }
dl.meta dt { color: #5b6475; text-align: right; }
dl.meta dd { margin: 0; font-weight: 600; text-align: right; }
.muted { color: #5b6475; }
.parties { display: flex; justify-content: space-between; margin: 7mm 0 6mm; }
.parties section { width: 48%; }
.label { font-size: 8pt; text-transform: uppercase; letter-spacing: .08em; color: #5b6475;
  margin-bottom: 1mm; }
.address { white-space: pre-line; }
table { width: 100%; border-collapse: collapse; margin-top: 2mm; table-layout: fixed; }
col.description { width: 44%; } col.quantity { width: 18%; } col.price { width: 20%; }
col.amount { width: 18%; }
th { font-size: 8pt; text-transform: uppercase; letter-spacing: .06em; color: #5b6475;
  text-align: left; border-bottom: 1px solid #1d2330; padding: 2mm 2mm; }
td { padding: 2.2mm 2mm; border-bottom: 1px solid #e3e6ec; vertical-align: top; }
.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td small { display: block; color: #5b6475; font-size: 8.5pt; }
table.totals { width: 48%; margin-left: auto; margin-top: 4mm; table-layout: auto; }
table.totals td { border: 0; padding: 1mm 2mm; }
table.totals tr.due td { border-top: 2px solid #1d2330; font-weight: 700; font-size: 12pt;
  padding-top: 2mm; }
h2 { font-size: 10.5pt; margin: 8mm 0 1mm; }
footer { margin-top: 10mm; padding-top: 3mm; border-top: 1px solid #e3e6ec; font-size: 8.5pt;
  color: #5b6475; }
.draft-banner { border: 2px solid #b42318; color: #b42318; font-weight: 700; padding: 2mm 4mm;
  margin-bottom: 5mm; text-align: center; letter-spacing: .05em; }
.watermark { position: fixed; top: 38%; left: 0; right: 0; text-align: center;
  font-size: 110pt; font-weight: 800; color: rgba(180, 35, 24, .09); transform: rotate(-28deg);
  z-index: -1; letter-spacing: .1em; }
"""


def day(value: dt.date | None) -> str:
    return "" if value is None else f"{value.day} {value:%B %Y}"


def money(amount: Decimal, currency: str) -> str:
    """An amount as written on an invoice: thousands grouped, exact, the currency after."""
    return f"{amount:,} {currency}"


def quantity(value: Decimal) -> str:
    return f"{value:,f}"


def _line(line: PrintableLine, currency: str) -> str:
    e = html.escape
    note = f"<small>{e(line.note)}</small>" if line.note else ""
    # "1 token", "2 tokens": units are written in the plural.
    unit = line.unit[:-1] if line.quantity == 1 and line.unit.endswith("s") else line.unit
    unit = f" {e(unit)}" if unit else ""
    return (
        f"<tr><td>{e(line.description)}{note}</td>"
        f"<td class=n>{e(quantity(line.quantity))}{unit}</td>"
        f"<td class=n>{e(line.unit_price)}</td>"
        f"<td class=n>{e(money(line.amount, currency))}</td></tr>"
    )


def _lines_table(lines: tuple[PrintableLine, ...], currency: str) -> str:
    rows = "".join(_line(line, currency) for line in lines)
    return (
        "<table><colgroup><col class=description><col class=quantity><col class=price>"
        "<col class=amount></colgroup><thead><tr><th>Description</th><th class=n>Quantity</th>"
        f"<th class=n>Unit price ({html.escape(currency)})</th><th class=n>Amount</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _references(doc: PrintableInvoice) -> str:
    if not doc.references:
        return ""
    e = html.escape
    if doc.kind == "credit_note":
        (ref,) = doc.references
        deducted = (
            f" It is deducted once, on invoice <b>{e(doc.deducted_on.name)}</b>, under "
            "&ldquo;Credits for earlier periods&rdquo;."
            if doc.deducted_on is not None
            else ""
        )
        return (
            f"<p>This credit note corrects invoice <b>{e(ref.name)}</b>"
            f"{' of ' + e(day(ref.date)) if ref.date else ''} "
            f"({e(money(ref.amount, doc.currency))}).{deducted}</p>"
        )
    rows = "".join(
        f"<tr><td>Credit note {e(ref.name)}</td><td class=n>{e(day(ref.date))}</td>"
        f"<td>{e(ref.deducted_on or '')}</td>"
        f"<td class=n>{e(money(ref.amount, doc.currency))}</td></tr>"
        for ref in doc.references
    )
    return (
        "<h2>Credit notes issued against this invoice</h2>"
        "<table class=refs><thead><tr><th>Document</th><th class=n>Date</th>"
        "<th>Deducted on invoice</th><th class=n>Amount</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        "<p class=muted>Each credit note is deducted once, on the invoice named beside it; "
        "this invoice is not changed.</p>"
    )


def _totals(doc: PrintableInvoice) -> str:
    e, c = html.escape, doc.currency
    rows = [("Subtotal", doc.subtotal)]
    if doc.credits:
        rows.append(("Credits for earlier periods", doc.credits_total))
        rows.append(("Total before tax", doc.total_before_tax))
    if doc.tax is not None:
        rate = plain(((doc.issuer.tax_rate or Decimal(0)) * 100).normalize())
        rows.append((f"{doc.issuer.tax_label} ({rate} %)", doc.tax))
    due = "Total credited" if doc.kind == "credit_note" else "Amount due"
    body = "".join(
        f"<tr><td>{e(label)}</td><td class=n>{e(money(amount, c))}</td></tr>"
        for label, amount in rows
    )
    body += f"<tr class=due><td>{due}</td><td class=n>{e(money(doc.amount_due, c))}</td></tr>"
    return f"<table class=totals>{body}</table>"


def _meta(doc: PrintableInvoice) -> str:
    e = html.escape
    number = doc.number or ("DRAFT (numbered when finalized)" if doc.draft else doc.id)
    rows = [("Number", number)]
    if doc.issued_on is not None:
        rows.append(("Issue date", day(doc.issued_on)))
    if doc.due_on is not None:
        rows.append(("Due date", day(doc.due_on)))
    rows.append(("Period", f"{day(doc.period_start)} to {day(doc.period_end)}"))
    if doc.kind == "credit_note" and doc.references:
        rows.append(("Corrects invoice", doc.references[0].name))
    if doc.deducted_on is not None:
        rows.append(("Deducted on invoice", doc.deducted_on.name))
    if doc.status not in ("finalized", "issued", "draft"):
        rows.append(("Status", doc.status.upper()))
    return "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)


def _issuer(doc: PrintableInvoice) -> str:
    e, issuer = html.escape, doc.issuer
    logo = f'<img src="{e(doc.logo_data_uri)}" alt="">' if doc.logo_data_uri else ""
    extra = "".join(
        f"<div class=muted>{e(text)}</div>"
        for text in (
            f"Tax ID {issuer.tax_id}" if issuer.tax_id else "",
            issuer.email or "",
        )
        if text
    )
    return f"{logo}<b>{e(issuer.name)}</b><div class=address>{e(issuer.address)}</div>{extra}"


def _customer(doc: PrintableInvoice) -> str:
    e, party = html.escape, doc.customer
    extra = "".join(
        f"<div class=muted>{e(text)}</div>"
        for text in (
            f"Tax ID {party.tax_id}" if party.tax_id else "",
            party.email or "",
            f"Customer ID {party.id}",
        )
        if text
    )
    return f"<b>{e(party.name or party.id)}</b><div class=address>{e(party.address)}</div>{extra}"


def _footer(doc: PrintableInvoice) -> str:
    e = html.escape
    parts = []
    if doc.kind == "invoice" and not doc.draft:
        parts.append(
            f"Payment terms: {doc.issuer.payment_terms_days} days. Please quote "
            f"{doc.number or doc.id} with your payment."
        )
    if doc.kind == "credit_note":
        parts.append(
            "Nothing to pay."
            if doc.deducted_on is not None
            else "The amount credited is deducted from what you owe; nothing to pay."
        )
    if doc.plan:
        parts.append(f"Plan {doc.plan}. Reference {doc.id}. Computed from {doc.fingerprint}.")
    return "".join(f"<p>{e(part)}</p>" for part in parts)


def printable_html(doc: PrintableInvoice) -> str:
    """The document as one self-contained HTML page."""
    e = html.escape
    name = f"{doc.title} {doc.number or doc.id}"
    draft = (
        "<div class=watermark>DRAFT</div><div class=draft-banner>DRAFT — not a request for "
        "payment. Numbered and dated when finalized.</div>"
        if doc.draft
        else ""
    )
    credits = (
        "<h2>Credits for earlier periods</h2>"
        + _lines_table(doc.credits, doc.currency)
        + "<p class=muted>Each credit is deducted here, once. The credit note named on its "
        "line documents it against the invoice of that period; it is not deducted again.</p>"
        if doc.credits
        else ""
    )
    party = "Credit to" if doc.kind == "credit_note" else "Bill to"
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>{e(name)}</title>
<style>{STYLE}</style></head><body>
{draft}<header><div class=issuer>{_issuer(doc)}</div>
<div><h1>{e(doc.title)}</h1><dl class=meta>{_meta(doc)}</dl></div></header>
<div class=parties><section><div class=label>{party}</div>{_customer(doc)}</section>
<section><div class=label>Amounts in</div><b>{e(doc.currency)}</b></section></div>
{_lines_table(doc.lines, doc.currency)}
{credits}
{_totals(doc)}
{_references(doc)}
<footer>{_footer(doc)}</footer>
</body></html>
"""


class PdfUnavailable(Unsupported):
    """PDF cannot be made here: the Pango system library WeasyPrint needs is missing."""


def printable_pdf(page: str) -> bytes:
    """The HTML page laid out as PDF by WeasyPrint."""
    with needs("pdf", "invoice export --format pdf"):
        try:
            import weasyprint
        except OSError as exc:  # WeasyPrint loads Pango when imported
            raise PdfUnavailable(
                f"PDF needs the Pango library (apt-get install libpango-1.0-0): {exc}"
            ) from None
    pdf: bytes = weasyprint.HTML(string=page).write_pdf()
    return pdf
