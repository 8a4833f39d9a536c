"""OpenTelemetry runs judged whole: spans kept until their run ends, and conversation tasks
remembered until they go quiet (store/spans.py).

Revision ID: 0010
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "otlp_spans",
        sa.Column("trace", sa.String(32), primary_key=True),
        sa.Column("span", sa.String(16), primary_key=True),
        sa.Column("body", sa.LargeBinary),
        sa.Column("received_at_us", sa.BigInteger, nullable=False),
        sa.Column("decided_at_us", sa.BigInteger),
    )
    op.create_index("ix_otlp_spans_decided", "otlp_spans", ["decided_at_us", "received_at_us"])
    op.create_table(
        "otlp_conversations",
        sa.Column("task", sa.String(255), primary_key=True),
        sa.Column("last_end_us", sa.BigInteger, nullable=False),
        sa.Column("run_end_us", sa.BigInteger),
        sa.Column("run_failed", sa.Boolean),
        sa.Column("received_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_otlp_conversations_received", "otlp_conversations", ["received_at_us"])


def downgrade() -> None:
    op.drop_index("ix_otlp_conversations_received", "otlp_conversations")
    op.drop_table("otlp_conversations")
    op.drop_index("ix_otlp_spans_decided", "otlp_spans")
    op.drop_table("otlp_spans")
