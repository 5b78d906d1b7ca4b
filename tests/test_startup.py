"""Start-up stays light: the CLI and its quick commands load no heavy dependency (issue 23).

Each case runs in a fresh interpreter and reads ``sys.modules``, which is deterministic;
nothing here is timed (bench/bench_startup.py measures the seconds). When one of these
fails, the message names the chain of imports: move the import into the function
that uses the dependency, and put type-only imports under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bookmark_enrich.cache import ResultCache
from bookmark_enrich.models import STAGE_NAMES
from bookmark_enrich.stages import STAGES

HEAVY = ("openai", "boto3", "trafilatura", "numpy", "yake", "sqlite_utils")
"""Named by issue 23: each belongs to the one place that uses it (LLM client, storage,
extraction workers, built-in summarizer, table creation)."""

ALSO_LIGHT = ("botocore", "httpx", "httpcore", "lxml", "ada_url", "charset_normalizer",
              "pypdfium2", "yt_dlp", "taskiq", "psycopg", "multiprocessing")
"""Not needed before a command does its work either; kept out of the CLI's import."""

_PROBE = textwrap.dedent("""
    import atexit, json, sys

    _OUT = sys.argv[1]

    def _report():
        with open(_OUT, "w") as fh:
            json.dump(sorted(sys.modules), fh)

    atexit.register(_report)
    sys.argv = ["bookmark-enrich", *sys.argv[2:]]
    if sys.argv[1:] == ["(import)"]:
        import bookmark_enrich.cli
    else:
        from bookmark_enrich.cli import main
        main()
""")


def loaded_by(args: list[str], tmp_path: Path) -> set[str]:
    """The modules loaded by a fresh ``bookmark-enrich ARGS`` (or by the import alone)."""
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(out), *args],
                          capture_output=True, text=True, timeout=60)
    assert out.exists(), proc.stderr
    return set(json.loads(out.read_text()))


def heavy_in(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules)


def test_importing_the_cli_loads_no_heavy_module(tmp_path: Path) -> None:
    modules = loaded_by(["(import)"], tmp_path)
    assert heavy_in(modules, HEAVY) == [], "run `python -X importtime -c 'import " \
        "bookmark_enrich.cli'` to see who imports them"
    assert heavy_in(modules, ALSO_LIGHT) == []
    assert not any(m.startswith("bookmark_enrich.stages") for m in modules)


@pytest.mark.parametrize("args", [
    ["--version"], ["--help"], ["run", "--help"], ["formats"], ["config", "show"],
    ["status"], ["runs"], ["show", "https://example.com/a"],
], ids=" ".join)
def test_quick_commands_load_no_heavy_module(args: list[str], tmp_path: Path) -> None:
    ResultCache(tmp_path / "cache.sqlite").close()  # the reports read an existing cache
    modules = loaded_by(args, tmp_path)
    assert heavy_in(modules, HEAVY) == []
    # `show` normalizes the URL it is given, which takes the URL parser.
    allowed = ("ada_url",) if args[0] == "show" else ()
    assert heavy_in(modules, tuple(n for n in ALSO_LIGHT if n not in allowed)) == []


def test_stage_names_follow_the_stages() -> None:
    """models.STAGE_NAMES lets reports order stages without importing them."""
    assert tuple(cls.name for cls in STAGES) == STAGE_NAMES, \
        "add the new stage's name to models.STAGE_NAMES, in pipeline order"


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["formats"]], ids=" ".join)
def test_commands_without_settings_load_no_command_module_they_do_not_run(
        args: list[str], tmp_path: Path) -> None:
    # pydantic-settings costs more than the rest of --version: the root imports a
    # command's module (and with it the setting flags) only when that command runs.
    modules = loaded_by(args, tmp_path)
    assert "pydantic_settings" not in modules
    commands = {m for m in modules if m.startswith("bookmark_enrich.cli.")}
    expected = {"bookmark_enrich.cli.group", "bookmark_enrich.cli.exits",
                "bookmark_enrich.cli.info"} if args == ["formats"] else \
        {"bookmark_enrich.cli.group"}
    assert commands <= expected | {"bookmark_enrich.cli.console"}, commands
