"""The hash chain: every finalized invoice and credit note carries the digest of the document
finalized before it, set in the transaction that finalizes it; documents finalized before
the chain existed are chained by the migration, in the order they were finalized."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
from alembic import command
from sqlalchemy import create_engine, text

from factories import OUTCOME_PLAN, attestation, outcome, tool_usage
from payoff.core.canonical import text_digest
from payoff.core.chain import GENESIS
from payoff.core.invoicing import Invoice
from payoff.service import ingest_lines, invoices, plans
from payoff.store import _alembic_config, open_store
from payoff.store.protocol import Store

FIXTURES = Path(__file__).parent / "fixtures" / "invoice_documents.jsonl"


def ingest(store: Store, *records: dict[str, Any]) -> None:
    lines = [(n, msgspec.json.encode(r)) for n, r in enumerate(records, start=1)]
    assert ingest_lines(store, lines, workers=0).clean


def rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture
def credited(tmp_path: Path) -> Path:
    """October billed and finalized; its outcome reversed in November, whose invoice credits
    October: a credit note issued with November's invoice."""
    path = tmp_path / "ledger.db"
    store = open_store(path)
    (tmp_path / "plan.yaml").write_text(OUTCOME_PLAN)
    plans.apply_plan(store, tmp_path / "plan.yaml")
    plans.subscribe(store, "c", "outcomes", dt.date(2026, 9, 1))
    ingest(
        store,
        tool_usage("u1", task="t1", time="2026-10-01T00:00:00Z", customer="c"),
        outcome("o1", "t1", "c", time="2026-10-02T00:00:00Z"),
        attestation("a1", "o1", "accept", "2026-10-03T00:00:00Z"),
    )
    (october,) = invoices.run_invoices(store, "2026-10")
    invoices.act_on_invoice(store, october["id"], "finalize")
    ingest(store, attestation("a2", "o1", "reverse", "2026-11-10T00:00:00Z"))
    (november,) = invoices.run_invoices(store, "2026-11")
    (tmp_path / "november-draft.json").write_text(json.dumps(november))
    invoices.act_on_invoice(store, november["id"], "finalize")
    store.close()
    return path


def test_each_finalized_document_names_the_one_finalized_before_it(credited: Path) -> None:
    chain = rows(credited, "SELECT seq, kind, document, digest FROM document_chain ORDER BY seq")
    assert [(seq, kind, document) for seq, kind, document, _ in chain] == [
        (1, "invoice", "c-2026-10"),
        (2, "invoice", "c-2026-11"),
        (3, "credit_note", "c-2026-11-credit-2026-10"),
    ]
    texts = dict(rows(credited, "SELECT id, document FROM invoices"))
    texts |= dict(rows(credited, "SELECT id, document FROM credit_notes"))
    previous = GENESIS
    for _, _, document, digest in chain:
        assert digest == text_digest(texts[document])
        assert json.loads(texts[document])["seal"]["previous"] == previous
        previous = digest
    numbers = dict(rows(credited, "SELECT id, number FROM invoices"))
    numbers |= dict(rows(credited, "SELECT id, number FROM credit_notes"))
    for document, text_ in texts.items():
        assert json.loads(text_)["seal"]["number"] == numbers[document]


def test_a_sealed_invoice_is_the_draft_that_was_checked_and_its_seal(credited: Path) -> None:
    draft = json.loads((credited.parent / "november-draft.json").read_text())
    (stored,) = rows(credited, "SELECT document FROM invoices WHERE id = 'c-2026-11'")
    sealed = Invoice.from_json(stored[0], "finalized")
    # Without its seal, the finalized document is the draft as the run wrote it, to the byte.
    assert sealed.unsealed().to_json() == Invoice.from_document(draft).to_json()
    assert sealed.seal is not None and sealed.seal.issuer_digest is not None
    (issuer,) = rows(credited, "SELECT issuer FROM invoices WHERE id = 'c-2026-11'")
    assert sealed.seal.issuer_digest == text_digest(issuer[0])


def _fixture_texts(kind: str) -> list[str]:
    lines = [json.loads(line) for line in FIXTURES.read_text().splitlines()]
    return [line["text"] for line in lines if line["kind"] == kind]


def test_the_migration_chains_documents_finalized_before_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    config = _alembic_config()
    old = _fixture_texts("invoice")[:2]
    note = _fixture_texts("credit_note")[0]
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
        for index, document in enumerate(old):
            conn.execute(
                text(
                    "INSERT INTO invoices (id, customer, period, status, currency, total,"
                    " as_of_us, document, created_at_us, finalized_at_us, number)"
                    " VALUES (:id, 'c', '2026-10', :status, 'USD', '0', 1, :document, 1,"
                    " :at, :number)"
                ),
                {
                    "id": f"old-{index}",
                    "status": ("paid", "void")[index],
                    "document": document,
                    "at": 200 - 100 * index,  # the second was finalized first
                    "number": f"INV-2026-00000{index + 1}",
                },
            )
        conn.execute(
            text(
                "INSERT INTO credit_notes (id, invoice, customer, document, created_at_us)"
                " VALUES ('note', 'old-1', 'c', :document, 100)"
            ),
            {"document": note},
        )
    engine.dispose()

    store = open_store(path)
    store.close()
    chain = rows(path, "SELECT seq, kind, document, digest FROM document_chain ORDER BY seq")
    assert chain == [
        (1, "invoice", "old-1", text_digest(old[1])),
        (2, "credit_note", "note", text_digest(note)),
        (3, "invoice", "old-0", text_digest(old[0])),
    ]
    # The documents themselves are as they were: nothing finalized is edited.
    assert [t for (t,) in rows(path, "SELECT document FROM invoices ORDER BY id")] == old
