"""Scenarios: what-if transforms of aggregated usage, one small pure function per technique.

A scenario names techniques and their parameters (`lean:cache_hit=0.8,reasoning_cap=2000`);
each technique is a transform of buckets registered in `TECHNIQUES` and applied in that
order. A transform never touches the stored ledger: it returns new buckets.

Costs stay anchored to the ledger: a changed bucket costs its ledger cost plus the
difference its change makes at the catalog's prices (`_recost`), so the baseline is the
ledger's own cost to the nano-USD and only the change is priced from aggregates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction

from payoff.core.allocation import allocate
from payoff.core.buckets import COST_FROM_CATALOG, Bucket, BucketCoster
from payoff.core.errors import Refused
from payoff.core.money import round_div_half_even

MAX_SCENARIO_NAME = 64
MAX_REASONING_CAP = 10**12
MAX_LOOP_FACTOR = Decimal(100)
MAX_DRAFT_LENGTH = 64
MAX_TOKENS_PER_PASS = 64
"""A pass yields at least the one token plain decoding does, and no more than a long draft."""
MAX_PASS_COST = 16
MAX_VALUE_CHARS = 24
MAX_VALUE_PLACES = 12
"""A parameter's text and decimal places are bounded: 1e-999999999 is within 0 and 1, but
its exact fraction would take a billion digits."""
BASELINE = "baseline"


class ScenarioError(Refused, ValueError):
    """A scenario that cannot be read; the message names the parameter."""


Params = Mapping[str, Decimal]


def _scale(count: int, factor: Decimal | Fraction) -> int:
    """count x factor rounded half-even to a whole token (or call)."""
    if isinstance(factor, Fraction):  # in integers: what round(count * factor) gives
        return round_div_half_even(count * factor.numerator, factor.denominator)
    return int((count * factor).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _priced_alike(old: Bucket, new: Bucket) -> bool:
    """Whether the price table reads the same of both: then their catalog costs are equal."""
    return (
        old.batch == new.batch
        and old.calls == new.calls
        and old.uncached == new.uncached
        and old.cache_read == new.cache_read
        and old.cache_write == new.cache_write
        and old.text_output == new.text_output
        and old.reasoning == new.reasoning
        and old.cost_factor == new.cost_factor
    )


def _anchored_visible(pricer: BucketCoster, old: Bucket, new: Bucket, batch: bool | None) -> int:
    """`new`'s visible cost: `old`'s plus the change to its visible output at catalog prices
    (`batch`: the price `new` is costed at), within 0 and `new`'s cost."""
    before, after = pricer.visible_cost(old), pricer.visible_cost(new, batch)
    if before is None or after is None:
        return min(old.cost_visible_nanousd, new.cost_nanousd)
    return min(max(0, old.cost_visible_nanousd + after - before), new.cost_nanousd)


def _recost(pricer: BucketCoster, old: Bucket, new: Bucket) -> Bucket:
    """`new` costed as the ledger cost of `old` plus the change at catalog prices; its
    visible cost likewise."""
    if new.source != COST_FROM_CATALOG:
        return new
    if _priced_alike(old, new):  # no change to price: the ledger's cost, unless unpriceable
        if pricer.table(new) is None:
            return new
        return new.replaced(cost_nanousd=max(0, old.cost_nanousd))
    before, after = pricer.cost(old), pricer.cost(new)
    if before is None or after is None:
        return new
    new = new.replaced(cost_nanousd=max(0, old.cost_nanousd + after - before))
    return new.replaced(cost_visible_nanousd=_anchored_visible(pricer, old, new, None))


# -- the techniques ---------------------------------------------------------------------


def cache_hit(buckets: Sequence[Bucket], params: Params, pricer: BucketCoster) -> list[Bucket]:
    """A share H of each call's input is read from the prompt cache; writes are kept, but
    at H = 0, no caching at all, where nothing is written to a cache either: every input
    token is read at the full price. A model without a cache-read price (or without prices)
    is left as it is."""
    share = params["cache_hit"]
    result = []
    for b in buckets:
        table = pricer.table(b) if b.source == COST_FROM_CATALOG else None
        if table is None or not table.reads_cache:
            result.append(b)
            continue
        total = b.uncached + b.cache_read + b.cache_write
        if not share:
            new = b.replaced(cache_read=0, cache_write=0, uncached=total)
        else:
            read = min(_scale(total, share), total - b.cache_write)
            new = b.replaced(cache_read=read, uncached=total - b.cache_write - read)
        result.append(_recost(pricer, b, new))
    return result


def _split(b: Bucket, calls: int) -> tuple[Bucket, Bucket]:
    """(`calls` of the bucket's calls, the rest), tokens shared pro rata per class."""
    share = Fraction(calls, b.calls)

    def part(count: int) -> int:
        return _scale(count, share)

    moved = b.replaced(
        calls=calls,
        uncached=part(b.uncached),
        cache_read=part(b.cache_read),
        cache_write=part(b.cache_write),
        text_output=part(b.text_output),
        reasoning=part(b.reasoning),
    )
    rest = b.replaced(
        calls=b.calls - calls,
        uncached=b.uncached - moved.uncached,
        cache_read=b.cache_read - moved.cache_read,
        cache_write=b.cache_write - moved.cache_write,
        text_output=b.text_output - moved.text_output,
        reasoning=b.reasoning - moved.reasoning,
    )
    return moved, rest


def whole_calls(buckets: Sequence[Bucket], indexes: Sequence[int], factor: Decimal) -> list[int]:
    """The calls of the buckets at `indexes` after scaling by `factor`, in whole calls.

    The total is round(factor x their calls), half-even, over all of them: rounding each
    bucket (most hold a call or two) would move none of them at 0.5. It is shared across
    customers, then across each customer's buckets, by largest remainder, so every customer
    gets its own share to a call (a plan is rated per customer).
    """
    result = [0] * len(indexes)
    total = _scale(sum(buckets[i].calls for i in indexes), factor)
    if total == 0:
        return result
    by_customer: dict[str, list[int]] = defaultdict(list)  # positions in `indexes`
    for position, i in enumerate(indexes):
        by_customer[buckets[i].customer].append(position)
    names = sorted(by_customer)
    weights = [sum(buckets[indexes[p]].calls for p in by_customer[name]) for name in names]
    for name, share in zip(names, allocate(total, weights), strict=True):
        positions = by_customer[name]
        if share == 0:
            continue
        parts = allocate(share, [buckets[indexes[p]].calls for p in positions])
        for position, part in zip(positions, parts, strict=True):
            result[position] = part
    return result


def _batched(pricer: BucketCoster, b: Bucket, calls: int) -> list[Bucket]:
    """`calls` of the bucket's calls at the batch price, the rest as they were."""
    base = pricer.cost(b)
    moved, rest = _split(b, calls)
    moved_cost = pricer.cost(moved, batch=True)
    rest_cost = pricer.cost(rest)
    assert base is not None and moved_cost is not None and rest_cost is not None
    # The part left interactive keeps the ledger's cost less what the moved part cost; the
    # moved part is costed at the batch price, its visible output too.
    rest = rest.replaced(cost_nanousd=max(0, b.cost_nanousd - base + rest_cost))
    rest = rest.replaced(cost_visible_nanousd=_anchored_visible(pricer, b, rest, None))
    moved_visible = pricer.visible_cost(moved, batch=True)
    assert moved_visible is not None
    moved = moved.replaced(
        batch=True, cost_nanousd=moved_cost, cost_visible_nanousd=min(moved_visible, moved_cost)
    )
    return [moved, *([rest] if rest.calls else [])]


def batch(buckets: Sequence[Bucket], params: Params, pricer: BucketCoster) -> list[Bucket]:
    """A share B of the calls not already batched (of models with a batch price) runs at
    the catalog's batch price: whole calls, B of them over the ledger (`whole_calls`)."""
    eligible = [
        i
        for i, b in enumerate(buckets)
        if b.source == COST_FROM_CATALOG
        and not b.batch
        and b.calls > 0
        and pricer.table(b) is not None
        and pricer.table(b, batch=True) is not None
    ]
    moving = dict(zip(eligible, whole_calls(buckets, eligible, params["batch"]), strict=True))
    result: list[Bucket] = []
    for i, b in enumerate(buckets):
        calls = moving.get(i, 0)
        result.extend(_batched(pricer, b, calls) if calls else [b])
    return result


def target_passes_per_token(accept: Fraction, draft: int) -> Fraction:
    """(1 - A) / (1 - A^(G+1)): target forward passes per output token (Leviathan et al.,
    2023); its inverse is the expected tokens per target pass, 3.3616 at A=0.8, G=4."""
    assert 0 <= accept < 1 and draft >= 1
    return (1 - accept) / (1 - accept ** (draft + 1))


def speculative_cost_factor(accept: Fraction, draft: int, draft_cost: Fraction) -> Fraction:
    """Cost per output token relative to plain decoding: each target pass comes with G draft
    passes at C of its cost, (1 + G*C) * (1 - A) / (1 - A^(G+1))."""
    return (1 + draft * draft_cost) * target_passes_per_token(accept, draft)


def speculative(buckets: Sequence[Bucket], params: Params, pricer: BucketCoster) -> list[Bucket]:
    """Speculative decoding: fewer target passes per output token on every model; the
    provider's cost follows its passes only on models it pays GPU time for."""
    accept = Fraction(params["spec_accept"])
    draft = int(params["spec_draft"])
    passes = target_passes_per_token(accept, draft)
    cost = speculative_cost_factor(accept, draft, Fraction(params.get("draft_cost", Decimal(0))))
    return _decoded(buckets, pricer, passes, cost)


def medusa(buckets: Sequence[Bucket], params: Params, pricer: BucketCoster) -> list[Bucket]:
    """Medusa heads (Cai et al., 2024): extra decoding heads on the target model propose
    tokens a tree-attention pass verifies; measured as T tokens per target pass, each pass
    costing `medusa_pass_cost` plain passes (the heads' overhead; 1 when not given)."""
    per_pass = Fraction(params["medusa_tokens_per_pass"])
    pass_cost = Fraction(params.get("medusa_pass_cost", Decimal(1)))
    return _decoded(buckets, pricer, 1 / per_pass, pass_cost / per_pass)


def lookahead(buckets: Sequence[Bucket], params: Params, pricer: BucketCoster) -> list[Bucket]:
    """Lookahead decoding (Fu et al., 2024): Jacobi iterations propose n-grams the same
    pass verifies, with no draft model; measured as T tokens per target pass, each pass
    costing `lookahead_pass_cost` plain passes (its wider window; 1 when not given)."""
    per_pass = Fraction(params["lookahead_tokens_per_pass"])
    pass_cost = Fraction(params.get("lookahead_pass_cost", Decimal(1)))
    return _decoded(buckets, pricer, 1 / per_pass, pass_cost / per_pass)


def _decoded(
    buckets: Sequence[Bucket], pricer: BucketCoster, passes: Fraction, cost: Fraction
) -> list[Bucket]:
    """Every decoded bucket at `passes` target passes per output token; its cost by `cost`
    (relative to plain decoding) only on models the provider pays GPU time for."""
    result = []
    for b in buckets:
        if b.provider is None or b.model is None:  # tools and custom units are not decoded
            result.append(b)
            continue
        new = b.replaced(passes_factor=passes)
        if (b.provider, b.model) in pricer.gpu_priced:
            new = new.replaced(cost_factor=cost)
        result.append(_recost(pricer, b, new))
    return result


def reasoning_cap(buckets: Sequence[Bucket], params: Params, pricer: BucketCoster) -> list[Bucket]:
    """At most N reasoning tokens per task; the cut is shared over the task's calls pro rata
    (largest remainder), and the output shrinks by what is cut."""
    cap = int(params["reasoning_cap"])
    by_task: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, b in enumerate(buckets):
        if b.task is not None and b.reasoning:
            by_task[(b.customer, b.task)].append(index)
    result = list(buckets)
    for indexes in by_task.values():
        spent = sum(buckets[i].reasoning for i in indexes)
        if spent <= cap:
            continue
        cuts = allocate(spent - cap, [buckets[i].reasoning for i in indexes])
        for i, cut in zip(indexes, cuts, strict=True):
            old = buckets[i]
            result[i] = _recost(pricer, old, old.replaced(reasoning=old.reasoning - cut))
    return result


def loops(buckets: Sequence[Bucket], params: Params, pricer: BucketCoster) -> list[Bucket]:
    """Hidden steps (every step not visible) scaled by F: calls, over the ledger in whole
    calls (`whole_calls`); each bucket's tokens and given costs with its calls."""
    hidden = [i for i, b in enumerate(buckets) if not b.visible and b.calls > 0]
    scaled = dict(zip(hidden, whole_calls(buckets, hidden, params["loops"]), strict=True))
    result = []
    for i, b in enumerate(buckets):
        if i not in scaled:
            result.append(b)
            continue
        calls = scaled[i]
        if calls == 0:  # the steps no longer run: no tokens, no cost
            continue
        share = Fraction(calls, b.calls)
        new = b.replaced(
            calls=calls,
            uncached=_scale(b.uncached, share),
            cache_read=_scale(b.cache_read, share),
            cache_write=_scale(b.cache_write, share),
            text_output=_scale(b.text_output, share),
            reasoning=_scale(b.reasoning, share),
            unpriced=min(calls, _scale(b.unpriced, share)),
        )
        if b.source == COST_FROM_CATALOG:
            new = _recost(pricer, b, new)
        else:  # a cost given with the record (a tool call) scales with the calls
            new = new.replaced(cost_nanousd=_scale(b.cost_nanousd, share))
        result.append(new)
    return result


Transform = Callable[[Sequence[Bucket], Params, BucketCoster], list[Bucket]]


@dataclass(frozen=True)
class Technique:
    transform: Transform
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


TECHNIQUES: dict[str, Technique] = {
    "cache_hit": Technique(cache_hit, ("cache_hit",)),
    "batch": Technique(batch, ("batch",)),
    "speculative": Technique(
        speculative, ("spec_accept", "spec_draft"), ("draft_cost", "price_tracks_cost")
    ),
    "medusa": Technique(medusa, ("medusa_tokens_per_pass",), ("medusa_pass_cost",)),
    "lookahead": Technique(lookahead, ("lookahead_tokens_per_pass",), ("lookahead_pass_cost",)),
    "reasoning_cap": Technique(reasoning_cap, ("reasoning_cap",)),
    "loops": Technique(loops, ("loops",)),
}
"""Applied in this order when a scenario combines several."""
DECODING = ("speculative", "medusa", "lookahead")
"""Each sets a bucket's passes per output token: a scenario names at most one."""


@dataclass(frozen=True)
class Scenario:
    """A named set of technique parameters; the empty scenario is the baseline."""

    name: str
    params: Mapping[str, Decimal] = field(default_factory=dict)

    def techniques(self) -> list[str]:
        return [
            name
            for name, technique in TECHNIQUES.items()
            if any(key in self.params for key in technique.required)
        ]

    def apply(self, buckets: Sequence[Bucket], pricer: BucketCoster) -> list[Bucket]:
        """The buckets as they would be under this scenario (the input is left as it is)."""
        result = list(buckets)
        for name in self.techniques():
            result = TECHNIQUES[name].transform(result, self.params, pricer)
        return result

    def list_output_factor(self) -> Fraction:
        """With `price_tracks_cost=true`, per-token list prices of output follow the
        speculative cost factor: billed output tokens of priced token charges scale by it."""
        if self.params.get("price_tracks_cost", Decimal(0)) != 1:
            return Fraction(1)
        return speculative_cost_factor(
            Fraction(self.params["spec_accept"]),
            int(self.params["spec_draft"]),
            Fraction(self.params.get("draft_cost", Decimal(0))),
        )


# Each parameter: (lowest, highest, whether it must be a whole number).
_BOUNDS: dict[str, tuple[Decimal, Decimal, bool]] = {
    "cache_hit": (Decimal(0), Decimal(1), False),
    "batch": (Decimal(0), Decimal(1), False),
    "spec_accept": (Decimal(0), Decimal("0.999999"), False),
    "spec_draft": (Decimal(1), Decimal(MAX_DRAFT_LENGTH), True),
    "draft_cost": (Decimal(0), Decimal(1), False),
    "price_tracks_cost": (Decimal(0), Decimal(1), True),
    "medusa_tokens_per_pass": (Decimal(1), Decimal(MAX_TOKENS_PER_PASS), False),
    "medusa_pass_cost": (Decimal(1), Decimal(MAX_PASS_COST), False),
    "lookahead_tokens_per_pass": (Decimal(1), Decimal(MAX_TOKENS_PER_PASS), False),
    "lookahead_pass_cost": (Decimal(1), Decimal(MAX_PASS_COST), False),
    "reasoning_cap": (Decimal(0), Decimal(MAX_REASONING_CAP), True),
    "loops": (Decimal(0), MAX_LOOP_FACTOR, False),
}
_BOOLEANS = {"true": Decimal(1), "false": Decimal(0)}


def _value(key: str, text: str) -> Decimal:
    low, high, whole = _BOUNDS[key]
    if key == "price_tracks_cost":
        if text.lower() not in _BOOLEANS:
            raise ScenarioError(f"{key}: true or false, got {text!r}")
        return _BOOLEANS[text.lower()]
    if len(text) > MAX_VALUE_CHARS:
        raise ScenarioError(f"{key}: at most {MAX_VALUE_CHARS} characters, got {text[:32]!r}...")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ScenarioError(f"{key}: not a number: {text!r}") from None
    if value.is_finite() and -int(value.as_tuple().exponent) > MAX_VALUE_PLACES:
        raise ScenarioError(f"{key}: at most {MAX_VALUE_PLACES} decimal places, got {text!r}")
    if not value.is_finite() or not low <= value <= high:
        raise ScenarioError(f"{key}: between {low} and {high}, got {text!r}")
    if whole and value != value.to_integral_value():
        raise ScenarioError(f"{key}: a whole number, got {text!r}")
    return value


def parse_scenario(text: str) -> Scenario:
    """`NAME:key=value,...` into a checked Scenario; ScenarioError names the parameter."""
    name, colon, body = text.partition(":")
    name = name.strip()
    if not colon or not name or len(name) > MAX_SCENARIO_NAME or name == BASELINE:
        raise ScenarioError(
            f"scenario: NAME:key=value,... with a name other than {BASELINE!r}, got {text!r}"
        )
    params: dict[str, Decimal] = {}
    for item in filter(None, (part.strip() for part in body.split(","))):
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or key not in _BOUNDS:
            raise ScenarioError(
                f"scenario {name}: unknown parameter {key!r}; expected one of {', '.join(_BOUNDS)}"
            )
        if key in params:
            raise ScenarioError(f"scenario {name}: {key} given twice")
        params[key] = _value(key, value.strip())
    if not params:
        raise ScenarioError(f"scenario {name}: no parameters")
    for technique in TECHNIQUES.values():
        named = [k for k in (*technique.required, *technique.optional) if k in params]
        missing = [k for k in technique.required if k not in params]
        if named and missing:
            raise ScenarioError(f"scenario {name}: {', '.join(missing)} required with {named[0]}")
    scenario = Scenario(name, params)
    decoding = [t for t in scenario.techniques() if t in DECODING]
    if len(decoding) > 1:
        raise ScenarioError(
            f"scenario {name}: one decoding technique per scenario, got {', '.join(decoding)}"
        )
    return scenario
