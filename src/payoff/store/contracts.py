"""Outcome contracts in the SQL store: versions kept immutably, as plans are."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, select

from payoff.core.canonical import canonical_json
from payoff.core.errors import Conflict, StoreError
from payoff.store import schema as s


class ContractConflict(Conflict, StoreError):
    """A contract (id, version) was applied before with a different body."""


@dataclass(frozen=True)
class StoredContract:
    id: str
    version: int
    outcome: str
    body: dict[str, Any]
    digest: str
    created_at_us: int

    @property
    def reference(self) -> str:
        return f"{self.id}@{self.version}"


def _stored(row: Any) -> StoredContract:
    return StoredContract(
        row.id, row.version, row.outcome, json.loads(row.body), row.digest, row.created_at_us
    )


class ContractQueries:
    engine: Engine
    _write_transaction: Callable[[], AbstractContextManager[Connection]]

    def put_contract(
        self,
        contract_id: str,
        version: int,
        outcome: str,
        body: dict[str, Any],
        digest: str,
        now_us: int,
    ) -> bool:
        """Store a contract version; False when the same body was stored before (a no-op)."""
        c = s.contracts.c
        with self._write_transaction() as conn:
            found = conn.execute(
                select(c.digest).where(and_(c.id == contract_id, c.version == version))
            ).scalar_one_or_none()
            if found == digest:
                return False
            if found is not None:
                raise ContractConflict(
                    f"contract {contract_id}@{version} exists with a different body; "
                    f"contracts are immutable: apply it as version {version + 1}"
                )
            conn.execute(
                s.contracts.insert().values(
                    id=contract_id,
                    version=version,
                    outcome=outcome,
                    body=canonical_json(body),
                    digest=digest,
                    created_at_us=now_us,
                )
            )
        return True

    def get_contract(self, contract_id: str, version: int | None = None) -> StoredContract | None:
        c = s.contracts.c
        query = select(s.contracts).where(c.id == contract_id)
        query = (
            query.where(c.version == version)
            if version is not None
            else query.order_by(c.version.desc()).limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _stored(row)

    def list_contracts(self) -> list[StoredContract]:
        c = s.contracts.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.contracts).order_by(c.id, c.version)).all()
        return [_stored(row) for row in rows]
