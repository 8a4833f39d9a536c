"""Costs that change after ingest, without rewriting history: re-pricing and costs as of a time.

    payoff recost
      events (llm steps, by seq) ──batch of ≤ RECOST_BATCH──▶ revise(steps) (the caller's:
                                                               price with today's catalog)
         one write transaction per batch:
           superseded_costs += the cost each revised step had, `until_us` = now
           events.cost_* = the new cost, `cost_catalog`, `costed_at_us` = now

What a crash can lose: the batch in flight, whole (its transaction rolls back); every batch
before it is committed. A second run finds the committed steps already at their new cost and
changes nothing for them, so running again finishes the job.

A question asked as of a time (`store.as_of_costs.cost_columns`) sees each step's cost as
it was then. Each batch also moves the steps it re-prices in the rollups
(`store.rollups`), in its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Engine, literal, select

from payoff.core.buckets import COST_FROM_CATALOG
from payoff.core.costing import PriceCatalog
from payoff.core.recosting import BilledInvoice
from payoff.core.statuses import BILLED_STATUSES
from payoff.store import rollups
from payoff.store import schema as s
from payoff.store.protocol import CostedStep, CostRevision, RecostBatch, RecostSelection

RECOST_BATCH = 10_000
"""Steps per transaction of a re-pricing: large enough that commits are cheap, small enough
that ingest waits for the write lock no longer than a batch of its own."""

_STEP_COLUMNS = (
    "seq", "customer", "occurred_at_us", "received_at_us", "costed_at_us", "provider",
    "model", "batch", "visible", "input_tokens", "cache_read_tokens", "cache_write_tokens",
    "output_tokens", "reasoning_tokens", "usage_details", "cost_nanousd",
    "cost_visible_nanousd", "cost_source", "cost_catalog",
)  # fmt: skip
assert CostedStep._fields == _STEP_COLUMNS


def costs_replaced_between(
    customer: str, start_us: int, end_us: int, after_us: int, until_us: int
) -> Any:
    """A query finding a step of the window whose cost was replaced in (after, until]: for
    an earlier invoice, a re-pricing moves its period as late usage does."""
    e, h = s.events.c, s.superseded_costs.c
    return (
        select(literal(1))
        .select_from(s.superseded_costs.join(s.events, e.seq == h.event_seq))
        .where(
            h.until_us > after_us,
            h.until_us <= until_us,
            e.customer == customer,
            e.occurred_at_us >= start_us,
            e.occurred_at_us < end_us,
        )
    )


def _where(selection: RecostSelection, mark: str) -> tuple[list[str], list[Any]]:
    """The steps a selection examines, as SQL conditions and their parameters."""
    # Only the catalog's steps: a cost the record gave is the record's to say.
    where = ["kind = 'llm'"]
    if selection.include_priced:
        where.append(f"(cost_nanousd IS NULL OR cost_source = '{COST_FROM_CATALOG}')")
    else:
        where.append("cost_nanousd IS NULL")
    params: list[Any] = []
    if selection.customer is not None:
        where.append(f"customer = {mark}")
        params.append(selection.customer)
    if selection.since_us is not None:
        where.append(f"occurred_at_us >= {mark}")
        params.append(selection.since_us)
    return where, params


class CostQueries:
    engine: Engine
    _write_transaction: Callable[[], AbstractContextManager[Connection]]
    _placeholder: str
    _keep_price_catalog: Callable[[Connection, PriceCatalog, int], None]
    _catalogs_kept: set[int]

    def billed_invoices(self) -> list[BilledInvoice]:
        """Each finalized or paid invoice: its customer, period and as-of time."""
        i = s.invoices.c
        query = select(i.customer, i.period, i.as_of_us).where(i.status.in_(BILLED_STATUSES))
        with self.engine.connect() as conn:
            return [BilledInvoice(*row) for row in conn.execute(query)]

    def count_steps_to_recost(self, selection: RecostSelection) -> int:
        """How many steps a re-pricing with this selection examines."""
        where, params = _where(selection, self._placeholder)
        with self.engine.connect() as conn:
            found = conn.exec_driver_sql(
                f"SELECT count(*) FROM events WHERE {' AND '.join(where)}", tuple(params)
            ).scalar_one()
        return int(found)

    def recost_batch(
        self,
        selection: RecostSelection,
        after_seq: int,
        revise: Callable[[list[CostedStep]], list[CostRevision]],
        catalog: PriceCatalog,
        clock: Callable[[], int],
    ) -> RecostBatch:
        """Re-price the next steps of the selection after `after_seq`, in one transaction.

        `revise` runs under the write lock, so the steps it reads cannot change before its
        revisions commit; each revised step's old cost is kept in `superseded_costs`.
        """
        mark = self._placeholder
        where, params = _where(selection, mark)
        # Read through the driver: a batch's rows need no per-row processing.
        sql = (
            f"SELECT {', '.join(_STEP_COLUMNS)} FROM events WHERE seq > {mark} AND "
            f"{' AND '.join(where)} ORDER BY seq LIMIT {RECOST_BATCH}"
        )
        with self._write_transaction() as conn:
            now_us = clock()
            rows = conn.exec_driver_sql(sql, (after_seq, *params)).fetchall()
            steps = list(map(CostedStep._make, rows))
            if not steps:
                return RecostBatch(0, after_seq, [])
            revisions = revise(steps)
            if revisions:
                self._revise(conn, steps, revisions, catalog, now_us)
        if revisions:
            self._catalogs_kept.add(catalog.id)
        return RecostBatch(len(steps), steps[-1].seq, revisions)

    def _revise(
        self,
        conn: Connection,
        steps: list[CostedStep],
        revisions: Sequence[CostRevision],
        catalog: PriceCatalog,
        now_us: int,
    ) -> None:
        # The steps were read in this transaction: their costs are the ones being replaced.
        read = {step.seq: step for step in steps}
        mark, now = self._placeholder, int(now_us)  # the stamp as an integer literal
        superseded_before = rollups.last_superseded_seq(conn)
        conn.exec_driver_sql(
            "INSERT INTO superseded_costs (event_seq, cost_nanousd, cost_visible_nanousd,"
            f" cost_source, cost_catalog, until_us) VALUES ({mark}, {mark}, {mark}, {mark},"
            f" {mark}, {now})",
            [
                (seq, old.cost_nanousd, old.cost_visible_nanousd, old.cost_source, old.cost_catalog)
                for seq, old in ((r.seq, read[r.seq]) for r in revisions)
            ],
        )
        seqs = (min(r.seq for r in revisions), max(r.seq for r in revisions))
        rollups.add_repriced(conn, superseded_before, seqs, now_us, sign=-1)  # at the old costs
        conn.exec_driver_sql(
            f"UPDATE events SET cost_nanousd = {mark}, cost_visible_nanousd = {mark},"
            f" cost_source = {mark}, cost_catalog = {mark}, costed_at_us = {now}"
            f" WHERE seq = {mark}",
            [(r.cost_nanousd, r.cost_visible_nanousd, r.cost_source, r.cost_catalog, r.seq)
             for r in revisions],
        )  # fmt: skip
        rollups.add_repriced(conn, superseded_before, seqs, now_us, sign=1)  # at the new ones
        self._keep_price_catalog(conn, catalog, now_us)
