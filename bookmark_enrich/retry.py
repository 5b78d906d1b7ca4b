"""Re-run just the failures the cache holds, through the normal pipeline.

The matching failed rows are marked (their fingerprint set to ``retry``) page by
page as their bookmarks are read back, so the pipeline plans exactly those
stages again (and what depends on them); every other cached result is reused.
Marks are made only once the run has passed its preflight, and a retry that is
interrupted leaves the rest still failed, so ``retry`` finds them next time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import ResultCache
from .errors import UsageError
from .events import RunStats, Subscriber
from .pipeline import Sink
from .reports import FailureFilter
from .runner import enrich
from .settings import Settings
from .sources.cached import CachedSource
from .stages import STAGES

__all__ = ["RETRY_MARK", "RetryGroup", "mark_rows", "retry_groups", "retry_source", "run_retry"]

RETRY_MARK = "retry"
"""Fingerprint given to rows to redo; it never equals a stage's real fingerprint."""


@dataclass(slots=True)
class RetryGroup:
    """The failures of one recorded source."""

    location: str
    bookmarks: int
    results: int


def enabled_filter(settings: Settings, flt: FailureFilter) -> FailureFilter:
    """Only stages this run would run; naming a disabled stage is a usage error."""
    enabled = [cls.name for cls in STAGES if cls.enabled(settings)]
    for name in flt.stages:
        if name not in enabled:
            raise UsageError(f"stage {name!r} is off in these settings, so its failures "
                             "cannot be retried (turn it on, or see `config show`)")
    return FailureFilter(flt.stages or enabled, flt.reasons, flt.since)


def retry_groups(cache: ResultCache, flt: FailureFilter) -> list[RetryGroup]:
    """Matching failures per source location, largest first."""
    cond, params = flt.where("r")
    return [RetryGroup(row["source"] or "-", row["bookmarks"], row["results"])
            for row in cache.iter_rows(
                "SELECT b.source, count(DISTINCT r.key) AS bookmarks, count(*) AS results "
                f"FROM results r JOIN bookmarks b ON b.key = r.key WHERE {cond} "
                "GROUP BY b.source ORDER BY bookmarks DESC, b.source", params)]


def mark_rows(flt: FailureFilter) -> Callable[[sqlite3.Connection, Sequence[str]], None]:
    """A ``prepare`` hook for :class:`CachedSource`: mark these keys' matching rows."""
    cond, params = flt.where("results")

    def mark(conn: sqlite3.Connection, keys: Sequence[str]) -> None:
        marks = ",".join("?" * len(keys))
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"UPDATE results SET fingerprint = ? WHERE {cond} "
                         f"AND key IN ({marks})", [RETRY_MARK, *params, *keys])

    return mark


def retry_source(cache: Path, location: str, flt: FailureFilter) -> CachedSource:
    """The bookmarks of ``location`` with matching failures, marked as they are read."""
    return CachedSource(cache, location, flt.where("r"), prepare=mark_rows(flt))


async def run_retry(
    settings: Settings,
    location: str,
    flt: FailureFilter,
    *,
    sink: Sink,
    subscribers: Iterable[Subscriber] = (),
    keep_going: bool = False,
    run_options: dict[str, Any] | None = None,
) -> RunStats:
    """Retry the matching failures of one source; same preflight, events and stats as a run."""
    source = retry_source(settings.cache, location, flt)
    try:
        options = run_options if run_options is not None else {
            **settings.masked(), "retry": {"stages": flt.stages, "reasons": flt.reasons,
                                           "since": flt.since}}
        return await enrich(source, settings, sink=sink, subscribers=subscribers,
                            keep_going=keep_going, run_options=options)
    finally:
        source.close()
