"""`config ...`: the settings in effect and where each comes from, or a `.env` template."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..settings import Settings
from .console import dump, say
from .context import given, settings_from_ctx
from .exits import exits
from .group import CommandGroup
from .options import CacheOpt, ConcurrencyOpt, JsonOpt, LlmUrlOpt, ModelOpt, SummarizerOpt
from .tables import print_settings

__all__ = ["app"]

app = CommandGroup(help="Show the settings in effect, or write a .env template.",
                   no_args_is_help=True)


@app.command("show")
@exits
def config_show(
    ctx: typer.Context,
    cache: CacheOpt = None,
    concurrency: ConcurrencyOpt = None,
    lm_studio_api_url: LlmUrlOpt = None,
    lm_studio_model: ModelOpt = None,
    summarizer: SummarizerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every setting in effect and where it comes from (default, .env, environment, flag).

    Secrets are masked. The flags are those of `run`.
    """
    from ..config import settings_table

    settings = settings_from_ctx(ctx)
    rows = settings_table(settings, {name for name in ctx.params
                                     if name in Settings.model_fields and given(ctx, name)})
    if as_json:
        dump({r["setting"]: {k: v for k, v in r.items() if k != "setting"} for r in rows})
    else:
        print_settings(rows)


@app.command("init")
@exits
def config_init(
    path: Annotated[Path, typer.Argument(help="File to write.")] = Path(".env"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented .env template with every setting at its default."""
    from ..config import write_template

    write_template(path, force=force)
    say(f"wrote {path}: uncomment and edit the settings you need")
