"""What every writer shares: options, the replay of cached results, dry-run diffs."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cache import ResultCache
from ..errors import EXIT_FAILURES, BookmarkEnrichError
from ..models import Bookmark, InputIssue
from ..pipeline import Sink, build_record
from ..settings import Settings
from ..sources import RawRecord, to_bookmark
from ..stages import Stage, build_stages

__all__ = [
    "Report",
    "WritebackConflict",
    "WritebackOptions",
    "Writer",
    "cached_records",
    "describe_changes",
]

Report = Callable[[str], None]
"""Where one-line messages go (dry-run diffs, notices)."""

_REPLAY_CHUNK = 500


class WritebackConflict(BookmarkEnrichError):
    """The source changed under us, or could not be written; the results stay in the cache."""

    exit_code = EXIT_FAILURES


@dataclass(slots=True)
class WritebackOptions:
    """How to write results back; the CLI's writeback flags."""

    dry_run: bool = False
    backup: bool = True
    columns: list[str] | None = None
    """Target fields (``summary``, ``tags``...), each optionally ``field:column``."""
    column_prefix: str = ""
    create_columns: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Writer(ABC):
    """Writes enriched records back to where they came from."""

    def __init__(self, options: WritebackOptions, report: Report) -> None:
        self.options = options
        self.report = report
        self.changed = 0
        """Records written (or, in a dry run, that would change)."""
        self.seen = 0

    def wrap(self, sink: Sink) -> Sink:
        """A sink that also hands every output record to this writer."""

        def both(record: dict[str, Any]) -> None:
            sink(record)
            self.add(record)

        return both

    def add(self, record: dict[str, Any]) -> None:  # noqa: B027 - files write after the run
        """Take one output record as it arrives (databases write in batches)."""

    @abstractmethod
    def finish_run(self, settings: Settings, *, interrupted: bool) -> None:
        """After a run: write what is pending (databases) or rewrite the file."""

    @abstractmethod
    def apply_cached(self, settings: Settings) -> None:
        """Write what the cache holds for every record of the source, enriching nothing."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release connections."""

    def summary_line(self) -> str:
        if self.options.dry_run:
            return (f"dry run: {self.changed} of {self.seen} records would change; "
                    "nothing written")
        return f"wrote back {self.changed} of {self.seen} records"


@contextmanager
def writeback_stages(settings: Settings) -> Iterator[list[Stage]]:
    """The stages whose cached outcomes make up the enrichment (never run here)."""
    stages = build_stages(settings)
    try:
        yield stages
    finally:

        async def close() -> None:
            for stage in stages:
                await stage.aclose()

        asyncio.run(close())


def cached_records(
    items: Iterable[RawRecord | InputIssue],
    *,
    cache: ResultCache,
    stages: list[Stage],
    base_dir: Path | None,
    url_field: str | None,
    include_text: bool = False,
) -> Iterator[tuple[RawRecord, dict[str, Any] | None]]:
    """Each raw record with its output record rebuilt from the cache (None: nothing cached).

    Keys are computed exactly as the run computes them; lookups go in chunks so
    memory stays flat whatever the size of the source.
    """
    chunk: list[tuple[RawRecord, Bookmark | None]] = []

    def drain() -> Iterator[tuple[RawRecord, dict[str, Any] | None]]:
        keys = [b.key for _, b in chunk if b is not None]
        found = cache.lookup(keys, with_text=include_text) if keys else {}
        for raw, bookmark in chunk:
            outcomes = found.get(bookmark.key) if bookmark is not None else None
            if bookmark is None or not outcomes:
                yield raw, None
            else:
                yield raw, build_record(bookmark, outcomes, stages, include_text=include_text)
        chunk.clear()

    for item in items:
        if isinstance(item, InputIssue):
            continue
        made = to_bookmark(item, base_dir, url_field)
        chunk.append((item, made if isinstance(made, Bookmark) else None))
        if len(chunk) >= _REPLAY_CHUNK:
            yield from drain()
    yield from drain()


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(added, changed) field names going from ``old`` to ``new``; absent in new = kept."""
    added: list[str] = []
    changed: list[str] = []
    for name, value in new.items():
        if value is None:
            continue
        before = old.get(name)
        if before is None or before == "" or before == [] or before == {}:
            added.append(name)
        elif before != value:
            changed.append(name)
    return added, changed


def change_line(label: str, added: list[str], changed: list[str]) -> str:
    parts = []
    if added:
        parts.append("add " + ", ".join(added))
    if changed:
        parts.append("change " + ", ".join(changed))
    return f"{label}: {'; '.join(parts)}"
