"""The wallet side of the SQL store: each customer's credit entries, appended, never edited.

Entries are written by id: an entry sent again with the same content is the same entry (a
grant sent twice is one grant); the same id with other content is refused as a conflict.
A write reads the wallet and computes what to append under the write lock, in the one
transaction that appends it (`write_credits`), so two writers can never both draw the same
credit. Finalizing and voiding an invoice append theirs inside the invoice's own
transaction (`append_credits` on its connection).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Engine, select

from payoff.core.credits import CreditEntry
from payoff.core.errors import Conflict, StoreError
from payoff.store import schema as s

MAX_WALLET_ENTRIES = 1_000_000
"""Entries of one wallet read at most: a wallet past it is refused, not read in part."""

CreditWrite = Callable[[list[CreditEntry]], Sequence[CreditEntry]]
"""Given the wallet's entries as stored, the entries to append."""


class CreditConflict(Conflict, StoreError):
    """A credit entry id was used before with other content."""


class CreditQueries:
    engine: Engine

    _write_transaction: Callable[[], AbstractContextManager[Connection]]

    def credit_entries(self, customer: str) -> list[CreditEntry]:
        """A customer's credit entries, by effective instant then id."""
        with self.engine.connect() as conn:
            return wallet_entries(conn, customer)

    def write_credits(self, customer: str, write: CreditWrite, now_us: int) -> list[CreditEntry]:
        """Append to a wallet what `write` computes from it, under the write lock, in one
        transaction; the entries that were new (those already stored are skipped)."""
        with self._write_transaction() as conn:
            return append_credits(conn, write(wallet_entries(conn, customer)), now_us)


def wallet_entries(conn: Connection, customer: str) -> list[CreditEntry]:
    c = s.credit_entries.c
    query = (
        select(s.credit_entries)
        .where(c.customer == customer)
        .order_by(c.at_us, c.id)
        .limit(MAX_WALLET_ENTRIES + 1)
    )
    entries = [_entry(row) for row in conn.execute(query)]
    if len(entries) > MAX_WALLET_ENTRIES:
        raise StoreError(f"the wallet of {customer} holds more than {MAX_WALLET_ENTRIES} entries")
    return entries


def append_credits(
    conn: Connection, entries: Sequence[CreditEntry], now_us: int
) -> list[CreditEntry]:
    """Insert the entries not stored yet; refuse any whose id holds other content."""
    c = s.credit_entries.c
    added = []
    for entry in entries:
        found = conn.execute(select(s.credit_entries).where(c.id == entry.id)).first()
        if found is not None:
            if _entry(found) != entry:
                raise CreditConflict(f"credit entry {entry.id} exists with other content")
            continue
        conn.execute(s.credit_entries.insert().values(**_row(entry), recorded_at_us=now_us))
        added.append(entry)
    return added


def _row(entry: CreditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "customer": entry.customer,
        "kind": entry.kind,
        "grant_id": entry.grant,
        "amount_minor": entry.amount_minor,
        "currency": entry.currency,
        "at_us": entry.at_us,
        "priority": entry.priority,
        "promo": entry.promo,
        "expires_at_us": entry.expires_at_us,
        "invoice": entry.invoice,
        "note": entry.note,
    }


def _entry(row: Any) -> CreditEntry:
    return CreditEntry(
        id=row.id,
        customer=row.customer,
        kind=row.kind,
        grant=row.grant_id,
        amount_minor=int(row.amount_minor),
        currency=row.currency,
        at_us=int(row.at_us),
        priority=row.priority,
        promo=bool(row.promo),
        expires_at_us=None if row.expires_at_us is None else int(row.expires_at_us),
        invoice=row.invoice,
        note=row.note,
    )
