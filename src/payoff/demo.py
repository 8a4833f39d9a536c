"""A realistic, deterministic month of agent work, for the demo, the tests and the benchmarks.

`generate(seed=..., customers=..., month=...)` yields record dicts (format v1) in time
order per task. The same arguments always give the same records, byte for byte.

What it models:

- customers of very different sizes (task volume falls off geometrically);
- three agents: `support.ticket`, `research.report` and `coding.change`, each with its own
  loop shape, models and outcome (`ticket.resolved`, `report.accepted`, `change.merged`);
- reasoning and non-reasoning models from OpenAI, Anthropic and Google;
- an agent loop: a planning call, tool calls whose results grow the context, model calls
  that read the earlier context from the prompt cache, a reflection, and one visible answer;
- per-task figures calibrated on published ones (see `AGENTS`): hidden tokens are hundreds
  of times the visible output, since every call re-reads its growing context;
- hard and easy tasks, with success rates that differ by agent and difficulty;
- a self-hosted research worker priced by GPU time (`demo_catalog`);
- failed tasks (no outcome), outcome claims with money values; half the failed runs give
  up early, the other half run away in their loop until a step limit stops them, spending
  more hidden tokens than any success (what a per-task reasoning budget would cut);
- with `faults=True`, a few duplicate, conflicting and malformed records that ingest catches.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from payoff.core.periods import to_us
from payoff.records import record_id
from payoff.store.protocol import AdvisingStore, IntegrityStore, RatingStore

if TYPE_CHECKING:  # types only: generating records (benchmarks, tests) loads no console or catalog
    from rich.console import Console

    from payoff.catalog import Catalog
    from payoff.cli.tables import Column
    from payoff.problems import Problem

CUSTOMER_NAMES = ("acme", "globex", "initech", "umbrella", "hooli", "soylent", "stark", "wayne")
LARGEST_CUSTOMER_TASKS = 420
SIZE_FALLOFF = 0.45
RUNAWAY_SHARE = 0.5
"""Of the failed runs, the share that loops on until a step limit stops it."""
RUNAWAY_LOOPS = (4, 10)
"""Loops a runaway run goes on past the longest run of its agent before a step limit stops it."""
OVERCLAIMING_CUSTOMER_RANK = 3
"""This customer's agent starts over-claiming mid-month: claims for failed runs and two more
per run, most of which its customer rejects. The integrity report must flag it."""
SELF_HOSTED_CUSTOMER_RANK = 2
"""This customer's support agent plans on a self-hosted model the packaged catalog cannot
price: its steps stay unpriced (and are shown as such) until a price override covers it."""


@dataclass(frozen=True)
class ModelChoice:
    provider: str
    model: str
    reasons: bool  # emits reasoning tokens


@dataclass(frozen=True)
class Agent:
    """One agent's loop shape, calibrated on published per-task figures (see `AGENTS`)."""

    task_type: str
    outcome: str
    outcome_value: str
    planner: ModelChoice
    worker: ModelChoice
    loops: tuple[int, int]  # tool+model iterations of an easy task, inclusive range
    hard_loops: tuple[int, int]  # the same for a hard task
    hard_share: float  # share of its tasks that are hard
    failure_rate: tuple[float, float]  # of easy and of hard tasks
    cache_miss: float  # share of calls whose prompt cache had expired (read nothing)
    system_tokens: tuple[int, int]
    tool_result_tokens: tuple[int, int]
    worker_output_tokens: tuple[int, int]
    reasoning_tokens: tuple[int, int]
    answer_tokens: tuple[int, int]
    tools: tuple[tuple[str, str], ...]  # (tool name, cost in USD)


SELF_HOSTED = ModelChoice("self-hosted", "llama-3.3-70b-support", False)
GPU_PRICED = ModelChoice("self-hosted", "qwen3-32b-research", True)
"""The research agent's worker: self-hosted and priced by GPU time (`DEMO_PRICES`), so that
fewer decoding passes (speculative decoding) make it cheaper."""

GPU_HOUR_USD, GPUS, TOKENS_PER_SECOND = Decimal("2.40"), 8, (Decimal(20000), Decimal(1200))
"""How the demo prices `GPU_PRICED` (as examples/demo-prices.yaml does): 8 GPUs at $2.40 an hour
serving 20,000 input and 1,200 output tokens a second, about $0.27 and $4.44 a million."""


def demo_catalog(catalog: Catalog) -> Catalog:
    """`catalog` with a price for the demo's GPU-priced model, unless it already has one."""
    from payoff.catalog import Catalog, Override

    known = {(o.provider, o.model) for o in catalog.overrides}
    if (GPU_PRICED.provider, GPU_PRICED.model) in known:
        return catalog
    gpu = Override(
        provider=GPU_PRICED.provider,
        model=GPU_PRICED.model,
        gpu_hour_usd=GPU_HOUR_USD,
        gpus=GPUS,
        input_tokens_per_second=TOKENS_PER_SECOND[0],
        output_tokens_per_second=TOKENS_PER_SECOND[1],
    )
    return Catalog([*catalog.overrides, gpu])


# Calibrated on published figures at current list prices: a support run makes 8-20 model
# calls over 20-60k mostly cached input tokens and 1-3k output tokens (about $0.05-0.40 a
# task); a coding run reads 100k-1M tokens ($1-10 a task); a research run lies in between.
# Hard tasks take more loops and fail more often; coding fails most.
AGENTS = (
    Agent(
        task_type="support.ticket",
        outcome="ticket.resolved",
        outcome_value="120.00",
        planner=ModelChoice("openai", "gpt-4.1-mini", False),
        worker=ModelChoice("openai", "gpt-4o", False),
        loops=(6, 12),
        hard_loops=(10, 17),
        hard_share=0.25,
        failure_rate=(0.05, 0.20),
        cache_miss=0.10,
        system_tokens=(1200, 2000),
        tool_result_tokens=(150, 450),
        worker_output_tokens=(40, 120),
        reasoning_tokens=(0, 0),
        answer_tokens=(180, 420),
        tools=(("kb_search", "0.0004"), ("crm_lookup", "0.0010")),
    ),
    Agent(
        task_type="research.report",
        outcome="report.accepted",
        outcome_value="45.00",
        planner=ModelChoice("google", "gemini-2.5-pro", True),
        worker=GPU_PRICED,
        loops=(6, 10),
        hard_loops=(10, 16),
        hard_share=0.30,
        failure_rate=(0.08, 0.30),
        cache_miss=0.0,
        system_tokens=(2000, 3500),
        tool_result_tokens=(1200, 3500),
        worker_output_tokens=(100, 300),
        reasoning_tokens=(800, 2500),
        answer_tokens=(1500, 3000),
        tools=(("web_search", "0.0050"), ("fetch_page", "0.0002")),
    ),
    Agent(
        task_type="coding.change",
        outcome="change.merged",
        outcome_value="50.00",
        planner=ModelChoice("anthropic", "claude-sonnet-4-5", True),
        worker=ModelChoice("anthropic", "claude-sonnet-4-5", True),
        loops=(12, 22),
        hard_loops=(20, 30),
        hard_share=0.50,
        failure_rate=(0.30, 0.70),
        cache_miss=0.25,
        system_tokens=(6000, 12000),
        tool_result_tokens=(500, 2500),
        worker_output_tokens=(150, 600),
        reasoning_tokens=(1000, 3500),
        answer_tokens=(800, 2000),
        tools=(("run_tests", "0.0030"), ("read_file", "0.0000")),
    ),
)


def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a YYYY-MM month in UTC."""
    try:
        year, number = (int(part) for part in month.split("-"))
        start = dt.datetime(year, number, 1, tzinfo=dt.UTC)
    except ValueError:
        raise ValueError(f"month must be YYYY-MM, got {month!r}") from None
    days = calendar.monthrange(year, number)[1]
    return start, start + dt.timedelta(days=days)


def customer_names(count: int) -> list[str]:
    named = list(CUSTOMER_NAMES[:count])
    return named + [f"customer-{index:03d}" for index in range(len(named), count)]


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _TaskWriter:
    """Builds the records of one task, advancing its clock step by step."""

    def __init__(
        self,
        rng: random.Random,
        customer: str,
        task: str,
        agent: Agent,
        start: dt.datetime,
    ) -> None:
        self.rng, self.customer, self.task = rng, customer, task
        self.agent, self.clock, self.step = agent, start, 0
        self.records: list[dict[str, Any]] = []
        self.overclaims = False

    def _base(self, seconds: tuple[float, float]) -> dict[str, Any]:
        self.clock += dt.timedelta(
            milliseconds=self.rng.randint(int(seconds[0] * 1000), int(seconds[1] * 1000))
        )
        self.step += 1
        return {
            "id": f"{self.task}-{self.step:02d}",
            "time": _stamp(self.clock),
            "customer": self.customer,
            "task": self.task,
        }

    def llm(
        self,
        choice: ModelChoice,
        context: int,
        cached: int,
        output: int,
        reasoning: int,
        step: str,
        visible: bool = False,
    ) -> None:
        record = self._base((1.5, 12.0))
        if self.step == 1:
            record["task_type"] = self.agent.task_type
        # Anthropic caches by explicit breakpoints: the new part of the context is written.
        cache_write = context - cached if choice.provider == "anthropic" else 0
        record.update(
            {
                "kind": "llm",
                "provider": choice.provider,
                "model": choice.model,
                "input_tokens": context,
                "cache_read_tokens": cached,
                "cache_write_tokens": cache_write,
                "output_tokens": output + reasoning,
                "reasoning_tokens": reasoning,
                "visible": visible,
                "attributes": {"step": step},
            }
        )
        self.records.append(record)

    def tool(self, name: str, cost: str) -> None:
        record = self._base((0.2, 4.0))
        record.update({"kind": "tool", "cost": cost, "attributes": {"tool": name}})
        self.records.append(record)

    def status(self, status: str) -> None:
        self.clock += dt.timedelta(milliseconds=300)
        self.records.append(
            {
                "record": "task",
                "id": self.task,
                "customer": self.customer,
                "type": self.agent.task_type,
                "status": status,
                "time": _stamp(self.clock),
            }
        )

    def outcome(self, suffix: str = "", bogus: bool = False) -> None:
        """An outcome claim, and the customer's verdict on it some hours later (if any)."""
        self.clock += dt.timedelta(milliseconds=500)
        outcome_id = f"{self.task}-out{suffix}"
        self.records.append(
            {
                "record": "outcome",
                "id": outcome_id,
                "task": self.task,
                "customer": self.customer,
                "type": self.agent.outcome,
                "value": self.agent.outcome_value,
                "time": _stamp(self.clock),
                "evidence_digest": f"sha256:{self.rng.getrandbits(256):064x}",
            }
        )
        # A customer accepts most genuine claims, rejects a few, leaves some to be deemed;
        # it rejects most claims that did not happen.
        draw = self.rng.random()
        verdict = (
            ("reject" if draw < 0.7 else "accept")
            if bogus
            else ("accept" if draw < 0.93 else "reject" if draw < 0.96 else None)
        )
        if verdict is not None:
            answered = self.clock + dt.timedelta(minutes=self.rng.randint(30, 600))
            self.records.append(
                {
                    "record": "attestation",
                    "id": f"{outcome_id}-verdict",
                    "outcome": outcome_id,
                    "verdict": verdict,
                    "time": _stamp(answered),
                }
            )


def _run_task(writer: _TaskWriter) -> None:
    """One agent run: plan, loop over tools and model calls, reflect, answer. A hard task
    loops longer and fails more often; a failed run stops halfway (or runs away)."""
    a, rng = writer.agent, writer.rng

    def between(bounds: tuple[int, int]) -> int:
        return rng.randint(*bounds)

    def reasoning(choice: ModelChoice) -> int:
        return between(a.reasoning_tokens) if choice.reasons else 0

    hard = rng.random() < a.hard_share
    context = between(a.system_tokens)
    writer.llm(a.planner, context, 0, between(a.worker_output_tokens), reasoning(a.planner), "plan")
    writer.records[-1]["attributes"]["difficulty"] = "hard" if hard else "easy"
    cached = 0
    failed = rng.random() < a.failure_rate[hard]
    loops = between(a.hard_loops if hard else a.loops)
    for loop in range(loops):
        name, cost = rng.choice(a.tools)
        writer.tool(name, cost)
        output = between(a.worker_output_tokens)
        context += between(a.tool_result_tokens)
        read = 0 if rng.random() < a.cache_miss else cached  # the cache expired meanwhile
        writer.llm(a.worker, context, read, output, reasoning(a.worker), "act")
        cached, context = context, context + output
        if failed and loop == loops // 2:
            if random.Random(f"{writer.task}/runaway").random() < RUNAWAY_SHARE:
                _run_away(writer, context, cached, a.hard_loops[1] - loop)
            writer.status("failed")
            if writer.overclaims:
                writer.outcome(bogus=True)  # a failed run claimed as a success
            return
    writer.llm(
        a.worker,
        context,
        cached,
        between(a.worker_output_tokens) // 2,
        reasoning(a.worker),
        "reflect",
    )
    writer.llm(a.planner, context, cached, between(a.answer_tokens), 0, "answer", visible=True)
    writer.status("completed")
    writer.outcome()
    if writer.overclaims:
        writer.outcome("-2", bogus=True)
        writer.outcome("-3", bogus=True)


def _run_away(writer: _TaskWriter, context: int, cached: int, longest: int) -> None:
    """A run stuck in its loop: tools and model calls again and again, the context growing,
    past the `longest` loops a success of its agent takes, until a step limit stops it. Its
    draws come from a generator of its own, so that a runaway changes no other record of
    the month."""
    a = writer.agent
    rng = random.Random(f"{writer.task}/runaway-steps")
    month, writer.rng = writer.rng, rng
    try:
        for _ in range(longest + rng.randint(*RUNAWAY_LOOPS)):
            name, cost = rng.choice(a.tools)
            writer.tool(name, cost)
            output = rng.randint(*a.worker_output_tokens)
            context += rng.randint(*a.tool_result_tokens)
            reasoning = rng.randint(*a.reasoning_tokens) if a.worker.reasons else 0
            writer.llm(a.worker, context, cached, output, reasoning, "act")
            cached, context = context, context + output
    finally:
        writer.rng = month


def generate(
    *, seed: int = 7, customers: int = 6, month: str = "2026-11", scale: float = 1.0
) -> Iterator[dict[str, Any]]:
    """Yield the records of a month of agent work; `scale` multiplies the task counts."""
    rng = random.Random(seed)
    start, end = month_bounds(month)
    span_ms = int((end - start).total_seconds()) * 1000 - 3_600_000
    prefix = f"{month}-s{seed}"
    task_number = 0
    for rank, customer in enumerate(customer_names(customers)):
        tasks = max(3, round(LARGEST_CUSTOMER_TASKS * scale * SIZE_FALLOFF**rank))
        agents = rng.sample(AGENTS, k=rng.randint(1, len(AGENTS)))
        if rank == SELF_HOSTED_CUSTOMER_RANK:  # its support agent plans on an unpriced model
            agents = agents if AGENTS[0] in agents else [*agents, AGENTS[0]]
            agents = [replace(a, planner=SELF_HOSTED) if a is AGENTS[0] else a for a in agents]
        starts = sorted(rng.randrange(span_ms) for _ in range(tasks))
        for offset_ms in starts:
            task_number += 1
            writer = _TaskWriter(
                rng,
                customer,
                f"{prefix}-t{task_number:07d}",
                rng.choice(agents),
                start + dt.timedelta(milliseconds=offset_ms),
            )
            # From mid-month, one customer's agent starts claiming what it did not achieve.
            writer.overclaims = rank == OVERCLAIMING_CUSTOMER_RANK and offset_ms > span_ms // 2
            _run_task(writer)
            yield from writer.records


FAULTS = (
    "a retried send: the same record again (a duplicate: reported, nothing changes)",
    "a retried send: the same record again (a duplicate: reported, nothing changes)",
    "a retried send: the same record again (a duplicate: reported, nothing changes)",
    "a stored id sent with one more output token (a conflict: refused, the first stays)",
    "an unknown field `tokens` (rejected)",
    "negative input_tokens (rejected)",
    "a line cut short, its time `yesterday` (rejected)",
)
"""What each line `with_faults` appends is, in order: the demo says so."""


def with_faults(records: list[dict[str, Any]], seed: int) -> list[dict[str, Any] | bytes]:
    """The records plus a few faults ingest must catch: duplicates, a conflict, bad lines
    (appended after the records, as FAULTS says)."""
    rng = random.Random(seed + 1)
    usage = [r for r in records if "record" not in r]
    faulty: list[dict[str, Any] | bytes] = list(records)
    for original in rng.sample(usage, k=3):  # retried sends: exact duplicates
        faulty.append(dict(original))
    conflicting = dict(rng.choice(usage))  # same id, different body
    conflicting["output_tokens"] = conflicting.get("output_tokens", 0) + 1
    faulty.append(conflicting)
    unknown_field = dict(rng.choice(usage), id="malformed-1", tokens=12)
    negative = dict(rng.choice(usage), id="malformed-2", input_tokens=-5)
    faulty += [unknown_field, negative, b'{"id": "malformed-3", "time": "yesterday"']
    assert len(faulty) - len(records) == len(FAULTS)
    return faulty


def as_lines(records: list[dict[str, Any] | bytes]) -> Iterator[tuple[int, bytes]]:
    encode = msgspec.json.encode
    for number, record in enumerate(records, start=1):
        yield number, record if isinstance(record, bytes) else encode(record)


class DemoStore(RatingStore, IntegrityStore, AdvisingStore, Protocol):
    """What the demo touches: it ingests, reads tasks, applies plans, rates, reports and advises."""


def run(
    store: DemoStore,
    catalog: Catalog,
    *,
    seed: int,
    customers: int,
    month: str,
    console: Console,
    charts_prefix: Path | None = None,
    ledger: str = "demo.db",
) -> None:
    """Generate, ingest and summarise a demo month (the `payoff demo` command); with
    `charts_prefix`, end with the pricing-model comparison, the technique table, the published
    tables and charts written as PREFIX-revenue.png, PREFIX-tokens.png, PREFIX-risk.png and
    PREFIX-tables.png. It ends with the
    next commands to try on `ledger` (the README's Quickstart)."""
    from payoff import service
    from payoff.service import tasks

    catalog = demo_catalog(catalog)
    _subscribe(store, customers, month)
    records = with_faults(list(generate(seed=seed, customers=customers, month=month)), seed)
    # Received as the simulated month closes, not on the day the demo runs: the integrity
    # and economics tables read as of the month's end and its acceptance window, and must
    # print the same whatever the day.
    received_at_us = to_us(month_bounds(month)[1])
    report = service.ingest_lines(
        store, as_lines(records), catalog=catalog, source="demo", clock=lambda: received_at_us
    )
    console.print(
        f"Ingested a month ({month}) of agent work for {customers} customers: "
        f"accepted {report.accepted}, duplicates {report.duplicates}, "
        f"conflicts {report.conflicts}, rejected {report.rejected}."
    )
    _print_faults(records, report.problems, console)
    print_cost_by_type(tasks.cost_by_type(store), console)
    counts = tasks.ledger_counts(store)
    console.print(
        f"{counts.events:,} steps, {counts.unpriced_events:,} unpriced; "
        f"{counts.tasks:,} tasks, {counts.outcomes:,} outcome claims."
    )
    _integrity(store, month, console)
    if counts.unpriced_events:
        console.print(
            "Unpriced steps use a model the catalog does not know; their cost is "
            "unknown, not zero. Price them with `payoff --prices FILE` "
            "(see examples/prices.yaml)."
        )
    if charts_prefix is not None:
        _economics(store, catalog, month, console, charts_prefix)
    _next_steps(ledger, month, console)


def _usage_columns() -> list[Column]:
    from payoff.cli.tables import Column

    return [
        Column("type", "agent (task type)", "id"),
        Column("tasks", "tasks", "count"),
        Column("failed_tasks", "failed", "count"),
        Column("tokens_visible", "visible tokens", "count"),
        Column("tokens_hidden", "hidden tokens", "count"),
        Column("hidden_ratio", "hidden/visible", "exact"),
        Column("cost_usd", "cost USD", "exact"),
        Column("cost_per_task_usd", "cost/task", "exact"),
        Column("outcomes", "outcomes", "count"),
        Column("cost_per_outcome_usd", "cost/outcome", "exact"),
        Column("unpriced_steps", "unpriced steps", "count"),
    ]


RATIO_PLACES = Decimal("0.1")


def cost_by_type_cells(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The cells of the demo's usage table, from `tasks.cost_by_type` rows: USD to four
    places, hidden tokens per visible one to a tenth."""
    from payoff.cli.tables import cells

    shown = []
    for row in rows:
        visible = row["tokens_visible"]
        ratio = Decimal(row["tokens_hidden"]) / Decimal(visible) if visible else None
        usd = ("cost_usd", "cost_per_task_usd", "cost_per_outcome_usd")
        shown.append(
            {
                **row,
                **{key: _usd(row[key]) if row[key] is not None else None for key in usd},
                "type": row["type"] or "(untyped)",
                "hidden_ratio": None
                if ratio is None
                else f"{ratio.quantize(RATIO_PLACES, ROUND_HALF_EVEN)}x",
            }
        )
    return [cells(row, _usage_columns()) for row in shown]


def print_cost_by_type(rows: Sequence[dict[str, Any]], console: Console) -> None:
    """The demo's "Where the tokens and the money go" table: no number cut at any width."""
    from payoff.cli.tables import show

    show(console, "Where the tokens and the money go", _usage_columns(), cost_by_type_cells(rows))


def _print_faults(
    records: list[dict[str, Any] | bytes], problems: Sequence[Problem], console: Console
) -> None:
    """Which lines were bad on purpose, and what ingest said of each it refused."""
    said = {problem.line: problem for problem in problems}
    first = len(records) - len(FAULTS) + 1
    console.print(f"Bad on purpose: the last {len(FAULTS)} lines, for ingest to catch.")
    injected = zip(records[first - 1 :], FAULTS, strict=True)
    for number, (record, fault) in enumerate(injected, start=first):
        shown = record.get("id") if isinstance(record, dict) else record_id(record)
        console.print(f"  line {number} ({shown}): {fault}", markup=False, highlight=False)
        problem = said.pop(number, None)
        if problem is not None:
            field = f" `{problem.field}`" if problem.field else ""
            console.print(
                f"    ingest said: {problem.status}{field}: {problem.reason}",
                markup=False,
                highlight=False,
            )
    for problem in said.values():  # none unless the generator itself went wrong
        console.print(
            f"  line {problem.line} ({problem.id}): {problem.status}: {problem.reason}",
            markup=False,
            highlight=False,
        )


def _next_steps(ledger: str, month: str, console: Console) -> None:
    """The commands to try next, as in the README's Quickstart."""
    lines = (
        "Next, on this ledger (the README's Quickstart goes on from here):",
        "  source .venv/bin/activate      # or call .venv/bin/payoff",
        f"  export PAYOFF_DB={ledger}",
        "  payoff tasks --customer acme --limit 5",
        "  payoff ingest examples/usage.jsonl",
        f"  payoff invoice run --period {month}",
        f"  payoff integrity --period {month}",
        f"  payoff report --period {month} --by task_type",
    )
    for line in lines:
        console.print(line, markup=False, highlight=False)


DEMO_ACCEPTANCE_DAYS = 7
DEMO_PLAN = """
id: demo-outcomes
version: 1
currency: USD
charges:
  - {name: platform, type: subscription, amount: "199.00"}
  - {name: resolved, type: outcome, outcome: ticket.resolved, model: per_unit,
     unit_price: "0.99", verification: customer, accept_after_days: 7, warranty_days: 90}
  - {name: reports, type: outcome, outcome: report.accepted, model: per_unit,
     unit_price: "4.00", verification: customer, accept_after_days: 7, warranty_days: 90}
  - {name: merges, type: outcome, outcome: change.merged, model: percentage, rate: "0.05",
     min_per_event: "2.00", verification: customer, accept_after_days: 7, warranty_days: 90}
"""
"""The demo's plan: outcome charges whose claims the customer verifies (deemed after 7 days)."""


def _subscribe(store: DemoStore, customers: int, month: str) -> None:
    """Put the demo's customers on the demo plan from the month's first day (before their
    claims arrive: the plan says how claims are verified)."""
    from payoff.service import plans

    plans.apply_plan_text(store, DEMO_PLAN, "demo plan")
    start, _ = month_bounds(month)
    first = dt.date(start.year, start.month, 1)
    subscribed = {s.customer for s in plans.subscriptions(store)}
    for customer in customer_names(customers):
        if customer not in subscribed:
            plans.subscribe(store, customer, "demo-outcomes", first)


def _integrity(store: DemoStore, month: str, console: Console) -> None:
    """Print the integrity report of the month and the customers it flags."""
    from payoff.cli.outcomes import print_report
    from payoff.service import integrity

    # As of the month's end and its acceptance window: the same ledger gives the same report,
    # whatever the machine's clock says.
    _, end = month_bounds(month)
    as_of = end + dt.timedelta(days=DEMO_ACCEPTANCE_DAYS + 1)
    rows = integrity.report(store, month, as_of_us=to_us(as_of))
    console.print(
        f"Outcome integrity as of {as_of:%Y-%m-%d} (customers verify claims; flags say why). "
        f"The demo judges claims as of the month's end plus the {DEMO_ACCEPTANCE_DAYS}-day "
        "acceptance window and a day, so that the same ledger always prints the same report. "
        "`payoff integrity` and `payoff invoice run` judge as of now: before that date a "
        "claim still inside its window counts as pending there, not deemed verified, and "
        "records ingested or verdicts given since change the counts.",
        markup=False,
        highlight=False,
    )
    print_report(rows)
    flagged = sorted({row.customer for row in rows if row.flags})
    console.print(f"Flagged: {', '.join(flagged) if flagged else 'none'}.")


def _usd(text: str) -> str:
    """A nine-place USD string rounded (half-even) to four places for a table (display only)."""
    return format(Decimal(text).quantize(Decimal("0.0001"), ROUND_HALF_EVEN), "f")


COMPARED_PLANS = {
    "cost-plus": """
id: cost-plus
version: 1
currency: USD
charges:
  - {name: usage, type: tokens, markup: "0.30"}
""",
    "per-task": """
id: per-task
version: 1
currency: USD
charges:
  - {name: tickets, type: task, task_type: support.ticket, count: completed, model: per_unit,
     unit_price: "0.60"}
  - {name: reports, type: task, task_type: research.report, count: completed, model: per_unit,
     unit_price: "3.00"}
  - {name: changes, type: task, task_type: coding.change, count: completed, model: per_unit,
     unit_price: "8.00"}
""",
    "per-outcome": """
id: per-outcome
version: 1
currency: USD
charges:
  - {name: resolved-tickets, type: outcome, outcome: ticket.resolved, model: per_unit,
     unit_price: "0.99"}
  - {name: accepted-reports, type: outcome, outcome: report.accepted, model: per_unit,
     unit_price: "4.00"}
  - {name: merged-changes, type: outcome, outcome: change.merged, model: percentage,
     rate: "0.05", min_per_event: "2.00"}
""",
    "hybrid": """
id: hybrid
version: 1
currency: USD
minimum: "200.00"
maximum: "5000.00"
charges:
  - {name: platform, type: subscription, amount: "499.00"}
  - name: token-overage
    type: tokens
    classes: [input, cache_read, cache_write, output]
    model: graduated
    free_units: 5000000
    per: 1000000
    hidden_tokens_per_task_max: 20000
    tiers:
      - {up_to: 50, unit_price: "3.00"}
      - {up_to: null, unit_price: "2.00"}
  - name: tickets
    type: task
    task_type: support.ticket
    count: completed
    model: graduated
    tiers:
      - {up_to: 1000, unit_price: "0.10"}
      - {up_to: null, unit_price: "0.05", flat: "20.00"}
""",
}
"""The four pricing models compared: the same plans as examples/plans/*.yaml (a test checks)."""

DEMO_SCENARIOS = (
    "cache:cache_hit=0.97",  # above the ledger's own 88 %: what more caching would save
    "batch:batch=0.5",
    "speculative:spec_accept=0.8,spec_draft=4,draft_cost=0.05,price_tracks_cost=true",
    "reasoning-cap:reasoning_cap=1000",
    "fewer-loops:loops=0.5",
)


def _outcome_margins(
    store: DemoStore, month: str, task_types: list[str], as_of_us: int, console: Console
) -> None:
    """Each agent's margin a task when each verified outcome is paid its plan's price (what
    `payoff advise --type T` reads): an agent whose tasks fail often loses money so."""
    from payoff.service.advice import AdviceError, advise

    console.print("Paid per verified outcome, each agent's margin a task:")
    for task_type in sorted(task_types):
        try:
            figures = advise(store, month, task_type, as_of_us=as_of_us)
        except AdviceError:
            continue  # no tasks of the type started in the month
        margin = Decimal(figures["revenue_usd"]) - Decimal(figures["cost_usd"])
        per_task = (margin / figures["tasks"]).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
        loses = (
            " (loses money: the provider's risk under per-outcome pricing)" if margin < 0 else ""
        )
        console.print(
            f"  {task_type}: {figures['tasks_verified']} of {figures['tasks']} tasks verified, "
            f"revenue {_usd(figures['revenue_usd'])} USD against cost "
            f"{_usd(figures['cost_usd'])} USD, {per_task} USD a task{loses}",
            markup=False,
            highlight=False,
        )


def _economics(
    store: DemoStore, catalog: Catalog, month: str, console: Console, prefix: Path
) -> None:
    """The four pricing models side by side, the technique table, the published tables
    recomputed, and the charts."""
    from payoff import charts
    from payoff.cli.economics import print_simulation
    from payoff.cli.published import print_tables
    from payoff.plan_files import parse_plan
    from payoff.service import economics, published_tables

    _, end = month_bounds(month)
    as_of_us = to_us(end + dt.timedelta(days=DEMO_ACCEPTANCE_DAYS + 1))
    plans = [parse_plan(text, f"demo plan {name}")[0] for name, text in COMPARED_PLANS.items()]
    scenarios = economics.parse_scenarios(DEMO_SCENARIOS)
    result = economics.simulate(store, month, plans, scenarios, catalog, as_of_us=as_of_us)
    console.print("Pricing models compared on this ledger (every customer on each plan):")
    print_simulation(result)
    by_type = economics.report(store, month, "task_type", as_of_us=as_of_us)
    published = published_tables.tables(store, month, catalog, as_of_us=as_of_us)
    console.print("The published tables of AI pricing, recomputed from this ledger:")
    print_tables(published, console)
    _outcome_margins(store, month, [row["key"] for row in by_type["rows"]], as_of_us, console)
    written = [
        charts.money_chart(result, prefix.with_name(prefix.name + "-revenue.png")),
        charts.tokens_chart(by_type, prefix.with_name(prefix.name + "-tokens.png")),
        charts.risk_chart(result, prefix.with_name(prefix.name + "-risk.png")),
        charts.published_chart(published, prefix.with_name(prefix.name + "-tables.png")),
    ]
    for path in written:
        console.print(f"chart: {path}", markup=False, highlight=False)
