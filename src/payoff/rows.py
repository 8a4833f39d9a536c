"""Records to ledger rows: the step where each usage record is costed.

Costing happens once, at ingest, from the catalog; a step the catalog cannot price keeps a
NULL cost and is counted as unpriced everywhere, never as zero.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from payoff.catalog import Catalog
from payoff.core.money import parse_usd_exact
from payoff.records import (
    AttestationRecord,
    OutcomeRecord,
    Record,
    TaskRecord,
    UsageRecord,
    body_digest,
)
from payoff.store.protocol import WriteBatch

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_MICROSECOND = dt.timedelta(microseconds=1)
COST_FROM_CATALOG = "catalog"
COST_FROM_RECORD = "record"

_encode = msgspec.json.encode


def to_us(moment: dt.datetime) -> int:
    """Microseconds since the Unix epoch, exact (no float on the way)."""
    return (moment - EPOCH) // ONE_MICROSECOND


def from_us(moment_us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=moment_us)


class RowBuilder:
    """Adds validated records to a WriteBatch, costing usage with the catalog."""

    def __init__(self, catalog: Catalog, received_at_us: int) -> None:
        self.catalog = catalog
        self.received_at_us = received_at_us

    def add(self, batch: WriteBatch, record: Record) -> tuple[str, int]:
        """Append the record's row; return (kind, index of the row within that kind)."""
        digest = body_digest(record)
        if isinstance(record, UsageRecord):
            batch.events.append(self._event_row(record, digest))
            batch.event_task_types.append(record.task_type)
            return "events", len(batch.events) - 1
        occurred_at_us = to_us(record.time)
        if isinstance(record, TaskRecord):
            batch.task_updates.append(
                (
                    record.id,
                    record.status,
                    digest,
                    record.customer,
                    record.type,
                    occurred_at_us,
                    self.received_at_us,
                )
            )
            return "task_updates", len(batch.task_updates) - 1
        if isinstance(record, OutcomeRecord):
            batch.outcomes.append(
                (
                    record.id,
                    digest,
                    record.task,
                    record.customer,
                    record.type,
                    record.value,
                    record.evidence_digest,
                    "claimed",
                    occurred_at_us,
                    self.received_at_us,
                )
            )
            return "outcomes", len(batch.outcomes) - 1
        assert isinstance(record, AttestationRecord)
        batch.attestations.append(
            (
                record.id,
                digest,
                record.outcome,
                record.verdict,
                occurred_at_us,
                self.received_at_us,
            )
        )
        return "attestations", len(batch.attestations) - 1

    def _event_row(self, r: UsageRecord, digest: bytes) -> tuple[object, ...]:
        occurred_at_us = to_us(r.time)
        counts = r.token_counts()
        cost: int | None = None
        cost_visible: int | None = None
        source: str | None = None
        if r.cost is not None:
            cost, cost_visible, source = parse_usd_exact(r.cost), 0, COST_FROM_RECORD
        elif r.kind == "llm":
            assert r.provider is not None and r.model is not None
            table = self.catalog.price_table(r.provider, r.model, r.batch, occurred_at_us)
            if table is not None:
                cost, cost_visible = table.cost_nanousd(counts, visible=r.visible)
                source = COST_FROM_CATALOG
        return (
            r.id,
            digest,
            occurred_at_us,
            self.received_at_us,
            r.customer,
            r.task,
            r.kind,
            r.provider,
            r.model,
            *counts,
            r.visible,
            r.batch,
            None if r.quantity is None else str(r.quantity),
            r.unit,
            cost,
            cost_visible,
            source,
            None if r.attributes is None else _encode(r.attributes).decode(),
        )
