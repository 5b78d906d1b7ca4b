"""The full-text index: SQLite FTS5 in the cache file, kept current by triggers.

Layout (all in the cache, created on first use):

- ``search_fts``: a *contentless* FTS5 table (``unicode61``, diacritics removed, prefix
  indexes on 2 and 3 characters). The text is stored once, in ``results``; snippets
  are made in Python from it (see bench/README.md, "Search (issue 22)", for the
  measurement that chose this over an external-content table).
- ``search_docs``: one row per indexed bookmark: its FTS rowid (``doc_id``) and the
  columns the filters read (host, language, status, type, saved, runs, tags).
- ``search_dirty``: keys whose results changed since they were indexed. Triggers on
  ``results`` and ``bookmarks`` fill it, so every writer (``run``, ``retry``, queue
  workers, another version of the tool) keeps the index current without knowing it.
- ``search_vectors``: one embedding per bookmark (see :mod:`.vectors`).

:meth:`SearchIndex.sync` indexes the dirty keys in chunks, one transaction each, so an
interrupted sync leaves a consistent index with the rest still marked dirty. FTS5
cannot delete a row from a contentless table without its old values (SQLite < 3.43),
so a re-indexed bookmark gets a new ``doc_id`` and its old row becomes unreachable
(no ``search_docs`` row joins it); :meth:`sync` rebuilds when those outnumber live ones.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import CacheError
from .query import fold
from .vectors import delete_vector, ensure_vectors, store_vector

__all__ = ["COLUMNS", "WEIGHTS", "SearchIndex", "document_fields"]

INDEX_VERSION = "1"
COLUMNS = ("title", "tags", "summary", "keywords", "description", "site", "url", "text")
WEIGHTS = (10.0, 10.0, 5.0, 5.0, 3.0, 2.0, 2.0, 1.0)
"""bm25 weight of each column: title and tags, then summary and keywords, then the text."""
MAX_TEXT_CHARS = 200_000
_CHUNK = 500
_SEP = "\x1f"

Progress = Callable[[int, int], None]
"""Called with (indexed so far, total to index)."""


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS search_docs (
    doc_id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, url TEXT, host TEXT, site TEXT,
    lang TEXT, status TEXT, type TEXT, saved REAL, runs TEXT, tags TEXT);
CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(
    {", ".join(COLUMNS)}, content='', tokenize='unicode61 remove_diacritics 2',
    prefix='2 3');
CREATE VIRTUAL TABLE IF NOT EXISTS search_vocab USING fts5vocab(search_fts, 'row');
CREATE TABLE IF NOT EXISTS search_dirty (key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS search_state (name TEXT PRIMARY KEY, value TEXT);
"""

_TRIGGERS = (("results_ins", "AFTER INSERT ON results", "NEW"),
             ("results_upd", "AFTER UPDATE ON results", "NEW"),
             ("results_del", "AFTER DELETE ON results", "OLD"),
             ("bookmarks_upd", "AFTER UPDATE OF record, url ON bookmarks WHEN "
              "OLD.record IS NOT NEW.record OR OLD.url IS NOT NEW.url", "NEW"),
             ("bookmarks_del", "AFTER DELETE ON bookmarks", "OLD"))
# Nothing to conflict on: an outer upsert's conflict policy overrides a trigger's own
# OR IGNORE (SQLite's rule), which would fail the writer's statement.
_SCHEMA += "".join(
    f"CREATE TRIGGER IF NOT EXISTS search_{name} {when} BEGIN INSERT INTO search_dirty "
    f"SELECT {row}.key WHERE NOT EXISTS (SELECT 1 FROM search_dirty WHERE key = {row}.key); "
    "END;\n" for name, when, row in _TRIGGERS)


@dataclass(slots=True)
class _Doc:
    key: str
    fields: dict[str, str]
    meta: dict[str, Any]
    vector: tuple[str, str] | None  # (model, base64 float32)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []


def _record_tags(record: dict[str, Any]) -> list[str]:
    value = record.get("tags") or record.get("tag") or record.get("labels")
    if isinstance(value, str):
        return [t for t in value.replace(",", " ").split() if t]
    return _strings(value)


def _doc_type(fetch: dict[str, Any], media: dict[str, Any]) -> str:
    if any(isinstance(m, dict) and m.get("kind") == "video" for m in media.get("media") or []):
        return "video"
    return "pdf" if str(fetch.get("content_type") or "").startswith("application/pdf") \
        else "page"


def document_fields(url: str, record: dict[str, Any], outputs: dict[str, dict[str, Any]],
                    text: str | None) -> dict[str, str]:
    """The indexed columns of one bookmark, from its record and its stages' outputs."""
    ext, summ = outputs.get("extract", {}), outputs.get("summarize", {})
    title = ext.get("title") or record.get("title") or record.get("name")
    tags = _strings(summ.get("tags")) + _record_tags(record)
    described = _strings(ext.get("description")) + _strings(record.get("description")) + \
        _strings(record.get("note")) + _strings(record.get("excerpt"))
    host = (urlsplit(url).hostname or "").removeprefix("www.")
    return {
        "title": title if isinstance(title, str) else "",
        "tags": " | ".join(tags),
        "summary": str(summ.get("summary") or ""),
        "keywords": " | ".join(_strings(summ.get("keywords")) + _strings(ext.get("categories"))),
        "description": "\n".join(described),
        "site": " ".join([*_strings(ext.get("site_name")), host]),
        "url": url,
        "text": (text or "")[:MAX_TEXT_CHARS],
    }


def _status(statuses: list[str]) -> str:
    if "failed" not in statuses:
        return "ok"
    return "partial" if "ok" in statuses else "failed"


class SearchIndex:
    """The index inside one cache; ``conn`` must be a read-write connection to it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def exists(self) -> bool:
        if not self._has("search_state"):
            return False
        row = self.conn.execute(
            "SELECT value FROM search_state WHERE name = 'version'").fetchone()
        return row is not None and row[0] == INDEX_VERSION

    def _has(self, table: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?",
                                 (table,)).fetchone() is not None

    def ensure(self) -> bool:
        """Create the index (every bookmark marked to index) unless it exists; True if new."""
        if self.exists():
            return False
        if not self._has("results") or not self._has("bookmarks"):
            raise CacheError("not a bookmark-enrich cache (no results or bookmarks table)")
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            if self._has("search_state"):  # an older layout: start over
                for name in ("search_vocab", "search_fts", "search_docs", "search_dirty",
                             "search_state"):
                    self.conn.execute(f"DROP TABLE IF EXISTS {name}")
            for statement in _SCHEMA.split(";\n"):
                if statement.strip():
                    self.conn.execute(statement)
            ensure_vectors(self.conn)
            self.conn.execute("INSERT OR IGNORE INTO search_dirty SELECT key FROM bookmarks")
            self.conn.execute("INSERT OR REPLACE INTO search_state VALUES ('version', ?)",
                              (INDEX_VERSION,))
            self.conn.execute("INSERT OR REPLACE INTO search_state VALUES ('dead', '0')")
        return True

    def pending(self) -> int:
        """Bookmarks waiting to be (re)indexed."""
        return int(self.conn.execute("SELECT count(*) FROM search_dirty").fetchone()[0])

    def size(self) -> int:
        """Indexed bookmarks."""
        return int(self.conn.execute("SELECT count(*) FROM search_docs").fetchone()[0])

    def sync(self, progress: Progress | None = None) -> int:
        """Index every dirty bookmark, a chunk per transaction; returns how many."""
        total = self.pending()
        done = 0
        while True:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                keys = [k for (k,) in self.conn.execute(
                    f"SELECT key FROM search_dirty LIMIT {_CHUNK}")]
                if not keys:
                    break
                self._index(keys)
                self.conn.executemany("DELETE FROM search_dirty WHERE key = ?",
                                      [(k,) for k in keys])
            done += len(keys)
            if progress is not None:
                progress(done, max(total, done))
        if self._dead() > max(5000, self.size()):
            self.rebuild(progress)
        return done

    def rebuild(self, progress: Progress | None = None) -> int:
        """Drop every indexed row and index the whole cache again."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("DELETE FROM search_docs")
            self.conn.execute("INSERT INTO search_fts(search_fts) VALUES ('delete-all')")
            self.conn.execute("INSERT OR IGNORE INTO search_dirty SELECT key FROM bookmarks")
            self.conn.execute("UPDATE search_state SET value = '0' WHERE name = 'dead'")
        return self.sync(progress)

    def _dead(self) -> int:
        row = self.conn.execute("SELECT value FROM search_state WHERE name = 'dead'").fetchone()
        return int(row[0]) if row else 0

    def _index(self, keys: Sequence[str]) -> None:
        docs = _load_docs(self.conn, keys)
        marks = ",".join("?" * len(keys))
        removed = self.conn.execute(f"DELETE FROM search_docs WHERE key IN ({marks})",
                                    list(keys)).rowcount
        if removed:
            self.conn.execute("UPDATE search_state SET value = CAST(value AS INTEGER) + ? "
                              "WHERE name = 'dead'", (removed,))
        for key in keys:
            doc = docs.get(key)
            if doc is None or doc.vector is None:
                delete_vector(self.conn, key)
            if doc is None:
                continue
            if doc.vector is not None:
                store_vector(self.conn, key, *doc.vector)
            cur = self.conn.execute(
                "INSERT INTO search_docs (key, url, host, site, lang, status, type, saved, "
                "runs, tags) VALUES (:key, :url, :host, :site, :lang, :status, :type, "
                ":saved, :runs, :tags)", doc.meta)
            self.conn.execute(
                f"INSERT INTO search_fts (rowid, {', '.join(COLUMNS)}) "
                f"VALUES (?, {', '.join('?' * len(COLUMNS))})",
                (cur.lastrowid, *(doc.fields[c] for c in COLUMNS)))


def _load_docs(conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, _Doc]:
    marks = ",".join("?" * len(keys))
    rows = conn.execute(
        "SELECT b.key, b.url, b.record, b.first_seen, r.stage, r.status, r.output, "
        "CASE WHEN r.stage IN ('extract', 'embed') THEN r.text END, r.run_id "
        f"FROM bookmarks b LEFT JOIN results r ON r.key = b.key WHERE b.key IN ({marks})",
        list(keys)).fetchall()
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    return {key: _doc(key, group) for key, group in grouped.items()}


def _doc(key: str, rows: Sequence[tuple[Any, ...]]) -> _Doc:
    _, url, raw, saved = rows[0][:4]
    try:
        record = json.loads(raw) if raw else {}
    except ValueError:
        record = {}
    if not isinstance(record, dict):
        record = {}
    outputs: dict[str, dict[str, Any]] = {}
    statuses: list[str] = []
    runs: set[int] = set()
    text: str | None = None
    vector: tuple[str, str] | None = None
    for *_, stage, status, output, stage_text, run_id in rows:
        if stage is None:
            continue
        statuses.append(status)
        if run_id is not None:
            runs.add(int(run_id))
        if status != "ok":
            continue
        try:
            outputs[stage] = json.loads(output) if output else {}
        except ValueError:
            outputs[stage] = {}
        if stage == "extract":
            text = stage_text
        elif stage == "embed" and stage_text and outputs[stage].get("model"):
            vector = (str(outputs[stage]["model"]), stage_text)
    final_url = outputs.get("fetch", {}).get("final_url") or url
    fields = document_fields(url, record, outputs, text)
    tags = [fold(t) for t in _strings(outputs.get("summarize", {}).get("tags"))
            + _record_tags(record)]
    meta = {
        "key": key, "url": url,
        "host": (urlsplit(str(final_url)).hostname or "").removeprefix("www."),
        "site": str(outputs.get("extract", {}).get("site_name") or ""),
        "lang": str(outputs.get("extract", {}).get("language")
                    or outputs.get("summarize", {}).get("language") or "").lower(),
        "status": _status(statuses) if statuses else "ok",
        "type": _doc_type(outputs.get("fetch", {}), outputs.get("media", {})),
        "saved": saved or 0.0,
        "runs": " " + " ".join(str(r) for r in sorted(runs)) + " ",
        "tags": _SEP + _SEP.join(tags) + _SEP,
    }
    return _Doc(key, fields, meta, vector)
