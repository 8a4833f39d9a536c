"""Rollups: every reader answers from them what the events say, as of any time; invoices are
the same byte for byte; the migration fills them and `verify` finds any that drifted.

The oracle is `event_sums.EventSums`: the same questions summed from the events, as the
store did before it kept rollups. A ledger is written over three days with a clock of the
test's, so that questions land inside a day (read partly from events) as well as after it.
Every test runs on SQLite and on PostgreSQL (conftest's `ledger_target`).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from event_sums import EventSums
from factories import REPO, jsonl
from payoff import demo
from payoff.catalog import Catalog
from payoff.core.periods import US_PER_DAY, Period, to_us
from payoff.plan_files import parse_plan
from payoff.service import ingest, ingest_lines, invoices, numbered_lines, plans
from payoff.service.recost import recost, selection
from payoff.store import open_store, rollups
from payoff.store.protocol import Store

PERIOD_INDEXES = (
    "ix_tasks_started",
    "ix_task_updates_occurred",
    "ix_outcomes_occurred",
    "ix_attestations_occurred",
    "ix_outcome_decisions_occurred",
)
"""Migration 0013's."""

NOV = Period.month("2026-11")
DEC = Period.month("2026-12")
BUDGETS = [(("output",), 1_000), (("input", "output"), 0), (("cache_read", "output"), 50_000)]
OVERRIDES = """prices:
  - {provider: self-hosted, model: llama, input_mtok: "1", output_mtok: "2"}
  - {provider: openai, model: gpt-4o, input_mtok: "2", output_mtok: "8"}
"""
CHEAPER = """prices:
  - {provider: self-hosted, model: llama, input_mtok: "0.5", output_mtok: "1"}
  - {provider: openai, model: gpt-4o, input_mtok: "1", output_mtok: "4"}
"""


def at(text: str) -> int:
    return to_us(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC))


class Clock:
    def __init__(self) -> None:
        self.now_us = at("2026-11-10T10:00:00")

    def __call__(self) -> int:
        return self.now_us


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(ingest, "now_us", fake)
    return fake


@pytest.fixture
def ledger(ledger_target: str) -> Iterator[Store]:
    """A ledger on each backend in turn (conftest's `ledger_target`)."""
    store = open_store(ledger_target)
    yield store
    store.close()


def run_sql(store: Store, *statements: str) -> None:
    """Statements in one transaction of the store's database, whichever backend."""
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        for statement in statements:
            conn.execute(text(statement))


def query(store: Store, statement: str) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        return [tuple(row) for row in conn.execute(text(statement))]


def step(id: str, day: str, customer: str = "globex", **fields: Any) -> dict[str, Any]:
    record = {
        "id": id, "time": f"{day}T12:00:00Z", "customer": customer, "task": f"task-{id[:2]}",
        "task_type": "support.ticket", "provider": "openai", "model": "gpt-4o",
        "input_tokens": 200_000, "cache_read_tokens": 50_000, "output_tokens": 30_000,
        "reasoning_tokens": 20_000, **fields,
    }  # fmt: skip
    return {key: value for key, value in record.items() if value is not None}


def put(store: Store, *records: dict[str, Any]) -> None:
    report = ingest_lines(store, numbered_lines(io.BytesIO(jsonl(*records))), workers=0)
    assert report.clean


def catalog(tmp_path: Path, name: str, text: str) -> Catalog:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return Catalog.from_file(path)


def three_days(store: Store, clock: Clock, tmp_path: Path) -> list[int]:
    """Steps, late steps and two re-pricings over three days; the moments between them."""
    moments = [at("2026-11-10T09:00:00")]
    clock.now_us = at("2026-11-10T10:00:00")
    put(
        store,
        step("a1", "2026-11-03"),
        step("a2", "2026-11-03", visible=True),
        step("b1", "2026-11-04", model="llama", provider="self-hosted", batch=True),
        step("c1", "2026-11-05", customer="acme", task=None, task_type=None),
        step("d1", "2026-11-05", customer="acme", visible=True, reasoning_tokens=None),
    )
    moments += [clock.now_us, at("2026-11-10T12:00:00")]
    clock.now_us = at("2026-11-10T15:00:00")
    put(store, step("a3", "2026-11-06", visible=True), step("e1", "2026-12-01"))
    moments += [clock.now_us, at("2026-11-10T23:59:59")]
    clock.now_us = at("2026-11-12T09:00:00")  # late steps of early November, and a repeat
    put(store, step("a4", "2026-11-01"), step("b2", "2026-11-02", model="llama",
        provider="self-hosted"), step("a1", "2026-11-03"))  # fmt: skip
    moments += [at("2026-11-11T12:00:00"), clock.now_us]
    recost(store, catalog(tmp_path, "o", OVERRIDES), selection(None, None, True),
           clock=lambda: at("2026-11-12T13:00:00"))  # fmt: skip
    moments += [at("2026-11-12T12:59:59"), at("2026-11-12T13:00:00"), at("2026-11-12T14:00:00")]
    clock.now_us = at("2026-11-12T18:00:00")
    put(store, step("f1", "2026-11-07", customer="acme", model="llama", provider="self-hosted"))
    moments += [clock.now_us]
    recost(store, catalog(tmp_path, "c", CHEAPER), selection("globex", None, True),
           clock=lambda: at("2026-11-12T20:00:00"))  # fmt: skip
    recost(store, catalog(tmp_path, "o2", OVERRIDES), selection(None, None, True),
           clock=lambda: at("2026-11-14T08:00:00"))  # fmt: skip
    moments += [at("2026-11-12T19:00:00"), at("2026-11-13T00:00:00"), at("2026-11-14T09:00:00")]
    return [*moments, at("2027-01-01T00:00:00")]


def answers(reader: Any, as_of_us: int) -> list[Any]:
    """Every reader's answer as of a time, for both months, all customers and one."""
    found: list[Any] = []
    for period in (NOV, DEC):
        for customer in (None, "globex"):
            window = (period.start_us, period.end_us, as_of_us)
            found.append(reader.usage_by_day(*window, customer=customer))
            found.append(reader.usage_buckets(*window, customer=customer))
            for classes, budget in BUDGETS:
                found.append(
                    sorted(reader.hidden_over_budget(*window, classes, budget, customer=customer))
                )
    return found


def day_of(date: str) -> int:
    """A date as the rollups key it: days since the Unix epoch."""
    return at(f"{date}T00:00:00") // US_PER_DAY


def mismatches(store: Store) -> list[str]:
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        return rollups.mismatches(conn)


def test_every_reader_answers_what_the_events_say_as_of_every_moment(
    ledger: Store, clock: Clock, tmp_path: Path
) -> None:
    moments = three_days(ledger, clock, tmp_path)
    oracle = EventSums(ledger.engine)  # type: ignore[attr-defined]
    for moment in moments:
        assert answers(ledger, moment) == answers(oracle, moment), dt.datetime.fromtimestamp(
            moment / 1e6, dt.UTC
        )
    # The answers move: the moments do test something.
    assert len({repr(answers(ledger, moment)) for moment in moments}) >= 8
    assert mismatches(ledger) == []


def test_an_as_of_read_sees_one_state_of_the_ledger_while_another_writer_commits(
    ledger: Store, ledger_target: str, clock: Clock
) -> None:
    clock.now_us = at("2026-11-10T10:00:00")
    put(ledger, step("a1", "2026-11-03"))
    as_of_us = clock.now_us
    writer = open_store(ledger_target)
    try:
        with rollups.reading(ledger.engine) as conn:  # type: ignore[attr-defined]
            # Nothing received after the time yet: the rollup table is read as it stands...
            rows, params = rollups.known_rows(conn, rollups.USAGE, as_of_us)
            clock.now_us = at("2026-11-10T11:00:00")
            put(writer, step("a2", "2026-11-03"))  # ...and a step commits in between
            steps = conn.execute(select(func.sum(rows.c.steps)), params).scalar_one()
    finally:
        writer.close()
    assert steps == 1  # as of the time: the step received after it is not there


def test_the_migration_fills_the_rollups_from_the_events(
    ledger: Store, ledger_target: str, clock: Clock, tmp_path: Path
) -> None:
    moments = three_days(ledger, clock, tmp_path)
    before = [answers(ledger, moment) for moment in moments]
    run_sql(
        ledger,
        # the ledger as it was at 0010: the later migrations' indexes and tables gone
        *(f"DROP INDEX {name}" for name in PERIOD_INDEXES),
        *(
            f"DROP TABLE {table}"
            for table in (
                "seat_counts",
                "spend_limits",
                "reservations",
                "credit_entries",
                "evidence_openings",
                "signals",
                "contracts",
                "usage_rollups",
                "task_usage_rollups",
                "rollup_days",
            )
        ),
        "UPDATE alembic_version SET version_num = '0010'",
    )
    ledger.close()
    store = open_store(ledger_target)
    try:
        assert [answers(store, moment) for moment in moments] == before
        assert mismatches(store) == []
    finally:
        store.close()


def test_verify_names_each_rollup_row_that_differs_from_the_events(
    ledger: Store, clock: Clock, tmp_path: Path
) -> None:
    three_days(ledger, clock, tmp_path)
    run_sql(
        ledger,
        "UPDATE usage_rollups SET cost_0 = cost_0 + 1 WHERE model = 'llama'"
        f" AND cost_source = 'catalog' AND day = {day_of('2026-11-02')}"
        f" AND known_day = {day_of('2026-11-12')}",
        "UPDATE task_usage_rollups SET steps = steps + 2 WHERE task = 'task-a4'"
        " AND known_day = (SELECT min(known_day) FROM task_usage_rollups"
        " WHERE task = 'task-a4')",
        "DELETE FROM rollup_days WHERE day = (SELECT min(day) FROM rollup_days)",
    )
    found = mismatches(ledger)
    assert len(found) == 3, found
    assert found == [
        "usage_rollups: cost 130000001 (events say 130000000) for customer='globex', "
        "day=2026-11-02, task_type='support.ticket', provider='self-hosted', model='llama', "
        "batch=0, visible=0, cost_source='catalog'; known 2026-11-12",
        "task_usage_rollups: steps 3 (events say 1) for customer='globex', day=2026-11-01, "
        "task='task-a4', provider='openai', model='gpt-4o', batch=0, visible=0, "
        "cost_source='catalog'; known 2026-11-12",
        "rollup_days: first_seq None, last_received_us None (events say at most 1, at least "
        f"{at('2026-11-10T15:00:00')}) for steps received 2026-11-10",
    ]


# -- invoices ---------------------------------------------------------------------------------

PA2 = """
id: pa2
version: 1
currency: USD
charges:
  - {name: toks, type: tokens, classes: [output], model: graduated, per: 1000, hidden_tokens_per_task_max: 1000, tiers: [{up_to: 2, unit_price: "0.10"}, {up_to: null, unit_price: "0.05", flat: "1.00"}]}
  - {name: in, type: tokens, classes: [input, cache_read], model: per_unit, unit_price: "0.01", per: 1000, hidden_tokens_per_task_max: 5000}
  - {name: sub, type: subscription, amount: "10.00"}
"""  # noqa: E501
PLAN_TEXTS = {
    **{p.stem: p.read_text() for p in sorted((REPO / "examples" / "plans").glob("*.yaml"))},
    "pa2": PA2,
}
RECORDS = list(demo.generate(seed=7, customers=3, month="2026-11", scale=0.05))


def drafts_both_ways(store: Store, as_of_us: int) -> tuple[list[str], list[str]]:
    """The drafts of November as of a time: from the rollups, then from the events."""

    def texts() -> list[str]:
        found = invoices.run_invoices(store, "2026-11", as_of_us=as_of_us)
        return [invoices.invoice_json(draft) for draft in found]

    from_rollups = texts()
    oracle = EventSums(store.engine)  # type: ignore[attr-defined]
    for name in ("usage_by_day", "hidden_over_budget", "usage_buckets"):
        setattr(store, name, getattr(oracle, name))
    try:
        return from_rollups, texts()
    finally:
        for name in ("usage_by_day", "hidden_over_budget", "usage_buckets"):
            delattr(store, name)


@pytest.mark.parametrize("name", sorted(PLAN_TEXTS))
def test_invoices_are_the_same_byte_for_byte(
    name: str, ledger: Store, clock: Clock, tmp_path: Path
) -> None:
    plan = parse_plan(PLAN_TEXTS[name], name)[0]
    plans.apply_plan_text(ledger, PLAN_TEXTS[name], name)
    for customer in demo.customer_names(3):
        plans.subscribe(ledger, customer, f"{plan.id}@{plan.version}", dt.date(2026, 11, 1))
    early = [r for r in RECORDS if str(r.get("time", "")) < "2026-11-20"]
    late = [r for r in RECORDS if r not in early]
    clock.now_us = at("2026-11-21T08:00:00")
    ingest_lines(ledger, demo.as_lines(early), catalog=Catalog(), workers=0)
    clock.now_us = at("2026-12-02T10:00:00")
    ingest_lines(ledger, demo.as_lines(late), catalog=Catalog(), workers=0)
    recost(ledger, catalog(tmp_path, "o", OVERRIDES), selection(None, None, True),
           clock=lambda: at("2026-12-02T11:00:00"))  # fmt: skip
    for moment in ("2026-11-30T00:00:00", "2026-12-02T10:30:00", "2026-12-02T12:00:00"):
        from_rollups, from_events = drafts_both_ways(ledger, at(moment))
        assert from_rollups == from_events
        assert from_rollups


def test_a_grouped_write_across_midnight_rolls_each_batch_up_on_its_own_day(
    ledger: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "BATCH_RECORDS", 2)
    stamps = iter(at(moment) for moment in ("2026-11-10T23:00:00", "2026-11-11T01:00:00"))
    monkeypatch.setattr(ingest, "now_us", lambda: next(stamps))
    records = [step(f"g{n}", f"2026-11-0{n % 3 + 3}") for n in range(4)]
    lines = numbered_lines(io.BytesIO(jsonl(*records)))
    report = ingest_lines(ledger, lines, workers=0, commit_rows=100)  # one transaction
    assert report.accepted == 4
    known = query(ledger, "SELECT DISTINCT known_day FROM usage_rollups")
    days = query(ledger, "SELECT day, first_seq FROM rollup_days ORDER BY day")
    assert sorted(known) == [(20767,), (20768,)]  # November 10th and 11th
    assert days == [(20767, 1), (20768, 3)]
    assert mismatches(ledger) == []
    oracle = EventSums(ledger.engine)  # type: ignore[attr-defined]
    for moment in ("2026-11-10T23:30:00", "2026-11-11T00:30:00", "2026-11-11T02:00:00"):
        assert answers(ledger, at(moment)) == answers(oracle, at(moment))


def test_on_sqlite_each_rollup_sorts_a_batch_once(tmp_path: Path) -> None:
    """The rows a batch adds come out of the GROUP BY in the order they are written in: no
    second sort, which SQLite cannot skip when the day's length or '' is a parameter."""
    store = open_store(tmp_path / "ledger.db")
    statements: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "_rollups (" in statement:
            statements.append((statement, parameters))

    engine = store.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", keep)
    put(store, step("p1", "2026-11-03"), step("p2", "2026-11-04"))
    event.remove(engine, "before_cursor_execute", keep)
    assert len(statements) == 2  # one a rollup
    with engine.connect() as conn:
        for statement, parameters in statements:
            plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                          parameters)]  # fmt: skip
            assert "USE TEMP B-TREE FOR GROUP BY" in plan, plan
            assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan
    store.close()
