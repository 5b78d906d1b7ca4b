"""Operations: `doctor`, `status`, `show`, `runs`, `dead` and `retry`.

Reports are data, so they go to stdout (a table, or JSON with ``--json``); the
work happens in doctor.py, reports.py and retry.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import EXIT_FAILURES, EXIT_INTERRUPTED
from .cachefile import existing, reader
from .console import dump, err, say, subscribers
from .context import SourceSpec, settings_from_ctx, writeback_options
from .exits import exits, fail
from .group import CommandGroup
from .options import (
    WRITEBACK,
    AllowFileRootOpt,
    AllowHostOpt,
    AllowPrivateOpt,
    ArchiveFieldOpt,
    CacheOpt,
    CheckedFormatOpt,
    ColumnPrefixOpt,
    ColumnsOpt,
    CreateColumnsOpt,
    EmbeddingModelOpt,
    EmbeddingUrlOpt,
    IdColumnOpt,
    JsonOpt,
    KeepGoingOpt,
    LlmUrlOpt,
    ModelOpt,
    NoBackupOpt,
    NoSummaryOpt,
    OutputOpt,
    QueueNameOpt,
    QueueOpt,
    QuietOpt,
    ReasonOpt,
    SinceOpt,
    StageOpt,
    SummarizerOpt,
    TableOpt,
    UrlColumnOpt,
    UrlFieldOpt,
    WaitLockOpt,
    WhereOpt,
    choice,
)
from .tables import print_bookmark, print_doctor, print_rows, print_status

if TYPE_CHECKING:
    from ..settings import Settings
    from ..writeback import WritebackOptions

__all__ = ["app"]

app = CommandGroup()
PANEL = "Operations"


@app.command(rich_help_panel=PANEL)
@exits
def doctor(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Argument(
        help="Also check this bookmarks file or database URL.", show_default=False)] = None,
    deep: Annotated[bool, typer.Option(
        "--deep", help="Also send one tiny request to each service (LLM answer time).")] = False,
    as_json: JsonOpt = False,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0.1, metavar="<seconds>", help="Seconds each check may take.")] = 5.0,
    cache: CacheOpt = None,
    input_format: CheckedFormatOpt = None,
    url_field: UrlFieldOpt = None,
    table: TableOpt = None,
    id_column: IdColumnOpt = None,
    url_column: UrlColumnOpt = None,
    where: WhereOpt = None,
    queue: QueueOpt = None,
    queue_name: QueueNameOpt = "bookmark-enrich",
    no_summary: NoSummaryOpt = False,
    summarizer: SummarizerOpt = None,
    lm_studio_api_url: LlmUrlOpt = None,
    lm_studio_model: ModelOpt = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 1 on warnings too (weak credentials, exposed files).")] = False,
) -> None:
    """Check the cache, SOURCE and every configured service at once; exit 1 if one fails.

    Stages turned off are shown as skipped. Each check gets --timeout seconds.
    """
    from ..doctor import run_doctor

    settings = settings_from_ctx(ctx)
    report = asyncio.run(run_doctor(
        settings, deep=deep, timeout=timeout, source=source, input_format=input_format,
        url_field=url_field, table=table, id_column=id_column, url_column=url_column,
        where=where, queue=queue, queue_name=queue_name))
    if as_json:
        dump(report.as_dict())
    else:
        print_doctor(report)
    if not report.ok or (strict and report.warned):
        raise typer.Exit(EXIT_FAILURES)


@app.command(rich_help_panel=PANEL)
@exits
def status(
    ctx: typer.Context,
    cache: CacheOpt = None,
    runs: Annotated[int, typer.Option("--runs", min=1, help="How many recent runs.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Recent runs, success rate per stage and the top failure reasons in the cache."""
    from ..reports import status_report

    with reader(settings_from_ctx(ctx).cache) as c:
        doc = status_report(c, runs)
    if as_json:
        dump(doc)
    else:
        print_status(doc)


@app.command(rich_help_panel=PANEL)
@exits
def show(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(
        help="The bookmark's URL (any form that normalizes to it).", show_default=False)],
    cache: CacheOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Everything the cache holds for one bookmark: each stage and the enrichment."""
    from ..reports import bookmark_detail

    with reader(settings_from_ctx(ctx).cache) as c:
        doc = bookmark_detail(c, url)
    if doc is None:
        raise fail(f"{url}: not in the cache", EXIT_FAILURES)
    if as_json:
        dump(doc)
    else:
        print_bookmark(doc)


@app.command("runs", rich_help_panel=PANEL)
@exits
def runs_cmd(
    ctx: typer.Context,
    failed: Annotated[bool, typer.Option(
        "--failed", help="List failed bookmarks with their reasons instead of runs.")] = False,
    stage: StageOpt = None,
    reason: ReasonOpt = None,
    since: SinceOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 50,
    cache: CacheOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines on stdout.")] = False,
) -> None:
    """The run history, or with --failed the failed bookmarks and why."""
    from ..reports import failed_bookmarks, failure_filter, last_runs

    cols: tuple[str, ...]
    with reader(settings_from_ctx(ctx).cache) as c:
        if not failed:
            rows = last_runs(c, limit)
            cols = ("id", "started", "source", "status", "total", "ok", "partial", "failed",
                    "cached")
        else:
            rows = list(failed_bookmarks(c, failure_filter(c, stage, reason, since), limit))
            cols = ("url", "stage", "reason", "error", "attempts", "finished")
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r, ensure_ascii=False, default=str))
        return
    print_rows(rows, cols)
    if failed and not rows:
        say("no failures match")


@app.command(rich_help_panel=PANEL)
@exits
def dead(
    ctx: typer.Context,
    cache: CacheOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines on stdout.")] = False,
    output_format: Annotated[str, typer.Option(
        "--format", parser=choice(("table", "csv"), "format"),
        help="table or csv (with --json: JSON Lines).")] = "table",
) -> None:
    """Bookmarks whose page is dead: the reason, when, and the archive's snapshot.

    Example: bookmark-enrich dead --format csv > dead.csv
    """
    import csv
    import sys

    from ..reports import DEAD_COLUMNS, dead_bookmarks

    with reader(settings_from_ctx(ctx).cache) as c:
        rows = list(dead_bookmarks(c))
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r, ensure_ascii=False))
    elif output_format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=DEAD_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        print_rows(rows, ("url", "reason", "rescued", "snapshot_timestamp", "last_seen_dead"))
        if not rows:
            say("no dead bookmarks in the cache")


@app.command(rich_help_panel=PANEL)
@exits
def retry(
    ctx: typer.Context,
    stage: StageOpt = None,
    reason: ReasonOpt = None,
    since: SinceOpt = None,
    cache: CacheOpt = None,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    keep_going: KeepGoingOpt = False,
    wait_lock: WaitLockOpt = False,
    writeback: Annotated[bool, typer.Option(
        "--writeback", rich_help_panel=WRITEBACK,
        help="Then write the cache's results back into each recorded source.")] = False,
    no_backup: NoBackupOpt = False,
    columns: ColumnsOpt = None,
    column_prefix: ColumnPrefixOpt = "",
    create_columns: CreateColumnsOpt = False,
    archive_field: ArchiveFieldOpt = None,
    allow_private_network: AllowPrivateOpt = False,
    allow_hosts: AllowHostOpt = None,
    allow_file_roots: AllowFileRootOpt = None,
    embedding_url: EmbeddingUrlOpt = None,
    embedding_model: EmbeddingModelOpt = None,
) -> None:
    """Re-run just the failures the cache holds (all, or those matching the filters).

    Each bookmark's original record is read back from the cache; only the
    matching failed stages (and what depends on them) run again. Exit 1 when
    some still fail.
    """
    _retry(settings_from_ctx(ctx), (stage, reason, since), output=output, quiet=quiet,
           keep_going=keep_going, wait_lock=wait_lock,
           writeback=writeback_options(no_backup=no_backup, columns=columns,
                                       column_prefix=column_prefix,
                                       create_columns=create_columns,
                                       archive_field=archive_field) if writeback else None)


def _retry(settings: Settings, filters: tuple[str | None, str | None, str | None], *,
           output: str | None, quiet: bool, keep_going: bool, wait_lock: bool,
           writeback: WritebackOptions | None) -> None:
    """Retry each recorded source's matching failures in turn, under the cache lock."""
    from ..cache import ResultCache
    from ..lock import cache_lock
    from ..reports import failure_filter
    from ..retry import enabled_filter, retry_groups
    from ..sinks import open_sink

    with cache_lock(existing(settings.cache), wait=wait_lock, notify=say):
        with ResultCache(settings.cache) as c:
            flt = enabled_filter(settings, failure_filter(c, *filters))
            groups = retry_groups(c, flt)
        if not groups:
            if not quiet:
                say("nothing to retry: no failures match")
            return
        failed = False
        sink = open_sink(output)
        committed = False
        try:
            for group in groups:
                failed = _retry_group(settings, group.location, flt, sink, writeback,
                                      keep_going, quiet) or failed
            committed = True
        finally:
            sink.close(commit=committed)
    if failed:
        raise typer.Exit(EXIT_FAILURES)


def _retry_group(settings: Settings, location: str, flt: Any, sink: Any,
                 writeback: WritebackOptions | None, keep_going: bool, quiet: bool) -> bool:
    """Retry one source's failures; True when some still fail."""
    from ..progress import print_summary
    from ..retry import run_retry

    writer = None
    original = None
    if writeback is not None:
        if location == "-":
            say("note: stdin has no source to write back to; its results stay in the cache")
        else:
            from ..runner import open_writer

            original = SourceSpec(location).open()
            try:
                writer = open_writer(original, writeback, say)
            except BaseException:
                original.close()
                raise
    try:
        stats = asyncio.run(run_retry(settings, location, flt, sink=sink,
                                      subscribers=subscribers(settings.log_interval, quiet),
                                      keep_going=keep_going))
        if not quiet:
            print_summary(err, stats)
        if writer is not None and not stats.interrupted:
            writer.apply_cached(settings)
            if not quiet:
                say(writer.summary_line())
    finally:
        if writer is not None:
            writer.close()
        if original is not None:
            original.close()
    if stats.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    return bool(stats.failed or stats.partial)
