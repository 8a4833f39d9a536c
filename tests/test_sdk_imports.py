"""A remote Meter loads the SDK, not the ledger: no ingest pipeline, store or server."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = (
    "payoff.service",
    "payoff.store",
    "sqlalchemy",
    "alembic",
    "fastapi",
    "uvicorn",
    "matplotlib",
)


def _modules_after(code: str) -> list[str]:
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json, sys
        print(json.dumps(sorted(sys.modules)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return modules


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]


def test_a_remote_meter_imports_no_ingest_store_or_server_module(tmp_path: Path) -> None:
    modules = _modules_after(
        f"""
        import payoff.sdk
        meter = payoff.sdk.Meter(
            "http://127.0.0.1:9", api_key="k", spool={str(tmp_path / "spool")!r},
            close_at_exit=False,
        )
        meter.close(timeout_s=1)
        """
    )
    assert "payoff.sdk.remote" in modules
    assert _heavy(modules) == []


def test_an_embedded_meter_loads_the_ledger_when_it_is_made(tmp_path: Path) -> None:
    modules = _modules_after(
        f"""
        import sys
        import payoff.sdk
        assert "payoff.service.ingest" not in sys.modules
        meter = payoff.sdk.Meter({str(tmp_path / "l.db")!r}, close_at_exit=False)
        meter.close()
        """
    )
    assert {"payoff.service.ingest", "payoff.store", "sqlalchemy"} <= set(modules)
