"""Writing results back to the source: database tables and bookmarks files."""

from __future__ import annotations

from ..dbapi import TableTarget
from ..errors import UsageError
from ..models import FileTarget
from .base import (
    Report,
    Results,
    WritebackConflict,
    WritebackOptions,
    Writer,
    refuse_url_field,
)
from .db import TARGET_FIELDS, DbWriter
from .files import FileWriter

__all__ = [
    "TARGET_FIELDS",
    "DbWriter",
    "FileWriter",
    "Report",
    "Results",
    "WritebackConflict",
    "WritebackOptions",
    "Writer",
    "refuse_url_field",
    "writer_for",
]


def writer_for(target: FileTarget | TableTarget, options: WritebackOptions,
               report: Report) -> Writer:
    """The writer for ``target``, checked (columns, permissions, locks) before any work."""
    if isinstance(target, TableTarget):
        return DbWriter(target, options, report)
    if isinstance(target, FileTarget):
        return FileWriter(target, options, report)
    raise UsageError(f"{target}: this source cannot be written back")
