"""`cache ...`: where the cache is, back it up, vacuum, export, prune and reindex it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import EXIT_FAILURES
from .cachefile import existing, reader
from .console import say
from .context import settings_from_ctx
from .exits import exits, fail
from .group import CommandGroup
from .options import CacheOpt, IncludeTextOpt, OutputOpt, ReasonOpt, StageOpt, YesOpt

__all__ = ["app"]

app = CommandGroup(help="Back up, export, vacuum, prune and reindex the cache.",
                   no_args_is_help=True)


def _confirm(question: str, yes: bool) -> None:
    """Ask on a terminal; elsewhere ``--yes`` is required (cron never hangs on a prompt)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise fail(f"{question.rstrip('?')}: refusing without --yes (stdin is not a terminal)")
    if not typer.confirm(question, default=False, err=True):
        raise fail("cancelled", EXIT_FAILURES)


@app.command("path")
@exits
def cache_path(ctx: typer.Context, cache: CacheOpt = None) -> None:
    """Print where the cache file is."""
    typer.echo(str(settings_from_ctx(ctx).cache))


@app.command("backup")
@exits
def cache_backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(
        help="Where to write the copy (a file or a folder).", show_default=False)],
    cache: CacheOpt = None,
    yes: YesOpt = False,
) -> None:
    """Copy the cache with SQLite's online backup (safe while a run writes), then verify it."""
    from ..maintenance import backup

    source = settings_from_ctx(ctx).cache
    target = path / source.name if path.is_dir() else path
    if target.exists():
        _confirm(f"overwrite {target}?", yes)
    done = backup(source, target)
    say(f"backup: {done['path']} ({done['bytes']} bytes, integrity ok)")


@app.command("vacuum")
@exits
def cache_vacuum(ctx: typer.Context, cache: CacheOpt = None) -> None:
    """Rebuild the cache file to give back the space of deleted rows."""
    from ..lock import cache_lock
    from ..maintenance import vacuum

    path = existing(settings_from_ctx(ctx).cache)
    with cache_lock(path):
        before, after = vacuum(path)
    say(f"vacuum: {before} → {after} bytes")


@app.command("export")
@exits
def cache_export(
    ctx: typer.Context,
    output: OutputOpt = None,
    include_text: IncludeTextOpt = False,
    cache: CacheOpt = None,
) -> None:
    """Every cached bookmark as a JSON Lines output record (the shape `run` prints)."""
    from ..maintenance import export_records
    from ..sinks import open_sink

    settings = settings_from_ctx(ctx)
    sink = open_sink(output, private=True)  # it holds the whole cache
    committed = False
    count = 0
    try:
        with reader(settings.cache) as c:
            for record in export_records(c, settings, include_text):
                sink(record)
                count += 1
        committed = True
    finally:
        sink.close(commit=committed)
    if output:
        say(f"exported {count} records to {output}")


@app.command("reindex")
@exits
def cache_reindex(ctx: typer.Context, cache: CacheOpt = None) -> None:
    """Rebuild the search index from the cached results (search keeps it current itself)."""
    from ..finder import Finder
    from .search import prepare_index

    with Finder(settings_from_ctx(ctx)) as finder:
        prepare_index(finder)  # creates it when missing
        count = finder.rebuild()
    say(f"reindex: {count} bookmarks indexed for search")


@app.command("prune")
@exits
def cache_prune(
    ctx: typer.Context,
    older_than: Annotated[str | None, typer.Option(
        "--older-than", metavar="<age>", show_default=False,
        help="Delete results not refreshed for this long (90d, 12h).")] = None,
    failed: Annotated[bool, typer.Option(
        "--failed", help="Delete failed results (the next run redoes them).")] = False,
    stage: StageOpt = None,
    reason: ReasonOpt = None,
    cache: CacheOpt = None,
    yes: YesOpt = False,
) -> None:
    """Delete old or failed results from the cache (asks first; --yes when not a terminal)."""
    if (older_than is None) == (not failed):
        raise fail("name what to prune: --older-than AGE or --failed (one of them)")
    if (stage or reason) and not failed:
        raise fail("--stage and --reason go with --failed")
    _prune(settings_from_ctx(ctx).cache, older_than, (stage, reason) if failed else None,
           yes=yes)


def _prune(path: Path, older_than: str | None, failed: tuple[str | None, str | None] | None,
           *, yes: bool) -> None:
    from ..cache import ResultCache
    from ..lock import cache_lock
    from ..maintenance import count_matching, prune_failed, prune_older
    from ..reports import failure_filter, parse_age

    with cache_lock(existing(path)), ResultCache(path) as c:
        if failed is not None:
            flt = failure_filter(c, *failed)
            n = count_matching(c, flt=flt)
            what = "failed results"
        else:
            assert older_than is not None
            seconds = parse_age(older_than)
            n = count_matching(c, seconds=seconds)
            what = f"results older than {older_than}"
        if n == 0:
            say(f"prune: no {what}")
            return
        _confirm(f"delete {n} {what} from {path}?", yes)
        done = prune_failed(c, flt) if failed is not None else prune_older(c, seconds)
    say("prune: deleted " + ", ".join(f"{v} {k}" for k, v in done.items()))
