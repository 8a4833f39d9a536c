"""A property-based fuzzer of record streams, through `payoff ingest` and POST /v1/events.

Streams of valid, duplicate, conflicting and hostile records of every kind (hostile_records)
go through the command and through the API. The invariant, checked against a model written
from the docs (stream_model): exactly the valid first-seen records land, with their
content; every refusal names its line (or index) and a field; nothing crashes, and the
server never answers 5xx. Each task is then read back and must sum its steps exactly.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from api_support import Keys, prepare_ledger
from fuzz_support import (
    check_ledger,
    check_read_back,
    check_refusal,
    expected_answers,
    nonce,
    render,
    reproducer,
    smallest,
)
from hostile_records import HOSTILE_KINDS, Line, streams
from payoff.api import ServerConfig, create_app
from payoff.cli import app as cli
from payoff.service.ingest import BATCH_RECORDS
from payoff.service.tasks import task_with_steps
from payoff.store import open_store
from reliability import Tally, size
from stream_model import ANY_FIELD, Intent, Malformed

# The HTTP half runs the app with its writer thread; each example is a few requests.
pytestmark = pytest.mark.slow

MAX_RECORDS = 100
"""Records per request the fuzzed server accepts; a stream is cut into requests below it."""


def fuzz_settings(examples: int) -> Any:
    # No shrinking: a stream through the command costs a tenth of a second, and hypothesis
    # would spend minutes on it. fuzz_support.smallest makes a failing stream small.
    return settings(
        max_examples=examples,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )


# -- through `payoff ingest` ---------------------------------------------------------------

runner = CliRunner()


@pytest.fixture(scope="module")
def file_ledger() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="payoff-fuzz-") as folder:
        yield Path(folder)


def ingest_stream(folder: Path, lines: list[Line]) -> list[str]:
    """`payoff ingest FILE --json --rejects R` of the stream; the problems found."""
    prefix, db = nonce(), folder / "l.db"
    file, rejects = folder / f"{prefix}in.jsonl", folder / f"{prefix}rejects.jsonl"
    file.write_bytes(b"".join(line + b"\n" for line in render(lines, prefix)))
    result = runner.invoke(
        cli, ["--db", str(db), "ingest", str(file), "--json", "--rejects", str(rejects)]
    )
    intents = [intent for _, intent in lines]
    batches = [BATCH_RECORDS] * (len(lines) // BATCH_RECORDS + 1)
    expected, model = expected_answers(intents, batches, over_http=False)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return [f"payoff ingest crashed: {type(result.exception).__name__}: {result.exception}"]
    problems: list[str] = []
    statuses = [e.status for e in expected]
    clean = all(s in ("accepted", "duplicate") for s in statuses)
    if result.exit_code != (0 if clean else 1):
        problems.append(f"exit status {result.exit_code}: {result.stderr[-500:]}")
    counts = {name: statuses.count(status) for name, status in (
        ("accepted", "accepted"), ("duplicates", "duplicate"), ("conflicts", "conflict"),
        ("rejected", "rejected"))}  # fmt: skip
    answered = json.loads(result.stdout.splitlines()[0]) if result.stdout else {}
    answered.pop("unpriced", None)
    if answered != counts:
        problems.append(f"counts {answered}, expected {counts}")
    refused = {p["line"]: p for p in map(json.loads, rejects.read_text().splitlines())}
    for number, want in enumerate(expected, start=1):
        got = refused.pop(number, None)
        if want.status in ("accepted", "duplicate"):
            if got is not None:
                problems.append(
                    f"line {number}: {got['status']} ({got['reason']}), expected {want.status}"
                )
        elif got is None:
            problems.append(f"line {number}: not refused, expected {want.status}")
        else:
            problems += check_refusal(
                f"line {number}", want, got["status"], got["field"], got["reason"]
            )
    problems += [f"line {n}: refused, but no such line" for n in refused]
    problems += check_ledger(db, prefix, model)
    store = open_store(db)
    try:
        problems += check_read_back(db, prefix, model, lambda t: task_with_steps(store, t, None))
    finally:
        store.close()
    return problems


def _fuzz_ingest(folder: Path, tally: Tally, kinds: tuple[str, ...]) -> None:
    def minimal(lines: list[Line]) -> tuple[list[str], str]:
        lines, problems = smallest(lines, lambda some: ingest_stream(folder, some))
        return problems, reproducer(lines)

    @given(streams(kinds))
    @fuzz_settings(size("FUZZ_EXAMPLES"))
    def run(lines: list[Line]) -> None:
        tally.example(len(lines), ingest_stream(folder, lines), lambda: minimal(lines))

    run()


def test_payoff_ingest_keeps_exactly_the_valid_first_seen_records(file_ledger: Path) -> None:
    tally = Tally("fuzz: payoff ingest")
    _fuzz_ingest(file_ledger, tally, HOSTILE_KINDS)
    tally.close(
        "exactly the valid first-seen records land; each refusal names its line and field",
        hostile_kinds=len(HOSTILE_KINDS),
    )


# -- through POST /v1/events ----------------------------------------------------------------


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[TestClient, Keys, Path]]:
    with tempfile.TemporaryDirectory(prefix="payoff-fuzz-api-") as folder:
        db = Path(folder) / "l.db"
        keys = prepare_ledger(db)
        config = ServerConfig(str(db), max_records=MAX_RECORDS, builders=0)
        # A 500 must come back as an answer, to be counted, not raised inside the test.
        with TestClient(create_app(config), raise_server_exceptions=False) as client:
            yield client, keys, db


def _requests(data: st.DataObject, lines: list[Line]) -> list[int]:
    sizes, left = [], len(lines)
    while left:
        sizes.append(data.draw(st.integers(1, min(left, MAX_RECORDS)), label="request size"))
        left -= sizes[-1]
    return sizes


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


class Request(NamedTuple):
    body: bytes
    count: int
    """Lines of the stream in it."""
    items: list[Intent] | None
    """What the server reads in it, item by item; None: the body is refused whole (400)."""


def _requests_of(
    lines: list[Line], sent: list[bytes], sizes: list[int], arrays: list[bool]
) -> list[Request]:
    """The lines as requests of `sizes` lines: a JSON array where `arrays` says so and every
    line is JSON, else JSON Lines."""
    requests, start = [], 0
    for count, as_array in zip(sizes, arrays, strict=True):
        part, intents = sent[start : start + count], [i for _, i in lines[start : start + count]]
        start += count
        if as_array and all(map(_is_json, part)):
            requests.append(Request(b"[" + b",".join(part) + b"]", count, intents))
            continue
        body = b"".join(line + b"\n" for line in part)
        if body.lstrip().startswith(b"["):
            # Documented: a body starting with `[` is one JSON array. Here the first line
            # is an array, not a record: the body is refused, or its items are refused.
            items = _array_items(body)
            refused = Malformed("not_an_object", ANY_FIELD)
            requests.append(Request(body, count, None if items is None else [refused] * items))
        else:
            requests.append(Request(body, count, intents))
    return requests


def _array_items(body: bytes) -> int | None:
    """How many items a body holds as a JSON array; None when it is not one."""
    try:
        return len(msgspec.json.decode(body, type=list[msgspec.Raw]))
    except (msgspec.DecodeError, RecursionError):
        return None


def post_stream(
    api: tuple[TestClient, Keys, Path], lines: list[Line], sizes: list[int], arrays: list[bool]
) -> list[str]:
    """The stream sent as requests (_requests_of); the problems found."""
    client, keys, db = api
    prefix = nonce()
    requests = _requests_of(lines, render(lines, prefix), sizes, arrays)
    read = [request.items for request in requests if request.items is not None]
    expected, model = expected_answers(
        [i for items in read for i in items], [len(items) for items in read], over_http=True
    )
    problems: list[str] = []
    for number, request in enumerate(requests):
        response = client.post("/v1/events", content=request.body, headers=keys.header(keys.ingest))
        if response.status_code != (400 if request.items is None else 200):
            problems.append(f"request {number}: {response.status_code} {response.text[:500]}")
        elif request.items is not None:
            want, expected = expected[: len(request.items)], expected[len(request.items) :]
            problems += _check_answer(f"request {number}", response.json(), want)
    problems += check_ledger(db, prefix, model)
    problems += check_read_back(db, prefix, model, lambda t: _read_task(client, keys, t))
    return problems


def _check_answer(where: str, answer: dict[str, Any], expected: list[Any]) -> list[str]:
    problems = []
    statuses = answer["statuses"]
    if statuses != [e.status for e in expected]:
        problems.append(f"{where}: statuses {statuses}, expected {[e.status for e in expected]}")
    given = {p["index"]: p for p in answer["problems"]}
    for index, want in enumerate(expected):
        if want.status in ("conflict", "rejected"):
            got = given.get(index)
            if got is None:
                problems.append(f"{where} index {index}: no problem given")
            else:
                problems += check_refusal(
                    f"{where} index {index}", want, got["status"], got["field"], got["reason"]
                )
    return problems


def _read_task(client: TestClient, keys: Keys, task: str) -> dict[str, Any]:
    response = client.get(f"/v1/tasks/{task}", headers=keys.header(keys.admin))
    if response.status_code != 200:
        raise RuntimeError(f"GET /v1/tasks/{task} answered {response.status_code}")
    read: dict[str, Any] = response.json()
    return read


def _fuzz_api(api: tuple[TestClient, Keys, Path], tally: Tally, kinds: tuple[str, ...]) -> None:
    @given(streams(kinds), st.data())
    @fuzz_settings(size("FUZZ_EXAMPLES"))
    def run(lines: list[Line], data: st.DataObject) -> None:
        sizes = _requests(data, lines)
        arrays = [data.draw(st.booleans(), label="as a JSON array") for _ in sizes]

        def minimal() -> tuple[list[str], str]:
            # Smaller streams go as one request (JSON Lines); if the failure needs the
            # stream cut as it was, it is shown whole.
            smaller, problems = smallest(
                lines, lambda some: post_stream(api, some, [len(some)], [False])
            )
            if problems:
                return problems, reproducer(smaller, [len(smaller)])
            return post_stream(api, lines, sizes, arrays), reproducer(lines, sizes)

        tally.example(len(lines), post_stream(api, lines, sizes, arrays), minimal)

    run()


def test_post_events_keeps_exactly_the_valid_first_seen_records(
    api: tuple[TestClient, Keys, Path],
) -> None:
    tally = Tally("fuzz: POST /v1/events")
    _fuzz_api(api, tally, HOSTILE_KINDS)
    tally.close(
        "exactly the valid first-seen records land; each refusal names its index and field; "
        "never 5xx",
        hostile_kinds=len(HOSTILE_KINDS),
    )
