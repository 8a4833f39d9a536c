"""Setting payoff's clock in a test: every loaded payoff module reads the time through
`payoff.service.clock.now_us`, imported by name; `set_clock` points each of them (and the
clock module) at a fixed time, undone by the monkeypatch at the end of the test."""

from __future__ import annotations

import datetime as dt
import sys

import pytest

from payoff.core.periods import to_us
from payoff.service import clock


def set_clock(monkeypatch: pytest.MonkeyPatch, moment: dt.datetime | int | None) -> None:
    """From now on, payoff's clock reads `moment` (a UTC datetime or microseconds); None
    sets it back to the real time."""
    real = clock.__dict__.get("_real_now_us", clock.now_us)
    monkeypatch.setattr(clock, "_real_now_us", real, raising=False)
    current = clock.now_us
    if moment is None:
        now = real
    else:
        at_us = moment if isinstance(moment, int) else to_us(moment)

        def now() -> int:
            return at_us

    for name, module in list(sys.modules.items()):
        if name.startswith("payoff") and getattr(module, "now_us", None) in (real, current):
            monkeypatch.setattr(module, "now_us", now)
