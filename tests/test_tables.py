"""Every CLI table at 80, 100 and 120 columns, on a demo ledger with examples/usage.jsonl
(UUID task ids): no line is wider than the terminal, nothing is cut, and every number,
identifier and header word the table shows from its `--json` rows appears whole (never
folded over two lines)."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

import payoff.cli
from factories import REPO
from payoff import demo
from payoff.catalog import Catalog
from payoff.cli import TASK_COLUMNS, app
from payoff.cli import billing as billing_cli
from payoff.cli import economics as economics_cli
from payoff.cli import outcomes as outcomes_cli
from payoff.cli import server as server_cli
from payoff.cli.tables import Column, cell, cells, show
from payoff.service import access, ingest_lines, invoices, numbered_lines
from payoff.store import open_store

WIDTHS = (80, 100, 120)
PLANS = sorted((REPO / "examples" / "plans").glob("*.yaml"))
SCENARIOS = ("--scenario", "cache:cache_hit=0.9", "--scenario", "fewer-loops:loops=0.5")

Rows = Callable[[Any], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "ledger.db"
    store = open_store(path)
    demo._subscribe(store, 4, "2026-11")
    records = list(demo.generate(seed=5, customers=4, month="2026-11", scale=0.2))
    ingest_lines(store, demo.as_lines(records), catalog=Catalog())
    with (REPO / "examples" / "usage.jsonl").open("rb") as examples:
        ingest_lines(store, numbered_lines(examples), catalog=Catalog())
    invoices.run_invoices(store, "2026-11")
    access.create_key(store, "admin", "a long name for the operations team's deploy key")
    access.revoke_key(store, access.create_key(store, "ingest", None)[0].id)
    store.close()
    return path


@pytest.fixture
def width() -> Iterator[Callable[[int], None]]:
    """Sets the CLI's console to a terminal width for one test, then puts it back."""
    before = payoff.cli.out.width

    def set_width(columns: int) -> None:
        payoff.cli.out.width = columns

    yield set_width
    payoff.cli.out.width = before


def _report(data: Any) -> list[dict[str, Any]]:
    return [*data["rows"], {"key": "Total", **data["total"]}]


def _plans(data: Any) -> list[dict[str, Any]]:
    return [
        {"scenario": s["scenario"], "plan": name, **figures}
        for s in data["scenarios"]
        for name, figures in s["plans"].items()
    ]


def _techniques(data: Any) -> list[dict[str, Any]]:
    return [
        {**s["usage_change"], **{p: s["plans"][p]["revenue_change"] for p in data["plans"]}}
        for s in data["scenarios"][1:]
    ]


def _fees(data: Any) -> list[dict[str, Any]]:
    return list(data["fees"])


def _same(data: Any) -> list[dict[str, Any]]:
    return list(data)


def _revenue_columns(data: Any) -> list[Column]:
    return [Column(plan, plan, "change") for plan in data["plans"]]


SIMULATE = ["simulate", "--period", "2026-11", *(f"--plan={p}" for p in PLANS), *SCENARIOS]
CASES: dict[str, tuple[list[str], list[tuple[Rows, Sequence[Column]]]]] = {
    "tasks": (["tasks", "--limit", "60"], [(_same, TASK_COLUMNS)]),
    "plans": (["plans", "list"], [(_same, billing_cli.PLAN_COLUMNS[:3])]),
    "invoices": (["invoice", "list"], [(_same, billing_cli.INVOICE_COLUMNS)]),
    "invoice": (["invoice", "show", "acme-2026-11"], [(_fees, billing_cli.FEE_COLUMNS)]),
    "quote": (
        ["quote", str(REPO / "examples/plans/hybrid.yaml"), "--units", "tickets=123456789"],
        [(_fees, billing_cli.FEE_COLUMNS)],
    ),
    "outcomes": (["outcomes", "list"], [(_same, outcomes_cli.OUTCOME_COLUMNS[3:4])]),
    "integrity": (
        ["integrity", "--period", "2026-11"],
        [(_same, outcomes_cli.INTEGRITY_COLUMNS[2:-1])],
    ),
    "keys": (["keys", "list"], [(_same, server_cli.KEY_COLUMNS)]),
    "report": (["report", "--period", "2026-11"], [(_report, economics_cli.FIGURES)]),
    "report wide by type": (
        ["report", "--period", "2026-11", "--by", "task_type", "--wide"],
        [(_report, economics_cli.FIGURES_WIDE)],
    ),
    "report by model": (
        ["report", "--period", "2026-11", "--by", "model"],
        [(_report, economics_cli.FIGURES)],
    ),
    "simulate": (
        SIMULATE,
        [(_plans, economics_cli.PLAN_FIGURES), (_techniques, economics_cli.USAGE_FIGURES)],
    ),
    "simulate wide": (
        [*SIMULATE, "--wide"],
        [
            (_plans, economics_cli.PLAN_FIGURES_WIDE),
            (_techniques, economics_cli.USAGE_FIGURES_WIDE),
        ],
    ),
}


def _numbers(data: Any, shown: list[tuple[Rows, Sequence[Column]]], args: list[str]) -> set[str]:
    """The text of every number (and time) the table shows, as the table formats it."""
    expected = set()
    for rows, columns in shown:
        chosen = list(columns)
        if rows is _techniques:
            chosen += _revenue_columns(data)
        for row in rows(data):
            for column in chosen:
                if column.numeric and column.key in row:
                    expected.add(cell(row[column.key], column.kind))
    return expected


@pytest.mark.parametrize("case", CASES)
def test_tables_never_break_or_cut_a_number(
    ledger: Path, width: Callable[[int], None], case: str
) -> None:
    args, shown = CASES[case]
    runner = CliRunner()
    as_json = runner.invoke(app, ["--db", str(ledger), *args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    expected = _numbers(data, shown, args)
    assert expected, case  # the case shows numbers
    for columns in WIDTHS:
        width(columns)
        result = runner.invoke(app, ["--db", str(ledger), *args])
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        too_wide = [line for line in lines if len(line) > columns]
        assert not too_wide, f"{case} at {columns}: {too_wide[:3]}"
        assert "…" not in result.stdout, f"{case} at {columns}: a cell was cut"
        text = "\n".join(lines)
        missing = sorted(number for number in expected if number not in text)
        assert not missing, f"{case} at {columns}: not whole: {missing[:5]}"


def _customer(key: str) -> Rows:
    return lambda data: list(data[key])


def _charges(data: Any) -> list[dict[str, Any]]:
    return list(data["body"]["charges"])


KEY = Column("key", "Customer", "id")
RUN = (
    *billing_cli.INVOICE_COLUMNS[:2],
    Column("plan", "Plan", "id"),
    *billing_cli.INVOICE_COLUMNS[3:],
)
KEYED: dict[str, tuple[list[str], list[tuple[Rows, Sequence[Column]]]]] = {
    **{case: (args, list(shown)) for case, (args, shown) in CASES.items()},
    "tasks": (["tasks", "--limit", "60"], [(_same, TASK_COLUMNS)]),
    "tasks with UUIDs": (["tasks", "--customer", "northwind"], [(_same, TASK_COLUMNS)]),
    "plans": (["plans", "list"], [(_same, billing_cli.PLAN_COLUMNS[:3])]),
    "plans show": (["plans", "show", "demo-outcomes"], [(_charges, billing_cli.CHARGE_COLUMNS)]),
    "invoice run": (
        ["invoice", "run", "--period", "2026-11"],
        [(_same, RUN)],
    ),
    "outcomes": (["outcomes", "list"], [(_same, outcomes_cli.OUTCOME_COLUMNS)]),
    "integrity": (["integrity", "--period", "2026-11"], [(_same, outcomes_cli.INTEGRITY_COLUMNS)]),
    "report": (["report", "--period", "2026-11"], [(_report, (KEY, *economics_cli.FIGURES))]),
    "report wide": (
        ["report", "--period", "2026-11", "--wide"],
        [(_report, (KEY, *economics_cli.FIGURES_WIDE))],
    ),
    "customers list": (["customers", "list"], [(_same, billing_cli.CUSTOMER_COLUMNS)]),
    "customers show": (
        ["customers", "show", "umbrella"],
        [
            (_customer("subscriptions"), billing_cli.SUBSCRIPTION_COLUMNS),
            (_customer("invoices"), billing_cli.CUSTOMER_INVOICE_COLUMNS),
        ],
    ),
    "subscriptions list": (["subscriptions", "list"], [(_same, billing_cli.SUBSCRIPTION_COLUMNS)]),
}
"""Each table with every column whose identifiers and header words must stay whole."""


def _whole_words(data: Any, shown: list[tuple[Rows, Sequence[Column]]]) -> set[str]:
    """Every identifier the table shows and every word of its headers."""
    expected = set()
    for rows, columns in shown:
        shown_rows = rows(data)
        for column in columns:
            if shown_rows:  # an empty table is not printed
                expected.update(column.header.split())
            for row in shown_rows:
                if column.kind == "id" and row.get(column.key) is not None:
                    expected.add(str(row[column.key]))
    return expected


@pytest.mark.parametrize("case", KEYED)
def test_tables_never_break_an_identifier_or_a_header_word(
    ledger: Path, width: Callable[[int], None], case: str
) -> None:
    args, shown = KEYED[case]
    runner = CliRunner()
    as_json = runner.invoke(app, ["--db", str(ledger), *args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    expected = _whole_words(json.loads(as_json.stdout), shown)
    assert expected, case
    if case == "tasks with UUIDs":  # examples/usage.jsonl names its tasks by UUID
        assert any(len(word) == 36 and word.count("-") == 4 for word in expected)
    for columns in WIDTHS:
        width(columns)
        result = runner.invoke(app, ["--db", str(ledger), *args])
        assert result.exit_code == 0, result.output
        assert max(len(line) for line in result.stdout.splitlines()) <= columns
        broken = sorted(word for word in expected if word not in result.stdout)
        assert not broken, f"{case} at {columns}: broken: {broken[:5]}"


def test_key_columns_wider_than_the_terminal_fold_rather_than_overflow() -> None:
    columns = [Column("id", "Id", "id"), Column("n", "Number", "count")]
    rows = [["x" * 100, "12,345"]]
    console = Console(width=80, file=io.StringIO())
    show(console, "Too wide", columns, rows)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "12,345" in text and "x" * 100 not in text


def test_free_text_folds_at_words_and_a_table_splits_before_an_identifier_breaks() -> None:
    columns = [
        Column("id", "Task", "id"),
        Column("why", "Reason"),
        *(Column(f"c{i}", f"Figure {i}", "count") for i in range(6)),
    ]
    uuid = "2862886b-1b48-4938-b9f7-d899c4513ec4"
    rows = [[uuid, "the customer rejected the report as incomplete", *["1,234,567"] * 6]]
    console = Console(width=80, file=io.StringIO())
    show(console, "Tasks", columns, rows)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "(1 of " in text and text.count(uuid) >= 2  # each part repeats the key, whole
    for word in rows[0][1].split():
        assert word in text


def test_report_headers_are_for_people_and_rates_are_percentages(
    ledger: Path, width: Callable[[int], None]
) -> None:
    width(100)
    result = CliRunner().invoke(app, ["--db", str(ledger), "report", "--period", "2026-11"])
    assert result.exit_code == 0, result.output
    for header in ("Revenue", "Margin", "Hidden", "Customer"):
        assert header in result.stdout
    assert " %" in result.stdout and "margin_pct" not in result.stdout
    # the default fits one table at 80 columns; --wide needs parts there, each keyed
    width(80)
    narrow = CliRunner().invoke(app, ["--db", str(ledger), "report", "--period", "2026-11"])
    assert "(1 of" not in narrow.stdout
    wide = CliRunner().invoke(app, ["--db", str(ledger), "report", "--period", "2026-11", "--wide"])
    assert "(1 of" in wide.stdout and wide.stdout.count("acme") >= 2


def test_a_number_wider_than_the_rest_splits_the_table_instead_of_folding() -> None:
    rng = random.Random(12)
    for _ in range(40):
        count = rng.randint(2, 14)
        columns = [Column("name", "Name")] + [
            Column(f"c{i}", f"Figure number {i}", rng.choice(["count", "money", "percent"]))
            for i in range(count)
        ]
        rows = [
            {
                "name": "a-long-customer-name-" * rng.randint(0, 3) + "x",
                **{
                    c.key: rng.choice([rng.randint(0, 10**12), "0.1234", "-98765.4321", None])
                    if c.kind != "count"
                    else rng.randint(0, 10 ** rng.randint(1, 15))
                    for c in columns[1:]
                },
            }
            for _ in range(3)
        ]
        for columns_wide in WIDTHS:
            console = Console(width=columns_wide, file=io.StringIO())
            show(console, "Random", columns, [cells(row, columns) for row in rows])
            text = console.file.getvalue()  # type: ignore[attr-defined]
            assert max(len(line) for line in text.splitlines()) <= columns_wide
            for row in rows:
                for column in columns[1:]:
                    assert cell(row[column.key], column.kind) in text


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        ("0.4200", "percent", "42.0 %"),
        ("-0.0662", "change", "-6.6 %"),
        ("0.0000", "change", "+0.0 %"),
        ("1234.5650", "money", "1,234.56"),
        ("0.033286624", "price", "0.0333"),
        (12051748, "count", "12,051,748"),
        (None, "money", "-"),
        ("46.9462", "ratio", "46.95"),
    ],
)
def test_cells(value: Any, kind: Any, text: str) -> None:
    assert cell(value, kind) == text
