"""Operations commands: doctor, status, show, runs, retry, cache ..., config ....

Registered on the main app (``cli.py`` imports this module). Each command is a
thin wrapper: the work happens in doctor.py, reports.py, retry.py,
maintenance.py and config.py. Reports are data, so they go to stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .cli import (
    CacheOpt,
    ColumnPrefixOpt,
    ColumnsOpt,
    CreateColumnsOpt,
    IdColumnOpt,
    InputFormatOpt,
    NoBackupOpt,
    QueueNameOpt,
    QueueOpt,
    TableOpt,
    UrlColumnOpt,
    UrlFieldOpt,
    WhereOpt,
    _say,
    _subscribers,
    _writeback_options,
    app,
    err,
    fail,
    guarded,
    settings_from_ctx,
)
from .errors import EXIT_FAILURES, EXIT_INTERRUPTED, CacheError
from .lock import cache_lock
from .progress import print_summary
from .settings import Settings
from .sinks import open_sink

__all__ = ["cache_app", "config_app"]

# Piped reports (cron mail, files) get room for URLs; a terminal keeps its own width.
out = Console(highlight=False, soft_wrap=False,
              width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask; needed when stdin is "
                                      "not a terminal.")]
WaitLockOpt = Annotated[bool, typer.Option(
    "--wait-lock", help="When another run holds the cache, wait for it instead of exiting 75.")]
StageOpt = Annotated[str | None, typer.Option(
    "--stage", help="Only failures of these stages (fetch,extract,summarize,media).",
    show_default=False)]
ReasonOpt = Annotated[str | None, typer.Option(
    "--reason", help="Only failures with these reason codes (timeout,server_error,...).",
    show_default=False)]
SinceOpt = Annotated[str | None, typer.Option(
    "--since", help="Only failures since an age (24h, 7d) or a date (2026-11-01).",
    show_default=False)]


def _dump(doc: Any) -> None:
    typer.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))


def _confirm(question: str, yes: bool) -> None:
    """Ask on a terminal; elsewhere ``--yes`` is required (cron never hangs on a prompt)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise fail(f"{question.rstrip('?')}: refusing without --yes (stdin is not a terminal)")
    if not typer.confirm(question, default=False, err=True):
        raise fail("cancelled", EXIT_FAILURES)


def _cell(value: Any) -> Text:
    """A table cell as plain text (URLs and messages may hold [brackets])."""
    return Text("" if value is None else str(value))


# -------------------------------------------------------------------- doctor
@app.command()
def doctor(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Argument(
        help="Also check this bookmarks file or database URL.", show_default=False)] = None,
    deep: Annotated[bool, typer.Option(
        "--deep", help="Also send one tiny request to each service (LLM answer time).")] = False,
    as_json: JsonOpt = False,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0.1, help="Seconds each check may take.")] = 5.0,
    cache: CacheOpt = None,
    input_format: InputFormatOpt = None,
    url_field: UrlFieldOpt = None,
    table: TableOpt = None,
    id_column: IdColumnOpt = None,
    url_column: UrlColumnOpt = None,
    where: WhereOpt = None,
    queue: QueueOpt = None,
    queue_name: QueueNameOpt = "bookmark-enrich",
    summarizer: Annotated[str | None, typer.Option(
        "--summarizer", help="auto, llm or builtin.", show_default=False)] = None,
    lm_studio_api_url: Annotated[str | None, typer.Option(
        "--llm-url", help="OpenAI-compatible server.", show_default=False)] = None,
    lm_studio_model: Annotated[str | None, typer.Option(
        "--model", help="LLM model.", show_default=False)] = None,
    no_summary: Annotated[bool, typer.Option(
        "--no-summary", help="Check as for a run without summaries.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 1 on warnings too (weak credentials, exposed files).")] = False,
) -> None:
    """Check the cache, SOURCE and every configured service at once; exit 1 if one fails.

    Stages turned off are shown as skipped. Each check gets --timeout seconds.
    """

    def body() -> None:
        from .doctor import run_doctor

        settings = settings_from_ctx(ctx, enable_ai_summarization=False if no_summary else None)
        report = asyncio.run(run_doctor(
            settings, deep=deep, timeout=timeout, source=source, input_format=input_format,
            url_field=url_field, table=table, id_column=id_column, url_column=url_column,
            where=where, queue=queue, queue_name=queue_name))
        if as_json:
            _dump(report.as_dict())
        else:
            t = Table(title="bookmark-enrich doctor", title_justify="left",
                      header_style="bold")
            t.add_column("check", overflow="fold", max_width=32)
            t.add_column("status", no_wrap=True)
            t.add_column("detail", overflow="fold", ratio=1)
            t.add_column("latency", justify="right", no_wrap=True)
            style = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
            for c in report.checks:
                status = c.status if c.required or c.status != "fail" else "fail (optional)"
                t.add_row(Text(c.name), Text(status, style=style[c.status]), Text(c.detail),
                          "" if c.latency_ms is None else f"{c.latency_ms:.0f} ms")
            out.print(t)
        if not report.ok or (strict and report.warned):
            raise typer.Exit(EXIT_FAILURES)

    guarded(body)


# ---------------------------------------------------------------- monitoring
def _settings(ctx: typer.Context) -> Settings:
    return settings_from_ctx(ctx)


def _existing(cache: Path) -> Path:
    """Commands that change a cache never create one by accident."""
    if str(cache) != ":memory:" and not cache.exists():
        raise CacheError(f"{cache}: no cache here yet (run something first)")
    return cache


@contextmanager
def _reader(ctx: typer.Context) -> Iterator[Any]:
    from .maintenance import open_reader

    cache = open_reader(_settings(ctx).cache)
    try:
        yield cache
    finally:
        cache.close()


def _when(iso: str | None) -> str:
    """ISO time as ``2026-11-29 03:31`` for tables (JSON keeps the full form)."""
    return "" if not iso else iso[:16].replace("T", " ")


def _pct(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


@app.command()
def status(
    ctx: typer.Context,
    cache: CacheOpt = None,
    runs: Annotated[int, typer.Option("--runs", min=1, help="How many recent runs.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Recent runs, success rate per stage and the top failure reasons in the cache."""

    def body() -> None:
        from .reports import status_report

        with _reader(ctx) as c:
            doc = status_report(c, runs)
        if as_json:
            _dump(doc)
            return
        t = Table(title=f"runs ({doc['cache']})", title_justify="left", header_style="bold")
        for col in ("id", "started", "duration", "source", "status", "total", "ok", "cached",
                    "failed", "rate"):
            left = col in ("started", "source", "status")
            t.add_column(col, justify="left" if left else "right", no_wrap=col != "source",
                         overflow="fold", min_width=12 if col == "source" else None)
        for r in doc["runs"]:
            dur = "" if r["duration_s"] is None else f"{r['duration_s']:.1f}s"
            rate = "" if r["rate"] is None else f"{r['rate']:.1f}/s"
            t.add_row(str(r["id"]), _when(r["started"]), dur, _cell(r["source"]),
                      _cell(r["status"]), _cell(r["total"]), _cell(r["ok"]),
                      _cell(r["cached"]), _cell((r["failed"] or 0) + (r["partial"] or 0)),
                      rate)
        out.print(t)
        s = Table(title="stages (whole cache)", title_justify="left", header_style="bold")
        for col in ("stage", "ok", "failed", "skipped", "success"):
            s.add_column(col, justify="left" if col == "stage" else "right")
        for r in doc["stages"]:
            s.add_row(_cell(r["stage"]), str(r["ok"]), str(r["failed"]), str(r["skipped"]),
                      _pct(r["success_rate"]))
        out.print(s)
        f = Table(title="top failure reasons", title_justify="left", header_style="bold")
        for col in ("stage", "reason", "count"):
            f.add_column(col, justify="right" if col == "count" else "left")
        for r in doc["reasons"]:
            f.add_row(_cell(r["stage"]), _cell(r["reason"]), str(r["count"]))
        out.print(f)

    guarded(body)


@app.command()
def show(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The bookmark's URL (any form that normalizes "
                                       "to it).", show_default=False)],
    cache: CacheOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Everything the cache holds for one bookmark: each stage and the enrichment."""

    def body() -> None:
        from .reports import bookmark_detail

        with _reader(ctx) as c:
            doc = bookmark_detail(c, url)
        if doc is None:
            raise fail(f"{url}: not in the cache", EXIT_FAILURES)
        if as_json:
            _dump(doc)
            return
        b = doc["bookmark"]
        for label in ("url", "normalized", "key", "source", "position", "first_seen",
                      "last_seen"):
            if b.get(label) is not None:
                out.print(Text.assemble((label, "bold"), f": {b[label]}"), soft_wrap=True)
        t = Table(title="stages", title_justify="left", header_style="bold")
        for col in ("stage", "status", "reason", "error", "attempts", "ms", "finished", "run"):
            t.add_column(col, overflow="fold", no_wrap=col != "error",
                         min_width=12 if col == "error" else None)
        for s in doc["stages"]:
            t.add_row(_cell(s["stage"]), _cell(s["status"]), _cell(s["reason"]), _cell(s["error"]),
                      _cell(s["attempts"]), _cell(s["duration_ms"]), _when(s["finished"]),
                      _cell(s["run_id"]))
        out.print(t)
        out.print("[bold]enrichment[/]:")
        typer.echo(json.dumps(doc["enrichment"], ensure_ascii=False, indent=2, default=str))
        if b.get("record") is not None:
            out.print("[bold]record[/]:")
            typer.echo(json.dumps(b["record"], ensure_ascii=False, indent=2, default=str))

    guarded(body)


@app.command("runs")
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

    def body() -> None:
        from .reports import failed_bookmarks, failure_filter, last_runs

        cols: tuple[str, ...]
        with _reader(ctx) as c:
            if not failed:
                rows = last_runs(c, limit)
                cols = ("id", "started", "source", "status", "total", "ok", "partial", "failed",
                        "cached")
            else:
                flt = failure_filter(c, stage, reason, since)
                rows = list(failed_bookmarks(c, flt, limit))
                cols = ("url", "stage", "reason", "error", "attempts", "finished")
        if as_json:
            for r in rows:
                typer.echo(json.dumps(r, ensure_ascii=False, default=str))
            return
        t = Table(header_style="bold")
        wide = ("url", "error", "source")
        for col in cols:
            t.add_column(col, overflow="fold", no_wrap=col not in wide,
                         min_width=12 if col in wide else None)
        for r in rows:
            t.add_row(*(_when(r[col]) if col in ("started", "finished") else _cell(r.get(col))
                        for col in cols))
        out.print(t)
        if failed and not rows:
            _say("no failures match")

    guarded(body)


# -------------------------------------------------------------------- retry
@app.command()
def retry(
    ctx: typer.Context,
    stage: StageOpt = None,
    reason: ReasonOpt = None,
    since: SinceOpt = None,
    cache: CacheOpt = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Write the retried records to FILE instead of stdout.",
        show_default=False)] = None,
    writeback: Annotated[bool, typer.Option(
        "--writeback", help="Then write the cache's results back into each recorded "
        "source.")] = False,
    no_backup: NoBackupOpt = False,
    columns: ColumnsOpt = None,
    column_prefix: ColumnPrefixOpt = "",
    create_columns: CreateColumnsOpt = False,
    keep_going: Annotated[bool, typer.Option(
        "--keep-going", help="Run even when a service fails its check.")] = False,
    wait_lock: WaitLockOpt = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress and no summary on stderr.")] = False,
) -> None:
    """Re-run just the failures the cache holds (all, or those matching the filters).

    Each bookmark's original record is read back from the cache; only the
    matching failed stages (and what depends on them) run again. Exit 1 when
    some still fail.
    """

    def body() -> None:
        from .cache import ResultCache
        from .reports import failure_filter
        from .retry import enabled_filter, retry_groups

        settings = _settings(ctx)
        with cache_lock(_existing(settings.cache), wait=wait_lock, notify=_say):
            with ResultCache(settings.cache) as c:
                flt = enabled_filter(settings, failure_filter(c, stage, reason, since))
                groups = retry_groups(c, flt)
            if not groups:
                if not quiet:
                    _say("nothing to retry: no failures match")
                return
            failed = False
            sink = open_sink(output)
            committed = False
            try:
                for group in groups:
                    failed = _retry_group(settings, group.location, flt, sink, writeback,
                                          (no_backup, columns, column_prefix, create_columns),
                                          keep_going, quiet) or failed
                committed = True
            finally:
                sink.close(commit=committed)
        if failed:
            raise typer.Exit(EXIT_FAILURES)

    guarded(body)


def _retry_group(settings: Settings, location: str, flt: Any, sink: Any, writeback: bool,
                 wb: tuple[bool, str | None, str, bool], keep_going: bool, quiet: bool) -> bool:
    """Retry one source's failures; True when some still fail."""
    from .retry import run_retry

    writer = None
    original = None
    if writeback:
        if location == "-":
            _say("note: stdin has no source to write back to; its results stay in the cache")
        else:
            from .runner import open_writer
            from .sources import open_source

            original = open_source(location)
            try:
                writer = open_writer(original, _writeback_options(False, *wb), _say)
            except BaseException:
                original.close()
                raise
    try:
        stats = asyncio.run(run_retry(settings, location, flt, sink=sink,
                                      subscribers=_subscribers(settings, quiet),
                                      keep_going=keep_going))
        if not quiet:
            print_summary(err, stats)
        if writer is not None and not stats.interrupted:
            writer.apply_cached(settings)
            if not quiet:
                _say(writer.summary_line())
    finally:
        if writer is not None:
            writer.close()
        if original is not None:
            original.close()
    if stats.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    return bool(stats.failed or stats.partial)


# -------------------------------------------------------------------- cache
cache_app = typer.Typer(help="Back up, export, vacuum and prune the cache.",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("path")
def cache_path(ctx: typer.Context, cache: CacheOpt = None) -> None:
    """Print where the cache file is."""
    guarded(lambda: typer.echo(str(_settings(ctx).cache)))


@cache_app.command("backup")
def cache_backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write the copy (a file or a folder).",
                                         show_default=False)],
    cache: CacheOpt = None,
    yes: YesOpt = False,
) -> None:
    """Copy the cache with SQLite's online backup (safe while a run writes), then verify it."""

    def body() -> None:
        from .maintenance import backup

        source = _settings(ctx).cache
        target = path / source.name if path.is_dir() else path
        if target.exists():
            _confirm(f"overwrite {target}?", yes)
        done = backup(source, target)
        _say(f"backup: {done['path']} ({done['bytes']} bytes, integrity ok)")

    guarded(body)


@cache_app.command("vacuum")
def cache_vacuum(ctx: typer.Context, cache: CacheOpt = None) -> None:
    """Rebuild the cache file to give back the space of deleted rows."""

    def body() -> None:
        from .maintenance import vacuum

        settings = _settings(ctx)
        with cache_lock(_existing(settings.cache)):
            before, after = vacuum(settings.cache)
        _say(f"vacuum: {before} → {after} bytes")

    guarded(body)


@cache_app.command("export")
def cache_export(
    ctx: typer.Context,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Write to FILE (atomically) instead of stdout.",
        show_default=False)] = None,
    include_text: Annotated[bool, typer.Option(
        "--include-text", help="Include the extracted text.")] = False,
    cache: CacheOpt = None,
) -> None:
    """Every cached bookmark as a JSON Lines output record (the shape `run` prints)."""

    def body() -> None:
        from .maintenance import export_records

        settings = _settings(ctx)
        sink = open_sink(output, private=True)  # it holds the whole cache
        committed = False
        count = 0
        try:
            with _reader(ctx) as c:
                for record in export_records(c, settings, include_text):
                    sink(record)
                    count += 1
            committed = True
        finally:
            sink.close(commit=committed)
        if output:
            _say(f"exported {count} records to {output}")

    guarded(body)


@cache_app.command("prune")
def cache_prune(
    ctx: typer.Context,
    older_than: Annotated[str | None, typer.Option(
        "--older-than", help="Delete results not refreshed for this long (90d, 12h).",
        show_default=False)] = None,
    failed: Annotated[bool, typer.Option(
        "--failed", help="Delete failed results (the next run redoes them).")] = False,
    stage: StageOpt = None,
    reason: ReasonOpt = None,
    cache: CacheOpt = None,
    yes: YesOpt = False,
) -> None:
    """Delete old or failed results from the cache (asks first; --yes when not a terminal)."""

    def body() -> None:
        from .maintenance import count_matching, prune_failed, prune_older
        from .reports import failure_filter, parse_age

        if (older_than is None) == (not failed):
            raise fail("name what to prune: --older-than AGE or --failed (one of them)")
        if (stage or reason) and not failed:
            raise fail("--stage and --reason go with --failed")
        settings = _settings(ctx)
        from .cache import ResultCache

        with cache_lock(_existing(settings.cache)), ResultCache(settings.cache) as c:
            if failed:
                flt = failure_filter(c, stage, reason)
                n = count_matching(c, flt=flt)
                what = "failed results"
            else:
                assert older_than is not None
                seconds = parse_age(older_than)
                n = count_matching(c, seconds=seconds)
                what = f"results older than {older_than}"
            if n == 0:
                _say(f"prune: no {what}")
                return
            _confirm(f"delete {n} {what} from {settings.cache}?", yes)
            done = prune_failed(c, flt) if failed else prune_older(c, seconds)
        _say("prune: deleted " + ", ".join(f"{v} {k}" for k, v in done.items()))

    guarded(body)


# ------------------------------------------------------------------- config
config_app = typer.Typer(help="Show the settings in effect, or write a .env template.",
                         no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    cache: CacheOpt = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-c", help="As `run --concurrency`.", show_default=False)] = None,
    lm_studio_api_url: Annotated[str | None, typer.Option(
        "--llm-url", help="As `run --llm-url`.", show_default=False)] = None,
    lm_studio_model: Annotated[str | None, typer.Option(
        "--model", help="As `run --model`.", show_default=False)] = None,
    summarizer: Annotated[str | None, typer.Option(
        "--summarizer", help="As `run --summarizer`.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every setting in effect and where it comes from (default, .env, environment, flag).

    Secrets are masked.
    """

    def body() -> None:
        from .config import settings_table

        settings = _settings(ctx)
        flags = {name for name, value in ctx.params.items()
                 if name in Settings.model_fields and value is not None}
        rows = settings_table(settings, flags)
        if as_json:
            _dump({r["setting"]: {k: v for k, v in r.items() if k != "setting"} for r in rows})
            return
        t = Table(header_style="bold")
        for col in ("setting", "variable", "value", "from"):
            t.add_column(col, overflow="fold")
        for r in rows:
            value = r["value"]
            shown = json.dumps(value) if isinstance(value, list | dict | bool) or value is None \
                else str(value)
            t.add_row(r["setting"], r["env"], _cell(shown), r["origin"])
        out.print(t)

    guarded(body)


@config_app.command("init")
def config_init(
    path: Annotated[Path, typer.Argument(help="File to write.")] = Path(".env"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented .env template with every setting at its default."""

    def body() -> None:
        from .config import write_template

        write_template(path, force=force)
        _say(f"wrote {path}: uncomment and edit the settings you need")

    guarded(body)
