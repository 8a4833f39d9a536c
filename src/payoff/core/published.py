"""The two published tables of AI pricing, and how one ledger's figures compare with them.

The techniques table: speculative decoding (40-60 % fewer large-model passes, about -50 %
revenue per query under per-token pricing), chain-of-thought (0 % more visible tokens,
1000 %+ more hidden ones: cost up, revenue flat), agent loops (2000 %+ more hidden tokens),
prompt caching (50-90 % cheaper repeated prompts, about -50 % revenue per cached hit). The
pricing-models table: provider risk, customer risk and value alignment of per-token,
per-task, per-outcome and flat subscription pricing.

Words are derived from the ledger's figures (docs/economics.md defines them) by the
thresholds below; a published figure and the ledger's are compared by range and by sign.
Pure: no I/O, exact decimals only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

RISK_THRESHOLDS = ((Decimal("0.10"), "low"), (Decimal("0.30"), "medium"))
"""A risk below 10 % is low, below 30 % medium, else high."""
ALIGNMENT_THRESHOLDS = (
    (Decimal("0.70"), "poor"),
    (Decimal("0.90"), "moderate"),
    (Decimal("0.99"), "good"),
)
"""Value alignment below 70 % is poor, below 90 % moderate, below 99 % good, else excellent."""
ALIGNMENT_ORDER = ("poor", "moderate", "good", "excellent")
RISK_ORDER = ("low", "medium", "high")


def risk_word(share: Decimal) -> str:
    return next((word for bound, word in RISK_THRESHOLDS if share < bound), "high")


def alignment_word(share: Decimal) -> str:
    return next((word for bound, word in ALIGNMENT_THRESHOLDS if share < bound), "excellent")


@dataclass(frozen=True)
class PublishedModel:
    """One row of the pricing-models table, as published."""

    name: str
    provider_risk: str
    customer_risk: str
    value_alignment: str


PUBLISHED_MODELS = (
    PublishedModel("per-token", "low", "high", "poor"),
    PublishedModel("per-task", "medium", "medium", "good"),
    PublishedModel("per-outcome", "high", "low", "excellent"),
    PublishedModel("subscription", "low", "medium", "moderate"),
)

BY_CONSTRUCTION = {
    ("per-token", "provider_risk"): "cost plus a markup earns on every task, so no cost goes "
    "unpaid: 0 % whatever the ledger",
    ("per-outcome", "customer_risk"): "only verified outcomes are billed, so no spend pays for "
    "a task without one: 0 % whatever the ledger",
    ("subscription", "provider_risk"): "a subscription is shared over every task, so only "
    "usage outside any task can earn nothing",
}
"""Cells the pricing model fixes by its definition: their words hold by construction and are
no evidence from the ledger; they are said so, not counted as agreeing."""

MEANINGS = {
    "provider_risk": "of the provider's cost went to tasks that earned nothing",
    "customer_risk": "of the customers' spend paid for tasks without a verified outcome",
    "value_alignment": "of the customers' spend paid for tasks with a verified outcome",
}


def compare_model(
    published: PublishedModel, figures: dict[str, Decimal | None], bills_nothing: bool = False
) -> dict[str, object]:
    """The ledger's row of one pricing model beside the published one: each measure with
    its figure, its word, the published word, and, where they differ, why. A plan that
    bills nothing in the period (its prices name none of the ledger's task or outcome types)
    gives no figure: its risks would be the plan's mismatch, not the pricing model's."""
    row: dict[str, object] = {"model": published.name}
    notes = []
    if bills_nothing:
        figures = dict.fromkeys(figures)
        notes.append(
            "its plan bills nothing in this period (its charges name none of the ledger's "
            "task or outcome types): no figure, no verdict"
        )
    for measure in ("provider_risk", "customer_risk", "value_alignment"):
        value = figures[measure]
        said = getattr(published, measure)
        word = None
        if value is not None:
            word = alignment_word(value) if measure == "value_alignment" else risk_word(value)
        row[measure] = None if value is None else format(value, "f")
        row[f"{measure}_word"] = word
        row[f"{measure}_published"] = said
        fixed = BY_CONSTRUCTION.get((published.name, measure))
        row[f"{measure}_agrees"] = word == said and fixed is None
        row[f"{measure}_by_construction"] = fixed is not None
        if fixed is not None:
            notes.append(f"{measure} holds by construction: {fixed}")
        elif value is None:
            if not bills_nothing:  # said once above
                notes.append(f"{measure}: no spend or cost to take it over")
        elif word != said:
            order = ALIGNMENT_ORDER if measure == "value_alignment" else RISK_ORDER
            side = "higher" if order.index(word) > order.index(said) else "lower"
            notes.append(
                f"{measure} is {word}, {side} than the published {said}: "
                f"{_percent(value)} {MEANINGS[measure]}"
            )
    row["notes"] = notes
    return row


@dataclass(frozen=True)
class Claim:
    """A published figure of a technique: a range of a change (fractions; None: unbounded)."""

    figure: str  # the name of the ledger's figure it is compared with
    text: str  # as published
    low: Decimal | None
    high: Decimal | None

    def verdict(self, value: Decimal | None) -> str:
        """`agrees` (in range), `same direction` (same sign, another size) or `disagrees`."""
        if value is None:
            return "no figure"
        if (self.low is None or value >= self.low) and (self.high is None or value <= self.high):
            return "agrees"
        bound = self.high if self.low is None else self.low if self.high is None else None
        target = bound if bound is not None else (self.low or 0) + (self.high or 0)
        if target == 0:  # a published "flat": any change disagrees
            return "disagrees"
        same = value * target > 0
        return "same direction" if same else "disagrees"


@dataclass(frozen=True)
class PublishedTechnique:
    name: str
    claims: tuple[Claim, ...]
    depends_on: tuple[str, ...]  # the scenario parameters its figures rest on


FEWER = Decimal("-0.60"), Decimal("-0.40")
FEWER_PASSES_PUBLISHED = FEWER
ABOUT_HALF_LESS = Decimal("-0.60"), Decimal("-0.40")
FLAT = Decimal(0), Decimal(0)

PUBLISHED_TECHNIQUES = (
    PublishedTechnique(
        "speculative decoding",
        (
            Claim("target_passes", "40-60 % fewer large-model passes", *FEWER),
            Claim("revenue per-token", "about -50 % revenue per query", *ABOUT_HALF_LESS),
        ),
        # Not price_tracks_cost: per-token pricing is cost-plus here, which tracks cost.
        ("spec_accept", "spec_draft", "draft_cost"),
    ),
    PublishedTechnique(
        "chain-of-thought",
        (
            Claim("tokens_visible", "0 % visible tokens", *FLAT),
            Claim("tokens_hidden", "1000 %+ hidden tokens", Decimal(10), None),
            Claim("cost", "cost up", Decimal("0.0001"), None),
            Claim("revenue per-outcome", "revenue flat", *FLAT),
            Claim("revenue per-token", "revenue flat", *FLAT),
        ),
        (),
    ),
    PublishedTechnique(
        "agent loops",
        (
            Claim("tokens_hidden", "2000 %+ hidden tokens", Decimal(20), None),
            Claim("cost", "cost up", Decimal("0.0001"), None),
        ),
        (),
    ),
    PublishedTechnique(
        "prompt caching",
        (
            Claim("cost", "50-90 % cheaper repeated prompts", Decimal("-0.90"), Decimal("-0.50")),
            Claim("revenue per-token", "about -50 % revenue per cached hit", *ABOUT_HALF_LESS),
        ),
        ("cache_hit",),
    ),
)


def _percent(fraction: Decimal) -> str:
    return f"{(fraction * 100).quantize(Decimal('0.1'))} %"


def share(fraction: Decimal | None) -> str:
    """A share as a percentage to a tenth, for sentences."""
    return "-" if fraction is None else _percent(fraction)


def percent(change: Decimal | None) -> str:
    """A change as a signed percentage to a tenth, for sentences."""
    if change is None:
        return "-"
    text = _percent(change)
    return text if change < 0 else f"+{text}"
