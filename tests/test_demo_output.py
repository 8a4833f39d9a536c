"""What `payoff demo` tells a newcomer: the bad lines it sent on purpose, its as-of time,
the commands to try next, and a usage table whose numbers are never cut."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from clock_support import set_clock
from factories import REPO
from payoff import demo
from payoff.catalog import Catalog
from payoff.cli import app
from payoff.core.money import parse_usd_exact_nanousd
from payoff.core.periods import to_us
from payoff.demo import FAULTS
from payoff.service import ingest_lines, invoices, numbered_lines, plans, tasks
from payoff.store import open_store


def test_the_demo_names_its_faults_its_as_of_time_and_the_next_commands(tmp_path: Path) -> None:
    ledger = tmp_path / "d.db"
    result = CliRunner().invoke(app, ["demo", "--db", str(ledger), "--customers", "2"])
    assert result.exit_code == 0, result.output
    out = result.output
    listed = re.findall(r"^  line (\d+) \(([^)]+)\): (.+)$", out, re.MULTILINE)
    assert [fault for _, _, fault in listed] == list(FAULTS)
    numbers = [int(number) for number, _, _ in listed]
    assert numbers == list(range(numbers[0], numbers[0] + len(FAULTS)))
    assert [name for _, name, _ in listed][-3:] == ["malformed-1", "malformed-2", "malformed-3"]
    # Every refused line says what ingest said of it; duplicates are only counted.
    assert out.count("    ingest said: ") == 4
    assert "as of 2026-12-09" in out and "`payoff integrity`" in out
    next_steps = out[out.index("Next, on this ledger") :]
    assert f"export PAYOFF_DB={ledger}" in next_steps
    assert "payoff ingest examples/usage.jsonl" in next_steps


@pytest.fixture(scope="module")
def demo_rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """`tasks.cost_by_type` rows of a small demo ledger with examples/usage.jsonl, built once
    (it is slow)."""
    store = open_store(tmp_path_factory.mktemp("demo") / "ledger.db")
    demo._subscribe(store, 4, "2026-11")
    records = list(demo.generate(seed=5, customers=4, month="2026-11", scale=0.2))
    ingest_lines(store, demo.as_lines(records), catalog=Catalog())
    with (REPO / "examples" / "usage.jsonl").open("rb") as examples:
        ingest_lines(store, numbered_lines(examples), catalog=Catalog())
    rows = tasks.cost_by_type(store)
    assert {s.customer for s in plans.subscriptions(store)} >= set(demo.customer_names(4))
    assert tasks.ledger_counts(store).tasks == sum(row["tasks"] for row in rows)
    store.close()
    return rows


def test_cost_by_type_averages_whole_nanousd_per_task_and_outcome(
    demo_rows: list[dict[str, Any]],
) -> None:
    assert demo_rows
    for row in demo_rows:
        cost_nanousd = parse_usd_exact_nanousd(row["cost_usd"])
        per_task = parse_usd_exact_nanousd(row["cost_per_task_usd"])
        assert per_task == cost_nanousd // row["tasks"]
        if row["outcomes"]:
            per_outcome = parse_usd_exact_nanousd(row["cost_per_outcome_usd"])
            assert per_outcome == cost_nanousd // row["outcomes"]
        else:
            assert row["cost_per_outcome_usd"] is None


@pytest.mark.parametrize("width", [80, 100, 120])
def test_the_demo_usage_table_never_cuts_a_number(
    demo_rows: list[dict[str, Any]], width: int
) -> None:
    console = Console(width=width, file=io.StringIO())
    demo.print_cost_by_type(demo_rows, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    numbers = {cell for row in demo.cost_by_type_cells(demo_rows) for cell in row[1:]}
    assert {f"{row['tokens_hidden']:,}" for row in demo_rows} <= numbers
    missing = sorted(number for number in numbers if number not in text)
    assert not missing, f"at {width}: not whole: {missing[:5]}"


@pytest.mark.parametrize("width", [80, 100, 120])
def test_the_demo_usage_table_never_breaks_a_task_type_or_a_header_word(
    demo_rows: list[dict[str, Any]], width: int
) -> None:
    console = Console(width=width, file=io.StringIO())
    demo.print_cost_by_type(demo_rows, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    words = {row["type"] for row in demo_rows}
    words |= {word for column in demo._usage_columns() for word in column.header.split()}
    broken = sorted(word for word in words if word not in text)
    assert not broken, f"at {width}: broken: {broken[:5]}"


@pytest.mark.slow
def test_the_demo_prints_the_same_whatever_day_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its integrity and economics tables read as of the month's end and its acceptance
    window: a run months later prints the same tables, and the same invoice digests."""

    def demo_run(name: str) -> tuple[str, list[str]]:
        ledger = tmp_path / name / "d.db"
        ledger.parent.mkdir()
        result = CliRunner().invoke(app, ["demo", "--db", str(ledger), "--customers", "2"])
        assert result.exit_code == 0, result.output
        store = open_store(ledger)
        try:
            as_of = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)  # a day after the demo's ingest
            (draft,) = invoices.run_invoices(store, "2026-11", "acme", to_us(as_of))
            digests = [draft["inputs_digest"], draft["total"]]
        finally:
            store.close()
        return result.output.replace(str(ledger.parent), "DIR"), digests

    today = demo_run("today")
    set_clock(monkeypatch, dt.datetime(2027, 6, 1, tzinfo=dt.UTC))
    later = demo_run("later")
    assert "Outcome integrity as of 2026-12-09" in later[0]
    assert "0.00 │ 0.00 │     0.00 │" not in later[0]  # no month without its costs
    assert later == today
