"""The README documents every command, and every command's --help works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from bundler.cli import _register, app

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def command_paths() -> list[str]:
    _register()
    group = typer.main.get_command(app)
    paths = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        sub = getattr(command, "commands", None)
        paths.extend(f"{name} {child}" for child in sub) if sub else paths.append(name)
    return sorted(paths)


def test_every_command_is_known() -> None:
    assert command_paths() == [
        "assemble",
        "check",
        "db init",
        "db seed",
        "db status",
        "db stop",
        "export",
        "prune",
        "releases",
        "rollback",
        "schema",
        "stories",
        "verify",
    ]


@pytest.mark.parametrize("path", command_paths())
def test_readme_covers_command(path: str) -> None:
    assert re.search(rf"bundler {re.escape(path)}\b", README), f"README does not show `bundler {path}`"


@pytest.mark.parametrize("path", command_paths())
def test_help_works(path: str) -> None:
    from tests.cli_helpers import run_cli

    result = run_cli(*path.split(), "-h")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def option_names() -> list[str]:
    """Every long option of every command (and of `bundler` itself)."""
    _register()
    group = typer.main.get_command(app)
    commands = [group]
    names = set()
    while commands:
        command = commands.pop()
        commands.extend(getattr(command, "commands", {}).values())
        names.update(o for p in command.params for o in getattr(p, "opts", ()) if o.startswith("--") and o != "--help")
    return sorted(names)


@pytest.mark.parametrize("option", option_names())
def test_readme_covers_option(option: str) -> None:
    assert re.search(rf"{re.escape(option)}\b", README), f"README does not mention {option}"


def test_readme_starts_with_the_two_commands() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert "make demo" in first_block and "make test" in first_block
