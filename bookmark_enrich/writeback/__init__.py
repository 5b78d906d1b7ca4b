"""Writing results back to the source: database tables and bookmarks files."""

from __future__ import annotations

from ..errors import UsageError
from ..sources import FileSource, Source
from ..sources.db import DbSource
from .base import Report, WritebackConflict, WritebackOptions, Writer, cached_records
from .db import TARGET_FIELDS, DbWriter
from .files import FileWriter

__all__ = [
    "TARGET_FIELDS",
    "DbWriter",
    "FileWriter",
    "Report",
    "WritebackConflict",
    "WritebackOptions",
    "Writer",
    "cached_records",
    "open_writer",
]

STDIN_NOTE = "note: stdin has no source to write back to; the results go to stdout"


def open_writer(source: Source, options: WritebackOptions, report: Report) -> Writer | None:
    """The writer for ``source``, checked (columns, permissions, locks) before any work.

    Returns None for stdin (after saying so). Raises a one-line error when the
    source cannot be written back.
    """
    if isinstance(source, DbSource):
        return DbWriter(source, options, report)
    if isinstance(source, FileSource):
        if source.is_stdin:
            report(STDIN_NOTE)
            return None
        return FileWriter(source, options, report)
    raise UsageError(f"{source.display}: this source cannot be written back")
