"""Plans: a versioned, immutable price list of charges, and its validation.

A plan is a value; `(id, version)` names it forever. Its charges say what is counted
(subscription, tokens, tasks, outcomes) and how it is priced (a `PriceSpec`). Validation
returns errors, which refuse the plan, and warnings, which do not; each names the charge and
field at fault.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from payoff.core import pricing
from payoff.core.allowances import MAX_WINDOW_HOURS, Limit
from payoff.core.compute import COMPUTE_UNITS
from payoff.core.contracts import Contract
from payoff.core.currency import MINOR_UNITS, ROUNDING_MODES, quantum
from payoff.core.filters import ChargeFilter, filters_disjoint
from payoff.core.outcomes import Policy
from payoff.core.pricing.spec import PriceSpec
from payoff.core.seats import MAX_SEATS
from payoff.core.token_classes import TOKEN_CLASSES
from payoff.core.versions import MAX_VERSION

CHARGE_TYPES = ("subscription", "tokens", "task", "outcome")
TASK_COUNTS = ("completed", "all")
PERIODS = ("month",)
ANY = "*"
MAX_NUMBER = Decimal(10) ** 15
"""Prices, amounts and quantities of a plan stay below this: far beyond any real price,
well inside the precision exact decimal arithmetic keeps."""
"""A plan version fits a 32-bit integer column, the narrowest a ledger backend gives it."""
RESERVED_NAMES = ("minimum_true_up", "maximum_discount")
CONTRACT_REFERENCE = re.compile(r"[^@\s]{1,255}@[1-9][0-9]{0,9}")
"""An outcome contract as a plan names it: ID@VERSION, one version for good."""


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
    description: str | None = None  # the line's words on an invoice; derived when None
    contract: str | None = None  # outcome: ID@VERSION of the contract that verifies claims
    filters: ChargeFilter | None = None  # tokens: only records whose key matches
    compute: str | None = None  # tokens: count GPU-seconds of the tokens, not the tokens
    per_seat: bool = False  # subscription: the amount is per seat, billed by seat-days
    minimum_seats: int | None = None  # subscription, per seat: billed seats never fewer
    limits: tuple[Limit, ...] = ()  # tokens: allowances per window; the price bills overage

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

    def _type_errors(self) -> list[str]:
        rules = _CHARGE_RULES.get(self.type)
        if rules is None:
            return [f"type: unknown charge type {self.type!r}; expected {', '.join(CHARGE_TYPES)}"]
        errors = [f"{name}: not a field of {self.type} charges" for name in _foreign(self, rules)]
        errors += _name_errors(self)
        errors += rules.errors(self)
        if self.price is not None and self.price.model == "percentage" and self.type != "outcome":
            errors.append("model: percentage prices outcome values; use it on outcome charges")
        return errors


MAX_DESCRIPTION_CHARS = 200


def _name_errors(charge: Charge) -> list[str]:
    errors = []
    text = charge.description
    if text is not None and not (0 < len(text.strip()) <= MAX_DESCRIPTION_CHARS):
        errors.append(f"description: non-empty text of at most {MAX_DESCRIPTION_CHARS} characters")
    if not charge.name.strip():
        errors.append("name: a charge needs a name")
    elif charge.name in RESERVED_NAMES:
        errors.append(f"name: {charge.name!r} names invoice adjustment lines; choose another")
    return errors


def _subscription_errors(charge: Charge) -> list[str]:
    errors = []
    if charge.amount is None or charge.amount < 0:
        errors.append("amount: a subscription needs a non-negative amount")
    minimum = charge.minimum_seats
    if minimum is not None and not charge.per_seat:
        errors.append("minimum_seats: only a per_seat subscription counts seats")
    if minimum is not None and not 0 <= minimum <= MAX_SEATS:
        errors.append(f"minimum_seats: a count of seats from 0 to {MAX_SEATS:,}, got {minimum}")
    return errors


def _tokens_errors(charge: Charge) -> list[str]:
    errors = []
    classes = charge.classes
    unknown = [c for c in classes if c not in TOKEN_CLASSES]
    if unknown or not classes or len(set(classes)) != len(classes):
        errors.append(f"classes: a non-empty set of {', '.join(TOKEN_CLASSES)}")
    if (charge.markup is None) == (charge.price is None):
        errors.append("model: a tokens charge has either a price model or a markup")
    if charge.markup is not None and charge.markup < -1:
        errors.append(f"markup: must be at least -1, got {charge.markup}")
    budget = charge.hidden_tokens_per_task_max
    if budget is not None and not 0 <= budget < MAX_NUMBER:
        errors.append(
            f"hidden_tokens_per_task_max: a count of tokens below {MAX_NUMBER:,}, got {budget}"
        )
    if charge.filters is not None:
        errors += charge.filters.errors()
        if budget is not None:
            errors.append(
                "hidden_tokens_per_task_max: a reasoning budget counts every record; "
                "it does not combine with filters"
            )
    if charge.compute is not None:
        if charge.compute not in COMPUTE_UNITS:
            errors.append(f"compute: one of {', '.join(COMPUTE_UNITS)}, got {charge.compute!r}")
        if charge.markup is not None or budget is not None:
            errors.append(
                "compute: a compute charge prices GPU-seconds with a price model; "
                "not with markup or hidden_tokens_per_task_max"
            )
    errors += _limit_errors(charge)
    if budget is not None and charge.markup is not None:
        errors.append(
            "hidden_tokens_per_task_max: a cost-plus charge bills provider cost; a "
            "reasoning budget applies to a priced tokens charge"
        )
    return errors


def _limit_errors(charge: Charge) -> list[str]:
    if not charge.limits:
        return []
    errors = []
    if any(
        value is not None
        for value in (
            charge.markup,
            charge.hidden_tokens_per_task_max,
            charge.filters,
            charge.compute,
        )
    ):
        # Windows are walked over the customer's hourly usage of every record: neither a
        # subset of the records (filters) nor another unit (compute, markup) is kept by the hour.
        errors.append(
            "limits: an allowance applies to a priced tokens charge without a reasoning "
            "budget, markup, filters or compute"
        )
    hours = [limit.every_hours for limit in charge.limits]
    if len(set(hours)) != len(hours):
        errors.append("limits: one limit per window length (every_hours)")
    for index, limit in enumerate(charge.limits):
        if not 1 <= limit.every_hours <= MAX_WINDOW_HOURS:
            errors.append(
                f"limits[{index}].every_hours: whole hours from 1 to {MAX_WINDOW_HOURS:,}, "
                f"got {limit.every_hours}"
            )
        if not 0 <= limit.included < MAX_NUMBER:
            errors.append(
                f"limits[{index}].included: a count below {MAX_NUMBER:,}, got {limit.included}"
            )
    return errors


def _task_errors(charge: Charge) -> list[str]:
    errors = []
    if not charge.task_type:
        errors.append("task_type: required (a task type, or '*')")
    if charge.count not in TASK_COUNTS:
        errors.append(f"count: one of {', '.join(TASK_COUNTS)}, got {charge.count!r}")
    return errors + _price_required(charge)


def _outcome_errors(charge: Charge) -> list[str]:
    errors = [] if charge.outcome else ["outcome: required (an outcome type, or '*')"]
    return errors + _contract_errors(charge) + _price_required(charge)


def _contract_errors(charge: Charge) -> list[str]:
    reference = charge.contract
    if reference is None:
        return []
    errors = []
    if not CONTRACT_REFERENCE.fullmatch(reference):
        errors.append(f"contract: ID@VERSION of an outcome contract, got {reference!r}")
    if charge.policy.contract is None and charge.policy != Policy():
        errors.append(
            "contract: the contract says how claims are verified; remove verification, "
            "accept_after_days, warranty_days and audit_rate from the charge"
        )
    if charge.outcome == ANY:
        errors.append("outcome: a contract defines one outcome type; name it, not '*'")
    return errors


def _price_required(charge: Charge) -> list[str]:
    return ["model: required"] if charge.price is None else []


@dataclass(frozen=True)
class ChargeRules:
    """What one charge type may set, beyond name and type, and how its fields are checked."""

    own_fields: frozenset[str]
    errors: Callable[[Charge], list[str]]


_CHARGE_RULES = {
    "subscription": ChargeRules(
        frozenset({"amount", "per_seat", "minimum_seats"}), _subscription_errors
    ),
    "tokens": ChargeRules(
        frozenset(
            {
                "price",
                "classes",
                "markup",
                "hidden_tokens_per_task_max",
                "filters",
                "compute",
                "limits",
            }
        ),
        _tokens_errors,
    ),
    "task": ChargeRules(frozenset({"price", "task_type", "count"}), _task_errors),
    "outcome": ChargeRules(frozenset({"price", "outcome", "policy", "contract"}), _outcome_errors),
}
assert tuple(_CHARGE_RULES) == CHARGE_TYPES
_DEFAULTS = {
    "classes": TOKEN_CLASSES,
    "count": "completed",
    "policy": Policy(),
    "per_seat": False,
    "limits": (),
}
_OPTIONAL_FIELDS = (
    "price",
    "amount",
    "classes",
    "markup",
    "hidden_tokens_per_task_max",
    "task_type",
    "count",
    "outcome",
    "policy",
    "contract",
    "filters",
    "compute",
    "per_seat",
    "minimum_seats",
    "limits",
)


def _foreign(charge: Charge, rules: ChargeRules) -> list[str]:
    """Fields set away from their default that the charge's type does not read."""
    return [
        "model" if name == "price" else name
        for name in _OPTIONAL_FIELDS
        if name not in rules.own_fields and getattr(charge, name) != _DEFAULTS.get(name)
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
        errors = [error for _, check in PLAN_CHECKS for error in check(self)]
        for charge in self.charges:
            errors += charge.validate(self.currency)
        return errors

    def policy_for(self, outcome_type: str) -> Policy:
        """The verification policy of the first outcome charge that counts this type."""
        for charge in self.charges:
            if charge.type == "outcome" and charge.outcome in (ANY, outcome_type):
                if charge.contract is not None and charge.policy.contract is None:
                    raise ValueError(
                        f"charge {charge.name!r} names contract {charge.contract}: the plan "
                        "was read without its contracts"
                    )
                return charge.policy
        return Policy()

    def contract_references(self) -> list[str]:
        """The contracts the plan's charges name (ID@VERSION), in charge order."""
        return [c.contract for c in self.charges if c.contract is not None]

    def contract_errors(self, contracts: Mapping[str, Contract]) -> list[str]:
        """Errors of the charges naming a contract against the contracts they name (each
        found by its reference): a charge counts the outcome type its contract defines."""
        errors = []
        for charge in self.charges:
            found = contracts.get(charge.contract) if charge.contract is not None else None
            if found is not None and found.outcome != charge.outcome:
                errors.append(
                    f"charge {charge.name!r}: outcome {charge.outcome!r} is not the type "
                    f"{found.outcome!r} that contract {charge.contract} defines"
                )
        return errors

    def with_contracts(self, contracts: Mapping[str, Contract]) -> Plan:
        """The plan with each contract its charges name resolved into their policy (every
        reference must be among `contracts`)."""
        if not self.contract_references():
            return self
        charges = tuple(
            replace(c, policy=Policy(contract=contracts[c.contract]))
            if c.contract is not None
            else c
            for c in self.charges
        )
        return replace(self, charges=charges)

    def warnings(self, task_types: set[str], outcome_types: set[str]) -> list[str]:
        """Charges naming a task or outcome type the ledger has not seen (yet)."""
        found = []
        for charge in self.charges:
            if charge.task_type not in (None, ANY) and charge.task_type not in task_types:
                found.append(f"charge {charge.name!r}: task_type {charge.task_type!r} unseen")
            if charge.outcome not in (None, ANY) and charge.outcome not in outcome_types:
                found.append(f"charge {charge.name!r}: outcome {charge.outcome!r} unseen")
        return found


def _id_errors(plan: Plan) -> list[str]:
    if not plan.id or "@" in plan.id:
        return [f"id: a non-empty name without '@', got {plan.id!r}"]
    return []


def _version_errors(plan: Plan) -> list[str]:
    if not 1 <= plan.version <= MAX_VERSION:
        return [f"version: a positive integer up to {MAX_VERSION:,}, got {plan.version}"]
    return []


def _currency_errors(plan: Plan) -> list[str]:
    if plan.currency not in MINOR_UNITS:
        return [f"currency: unknown ISO 4217 code {plan.currency!r}"]
    return []


def _period_errors(plan: Plan) -> list[str]:
    if plan.period not in PERIODS:
        return [f"period: one of {', '.join(PERIODS)}, got {plan.period!r}"]
    return []


def _rounding_errors(plan: Plan) -> list[str]:
    if plan.rounding not in ROUNDING_MODES:
        return [f"rounding: one of {', '.join(ROUNDING_MODES)}, got {plan.rounding!r}"]
    return []


def _bound_errors(plan: Plan) -> list[str]:
    errors = []
    for name, value in (("minimum", plan.minimum), ("maximum", plan.maximum)):
        if value is None:
            continue
        if not value.is_finite() or value < 0 or value >= MAX_NUMBER:
            errors.append(f"{name}: a non-negative amount, got {value}")
        elif plan.currency in MINOR_UNITS and value != value.quantize(quantum(plan.currency)):
            errors.append(f"{name}: {value} is finer than a {plan.currency} minor unit")
    low, high = plan.minimum, plan.maximum
    if low is not None and high is not None and low.is_finite() and high.is_finite() and low > high:
        errors.append(f"minimum: {low} exceeds maximum {high}")
    return errors


def _charge_set_errors(plan: Plan) -> list[str]:
    errors = []
    names = [charge.name for charge in plan.charges]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        errors.append(f"charges: names must be unique within a plan: {', '.join(repeated)}")
    if not plan.charges:
        errors.append("charges: a plan needs at least one charge")
    return errors + _overlap_errors(plan)


def _overlap_errors(plan: Plan) -> list[str]:
    """Tokens charges of which one is filtered, that count a class in common and whose
    filters are not provably disjoint (`core.filters`): one record would be billed twice."""
    tokens = [c for c in plan.charges if c.type == "tokens"]
    errors = []
    for at, one in enumerate(tokens):
        for other in tokens[at + 1 :]:
            if one.filters is None and other.filters is None:
                continue  # unfiltered charges count every record, as they always have
            if not set(one.classes) & set(other.classes):
                continue
            if not filters_disjoint(one.filters, other.filters):
                errors.append(
                    f"charges {one.name!r} and {other.name!r}: their filters may both match "
                    "one record (make them differ in a fixed part, or count other classes)"
                )
    return errors


PLAN_CHECKS: tuple[tuple[str, Callable[[Plan], list[str]]], ...] = (
    ("id", _id_errors),
    ("version", _version_errors),
    ("currency", _currency_errors),
    ("period", _period_errors),
    ("rounding", _rounding_errors),
    ("minimum and maximum", _bound_errors),
    ("charges", _charge_set_errors),
)
"""The plan's own checks, in the order their errors are reported (each charge's follow)."""
