"""Regenerate the screenshots of docs/invoices.md: a finalized invoice with a credit for an
earlier period, the credit note that documents that credit, and a draft.

    PYTHONPATH=src .venv/bin/python docs/images/make_screenshots.py [--keep-html DIR]

It builds a small ledger in a temporary directory (October billed, late usage that lowers
October's volume price, November billed with the credit, December drafted), exports each
document as HTML and photographs it with headless Chromium (Debian's `chromium` package).
Dates on the documents are the day it runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import msgspec

from payoff.invoice_print import printable_html
from payoff.service import ingest_lines, invoices, plans
from payoff.store import open_store
from payoff.store.protocol import Store

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
WINDOW = "900,1280"
"""Width and height in CSS pixels: an A4 page's proportions, tall enough for every note."""
PLAN = """\
id: docs
version: 1
currency: USD
charges:
  - {name: platform, type: subscription, amount: '99.00', description: Platform subscription}
  - name: input
    type: tokens
    classes: [input]
    model: volume
    tiers: [{up_to: 1000, unit_price: '0.30'}, {up_to: null, unit_price: '0.10'}]
  - name: tickets
    type: task
    task_type: support.ticket
    model: graduated
    tiers: [{up_to: 2, unit_price: '1.00'}, {up_to: null, unit_price: '0.50'}]
    description: Resolved support tickets
"""
ADDRESS = "Attn. Accounts Payable\n100 Industrial Way\nSpringfield, OR 97477\nUnited States"


def usage(id: str, time: str, tokens: int) -> bytes:
    record = {"id": id, "time": time, "customer": "acme", "provider": "openai"}
    tokens_used = {"model": "gpt-4o", "input_tokens": tokens, "output_tokens": 0}
    return msgspec.json.encode(record | tokens_used)


def ticket(id: str, time: str) -> bytes:
    record = {"record": "task", "id": id, "customer": "acme", "time": time}
    return msgspec.json.encode(record | {"type": "support.ticket", "status": "completed"})


def ingest(store: Store, *lines: bytes) -> None:
    report = ingest_lines(store, list(enumerate(lines, start=1)), workers=0)
    assert report.clean, report.problems


def billed_ledger(directory: Path) -> Store:
    """October finalized, November finalized with a credit for October, December a draft."""
    store = open_store(directory / "ledger.db")
    plan = directory / "docs.yaml"
    plan.write_text(PLAN)
    plans.apply_plan(store, plan)
    plans.add_customer(
        store, "acme", "Acme Corporation", address=ADDRESS, email="ap@acme.test",
        tax_id="US 12-3456789",
    )  # fmt: skip
    plans.subscribe(store, "acme", "docs", dt.date(2026, 10, 1))
    tickets = [ticket(f"t{i}", "2026-10-07T10:00:00Z") for i in range(3)]
    ingest(store, usage("e1", "2026-10-05T00:00:00Z", 1000), *tickets)
    invoices.run_invoices(store, "2026-10")
    invoices.act_on_invoice(store, "acme-2026-10", "finalize")
    ingest(store, usage("e2", "2026-10-06T00:00:00Z", 1), usage("e3", "2026-11-03T00:00:00Z", 2000))
    invoices.run_invoices(store, "2026-11")
    invoices.act_on_invoice(store, "acme-2026-11", "finalize")
    invoices.run_invoices(store, "2026-12")
    return store


def screenshot(page: Path, image: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is missing: apt-get install chromium")
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={WINDOW}", f"--screenshot={image}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-html", type=Path, help="Also keep the HTML pages here.")
    args = parser.parse_args()
    os.environ["PAYOFF_ISSUER"] = str(ROOT / "examples" / "issuer" / "issuer.toml")
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        store = billed_ledger(directory)
        (note,) = invoices.invoice_document(store, "acme-2026-10")["credit_notes"]
        for document_id, name in (
            ("acme-2026-11", "invoice"),
            (note["id"], "credit-note"),
            ("acme-2026-12", "invoice-draft"),
        ):
            page = directory / f"{name}.html"
            page.write_text(printable_html(invoices.printable_document(store, document_id)))
            if args.keep_html is not None:
                args.keep_html.mkdir(parents=True, exist_ok=True)
                shutil.copy(page, args.keep_html / page.name)
            screenshot(page, IMAGES / f"{name}.png")
            print(f"wrote {IMAGES / f'{name}.png'}")
        store.close()


if __name__ == "__main__":
    main()
