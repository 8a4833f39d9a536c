"""Plans: a versioned, immutable price list of charges, and its validation.

A plan is a value; `(id, version)` names it forever. Its charges say what is counted
(subscription, tokens, tasks, outcomes) and how it is priced (a `PriceSpec`). Validation
returns errors, which refuse the plan, and warnings, which do not; each names the charge and
field at fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from payoff.core import pricing
from payoff.core.currency import MINOR_UNITS, ROUNDING_MODES, quantum
from payoff.core.outcomes import Policy
from payoff.core.pricing.spec import PriceSpec
from payoff.core.token_classes import TOKEN_CLASSES

CHARGE_TYPES = ("subscription", "tokens", "task", "outcome")
TASK_COUNTS = ("completed", "all")
PERIODS = ("month",)
ANY = "*"
MAX_NUMBER = Decimal(10) ** 15
"""Prices, amounts and quantities of a plan stay below this: far beyond any real price,
well inside the precision exact decimal arithmetic keeps."""
RESERVED_NAMES = ("minimum_true_up", "maximum_discount")


@dataclass(frozen=True)
class Charge:
    name: str
    type: str
    price: PriceSpec | None = None  # None for subscriptions and cost-plus token charges
    amount: Decimal | None = None  # subscription
    classes: tuple[str, ...] = TOKEN_CLASSES  # tokens
    markup: Decimal | None = None  # tokens, cost-plus: fee = provider cost x (1 + markup)
    hidden_tokens_per_task_max: int | None = None  # tokens: a reasoning budget
    task_type: str | None = None  # task
    count: str = "completed"  # task
    outcome: str | None = None  # outcome
    policy: Policy = field(default_factory=Policy)  # outcome: verification and warranty

    def validate(self, currency: str) -> list[str]:
        errors = self._number_errors()
        if errors:  # NaN, infinities and absurd magnitudes first: nothing else compares them
            return [f"charge {self.name!r}: {error}" for error in errors]
        errors = self._type_errors()
        if self.type == "outcome":
            errors += self.policy.validate()
        elif self.policy != Policy():
            errors.append("verification: only outcome charges verify claims")
        if self.price is not None:
            errors += pricing.validate(self.price)
        if self.type == "tokens" and self.markup is not None and currency != "USD":
            errors.append("markup: provider costs are in USD; a cost-plus charge needs a USD plan")
        return [f"charge {self.name!r}: {error}" for error in errors]

    def _number_errors(self) -> list[str]:
        values: list[tuple[str, Decimal | None]] = [
            ("amount", self.amount),
            ("markup", self.markup),
        ]
        if self.price is not None:
            p = self.price
            values += [
                ("unit_price", p.unit_price),
                ("package_size", p.package_size),
                ("package_price", p.package_price),
                ("rate", p.rate),
                ("fixed_fee", p.fixed_fee),
                ("min_per_event", p.min_per_event),
                ("max_per_event", p.max_per_event),
                ("free_units", p.free_units),
                ("per", p.per),
            ]
            for index, tier in enumerate(p.tiers):
                values += [
                    (f"tiers[{index}].up_to", tier.up_to),
                    (f"tiers[{index}].unit_price", tier.unit_price),
                    (f"tiers[{index}].flat", tier.flat),
                ]
        values.append(("audit_rate", self.policy.audit_rate))
        return [
            f"{name}: a finite number below {MAX_NUMBER:,}, got {value}"
            for name, value in values
            if value is not None and (not value.is_finite() or abs(value) >= MAX_NUMBER)
        ]  # fmt: skip

    def _foreign_fields(self) -> list[str]:
        return _foreign(self)

    def _type_errors(self) -> list[str]:
        if self.type not in CHARGE_TYPES:
            return [f"type: unknown charge type {self.type!r}; expected {', '.join(CHARGE_TYPES)}"]
        errors = [f"{name}: not a field of {self.type} charges" for name in self._foreign_fields()]
        if not self.name.strip():
            errors.append("name: a charge needs a name")
        if self.name in RESERVED_NAMES:
            errors.append(f"name: {self.name!r} names invoice adjustment lines; choose another")
        if self.type == "subscription":
            if self.amount is None or self.amount < 0:
                errors.append("amount: a subscription needs a non-negative amount")
        elif self.type == "tokens":
            unknown = [c for c in self.classes if c not in TOKEN_CLASSES]
            if unknown or not self.classes or len(set(self.classes)) != len(self.classes):
                errors.append(f"classes: a non-empty set of {', '.join(TOKEN_CLASSES)}")
            if (self.markup is None) == (self.price is None):
                errors.append("model: a tokens charge has either a price model or a markup")
            if self.markup is not None and self.markup < -1:
                errors.append(f"markup: must be at least -1, got {self.markup}")
            budget = self.hidden_tokens_per_task_max
            if budget is not None and budget < 0:
                errors.append(f"hidden_tokens_per_task_max: must not be negative, got {budget}")
            if budget is not None and self.markup is not None:
                errors.append(
                    "hidden_tokens_per_task_max: a cost-plus charge bills provider cost; a "
                    "reasoning budget applies to a priced tokens charge"
                )
        elif self.type == "task":
            if not self.task_type:
                errors.append("task_type: required (a task type, or '*')")
            if self.count not in TASK_COUNTS:
                errors.append(f"count: one of {', '.join(TASK_COUNTS)}, got {self.count!r}")
        elif self.type == "outcome" and not self.outcome:
            errors.append("outcome: required (an outcome type, or '*')")
        if self.type in ("task", "outcome") and self.price is None:
            errors.append("model: required")
        if self.price is not None and self.price.model == "percentage" and self.type != "outcome":
            errors.append("model: percentage prices outcome values; use it on outcome charges")
        return errors


# The fields each charge type may set, beyond name and type.
_OWN_FIELDS = {
    "subscription": {"amount"},
    "tokens": {"price", "classes", "markup", "hidden_tokens_per_task_max"},
    "task": {"price", "task_type", "count"},
    "outcome": {"price", "outcome", "policy"},
}
_DEFAULTS = {"classes": TOKEN_CLASSES, "count": "completed", "policy": Policy()}


def _foreign(charge: Charge) -> list[str]:
    own = _OWN_FIELDS[charge.type]
    names = (
        "price",
        "amount",
        "classes",
        "markup",
        "hidden_tokens_per_task_max",
        "task_type",
        "count",
        "outcome",
        "policy",
    )
    return [
        "model" if name == "price" else name
        for name in names
        if name not in own and getattr(charge, name) != _DEFAULTS.get(name)
    ]


@dataclass(frozen=True)
class Plan:
    id: str
    version: int
    currency: str
    charges: tuple[Charge, ...]
    period: str = "month"
    rounding: str = "half_even"
    minimum: Decimal | None = None
    maximum: Decimal | None = None

    def validate(self) -> list[str]:
        """Errors that refuse the plan; empty when it is valid."""
        errors = []
        if not self.id or "@" in self.id:
            errors.append(f"id: a non-empty name without '@', got {self.id!r}")
        if self.version < 1:
            errors.append(f"version: a positive integer, got {self.version}")
        if self.currency not in MINOR_UNITS:
            errors.append(f"currency: unknown ISO 4217 code {self.currency!r}")
        if self.period not in PERIODS:
            errors.append(f"period: one of {', '.join(PERIODS)}, got {self.period!r}")
        if self.rounding not in ROUNDING_MODES:
            errors.append(f"rounding: one of {', '.join(ROUNDING_MODES)}, got {self.rounding!r}")
        for name in ("minimum", "maximum"):
            value = getattr(self, name)
            if value is None:
                continue
            if not value.is_finite() or value < 0 or value >= MAX_NUMBER:
                errors.append(f"{name}: a non-negative amount, got {value}")
            elif self.currency in MINOR_UNITS and value != value.quantize(quantum(self.currency)):
                errors.append(f"{name}: {value} is finer than a {self.currency} minor unit")
        bounded = [v for v in (self.minimum, self.maximum) if v is not None and v.is_finite()]
        if len(bounded) == 2 and self.minimum > self.maximum:  # type: ignore[operator]
            errors.append(f"minimum: {self.minimum} exceeds maximum {self.maximum}")
        names = [charge.name for charge in self.charges]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            errors.append(f"charges: names must be unique within a plan: {', '.join(repeated)}")
        if not self.charges:
            errors.append("charges: a plan needs at least one charge")
        for charge in self.charges:
            errors += charge.validate(self.currency)
        return errors

    def policy_for(self, outcome_type: str) -> Policy:
        """The verification policy of the first outcome charge that counts this type."""
        for charge in self.charges:
            if charge.type == "outcome" and charge.outcome in (ANY, outcome_type):
                return charge.policy
        return Policy()

    def warnings(self, task_types: set[str], outcome_types: set[str]) -> list[str]:
        """Charges naming a task or outcome type the ledger has not seen (yet)."""
        found = []
        for charge in self.charges:
            if charge.task_type not in (None, ANY) and charge.task_type not in task_types:
                found.append(f"charge {charge.name!r}: task_type {charge.task_type!r} unseen")
            if charge.outcome not in (None, ANY) and charge.outcome not in outcome_types:
                found.append(f"charge {charge.name!r}: outcome {charge.outcome!r} unseen")
        return found
