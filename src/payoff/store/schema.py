"""The ledger's tables, as SQLAlchemy Core metadata (the current shape; migrations build it).

Times are integers of microseconds since the Unix epoch, UTC (`*_at_us`), so that period
bounds are plain integer comparisons on every backend. Costs are integers of nano-USD
(`payoff.core.money`); NULL cost means the step could not be priced.

An event's record format v2 details are kept in one column, `usage_details`: JSON of the
non-zero ones, NULL for nearly every step (text only), so that version-1 rows and the
ingest path stay as they were. Plans and aggregates read the five buckets, of which the
details are parts; the cost already holds what the details changed.

An event's cost columns hold its current cost; `cost_catalog` names what produced it
(`price_catalogs`). A re-pricing (`payoff recost`) keeps the cost it replaces in
`superseded_costs`, with the time it stopped holding, and stamps the event's
`costed_at_us`: a question asked as of an earlier time gets the cost that held then.

`usage_rollups` and `task_usage_rollups` hold the events' daily sums, kept in the same
transaction as the events (`store/rollups.py`); `rollup_days` says where each day of
receipt begins among the events.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from payoff.core.token_classes import PART_COLUMNS
from payoff.store.exact_sums import COST_BOUND, TOKENS_BOUND, part_count

metadata = MetaData()

customers = Table(
    "customers",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("name", Text),
    Column("created_at_us", BigInteger, nullable=False),
    Column("address", Text),
    Column("email", Text),
    Column("tax_id", Text),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("customer", String(255), nullable=False),
    Column("type", String(255)),
    Column("status", String(16), nullable=False),
    Column("status_at_us", BigInteger),
    Column("created_at_us", BigInteger, nullable=False),
    Column("started_at_us", BigInteger),
)

task_updates = Table(
    "task_updates",
    metadata,
    Column("task", String(255), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("customer", String(255), nullable=False),
    Column("type", String(255)),
    Column("occurred_at_us", BigInteger, nullable=False),
    Column("received_at_us", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(255), nullable=False, unique=True),
    Column("occurred_at_us", BigInteger, nullable=False),
    Column("received_at_us", BigInteger, nullable=False),
    Column("customer", String(255), nullable=False),
    Column("task", String(255)),
    Column("task_type", String(255)),
    Column("kind", String(8), nullable=False),
    Column("provider", String(255)),
    Column("model", String(255)),
    Column("input_tokens", BigInteger, nullable=False),
    Column("cache_read_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("visible", Boolean, nullable=False),
    Column("batch", Boolean, nullable=False),
    Column("quantity", Text),
    Column("unit", String(255)),
    Column("cost_given_nanousd", BigInteger),
    Column("cost_nanousd", BigInteger),
    Column("cost_visible_nanousd", BigInteger),
    Column("cost_source", String(16)),
    Column("attributes", Text),
    Column("usage_details", Text),
    Column("cost_catalog", BigInteger),
    Column("costed_at_us", BigInteger),
)

price_catalogs = Table(
    "price_catalogs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("catalog", String(255), nullable=False),
    Column("overrides_sha256", String(80)),
    Column("overrides", Text),
    Column("first_used_at_us", BigInteger, nullable=False),
)

superseded_costs = Table(
    "superseded_costs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_seq", Integer, nullable=False),
    Column("cost_nanousd", BigInteger),
    Column("cost_visible_nanousd", BigInteger),
    Column("cost_source", String(16)),
    Column("cost_catalog", BigInteger),
    Column("until_us", BigInteger, nullable=False),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("task", String(255), nullable=False),
    Column("customer", String(255), nullable=False),
    Column("type", String(255), nullable=False),
    Column("value", Text),
    Column("evidence_digest", Text),
    Column("occurred_at_us", BigInteger, nullable=False),
    Column("received_at_us", BigInteger, nullable=False),
)

attestations = Table(
    "attestations",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("outcome", String(255), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("occurred_at_us", BigInteger, nullable=False),
    Column("received_at_us", BigInteger, nullable=False),
)

plans = Table(
    "plans",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("body", Text, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("customer", String(255), nullable=False),
    Column("plan_id", String(255), nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("starts_at_us", BigInteger, nullable=False),
    Column("ends_at_us", BigInteger),
    Column("created_at_us", BigInteger, nullable=False),
)

seat_counts = Table(
    "seat_counts",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("customer", String(255), nullable=False),
    Column("effective_at_us", BigInteger, nullable=False),
    Column("seats", Integer, nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
)
"""Seat counts, append-only: each in effect from the start of a day, the later recorded for
the same day winning (`core.seats`)."""

invoices = Table(
    "invoices",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("customer", String(255), nullable=False),
    Column("period", String(7), nullable=False),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", Text, nullable=False),
    Column("as_of_us", BigInteger, nullable=False),
    Column("document", Text, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("finalized_at_us", BigInteger),
    Column("closed_at_us", BigInteger),
    Column("number", String(64)),
    Column("issuer", Text),
)

outcome_decisions = Table(
    "outcome_decisions",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("outcome", String(255), nullable=False),
    Column("action", String(16), nullable=False),
    Column("by", String(16), nullable=False),
    Column("reason", Text),
    Column("occurred_at_us", BigInteger, nullable=False),
    Column("received_at_us", BigInteger, nullable=False),
)

credit_notes = Table(
    "credit_notes",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("invoice", String(255), nullable=False),
    Column("customer", String(255), nullable=False),
    Column("document", Text, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("number", String(64)),
)

credit_entries = Table(
    "credit_entries",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("customer", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("grant_id", String(255), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("priority", Integer),
    Column("promo", Boolean, nullable=False),
    Column("expires_at_us", BigInteger),
    Column("invoice", String(255)),
    Column("note", Text),
    Column("recorded_at_us", BigInteger, nullable=False),
    Index("ix_credit_entries_customer", "customer", "at_us"),
)
"""Each customer's wallet: the append-only ledger of credit entries (core/credits.py),
amounts in minor units of the wallet's currency; a grant's terms sit on its own entry."""

reservations = Table(
    "reservations",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("customer", String(255), nullable=False),
    Column("task", String(255), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("settled_minor", BigInteger),
    Column("closed_at_us", BigInteger),
    Index("ix_reservations_customer", "customer", "status"),
)
"""Amounts held against a wallet while a task runs (core/reservations.py)."""

spend_limits = Table(
    "spend_limits",
    metadata,
    Column("customer", String(255), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("soft_minor", BigInteger),
    Column("hard_minor", BigInteger),
    Column("updated_at_us", BigInteger, nullable=False),
)
"""Each customer's spend limits for a period, in minor units (core/reservations.py)."""

document_chain = Table(
    "document_chain",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("document", String(255), nullable=False),
    Column("digest", String(80), nullable=False),
)
"""The hash chain of finalized documents (core/chain.py), in the order they were finalized:
each row names an invoice or credit note and the digest of its stored text."""

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("key_sha256", String(64), nullable=False, unique=True),
    Column("scope", String(300), nullable=False),
    Column("name", Text),
    Column("created_at_us", BigInteger, nullable=False),
    Column("revoked_at_us", BigInteger),
)

customer_secrets = Table(
    "customer_secrets",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("customer", String(255), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("retires_at_us", BigInteger),
)

otlp_spans = Table(
    "otlp_spans",
    metadata,
    Column("trace", String(32), primary_key=True),
    Column("span", String(16), primary_key=True),
    Column("body", LargeBinary),
    Column("received_at_us", BigInteger, nullable=False),
    Column("decided_at_us", BigInteger),
)

otlp_conversations = Table(
    "otlp_conversations",
    metadata,
    Column("task", String(255), primary_key=True),
    Column("last_end_us", BigInteger, nullable=False),
    Column("run_end_us", BigInteger),
    Column("run_failed", Boolean),
    Column("received_at_us", BigInteger, nullable=False),
)

ROLLUP_SUMS: dict[str, int] = {
    **{part: TOKENS_BOUND for part in PART_COLUMNS},
    "cost": COST_BOUND,
    "cost_visible": COST_BOUND,
}
"""What a rollup row sums, each within +-bound per event, kept in parts (`store/rollups.py`)."""
ROLLUP_PART_COLUMNS = {
    name: tuple(f"{name}_{index}" for index in range(part_count(bound)))
    for name, bound in ROLLUP_SUMS.items()
}
ROLLUP_COUNTS = ("steps", "unpriced")
ROLLUP_KEYS = ("customer", "day", "provider", "model", "batch", "visible", "cost_source")
"""Kept by both rollups, each beside its own: the task type, or the task. A key that is
NULL on the event is '' in a rollup (a unique key needs values; no record names ''), and
`day` is the day the step occurred, in days since the Unix epoch."""


def _rollup(name: str, own_key: str) -> Table:
    keys = (*ROLLUP_KEYS[:2], own_key, *ROLLUP_KEYS[2:], "known_day")
    key_types: dict[str, Any] = {"day": Integer, "known_day": Integer, "batch": Boolean}
    key_types["visible"] = Boolean
    key_types["cost_source"] = String(16)
    return Table(
        name,
        metadata,
        *(Column(key, key_types.get(key, String(255)), nullable=False) for key in keys),
        *(Column(count, BigInteger, nullable=False) for count in ROLLUP_COUNTS),
        *(
            Column(column, BigInteger, nullable=False)
            for columns in ROLLUP_PART_COLUMNS.values()
            for column in columns
        ),
        PrimaryKeyConstraint(*keys),
    )


usage_rollups = _rollup("usage_rollups", "task_type")
"""Per customer, day, task type, provider, model, batch, visible and cost source: what
rating and the open period's balance read."""
task_usage_rollups = _rollup("task_usage_rollups", "task")
"""Per task besides: what reasoning budgets (hidden tokens per task) and reports read."""

rollup_days = Table(
    "rollup_days",
    metadata,
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_received_us", BigInteger, nullable=False),
)
"""Per day of receipt: no event received that day has a lower `seq`, and none a later
stamp: where a question asked as of a time within the day starts reading events."""

contracts = Table(
    "contracts",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("outcome", String(255), nullable=False),
    Column("body", Text, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)
"""Outcome contracts, immutable like plans: (id, version) names one body forever."""

signals = Table(
    "signals",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("task", String(255)),
    Column("outcome", String(255)),
    Column("name", String(255), nullable=False),
    Column("occurred_at_us", BigInteger, nullable=False),
    Column("attributes", Text),
    Column("customer", String(255), nullable=False),
    Column("about_task", String(255), nullable=False),
    Column("received_at_us", BigInteger, nullable=False),
)
"""Signals from the customer's systems (records); `customer` and `about_task` (the task the
signal or its outcome names) are derived when it is written."""

evidence_openings = Table(
    "evidence_openings",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("outcome", String(255), nullable=False),
    Column("matched", Boolean, nullable=False),
    Column("by", String(300), nullable=False),
    Column("reason", Text),
    Column("evidence", Text),
    Column("opened_at_us", BigInteger, nullable=False),
)
"""Every opening of an outcome's committed evidence: whether it matched the commitment (a
mismatch is flagged), and the evidence itself only when its contract retains it."""

# Secondary indexes, declared beside the tables so the metadata is the whole current shape.
Index("ix_subscriptions_customer", subscriptions.c.customer, subscriptions.c.starts_at_us)
Index("ix_invoices_customer_period", invoices.c.customer, invoices.c.period)
Index("ix_seat_counts_customer", seat_counts.c.customer, seat_counts.c.effective_at_us)
Index("ix_outcome_decisions_outcome", outcome_decisions.c.outcome)
Index("ix_attestations_outcome", attestations.c.outcome)
Index("ix_customer_secrets_customer", customer_secrets.c.customer)
Index("ix_invoices_number", invoices.c.number, unique=True)
Index("ix_credit_notes_number", credit_notes.c.number, unique=True)
Index("ix_otlp_spans_decided", otlp_spans.c.decided_at_us, otlp_spans.c.received_at_us)
Index("ix_otlp_conversations_received", otlp_conversations.c.received_at_us)
Index("ix_document_chain_document", document_chain.c.kind, document_chain.c.document, unique=True)
Index("ix_superseded_costs_event", superseded_costs.c.event_seq, superseded_costs.c.until_us)
Index("ix_superseded_costs_until", superseded_costs.c.until_us)
Index("ix_signals_about_task", signals.c.about_task)
Index("ix_signals_customer_received", signals.c.customer, signals.c.received_at_us)
Index("ix_evidence_openings_outcome", evidence_openings.c.outcome)
# What an invoice run reads of a period, by time (migration 0013).
Index("ix_tasks_started", tasks.c.started_at_us)
Index("ix_task_updates_occurred", task_updates.c.occurred_at_us)
Index("ix_outcomes_occurred", outcomes.c.occurred_at_us)
Index("ix_attestations_occurred", attestations.c.occurred_at_us)
Index("ix_outcome_decisions_occurred", outcome_decisions.c.occurred_at_us)
