"""Read-it-later CSV exports: Instapaper, Raindrop.io, Readwise Reader, Matter."""

from __future__ import annotations

from typing import Any

from ..base import FileFormat
from ._common import common_record, csv_header, csv_reader, split_tags, str_or_none, to_iso

__all__ = ["INSTAPAPER", "MATTER", "RAINDROP", "READWISE"]


def _has_columns(*names: str, any_of: tuple[str, ...] = ()) -> Any:
    """A sniffer: the header has every one of ``names`` and, if given, one of ``any_of``."""
    wanted = {n.lower() for n in names}
    some = {n.lower() for n in any_of}

    def sniff(head: bytes) -> bool:
        columns = {c.lower() for c in csv_header(head)}
        return wanted <= columns and (not some or bool(some & columns))

    return sniff


def _instapaper(row: dict[str, Any]) -> dict[str, Any]:
    return common_record(row, url=row.get("URL"), title=str_or_none(row.get("Title")),
                         tags=split_tags(row.get("Tags"), ","),
                         folder=str_or_none(row.get("Folder")),
                         created=to_iso(row.get("Timestamp")),
                         excerpt=str_or_none(row.get("Selection")))


def _raindrop(row: dict[str, Any]) -> dict[str, Any]:
    return common_record(row, url=row.get("url"), title=str_or_none(row.get("title")),
                         tags=split_tags(row.get("tags"), ","),
                         folder=str_or_none(row.get("folder")),
                         created=to_iso(row.get("created")),
                         notes=str_or_none(row.get("note")),
                         excerpt=str_or_none(row.get("excerpt")))


def _readwise(row: dict[str, Any]) -> dict[str, Any]:
    return common_record(row, url=row.get("URL"), title=str_or_none(row.get("Title")),
                         tags=split_tags(row.get("Document tags"), ","),
                         folder=str_or_none(row.get("Location")),
                         created=to_iso(row.get("Saved date")))


def _matter(row: dict[str, Any]) -> dict[str, Any]:
    return common_record(row, url=row.get("URL"), title=str_or_none(row.get("Title")),
                         tags=split_tags(row.get("Tags"), ";,"))


# Every header each service has shipped, old and new, is detected (issue 16):
# Instapaper's older export has no Timestamp (and no Tags) column; Raindrop's older
# backups and its documented import layout have no id column.
INSTAPAPER = FileFormat(
    "instapaper", "Instapaper CSV export",
    "header URL,Title,Selection,Folder (Timestamp, Tags in newer exports)",
    (".csv",), _has_columns("URL", "Title", "Selection", "Folder"),
    csv_reader(_instapaper), priority=32, container="csv",
)
RAINDROP = FileFormat(
    "raindrop", "Raindrop.io CSV export",
    "header url,title,note,tags,created and excerpt, folder, cover or highlights", (".csv",),
    _has_columns("url", "title", "note", "tags", "created",
                 any_of=("excerpt", "folder", "cover", "highlights")),
    csv_reader(_raindrop), priority=33, container="csv",
)
READWISE = FileFormat(
    "readwise", "Readwise Reader CSV export",
    "header Title,URL,…,Document tags,Saved date", (".csv",),
    _has_columns("Title", "URL", "Document tags", "Saved date"),
    csv_reader(_readwise), priority=34, container="csv",
)
MATTER = FileFormat(
    "matter", "Matter CSV export", "header Title,Author,Publisher,URL,…,Word Count,In Queue",
    (".csv",), _has_columns("Title", "Publisher", "URL", "Word Count", "In Queue"),
    csv_reader(_matter), priority=35, container="csv",
)
