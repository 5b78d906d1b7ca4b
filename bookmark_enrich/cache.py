"""The SQLite result cache: one row per (bookmark, stage), plus runs and records.

Writes are buffered and committed in batches (one transaction each) so the
pipeline never waits on fsync per bookmark; WAL keeps the file valid whatever
kills the process, and readers (``status``, ``backup``) never block a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import CacheError, DiskFull, disk_full_message
from .models import Bookmark, StageOutcome
from .reasons import is_dead
from .records import dumps
from .urls import InvalidURL, bookmark_key, normalize_url, resolve_url

__all__ = ["ResultCache"]

_LOOKUP_CHUNK = 500
_FLUSH_ROWS = 500
_FLUSH_SECONDS = 0.5
SCHEMA_VERSION = 2
"""2: keys from the URL Standard normalization (issue 16); 1 was courlan's."""

_RESULT_COLUMNS = (
    "key", "stage", "status", "reason", "error", "attempts", "duration_ms",
    "finished_at", "fingerprint", "output", "text", "run_id",
)

_TABLES: dict[str, tuple[dict[str, type], str | tuple[str, ...]]] = {
    "results": ({
        "key": str, "stage": str, "status": str, "reason": str, "error": str,
        "attempts": int, "duration_ms": int, "finished_at": float,
        "fingerprint": str, "output": str, "text": str, "run_id": int,
    }, ("key", "stage")),
    "bookmarks": ({
        "key": str, "url": str, "normalized": str, "record": str,
        "source": str, "position": int, "first_seen": float, "last_seen": float,
    }, "key"),
    "runs": ({
        "id": int, "source": str, "format": str, "options": str,
        "started_at": float, "finished_at": float, "status": str,
        "total": int, "ok": int, "partial": int, "failed": int,
        "cached": int, "issues": int, "wall_seconds": float,
        "host": str, "pid": int,
    }, "id"),
    "dead_links": ({
        "key": str, "reason": str, "first_dead": float, "last_dead": float,
    }, "key"),
}
"""The cache's tables: columns and primary key; created when missing (a table added
later appears in an old cache the first time it is opened for writing)."""


@contextlib.contextmanager
def damage_is_cache_error(path: Path) -> Iterator[None]:
    """A damaged file surfaces as CacheError (exit 2), never a traceback or a new file."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or \
                "disk is full" in str(exc):
            raise DiskFull(disk_full_message("cache", path, "the cache is intact, free some "
                                             "space and run again")) from None
        if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc):
            raise  # locked, busy, disk I/O: not the file's content
        raise CacheError(f"{path}: the cache is damaged ({exc}); it was left as it is: "
                         "restore a backup or move it aside") from None


class ResultCache:
    """Stage results keyed by bookmark; safe to open from several processes."""

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if str(path) != ":memory:":
            if readonly and not self.path.exists():
                raise CacheError(f"{self.path}: no cache here yet (run something first)")
            try:
                # Page text and summaries of private bookmarks: the owner's eyes only.
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if not readonly:
                    with contextlib.suppress(FileExistsError):
                        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                         0o600))
            except OSError as exc:
                raise CacheError(f"{self.path}: cannot create it: {exc}") from None
        try:
            uri = f"file:{self.path}?mode=ro" if readonly else str(self.path)
            conn = sqlite3.connect(
                uri, uri=readonly, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout=30000")
            if not readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise CacheError(
                f"{self.path}: not a usable cache ({exc}); move it aside or pass --cache PATH"
            ) from None
        self.conn = conn
        if not readonly:
            self._ensure_schema()
        self._pending: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._pending_outcomes: dict[str, dict[str, StageOutcome]] = {}
        self._pending_records: dict[str, tuple[Any, ...]] = {}
        self._pending_dead: dict[str, tuple[Any, ...] | None] = {}
        """key → (key, reason, seen_at, seen_at) when a fresh fetch found it dead; None: alive."""
        self._pending_seen: dict[str, float] = {}
        self._last_flush = time.monotonic()

    # ------------------------------------------------------------------ schema
    def _ensure_schema(self) -> None:
        try:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                version = self.conn.execute("PRAGMA user_version").fetchone()[0]
                have = {name for (name,) in self.conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'")}
                missing = [name for name in _TABLES if name not in have]
                if missing:
                    # sqlite_utils (and numpy, which it loads) only when a table is created:
                    # a run over an existing cache starts without them (issue 23).
                    import sqlite_utils

                    db = sqlite_utils.Database(self.conn)
                    for name in missing:
                        columns, pk = _TABLES[name]
                        db.table(name).create(columns, pk=pk, if_not_exists=True)
                    if "dead_links" in missing and "results" in have:
                        self._backfill_dead()
                self.conn.execute(
                    "CREATE INDEX IF NOT EXISTS results_status ON results(stage, status, reason)"
                )
                # For the report (issue 18): a run's bookmarks, and the stage table of
                # the whole cache read from this index alone (not the rows' page text).
                self.conn.execute(
                    "CREATE INDEX IF NOT EXISTS bookmarks_last_seen ON bookmarks(last_seen)")
                self.conn.execute(
                    "CREATE INDEX IF NOT EXISTS results_timing "
                    "ON results(stage, status, duration_ms, attempts, run_id)")
                if 0 < version < SCHEMA_VERSION:
                    self._rekey()
                self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"{self.path}: not a usable cache ({exc})") from None

    def _backfill_dead(self) -> None:
        """An old cache's dead links, from its fetch results: the fetch that found each
        dead is both the first and the last time it was seen dead."""
        rows = self.conn.execute(
            "SELECT key, reason, error, finished_at FROM results "
            "WHERE stage = 'fetch' AND status = 'failed'").fetchall()
        self.conn.executemany(
            "INSERT OR IGNORE INTO dead_links (key, reason, first_dead, last_dead) "
            "VALUES (?, ?, ?, ?)",
            [(key, reason, at, at) for key, reason, error, at in rows if is_dead(reason, error)])

    def _rekey(self) -> None:
        """Move every result to its URL's key under today's normalization (once, on open).

        Results keep their rows; when two old keys now name the same URL, the first one
        moved wins. A bookmark whose stored URL is no longer valid keeps its old key.
        """
        rows = self.conn.execute("SELECT key, url FROM bookmarks").fetchall()
        for old, url in rows:
            try:
                normalized = normalize_url(resolve_url(url)) if isinstance(url, str) else None
            except InvalidURL:
                continue
            if normalized is None or (new := bookmark_key(normalized)) == old:
                continue
            self.conn.execute("UPDATE OR IGNORE results SET key=? WHERE key=?", (new, old))
            self.conn.execute("DELETE FROM results WHERE key=?", (old,))
            self.conn.execute("UPDATE OR IGNORE bookmarks SET key=?, normalized=? WHERE key=?",
                              (new, normalized, old))
            self.conn.execute("DELETE FROM bookmarks WHERE key=?", (old,))

    # ------------------------------------------------------------------- runs
    def start_run(self, source: str, fmt: str, options: dict[str, Any]) -> int:
        with damage_is_cache_error(self.path):
            cur = self.conn.execute(
                "INSERT INTO runs (source, format, options, started_at, status, host, pid) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (source, fmt, dumps(options), time.time(), socket.gethostname(), os.getpid()),
            )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, counts: dict[str, Any]) -> None:
        self.flush()
        cols = ("total", "ok", "partial", "failed", "cached", "issues", "wall_seconds")
        with damage_is_cache_error(self.path):
            self.conn.execute(
                "UPDATE runs SET finished_at=?, status=?, "
                + ", ".join(f"{c}=?" for c in cols)
                + " WHERE id=?",
                (time.time(), status, *(counts.get(c, 0) for c in cols), run_id),
            )

    # ----------------------------------------------------------------- lookup
    def lookup(
        self, keys: Sequence[str], *, with_text: bool = False
    ) -> dict[str, dict[str, StageOutcome]]:
        """Every cached stage outcome for ``keys`` (pending writes included)."""
        found: dict[str, dict[str, StageOutcome]] = {}
        text_col = "text" if with_text else "NULL"
        wanted = [k for k in dict.fromkeys(keys) if k not in self._pending_outcomes]
        for i in range(0, len(wanted), _LOOKUP_CHUNK):
            chunk = wanted[i : i + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            with damage_is_cache_error(self.path):
                rows = self.conn.execute(
                    "SELECT key, stage, status, reason, error, attempts, duration_ms, "
                    f"finished_at, fingerprint, output, {text_col}, run_id FROM results "
                    f"WHERE key IN ({marks})",
                    chunk,
                ).fetchall()
            for key, stage, status, reason, error, attempts, dur, fin, fp, out, text, run in rows:
                found.setdefault(key, {})[stage] = StageOutcome(
                    status=status,
                    output=json.loads(out) if out else {},
                    reason=reason,
                    message=error,
                    attempts=attempts or 1,
                    duration=(dur or 0) / 1000,
                    fingerprint=fp or "",
                    finished_at=fin or 0.0,
                    text=text,
                    cached=True,
                    run_id=run,
                )
        for key in keys:
            pending = self._pending_outcomes.get(key)
            if pending is not None:
                found[key] = {
                    s: StageOutcome(
                        o.status, o.output, o.reason, o.message, o.attempts, o.duration,
                        o.fingerprint, o.finished_at, o.text, True, None, o.run_id,
                    )
                    for s, o in pending.items()
                }
        return found

    # ------------------------------------------------------------------ write
    def put(
        self,
        bookmark: Bookmark,
        outcomes: dict[str, StageOutcome],
        run_id: int,
        source: str = "",
    ) -> None:
        """Queue the fresh outcomes of one bookmark; committed by :meth:`flush`."""
        fresh = {s: o for s, o in outcomes.items() if not o.cached}
        now = time.time()
        self._pending_records[bookmark.key] = (
            bookmark.key, bookmark.url, bookmark.normalized, dumps(bookmark.record),
            source, bookmark.position, now, now,
        )
        for o in fresh.values():
            o.run_id = run_id
        if fresh:
            merged = dict(self._pending_outcomes.get(bookmark.key, {}))
            merged.update(outcomes)
            self._pending_outcomes[bookmark.key] = merged
        fetched = fresh.get("fetch")
        if fetched is not None:
            seen = fetched.finished_at or now
            self._pending_dead[bookmark.key] = (
                (bookmark.key, fetched.reason, seen, seen)
                if fetched.status == "failed" and is_dead(fetched.reason, fetched.message)
                else None)
        for stage, o in fresh.items():
            self._pending[(bookmark.key, stage)] = (
                bookmark.key, stage, o.status, o.reason, o.message, o.attempts,
                int(o.duration * 1000), o.finished_at, o.fingerprint,
                dumps(o.output) if o.output else None, o.text, run_id,
            )
        self.maybe_flush()

    def seen(self, keys: Iterable[str]) -> None:
        """Note that this run saw these bookmarks (answered from the cache): ``last_seen``."""
        now = time.time()
        self._pending_seen.update(dict.fromkeys(keys, now))
        self.maybe_flush()

    def maybe_flush(self) -> None:
        if len(self._pending) + len(self._pending_records) + len(self._pending_seen) \
                >= _FLUSH_ROWS or (
            (self._pending or self._pending_records or self._pending_seen)
            and time.monotonic() - self._last_flush >= _FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        """Commit everything queued, in one transaction."""
        self._last_flush = time.monotonic()
        if not self._pending and not self._pending_records and not self._pending_seen:
            return
        rows = list(self._pending.values())
        records = list(self._pending_records.values())
        with damage_is_cache_error(self.path), self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            if self._pending_seen:
                self.conn.executemany("UPDATE bookmarks SET last_seen = ? WHERE key = ?",
                                      [(t, k) for k, t in self._pending_seen.items()])
            if rows:
                self.conn.executemany(
                    f"INSERT OR REPLACE INTO results ({', '.join(_RESULT_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_RESULT_COLUMNS))})",
                    rows,
                )
            if records:
                self.conn.executemany(
                    "INSERT INTO bookmarks (key, url, normalized, record, source, position, "
                    "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET url=excluded.url, record=excluded.record, "
                    "source=excluded.source, position=excluded.position, "
                    "last_seen=excluded.last_seen",
                    records,
                )
            if self._pending_dead:
                self._write_dead()
        self._pending.clear()
        self._pending_dead.clear()
        self._pending_outcomes.clear()
        self._pending_records.clear()
        self._pending_seen.clear()

    def _write_dead(self) -> None:
        """First and last seen dead: a dead fetch keeps the first time and moves the last;
        a fetch that is not dead ends the streak (the next death starts a new one)."""
        dead = [row for row in self._pending_dead.values() if row is not None]
        alive = [(key,) for key, row in self._pending_dead.items() if row is None]
        if dead:
            self.conn.executemany(
                "INSERT INTO dead_links (key, reason, first_dead, last_dead) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "reason=excluded.reason, last_dead=max(last_dead, excluded.last_dead)", dead)
        if alive:
            self.conn.executemany("DELETE FROM dead_links WHERE key = ?", alive)

    # ---------------------------------------------------------------- queries
    def iter_rows(self, sql: str, params: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
        """Rows of an arbitrary read query as dicts (for reports)."""
        with damage_is_cache_error(self.path):
            cur = self.conn.execute(sql, tuple(params))
            names = [d[0] for d in cur.description]
            for row in cur:
                yield dict(zip(names, row, strict=True))

    def recent_tags(self, stage: str = "summarize", limit: int = 5000) -> list[str]:
        """Tags of the ``limit`` most recent ok results of ``stage`` (a vocabulary seed)."""
        tags: list[str] = []
        try:
            rows = list(self.iter_rows(
                "SELECT output FROM results WHERE stage = ? AND status = 'ok' "
                "ORDER BY finished_at DESC LIMIT ?", (stage, limit)))
        except sqlite3.Error:  # an old or damaged cache only costs the tag hints
            return tags
        for row in rows:
            try:
                found = json.loads(row["output"] or "{}").get("tags") or []
            except (ValueError, AttributeError):
                continue
            tags.extend(t for t in found if isinstance(t, str))
        return tags

    def close(self) -> None:
        try:
            if not self.readonly:
                self.flush()
        finally:
            self.conn.close()

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
