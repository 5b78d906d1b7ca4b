"""The README and --help agree with the code: every command and setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from bookmark_enrich.cli import app
from bookmark_enrich.settings import Settings, env_name

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
runner = CliRunner()


def _commands() -> list[list[str]]:
    root = get_command(app)
    found: list[list[str]] = []
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        found.append([name])
        for sub in getattr(cmd, "commands", {}):
            found.append([name, sub])
    return found


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_every_command_is_in_the_readme(command: list[str]) -> None:
    name = " ".join(command)
    assert f"bookmark-enrich {name}" in README or f"`{name}" in README, name


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_help_shows_defaults_written_in_brackets(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    # Rich markup swallows an unescaped "[default: x]" and leaves "… ." behind.
    assert not re.search(r"\w \.\s", result.stdout), result.stdout


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_in_the_readme(field: str) -> None:
    name = env_name(field)
    short = "_" + name.removeprefix("BOOKMARK_ENRICH_")  # table rows like `_CONNECT_TIMEOUT`
    assert name in README or f"`{short}`" in README or short + "`" in README, name


def test_app_is_typer() -> None:
    assert isinstance(app, typer.Typer)
