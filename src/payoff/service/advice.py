"""Budget advice: which reasoning budget per task pays best under per-outcome pricing.

    store.outcomes_of_tasks ──chunks──▶ lifecycles as of the time ──▶ verified, per task
    store.task_trials ──one row a task──▶ Trial(hidden tokens, cost, what it earned)
                                             └──▶ core.advice.advise ──▶ figures (JSON)

What a verified outcome earns is its price: by default the outcome charge counting its type
in the plan its customer was subscribed to when it was claimed (as its verification policy
is found), or one price for every outcome (`price`: `core.outcome_prices.per_outcome` made
from the command line's `--price`, or from a contract's price). Read only: nothing is
written. It holds a few integers a task (and what its verified outcomes earn), never events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import islice
from typing import Any, NamedTuple

from payoff.core.advice import advise as advise_trials
from payoff.core.budgets import Trial
from payoff.core.errors import Refused
from payoff.core.money import round_usd_to_nanousd
from payoff.core.outcome_prices import OutcomePrice, PriceError, from_charge
from payoff.core.periods import Period, iso_from_us
from payoff.core.plan import ANY, Charge, Plan
from payoff.plan_files import plan_from_body
from payoff.service.clock import now_us
from payoff.service.contracts import ContractRequestError, find_contract
from payoff.service.outcomes import Policies, states
from payoff.store.advice import TaskSelection
from payoff.store.billing import Subscription
from payoff.store.outcomes import StoredOutcome
from payoff.store.protocol import AdvisingStore

OUTCOMES_PER_CHUNK = 5000
"""Outcomes judged at a time: their verdicts are read in one go."""


class AdviceError(Refused):
    """A budget advice request that cannot be carried out; the message says why."""


class PlanPrices:
    """The price of each outcome from its customer's plan when it was claimed (cached)."""

    def __init__(self, store: AdvisingStore) -> None:
        self.store = store
        self._subscriptions: dict[str, list[Subscription]] | None = None
        self._plans: dict[tuple[str, int], Plan | None] = {}
        self.used: dict[str, OutcomePrice] = {}
        """Each price that priced an outcome, by its source."""

    def of(self, outcome: StoredOutcome) -> OutcomePrice | None:
        """The outcome's price; None when no plan charge counts its type."""
        if self._subscriptions is None:
            self._subscriptions = defaultdict(list)
            for sub in self.store.subscriptions(0, 2**62):
                self._subscriptions[sub.customer].append(sub)
        active = [
            sub
            for sub in self._subscriptions.get(outcome.customer, [])
            if sub.starts_at_us <= outcome.claimed_at_us
            and (sub.ends_at_us is None or outcome.claimed_at_us < sub.ends_at_us)
        ]
        if not active:
            return None
        sub = active[-1]
        key = (sub.plan_id, sub.plan_version)
        if key not in self._plans:
            stored = self.store.get_plan(*key)
            self._plans[key] = None if stored is None else plan_from_body(stored.body)
        plan = self._plans[key]
        charge = None if plan is None else _charge_for(plan, outcome.type)
        if plan is None or charge is None:
            return None
        price = from_charge(charge, f"{plan.id}@{plan.version}", plan.currency)
        return self.used.setdefault(price.source, price)


def _charge_for(plan: Plan, outcome_type: str) -> Charge | None:
    """The first outcome charge counting the type: the one an invoice bills it by."""
    for charge in plan.charges:
        if charge.type == "outcome" and charge.outcome in (ANY, outcome_type):
            return charge
    return None


def _chunks(items: Iterable[StoredOutcome], size: int) -> Iterator[list[StoredOutcome]]:
    found = iter(items)
    while chunk := list(islice(found, size)):
        yield chunk


class Earnings:
    """Per task: its verified outcomes and what they earn; and what could not be priced."""

    def __init__(self) -> None:
        self.verified: dict[str, int] = defaultdict(int)
        self.earned_usd: dict[str, Decimal] = defaultdict(Decimal)
        self.pending = 0
        self.unpriced = 0

    def add(self, outcome: StoredOutcome, status: str, price: OutcomePrice | None) -> None:
        if status == "claimed":
            self.pending += 1
        if status != "verified":
            return
        self.verified[outcome.task] += 1
        if price is None:
            self.unpriced += 1
        else:
            self.earned_usd[outcome.task] += price.of(outcome.value)


class ContractScope(NamedTuple):
    """What `--contract` restricts the advice to: the outcomes judged under the contract,
    and the tasks of the customers on a plan whose outcome charge names it."""

    reference: str
    """ID@VERSION"""
    customers: frozenset[str]


def contract_scope(store: AdvisingStore, reference: str, period: Period) -> ContractScope:
    """The contract a reference names (its latest version without @VERSION) and the
    customers subscribed in the period to a plan whose outcome charge names it; AdviceError
    for an unknown contract, or one no plan charge names."""
    try:
        found = find_contract(store, reference)
    except ContractRequestError as exc:
        raise AdviceError(str(exc)) from None
    named = f"{found.id}@{found.version}"
    plans = {
        (plan.id, plan.version) for plan in store.list_plans() if named in plan_contracts(plan.body)
    }
    if not plans:
        raise AdviceError(
            f"no plan charge names contract {named}: it has no price to advise under (name it "
            f"from a plan's outcome charge, `contract: {named}`)"
        )
    customers = frozenset(
        sub.customer
        for sub in store.subscriptions(0, 2**62)
        if (sub.plan_id, sub.plan_version) in plans
        and sub.starts_at_us < period.end_us
        and (sub.ends_at_us is None or sub.ends_at_us > period.start_us)
    )
    return ContractScope(named, customers)


def plan_contracts(body: dict[str, Any]) -> set[str]:
    """The contracts (ID@VERSION) a plan body's outcome charges name."""
    return {
        charge["contract"]
        for charge in body.get("charges", ())
        if isinstance(charge, dict) and isinstance(charge.get("contract"), str)
    }


def _earnings(
    store: AdvisingStore,
    selection: TaskSelection,
    fixed: OutcomePrice | None,
    scope: ContractScope | None = None,
) -> tuple[Earnings, PlanPrices]:
    """Each selected task's verified outcomes as of the time, priced (with a scope, only
    the outcomes its contract judges: priced by the plan charge that names it)."""
    earnings, prices, policies = Earnings(), PlanPrices(store), Policies(store)
    for chunk in _chunks(store.outcomes_of_tasks(selection), OUTCOMES_PER_CHUNK):
        for state in states(store, chunk, selection.as_of_us, policies):
            contract = state.policy.contract
            if scope is not None and (contract is None or contract.reference != scope.reference):
                continue
            verified = state.lifecycle.status == "verified"
            price = prices.of(state.outcome) if fixed is None and verified else fixed
            earnings.add(state.outcome, state.lifecycle.status, price)
    return earnings, prices


def advise(
    store: AdvisingStore,
    label: str,
    task_type: str,
    customer: str | None = None,
    price: OutcomePrice | None = None,
    as_of_us: int | None = None,
    contract: str | None = None,
) -> dict[str, Any]:
    """The outcome rate by hidden tokens per task of a type, the cost per verified outcome,
    and the hidden-token budget per task with the best margin (docs/economics.md); with
    `contract` (ID[@VERSION]), only for the outcomes judged under it and the tasks of the
    customers on a plan naming it."""
    try:
        period = Period.month(label)
    except ValueError as exc:  # the message names no option: a shell adds its own name
        raise AdviceError(str(exc)) from None
    scope = None if contract is None else contract_scope(store, contract, period)
    as_of = store.committed_now_us(now_us) if as_of_us is None else as_of_us
    selection = TaskSelection(task_type, period.start_us, period.end_us, as_of, customer)
    try:
        earnings, prices = _earnings(store, selection, price, scope)
    except PriceError as exc:
        raise AdviceError(str(exc)) from None
    trials, steps_unpriced = [], 0
    for row in store.task_trials(selection):
        if scope is not None and row.customer not in scope.customers:
            continue
        earned = earnings.earned_usd.get(row.task, Decimal(0))
        verified = earnings.verified.get(row.task, 0)
        trials.append(Trial(row.tokens_hidden, row.cost_nanousd, round_usd_to_nanousd(earned),
                            verified))  # fmt: skip
        steps_unpriced += row.unpriced_steps
    whose = "" if customer is None else f" of customer {customer!r}"
    if scope is not None:
        whose += f" on a plan naming contract {scope.reference}"
    if not trials:
        raise AdviceError(
            f"no tasks of type {task_type!r}{whose} started in {label} (as of "
            f"{iso_from_us(as_of)}): there is nothing to advise on"
        )
    figures = advise_trials(trials).as_json()
    used = [price] if price is not None else [prices.used[k] for k in sorted(prices.used)]
    notes = _notes(earnings, steps_unpriced)
    return {
        "period": label,
        "type": task_type,
        "customer": customer,
        "contract": None if scope is None else scope.reference,
        "as_of": iso_from_us(as_of),
        "prices": [price.as_json() for price in used],
        **figures,
        "outcomes_pending": earnings.pending,
        "outcomes_unpriced": earnings.unpriced,
        "unpriced_steps": steps_unpriced,
        "notes": [*figures["notes"], *notes],
    }


def _notes(earnings: Earnings, steps_unpriced: int) -> list[str]:
    found = []
    if earnings.unpriced:
        found.append(
            f"{earnings.unpriced:,} verified outcomes earn nothing here: no outcome charge of "
            "their customer's plan counts their type (give a price with --price)."
        )
    if steps_unpriced:
        found.append(
            f"{steps_unpriced:,} steps have no price: their cost is left out (see `payoff "
            "recost`), so these tasks look cheaper than they were."
        )
    if earnings.pending:
        found.append(
            f"{earnings.pending:,} outcomes still wait for a verdict and count as not verified: "
            "the rates may rise once they are judged."
        )
    return found
