"""API keys (hashed) and customers' webhook secrets.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("scope", sa.String(300), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("revoked_at_us", sa.BigInteger),
    )
    op.create_table(
        "customer_secrets",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer", ID, nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("retires_at_us", sa.BigInteger),
    )
    op.create_index("ix_customer_secrets_customer", "customer_secrets", ["customer"])


def downgrade() -> None:
    op.drop_index("ix_customer_secrets_customer", "customer_secrets")
    op.drop_table("customer_secrets")
    op.drop_table("api_keys")
