"""Records to ledger rows: the step where each usage record is costed.

Costing happens once, at ingest, from the catalog; a step the catalog cannot price keeps a
NULL cost and is counted as unpriced everywhere, never as zero. Each row the catalog costed
(or tried to) names the catalog that did, so that every cost says what produced it; a
later re-pricing (`service/recost.py`) keeps the cost it replaces.
"""

from __future__ import annotations

from functools import lru_cache

import msgspec
from msgspec.structs import astuple

from payoff.catalog import Catalog
from payoff.core.buckets import COST_FROM_CATALOG, COST_FROM_RECORD
from payoff.core.errors import RecordError
from payoff.core.money import MAX_STEP_COST_NANOUSD, format_nanousd, parse_usd_exact_nanousd
from payoff.core.periods import to_us
from payoff.core.tokens import DETAIL_FIELDS, TokenCounts, UsageDetails
from payoff.records import (
    AttestationRecord,
    OutcomeRecord,
    Record,
    SignalRecord,
    TaskRecord,
    UsageRecord,
    UsageRecordV2,
)
from payoff.store.protocol import EVENTS, WriteBatch

COST_AT = EVENTS.column_index("cost_nanousd")
"""Where an event row holds its cost: None marks an unpriced step."""

DETAILS_AT = EVENTS.column_index("usage_details")
"""Where an event row holds its record format v2 details (JSON text, or None)."""

# Attributes are stored with sorted keys: the same map is the same text, whatever its order.
_encode = msgspec.json.Encoder(order="sorted").encode


def details_text(details: UsageDetails | None) -> str | None:
    """The stored form of a step's details: the non-zero ones by record field, keys sorted,
    as JSON; None when there are none (a version-1 record, or nothing but text)."""
    if details is None or not any(details):
        return None
    shown = {DETAIL_FIELDS[name]: value for name, value in details._asdict().items() if value}
    return _encode(shown).decode()


def details_from_text(text: str | None) -> UsageDetails | None:
    """The inverse of `details_text`: None stays None (the step is priced as text)."""
    if text is None:
        return None
    stored = msgspec.json.decode(text)
    return UsageDetails(*(stored.get(field, 0) for field in DETAIL_FIELDS.values()))


@lru_cache(maxsize=4096)
def _explicit_cost(text: str) -> int:
    # Explicit costs repeat (a tool's price per call): parse each distinct string once.
    return parse_usd_exact_nanousd(text)


def _too_costly(cost_nanousd: int, provider: str, model: str) -> RecordError:
    # Only a price override can get here: at the catalog's prices, 10**10 tokens cost far less.
    return RecordError(
        f"costs {format_nanousd(cost_nanousd)} USD at the price of {provider}/{model}, more "
        f"than the {format_nanousd(MAX_STEP_COST_NANOUSD)} USD one step may cost",
        field="model",
    )


class RowBuilder:
    """Adds validated records to a WriteBatch, costing usage with the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.price_table = catalog.price_table
        self.identity = catalog.identity()

    def add(self, batch: WriteBatch, record: Record, line: int) -> None:
        """Append the record's row, and the line it came from, to the batch."""
        if type(record) is UsageRecord or type(record) is UsageRecordV2:
            row = self._event_row(record)
            batch.events.append(row)
            batch.price_catalog = self.identity
            batch.lines["events"].append(line)
            if row[COST_AT] is None:
                batch.unpriced_events += 1
            return
        occurred_at_us = to_us(record.time)
        if isinstance(record, TaskRecord):
            kind = "task_updates"
            batch.task_updates.append(
                (
                    record.id,
                    record.status,
                    record.customer,
                    record.type,
                    occurred_at_us,
                )
            )
        elif isinstance(record, OutcomeRecord):
            kind = "outcomes"
            batch.outcomes.append(
                (
                    record.id,
                    record.task,
                    record.customer,
                    record.type,
                    record.value,
                    record.evidence_digest,
                    occurred_at_us,
                )
            )
        elif isinstance(record, SignalRecord):
            kind = "signals"
            attributes = None if record.attributes is None else _encode(record.attributes).decode()
            batch.signals.append(
                (record.id, record.task, record.outcome, record.name, occurred_at_us, attributes)
            )
        else:
            assert isinstance(record, AttestationRecord)
            kind = "attestations"
            batch.attestations.append((record.id, record.outcome, record.verdict, occurred_at_us))
        batch.lines[kind].append(line)

    def _event_row(self, record: UsageRecord) -> tuple[object, ...]:
        # The hot path of ingest: every field in one call, then only local variables.
        (
            id_, time, customer, task, task_type, kind, provider, model,
            input_tokens, cache_read, cache_write, output_tokens, reasoning,
            visible, batch, cost_text, quantity, unit, _, _, attributes, *_,
        ) = astuple(record)  # fmt: skip
        occurred_at_us = to_us(time)
        counts = tuple.__new__(
            TokenCounts,
            (
                input_tokens or 0,
                cache_read or 0,
                cache_write or 0,
                output_tokens or 0,
                reasoning or 0,
            ),
        )
        details = None if type(record) is UsageRecord else record.usage_details()
        cost_given: int | None = None
        cost: int | None = None
        cost_visible: int | None = None
        source: str | None = None
        catalog_id: int | None = None
        if cost_text is not None:
            cost_given = _explicit_cost(cost_text)
            cost, cost_visible, source = cost_given, 0, COST_FROM_RECORD
        elif kind == "llm":
            catalog_id = self.identity.id
            table = self.price_table(provider, model, batch, occurred_at_us)
            if table is not None:
                cost, cost_visible = table.cost_nanousd(counts, visible=visible, details=details)
                source = COST_FROM_CATALOG
                if cost > MAX_STEP_COST_NANOUSD:
                    raise _too_costly(cost, provider, model)
        return (
            id_, occurred_at_us, customer, task, task_type, kind, provider, model,
            *counts, details_text(details),
            visible, batch,
            None if quantity is None else str(quantity),
            unit, cost_given,
            None if attributes is None else _encode(attributes).decode(),
            cost, cost_visible, source, catalog_id,
        )  # fmt: skip
