"""Where the CLI writes: data on stdout, everything else (progress, notes, errors) on stderr."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer
from rich.console import Console

__all__ = ["dump", "err", "out", "say", "subscribers"]

err = Console(stderr=True, highlight=False)
"""Progress, notes and error lines."""

# Piped reports (cron mail, files) get room for URLs; a terminal keeps its own width.
out = Console(highlight=False, soft_wrap=False,
              width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
"""Reports (tables) on stdout."""


def say(message: str) -> None:
    """One note on stderr, printed as is (URLs and paths may hold [brackets])."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def dump(doc: Any) -> None:
    """One JSON document on stdout."""
    typer.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))


def subscribers(log_interval: float, quiet: bool, log_format: str = "text") -> list[Any]:
    """What watches a run: live bars on a terminal, log lines elsewhere; notices and
    input problems. With ``quiet`` only warnings and input problems."""
    from ..progress import LogProgress, RichProgress, issue_printer

    subs: list[Any] = [issue_printer(err, quiet=quiet)]
    if not quiet:
        subs.append(RichProgress(err) if err.is_terminal
                    else LogProgress(err, log_interval, as_json=log_format == "json"))
    return subs
