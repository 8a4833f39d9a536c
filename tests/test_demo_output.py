"""What `payoff demo` tells a newcomer: the bad lines it sent on purpose, its as-of time,
and the commands to try next."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from payoff.cli import app
from payoff.demo import FAULTS


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
