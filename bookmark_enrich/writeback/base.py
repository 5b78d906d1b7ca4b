"""What every writer shares: options, the writer interface, dry-run diffs.

Writers only write: the records to write come from above (a run's sink, or a
replay of the cache that ``runner.open_writer`` arranges), so this package never
reads sources or the cache itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import EXIT_FAILURES, BookmarkEnrichError, UsageError
from ..models import RawRecord

__all__ = [
    "Report",
    "Results",
    "WritebackConflict",
    "WritebackOptions",
    "Writer",
    "archive_url",
    "change_line",
    "describe_changes",
    "refuse_url_field",
]

Report = Callable[[str], None]
"""Where one-line messages go (dry-run diffs, notices)."""

Results = Iterable[tuple[RawRecord, dict[str, Any] | None]]
"""Every record of the source, in order, with its output record (None: nothing cached)."""

Sink = Callable[[dict[str, Any]], None]


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
    archive_field: str | None = None
    """Field or column that gets a dead page's snapshot URL (``enrichment.archived``);
    never the record's URL field (checked by :func:`refuse_url_field`)."""
    extra: dict[str, Any] = field(default_factory=dict)


class Writer(ABC):
    """Writes enriched records back to where they came from."""

    rewrites_after_run: ClassVar[bool] = False
    """True when results are written all at once after a run (files), from a replay of
    the cache; False when they are written as they arrive (tables)."""

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
        """Take one output record as it arrives (tables write in batches)."""

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Write what is pending."""

    @abstractmethod
    def write(self, results: Results) -> None:
        """Write the results of every record of the source (a replay of the cache)."""

    def interrupted(self) -> None:
        """The run stopped early: write what is safe to write, say what is not."""
        self.flush()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release connections."""

    def summary_line(self) -> str:
        if self.options.dry_run:
            return (f"dry run: {self.changed} of {self.seen} records would change; "
                    "nothing written")
        return f"wrote back {self.changed} of {self.seen} records"


def archive_url(record: dict[str, Any]) -> str | None:
    """The snapshot URL of a record rescued from a web archive (None: not rescued)."""
    archived = (record.get("enrichment") or {}).get("archived")
    url = archived.get("snapshot_url") if isinstance(archived, dict) else None
    return url if isinstance(url, str) and url else None


def refuse_url_field(name: str, url_fields: Iterable[str | None]) -> None:
    """``--archive-field`` never names the field holding the bookmark's own URL."""
    if any(f is not None and f.strip().lower() == name.strip().lower() for f in url_fields):
        raise UsageError(f"--archive-field {name}: that is the bookmarks' URL field; "
                         "name another field (e.g. archive_url)")


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
