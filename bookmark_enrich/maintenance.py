"""Cache upkeep: online backup, vacuum, export of the records, pruning.

Backups use SQLite's online backup API in one step: in WAL mode that reads a
consistent snapshot while another run keeps writing, and never blocks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import ResultCache, damage_is_cache_error
from .errors import CacheError, UsageError
from .fileio import replace_file
from .models import Bookmark
from .reports import FailureFilter
from .settings import Settings

if TYPE_CHECKING:
    from .stages import Stage

__all__ = ["backup", "export_records", "open_reader", "prune_failed", "prune_older", "vacuum"]

_CHUNK = 500


def open_reader(path: Path) -> ResultCache:
    """The cache opened read-only for reports; a file that is not our cache is a CacheError."""
    cache = ResultCache(path, readonly=True)
    tables = {r["name"] for r in cache.iter_rows(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    missing = {"results", "bookmarks", "runs"} - tables
    if missing:
        cache.close()
        raise CacheError(f"{path}: not a bookmark-enrich cache (no {', '.join(sorted(missing))} "
                         "table)")
    return cache


def backup(cache_path: Path, target: Path) -> dict[str, Any]:
    """Copy the cache to ``target`` (atomically) and verify the copy's integrity."""
    if not cache_path.exists():
        raise CacheError(f"{cache_path}: no cache here yet (run something first)")
    if target.resolve() == cache_path.resolve():
        raise UsageError("the backup must go to another file than the cache itself")
    if target.is_dir():
        target = target / cache_path.name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part",
                                        dir=target.parent)
    except OSError as exc:
        raise UsageError(f"{target}: cannot write there: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        src = sqlite3.connect(cache_path, timeout=30)
        try:
            with damage_is_cache_error(cache_path):
                src.execute("SELECT count(*) FROM sqlite_master").fetchone()
                dst = sqlite3.connect(tmp)
                try:
                    src.backup(dst)  # one step: a consistent snapshot, writers go on
                    dst.execute("PRAGMA journal_mode=DELETE")
                    verdict = [r[0] for r in dst.execute("PRAGMA integrity_check(5)")]
                finally:
                    dst.close()
        finally:
            src.close()
        if verdict != ["ok"]:
            raise CacheError(f"{cache_path}: the copy fails its integrity check "
                             f"({'; '.join(verdict)}); the cache itself may be damaged")
        replace_file(tmp, target)
    except sqlite3.DatabaseError as exc:
        raise CacheError(f"{cache_path}: not a usable cache ({exc})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return {"path": str(target), "bytes": target.stat().st_size, "integrity": "ok"}


def vacuum(cache_path: Path) -> tuple[int, int]:
    """Rebuild the file to drop free pages; returns (bytes before, bytes after)."""
    def size() -> int:
        return sum(p.stat().st_size for p in (cache_path, cache_path.with_name(
            cache_path.name + "-wal")) if p.exists())

    with ResultCache(cache_path) as cache:
        before = size()
        with damage_is_cache_error(cache_path):
            cache.conn.execute("VACUUM")
            cache.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return before, size()


def prune_older(cache: ResultCache, seconds: float) -> dict[str, int]:
    """Delete results, bookmarks and runs not touched for ``seconds``."""
    cutoff = time.time() - seconds
    with damage_is_cache_error(cache.path), cache.conn:
        cache.conn.execute("BEGIN IMMEDIATE")
        results = cache.conn.execute("DELETE FROM results WHERE finished_at < ?",
                                     (cutoff,)).rowcount
        bookmarks = cache.conn.execute(
            "DELETE FROM bookmarks WHERE last_seen < ? AND key NOT IN "
            "(SELECT key FROM results)", (cutoff,)).rowcount
        runs = cache.conn.execute("DELETE FROM runs WHERE started_at < ? AND status != "
                                  "'running'", (cutoff,)).rowcount
        cache.conn.execute("DELETE FROM dead_links WHERE key NOT IN (SELECT key FROM bookmarks)")
    return {"results": results, "bookmarks": bookmarks, "runs": runs}


def prune_failed(cache: ResultCache, flt: FailureFilter) -> dict[str, int]:
    """Delete failed results (the next run redoes them and what depends on them)."""
    cond, params = flt.where("results")
    with damage_is_cache_error(cache.path), cache.conn:
        cache.conn.execute("BEGIN IMMEDIATE")
        results = cache.conn.execute(f"DELETE FROM results WHERE {cond}", params).rowcount
    return {"results": results}


def count_matching(cache: ResultCache, seconds: float | None = None,
                   flt: FailureFilter | None = None) -> int:
    """How many result rows a prune would delete (for the confirmation prompt)."""
    if flt is not None:
        cond, params = flt.where("r")
        sql = f"SELECT count(*) AS n FROM results r WHERE {cond}"
    else:
        sql, params = "SELECT count(*) AS n FROM results WHERE finished_at < ?", [
            time.time() - (seconds or 0)]
    return int(next(cache.iter_rows(sql, params))["n"])


def export_records(cache: ResultCache, settings: Settings,
                   include_text: bool = False) -> Iterator[dict[str, Any]]:
    """Every cached bookmark as an output record (the shape `run` prints), in key order."""
    from .pipeline import build_record  # the stages: only export needs them, not the reports
    from .stages import build_stages

    stages: list[Stage] = build_stages(settings)
    try:
        after = ""
        while True:
            rows = list(cache.iter_rows(
                "SELECT key, url, normalized, record, position FROM bookmarks WHERE key > ? "
                "ORDER BY key LIMIT ?", (after, _CHUNK)))
            if not rows:
                return
            after = rows[-1]["key"]
            found = cache.lookup([r["key"] for r in rows], with_text=include_text)
            for row in rows:
                outcomes = found.get(row["key"])
                if not outcomes:
                    continue
                record = json.loads(row["record"]) if row["record"] else {}
                bookmark = Bookmark(row["url"], row["normalized"], row["key"], record,
                                    row["position"] or 0)
                yield build_record(bookmark, outcomes, stages, include_text=include_text,
                                   force_cached=True)
    finally:
        async def close() -> None:
            for stage in stages:
                await stage.aclose()

        asyncio.run(close())
