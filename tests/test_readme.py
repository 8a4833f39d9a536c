"""The README's Quickstart runs as written: every `sh` block, in order, on a fresh copy.

The blocks are read from README.md itself, so the test follows the page. Blocks fenced
```` ```sh server ```` need a running `payoff serve` in another terminal and are left out
here; tests/test_examples.py runs the OpenTelemetry example against a live server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
QUICKSTART_TIMEOUT_S = 900  # `make demo` creates a venv and installs payoff into it
BLOCK = re.compile(r"^```([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
MARK = "::quickstart block"


def quickstart_section(readme: str) -> str:
    start = readme.index("\n## Quickstart\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def quickstart_blocks(readme: str) -> list[str]:
    """The Quickstart's `sh` blocks, in order; `sh server` blocks are left out."""
    return [body for info, body in BLOCK.findall(quickstart_section(readme)) if info == "sh"]


def fresh_copy(destination: Path) -> None:
    """The files git knows (tracked, or new and not ignored), as they are in the work tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def clean_environment() -> dict[str, str]:
    """A newcomer's shell: no ledger or sources set, and no `payoff` already on the PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYOFF_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    path = os.environ.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(p for p in path if p and not (Path(p) / "payoff").exists())
    return env


def script_of(blocks: list[str]) -> str:
    lines = ["set -euo pipefail"]
    for number, block in enumerate(blocks, start=1):
        lines += [f'echo "{MARK} {number} starts"', block, f'echo "{MARK} {number} ok"']
    return "\n".join(lines) + "\n"


def test_the_quickstart_has_the_first_hour_in_it() -> None:
    blocks = quickstart_blocks(README.read_text())
    text = "\n".join(blocks)
    assert blocks[0].startswith("make demo")
    assert "source .venv/bin/activate" in blocks[0] and "export PAYOFF_DB=demo.db" in blocks[0]
    for command in (
        "payoff ingest examples/usage.jsonl",
        "payoff tasks",
        "payoff plans apply",
        "payoff subscribe",
        "payoff invoice run",
        "payoff invoice show",
        "payoff invoice finalize",
        "payoff invoice export",
        "payoff outcomes",
        "payoff integrity",
        "payoff report",
        "payoff simulate",
    ):
        assert command in text, command
    # Every file a block names exists in the repository (or is made by an earlier block).
    for path in re.findall(r"examples/[\w./-]+", text):
        assert (REPO / path).is_file(), path


@pytest.mark.slow
def test_every_quickstart_block_runs_in_order_on_a_fresh_copy(tmp_path: Path) -> None:
    copy = tmp_path / "payoff"
    fresh_copy(copy)
    blocks = quickstart_blocks(README.read_text())
    (tmp_path / "quickstart.sh").write_text(script_of(blocks))
    run = subprocess.run(
        ["bash", str(tmp_path / "quickstart.sh")],
        cwd=copy,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=QUICKSTART_TIMEOUT_S,
        check=False,
    )
    started = re.findall(rf"^{MARK} (\d+) starts$", run.stdout, re.MULTILINE)
    failed = started[-1] if started else "1"
    assert run.returncode == 0, (
        f"Quickstart block {failed} failed:\n{blocks[int(failed) - 1]}\n"
        f"--- stdout (end)\n{run.stdout[-3000:]}\n--- stderr (end)\n{run.stderr[-3000:]}"
    )
    done = re.findall(rf"^{MARK} (\d+) ok$", run.stdout, re.MULTILINE)
    assert done == [str(n) for n in range(1, len(blocks) + 1)]
    assert (copy / "northwind.html").is_file() and (copy / "tokens.png").is_file()
