"""payoff.core is pure: it imports nothing outside the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import payoff.core

CORE = Path(payoff.core.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_core_imports_only_the_standard_library() -> None:
    offenders = {}
    for path in sorted(CORE.rglob("*.py")):
        outside = {
            name
            for name in _imported_modules(path)
            if name.split(".")[0] not in sys.stdlib_module_names
            and not name.startswith("payoff.core")
        }
        if outside:
            offenders[path.name] = sorted(outside)
    assert offenders == {}


def test_core_never_mentions_float_or_the_clock() -> None:
    for path in sorted(CORE.rglob("*.py")):
        source = path.read_text()
        for banned in ("float(", ": float", "-> float", "datetime.now(", "time.time("):
            assert banned not in source, f"{path.name} mentions {banned}"
