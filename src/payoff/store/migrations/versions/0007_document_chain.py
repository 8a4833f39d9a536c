"""The hash chain of finalized documents: one row per finalized invoice and credit note, in
the order they were finalized, with the digest of its stored text (core/chain.py).

Documents finalized before this revision are chained here, in the order they were finalized
(an invoice before the credit notes issued with it), as they are stored: their text is not
edited, so they carry no seal, and the first document sealed afterwards names the last of
them as the one before it.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    chain = op.create_table(
        "document_chain",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("document", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
    )
    op.create_index(
        "ix_document_chain_document", "document_chain", ["kind", "document"], unique=True
    )
    conn = op.get_bind()
    # (finalized at, 0 for an invoice and 1 for a note, id): a note is issued with the
    # invoice that applies it, at the same moment, after it.
    finalized = conn.execute(
        sa.text(
            "SELECT finalized_at_us, 0, 'invoice', id, document FROM invoices"
            " WHERE finalized_at_us IS NOT NULL"
            " UNION ALL SELECT created_at_us, 1, 'credit_note', id, document FROM credit_notes"
            " ORDER BY 1, 2, 4"
        )
    ).all()
    rows = [
        {
            "seq": seq,
            "kind": kind,
            "document": document_id,
            "digest": "sha256:" + hashlib.sha256(text.encode()).hexdigest(),
        }
        for seq, (_, _, kind, document_id, text) in enumerate(finalized, start=1)
    ]
    if rows:
        op.bulk_insert(chain, rows)


def downgrade() -> None:
    op.drop_index("ix_document_chain_document", "document_chain")
    op.drop_table("document_chain")
