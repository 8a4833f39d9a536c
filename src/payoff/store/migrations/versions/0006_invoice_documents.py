"""What an invoice a customer accepts needs: customers' contact details, invoice and credit
note numbers, and the issuer's details as they were when an invoice was finalized.

A number is unique (an index says so), so two finalizes can never share one, and it stays
on a voided invoice: numbers are never reused.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("address", sa.Text))
        batch.add_column(sa.Column("email", sa.Text))
        batch.add_column(sa.Column("tax_id", sa.Text))
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("number", sa.String(64)))
        batch.add_column(sa.Column("issuer", sa.Text))
    op.create_index("ix_invoices_number", "invoices", ["number"], unique=True)
    with op.batch_alter_table("credit_notes") as batch:
        batch.add_column(sa.Column("number", sa.String(64)))
    op.create_index("ix_credit_notes_number", "credit_notes", ["number"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_credit_notes_number", "credit_notes")
    with op.batch_alter_table("credit_notes") as batch:
        batch.drop_column("number")
    op.drop_index("ix_invoices_number", "invoices")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("issuer")
        batch.drop_column("number")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("tax_id")
        batch.drop_column("email")
        batch.drop_column("address")
