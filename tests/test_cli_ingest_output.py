"""What `payoff ingest` prints: the counts first, at most 20 problems and a count of the
rest, a hint for CSV and JSON arrays; and a failed ingest leaves no empty ledger behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factories import jsonl, usage
from payoff.cli import app
from payoff.cli.ingest_output import (
    CSV_HINT,
    JSON_ARRAY_HINT,
    PROBLEMS_SHOWN,
    input_hint,
)
from payoff.core.errors import PayoffError

runner = CliRunner()
BAD_LINES = 1_234 + PROBLEMS_SHOWN


def run(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def _many_bad(good: int = 1) -> bytes:
    return jsonl(*(usage(f"e{n}") for n in range(good))) + b"not json\n" * BAD_LINES


def test_counts_first_then_twenty_problems_and_how_many_more(tmp_path: Path) -> None:
    file = tmp_path / "records.jsonl"
    file.write_bytes(_many_bad())
    code, stdout, stderr = run("--db", str(tmp_path / "l.db"), "ingest", str(file))
    assert code == 1
    assert stdout.splitlines()[0] == (
        f"accepted 1, duplicates 0, conflicts 0, rejected {BAD_LINES:,}, unpriced 0"
    )
    problems = stderr.splitlines()
    assert len(problems) == PROBLEMS_SHOWN + 1
    assert problems[0].startswith(f"{file}:2 id=? rejected:")
    assert problems[-1] == "... and 1,234 more; --rejects FILE keeps all"


def test_with_a_rejects_file_every_problem_is_kept(tmp_path: Path) -> None:
    file, rejects = tmp_path / "records.jsonl", tmp_path / "rejects.jsonl"
    file.write_bytes(_many_bad())
    code, stdout, stderr = run(
        "--db", str(tmp_path / "l.db"), "ingest", str(file), "--json", "--rejects", str(rejects)
    )
    assert code == 1
    assert json.loads(stdout)["rejected"] == BAD_LINES
    assert stderr.splitlines()[-1] == f"... and 1,234 more in {rejects}"
    kept = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [p["line"] for p in kept] == list(range(2, BAD_LINES + 2))


def test_few_problems_are_all_printed_without_a_count(tmp_path: Path) -> None:
    code, _, stderr = run(
        "--db", str(tmp_path / "l.db"), "ingest", "-", input=jsonl(usage("e1")) + b"{}\n"
    )
    assert code == 1
    (line,) = stderr.splitlines()
    assert line.startswith("-:2 id=? rejected:")


@pytest.mark.parametrize(
    ("head", "hint"),
    [
        (b'[{"id": "e1"}, {"id": "e2"}]', JSON_ARRAY_HINT),
        (b'  \n[\n  {"id": "e1"}\n]\n', JSON_ARRAY_HINT),
        (b"id,time,customer\ne1,2026-11-03T10:00:00Z,acme\n", CSV_HINT),
        (b"\xef\xbb\xbfid,time\n", CSV_HINT),
        (b'{"id": "e1", "time": "2026-11-03T10:00:00Z"}\n', None),
        (b"not json at all\n", None),
        (b"", None),
    ],
)
def test_input_hint(head: bytes, hint: str | None) -> None:
    assert input_hint(head) == hint


def test_a_json_array_gets_a_hint_and_leaves_no_ledger(tmp_path: Path) -> None:
    db, file = tmp_path / "l.db", tmp_path / "records.json"
    file.write_text(json.dumps([usage("e1"), usage("e2")], indent=2))
    code, stdout, stderr = run("--db", str(db), "ingest", str(file))
    assert code == 1 and stdout.startswith("accepted 0,")
    assert f"hint: {file}: {JSON_ARRAY_HINT}" in stderr
    assert "jq -c '.[]'" in stderr
    assert list(tmp_path.iterdir()) == [file]  # no ledger, no -wal or -shm file


def test_csv_from_stdin_gets_a_hint(tmp_path: Path) -> None:
    csv = b"id,time,customer,provider,model\ne1,2026-11-03T10:00:00Z,acme,openai,gpt-4o\n"
    code, _, stderr = run("--db", str(tmp_path / "l.db"), "ingest", "-", input=csv)
    assert code == 1 and f"hint: -: {CSV_HINT}" in stderr
    assert not (tmp_path / "l.db").exists()


def test_a_good_file_gets_no_hint(tmp_path: Path) -> None:
    code, _, stderr = run(
        "--db", str(tmp_path / "l.db"), "ingest", "-", input=jsonl(usage("e1"), usage("e2"))
    )
    assert code == 0 and stderr == ""


def test_an_existing_ledger_is_kept_when_nothing_is_accepted(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    assert run("--db", str(db), "ingest", "-", input=jsonl(usage("e1")))[0] == 0
    code, stdout, _ = run("--db", str(db), "ingest", "-", input=b"not json\n")
    assert code == 1 and stdout.startswith("accepted 0,")
    assert db.exists()
    code, stdout, _ = run("--db", str(db), "tasks", "--json")
    assert code == 0


def test_a_missing_input_makes_no_ledger(tmp_path: Path) -> None:
    db, good = tmp_path / "l.db", tmp_path / "good.jsonl"
    good.write_bytes(jsonl(usage("e1")))
    result = runner.invoke(
        app, ["--db", str(db), "ingest", str(good), str(tmp_path / "nope.jsonl")]
    )
    assert isinstance(result.exception, PayoffError) and "cannot read" in str(result.exception)
    assert not db.exists()  # the good file was not ingested either: nothing was started


def test_an_empty_input_makes_an_empty_ledger(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    assert run("--db", str(db), "ingest", "-", input=b"")[0] == 0
    assert db.exists()
