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

import sqlite_utils

from .errors import CacheError, DiskFull, disk_full_message
from .models import Bookmark, StageOutcome
from .records import dumps

__all__ = ["ResultCache"]

_LOOKUP_CHUNK = 500
_FLUSH_ROWS = 500
_FLUSH_SECONDS = 0.5
SCHEMA_VERSION = 1

_RESULT_COLUMNS = (
    "key", "stage", "status", "reason", "error", "attempts", "duration_ms",
    "finished_at", "fingerprint", "output", "text", "run_id",
)


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
        self.db = sqlite_utils.Database(conn)
        if not readonly:
            self._ensure_schema()
        self._pending: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._pending_outcomes: dict[str, dict[str, StageOutcome]] = {}
        self._pending_records: dict[str, tuple[Any, ...]] = {}
        self._pending_seen: dict[str, float] = {}
        self._last_flush = time.monotonic()

    # ------------------------------------------------------------------ schema
    def _ensure_schema(self) -> None:
        try:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                self.db.table("results").create(
                    {
                        "key": str, "stage": str, "status": str, "reason": str, "error": str,
                        "attempts": int, "duration_ms": int, "finished_at": float,
                        "fingerprint": str, "output": str, "text": str, "run_id": int,
                    },
                    pk=("key", "stage"),
                    if_not_exists=True,
                )
                self.db.table("bookmarks").create(
                    {
                        "key": str, "url": str, "normalized": str, "record": str,
                        "source": str, "position": int, "first_seen": float,
                        "last_seen": float,
                    },
                    pk="key",
                    if_not_exists=True,
                )
                self.db.table("runs").create(
                    {
                        "id": int, "source": str, "format": str, "options": str,
                        "started_at": float, "finished_at": float, "status": str,
                        "total": int, "ok": int, "partial": int, "failed": int,
                        "cached": int, "issues": int, "wall_seconds": float,
                        "host": str, "pid": int,
                    },
                    pk="id",
                    if_not_exists=True,
                )
                self.conn.execute(
                    "CREATE INDEX IF NOT EXISTS results_status ON results(stage, status, reason)"
                )
                self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"{self.path}: not a usable cache ({exc})") from None

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
        self._pending.clear()
        self._pending_outcomes.clear()
        self._pending_records.clear()
        self._pending_seen.clear()

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
