"""`payoff recost`: steps priced again after a price change, and nothing billed rewritten.

Through the real service, store and rating on a real ledger; the rules of what was billed
are table-driven on the pure core.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from factories import REPO, jsonl
from payoff.catalog import Catalog
from payoff.cli import app
from payoff.core.periods import Period, to_us
from payoff.core.recosting import BilledInvoice, BilledMonths
from payoff.service import ingest_lines, invoices, numbered_lines, plans
from payoff.service.bundles import check_bundle_file, export_bundle
from payoff.service.clock import now_us
from payoff.service.rating import rate_period
from payoff.service.recost import recost, recost_json, selection
from payoff.service.verify import verify_ledger
from payoff.store import open_store
from payoff.store.costs import RECOST_BATCH
from payoff.store.protocol import Store

NOV = Period.month("2026-11")
DEC = Period.month("2026-12")


def step(id: str, day: str, model: str = "gpt-4o", **fields: Any) -> dict[str, Any]:
    """A model call of globex: 1M input and 100k output tokens."""
    provider = "openai" if model == "gpt-4o" else "self-hosted"
    return {
        "id": id, "time": f"{day}T12:00:00Z", "customer": "globex", "task": f"task-{id}",
        "provider": provider, "model": model, "input_tokens": 1_000_000,
        "output_tokens": 100_000, **fields,
    }  # fmt: skip


# gpt-4o at the catalog's 2.50 / 10.00 per MTok: 2.50 + 1.00 USD a call; llama unpriced.
CATALOG_GPT_4O = 3_500_000_000
OVERRIDES = """prices:
  - {provider: self-hosted, model: llama, input_mtok: "1", output_mtok: "2"}
  - {provider: openai, model: gpt-4o, input_mtok: "2", output_mtok: "8"}
"""
OVERRIDE_LLAMA = 1_200_000_000  # 1.00 + 0.20 USD a call
OVERRIDE_GPT_4O = 2_800_000_000  # 2.00 + 0.80 USD a call


@pytest.fixture
def ledger(tmp_path: Path) -> Any:
    store = open_store(tmp_path / "ledger.db")
    yield store
    store.close()


@pytest.fixture
def overrides(tmp_path: Path) -> Catalog:
    path = tmp_path / "prices.yaml"
    path.write_text(OVERRIDES)
    return Catalog.from_file(path)


def ingest(store: Store, *records: dict[str, Any]) -> None:
    report = ingest_lines(store, numbered_lines(io.BytesIO(jsonl(*records))), workers=0)
    assert report.clean and report.accepted == len(records)


def costs(store: Store) -> dict[str, int | None]:
    with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
        return dict(conn.execute("SELECT id, cost_nanousd FROM events ORDER BY id"))


def superseded(store: Store) -> int:
    with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
        return int(conn.execute("SELECT count(*) FROM superseded_costs").fetchone()[0])


def test_an_override_prices_the_unpriced_steps_and_a_second_run_changes_nothing(
    ledger: Store, overrides: Catalog
) -> None:
    ingest(
        ledger,
        step("a", "2026-11-03", "llama"),
        step("b", "2026-11-04", "llama"),
        step("c", "2026-11-05"),
        {**step("tool", "2026-11-05"), "kind": "tool", "cost": "0.50"},
    )
    unpriced_only = selection(None, None, False)
    # The packaged catalog cannot price llama: nothing changes.
    before = recost(ledger, Catalog(), unpriced_only)
    assert (before.examined, before.still_unpriced, before.repriced) == (2, 2, 0)

    done = recost(ledger, overrides, unpriced_only)
    assert (done.examined, done.repriced, done.newly_priced) == (2, 2, 2)
    assert (done.cost_before_nanousd, done.cost_after_nanousd) == (0, 2 * OVERRIDE_LLAMA)
    # gpt-4o is priced already: without --all it keeps the cost it was ingested with.
    assert costs(ledger) == {
        "a": OVERRIDE_LLAMA, "b": OVERRIDE_LLAMA, "c": CATALOG_GPT_4O, "tool": 500_000_000,
    }  # fmt: skip
    steps = {s["id"]: s for s in ledger.task_steps("task-a", limit=10)}
    assert steps["a"]["cost_overrides"] == overrides.identity().overrides_sha256
    assert steps["a"]["costed_at_us"] is not None
    assert superseded(ledger) == 2

    again = recost(ledger, overrides, unpriced_only)
    assert (again.examined, again.repriced) == (0, 0)
    everything = recost(ledger, overrides, selection(None, None, True))
    assert (everything.examined, everything.repriced, everything.unchanged) == (3, 1, 2)
    assert costs(ledger)["c"] == OVERRIDE_GPT_4O
    assert recost(ledger, overrides, selection(None, None, True)).repriced == 0
    assert superseded(ledger) == 3  # a cost the record gave is never re-priced
    shown = recost_json(everything, overrides)
    assert (shown["cost_before_usd"], shown["cost_after_usd"]) == ("3.500000000", "2.800000000")


def test_customer_and_since_narrow_what_is_examined(ledger: Store, overrides: Catalog) -> None:
    ingest(
        ledger,
        step("a", "2026-11-03", "llama"),
        step("b", "2026-11-20", "llama"),
        {**step("c", "2026-11-20", "llama"), "customer": "acme", "task": "task-c2"},
    )
    since = dt.date(2026, 11, 10)
    # What the progress bar counts is what the batches read, for every kind of selection.
    for customer, day, every in [(None, None, False), ("acme", None, True), (None, since, True)]:
        chosen = selection(customer, day, every)
        examined = recost(ledger, Catalog(), chosen).examined
        assert examined == ledger.count_steps_to_recost(chosen) > 0
    done = recost(ledger, overrides, selection("globex", since, False))
    assert (done.examined, done.repriced) == (1, 1)
    assert costs(ledger) == {"a": None, "b": OVERRIDE_LLAMA, "c": None}


def test_a_finalized_invoice_never_changes_and_the_difference_is_billed_late(
    ledger: Store, overrides: Catalog
) -> None:
    plans.apply_plan(ledger, REPO / "examples" / "plans" / "cost-plus.yaml")
    plans.subscribe(ledger, "globex", "cost-plus@1", dt.date(2026, 11, 1))
    ingest(ledger, step("nov-llama", "2026-11-03", "llama"), step("nov-gpt", "2026-11-04"))
    (november,) = invoices.run_invoices(ledger, "2026-11", as_of_us=now_us())
    invoices.act_on_invoice(ledger, november["id"], "finalize")
    billed = ledger.get_invoice(november["id"])
    assert billed is not None
    ingest(ledger, step("dec-gpt", "2026-12-01"))

    done = recost(ledger, overrides, selection(None, None, True))
    # November's priced step was billed: kept. Its unpriced step and December's are priced.
    assert (done.repriced, done.newly_priced, done.billed, done.in_billed_months) == (2, 1, 1, 1)
    assert costs(ledger) == {
        "dec-gpt": OVERRIDE_GPT_4O, "nov-gpt": CATALOG_GPT_4O, "nov-llama": OVERRIDE_LLAMA,
    }  # fmt: skip

    # The finalized invoice is as it was, and rating November as of its time still gives it.
    kept = ledger.get_invoice(november["id"])
    assert kept is not None and kept.invoice.to_json() == billed.invoice.to_json()
    then = rate_period(ledger, NOV, billed.as_of_us, "globex")["globex"]
    assert then.fees == [fee for fee in billed.invoice.fees if not fee.late]
    assert then.fees[0].unpriced_steps == 1

    # December bills November's newly priced step as a late line: cost x 1.30.
    (december,) = invoices.run_invoices(ledger, "2026-12", customer="globex")
    (late,) = [fee for fee in december["fees"] if fee.get("late_period") == "2026-11"]
    assert Decimal(late["units"]) == Decimal(OVERRIDE_LLAMA) / 10**9
    assert late["amount"] == "1.56"
    (usage,) = [fee for fee in december["fees"] if "late_period" not in fee]
    assert Decimal(usage["units"]) == Decimal(OVERRIDE_GPT_4O) / 10**9
    invoices.act_on_invoice(ledger, december["id"], "finalize")

    # Nothing moved since: January bills no late line, and a rerun re-prices nothing.
    assert recost(ledger, overrides, selection(None, None, True)).repriced == 0
    (january,) = invoices.run_invoices(ledger, "2027-01", customer="globex")
    assert not [fee for fee in january["fees"] if "late_period" in fee]


def test_questions_asked_as_of_a_time_before_a_recost_get_the_costs_of_then(
    ledger: Store, overrides: Catalog
) -> None:
    ingest(ledger, step("a", "2026-11-03", "llama"), step("b", "2026-11-04"))
    before = now_us()
    recost(ledger, overrides, selection(None, None, True))
    after = now_us()
    by_day_then = ledger.usage_by_day(NOV.start_us, NOV.end_us, before)
    by_day_now = ledger.usage_by_day(NOV.start_us, NOV.end_us, after)
    assert sum(r.cost_nanousd for r in by_day_then) == CATALOG_GPT_4O
    assert sum(r.unpriced_steps for r in by_day_then) == 1
    assert sum(r.cost_nanousd for r in by_day_now) == OVERRIDE_LLAMA + OVERRIDE_GPT_4O
    assert sum(r.unpriced_steps for r in by_day_now) == 0
    buckets_then = ledger.usage_buckets(NOV.start_us, NOV.end_us, before)
    buckets_now = ledger.usage_buckets(NOV.start_us, NOV.end_us, after)
    assert sorted((b.model, b.source, b.cost_nanousd) for b in buckets_then) == [
        ("gpt-4o", "catalog", CATALOG_GPT_4O),
        ("llama", None, 0),
    ]
    assert sorted((b.model, b.source, b.cost_nanousd) for b in buckets_now) == [
        ("gpt-4o", "catalog", OVERRIDE_GPT_4O),
        ("llama", "catalog", OVERRIDE_LLAMA),
    ]


# -- the rules of what was billed ---------------------------------------------------------------

DAY_US = 86_400 * 10**6


@pytest.mark.parametrize(
    ("invoices_billed", "occurred", "cost_set", "billed"),
    [
        # November billed as of Dec 2nd: a cost set before then was billed; after, not yet.
        ([("2026-11", "2026-12-02")], "2026-11-10", "2026-11-10", True),
        ([("2026-11", "2026-12-02")], "2026-11-10", "2026-12-03", False),
        # A later month's invoice re-rates November (its late lines): billed as of its time.
        ([("2026-11", "2026-12-02"), ("2026-12", "2027-01-02")], "2026-11-10", "2026-12-03", True),
        ([("2026-11", "2026-12-02"), ("2027-01", "2027-02-02")], "2026-11-10", "2026-12-03", True),
        ([("2026-11", "2026-12-02"), ("2026-12", "2026-12-02")], "2026-11-10", "2026-12-03", False),
        # A month no invoice billed is billed by none, whatever came after.
        ([("2026-12", "2027-01-02")], "2026-11-10", "2026-11-10", False),
        # Another customer's invoice bills nothing of globex.
        ([], "2026-11-10", "2026-11-10", False),
    ],
)
def test_a_step_is_billed_when_an_invoice_counted_its_cost(
    invoices_billed: list[tuple[str, str]], occurred: str, cost_set: str, billed: bool
) -> None:
    def at(day: str) -> int:
        return to_us(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC))

    found = [BilledInvoice("globex", period, at(as_of)) for period, as_of in invoices_billed]
    found.append(BilledInvoice("acme", "2026-11", at("2027-06-01")))
    months = BilledMonths(found, lookback=24)
    assert months.billed("globex", at(occurred), at(cost_set)) is billed


def test_the_lookback_bounds_which_later_invoices_re_rate_a_month() -> None:
    start = Period.month("2026-11").start_us
    found = [
        BilledInvoice("globex", "2026-11", start + 40 * DAY_US),
        BilledInvoice("globex", "2027-01", start + 100 * DAY_US),
    ]
    assert BilledMonths(found, lookback=2).billed_as_of("globex", start) == start + 100 * DAY_US
    assert BilledMonths(found, lookback=1).billed_as_of("globex", start) == start + 40 * DAY_US
    assert BilledMonths(found, lookback=1).billed_as_of("globex", start - 1) is None


# -- the command ---------------------------------------------------------------------------


def test_the_command_prints_a_summary_and_json(tmp_path: Path) -> None:
    db, prices = tmp_path / "ledger.db", tmp_path / "prices.yaml"
    prices.write_text(OVERRIDES)
    store = open_store(db)
    ingest(store, step("a", "2026-11-03", "llama"), step("b", "2026-11-04"))
    store.close()
    runner = CliRunner()
    shown = runner.invoke(app, ["--db", str(db), "--prices", str(prices), "recost", "--all"])
    assert shown.exit_code == 0, shown.output
    assert "examined 2 steps: re-priced 2 (1 unpriced before)" in shown.output
    assert "3.500000000 USD before, 4.000000000 USD after" in shown.output
    assert "sha256:" in shown.output
    again = runner.invoke(app, ["--db", str(db), "--prices", str(prices), "recost", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["examined"] == 0
    bad = runner.invoke(app, ["--db", str(db), "recost", "--since", "2026-13-01"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output


# -- a crash mid-run -------------------------------------------------------------------------

STEPS = 60_000


def _revised(db: Path) -> tuple[int, int]:
    """(steps re-priced, replaced costs kept), read while a re-pricing may be running."""
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute(
                "SELECT (SELECT count(*) FROM events WHERE costed_at_us IS NOT NULL),"
                " (SELECT count(*) FROM superseded_costs)"
            ).fetchone()
    except sqlite3.OperationalError:
        return 0, 0


@pytest.mark.slow
def test_sigkill_mid_recost_keeps_whole_batches_and_a_rerun_finishes(tmp_path: Path) -> None:
    db, prices = tmp_path / "ledger.db", tmp_path / "prices.yaml"
    prices.write_text(OVERRIDES)
    store = open_store(db)
    records = [step(f"s{n:05d}", "2026-11-03", "llama") for n in range(STEPS)]
    report = ingest_lines(store, numbered_lines(io.BytesIO(jsonl(*records))), workers=0)
    assert report.unpriced == STEPS
    store.close()
    payoff = str(Path(sys.executable).with_name("payoff"))
    command = [payoff, "--db", str(db), "--prices", str(prices), "recost"]

    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _revised(db)[0] == 0 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    landed, kept = _revised(db)
    assert 0 < landed < STEPS, "the kill should land between two committed batches"
    # A batch commits whole: each re-priced step has its replaced cost kept, and no other.
    assert landed == kept and landed % RECOST_BATCH == 0

    rerun = subprocess.run([*command, "--json"], capture_output=True, check=True)
    done = json.loads(rerun.stdout)
    assert (done["examined"], done["repriced"]) == (STEPS - landed, STEPS - landed)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute(
            "SELECT count(*), count(DISTINCT event_seq) FROM superseded_costs"
        ).fetchone() == (STEPS, STEPS)
        assert conn.execute(
            "SELECT count(*), sum(cost_nanousd) FROM events WHERE cost_nanousd IS NOT NULL"
        ).fetchone() == (STEPS, STEPS * OVERRIDE_LLAMA)


@pytest.mark.parametrize("recost_before_finalize", [False, True], ids=["after", "between"])
def test_a_ledger_re_priced_after_its_invoices_still_verifies_and_so_do_their_bundles(
    ledger: Store, overrides: Catalog, tmp_path: Path, recost_before_finalize: bool
) -> None:
    """An invoice reads each cost as it held at its as-of time: `payoff verify` and a
    customer's bundle re-derive it from the costs of then, not from those a re-pricing set
    since (a re-pricing after finalizing, or between the draft and finalizing)."""
    plans.apply_plan(ledger, REPO / "examples" / "plans" / "cost-plus.yaml")
    plans.subscribe(ledger, "globex", "cost-plus@1", dt.date(2026, 11, 1))
    ingest(ledger, step("nov-llama", "2026-11-03", "llama"), step("nov-gpt", "2026-11-04"))
    (november,) = invoices.run_invoices(ledger, "2026-11", as_of_us=now_us())
    if recost_before_finalize:
        recost(ledger, overrides, selection(None, None, True))
    invoices.act_on_invoice(ledger, november["id"], "finalize")
    if not recost_before_finalize:
        recost(ledger, overrides, selection(None, None, True))
    (december,) = invoices.run_invoices(ledger, "2026-12", customer="globex")
    invoices.act_on_invoice(ledger, december["id"], "finalize")

    result = verify_ledger(ledger)
    assert [str(m) for m in result.mismatches] == [] and result.ok
    assert result.invoices == 2

    for period in ("2026-11", "2026-12"):
        bundle = tmp_path / f"{period}.jsonl"
        export_bundle(ledger, "globex", period, bundle, overrides)
        check = check_bundle_file(bundle)
        assert [str(m) for m in check.mismatches] == [], period
        head = json.loads(bundle.read_text().splitlines()[0])
        if period == "2026-11":
            # The re-priced steps hold November's costs of then, named as such (after
            # finalizing, the step November billed is not re-priced: only the unpriced one).
            repriced = ["nov-gpt", "nov-llama"] if recost_before_finalize else ["nov-llama"]
            assert head["repriced_since"] == repriced
            assert any("not priced again" in note for note in check.notes)
        else:
            assert "repriced_since" not in head
            assert check.events_priced == 2  # November's, rated again for its late lines
