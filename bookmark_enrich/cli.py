"""The command line: parse options, call the library, turn domain errors into exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from . import __version__
from .errors import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    BookmarkEnrichError,
)
from .lock import cache_lock
from .models import OutputRecord
from .progress import LogProgress, RichProgress, issue_printer, print_summary
from .runner import enrich
from .settings import Settings, load_settings
from .sinks import OutputFormat, open_sink
from .sources import open_source

__all__ = ["app", "main"]

app = typer.Typer(
    name="bookmark-enrich",
    help="Enrich bookmarks in batches: fetch pages, extract text and metadata, "
    "summarize, archive media, write results back.",
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

err = Console(stderr=True, highlight=False)
T = TypeVar("T")


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def guarded(call: Callable[[], T]) -> T:
    """Run a command body: domain errors become one line and an exit code, never a traceback."""
    try:
        return call()
    except BookmarkEnrichError as exc:
        raise fail(str(exc), exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as Unix tools do.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the final flush
        finally:
            raise typer.Exit(141) from None
    except Exception as exc:
        # A bug, not a user error: one line by default, the traceback on request.
        if os.environ.get("BOOKMARK_ENRICH_DEBUG"):
            raise
        raise fail(f"internal error: {type(exc).__name__}: {exc} "
                   "(set BOOKMARK_ENRICH_DEBUG=1 for the traceback)", 1) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bookmark-enrich {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
) -> None:
    """bookmark-enrich."""


# ---------------------------------------------------------------------- options
QueueOpt = Annotated[
    str | None,
    typer.Option("--queue", envvar="BOOKMARK_ENRICH_QUEUE", show_envvar=False,
                 help="Redis URL of a work queue (redis://host:6379/0): workers do the "
                 "enriching (see `worker`) \\[env: BOOKMARK_ENRICH_QUEUE].", show_default=False),
]
QueueNameOpt = Annotated[
    str,
    typer.Option("--queue-name", envvar="BOOKMARK_ENRICH_QUEUE_NAME", show_envvar=False,
                 help="Key prefix of the queue in Redis (one per fleet) "
                 "\\[env: BOOKMARK_ENRICH_QUEUE_NAME]."),
]
SourceArg = Annotated[
    str | None,
    typer.Argument(help="Bookmarks file, database URL, or - for stdin (default when piped).",
                   show_default=False),
]
CacheOpt = Annotated[
    Path | None,
    typer.Option("--cache", help="Cache file \\[env: BOOKMARK_ENRICH_CACHE].", show_default=False),
]
InputFormatOpt = Annotated[
    str | None,
    typer.Option("--input-format", "-f", help="Force the input format (see `formats`).",
                 show_default=False),
]
UrlFieldOpt = Annotated[
    str | None,
    typer.Option("--url-field", help="Record field or CSV column holding the URL.",
                 show_default=False),
]
# Database sources and writeback (also accepted as ?table=...&id_column=... in the URL).
TableOpt = Annotated[str | None, typer.Option(
    "--table", help="Database table to read (and write back to).", show_default=False)]
IdColumnOpt = Annotated[str | None, typer.Option(
    "--id-column", help="Unique key column (default: the primary key).", show_default=False)]
UrlColumnOpt = Annotated[str | None, typer.Option(
    "--url-column", help="Column holding the URL (default: url/href/link/uri).",
    show_default=False)]
WhereOpt = Annotated[str | None, typer.Option(
    "--where", help="SQL filter on the table's rows (read-only).", show_default=False)]
DryRunOpt = Annotated[bool, typer.Option(
    "--dry-run", help="Print what writeback would change per record; write nothing.")]
NoBackupOpt = Annotated[bool, typer.Option(
    "--no-backup", help="Do not keep FILE.bak when rewriting a file.")]
ColumnsOpt = Annotated[str | None, typer.Option(
    "--columns", help="Writeback targets: summary,keywords,tags,media,metadata,enriched_at "
    "(field:column renames).", show_default=False)]
ColumnPrefixOpt = Annotated[str, typer.Option(
    "--column-prefix", help="Prefix for the writeback column names.")]
CreateColumnsOpt = Annotated[bool, typer.Option(
    "--create-columns", help="Add missing writeback columns to the table.")]


def _db_options(**given: str | None) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None}


def _writeback_options(dry_run: bool, no_backup: bool, columns: str | None,
                       column_prefix: str, create_columns: bool) -> Any:
    from .writeback import WritebackOptions

    return WritebackOptions(
        dry_run=dry_run, backup=not no_backup, column_prefix=column_prefix,
        columns=[c for c in columns.split(",") if c.strip()] if columns else None,
        create_columns=create_columns)


def _say(message: str) -> None:
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def _source_spec(source: str | None) -> str:
    if source is not None:
        return source
    if not sys.stdin.isatty():
        return "-"
    raise BookmarkEnrichError.__new__(_NoSource)


class _NoSource(BookmarkEnrichError):
    exit_code = EXIT_USAGE

    def __str__(self) -> str:
        return "no SOURCE given and stdin is a terminal; try `bookmark-enrich run bookmarks.html`"


def settings_from_ctx(ctx: typer.Context, **extra: Any) -> Settings:
    """Settings where every option the user gave, named like a Settings field, wins.

    A command adds a setting flag by naming its parameter after the field; flags
    left at their default fall through to the environment, .env and defaults.
    """
    overrides: dict[str, Any] = {}
    for name, value in ctx.params.items():
        origin = ctx.get_parameter_source(name)
        if name in Settings.model_fields and origin is not None and \
                origin.name not in ("DEFAULT", "DEFAULT_MAP"):
            overrides[name] = value
    overrides.update({k: v for k, v in extra.items() if v is not None})
    return load_settings(**overrides)


def _subscribers(settings: Settings, quiet: bool) -> list[Any]:
    subs: list[Any] = [issue_printer(err)]
    if not quiet:
        subs.append(RichProgress(err) if err.is_terminal else LogProgress(
            err, settings.log_interval))
    return subs


@app.command()
def run(
    ctx: typer.Context,
    source: SourceArg = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Write records to FILE (atomically) instead of stdout.",
                     show_default=False),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="Output format: jsonl, json or csv.")
    ] = "jsonl",
    input_format: InputFormatOpt = None,
    url_field: UrlFieldOpt = None,
    cache: CacheOpt = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", help="Bookmarks in flight at once \\[default: 16].",
                     show_default=False),
    ] = None,
    per_host: Annotated[
        int | None,
        typer.Option("--per-host", help="Requests in flight per host \\[default: 4].",
                     show_default=False),
    ] = None,
    read_timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Read timeout per request, seconds \\[default: 30].",
                     show_default=False),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option("--retries", help="Retries on timeouts, 5xx and 429 \\[default: 3].",
                     show_default=False),
    ] = None,
    max_page_mb: Annotated[
        float | None,
        typer.Option("--max-page-mb", help="Abort pages larger than this \\[default: 10].",
                     show_default=False),
    ] = None,
    user_agent: Annotated[
        str | None, typer.Option("--user-agent", help="User-Agent header.", show_default=False)
    ] = None,
    include_text: Annotated[
        bool, typer.Option("--include-text", help="Put the extracted text in the output.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Ignore the cache; redo every stage.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Redo stages that failed before.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Stop at the first malformed record (exit 2).")
    ] = False,
    queue: QueueOpt = None,
    queue_name: QueueNameOpt = "bookmark-enrich",
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=1000,
                          help="With --queue: bookmarks per queue message.")
    ] = 8,
    no_worker_timeout: Annotated[
        float | None,
        typer.Option("--no-worker-timeout", min=0,
                     help="With --queue: give up (exit 3) when no worker is there for this "
                     "many seconds \\[default: wait].", show_default=False),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress and no summary on stderr.")
    ] = False,
    wait_lock: Annotated[bool, typer.Option(
        "--wait-lock", help="When another run holds the cache, wait instead of exiting 75.")
    ] = False,
    keep_going: Annotated[
        bool, typer.Option("--keep-going",
                           help="Run even when a service fails its check; record the failures.")
    ] = False,
    no_summary: Annotated[
        bool, typer.Option("--no-summary", help="Skip summaries (ENABLE_AI_SUMMARIZATION=false).")
    ] = False,
    summarizer: Annotated[
        str | None,
        typer.Option("--summarizer", help="auto, llm or builtin \\[default: auto].",
                     show_default=False),
    ] = None,
    lm_studio_api_url: Annotated[
        str | None,
        typer.Option("--llm-url", help="OpenAI-compatible server \\[env: LM_STUDIO_API_URL].",
                     show_default=False),
    ] = None,
    lm_studio_model: Annotated[
        str | None,
        typer.Option("--model", help="LLM model \\[env: LM_STUDIO_MODEL; default: the loaded one].",
                     show_default=False),
    ] = None,
    llm_timeout: Annotated[
        float | None,
        typer.Option("--llm-timeout", help="Seconds per LLM request \\[default: 120].",
                     show_default=False),
    ] = None,
    llm_concurrency: Annotated[
        int | None,
        typer.Option("--llm-concurrency", help="LLM requests in flight \\[default: 2].",
                     show_default=False),
    ] = None,
    context_tokens: Annotated[
        int | None,
        typer.Option("--context-tokens", help="Model context length \\[default: as reported].",
                     show_default=False),
    ] = None,
    max_tags: Annotated[
        int | None,
        typer.Option("--max-tags", help="Suggested tags per bookmark \\[default: 5].",
                     show_default=False),
    ] = None,
    language: Annotated[
        str | None,
        typer.Option("--language", help="Write summaries in this language (en) "
                     "\\[default: the page's].", show_default=False),
    ] = None,
    merge_tags: Annotated[
        bool, typer.Option("--merge-tags",
                           help="Put the record's own tags first in enrichment.tags.")
    ] = False,
    lowercase_tags: Annotated[
        bool, typer.Option("--lowercase-tags/--keep-tag-case", help="Lower-case suggested tags.")
    ] = True,
    enable_media_download: Annotated[bool, typer.Option(
        "--media/--no-media", help="Download media (ENABLE_MEDIA_DOWNLOAD).")] = True,
    media_backend: Annotated[str | None, typer.Option(
        "--media-backend", help="cobalt, ytdlp or auto \\[default: auto].",
        show_default=False)] = None,
    audio_only: Annotated[bool, typer.Option(
        "--audio-only", help="Download only the audio track.")] = False,
    video_quality: Annotated[str | None, typer.Option(
        "--video-quality", help="Cobalt videoQuality (max, 1080, 720...) \\[default: 1080].",
        show_default=False)] = None,
    max_picker_items: Annotated[int | None, typer.Option(
        "--max-picker-items", help="Items kept from a multi-item post \\[default: 4].",
        show_default=False)] = None,
    media_hosts: Annotated[str | None, typer.Option(
        "--media-hosts", help="More hosts whose links are media (comma-separated).",
        show_default=False)] = None,
    media_concurrency: Annotated[int | None, typer.Option(
        "--media-concurrency", help="Media downloads at once \\[default: 2].",
        show_default=False)] = None,
    media_dir: Annotated[Path | None, typer.Option(
        "--media-dir", help="Where media goes without S3 \\[env: BOOKMARK_ENRICH_MEDIA_DIR].",
        show_default=False)] = None,
    create_bucket: Annotated[bool, typer.Option(
        "--create-bucket", help="Create the S3 bucket when it is missing.")] = False,
    writeback: Annotated[bool, typer.Option(
        "--writeback", help="Write the results back into SOURCE (table or file).")] = False,
    dry_run: DryRunOpt = False,
    no_backup: NoBackupOpt = False,
    table: TableOpt = None,
    id_column: IdColumnOpt = None,
    url_column: UrlColumnOpt = None,
    where: WhereOpt = None,
    columns: ColumnsOpt = None,
    column_prefix: ColumnPrefixOpt = "",
    create_columns: CreateColumnsOpt = False,
) -> None:
    """Enrich every bookmark of SOURCE and print one JSON record per bookmark."""

    def body() -> None:
        if output_format not in ("jsonl", "json", "csv"):
            raise fail(f"unknown output format {output_format!r} (jsonl, json, csv)")
        settings = settings_from_ctx(ctx, enable_ai_summarization=False if no_summary else None)
        src = open_source(_source_spec(source), input_format=input_format, url_field=url_field,
                          **_db_options(table=table, id_column=id_column,
                                        url_column=url_column, where=where))
        writer = None
        if writeback or dry_run:
            from .runner import open_writer

            try:
                writer = open_writer(src, _writeback_options(
                    dry_run, no_backup, columns, column_prefix, create_columns), _say)
            except BaseException:
                src.close()
                raise
        sink = open_sink(output, _as_format(output_format))
        committed = False
        late: BookmarkEnrichError | None = None
        try:
            stats = asyncio.run(_enrich(src, settings,
                                        sink=sink if writer is None else writer.wrap(sink),
                                        subscribers=_subscribers(settings, quiet),
                                        url_field=url_field, keep_going=keep_going,
                                        queue=_queue_options(ctx, queue, queue_name,
                                                             batch_size, no_worker_timeout,
                                                             quiet)))
            committed = True
            if writer is not None:
                try:
                    writer.finish_run(settings, interrupted=stats.interrupted)
                except BookmarkEnrichError as exc:  # reported after the summary
                    late = exc
        finally:
            sink.close(commit=committed)
            if writer is not None:
                writer.close()
            src.close()
        if not quiet:
            print_summary(err, stats)
            if writer is not None and late is None:
                _say(writer.summary_line())
        if late is not None:
            raise late
        if stats.interrupted:
            raise typer.Exit(EXIT_INTERRUPTED)
        if stats.failed or stats.partial or stats.fatal_issues:
            raise typer.Exit(1)

    def locked() -> None:
        # Two runs on one cache never overlap (cron): the second exits 75 or waits.
        with cache_lock(settings_from_ctx(ctx).cache, wait=wait_lock, notify=_say):
            body()

    guarded(locked)


async def _enrich(src: Any, settings: Settings, *, queue: dict[str, Any] | None,
                  **kw: Any) -> Any:
    if queue is None:
        return await enrich(src, settings, **kw)
    from .runner import enrich_queued  # needs the [queue] extra

    return await enrich_queued(src, settings, notify=lambda m: err.print(
        m, markup=False, highlight=False, soft_wrap=True), **queue, **kw)


def _queue_options(ctx: typer.Context, queue: str | None, queue_name: str, batch_size: int,
                   no_worker_timeout: float | None, quiet: bool) -> dict[str, Any] | None:
    if queue is None:
        return None
    given = ctx.get_parameter_source("concurrency")
    return {"url": queue, "name": queue_name, "batch_size": batch_size,
            "no_worker_timeout": no_worker_timeout, "quiet": quiet,
            "max_inflight": ctx.params.get("concurrency") if given is not None and
            given.name not in ("DEFAULT", "DEFAULT_MAP") else None}


def _as_format(name: str) -> OutputFormat:
    return "json" if name == "json" else "csv" if name == "csv" else "jsonl"


@app.command()
def schema() -> None:
    """Print the JSON Schema of the output record."""
    typer.echo(json.dumps(OutputRecord.model_json_schema(), indent=2))


@app.command()
def formats(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List the input formats: name, how each is detected, whether --writeback works."""
    from .sources import describe_formats, format_table

    typer.echo(json.dumps(describe_formats(), indent=2, ensure_ascii=False) if as_json
               else format_table())


@app.command()
def worker(
    ctx: typer.Context,
    queue: Annotated[
        str,
        typer.Option("--queue", envvar="BOOKMARK_ENRICH_QUEUE", show_envvar=False,
                     help="Redis URL to take work from (redis://host:6379/0) "
                     "\\[env: BOOKMARK_ENRICH_QUEUE].", show_default=False),
    ],
    queue_name: QueueNameOpt = "bookmark-enrich",
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", help="Bookmarks this worker runs at once "
                     "\\[default: 16].", show_default=False),
    ] = None,
    per_host: Annotated[
        int | None,
        typer.Option("--per-host", help="Requests in flight per host \\[default: 4].",
                     show_default=False),
    ] = None,
    idle_timeout: Annotated[
        float, typer.Option("--idle-timeout", min=0.5,
                            help="Seconds after which a message held by a dead worker goes "
                            "to another one.")
    ] = 30.0,
) -> None:
    """Take batches of bookmarks from a queue and enrich them with this machine's settings.

    Services (LLM, Cobalt, S3) come from this worker's environment and .env; results
    go back to the coordinator (`run SOURCE --queue URL`), which writes the cache.
    SIGTERM or Ctrl-C: finish what runs and hand back the rest; twice: hand back now.
    """

    def body() -> None:
        from .queue import run_worker  # needs the [queue] extra

        settings = settings_from_ctx(ctx)
        asyncio.run(run_worker(settings, queue, name=queue_name, idle_timeout=idle_timeout,
                               notify=lambda m: err.print(m, markup=False, highlight=False,
                                                          soft_wrap=True)))

    guarded(body)


@app.command("writeback")
def writeback_cmd(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(
        help="Bookmarks file or database URL that was enriched before.", show_default=False)],
    input_format: InputFormatOpt = None,
    url_field: UrlFieldOpt = None,
    cache: CacheOpt = None,
    table: TableOpt = None,
    id_column: IdColumnOpt = None,
    url_column: UrlColumnOpt = None,
    where: WhereOpt = None,
    dry_run: DryRunOpt = False,
    no_backup: NoBackupOpt = False,
    columns: ColumnsOpt = None,
    column_prefix: ColumnPrefixOpt = "",
    create_columns: CreateColumnsOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line.")] = False,
) -> None:
    """Write what the cache holds for SOURCE back into it, without enriching again.

    Finishes a run that enriched but could not write (the file changed, the
    database was locked). With --dry-run the changes are printed on stdout.
    """

    def body() -> None:
        from .runner import open_writer

        if source == "-":
            raise fail("stdin has no source to write back to; name the file or database")
        settings = settings_from_ctx(ctx)
        src = open_source(source, input_format=input_format, url_field=url_field,
                          **_db_options(table=table, id_column=id_column,
                                        url_column=url_column, where=where))
        try:
            writer = open_writer(src, _writeback_options(
                dry_run, no_backup, columns, column_prefix, create_columns),
                typer.echo if dry_run else _say)
            assert writer is not None
            try:
                writer.apply_cached(settings)
            finally:
                writer.close()
        finally:
            src.close()
        if not quiet:
            _say(writer.summary_line())

    guarded(body)


# Operations commands (doctor, status, show, runs, retry, cache, config) register on `app`.
from . import cli_ops as _cli_ops  # noqa: E402, F401


def main() -> None:
    """Console-script entry point."""
    app()
