"""The command line: options in, one library call, errors out as exit codes.

The root app is assembled here from one module per command group, in the order
``--help`` lists them; nothing below imports this package. Each command is its
options, a docstring, and one call; :func:`~.exits.exits` turns what it raises
into an exit code. Setting flags are declared from their Settings field
(:func:`~.options.setting_option`).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .._version import __version__
from . import cache, config, info, ops, report, run, search
from .group import CommandGroup

__all__ = ["app", "main"]

app = CommandGroup(
    name="bookmark-enrich",
    help="Enrich bookmarks in batches: fetch pages, extract text and metadata, "
    "summarize, archive media, write results back.",
    no_args_is_help=True,
)
app.add_typer(run.app)
app.add_typer(search.app)
app.add_typer(ops.app)
app.add_typer(report.app)
app.add_typer(cache.app, name="cache", rich_help_panel=ops.PANEL)
app.add_typer(config.app, name="config", rich_help_panel=ops.PANEL)
app.add_typer(info.app)


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
