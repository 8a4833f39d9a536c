"""Many writers on one PostgreSQL ledger: real processes at once, and every idempotency rule
holds (one id stored once, a conflicting body refused, a task owned by one customer), as do
invoice runs, finalizations and verdicts (never two drafts, never a lost verdict)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from api_support import live_server
from factories import REPO, jsonl, outcome, usage
from payoff.cli import app
from payoff.service import access, invoices
from payoff.store import open_store
from payoff.store.postgres.store import PostgresStore

pytestmark = pytest.mark.slow

WRITERS = 4
OWN_IDS = 900
SHARED_IDS = 1200  # each writer sends ~30 % of its records from this pool, shared by all
CONFLICTING_IDS = 40  # ids every writer sends with a body of its own
CONTESTED_TASKS = 40  # new tasks every writer names, for a customer of its own
BATCH = 150
TESTS = Path(__file__).parent


def writer_batches(writer: int) -> list[list[dict[str, Any]]]:
    chance = random.Random(writer)
    records = [
        usage(f"w{writer}-{n}", task=f"w{writer}-t{n % 50}", time="2026-11-05T08:00:00Z")
        for n in range(OWN_IDS)
    ]
    shared = chance.sample(range(SHARED_IDS), k=OWN_IDS * 3 // 7)  # 30 % of all it sends
    records += [usage(f"s{n}", task=f"s-t{n % 60}") for n in shared]
    records += [usage(f"c{n}", output_tokens=300 + writer) for n in range(CONFLICTING_IDS)]
    chance.shuffle(records)
    # Every writer's first batch names the same new tasks, each for a customer of its own:
    # the writers start together, so these batches race for them.
    customer = ["acme", "globex", "initech", "umbrella"][writer]
    records[:0] = [
        usage(f"x{writer}-{n}", task=f"contested-{n}", customer=customer)
        for n in range(CONTESTED_TASKS)
    ]
    return [records[i : i + BATCH] for i in range(0, len(records), BATCH)]


def verified_rollups(url: str) -> list[str]:
    """What `payoff verify --json` says of the rollups: where they differ from a
    recomputation from the events (none when every writer kept them right)."""
    result = CliRunner().invoke(app, ["verify", "--json", "--db", url])
    assert result.exit_code in (0, 1), result.output
    rollups: list[str] = json.loads(result.stdout)["rollups"]
    assert (result.exit_code == 0) == (rollups == [])  # a ledger without invoices
    return rollups


def run_writers(url: str, tmp_path: Path) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(TESTS)])}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] += os.pathsep + os.environ["PYTHONPATH"]
    processes = []
    for writer in range(WRITERS):
        batches = tmp_path / f"batches-{writer}.json"
        batches.write_text(json.dumps(writer_batches(writer)))
        report = tmp_path / f"report-{writer}.json"
        command = [
            sys.executable,
            str(TESTS / "postgres_writers.py"),
            url,
            str(batches),
            str(report),
        ]
        processes.append((subprocess.Popen(command, env=env), report))
    for _, report in processes:  # every writer has its ledger open: start them together
        while not Path(f"{report}.ready").exists():
            assert all(process.poll() is None for process, _ in processes)
            time.sleep(0.01)
    (tmp_path / "go").touch()
    reports = []
    for process, report in processes:
        assert process.wait(timeout=300) == 0
        reports.append(json.loads(report.read_text()))
    return reports


def test_concurrent_writers_store_each_id_once_and_refuse_each_conflict(
    postgres_url: str, tmp_path: Path
) -> None:
    reports = run_writers(postgres_url, tmp_path)
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    try:
        with store.engine.connect() as conn:
            stored, distinct, ids = conn.execute(
                text(
                    "SELECT count(*), count(DISTINCT id), (SELECT count(*) FROM event_ids) "
                    "FROM events"
                )
            ).one()
            owners = dict(
                conn.execute(
                    text("SELECT id, customer FROM tasks WHERE id LIKE 'contested-%'")
                ).all()
            )
            mixed = conn.execute(
                text(
                    "SELECT count(*) FROM events JOIN tasks ON tasks.id = events.task "
                    "WHERE events.customer <> tasks.customer"
                )
            ).scalar_one()
            deadlocks = conn.execute(
                text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            ).scalar_one()
    finally:
        store.close()
    # Writers take their locks in one order (ids, tasks, rollup keys, each sorted): none
    # was rolled back to break a cycle.
    assert deadlocks == 0
    sent_shared = {record["id"] for w in range(WRITERS) for b in writer_batches(w) for record in b}
    assert stored == distinct == ids == len(sent_shared) - CONTESTED_TASKS * (WRITERS - 1)
    assert sum(report["counts"]["accepted"] for report in reports) == stored
    conflicts = [p for report in reports for p in report["problems"] if p["status"] == "conflict"]
    # Every conflicting id: stored once, from one writer; each other writer refused.
    assert sorted(p["id"] for p in conflicts) == sorted(
        f"c{n}" for n in range(CONFLICTING_IDS) for _ in range(WRITERS - 1)
    )
    assert {p["reason"] for p in conflicts} == {
        "the same id was stored earlier with another `output_tokens`"
    }
    # Every contested task belongs to one customer, whose records alone were kept.
    assert len(owners) == CONTESTED_TASKS and mixed == 0
    rejected = [p for report in reports for p in report["problems"] if p["status"] == "rejected"]
    assert len(rejected) == CONTESTED_TASKS * (WRITERS - 1)
    assert all("belongs to another customer" in p["reason"] for p in rejected)
    duplicates = sum(report["counts"]["duplicates"] for report in reports)
    sent = sum(len(record) for w in range(WRITERS) for record in writer_batches(w))
    assert duplicates == sent - stored - len(conflicts) - len(rejected) > 0
    # Each writer rolled up its own events, in its own transactions: the rollups are
    # what the events sum to, none counted twice or missed.
    assert verified_rollups(postgres_url) == []


OUTCOMES_EACH = 8


def billing_ledger(url: str, customers: tuple[str, ...] = ("acme", "globex")) -> None:
    """Customers on a plan whose outcomes wait for a verdict, a month of work, drafts."""
    runner = CliRunner()
    commands = [["plans", "apply", str(REPO / "examples" / "plans" / "verified-outcomes.yaml")]]
    commands += [
        ["subscribe", customer, "verified-outcomes", "--from", "2026-11-01", "--create"]
        for customer in customers
    ]
    for command in commands:
        result = runner.invoke(app, [*command, "--db", url])
        assert result.exit_code == 0, result.output
    records = [
        record
        for customer in customers
        for n in range(OUTCOMES_EACH)
        for record in (
            usage(f"{customer}-e{n}", task=f"{customer}-t{n}", customer=customer),
            outcome(f"{customer}-o{n}", f"{customer}-t{n}", customer),
        )
    ]
    ingested = runner.invoke(app, ["ingest", "-", "--db", url], input=jsonl(*records))
    assert ingested.exit_code == 0, ingested.output
    drafted = runner.invoke(app, ["invoice", "run", "--period", "2026-11", "--db", url])
    assert drafted.exit_code == 0, drafted.output


def test_concurrent_invoice_runs_finalizations_and_verdicts(postgres_url: str) -> None:
    billing_ledger(postgres_url)
    payoff = str(Path(sys.executable).with_name("payoff"))
    db = ["--db", postgres_url]
    runs = f"for i in 1 2 3; do {payoff} invoice run --period 2026-11 {' '.join(db)}; done"
    verdicts = [
        [payoff, "outcomes", "verify" if n % 2 else "reject", f"{customer}-o{n}", *db]
        + ([] if n % 2 else ["--reason", "not resolved"])
        for customer in ("acme", "globex")
        for n in range(OUTCOMES_EACH)
    ]
    # A finalization may be refused while a run replaces the draft under it ("changed while
    # being finalized; try again", exit 2): the operator tries again, as this loop does.
    finalize = f"{payoff} invoice finalize acme-2026-11 {' '.join(db)}"
    finalizes = f"for i in $(seq 30); do {finalize} && exit 0; [ $? -eq 2 ] || exit 1; done; exit 1"
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    runners = [subprocess.Popen(["sh", "-c", runs], **quiet) for _ in range(3)]
    finalizer = subprocess.Popen(["sh", "-c", finalizes], **quiet)
    deciders = [subprocess.Popen(command, **quiet) for command in verdicts]
    try:
        assert finalizer.wait(timeout=300) == 0
        assert [decider.wait(timeout=300) for decider in deciders] == [0] * len(verdicts)
    finally:
        for process in [*runners, finalizer, *deciders]:  # a run may be refused: acme was
            process.wait(timeout=300)  # finalized under it; none is left running
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    try:
        with store.engine.connect() as conn:
            invoices = conn.execute(
                text("SELECT customer, status, number FROM invoices ORDER BY customer")
            ).all()
            decided = conn.execute(text("SELECT count(*) FROM outcome_decisions")).scalar_one()
    finally:
        store.close()
    # Never two drafts, never a draft beside a finalized invoice; one number issued.
    assert [(customer, status) for customer, status, _ in invoices] == [
        ("acme", "finalized"),
        ("globex", "draft"),
    ]
    assert invoices[0].number == "INV-2026-000001"
    assert decided == len(verdicts)  # never a lost verdict
    states = CliRunner().invoke(app, ["outcomes", "list", "--json", *db])
    assert states.exit_code == 0
    statuses = {row["id"]: row["status"] for row in json.loads(states.stdout)}
    for customer in ("acme", "globex"):
        for n in range(OUTCOMES_EACH):
            assert statuses[f"{customer}-o{n}"] == ("verified" if n % 2 else "rejected")


def test_concurrent_finalizations_number_invoices_once_each_without_gaps(
    postgres_url: str,
) -> None:
    customers = tuple(f"customer-{n}" for n in range(6))
    billing_ledger(postgres_url, customers)
    start = threading.Barrier(len(customers))
    failures: list[BaseException] = []

    def finalize(customer: str) -> None:
        store = open_store(postgres_url)
        try:
            start.wait()
            invoices.act_on_invoice(store, f"{customer}-2026-11", "finalize")
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=finalize, args=(c,)) for c in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    store = open_store(postgres_url)
    try:
        numbers = sorted(str(i.number) for i in store.list_invoices(status="finalized"))
    finally:
        store.close()
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, len(customers) + 1)]


def test_serve_with_four_workers_on_postgres_stores_each_id_once(
    postgres_url: str, tmp_path: Path
) -> None:
    store = open_store(postgres_url)
    try:
        key = access.create_key(store, "ingest")[1]
    finally:
        store.close()
    clients, batches, size = 4, 8, 100
    pool = [usage(f"p{n}", task=f"p-t{n % 40}") for n in range(clients * batches * size // 3)]

    def batch_of(client: int, batch: int) -> list[dict[str, Any]]:
        chance = random.Random(client * 1000 + batch)
        own = [usage(f"h{client}-{batch}-{n}") for n in range(size * 7 // 10)]
        return own + chance.sample(pool, k=size - len(own))  # 30 % shared by every client

    answers: list[dict[str, Any]] = []

    def client(number: int) -> None:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http:
            for batch in range(batches):
                body = json.dumps(batch_of(number, batch)).encode()
                response = http.post("/v1/events", content=body, timeout=60)
                assert response.status_code == 200, response.text
                answers.append(response.json())

    with live_server(postgres_url, tmp_path / "serve.log", "--workers", "4") as server:  # type: ignore[arg-type]
        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    assert len(answers) == clients * batches
    store = open_store(postgres_url)
    try:
        stored = store.counts().events
    finally:
        store.close()
    sent_ids = {r["id"] for c in range(clients) for b in range(batches) for r in batch_of(c, b)}
    assert stored == len(sent_ids) == sum(answer["accepted"] for answer in answers)
    assert sum(answer["duplicates"] for answer in answers) == clients * batches * size - stored
    assert sum(answer["conflicts"] + answer["rejected"] for answer in answers) == 0
    assert verified_rollups(postgres_url) == []
