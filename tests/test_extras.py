"""Without an extra, the features that need it name the extra to install, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from payoff.extras import MissingExtra, needs


def run_without(module: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter where `module` cannot be imported."""
    prelude = f"import sys; sys.modules[{module!r}] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=60
    )


def cli(*args: str) -> str:
    return (
        f"import sys; sys.argv = ['payoff', *{list(args)!r}]\nfrom payoff.cli import main; main()"
    )


def test_serve_without_the_server_extra_says_what_to_install(tmp_path: Path) -> None:
    done = run_without("fastapi", cli("--db", str(tmp_path / "l.db"), "serve", "--port", "1"))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: payoff serve needs the server extra: pip install 'payoff[server]'"
    )


def test_a_chart_without_the_charts_extra_says_what_to_install(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    run_without("matplotlib", cli("--db", db, "ingest", "-"))  # an empty, migrated ledger
    done = run_without(
        "matplotlib",
        cli("--db", db, "report", "--period", "2026-11", "--chart", str(tmp_path / "c.png")),
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().endswith("needs the charts extra: pip install 'payoff[charts]'")


def test_the_api_without_the_server_extra_raises_missing_extra() -> None:
    code = (
        "import payoff.api\n"
        "try:\n    payoff.api.create_app\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    done = run_without("fastapi", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "MissingExtra payoff.api needs the server extra: pip install 'payoff[server]'"
    )


def test_the_core_install_imports_without_any_extra() -> None:
    blocked = ["fastapi", "uvicorn", "matplotlib", "starlette", "opentelemetry"]
    code = (
        "import sys\n"
        + "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
        + "import payoff, payoff.cli, payoff.cli.server, payoff.api\nprint('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_other_missing_modules_are_not_blamed_on_an_extra() -> None:
    with pytest.raises(ModuleNotFoundError) as caught, needs("server", "payoff serve"):
        import payoff_no_such_module  # type: ignore[import-not-found]  # noqa: F401
    assert not isinstance(caught.value, MissingExtra)
    with pytest.raises(MissingExtra, match=r"pip install 'payoff\[charts\]'"), needs("charts", "x"):
        raise ModuleNotFoundError("gone", name="matplotlib.pyplot")
