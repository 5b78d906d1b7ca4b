"""`report`: a run, or the whole cache, as one HTML page; the options `run` shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from .console import say
from .context import settings_from_ctx
from .exits import exits
from .group import CommandGroup
from .options import CacheOpt

__all__ = ["MetricsFileOpt", "ReportFileOpt", "app", "write_after_run"]

app = CommandGroup()
PANEL = "Operations"
REPORTS = "Reports"

ReportFileOpt = Annotated[Path | None, typer.Option(
    "--report", metavar="<file>", rich_help_panel=REPORTS, show_default=False,
    help="At the end, write the run's HTML report to FILE (as `report` does).")]
MetricsFileOpt = Annotated[Path | None, typer.Option(
    "--metrics-file", metavar="<file>", rich_help_panel=REPORTS, show_default=False,
    help="At the end, write the run's metrics to FILE (atomically) in the Prometheus "
    "text format, for node_exporter's textfile collector (name it *.prom).")]


@app.command(rich_help_panel=PANEL)
@exits
def report(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option(
        "--output", "-o", metavar="<file>",
        help="The HTML file to write (replaced atomically).")] = Path(
            "bookmark-enrich-report.html"),
    run: Annotated[int | None, typer.Option(
        "--run", min=1, metavar="<id>", show_default=False,
        help="Report on this run (ids: `runs`).")] = None,
    last: Annotated[bool, typer.Option(
        "--last", help="Report on the latest run (the default).")] = False,
    whole: Annotated[bool, typer.Option(
        "--all", help="Report on the whole cache and its run history.")] = False,
    max_failures: Annotated[int, typer.Option(
        "--max-failures", min=0, metavar="<n>",
        help="List at most this many failed bookmarks (`runs --failed` lists all).")] = 1000,
    cache: CacheOpt = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No line on stderr saying what was written.")] = False,
) -> None:
    """Write one self-contained HTML page: what a run did, what failed, what is dead.

    It also shows which sites are dead and what the collection is about.

    The page works offline (no network request) and without JavaScript. An empty
    cache gives a page that says there is nothing yet.
    """
    if sum((run is not None, last, whole)) > 1:
        raise UsageError("choose one of --run ID, --last and --all")
    from ..report import write_report

    path = settings_from_ctx(ctx).cache
    if str(path) != ":memory:" and not path.exists():
        done = write_report(None, output, cache_path=str(path))
    else:
        from .cachefile import reader

        with reader(path) as c:
            done = write_report(c, output, run_id=run, whole=whole, cache_path=str(path),
                                failures_limit=max_failures)
    if not quiet:
        what = done["scope"] or "nothing yet"
        say(f"report: {done['report']} ({what}, {done['bytes'] / 1024:,.0f} KiB)")


def write_after_run(cache: Path, run_id: int | None, *, report: Path | None,
                    metrics: Path | None, quiet: bool) -> None:
    """`run --report/--metrics-file`: both read the run back from the cache."""
    if report is None and metrics is None:
        return
    from ..report import write_report, write_run_metrics
    from .cachefile import reader

    with reader(cache) as c:
        if metrics is not None:
            write_run_metrics(c, run_id, metrics)
            if not quiet:
                say(f"metrics: {metrics}")
        if report is not None:
            done = write_report(c, report, run_id=run_id, cache_path=str(cache))
            if not quiet:
                say(f"report: {done['report']} ({done['bytes'] / 1024:,.0f} KiB)")
