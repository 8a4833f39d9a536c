"""How long a write waits for another connection's lock on the ledger: the busy timeout.

A module of its own, without SQLAlchemy, so that the command line and the server's
settings can read it without loading the store.
"""

from __future__ import annotations

from payoff.core.errors import StoreError

BUSY_TIMEOUT_S = 30.0
"""payoff's own write transactions hold the lock for well under a second (a group commit of
20,000 records); a longer wait means a process holds it for minutes (a stuck one, a long
migration), and the command or request is better told so than kept waiting."""
MAX_BUSY_TIMEOUT_S = 3600.0


def busy_timeout_from(text: str | None) -> float:
    """The busy timeout a setting names (PAYOFF_BUSY_TIMEOUT, in seconds); the default if unset."""
    if text is None or not text.strip():
        return BUSY_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_BUSY_TIMEOUT_S:  # NaN fails too
        raise StoreError(
            f"PAYOFF_BUSY_TIMEOUT is {text!r}: give seconds, from 0 to {MAX_BUSY_TIMEOUT_S:g}"
        )
    return seconds
