"""Seats: how many seats a customer holds on each day of a window, from dated seat counts.

A seat count takes effect at the start of a day (UTC) and holds until the next one; the
count recorded last for a day wins. Before any count, a customer holds no seats. A per-seat
charge bills each day once, at the count in effect that day (never below the charge's
minimum), as seat-days: amount x seat-days / days of the period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from payoff.core.periods import US_PER_DAY

MAX_SEATS = 10**9
"""A seat count fits a 32-bit integer column, the narrowest a ledger backend gives it."""


@dataclass(frozen=True, order=True)
class SeatCount:
    """A seat count in effect from the start of a day (`effective_at_us`), as recorded."""

    effective_at_us: int
    seats: int


Segment = tuple[int, int]
"""(seats, days): consecutive days of a window at one seat count."""


def daily_seats(
    counts: Sequence[SeatCount], period_start_us: int, first_day: int, last_day: int
) -> list[int]:
    """The seat count of each day in [first_day, last_day) of a period, the days counted
    from its start; `counts` in the order they were recorded (the later wins a day)."""
    by_day: dict[int, int] = {}
    for count in counts:
        by_day[count.effective_at_us] = count.seats
    changes = sorted(by_day.items())
    seats, index, days = 0, 0, []
    for day in range(first_day, last_day):
        day_start = period_start_us + day * US_PER_DAY
        while index < len(changes) and changes[index][0] <= day_start:
            seats = changes[index][1]
            index += 1
        days.append(seats)
    return days


def segments(daily: Sequence[int], minimum: int = 0) -> tuple[Segment, ...]:
    """Days at one billed count (the day's seats, at least `minimum`), merged in order."""
    merged: list[list[int]] = []
    for seats in daily:
        billed = max(seats, minimum)
        if merged and merged[-1][0] == billed:
            merged[-1][1] += 1
        else:
            merged.append([billed, 1])
    return tuple((seats, days) for seats, days in merged)


def seat_days(billed: Sequence[Segment]) -> int:
    return sum(seats * days for seats, days in billed)
