"""The docs and --help agree with the code: every command and setting is documented,
the generated reference pages are fresh, and --help reads well at 80 columns."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from bookmark_enrich.cli import app
from bookmark_enrich.cli.exits import exits
from bookmark_enrich.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
# What people wrote (the reference pages are generated, so they prove nothing here).
PROSE = README + "".join(p.read_text() for p in [ROOT / "docs" / "index.md",
                                                 *sorted((ROOT / "docs" / "guide").glob("*.md"))])
runner = CliRunner()


def _gen_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference",
                                                  ROOT / "docs" / "gen_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands() -> list[tuple[list[str], Any]]:
    root = get_command(app)
    found: list[tuple[list[str], Any]] = []
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        found.append(([name], cmd))
        for sub, subcmd in getattr(cmd, "commands", {}).items():
            found.append(([name, sub], subcmd))
    return found


COMMANDS = [path for path, _ in _commands()]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_is_explained_in_the_guide(command: list[str]) -> None:
    name = " ".join(command)
    assert f"bookmark-enrich {name}" in PROSE or f"`{name}" in PROSE, name


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_has_one_description_and_a_reference_row(field: str) -> None:
    assert Settings.model_fields[field].description, f"{field}: no Field(description=...)"
    settings_page = (ROOT / "docs" / "reference" / "settings.md").read_text()
    assert f"`{env_name(field)}`" in settings_page


def test_reference_pages_are_generated_from_the_current_code() -> None:
    stale = _gen_reference().stale()
    assert not stale, (f"stale docs/reference pages {stale}: "
                       "run `python docs/gen_reference.py` and commit the result")


def test_readme_is_short_and_links_into_the_docs() -> None:
    assert len(README.splitlines()) <= 200
    links = re.findall(r"\]\((docs/[^)#]+)", README)
    assert links
    for link in links:
        assert (ROOT / link).exists(), link


@pytest.mark.parametrize("command", [[], *COMMANDS], ids=lambda c: " ".join(c) or "root")
def test_help_fits_80_columns(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for line in result.stdout.splitlines():
        assert len(line) <= 80, line
        assert "…" not in line, line  # a cut-off option, value or variable name
        assert "<bool>" not in line, line  # a flag takes no value


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_defaults_written_in_brackets(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    # Rich markup swallows an unescaped "[default: x]" and leaves "… ." behind.
    assert not re.search(r"\w \.\s", result.stdout), result.stdout


def test_on_off_flags_say_on_or_off() -> None:
    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    line = next(x for x in result.stdout.splitlines() if "--no-media" in x)
    assert "[default: on]" in line
    assert "[default: media]" not in result.stdout


def test_setting_flags_take_their_help_from_the_field() -> None:
    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    line = next(x for x in result.stdout.splitlines() if "--concurrency" in x)
    assert Settings.model_fields["concurrency"].description in line
    assert "[default: 16]" in line and "[env: BOOKMARK_ENRICH_CONCURRENCY]" in line


def test_typed_choices_refuse_unknown_values() -> None:
    for args in (["--summarizer", "gpt"], ["--media-backend", "wget"],
                 ["--video-quality", "999"], ["--format", "xml"]):
        result = runner.invoke(app, ["run", "-", *args], input="http://x.org\n")
        assert result.exit_code == 2, (args, result.output)
        assert "unknown" in result.output and args[1] in result.output


def test_every_command_turns_errors_into_exits() -> None:
    probe = exits(lambda: None).__code__
    for path, cmd in _commands():
        if getattr(cmd, "commands", None):
            continue  # a group; its commands are checked
        chain, f = [], cmd.callback
        while f is not None:
            chain.append(f)
            f = getattr(f, "__wrapped__", None)
        assert any(getattr(f, "__code__", None) is probe for f in chain), path


def test_app_is_typer() -> None:
    assert isinstance(app, typer.Typer)
