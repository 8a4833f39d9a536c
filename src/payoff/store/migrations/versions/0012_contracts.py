"""Outcome contracts (versioned, immutable, like plans), signals from the customer's
systems, and the openings of committed evidence.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contracts",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("outcome", sa.String(255), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "signals",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("task", sa.String(255)),
        sa.Column("outcome", sa.String(255)),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("attributes", sa.Text),
        sa.Column("customer", sa.String(255), nullable=False),
        sa.Column("about_task", sa.String(255), nullable=False),
        sa.Column("received_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_signals_about_task", "signals", ["about_task"])
    op.create_index("ix_signals_customer_received", "signals", ["customer", "received_at_us"])
    op.create_table(
        "evidence_openings",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("outcome", sa.String(255), nullable=False),
        sa.Column("matched", sa.Boolean, nullable=False),
        sa.Column("by", sa.String(300), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("evidence", sa.Text),
        sa.Column("opened_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_evidence_openings_outcome", "evidence_openings", ["outcome"])


def downgrade() -> None:
    op.drop_index("ix_evidence_openings_outcome", "evidence_openings")
    op.drop_table("evidence_openings")
    op.drop_index("ix_signals_customer_received", "signals")
    op.drop_index("ix_signals_about_task", "signals")
    op.drop_table("signals")
    op.drop_table("contracts")
