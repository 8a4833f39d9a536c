"""Monthly partitions of `events`, created as the first records of a month arrive.

`events` is partitioned by range of `occurred_at_us`, one partition a calendar month (UTC),
named `events_yYYYYmMM`: an old month is detached (`ALTER TABLE events DETACH PARTITION
events_y2025m01`) and archived as one table. Its ids stay in `event_ids`, so a record of that
month sent again is still not stored twice.

Creating a partition locks `events` for a moment (PostgreSQL takes its strongest lock on the
parent), so it happens outside any write transaction (a batch never holds a lock while it
waits for one), once per month and process, under an advisory lock so that two writers do not
race to create the same one; the month after the newest one written is created with it, so
the first records of a month rarely wait at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from payoff.core.errors import StoreError
from payoff.core.periods import US_PER_DAY
from payoff.store.postgres.locks import lock_partitions

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Month = tuple[int, int]


def month_of(time_us: int) -> Month:
    moment = EPOCH + timedelta(microseconds=time_us)
    return moment.year, moment.month


def next_month(month: Month) -> Month:
    year, number = month
    return (year + 1, 1) if number == 12 else (year, number + 1)


def start_us(month: Month) -> int:
    start = datetime(month[0], month[1], 1, tzinfo=UTC) - EPOCH
    return (start.days * 86_400 + start.seconds) * 1_000_000


def partition_name(month: Month) -> str:
    return f"events_y{month[0]:04d}m{month[1]:02d}"


class Partitions:
    """The months that have a partition, as this process knows them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._known: set[Month] = set()

    def ensure(self, times: Iterable[int]) -> None:
        """Create the partitions the months of `times` need (and the month after the last)."""
        # Days first: integer division is cheap, a calendar date per record is not.
        days = {time_us // US_PER_DAY for time_us in times}
        months = {month_of(day * US_PER_DAY) for day in days}
        if not months or months <= self._known:
            return
        months.add(next_month(max(months)))
        with self.engine.connect() as conn, conn.begin():
            lock_partitions(conn)
            attached = set(
                conn.exec_driver_sql(
                    "SELECT child.relname FROM pg_inherits "
                    "JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid "
                    "JOIN pg_class AS parent ON parent.oid = pg_inherits.inhparent "
                    "WHERE parent.relname = 'events'"
                ).scalars()
            )
            for month in sorted(months):
                name = partition_name(month)
                if name in attached:
                    continue
                if conn.exec_driver_sql("SELECT to_regclass(%s)", (name,)).scalar() is not None:
                    raise StoreError(
                        f"records of {month[0]:04d}-{month[1]:02d} arrived, but its partition "
                        f"{name} is detached: attach it again to write to that month"
                    )
                conn.exec_driver_sql(
                    f"CREATE TABLE {name} PARTITION OF events "
                    f"FOR VALUES FROM ({start_us(month)}) TO ({start_us(next_month(month))})"
                )
        self._known |= months
