"""Signals in the SQL store, read as outcome contracts use them: by the task they are about.

A signal names a task, an outcome, or both; `about_task` is the task either names (stored
when the signal is written), so that every signal bearing on an outcome is found by one
indexed column: those naming the outcome, and those naming its task and no outcome.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import Engine, select

from payoff.store import schema as s
from payoff.store.billing import any_row
from payoff.store.in_lists import chunks


class StoredSignal(NamedTuple):
    id: str
    about_task: str
    outcome: str | None
    name: str
    occurred_at_us: int
    received_at_us: int


_COLUMNS = tuple(s.signals.c[name] for name in StoredSignal._fields)


def bearing_on(found: Iterable[StoredSignal], outcome: str) -> list[StoredSignal]:
    """The signals of a task that bear on one of its outcomes: those naming it, and those
    naming no outcome."""
    return [signal for signal in found if signal.outcome in (None, outcome)]


class SignalQueries:
    engine: Engine

    def signals_about(
        self, tasks: Iterable[str], as_of_us: int | None = None
    ) -> dict[str, list[StoredSignal]]:
        """The signals about each task among `tasks` (received by `as_of_us`), by task, in
        time order."""
        g = s.signals.c
        found: dict[str, list[StoredSignal]] = defaultdict(list)
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(tasks))):
                query = select(*_COLUMNS).where(g.about_task.in_(chunk))
                if as_of_us is not None:
                    query = query.where(g.received_at_us <= as_of_us)
                for row in conn.execute(query):
                    found[row.about_task].append(StoredSignal._make(row))
        return _in_time_order(found)

    def customers_of_subjects(
        self, tasks: Iterable[str], outcomes: Iterable[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The customer of each stored task, and of each stored outcome, among these ids."""
        found: tuple[dict[str, str], dict[str, str]] = ({}, {})
        with self.engine.connect() as conn:
            for table, ids, into in ((s.tasks, tasks, found[0]), (s.outcomes, outcomes, found[1])):
                for chunk in chunks(sorted(set(ids))):
                    query = select(table.c.id, table.c.customer).where(table.c.id.in_(chunk))
                    into.update({row.id: row.customer for row in conn.execute(query)})
        return found

    def signals_received_between(self, customer: str, after_us: int, until_us: int) -> bool:
        """Whether a signal about one of the customer's tasks arrived in (after, until]."""
        g = s.signals.c
        query = select(g.id).where(
            g.customer == customer, g.received_at_us > after_us, g.received_at_us <= until_us
        )
        return any_row(self.engine, [query])


def _in_time_order(found: dict[str, list[StoredSignal]]) -> dict[str, list[StoredSignal]]:
    for signals in found.values():
        signals.sort(key=lambda signal: (signal.occurred_at_us, signal.received_at_us, signal.id))
    return found
