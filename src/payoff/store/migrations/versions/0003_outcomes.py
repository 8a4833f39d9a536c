"""Outcome decisions (auditors, operators) and credit notes.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "outcome_decisions",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("outcome", ID, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("by", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("received_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_outcome_decisions_outcome", "outcome_decisions", ["outcome"])
    op.create_index("ix_attestations_outcome", "attestations", ["outcome"])
    op.create_table(
        "credit_notes",
        sa.Column("id", ID, primary_key=True),
        sa.Column("invoice", ID, nullable=False),
        sa.Column("customer", ID, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("credit_notes")
    op.drop_index("ix_attestations_outcome", "attestations")
    op.drop_index("ix_outcome_decisions_outcome", "outcome_decisions")
    op.drop_table("outcome_decisions")
