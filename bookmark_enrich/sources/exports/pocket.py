"""Pocket exports: the CSV (``title,url,time_added,tags,status``) and the older HTML page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from ...models import InputIssue
from ..base import FileFormat, RawRecord, ReadOptions, text_stream
from ..netscape import TolerantHTMLParser
from ._common import common_record, csv_header, csv_reader, split_tags, str_or_none, to_iso

__all__ = ["POCKET_CSV", "POCKET_HTML"]

_STATUS_FOLDER = {"unread": "Unread", "archive": "Read Archive"}
_CHUNK = 1 << 16


def sniff_pocket_csv(head: bytes) -> bool:
    columns = {c.lower() for c in csv_header(head)}
    # Older exports have no status column.
    return {"url", "time_added", "title"} <= columns


def _pocket_csv(row: dict[str, Any]) -> dict[str, Any]:
    status = str_or_none(row.get("status"))
    return common_record(row, url=row.get("url"), title=str_or_none(row.get("title")),
                         tags=split_tags(row.get("tags"), "|"),
                         folder=_STATUS_FOLDER.get(status or "", status),
                         created=to_iso(row.get("time_added")))


def sniff_pocket_html(head: bytes) -> bool:
    low = head[:16384].lower()
    return b"<title>pocket export</title>" in low or (
        b"time_added=" in low and b"<li" in low and b"<dt" not in low)


class _PocketParser(TolerantHTMLParser):
    """Streams ``<li><a href time_added tags>title</a>`` under ``<h1>`` sections."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.section: str | None = None
        self.in_h1 = False
        self.h1_text: list[str] = []
        self.current: dict[str, Any] | None = None
        self.line = 0
        self.text: list[str] = []
        self.ready: list[tuple[int, dict[str, Any]]] = []
        self.ended = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._close_entry()
            self.current = {name: value or "" for name, value in attrs}
            self.line = self.getpos()[0]
            self.text = []
        elif tag == "h1":
            self._close_entry()
            self.in_h1 = True
            self.h1_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._close_entry()
        elif tag == "h1":
            self.in_h1 = False
            self.section = " ".join("".join(self.h1_text).split()) or None
        elif tag in ("html", "body"):
            self.ended = True

    def handle_data(self, data: str) -> None:
        if self.current is not None:
            self.text.append(data)
        elif self.in_h1:
            self.h1_text.append(data)

    def _close_entry(self) -> None:
        if self.current is None:
            return
        original = self.current
        self.current = None
        record = common_record(
            original, url=original.get("href", ""),
            title=" ".join("".join(self.text).split()) or None,
            tags=split_tags(original.get("tags"), ","), folder=self.section,
            created=to_iso(original.get("time_added")))
        self.ready.append((self.line, record))


def read_pocket_html(stream: IO[bytes],
                     options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    """Stream the entries (position: the line of each ``<a>``)."""
    text = text_stream(stream, options.encoding)
    parser = _PocketParser()
    while chunk := text.read(_CHUNK):
        parser.feed(chunk)
        for line, record in parser.ready:
            yield RawRecord(line, record, "url")
        parser.ready.clear()
    parser.close()
    if parser.current is not None:
        yield InputIssue(parser.line, f"export cut inside the entry at line {parser.line}",
                         fatal=True)
        return
    if not parser.ended:
        line = parser.getpos()[0]
        yield InputIssue(line, f"export ends at line {line} without </html>: cut short?",
                         fatal=True)


POCKET_CSV = FileFormat(
    "pocket-csv", "Pocket export CSV (title,url,time_added,tags,status)",
    "header with title, url, time_added", (".csv",), sniff_pocket_csv,
    csv_reader(_pocket_csv), priority=30, container="csv",
)
POCKET_HTML = FileFormat(
    "pocket-html", "Pocket export HTML (older ril_export.html)",
    '"Pocket Export" title or <li><a … time_added=…>', (".html",), sniff_pocket_html,
    read_pocket_html, priority=31,
)
