"""Sending a generated stream through `payoff ingest` or POST /v1/events, and checking the
answers and the ledger against the model (stream_model), problem by problem.

Every example writes its records into one shared ledger under ids of its own: `@@` in the
generated lines becomes a fresh prefix, and the ledger is read back under that prefix.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from hostile_records import PREFIX, TOKEN_FIELDS, Line
from stream_model import Expected, Intent, Model, Valid, names_field

LEAKED = re.compile(r"Traceback|\b\w+(Error|Exception)\b:")
"""A reason quoting an exception (its class and message) instead of saying what is wrong."""
Problems = list[str]


def nonce() -> str:
    return f"{uuid.uuid4().hex[:12]}-"


def expected_answers(
    intents: list[Intent], batches: list[int], *, over_http: bool
) -> tuple[list[Expected], Model]:
    """What the ledger must answer for each line, given how the lines are cut into batches."""
    model = Model(over_http=over_http)
    answers: list[Expected] = []
    start = 0
    for size in batches:
        answers += model.batch(intents[start : start + size])
        start += size
    return answers, model


def check_refusal(
    where: str, expected: Expected, status: str, field: str | None, reason: str
) -> Problems:
    problems = []
    if status != expected.status:
        problems.append(f"{where}: {status} ({field}: {reason}), expected {expected.status}")
    elif not names_field(field, expected.fields):
        allowed = sorted(expected.fields or ())
        problems.append(f"{where}: names field {field!r} ({reason}), expected one of {allowed}")
    if LEAKED.search(reason):
        problems.append(f"{where}: the reason quotes an exception: {reason[:300]}")
    return problems


# -- the ledger, read back under an example's prefix --------------------------------------

ROW_QUERIES = {
    "usage": f"""SELECT id, occurred_at_us AS time, customer, task, task_type, kind, provider,
        model, {", ".join(TOKEN_FIELDS)}, visible, batch, quantity, unit,
        cost_given_nanousd AS cost, attributes FROM events WHERE id LIKE ? ESCAPE '\\'""",
    "task": """SELECT task AS id, status, customer, type, occurred_at_us AS time
        FROM task_updates WHERE task LIKE ? ESCAPE '\\'""",
    "outcome": """SELECT id, task, customer, type, value, evidence_digest,
        occurred_at_us AS time FROM outcomes WHERE id LIKE ? ESCAPE '\\'""",
    "attestation": """SELECT id, outcome, verdict, occurred_at_us AS time
        FROM attestations WHERE id LIKE ? ESCAPE '\\'""",
}
IDS = ("id", "task", "outcome")


def _stored(db: Path, prefix: str) -> dict[tuple[str, ...], dict[str, Any]]:
    """Every record stored under `prefix`, by key, as the model writes content."""
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    if not db.exists():  # an ingest that made the ledger and landed nothing removes it
        return found
    pattern = prefix.replace("_", "\\_").replace("%", "\\%") + "%"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        for kind, query in ROW_QUERIES.items():
            for row in conn.execute(query, (pattern,)):
                content = {
                    name: row[name].replace(prefix, PREFIX, 1)
                    if name in IDS and row[name] is not None
                    else row[name]
                    for name in row.keys()  # noqa: SIM118 (a Row has no iterator of names)
                }
                record_id = content.pop("id")
                if kind == "usage":
                    content["visible"], content["batch"] = (
                        bool(content["visible"]),
                        bool(content["batch"]),
                    )
                    if content["attributes"] is not None:
                        content["attributes"] = json.loads(content["attributes"])
                key = (
                    (kind, record_id, content.pop("status"))
                    if kind == "task"
                    else (kind, record_id)
                )
                found[key] = content
    return found


def _tasks(db: Path, prefix: str) -> dict[str, tuple[Any, ...]]:
    if not db.exists():
        return {}
    pattern = prefix.replace("_", "\\_").replace("%", "\\%") + "%"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        query = "SELECT id, customer, type, status, status_at_us FROM tasks WHERE id LIKE ?"
        rows = conn.execute(query + " ESCAPE '\\'", (pattern,))
        return {row[0].replace(prefix, PREFIX, 1): row[1:] for row in rows}


def check_ledger(db: Path, prefix: str, model: Model) -> Problems:
    """The ledger holds exactly the records the model kept, with their content, and the
    tasks they brought into being, with their owner, type and status."""
    problems: Problems = []
    stored = _stored(db, prefix)
    kept = {key: dict(record.content) for key, record in model.ledger.records.items()}
    for key in kept.keys() - stored.keys():
        problems.append(f"ledger: missing {key}")
    for key in stored.keys() - kept.keys():
        problems.append(f"ledger: holds {key}, which should have been refused")
    for key in kept.keys() & stored.keys():
        if kept[key] != stored[key]:
            differing = {n: (kept[key].get(n), stored[key].get(n)) for n in kept[key]
                         if kept[key].get(n) != stored[key].get(n)}  # fmt: skip
            problems.append(f"ledger: {key} differs (expected, stored): {differing}")
    tasks = _tasks(db, prefix)
    for task, state in model.ledger.tasks.items():
        want = (state.owner, state.type, state.status, state.status_at_us)
        if tasks.get(task) != want:
            problems.append(f"ledger: task {task} is {tasks.get(task)}, expected {want}")
    for task in tasks.keys() - model.ledger.tasks.keys():
        problems.append(f"ledger: task {task} should not exist")
    return problems


def step_sums(model: Model) -> dict[str, tuple[int, int, list[int | None]]]:
    """(steps, tokens, costs given) per task, from the usage records the model kept."""
    sums: dict[str, tuple[int, int, list[int | None]]] = {}
    for record in model.ledger.records.values():
        if record.kind == "usage" and record.task is not None:
            steps, tokens, costs = sums.get(record.task, (0, 0, []))
            total = record.get("input_tokens") + record.get("output_tokens")
            sums[record.task] = (steps + 1, tokens + total, [*costs, record.get("cost")])
    return sums


def check_read_back(
    db: Path, prefix: str, model: Model, read_task: Callable[[str], dict[str, Any]]
) -> Problems:
    """Each task, read back through the product, sums its steps exactly: steps, tokens, and
    cost (to the nano-USD, the sum of the costs stored)."""
    problems: Problems = []
    if not db.exists():
        return problems  # check_ledger has said what is missing
    costs = _stored_costs(db, prefix)
    for task, (steps, tokens, _) in sorted(step_sums(model).items()):
        real = task.replace(PREFIX, prefix, 1)
        try:
            read = read_task(real)
        except Exception as exc:
            problems.append(f"reading task {task} back failed: {type(exc).__name__}: {exc}")
            continue
        want_cost = costs.get(real)
        got_cost = None if read["cost_usd"] is None else Decimal(read["cost_usd"]) * 10**9
        if (read["steps"], read["tokens_total"], got_cost) != (steps, tokens, want_cost):
            problems.append(
                f"task {task} read back as steps {read['steps']}, tokens {read['tokens_total']}, "
                f"cost {read['cost_usd']}; expected {steps}, {tokens}, {want_cost} nano-USD"
            )
    return problems


def _stored_costs(db: Path, prefix: str) -> dict[str, int | None]:
    """The exact sum (Python integers) of the priced steps' costs per task."""
    pattern = prefix.replace("_", "\\_").replace("%", "\\%") + "%"
    sums: dict[str, int | None] = {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        for task, cost in conn.execute(
            "SELECT task, cost_nanousd FROM events WHERE task LIKE ? ESCAPE '\\'", (pattern,)
        ):
            if cost is not None:
                sums[task] = (sums.get(task) or 0) + cost
            else:
                sums.setdefault(task, None)
    return sums


def render(lines: list[Line], prefix: str) -> list[bytes]:
    return [line.replace(PREFIX.encode(), prefix.encode()) for line, _ in lines]


MAX_RETRIES = 80
"""Re-runs spent making a failing stream smaller."""


def smallest(
    lines: list[Line], check: Callable[[list[Line]], Problems]
) -> tuple[list[Line], Problems]:
    """A failing stream made smaller one line at a time, as long as it still fails.

    Hypothesis shrinks by thousands of re-runs, minutes for a stream that goes through the
    command; removing each line once (from the end) costs one re-run a line.
    """
    problems = check(lines)
    if not problems:
        return lines, problems  # the failure needs what was left out (cut into requests)
    for index in reversed(range(min(len(lines), MAX_RETRIES))):
        candidate = lines[:index] + lines[index + 1 :]
        found = check(candidate) if candidate else []
        if found:
            lines, problems = candidate, found
    return lines, problems


def reproducer(lines: list[Line], batches: list[int] | None = None) -> str:
    """The stream as it was sent (ids with `@@`), one line each, long lines shortened."""
    shown = []
    for line, intent in lines:
        text = line.decode("utf-8", "backslashreplace")
        if len(text) > 400:
            text = f"{text[:200]}...({len(text):,} chars)...{text[-100:]}"
        label = intent.hostile if not isinstance(intent, Valid) else "valid"
        shown.append(f"[{label}] {text}")
    cut = f"requests of {batches} lines; " if batches else ""
    return cut + "\n    " + "\n    ".join(shown)
