"""Prepaid credits: a wallet per customer, kept as an append-only ledger of entries.

Every movement of credit is an entry against one grant, in integer minor units of the
wallet's currency; nothing is ever edited. A grant's remaining amount is the sum of the
entries against it, the wallet's balance the sum of them all, each counted from its
instant (`at_us`):

    grant / top_up   +amount    the grant itself, at its effective instant
    consumption      -drawn     an invoice finalized drew on the grant
    void             +drawn     that invoice was voided: the credit comes back
    expiry           -left      the grant's expiry instant passed with credit left
    rollover         -left      what was left moved to a new grant (capped, see `rollover`)

A grant is usable from its effective instant up to, not including, its expiry instant: at
the exact expiry instant what is left of it is gone, as an entry of its own. Invoices draw
on usable grants by priority (1 before 2), then soonest expiry (none last), then oldest,
and never draw more than their total.

Pure: entries in, entries out; the caller supplies every instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from payoff.core.currency import minor_unit
from payoff.core.errors import Refused

EntryKind = Literal["grant", "top_up", "consumption", "void", "expiry", "rollover"]
ENTRY_KINDS: tuple[EntryKind, ...] = (
    "grant",
    "top_up",
    "consumption",
    "void",
    "expiry",
    "rollover",
)
FUNDING_KINDS = frozenset({"grant", "top_up"})
"""The kinds that open a grant: positive, each its own grant."""
MAX_AMOUNT_MINOR = 10**15
"""One grant at most (ten trillion USD in cents): sums of any wallet stay far within 64 bits."""
MAX_PRIORITY = 1000
DEFAULT_PRIORITY = 100


class CreditError(Refused, ValueError):
    """A credit grant, rollover or wallet request is refused."""


@dataclass(frozen=True)
class CreditEntry:
    """One movement of credit. `grant` is the grant it moves against (a funding entry is
    its own grant: `grant == id`); `priority`, `promo` and `expires_at_us` are the grant's
    terms, set on funding entries only; `invoice` names the invoice of a consumption or of its
    void."""

    id: str
    customer: str
    kind: EntryKind
    grant: str
    amount_minor: int
    currency: str
    at_us: int
    priority: int | None = None
    promo: bool = False
    expires_at_us: int | None = None
    invoice: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ENTRY_KINDS:
            raise CreditError(f"credit entry {self.id}: unknown kind {self.kind!r}")
        funding = self.kind in FUNDING_KINDS
        if funding != (self.grant == self.id):
            raise CreditError(f"credit entry {self.id}: only a grant or top-up is its own grant")
        positive = self.kind in FUNDING_KINDS or self.kind == "void"
        if (self.amount_minor > 0) != positive or self.amount_minor == 0:
            raise CreditError(
                f"credit entry {self.id}: a {self.kind} of {self.amount_minor} has the wrong sign"
            )
        if abs(self.amount_minor) > MAX_AMOUNT_MINOR:
            raise CreditError(f"credit entry {self.id}: more than {MAX_AMOUNT_MINOR} minor units")
        if self.expires_at_us is not None and self.expires_at_us <= self.at_us:
            raise CreditError(f"credit entry {self.id}: expires before it takes effect")


@dataclass(frozen=True)
class GrantState:
    """A grant with what is left of it."""

    grant: CreditEntry
    remaining_minor: int

    def usable_at(self, at_us: int) -> bool:
        g = self.grant
        return (
            self.remaining_minor > 0
            and g.at_us <= at_us
            and (g.expires_at_us is None or at_us < g.expires_at_us)
        )

    def draw_order(self) -> tuple[int, int, int, str]:
        g = self.grant
        expiry = g.expires_at_us if g.expires_at_us is not None else 2**63
        return (g.priority or DEFAULT_PRIORITY, expiry, g.at_us, g.id)


def format_minor(amount_minor: int, currency: str) -> str:
    """Minor units as a decimal string with the currency's places, e.g. '12.50'."""
    places = minor_unit(currency)
    return f"{Decimal(amount_minor).scaleb(-places):.{places}f}"


def grants(entries: Iterable[CreditEntry]) -> dict[str, GrantState]:
    """Each grant by id with what is left of it: the sum of every entry against it."""
    entries = list(entries)
    funding = {e.id: e for e in entries if e.kind in FUNDING_KINDS}
    left = {grant_id: 0 for grant_id in funding}
    for entry in entries:
        if entry.grant not in left:
            raise CreditError(f"credit entry {entry.id}: no grant {entry.grant!r}")
        left[entry.grant] += entry.amount_minor
    for grant_id, remaining in left.items():
        assert remaining >= 0, f"grant {grant_id} overdrawn"
    return {grant_id: GrantState(funding[grant_id], left[grant_id]) for grant_id in funding}


def balance_minor(entries: Iterable[CreditEntry], at_us: int | None = None) -> int:
    """The sum of the entries that took effect by `at_us` (all of them when None)."""
    return sum(e.amount_minor for e in entries if at_us is None or e.at_us <= at_us)


def pending_minor(entries: Iterable[CreditEntry], at_us: int) -> int:
    """Credit granted with an effective instant still to come."""
    return sum(e.amount_minor for e in entries if e.kind in FUNDING_KINDS and e.at_us > at_us)


def expiries(entries: Sequence[CreditEntry], until_us: int) -> list[CreditEntry]:
    """The expiry entries due by `until_us` and not yet written: what is left of each grant
    whose expiry instant has come, as an entry at that exact instant."""
    due = []
    for state in grants(entries).values():
        g = state.grant
        if g.expires_at_us is None or g.expires_at_us > until_us or state.remaining_minor <= 0:
            continue
        due.append(_against(g, "expiry", -state.remaining_minor, g.expires_at_us, suffix=""))
    return sorted(due, key=lambda e: (e.at_us, e.id))


def draw_down(
    entries: Sequence[CreditEntry], invoice: str, total_minor: int, currency: str, at_us: int
) -> list[CreditEntry]:
    """The consumption entries an invoice of `total_minor` draws at `at_us`: from grants
    usable then, in draw order, at most the total. Grants of another currency are not
    drawn. Expiries due by `at_us` must be written first (`expiries`)."""
    assert not expiries(entries, at_us), "expire what is due before drawing"
    wanted, drawn = max(total_minor, 0), []
    usable = [s for s in grants(entries).values() if s.usable_at(at_us)]
    for state in sorted(usable, key=GrantState.draw_order):
        if wanted == 0:
            break
        if state.grant.currency != currency:
            continue
        amount = min(wanted, state.remaining_minor)
        drawn.append(_against(state.grant, "consumption", -amount, at_us, invoice=invoice))
        wanted -= amount
    assert -sum(e.amount_minor for e in drawn) <= max(total_minor, 0)
    return drawn


def restorations(entries: Sequence[CreditEntry], invoice: str, at_us: int) -> list[CreditEntry]:
    """What voiding an invoice gives back: each of its consumptions restored to its grant.
    A grant that expired meanwhile gets the credit back and loses it at once (a void
    and an expiry at the same instant), so the expired credit stays expired."""
    out: list[CreditEntry] = []
    states = grants(entries)
    restored = {e.grant for e in entries if e.kind == "void" and e.invoice == invoice}
    for entry in entries:
        if entry.kind != "consumption" or entry.invoice != invoice or entry.grant in restored:
            continue
        g = states[entry.grant].grant
        out.append(_against(g, "void", -entry.amount_minor, at_us, invoice=invoice))
        if g.expires_at_us is not None and g.expires_at_us <= at_us:
            out.append(
                _against(
                    g, "expiry", entry.amount_minor, at_us, invoice=invoice, suffix=":" + invoice
                )
            )
    return out


def applied_minor(entries: Iterable[CreditEntry], invoice: str) -> int:
    """The credit an invoice drew when it was finalized (voids not counted)."""
    return -sum(e.amount_minor for e in entries if e.kind == "consumption" and e.invoice == invoice)


def rollover(
    entries: Sequence[CreditEntry],
    source: str,
    new_id: str,
    cap_minor: int,
    at_us: int,
    expires_at_us: int | None,
) -> list[CreditEntry]:
    """Carry what is left of grant `source` into a new grant `new_id` effective at `at_us`:
    at most `cap_minor`, expiring at `expires_at_us`; the source loses all that is left (a
    `rollover` entry), the part above the cap included. Nothing to carry: no entries."""
    if cap_minor < 0:
        raise CreditError(f"rollover cap {cap_minor} is negative")
    states = grants(entries)
    if source not in states:
        raise CreditError(f"no grant {source!r} to roll over")
    state = states[source]
    if not state.usable_at(at_us):
        return []
    g, carried = state.grant, min(state.remaining_minor, cap_minor)
    out = [_against(g, "rollover", -state.remaining_minor, at_us, suffix="")]
    if carried > 0:
        out.append(
            CreditEntry(
                new_id, g.customer, "grant", new_id, carried, g.currency, at_us,
                priority=g.priority, promo=g.promo, expires_at_us=expires_at_us,
                note=f"rollover of {source}",
            )
        )  # fmt: skip
    return out


def _against(
    grant: CreditEntry,
    kind: EntryKind,
    amount_minor: int,
    at_us: int,
    *,
    invoice: str | None = None,
    suffix: str | None = None,
) -> CreditEntry:
    # Ids are derived, so writing the same movement twice is one entry (idempotent).
    tail = suffix if suffix is not None else (f":{invoice}" if invoice else "")
    return CreditEntry(
        f"{grant.id}:{kind}{tail}",
        grant.customer,
        kind,
        grant.id,
        amount_minor,
        grant.currency,
        at_us,
        invoice=invoice,
    )
