"""Daily rollups of usage, kept beside the events and filled from them (store/rollups.py).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TOKEN_PARTS = ("uncached", "cache_read", "cache_write", "text_output", "reasoning")
SUMS = {**{part: 3 for part in TOKEN_PARTS}, "cost": 4, "cost_visible": 4}
"""Each sum and how many parts it is kept in (tokens within 2**35, costs within 2**60)."""


def _rollup(name: str, own_key: str) -> None:
    keys = ["customer", "day", own_key, "provider", "model", "batch", "visible"]
    keys += ["cost_source", "known_day"]
    types: dict[str, Any] = {"day": sa.Integer, "known_day": sa.Integer, "batch": sa.Boolean}
    types |= {"visible": sa.Boolean, "cost_source": sa.String(16)}
    op.create_table(
        name,
        *(sa.Column(key, types.get(key, sa.String(255)), nullable=False) for key in keys),
        sa.Column("steps", sa.BigInteger, nullable=False),
        sa.Column("unpriced", sa.BigInteger, nullable=False),
        *(
            sa.Column(f"{total}_{index}", sa.BigInteger, nullable=False)
            for total, count in SUMS.items()
            for index in range(count)
        ),
        sa.PrimaryKeyConstraint(*keys),
    )


def upgrade() -> None:
    _rollup("usage_rollups", "task_type")
    _rollup("task_usage_rollups", "task")
    op.create_table(
        "rollup_days",
        sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_received_us", sa.BigInteger, nullable=False),
    )
    # The same derivation `payoff verify` compares the rollups with.
    from payoff.store.rollups import fill

    fill(op.get_bind())


def downgrade() -> None:
    op.drop_table("rollup_days")
    op.drop_table("task_usage_rollups")
    op.drop_table("usage_rollups")
