"""Billing periods: half-open UTC intervals [start, end), named YYYY-MM."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

from payoff.core.errors import PeriodError

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def to_us(moment: dt.datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    since = moment - EPOCH
    return (since.days * 86_400 + since.seconds) * US_PER_SECOND + since.microseconds


def from_us(moment_us: int) -> dt.datetime:
    """The UTC datetime of microseconds since the Unix epoch (the inverse of `to_us`)."""
    return EPOCH + dt.timedelta(microseconds=moment_us)


def iso_from_us(moment_us: int) -> str:
    """RFC 3339 text of microseconds since the Unix epoch, in UTC with a `Z`."""
    return from_us(moment_us).isoformat().replace("+00:00", "Z")


def us_from_iso(text: str) -> int:
    """Microseconds since the Unix epoch of RFC 3339 text with a `Z` (as `iso_from_us`
    writes it); PeriodError when it is not that."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"not an RFC 3339 time: {text!r}") from None
    if moment.utcoffset() != dt.timedelta(0):
        raise PeriodError(f"not a UTC time: {text!r}")
    return to_us(moment)


FIRST_YEAR, LAST_YEAR = 1900, 9998


@dataclass(frozen=True, order=True)
class Period:
    start_us: int
    end_us: int
    label: str

    @classmethod
    def month(cls, label: str) -> Period:
        match = _MONTH.match(label)
        if not match:
            raise PeriodError(f"a period is YYYY-MM, got {label!r}")
        year, month = int(match.group(1)), int(match.group(2))
        if not FIRST_YEAR <= year <= LAST_YEAR:
            # Records are dated 1970-8999; the margin leaves room for look-backs and -aheads.
            raise PeriodError(f"a period's year is from {FIRST_YEAR} to {LAST_YEAR}, got {label!r}")
        start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
        days = calendar.monthrange(year, month)[1]
        return cls(to_us(start), to_us(start + dt.timedelta(days=days)), label)

    def next(self) -> Period:
        end = from_us(self.end_us)
        return Period.month(f"{end.year:04d}-{end.month:02d}")

    def previous(self) -> Period:
        start = from_us(self.start_us) - dt.timedelta(days=1)
        return Period.month(f"{start.year:04d}-{start.month:02d}")

    @property
    def days(self) -> int:
        return (self.end_us - self.start_us) // US_PER_DAY

    def overlap_days(self, start_us: int, end_us: int | None) -> int:
        """Whole days of [start_us, end_us) inside this period, counted from day starts."""
        first = max(self.start_us, start_us)
        last = self.end_us if end_us is None else min(self.end_us, end_us)
        if last <= first:
            return 0
        # A subscription counts the days it is active on; a part-day counts as a day.
        first_day = (first - self.start_us) // US_PER_DAY
        last_day = -(-(last - self.start_us) // US_PER_DAY)
        return last_day - first_day
