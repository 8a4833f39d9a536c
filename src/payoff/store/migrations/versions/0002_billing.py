"""Billing: plans, subscriptions, invoices; when a task started.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", ID, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "subscriptions",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer", ID, nullable=False),
        sa.Column("plan_id", ID, nullable=False),
        sa.Column("plan_version", sa.Integer, nullable=False),
        sa.Column("starts_at_us", sa.BigInteger, nullable=False),
        sa.Column("ends_at_us", sa.BigInteger),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_subscriptions_customer", "subscriptions", ["customer", "starts_at_us"])
    op.create_table(
        "invoices",
        sa.Column("id", ID, primary_key=True),
        sa.Column("customer", ID, nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total", sa.Text, nullable=False),
        sa.Column("as_of_us", sa.BigInteger, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("finalized_at_us", sa.BigInteger),
        sa.Column("closed_at_us", sa.BigInteger),
    )
    op.create_index("ix_invoices_customer_period", "invoices", ["customer", "period"])
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("started_at_us", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("started_at_us")
    op.drop_index("ix_invoices_customer_period", "invoices")
    op.drop_table("invoices")
    op.drop_index("ix_subscriptions_customer", "subscriptions")
    op.drop_table("subscriptions")
    op.drop_table("plans")
