"""Enriching: `run`, `writeback` (finish a run's writeback from the cache) and `worker`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import (
    EXIT_FAILURES,
    BookmarkEnrichError,
    InputError,
    UsageError,
    exit_for_signal,
)
from .console import err, say, subscribers
from .context import SourceSpec, given, settings_from_ctx, writeback_options
from .exits import exits
from .group import CommandGroup
from .options import (
    QUEUE,
    WRITEBACK,
    AllowFileRootOpt,
    AllowHostOpt,
    AllowPrivateOpt,
    ArchiveFieldOpt,
    ArchiveOpt,
    ArchiveUrlOpt,
    AudioOnlyOpt,
    CacheOpt,
    ColumnPrefixOpt,
    ColumnsOpt,
    ConcurrencyOpt,
    ContextTokensOpt,
    CreateBucketOpt,
    CreateColumnsOpt,
    DocumentTimeoutOpt,
    DryRunOpt,
    EmbeddingModelOpt,
    EmbeddingUrlOpt,
    FetchDeadlineOpt,
    ForceOpt,
    FormatOpt,
    GraceOpt,
    HostFailuresOpt,
    IdColumnOpt,
    IncludeTextOpt,
    InputEncodingOpt,
    InputFormatOpt,
    KeepGoingOpt,
    LanguageOpt,
    LlmConcurrencyOpt,
    LlmTimeoutOpt,
    LlmUrlOpt,
    LogFormatOpt,
    LogIntervalOpt,
    LowercaseTagsOpt,
    MaxDocumentOpt,
    MaxDocumentPagesOpt,
    MaxPageOpt,
    MaxPickerItemsOpt,
    MaxTagsOpt,
    MediaBackendOpt,
    MediaConcurrencyOpt,
    MediaDirOpt,
    MediaHostsOpt,
    MediaOpt,
    MergeTagsOpt,
    ModelOpt,
    NoBackupOpt,
    NoSummaryOpt,
    OutputOpt,
    PerHostOpt,
    QueueNameOpt,
    QueueOpt,
    QuietOpt,
    RetriesOpt,
    RetryFailedOpt,
    SourceArg,
    StrictOpt,
    SummarizerOpt,
    TableOpt,
    TimeoutOpt,
    UrlColumnOpt,
    UrlFieldOpt,
    UserAgentOpt,
    VideoQualityOpt,
    WaitLockOpt,
    WhereOpt,
    option_help,
    prompt_options,
)
from .report import MetricsFileOpt, ReportFileOpt, write_after_run

if TYPE_CHECKING:
    from pathlib import Path

    from ..settings import Settings
    from ..sinks import OutputFormat
    from ..writeback import WritebackOptions

__all__ = ["app"]

app = CommandGroup()
PANEL = "Enrich"

WritebackOpt = Annotated[bool, typer.Option(
    "--writeback", rich_help_panel=WRITEBACK,
    help="Write the results back into SOURCE (table or file).")]
BatchSizeOpt = Annotated[int, typer.Option(
    "--batch-size", min=1, max=1000, metavar="<n>", rich_help_panel=QUEUE,
    help="With --queue: bookmarks per queue message.")]
NoWorkerTimeoutOpt = Annotated[float | None, typer.Option(
    "--no-worker-timeout", min=0, metavar="<seconds>", rich_help_panel=QUEUE,
    show_default=False, help=option_help(
        "With --queue: give up (exit 3) when no worker is there for this many seconds.",
        default="wait"))]


@app.command(rich_help_panel=PANEL)
@exits
@prompt_options
def run(
    ctx: typer.Context,
    source: SourceArg = None,
    input_format: InputFormatOpt = None,
    input_encoding: InputEncodingOpt = None,
    url_field: UrlFieldOpt = None,
    strict: StrictOpt = False,
    output: OutputOpt = None,
    output_format: FormatOpt = "jsonl",
    include_text: IncludeTextOpt = False,
    quiet: QuietOpt = False,
    report_file: ReportFileOpt = None,
    metrics_file: MetricsFileOpt = None,
    log_interval: LogIntervalOpt = None,
    log_format: LogFormatOpt = None,
    grace: GraceOpt = None,
    cache: CacheOpt = None,
    force: ForceOpt = False,
    retry_failed: RetryFailedOpt = False,
    wait_lock: WaitLockOpt = False,
    keep_going: KeepGoingOpt = False,
    concurrency: ConcurrencyOpt = None,
    per_host: PerHostOpt = None,
    read_timeout: TimeoutOpt = None,
    retries: RetriesOpt = None,
    fetch_deadline: FetchDeadlineOpt = None,
    host_failures: HostFailuresOpt = None,
    max_page_mb: MaxPageOpt = None,
    allow_private_network: AllowPrivateOpt = False,
    allow_hosts: AllowHostOpt = None,
    allow_file_roots: AllowFileRootOpt = None,
    max_document_mb: MaxDocumentOpt = None,
    document_timeout: DocumentTimeoutOpt = None,
    max_document_pages: MaxDocumentPagesOpt = None,
    user_agent: UserAgentOpt = None,
    no_summary: NoSummaryOpt = False,
    summarizer: SummarizerOpt = None,
    lm_studio_api_url: LlmUrlOpt = None,
    lm_studio_model: ModelOpt = None,
    llm_timeout: LlmTimeoutOpt = None,
    llm_concurrency: LlmConcurrencyOpt = None,
    context_tokens: ContextTokensOpt = None,
    language: LanguageOpt = None,
    max_tags: MaxTagsOpt = None,
    merge_tags: MergeTagsOpt = False,
    lowercase_tags: LowercaseTagsOpt = True,
    embedding_url: EmbeddingUrlOpt = None,
    embedding_model: EmbeddingModelOpt = None,
    enable_media_download: MediaOpt = True,
    media_backend: MediaBackendOpt = None,
    audio_only: AudioOnlyOpt = False,
    video_quality: VideoQualityOpt = None,
    max_picker_items: MaxPickerItemsOpt = None,
    media_hosts: MediaHostsOpt = None,
    media_concurrency: MediaConcurrencyOpt = None,
    media_dir: MediaDirOpt = None,
    create_bucket: CreateBucketOpt = False,
    archive: ArchiveOpt = True,
    archive_url: ArchiveUrlOpt = None,
    writeback: WritebackOpt = False,
    dry_run: DryRunOpt = False,
    no_backup: NoBackupOpt = False,
    columns: ColumnsOpt = None,
    column_prefix: ColumnPrefixOpt = "",
    create_columns: CreateColumnsOpt = False,
    archive_field: ArchiveFieldOpt = None,
    table: TableOpt = None,
    id_column: IdColumnOpt = None,
    url_column: UrlColumnOpt = None,
    where: WhereOpt = None,
    queue: QueueOpt = None,
    queue_name: QueueNameOpt = "bookmark-enrich",
    batch_size: BatchSizeOpt = 8,
    no_worker_timeout: NoWorkerTimeoutOpt = None,
) -> None:
    """Enrich every bookmark of SOURCE and print one JSON record per bookmark.

    Settings flags win over the environment and .env (see `config show`)."""
    _run(settings_from_ctx(ctx),
         SourceSpec(source, input_format, url_field, table, id_column, url_column, where,
                    input_encoding),
         output=output, output_format=output_format, quiet=quiet, wait_lock=wait_lock,
         keep_going=keep_going, reports=(report_file, metrics_file),
         writeback=writeback_options(dry_run=dry_run, no_backup=no_backup, columns=columns,
                                     column_prefix=column_prefix,
                                     create_columns=create_columns,
                                     archive_field=archive_field)
         if writeback or dry_run else None,
         queue=None if queue is None else {
             "url": queue, "name": queue_name, "batch_size": batch_size,
             "no_worker_timeout": no_worker_timeout, "quiet": quiet,
             "max_inflight": concurrency if given(ctx, "concurrency") else None})


def _run(settings: Settings, spec: SourceSpec, *, output: str | None,
         output_format: OutputFormat, quiet: bool, wait_lock: bool, keep_going: bool,
         writeback: WritebackOptions | None, queue: dict[str, Any] | None,
         reports: tuple[Path | None, Path | None] = (None, None)) -> None:
    """Open the source (and its writer), enrich into the sink, summarize, exit."""
    from ..lock import cache_lock
    from ..sinks import open_sink

    # Two runs on one cache never overlap (cron): the second exits 75 or waits.
    with cache_lock(settings.cache, wait=wait_lock, notify=say):
        src = spec.open()
        writer = None
        if writeback is not None:
            from ..runner import open_writer

            try:
                writer = open_writer(src, writeback, say)
            except BaseException:
                src.close()
                raise
        sink = open_sink(output, output_format)
        committed = False
        late: BookmarkEnrichError | None = None
        try:
            stats = asyncio.run(_enrich(
                src, settings, sink=sink if writer is None else writer.wrap(sink),
                subscribers=subscribers(settings.log_interval, quiet, settings.log_format),
                url_field=spec.url_field, keep_going=keep_going, queue=queue))
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
    write_after_run(settings.cache, stats.run_id, report=reports[0], metrics=reports[1],
                    quiet=quiet)
    _finish(stats, src.display, quiet=quiet, late=late,
            summary=None if writer is None else writer.summary_line)


def _finish(stats: Any, display: str, *, quiet: bool, late: BookmarkEnrichError | None,
            summary: Any) -> None:
    """Summary and exit status: skipped input records end a run with failures (exit 1);
    a source whose every record was rejected is an error (exit 2); no records, exit 0."""
    from ..progress import print_summary

    rejected_all = stats.total == 0 and stats.issues and not stats.interrupted
    failures = stats.failed or stats.partial or stats.issues
    if stats.total == 0 and not stats.issues and not stats.interrupted:
        say("nothing to do")
    elif not quiet or stats.interrupted or (failures and not rejected_all):
        print_summary(err, stats)
        if summary is not None and late is None:
            say(summary())
    if late is not None:
        raise late
    if stats.interrupted:
        raise typer.Exit(exit_for_signal(stats.stop_signal))
    if rejected_all:
        kinds = ", ".join(f"{n} {kind}" for kind, n in stats.issue_kinds.most_common(3))
        raise InputError(f"no bookmark found in {display} "
                         f"({stats.issues} lines skipped: {kinds})")
    if failures:
        raise typer.Exit(EXIT_FAILURES)


async def _enrich(src: Any, settings: Settings, *, queue: dict[str, Any] | None,
                  **kw: Any) -> Any:
    if queue is None:
        from ..runner import enrich

        return await enrich(src, settings, **kw)
    from ..runner import enrich_queued  # the queue needs the [queue] extra

    return await enrich_queued(src, settings, notify=say, **queue, **kw)


@app.command("writeback", rich_help_panel=PANEL)
@exits
def writeback_cmd(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(
        help="Bookmarks file or database URL that was enriched before.", show_default=False)],
    input_format: InputFormatOpt = None,
    input_encoding: InputEncodingOpt = None,
    url_field: UrlFieldOpt = None,
    cache: CacheOpt = None,
    dry_run: DryRunOpt = False,
    no_backup: NoBackupOpt = False,
    columns: ColumnsOpt = None,
    column_prefix: ColumnPrefixOpt = "",
    create_columns: CreateColumnsOpt = False,
    archive_field: ArchiveFieldOpt = None,
    table: TableOpt = None,
    id_column: IdColumnOpt = None,
    url_column: UrlColumnOpt = None,
    where: WhereOpt = None,
    wait_lock: WaitLockOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line.")] = False,
) -> None:
    """Write what the cache holds for SOURCE back into it, without enriching again.

    Finishes a run that enriched but could not write (the file changed, the
    database was locked). With --dry-run the changes are printed on stdout.
    """
    if source == "-":
        raise UsageError("stdin has no source to write back to; name the file or database")
    _writeback(settings_from_ctx(ctx),
               SourceSpec(source, input_format, url_field, table, id_column, url_column, where,
                          input_encoding),
               writeback_options(dry_run=dry_run, no_backup=no_backup, columns=columns,
                                 column_prefix=column_prefix, create_columns=create_columns,
                                 archive_field=archive_field),
               quiet=quiet, wait_lock=wait_lock)


def _writeback(settings: Settings, spec: SourceSpec, options: WritebackOptions, *,
               quiet: bool, wait_lock: bool) -> None:
    from ..lock import cache_lock

    # One writer at a time: a run writing back the same source holds this lock too.
    with cache_lock(settings.cache, wait=wait_lock, notify=say):
        writer = _apply_cached(settings, spec, options)
    if not quiet:
        say(writer.summary_line())


def _apply_cached(settings: Settings, spec: SourceSpec, options: WritebackOptions) -> Any:
    from ..runner import open_writer

    src = spec.open()
    try:
        writer = open_writer(src, options, typer.echo if options.dry_run else say)
        assert writer is not None
        try:
            writer.apply_cached(settings)
        finally:
            writer.close()
    finally:
        src.close()
    return writer


@app.command(rich_help_panel=PANEL)
@exits
def worker(
    ctx: typer.Context,
    queue: Annotated[str, typer.Option(
        "--queue", envvar="BOOKMARK_ENRICH_QUEUE", show_envvar=False, metavar="<url>",
        rich_help_panel=QUEUE, show_default=False, help=option_help(
            "Redis URL to take work from (redis://host:6379/0).",
            env="BOOKMARK_ENRICH_QUEUE"))],
    queue_name: QueueNameOpt = "bookmark-enrich",
    concurrency: ConcurrencyOpt = None,
    per_host: PerHostOpt = None,
    grace: GraceOpt = None,
    idle_timeout: Annotated[float, typer.Option(
        "--idle-timeout", min=0.5, metavar="<seconds>", rich_help_panel=QUEUE,
        help="Seconds after which a message held by a dead worker goes to another one.")
    ] = 30.0,
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", min=0, metavar="<port>", rich_help_panel=QUEUE,
        show_default=False, help="Serve this worker's Prometheus metrics over HTTP on this "
        "port (/metrics; 0: any free port, shown at start).")] = None,
    metrics_host: Annotated[str, typer.Option(
        "--metrics-host", metavar="<address>", rich_help_panel=QUEUE,
        help="Address the --metrics-port endpoint listens on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
) -> None:
    """Take batches of bookmarks from a queue and enrich them with this machine's settings.

    Services (LLM, Cobalt, S3) come from this worker's environment and .env; results
    go back to the coordinator (`run SOURCE --queue URL`), which writes the cache.
    SIGTERM or Ctrl-C: finish what runs for up to --grace seconds and hand back the
    rest; twice: hand back now.
    """
    from ..queue import run_worker  # needs the [queue] extra

    asyncio.run(run_worker(settings_from_ctx(ctx), queue, name=queue_name,
                           idle_timeout=idle_timeout, notify=say,
                           metrics_port=metrics_port, metrics_host=metrics_host))
