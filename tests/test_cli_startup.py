"""The command starts quickly: `payoff --help` and `payoff tasks` load only what they use,
and opening a ledger already at the packaged schema never loads Alembic."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from payoff.store import _alembic_config, open_store, packaged_head

NOT_FOR_HELP = ("sqlalchemy", "alembic", "genai_prices", "pydantic", "payoff.service.ingest",
                "payoff.store.sql", "payoff.catalog", "fastapi", "matplotlib", "yaml")  # fmt: skip
NOT_FOR_TASKS = ("alembic", "genai_prices", "payoff.catalog", "payoff.service.ingest",
                 "payoff.service.invoices", "fastapi", "matplotlib", "yaml")  # fmt: skip


def _run_in_a_fresh_process(*args: str) -> tuple[list[str], bool]:
    """The modules a `payoff` run has loaded when it exits, and whether the cyclic garbage
    collector is running then."""
    script = textwrap.dedent(
        f"""
        import atexit, gc, json, sys
        atexit.register(
            lambda: sys.__stderr__.write(json.dumps([sorted(sys.modules), gc.isenabled()]))
        )
        sys.argv = ["payoff", *{list(args)!r}]
        from payoff.cli import main
        main()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    modules, collector_running = json.loads(done.stderr[done.stderr.index("[[") :])
    return modules, collector_running


def _modules_loaded_by(*args: str) -> list[str]:
    return _run_in_a_fresh_process(*args)[0]


def _loaded(modules: list[str], heavy: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(f"{h}.") for h in heavy)]


@pytest.mark.slow
def test_help_loads_no_store_service_or_price_data() -> None:
    assert _loaded(_modules_loaded_by("--help"), NOT_FOR_HELP) == []
    assert _loaded(_modules_loaded_by("--version"), NOT_FOR_HELP) == []


@pytest.mark.slow
def test_tasks_loads_neither_alembic_nor_price_data(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    open_store(db).close()  # created and migrated: at the packaged head
    modules, collector_running = _run_in_a_fresh_process("tasks", "--db", str(db))
    assert "sqlalchemy" in modules  # the check is not vacuous: the store was opened
    assert _loaded(modules, NOT_FOR_TASKS) == []
    assert collector_running  # paused for start-up only: running again once the store opened


def test_packaged_head_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    assert packaged_head() == ScriptDirectory.from_config(_alembic_config()).get_current_head()


def test_a_ledger_behind_the_head_is_still_migrated(tmp_path: Path) -> None:
    from alembic import command

    db = tmp_path / "old.db"
    store = open_store(db)
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        config = _alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    store.close()
    store = open_store(db)  # the stored revision is not the head: Alembic upgrades it
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert revision == packaged_head()
    store.close()


def test_an_unreadable_file_is_still_a_clear_error(tmp_path: Path) -> None:
    from payoff.core.errors import StoreError

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a SQLite database" * 100)
    with pytest.raises(StoreError, match="cannot open ledger"):
        open_store(junk)
