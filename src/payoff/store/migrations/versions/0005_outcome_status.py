"""Drop outcomes.status: written "claimed" at ingest and never read.

An outcome's status is derived as of a time from its claim, verdicts and policy
(`core/outcomes.lifecycle`); a stored column could only ever disagree with it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot drop a column in place everywhere: batch mode copies the table.
    with op.batch_alter_table("outcomes") as batch:
        batch.drop_column("status")


def downgrade() -> None:
    with op.batch_alter_table("outcomes") as batch:
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="claimed")
        )
