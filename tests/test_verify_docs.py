"""docs/verify.md runs as written: its `sh` blocks, in order, in an empty folder, with the
`payoff` beside this Python; and the outputs it shows are the ones those commands print."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "verify.md"
BLOCK = re.compile(r"^```([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)

pytestmark = pytest.mark.slow


def blocks(kind: str) -> list[str]:
    return [body for info, body in BLOCK.findall(PAGE.read_text()) if info == kind]


def test_the_page_is_linked_from_the_readme_and_the_invoices_page() -> None:
    assert "(docs/verify.md)" in (REPO / "README.md").read_text()
    assert "(verify.md)" in (REPO / "docs" / "invoices.md").read_text()


def test_every_sh_block_of_the_page_runs_in_order(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYOFF_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    script = "set -euo pipefail\n" + "\n".join(blocks("sh"))
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    printed = _any_year(done.stdout)
    # Each line the page shows as output is printed, up to the digests it shortens (and the
    # year in document numbers, the year they are finalized in).
    for shown in _any_year("\n".join(blocks("console"))).splitlines():
        for part in re.split(r"sha256:[0-9a-f]+\.\.\.", shown):
            assert part in printed, part


def _any_year(text: str) -> str:
    return re.sub(r"\b(INV|CN)-\d{4}-", r"\1-YYYY-", text)
