"""The command line: options in, one library call, errors out as exit codes.

The root app is assembled here from one module per command group, in the order
``--help`` lists them; nothing below imports this package. Each command is its
options, a docstring, and one call; :func:`~.exits.exits` turns what it raises
into an exit code. Setting flags are declared from their Settings field
(:func:`~.options.setting_option`).

A command's module is imported when that command runs, not before: the setting flags
need the Settings model, and importing pydantic-settings alone costs more than the
rest of ``--version``. The root's ``--help`` lists the commands from :data:`COMMANDS`
(tests/test_cli.py holds it to the commands themselves).
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any

import typer

from .._version import __version__
from .group import CommandGroup, LazyRoot

__all__ = ["COMMANDS", "app", "main"]

_ENRICH, _SEARCH, _OPS, _REFERENCE = "Enrich", "Search", "Operations", "Reference"

COMMANDS: dict[str, tuple[str, str, str]] = {
    # name: (module, help panel, the first paragraph of its help), in --help order
    "run": ("run", _ENRICH,
            "Enrich every bookmark of SOURCE and print one JSON record per bookmark."),
    "writeback": ("run", _ENRICH,
                  "Write what the cache holds for SOURCE back into it, without enriching "
                  "again."),
    "worker": ("run", _ENRICH,
               "Take batches of bookmarks from a queue and enrich them with this machine's "
               "settings."),
    "search": ("search", _SEARCH,
               "Search the enriched bookmarks in the cache (exit 1 when nothing matches)."),
    "similar": ("search", _SEARCH,
                "The bookmarks nearest to one, by embeddings or shared words (exit 1 when "
                "none)."),
    "doctor": ("ops", _OPS,
               "Check the cache, SOURCE and every configured service at once; exit 1 if one "
               "fails."),
    "status": ("ops", _OPS,
               "Recent runs, success rate per stage and the top failure reasons in the "
               "cache."),
    "show": ("ops", _OPS,
             "Everything the cache holds for one bookmark: each stage and the enrichment."),
    "runs": ("ops", _OPS, "The run history, or with --failed the failed bookmarks and why."),
    "dead": ("ops", _OPS,
             "Bookmarks whose page is dead: the reason, when, and the archive's snapshot."),
    "retry": ("ops", _OPS,
              "Re-run just the failures the cache holds (all, or those matching the "
              "filters)."),
    "report": ("report", _OPS,
               "Write one self-contained HTML page: what a run did, what failed, what is "
               "dead."),
    "cache": ("cache", _OPS, "Back up, export, vacuum, prune and reindex the cache."),
    "config": ("config", _OPS, "Show the settings in effect, or write a .env template."),
    "schema": ("info", _REFERENCE, "Print the JSON Schema of the output record."),
    "formats": ("info", _REFERENCE,
                "List the input formats: name, how each is detected, whether --writeback "
                "works."),
}
"""Every command the root lists. A module's commands join the root as its ``app``'s;
``cache`` and ``config`` are groups of their own under that name."""


def load_commands(module: str) -> dict[str, Any]:
    """The click commands of ``bookmark_enrich.cli.<module>``, as the root would hold them."""
    app_ = importlib.import_module(f"{__name__}.{module}").app
    holder = CommandGroup()
    if module in ("cache", "config"):
        holder.add_typer(app_, name=module, rich_help_panel=COMMANDS[module][1])
    else:
        holder.add_typer(app_)
    return dict(typer.main.get_group(holder).commands)


app = CommandGroup(
    name="bookmark-enrich",
    help="Enrich bookmarks in batches: fetch pages, extract text and metadata, "
    "summarize, archive media, write results back.",
    no_args_is_help=True,
    cls=LazyRoot.of(COMMANDS, load_commands),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bookmark-enrich {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """The root's own options; its help is the app's."""


def main() -> None:
    """Console-script entry point."""
    # httpx imports its own command-line tool when click is installed (typer has its
    # own copy): click, pygments and rich.syntax, ~40 ms of every run. We never call
    # it, so its import fails over to httpx's stub. Only here, not in the library.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    app()
