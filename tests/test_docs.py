"""The docs are tested: the CLI reference is generated from the commands themselves.

Regenerate with `make docs` (PAYOFF_WRITE_DOCS=1 pytest tests/test_docs.py).
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import typer.main

from factories import REPO
from payoff.cli import app

CLI_REFERENCE = REPO / "docs" / "cli.md"


def _param_line(param: Any) -> str:
    # Parameters are read by duck typing: Typer's command classes are its own.
    if param.param_type_name == "argument":
        many = "..." if param.nargs == -1 else ""
        return f"- `{param.name.upper()}{many}` (argument): {getattr(param, 'help', '') or ''}"
    names = ", ".join(f"`{name}`" for name in param.opts)
    extra = []
    if param.envvar:
        extra.append(f"env `{param.envvar}`")
    shown = param.default is not None and param.default is not False and param.default != ()
    if shown and not getattr(param, "is_flag", False):
        extra.append(f"default `{param.default}`")
    suffix = f" ({'; '.join(extra)})" if extra else ""
    return f"- {names}: {param.help or ''}{suffix}"


def _command_section(name: str, command: Any) -> list[str]:
    lines = [f"## `{name}`", "", inspect.cleandoc(command.help or ""), ""]
    params = [p for p in command.params if p.name != "help"]
    lines += [_param_line(p) for p in params]
    return [*lines, ""]


def cli_reference() -> str:
    root: Any = typer.main.get_command(app)
    lines = [
        "# CLI reference",
        "",
        "Generated from the commands by `make docs`; a test keeps it current.",
        "",
        *_command_section("payoff", root),
    ]
    for name, command in _walk(root, "payoff"):
        lines += _command_section(name, command)
    return "\n".join(lines).rstrip() + "\n"


def _walk(group: Any, prefix: str) -> list[tuple[str, Any]]:
    """Every command under a group, sub-commands of sub-groups included, by name."""
    found = []
    for name in sorted(group.commands):
        command = group.commands[name]
        found.append((f"{prefix} {name}", command))
        if getattr(command, "commands", None):
            found += _walk(command, f"{prefix} {name}")
    return found


def test_cli_reference_is_current() -> None:
    expected = cli_reference()
    if os.environ.get("PAYOFF_WRITE_DOCS"):
        CLI_REFERENCE.write_text(expected)
    assert CLI_REFERENCE.read_text() == expected, "run `make docs`"


def test_every_command_and_option_is_documented() -> None:
    root: Any = typer.main.get_command(app)
    for name, command in _walk(root, "payoff"):
        assert command.help, f"`{name}` has no help text"
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert param.help, f"`{name} {param.opts[0]}` has no help text"


def test_readme_shows_the_two_setup_commands() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
