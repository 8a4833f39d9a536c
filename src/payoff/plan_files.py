"""Plan files (YAML) to validated, immutable `Plan` values and their canonical bodies.

See docs/plans.md for the format. Unknown fields are errors; every error names the charge
and the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from payoff.core.allowances import Limit
from payoff.core.contracts import Contract
from payoff.core.errors import Refused
from payoff.core.filters import ChargeFilter
from payoff.core.outcomes import Policy
from payoff.core.plan import Charge, Plan
from payoff.core.pricing import PriceSpec, Tier
from payoff.core.token_classes import TOKEN_CLASSES
from payoff.nesting import MAX_DEPTH, too_deep_reason


class PlanError(Refused):
    """A plan file is malformed or invalid; the message names the charge and field."""


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class TierFile(_Strict):
    unit_price: Decimal
    up_to: Decimal | None = None
    flat: Decimal = Decimal(0)


class FiltersFile(_Strict):
    provider: str | None = None
    model: str | None = None
    task_type: str | None = None
    batch: bool | None = None


class LimitFile(_Strict):
    every_hours: int
    included: int


class ChargeFile(_Strict):
    name: str
    type: Literal["subscription", "tokens", "task", "outcome"]
    model: str | None = None
    amount: Decimal | None = None
    unit_price: Decimal | None = None
    tiers: list[TierFile] | None = None
    package_size: Decimal | None = None
    package_price: Decimal | None = None
    rate: Decimal | None = None
    fixed_fee: Decimal = Decimal(0)
    min_per_event: Decimal | None = None
    max_per_event: Decimal | None = None
    free_units: Decimal = Decimal(0)
    per: Decimal = Decimal(1)
    classes: list[str] | None = None
    markup: Decimal | None = None
    hidden_tokens_per_task_max: int | None = None
    task_type: str | None = None
    count: str = "completed"
    outcome: str | None = None
    verification: str = "none"
    accept_after_days: int | None = None
    warranty_days: int | None = None
    audit_rate: Decimal = Decimal(0)
    description: str | None = None
    contract: str | None = None
    filters: FiltersFile | None = None
    compute: str | None = None
    per_seat: bool = False
    minimum_seats: int | None = None
    limits: list[LimitFile] | None = None

    def to_charge(self) -> Charge:
        price = None
        if self.model is not None:
            price = PriceSpec(
                model=self.model,
                unit_price=self.unit_price,
                tiers=tuple(Tier(t.up_to, t.unit_price, t.flat) for t in self.tiers or ()),
                package_size=self.package_size,
                package_price=self.package_price,
                rate=self.rate,
                fixed_fee=self.fixed_fee,
                min_per_event=self.min_per_event,
                max_per_event=self.max_per_event,
                free_units=self.free_units,
                per=self.per,
            )
        return Charge(
            name=self.name,
            type=self.type,
            price=price,
            amount=self.amount,
            classes=tuple(self.classes) if self.classes is not None else TOKEN_CLASSES,
            markup=self.markup,
            hidden_tokens_per_task_max=self.hidden_tokens_per_task_max,
            task_type=self.task_type,
            count=self.count,
            outcome=self.outcome,
            policy=Policy(
                verification=self.verification,
                accept_after_days=self.accept_after_days,
                warranty_days=self.warranty_days,
                audit_rate=self.audit_rate,
            ),
            description=self.description,
            contract=self.contract,
            filters=None
            if self.filters is None
            else ChargeFilter(
                self.filters.provider,
                self.filters.model,
                self.filters.task_type,
                self.filters.batch,
            ),
            compute=self.compute,
            per_seat=self.per_seat,
            minimum_seats=self.minimum_seats,
            limits=tuple(Limit(x.every_hours, x.included) for x in self.limits or ()),
        )


class PlanFile(_Strict):
    id: str
    version: int
    currency: str
    charges: list[ChargeFile]
    period: str = "month"
    rounding: str = "half_even"
    minimum: Decimal | None = None
    maximum: Decimal | None = None

    def to_plan(self) -> Plan:
        return Plan(
            id=self.id,
            version=self.version,
            currency=self.currency,
            charges=tuple(charge.to_charge() for charge in self.charges),
            period=self.period,
            rounding=self.rounding,
            minimum=self.minimum,
            maximum=self.maximum,
        )


class TooDeep(yaml.YAMLError):
    """A plan nests past the one bound of every input (`payoff.nesting`)."""


class DecimalLoader(yaml.SafeLoader):
    """YAML with exact numbers: a bare `0.30` is read from its text, never through float;
    and no deeper than MAX_DEPTH levels of mappings and sequences (YAML nests by indentation
    as well as by brackets: the composer counts them, before it recurses)."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        collection = self.check_event(yaml.MappingStartEvent, yaml.SequenceStartEvent)
        if collection and self._depth >= MAX_DEPTH:
            raise TooDeep(too_deep_reason())
        self._depth += collection
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= collection


def _exact_number(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")
    if text.lower() in (".nan", ".inf", "+.inf", "-.inf"):
        return Decimal(text.lower().replace(".", "").replace("inf", "Infinity"))
    return Decimal(text)


def _plain_integer(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | Decimal:
    """Whole numbers as written in decimal: YAML 1.1's octal (010) and base-60 forms would
    silently change a price."""
    text = str(loader.construct_scalar(node)).replace("_", "")
    if not re.fullmatch(r"[-+]?[0-9]+", text) or (
        len(text.lstrip("+-")) > 1 and text.lstrip("+-")[0] == "0"
    ):
        raise yaml.constructor.ConstructorError(
            None, None, f"write the number {text!r} in plain decimal", node.start_mark
        )
    return int(text)


DecimalLoader.add_constructor("tag:yaml.org,2002:float", _exact_number)
DecimalLoader.add_constructor("tag:yaml.org,2002:int", _plain_integer)


def parse_plan(data: bytes | str, source: str = "plan") -> tuple[Plan, dict[str, Any]]:
    """A validated Plan and its canonical body (the JSON that `(id, version)` names)."""
    try:
        loaded = yaml.load(data, Loader=DecimalLoader)
        parsed = msgspec.convert(loaded, type=PlanFile)
    except TooDeep:
        raise PlanError(f"{source}: {too_deep_reason()}") from None
    except yaml.YAMLError as exc:
        raise PlanError(f"{source}: not valid YAML ({exc})") from None
    except msgspec.ValidationError as exc:
        raise PlanError(f"{source}: {_name_charge(str(exc), loaded)}") from None
    except RecursionError:  # bounded above; a last line of defence
        raise PlanError(f"{source}: {too_deep_reason()}") from None
    except UnicodeError:  # YAML's "\ud800" escapes make strings that are not Unicode text
        raise PlanError(f"{source}: holds text that is not valid Unicode") from None
    plan = parsed.to_plan()
    try:
        errors = plan.validate()
    except ArithmeticError as exc:  # a last line of defence: validation compares numbers
        raise PlanError(f"{source}: a number cannot be used ({exc!r})") from None
    if errors:
        raise PlanError(f"{source}: " + "; ".join(errors))
    body = msgspec.to_builtins(parsed)
    for charge in body["charges"]:
        # A charge without a description, a contract, filters, compute or seats keeps the
        # body, and the digest, it had before they existed.
        for optional in (
            "description",
            "contract",
            "filters",
            "compute",
            "minimum_seats",
            "limits",
        ):
            if charge[optional] is None:
                del charge[optional]
        if "filters" in charge:
            charge["filters"] = {k: v for k, v in charge["filters"].items() if v is not None}
        if not charge["per_seat"]:
            del charge["per_seat"]
    return plan, body


def _name_charge(message: str, loaded: Any) -> str:
    """msgspec says `$.charges[2].tiers`; say which charge that is, by name."""
    match = re.search(r"\$\.charges\[(\d+)\]", message)
    if match and isinstance(loaded, dict):
        charges = loaded.get("charges") or []
        index = int(match.group(1))
        if index < len(charges) and isinstance(charges[index], dict) and "name" in charges[index]:
            return f"charge {charges[index]['name']!r}: {message}"
    return message


def load_plan(path: str | Path) -> tuple[Plan, dict[str, Any]]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PlanError(f"cannot read plan {path}: {exc.strerror}") from None
    return parse_plan(data, str(path))


ContractLookup = Callable[[str], Contract | None]
"""A contract by its reference (ID@VERSION), or None when there is none."""


def plan_from_body(body: dict[str, Any], contracts: ContractLookup | None = None) -> Plan:
    """A stored plan's value; with `contracts`, each contract its charges name resolved
    into their policy (PlanError when one is missing or defines another outcome type)."""
    plan = msgspec.convert(body, type=PlanFile).to_plan()
    return plan if contracts is None else with_contracts(plan, contracts)


def with_contracts(plan: Plan, contracts: ContractLookup, source: str | None = None) -> Plan:
    """The plan with its contracts resolved; PlanError names a missing or mismatched one."""
    where = source or f"plan {plan.id}@{plan.version}"
    found: dict[str, Contract] = {}
    for reference in plan.contract_references():
        contract = contracts(reference)
        if contract is None:
            raise PlanError(
                f"{where}: contract {reference} is not applied; apply it first with "
                "`payoff contracts apply FILE`"
            )
        found[reference] = contract
    errors = plan.contract_errors(found)
    if errors:
        raise PlanError(f"{where}: " + "; ".join(errors))
    return plan.with_contracts(found)
