"""Indexes on the times an invoice run reads a period by: when tasks started and their
statuses occurred, when outcomes were claimed and judged.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_tasks_started", "tasks", "started_at_us"),
    ("ix_task_updates_occurred", "task_updates", "occurred_at_us"),
    ("ix_outcomes_occurred", "outcomes", "occurred_at_us"),
    ("ix_attestations_occurred", "attestations", "occurred_at_us"),
    ("ix_outcome_decisions_occurred", "outcome_decisions", "occurred_at_us"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table)
