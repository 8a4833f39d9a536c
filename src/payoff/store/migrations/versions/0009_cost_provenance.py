"""Record format v2 and costs that say what produced them.

Events gain `usage_details` (the v2 details of a step, as JSON, NULL for text-only steps),
`cost_catalog` (the price catalog that costed the step) and `costed_at_us` (when a
re-pricing set the current cost). `price_catalogs` holds each catalog once: the packaged
prices' version and the overrides in force. `superseded_costs` keeps every cost a
re-pricing replaced, with the time it stopped holding, so that nothing billed is rewritten.

Adding nullable columns changes no existing row: steps costed before keep their cost, with
no catalog named (it was not recorded then).

Revision ID: 0009
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN: SQLite adds a nullable column without copying the table.
    op.add_column("events", sa.Column("usage_details", sa.Text))
    op.add_column("events", sa.Column("cost_catalog", sa.BigInteger))
    op.add_column("events", sa.Column("costed_at_us", sa.BigInteger))
    op.create_table(
        "price_catalogs",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("catalog", sa.String(255), nullable=False),
        sa.Column("overrides_sha256", sa.String(80)),
        sa.Column("overrides", sa.Text),
        sa.Column("first_used_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "superseded_costs",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        # An event's seq: a BIGINT on PostgreSQL (events.seq is one there).
        sa.Column(
            "event_seq", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False
        ),
        sa.Column("cost_nanousd", sa.BigInteger),
        sa.Column("cost_visible_nanousd", sa.BigInteger),
        sa.Column("cost_source", sa.String(16)),
        sa.Column("cost_catalog", sa.BigInteger),
        sa.Column("until_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_superseded_costs_event", "superseded_costs", ["event_seq", "until_us"])
    op.create_index("ix_superseded_costs_until", "superseded_costs", ["until_us"])


def downgrade() -> None:
    op.drop_index("ix_superseded_costs_until", "superseded_costs")
    op.drop_index("ix_superseded_costs_event", "superseded_costs")
    op.drop_table("superseded_costs")
    op.drop_table("price_catalogs")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("costed_at_us")
        batch.drop_column("cost_catalog")
        batch.drop_column("usage_details")
