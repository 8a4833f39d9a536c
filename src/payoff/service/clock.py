"""The clock: the one place payoff reads the time (the core never does)."""

from __future__ import annotations

import datetime as dt

from payoff.core.periods import to_us


def now_us() -> int:
    """Microseconds since the Unix epoch, UTC."""
    return to_us(dt.datetime.now(dt.UTC))
