"""Bookmarks read back from the cache: each original record of one recorded source.

``retry`` feeds these through the normal pipeline. The records are the ones the
source gave (the cache keeps them), so the keys, positions and output records
come out exactly as the first run made them.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import CacheError
from ..models import InputIssue
from ..urls import InvalidURL, bookmark_key, normalize_url, resolve_url
from .base import RawRecord, ReadResult, Source, find_url_field

__all__ = ["CachedSource", "KeyQuery"]

_PAGE = 500

KeyQuery = tuple[str, list[Any]]
"""SQL condition on ``results r`` choosing the rows whose bookmarks to read, and its params."""

Prepare = Callable[[sqlite3.Connection, Sequence[str]], None]
"""Called with each page of keys before they are yielded (``retry`` marks rows there)."""


def _key_of(value: Any, base_dir: Path | None) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return bookmark_key(normalize_url(resolve_url(value, base_dir)))
    except InvalidURL:
        return None


class CachedSource(Source):
    """The cached records of one source location whose results match ``query``."""

    format_name = "cache"

    def __init__(self, cache: Path, location: str, query: KeyQuery, *,
                 prepare: Prepare | None = None, url_field: str | None = None) -> None:
        self.cache = cache
        self._location = location
        self.display = f"retry: {location}"
        self.query = query
        self.prepare = prepare
        self.url_field = url_field
        path = Path(location)
        self.base_dir = path.parent if path.is_absolute() else None
        self.file_root = self.base_dir  # a retry reads what the original file could
        try:
            self.conn = sqlite3.connect(cache, timeout=30, isolation_level=None,
                                        check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise CacheError(f"{cache}: cannot open the cache: {exc}") from None

    @property
    def location(self) -> str:
        """The original source's location, so the cache's records keep pointing at it."""
        return self._location

    def _keys_sql(self) -> tuple[str, list[Any]]:
        cond, params = self.query
        return (f"FROM results r JOIN bookmarks b ON b.key = r.key WHERE {cond} "
                "AND b.source = ?", [*params, self._location])

    def estimate_total(self) -> int | None:
        body, params = self._keys_sql()
        row = self.conn.execute(f"SELECT count(DISTINCT r.key) {body}", params).fetchone()
        return int(row[0]) if row else None

    def _url_field(self, record: dict[str, Any], key: str) -> str | None:
        """The field whose URL gives the stored key (the first run may have used --url-field)."""
        first = self.url_field or find_url_field(record.keys())
        candidates = [first] if first is not None else []
        candidates += [k for k in record if k != first]
        for name in candidates:
            if _key_of(record.get(name), self.base_dir) == key:
                return name
        return None

    def read(self) -> ReadResult:
        body, params = self._keys_sql()
        after = ""
        while True:
            keys = [k for (k,) in self.conn.execute(
                f"SELECT DISTINCT r.key {body} AND r.key > ? ORDER BY r.key LIMIT {_PAGE}",
                [*params, after])]
            if not keys:
                return
            after = keys[-1]
            yield from self._records(keys)
            if len(keys) < _PAGE:
                return

    def _records(self, keys: list[str]) -> Iterator[RawRecord | InputIssue]:
        marks = ",".join("?" * len(keys))
        rows = self.conn.execute(
            f"SELECT key, record, position FROM bookmarks WHERE key IN ({marks}) "
            "ORDER BY position", keys).fetchall()
        if self.prepare is not None:
            self.prepare(self.conn, keys)
        for key, text, position in rows:
            try:
                record = json.loads(text) if text else {}
            except ValueError:
                record = {}
            field = self._url_field(record, key) if isinstance(record, dict) else None
            if field is None:
                yield InputIssue(position or 0, f"cached record {key} has no URL that gives "
                                 "its key any more; skipped")
                continue
            yield RawRecord(position or 0, record, field)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
