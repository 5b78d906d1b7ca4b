"""Reference output: `schema` (the output record) and `formats` (the input formats)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .exits import exits
from .group import CommandGroup

__all__ = ["app"]

app = CommandGroup()
PANEL = "Reference"


@app.command(rich_help_panel=PANEL)
@exits
def schema() -> None:
    """Print the JSON Schema of the output record."""
    from ..models import OutputRecord

    typer.echo(json.dumps(OutputRecord.model_json_schema(), indent=2))


@app.command(rich_help_panel=PANEL)
@exits
def formats(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List the input formats: name, how each is detected, whether --writeback works."""
    from ..sources import describe_formats, format_table

    typer.echo(json.dumps(describe_formats(), indent=2, ensure_ascii=False) if as_json
               else format_table())
