"""Reservations: an amount held against a customer's available credit while a task runs.

A reservation is held from when it is granted until its task's actual cost settles it, or
until its expiry instant, when it holds nothing any more (released). What a customer may
still reserve is its wallet's available credit less every reservation held now; a request
for more is refused with the reason, never partly granted.

Pure: the caller reads the wallet and the held reservations under the write lock and
supplies the instant, so two concurrent requests can never both take the same credit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from payoff.core.credits import (
    CreditEntry,
    balance_minor,
    expiries,
    format_minor,
    pending_minor,
)
from payoff.core.errors import Conflict, Refused

ReservationStatus = Literal["held", "settled"]
MAX_EXPIRES_IN_S = 30 * 86_400
DEFAULT_EXPIRES_IN_S = 3600
US_PER_S = 1_000_000


class ReservationRefused(Conflict):
    """A reservation cannot be held: more than is available, or its task holds another."""


@dataclass(frozen=True)
class Reservation:
    id: str
    customer: str
    task: str
    amount_minor: int
    currency: str
    created_at_us: int
    expires_at_us: int
    status: ReservationStatus = "held"
    settled_minor: int | None = None
    closed_at_us: int | None = None

    def held_at(self, at_us: int) -> bool:
        return self.status == "held" and at_us < self.expires_at_us

    def shown_status(self, at_us: int) -> str:
        return "released" if self.status == "held" and not self.held_at(at_us) else self.status


@dataclass(frozen=True)
class SpendLimit:
    """A customer's limits on a period's spend plus what its reservations hold: past the
    soft one a reservation is still held, and says so; past the hard one it is refused."""

    currency: str
    soft_minor: int | None = None
    hard_minor: int | None = None

    def __post_init__(self) -> None:
        soft, hard = self.soft_minor, self.hard_minor
        if any(v is not None and v < 0 for v in (soft, hard)):
            raise LimitError("a spend limit is not negative")
        if soft is not None and hard is not None and soft > hard:
            raise LimitError("the soft limit is above the hard limit")


class LimitError(Refused, ValueError):
    """A spend limit that does not hold together."""


def reservation_id(customer: str, task: str) -> str:
    """One reservation per task: a request sent again is the same reservation."""
    return f"res:{customer}:{task}"


def available_minor(
    entries: Sequence[CreditEntry], reservations: Sequence[Reservation], at_us: int
) -> int:
    """The wallet's credit available now, less what reservations hold now."""
    counted = [*entries, *expiries(entries, at_us)]
    free = balance_minor(counted) - pending_minor(counted, at_us)
    return free - held_minor(reservations, at_us)


def hold(
    entries: Sequence[CreditEntry],
    reservations: Sequence[Reservation],
    wanted: Reservation,
    limit: SpendLimit | None = None,
    spend_minor: int = 0,
) -> Reservation:
    """The reservation to store for `wanted`, or ReservationRefused with the reason. The
    same request again (same task and amount) is answered with the reservation it made.
    With a hard `limit`, the period's `spend_minor` so far, what is held now and the amount
    asked may not pass it."""
    assert wanted.amount_minor > 0
    same = next((r for r in reservations if r.id == wanted.id), None)
    if same is not None:
        if (same.amount_minor, same.currency) == (wanted.amount_minor, wanted.currency):
            return same
        raise ReservationRefused(
            f"task {wanted.task} already holds reservation {same.id} of "
            f"{format_minor(same.amount_minor, same.currency)} {same.currency} "
            f"({same.shown_status(wanted.created_at_us)})"
        )
    if entries and entries[0].currency != wanted.currency:
        raise ReservationRefused(f"the wallet of {wanted.customer} is in {entries[0].currency}")
    free = available_minor(entries, reservations, wanted.created_at_us)
    if wanted.amount_minor > free:
        raise ReservationRefused(
            f"{wanted.customer} has {format_minor(max(free, 0), wanted.currency)} "
            f"{wanted.currency} available, {format_minor(wanted.amount_minor, wanted.currency)} "
            "asked: nothing reserved"
        )
    if limit is not None and limit.hard_minor is not None:
        committed = spend_minor + held_minor(reservations, wanted.created_at_us)
        if committed + wanted.amount_minor > limit.hard_minor:
            c = wanted.currency
            raise ReservationRefused(
                f"{wanted.customer}'s hard limit is {format_minor(limit.hard_minor, c)} {c}: "
                f"{format_minor(committed, c)} spent this period and held, "
                f"{format_minor(wanted.amount_minor, c)} asked: nothing reserved"
            )
    return wanted


def held_minor(reservations: Sequence[Reservation], at_us: int) -> int:
    """What the reservations hold at `at_us`."""
    return sum(r.amount_minor for r in reservations if r.held_at(at_us))


def over_soft_limit(limit: SpendLimit | None, spend_minor: int, held: int) -> bool:
    return (
        limit is not None and limit.soft_minor is not None and spend_minor + held > limit.soft_minor
    )
