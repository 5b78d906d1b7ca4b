"""What every source is: something that yields raw records with their positions."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..dbapi import TableTarget
from ..models import FileTarget, InputIssue, RawRecord

__all__ = [
    "URL_FIELD_NAMES",
    "FileFormat",
    "RawRecord",
    "ReadOptions",
    "Source",
    "find_url_field",
]

URL_FIELD_NAMES = ("url", "href", "link", "uri")


@dataclass(slots=True)
class ReadOptions:
    url_field: str | None = None
    base_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    """The file being read, when it is one (formats that need to reopen or seek it)."""


ReadResult = Iterator[RawRecord | InputIssue]


@dataclass(frozen=True, slots=True)
class FileFormat:
    """A file format that bookmarks come in.

    ``sniff`` looks at the first bytes (BOM stripped, up to 64 KiB) and says
    whether the content is this format; formats are tried in ``priority`` order
    (specific ones before generic ones). ``read`` streams records from a binary
    stream. ``writeback`` (optional) rewrites a file with enriched records.
    """

    name: str
    description: str
    detection: str
    extensions: tuple[str, ...]
    sniff: Callable[[bytes], bool]
    read: Callable[[IO[bytes], ReadOptions], ReadResult]
    priority: int = 100
    writeback: Callable[..., Any] | None = None
    writeback_refusal: str | None = None
    """Why this format cannot be written back (browser-owned files)."""
    container: str | None = None
    """The plain file shape the records sit in (``json``, ``jsonl``, ``csv``,
    ``netscape``), which tells writeback how to rewrite the file; None: not writable."""
    binary: bool = False
    """Sniffs binary magic (SQLite, mozLz40, bplist): tried even when the head looks binary."""


def find_url_field(keys: Any, preferred: str | None = None) -> str | None:
    """The record key holding the URL: ``preferred``, else a known name (any case)."""
    keys = list(keys)
    if preferred is not None:
        for k in keys:
            if k == preferred:
                return str(k)
        lowered = preferred.lower()
        for k in keys:
            if str(k).lower() == lowered:
                return str(k)
        return None
    by_lower = {str(k).strip().lower(): str(k) for k in keys}
    for name in URL_FIELD_NAMES:
        if name in by_lower:
            return by_lower[name]
    for low, original in by_lower.items():
        if low.endswith("url") or low.endswith("_link"):
            return original
    return None


def text_stream(stream: IO[bytes]) -> io.TextIOWrapper:
    """Decode UTF-8 (BOM tolerated); undecodable bytes become U+FFFD, never a crash."""
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")


class Source(ABC):
    """A place bookmarks come from (and, for some, go back to)."""

    display: str
    """How to show this source in logs: secrets masked."""
    format_name: str
    base_dir: Path | None = None
    url_field: str | None = None
    """The field or column holding the URL, when known (writeback keys records by it)."""
    file_root: Path | None = None
    """The folder whose files this source's ``file:`` bookmarks may read (a local
    bookmarks file's own folder; None for stdin and databases)."""

    @abstractmethod
    def read(self) -> ReadResult:
        """Stream the records. Call once."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files or connections."""

    def estimate_total(self) -> int | None:
        """How many records to expect, when that is cheap to know (for ETAs)."""
        return None

    @property
    def location(self) -> str:
        """A string that reopens this source later (for the cache's records)."""
        return self.display

    def writeback_target(self) -> FileTarget | TableTarget | None:
        """Where results can be written back to (None: nowhere, like stdin)."""
        return None

    def replay(self) -> ReadResult:
        """The records once more, from the start, as :meth:`read` gave them (writeback)."""
        raise NotImplementedError(f"{self.display}: cannot be read a second time")
