"""Prepaid credits: each customer's wallet as an append-only ledger of credit entries, and
the reservations held against it and the spend limits that bound them.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_entries",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("customer", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("grant_id", sa.String(255), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("priority", sa.Integer),
        sa.Column("promo", sa.Boolean, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger),
        sa.Column("invoice", sa.String(255)),
        sa.Column("note", sa.Text),
        sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_credit_entries_customer", "credit_entries", ["customer", "at_us"])
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(300), primary_key=True),
        sa.Column("customer", sa.String(255), nullable=False),
        sa.Column("task", sa.String(255), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("settled_minor", sa.BigInteger),
        sa.Column("closed_at_us", sa.BigInteger),
    )
    op.create_index("ix_reservations_customer", "reservations", ["customer", "status"])
    op.create_table(
        "spend_limits",
        sa.Column("customer", sa.String(255), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("soft_minor", sa.BigInteger),
        sa.Column("hard_minor", sa.BigInteger),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("spend_limits")
    op.drop_index("ix_reservations_customer", "reservations")
    op.drop_table("reservations")
    op.drop_index("ix_credit_entries_customer", "credit_entries")
    op.drop_table("credit_entries")
