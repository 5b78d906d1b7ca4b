"""Where bookmarks come from: files, stdin, databases; and the formats they use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import InputError
from ..models import Bookmark, InputIssue
from ..urls import InvalidURL, bookmark_key, normalize_url, resolve_url
from .base import FileFormat, RawRecord, ReadOptions, Source, find_url_field
from .db import DbSource, PostgresSource, SqliteSource
from .files import FileSource, detect_format
from .formats import FORMATS, describe_formats, format_table

__all__ = [
    "FORMATS",
    "SCHEMES",
    "DbSource",
    "FileFormat",
    "FileSource",
    "RawRecord",
    "ReadOptions",
    "Source",
    "describe_formats",
    "detect_format",
    "format_table",
    "iter_bookmarks",
    "open_source",
    "to_bookmark",
]


SCHEMES: dict[str, type[DbSource]] = {
    "sqlite": SqliteSource,
    "postgresql": PostgresSource,
    "postgres": PostgresSource,
}
"""Database sources by URL scheme (psycopg is imported only when a PostgreSQL one opens)."""


def open_source(
    spec: str,
    *,
    input_format: str | None = None,
    url_field: str | None = None,
    stdin: IO[bytes] | None = None,
    input_encoding: str | None = None,
    **options: Any,
) -> Source:
    """Open a SOURCE argument: ``-`` (stdin), a path, or a database URL.

    ``input_encoding`` names a text file's encoding instead of detecting it."""
    scheme = spec.split(":", 1)[0].lower() if "://" in spec else ""
    if scheme and scheme in SCHEMES:
        return SCHEMES[scheme](spec, url_field=url_field, **options)
    if scheme and scheme not in ("file",):
        known = ", ".join(sorted(SCHEMES)) or "none installed"
        raise InputError(f"unsupported source URL scheme {scheme!r} (database schemes: {known})")
    return FileSource(spec, input_format=input_format, url_field=url_field, stdin=stdin,
                      input_encoding=input_encoding)


def iter_bookmarks(source: Source, url_field: str | None = None) -> Iterator[Bookmark | InputIssue]:
    """Turn a source's raw records into validated bookmarks, reporting the rest."""
    base_dir = source.base_dir
    for item in source.read():
        yield item if isinstance(item, InputIssue) else to_bookmark(item, base_dir, url_field)


def to_bookmark(item: RawRecord, base_dir: Path | None,
                url_field: str | None = None) -> Bookmark | InputIssue:
    """One raw record as a bookmark (URL found, resolved, keyed), or why it is not one."""
    record = item.record
    field = item.url_field or find_url_field(record.keys(), url_field)
    raw_url = record.get(field) if field is not None else None
    if not isinstance(raw_url, str) or not raw_url.strip():
        return InputIssue(item.position, "record has no URL")
    try:
        url = resolve_url(raw_url, base_dir)
    except InvalidURL as exc:
        return InputIssue(item.position, str(exc))
    normalized = normalize_url(url)
    return Bookmark(
        url=url,
        normalized=normalized,
        key=bookmark_key(normalized),
        record=record,
        position=item.position,
        source_id=item.source_id,
    )
