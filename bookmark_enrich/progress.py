"""Subscribers to pipeline events: rich bars (TTY), plain log lines (cron), the summary."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .events import (
    BookmarkDone,
    InputProblem,
    Notice,
    RunFinished,
    RunStarted,
    RunStats,
    StageDone,
    Tick,
)

__all__ = ["LogProgress", "RichProgress", "issue_printer", "print_summary"]


def issue_printer(console: Console, *, quiet: bool = False) -> Any:
    """Malformed records and notices, one line each; with ``quiet`` only malformed
    records and warnings (a cron job mails nothing on a good night)."""

    def on_event(event: Any) -> None:
        if isinstance(event, InputProblem):
            what = "input damaged at" if event.fatal else "skipped"
            console.print(f"{what} line {event.position}: {event.message}",
                          markup=False, highlight=False)
        elif isinstance(event, Notice) and not (quiet and event.level == "info"):
            console.print(event.message, markup=False, highlight=False, soft_wrap=True)

    return on_event


class RichProgress:
    """Live bars on a terminal: overall count with ok/cached/failed, rate, ETA; a line per stage."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            refresh_per_second=8,
        )
        self.overall: TaskID | None = None
        self.stage_tasks: dict[str, TaskID] = {}
        self.counts = {"ok": 0, "cached": 0, "failed": 0}
        self.stage_counts: dict[str, dict[str, int]] = {}
        self.started = time.monotonic()

    def __call__(self, event: Any) -> None:
        if isinstance(event, RunStarted):
            self.started = time.monotonic()
            self.progress.start()
            self.overall = self.progress.add_task("bookmarks", total=event.total, detail="")
            for name in event.stages:
                self.stage_tasks[name] = self.progress.add_task(name, total=event.total,
                                                                detail="")
                self.stage_counts[name] = {"ok": 0, "cached": 0, "failed": 0, "skipped": 0}
        elif isinstance(event, StageDone) and event.stage in self.stage_tasks:
            counts = self.stage_counts[event.stage]
            counts["cached" if event.cached else event.status] += 1
            detail = " ".join(f"{k} {v}" for k, v in counts.items() if v)
            self.progress.update(self.stage_tasks[event.stage], advance=1, detail=detail)
        elif isinstance(event, BookmarkDone) and self.overall is not None:
            key = "cached" if event.cached else ("failed" if event.status != "ok" else "ok")
            self.counts[key] += 1
            rate = sum(self.counts.values()) / max(time.monotonic() - self.started, 1e-6)
            detail = (f"[green]ok {self.counts['ok']}[/] [cyan]cached {self.counts['cached']}[/] "
                      f"[red]failed {self.counts['failed']}[/] {rate:.1f}/s")
            self.progress.update(self.overall, advance=1, detail=detail)
        elif isinstance(event, InputProblem) and self.overall is not None:
            self.progress.update(self.overall, advance=1)  # a record, though a bad one
        elif isinstance(event, RunFinished):
            if self.overall is not None and not event.stats.interrupted:
                # An estimate off by a few (a record over two lines) still ends full.
                done = self.progress.tasks[self.overall].completed
                self.progress.update(self.overall, total=done, completed=done)
            self.progress.stop()


class LogProgress:
    """Without a terminal (cron, pipes): a line every ``interval`` seconds, even when
    nothing finishes, with the oldest bookmark in flight; JSON objects with ``as_json``."""

    def __init__(self, console: Console, interval: float = 10.0, *,
                 as_json: bool = False) -> None:
        self.console = console
        self.interval = interval
        self.as_json = as_json
        self.done = 0
        self.failed = 0
        self.cached = 0
        self.total: int | None = None
        self.started = time.monotonic()
        self.last = self.started

    def __call__(self, event: Any) -> None:
        if isinstance(event, RunStarted):
            self.total = event.total
            self.started = self.last = time.monotonic()
            self._line(f"run started: {event.source} ({event.format}), stages: "
                       f"{', '.join(event.stages) or 'none'}",
                       {"event": "started", "source": event.source, "format": event.format,
                        "stages": event.stages, "total": event.total})
        elif isinstance(event, BookmarkDone):
            self.done += 1
            self.failed += event.status != "ok"
            self.cached += event.cached
        elif isinstance(event, Tick):
            now = time.monotonic()
            if now - self.last >= self.interval:
                self.last = now
                self._progress(now, event)

    def _progress(self, now: float, tick: Tick) -> None:
        of = f"/{self.total}" if self.total else ""
        rate = self.done / max(now - self.started, 1e-6)
        text = (f"progress: {self.done}{of} bookmarks, {self.cached} cached, "
                f"{self.failed} failed, {rate:.1f}/s, {tick.in_flight} in flight")
        if tick.oldest_url is not None:
            text += f", oldest {tick.oldest_url} ({tick.oldest_age:.0f}s)"
        self._line(text, {
            "event": "progress", "done": self.done, "total": self.total,
            "cached": self.cached, "failed": self.failed, "rate": round(rate, 2),
            "in_flight": tick.in_flight, "oldest_url": tick.oldest_url,
            "oldest_age": round(tick.oldest_age, 1)})

    def _line(self, text: str, doc: dict[str, Any]) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        line = json.dumps({"time": stamp, **doc}, ensure_ascii=False) if self.as_json \
            else f"{stamp} {text}"
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)


def print_summary(console: Console, stats: RunStats) -> None:
    """The end-of-run table: totals, per-stage results, failure reasons, rates."""
    title = "bookmark-enrich: interrupted" if stats.interrupted else "bookmark-enrich: done"
    table = Table(title=title, title_justify="left", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("detail")
    table.add_row("bookmarks", str(stats.total),
                  f"{stats.rate:.1f}/s in {stats.wall_seconds:.1f}s")
    table.add_row("ok", str(stats.ok), "")
    table.add_row("partial", str(stats.partial), "some stage failed")
    table.add_row("failed", str(stats.failed), "")
    table.add_row("cached", str(stats.cached), "every stage from the cache")
    if stats.unfinished:
        table.add_row("interrupted", str(stats.unfinished), "stopped mid-way; the next run "
                      "does them")
    if stats.issues:
        table.add_row("bad input", str(stats.issues), "records skipped (see lines above)")
    for stage, counts in stats.stage_counts.items():
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        figures = stats.metrics.get(stage)
        if figures:
            detail += "; " + ", ".join(f"{k} {v}" for k, v in figures.items())
        table.add_row(f"  {stage}", str(sum(counts.values())), detail)
    for (stage, reason), count in stats.reasons.most_common(10):
        table.add_row(f"  {stage} failed", str(count), reason)
    console.print(table)
