"""The metering ledger: customers, tasks and their updates, events, outcomes, attestations.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tasks",
        sa.Column("id", ID, primary_key=True),
        sa.Column("customer", ID, nullable=False),
        sa.Column("type", ID),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_at_us", sa.BigInteger),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "task_updates",
        sa.Column("task", ID, primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("customer", ID, nullable=False),
        sa.Column("type", ID),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("received_at_us", sa.BigInteger, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        _partitioned_events()
    else:
        op.create_table(
            "events",
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("id", ID, nullable=False, unique=True),
            *_event_columns(),
        )
    op.create_table(
        "outcomes",
        sa.Column("id", ID, primary_key=True),
        sa.Column("task", ID, nullable=False),
        sa.Column("customer", ID, nullable=False),
        sa.Column("type", ID, nullable=False),
        sa.Column("value", sa.Text),
        sa.Column("evidence_digest", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("received_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "attestations",
        sa.Column("id", ID, primary_key=True),
        sa.Column("outcome", ID, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("received_at_us", sa.BigInteger, nullable=False),
    )


def _event_columns() -> list[sa.Column[object]]:
    """The columns of an event after its seq and id."""
    return [
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("received_at_us", sa.BigInteger, nullable=False),
        sa.Column("customer", ID, nullable=False),
        sa.Column("task", ID),
        sa.Column("task_type", ID),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("provider", ID),
        sa.Column("model", ID),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger, nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger, nullable=False),
        sa.Column("visible", sa.Boolean, nullable=False),
        sa.Column("batch", sa.Boolean, nullable=False),
        sa.Column("quantity", sa.Text),
        sa.Column("unit", ID),
        sa.Column("cost_given_nanousd", sa.BigInteger),
        sa.Column("cost_nanousd", sa.BigInteger),
        sa.Column("cost_visible_nanousd", sa.BigInteger),
        sa.Column("cost_source", sa.String(16)),
        sa.Column("attributes", sa.Text),
    ]


def _partitioned_events() -> None:
    """PostgreSQL: events partitioned by month of occurrence, so that an old month can be
    detached and archived as one table (the store creates each month's partition as the
    first record for it arrives: payoff.store.postgres.partitions).

    A unique index of a partitioned table must include the partition key, and (id,
    occurred_at_us) would let the same id be stored twice with two times, which is a
    conflict to refuse, not a second record. So ids are kept unique by a table of their
    own, `event_ids`, which ingest inserts into first: the id that lands there is the one
    accepted, exactly once whatever the partition, and concurrent writers of one id wait on
    its unique index. seq is a BIGINT from a sequence (identity columns on a partitioned
    table come only with PostgreSQL 17); the primary key is (seq, occurred_at_us).
    """
    op.create_table("event_ids", sa.Column("id", ID, primary_key=True))
    op.execute("CREATE SEQUENCE events_seq")
    op.create_table(
        "events",
        sa.Column(
            "seq", sa.BigInteger, server_default=sa.text("nextval('events_seq')"), nullable=False
        ),
        sa.Column("id", ID, nullable=False),
        *_event_columns(),
        sa.PrimaryKeyConstraint("seq", "occurred_at_us"),
        postgresql_partition_by="RANGE (occurred_at_us)",
    )
    op.execute("ALTER SEQUENCE events_seq OWNED BY events.seq")
    op.create_index("ix_events_id", "events", ["id"])


def downgrade() -> None:
    for table in ("attestations", "outcomes", "events", "task_updates", "tasks", "customers"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("event_ids")
