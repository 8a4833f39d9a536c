"""API keys and customers' webhook secrets: who may call the server, and how verdicts are signed.

Keys are stored as the SHA-256 of the whole key: a key is 256 random bits, so a fast hash
is enough (no dictionary to guess from) and lets a request be matched with one index read.
Webhook secrets are stored as they are, because checking an HMAC needs the secret itself.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, or_, select, update

from payoff.store import schema as s


@dataclass(frozen=True)
class StoredKey:
    id: str
    scope: str
    name: str | None
    created_at_us: int
    revoked_at_us: int | None


@dataclass(frozen=True)
class StoredSecret:
    secret: str
    created_at_us: int
    retires_at_us: int | None


def _key(row: Any) -> StoredKey:
    return StoredKey(
        row.id,
        row.scope,
        row.name,
        row.created_at_us,
        row.revoked_at_us,
    )


class AccessQueries:
    engine: Engine
    _write_transaction: Callable[[], AbstractContextManager[Connection]]
    """SqlStore's: a transaction that takes the write lock as it begins."""

    def customer_exists(self, customer: str) -> bool:
        c = s.customers.c
        with self.engine.connect() as conn:
            return conn.execute(select(c.id).where(c.id == customer)).first() is not None

    def add_key(
        self, key_id: str, key_sha256: str, scope: str, name: str | None, now_us: int
    ) -> None:
        with self._write_transaction() as conn:
            conn.execute(
                insert(s.api_keys).values(
                    id=key_id, key_sha256=key_sha256, scope=scope, name=name, created_at_us=now_us
                )
            )

    def key_by_hash(self, key_sha256: str) -> StoredKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(s.api_keys).where(s.api_keys.c.key_sha256 == key_sha256)
            ).first()
        return None if row is None else _key(row)

    def list_keys(self) -> list[StoredKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.api_keys).order_by(s.api_keys.c.created_at_us))
            return [_key(row) for row in rows]

    def revoke_key(self, key_id: str, now_us: int) -> bool:
        """Revoke a key; False when there is no such key. Revoking twice keeps the first time."""
        k = s.api_keys.c
        with self._write_transaction() as conn:
            if conn.execute(select(k.id).where(k.id == key_id)).first() is None:
                return False
            conn.execute(
                update(s.api_keys)
                .where(k.id == key_id, k.revoked_at_us.is_(None))
                .values(revoked_at_us=now_us)
            )
        return True

    def add_secret(self, customer: str, secret: str, now_us: int, old_retire_at_us: int) -> None:
        """Make `secret` the customer's current one; older ones stop working at the given time."""
        c = s.customer_secrets.c
        with self._write_transaction() as conn:
            conn.execute(
                update(s.customer_secrets)
                .where(
                    c.customer == customer,
                    or_(c.retires_at_us.is_(None), c.retires_at_us > old_retire_at_us),
                )
                .values(retires_at_us=old_retire_at_us)
            )
            conn.execute(
                insert(s.customer_secrets).values(
                    customer=customer, secret=secret, created_at_us=now_us
                )
            )

    def secrets(self, customer: str, now_us: int) -> list[StoredSecret]:
        """The customer's secrets still valid at `now_us`, newest first."""
        c = s.customer_secrets.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.secret, c.created_at_us, c.retires_at_us)
                .where(
                    c.customer == customer,
                    or_(c.retires_at_us.is_(None), c.retires_at_us > now_us),
                )
                .order_by(c.seq.desc())
            )
            return [StoredSecret(*row) for row in rows]
