"""Ledger rows as canonical lines, which rows an invoice reads, and the inputs digest: pure,
no database."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from payoff.core.canonical import DocumentError, canonical_json, digest
from payoff.core.derivation import select_rows
from payoff.core.invoicing import Invoice, Rerated, Window, make_invoice
from payoff.core.ledger_rows import (
    AttestationRow,
    EventRow,
    LedgerRows,
    OutcomeRow,
    PlanRow,
    SubscriptionRow,
    TaskRow,
    TaskUpdateRow,
    lines_digest,
    parse_line,
    row_from_value,
    row_line,
)
from payoff.core.periods import Period, iso_from_us
from payoff.core.plan import Charge, Plan
from payoff.core.rating import UsageTotals, inputs_digest

text = st.text(max_size=12)
maybe_text = st.none() | text
count = st.integers(min_value=0, max_value=10**12)
moment = st.integers(min_value=0, max_value=2**62)
events = st.builds(
    EventRow,
    text, moment, moment, text, maybe_text, maybe_text, text, maybe_text, maybe_text,
    count, count, count, count, count, st.booleans(), st.booleans(), maybe_text, maybe_text,
    st.none() | count, st.none() | count, st.none() | count, maybe_text, maybe_text,
)  # fmt: skip


@given(events)
def test_an_event_line_is_the_canonical_json_of_its_row(row: EventRow) -> None:
    line = row_line("events", row)
    assert line == canonical_json({"table": "events", **row._asdict()})
    assert line.isascii()
    assert row_from_value(parse_line(line, "line 1"), "line 1") == ("events", row)


@given(st.dictionaries(text, st.recursive(st.none() | text | count, st.lists, max_leaves=5)))
def test_a_plan_line_holds_its_body_as_canonical_json(body: dict[str, Any]) -> None:
    row = PlanRow("p", 1, "USD", digest(body), body)
    assert row_line("plans", row) == canonical_json({"table": "plans", **row._asdict()})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"table": "wallets"}, "table: not one an invoice reads"),
        ({"table": "tasks", "id": "t"}, "missing"),
        ({"table": "tasks", "id": "t", "customer": "c", "type": None, "started_at_us": 1,
          "created_at_us": True}, "tasks.created_at_us: expected int"),
        ({"table": "tasks", "id": "t", "customer": "c", "type": None, "started_at_us": 1,
          "created_at_us": 1, "status": "open"}, "unknown \\['status'\\]"),
    ],
)  # fmt: skip
def test_a_row_of_the_wrong_shape_is_refused_naming_its_line_and_field(
    value: dict[str, Any], message: str
) -> None:
    with pytest.raises(DocumentError, match=f"line 7: .*{message}"):
        row_from_value(value, "line 7")


def test_a_line_that_is_not_canonical_is_refused() -> None:
    with pytest.raises(DocumentError, match="line 2: not canonical"):
        parse_line('{"table": "tasks"}', "line 2")
    with pytest.raises(DocumentError, match="line 3: not JSON"):
        parse_line('{"table":', "line 3")


def test_the_records_digest_is_the_sha256_of_the_lines_in_order() -> None:
    first = TaskRow("a", "c", None, 1, 1)
    second = TaskRow("b", "c", None, 1, 1)
    rows = LedgerRows(tasks=(second, first, first)).in_order()
    assert rows.tasks == (first, second)
    lines = [row_line("tasks", first), row_line("tasks", second)]
    assert rows.digest() == lines_digest(lines)


totals = st.builds(
    UsageTotals,
    st.integers(0, 31), st.integers(28, 31),
    st.dictionaries(text, count, max_size=3), st.dictionaries(text, count, max_size=2),
    count, count,
    st.lists(st.tuples(maybe_text, text, count), max_size=3).map(tuple),
    st.lists(st.tuples(text, st.decimals(allow_nan=False, allow_infinity=False)), max_size=3).map(
        tuple
    ),
)  # fmt: skip


@given(st.lists(totals, max_size=3))
def test_the_inputs_digest_is_the_one_invoices_recorded_before(inputs: list[UsageTotals]) -> None:
    """Invoices recorded sha256 of msgspec's JSON of their usage totals; the core writes the
    same bytes with the standard library, so an older invoice's inputs digest is recomputed."""
    before = msgspec.json.encode(inputs, order="sorted")
    now = json.dumps(
        [dataclasses.asdict(t) for t in inputs],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    ).encode()  # fmt: skip
    assert now == before
    assert inputs_digest(inputs).startswith("sha256:")


# -- which rows an invoice reads ------------------------------------------------------------

NOV = Period.month("2026-11")
OCT = Period.month("2026-10")
DAY = 86_400_000_000
AS_OF = NOV.end_us + DAY
PLAN = Plan(id="p", version=1, currency="USD",
            charges=(Charge(name="s", type="subscription", amount=Decimal(1)),))  # fmt: skip


def _invoice(rerated: tuple[Rerated, ...] = ()) -> Invoice:
    window = Window("p@1", "sha256:p", 1, 30)
    return make_invoice(
        invoice_id="c-2026-11", customer="c", period="2026-11", status="finalized", plan=PLAN,
        fees=[], as_of=iso_from_us(AS_OF), plan_digest="sha256:p", inputs_digest="",
        windows=[window], rerated=rerated,
    )  # fmt: skip


def _event(id: str, at: int, received: int = NOV.start_us, customer: str = "c") -> EventRow:
    return EventRow(id, at, received, customer, None, None, "tool", None, None, 0, 0, 0, 0, 0,
                    False, False, None, None, 1, 1, 0, "record", None)  # fmt: skip


def test_an_invoice_reads_its_customers_events_of_its_periods_received_by_its_as_of() -> None:
    rows = LedgerRows(
        events=(
            _event("in", NOV.start_us),
            _event("late", NOV.start_us, received=AS_OF + 1),
            _event("other", NOV.start_us, customer="d"),
            _event("october", OCT.start_us),
            _event("december", NOV.end_us),
        )
    )
    assert [e.id for e in select_rows(rows, _invoice()).events] == ["in"]
    rerated = (Rerated("2026-10", (Window("p@1", "sha256:p", 1, 31),), ()),)
    assert [e.id for e in select_rows(rows, _invoice(rerated)).events] == ["october", "in"]


def test_an_invoice_reads_tasks_dated_in_its_period_and_all_their_statuses() -> None:
    before = NOV.start_us - DAY
    rows = LedgerRows(
        tasks=(TaskRow("started", "c", None, NOV.start_us, 0),
               TaskRow("ended", "c", None, before, 0), TaskRow("old", "c", None, before, 0)),
        task_updates=(
            TaskUpdateRow("ended", "open", "c", None, before, 0),
            TaskUpdateRow("ended", "completed", "c", None, NOV.start_us + DAY, 0),
            TaskUpdateRow("old", "completed", "c", None, before, 0),
        ),
    )  # fmt: skip
    chosen = select_rows(rows, _invoice())
    assert [t.id for t in chosen.tasks] == ["ended", "started"]
    assert [(u.task, u.status) for u in chosen.task_updates] == [("ended", "completed"),
                                                                  ("ended", "open")]  # fmt: skip


def test_an_invoice_reads_claims_of_its_look_back_and_those_judged_in_its_period() -> None:
    long_ago = NOV.start_us - 400 * DAY
    rows = LedgerRows(
        outcomes=(
            OutcomeRow("recent", "t", "c", "x", None, None, NOV.start_us - 30 * DAY, 0),
            OutcomeRow("judged", "t", "c", "x", None, None, long_ago, 0),
            OutcomeRow("forgotten", "t", "c", "x", None, None, long_ago, 0),
        ),
        attestations=(AttestationRow("a", "judged", "reverse", NOV.start_us + DAY, 0),
                      AttestationRow("b", "forgotten", "accept", long_ago, 0)),
    )  # fmt: skip
    chosen = select_rows(rows, _invoice())
    assert [o.id for o in chosen.outcomes] == ["judged", "recent"]
    assert [a.id for a in chosen.attestations] == ["a"]


def test_a_subscription_is_read_without_an_end_set_after_the_invoices_period() -> None:
    rows = LedgerRows(
        subscriptions=(
            SubscriptionRow("c", "p", 1, OCT.start_us, NOV.end_us + 5 * DAY),
            SubscriptionRow("c", "q", 1, NOV.end_us + 5 * DAY, None),
        ),
        plans=(PlanRow("p", 1, "USD", "sha256:p", {}), PlanRow("q", 1, "USD", "sha256:q", {})),
    )
    chosen = select_rows(rows, _invoice())
    assert chosen.subscriptions == (SubscriptionRow("c", "p", 1, OCT.start_us, None),)
    assert [p.id for p in chosen.plans] == ["p"]
