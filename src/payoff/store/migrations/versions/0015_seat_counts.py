"""Seat counts: how many seats a customer holds, from a day, recorded append-only.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seat_counts",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer", sa.String(255), nullable=False),
        sa.Column("effective_at_us", sa.BigInteger, nullable=False),
        sa.Column("seats", sa.Integer, nullable=False),
        sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_seat_counts_customer", "seat_counts", ["customer", "effective_at_us"])


def downgrade() -> None:
    op.drop_index("ix_seat_counts_customer", "seat_counts")
    op.drop_table("seat_counts")
