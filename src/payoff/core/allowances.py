"""Usage limits within a subscription: an allowance of units that resets every N hours (a
5-hour window, a week of 168), with the units beyond it billed as overage.

Windows are fixed, anchored at the start of the billing period: a limit of N hours cuts the
period into [0, N), [N, 2N), ... hours, the last cut short at the period's end, so that its
windows partition the period. Usage is read by hour and walked in time order: an hour's
units are included while every limit's current window has allowance left (the least that
any has left), and the rest is overage; overage does not use up an allowance.

Refusing usage in real time once an allowance is spent belongs to the spend control, not
to rating: it would walk the hours so far the same way (`walk`) and refuse what a window
has no room for, rather than bill it as overage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HOURS_PER_DAY = 24
MAX_WINDOW_HOURS = 366 * HOURS_PER_DAY


@dataclass(frozen=True)
class Limit:
    """An allowance of `included` units in every window of `every_hours` hours."""

    every_hours: int
    included: int


@dataclass(frozen=True)
class WindowUse:
    """One window of one limit: its first hour (from the period's start), the units used in
    it, and how many of them its allowance included."""

    every_hours: int
    start_hour: int
    used: int
    included: int


def windows_of(every_hours: int, first_hour: int, last_hour: int) -> list[tuple[int, int]]:
    """The windows of a limit inside [first_hour, last_hour), as [start, end) hours: the
    period's fixed windows, clipped to the range."""
    windows = []
    start = first_hour
    while start < last_hour:
        end = min(last_hour, (start // every_hours + 1) * every_hours)
        windows.append((start, end))
        start = end
    return windows


@dataclass(frozen=True)
class Walked:
    overage: int
    windows: tuple[WindowUse, ...]
    """Each limit's windows that saw use, limit by limit, in time order."""


def walk(limits: Sequence[Limit], hourly: Sequence[tuple[int, int]]) -> Walked:
    """Overage and each window's use of `hourly` (hour from the period's start, units),
    in hour order, under every limit at once."""
    consumed: dict[tuple[int, int], int] = {}
    used: dict[tuple[int, int], int] = {}
    overage = 0
    for hour, units in sorted(hourly):
        if units <= 0:
            continue
        keys = [(index, hour // limit.every_hours) for index, limit in enumerate(limits)]
        room = min((limits[i].included - consumed.get((i, w), 0) for i, w in keys), default=units)
        included = min(units, max(room, 0))
        overage += units - included
        for key in keys:
            consumed[key] = consumed.get(key, 0) + included
            used[key] = used.get(key, 0) + units
    windows = tuple(
        WindowUse(limits[i].every_hours, w * limits[i].every_hours, used[(i, w)], consumed[(i, w)])
        for i, w in sorted(used)
    )
    return Walked(overage, windows)
