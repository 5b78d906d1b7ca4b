"""Real-world inputs (issue 16): cache keys migrated, damage kept local, exit statuses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bookmark_enrich.cache import SCHEMA_VERSION, ResultCache
from bookmark_enrich.models import Bookmark, StageOutcome
from bookmark_enrich.urls import bookmark_key, normalize_url, resolve_url


def _old_cache(path: Path, rows: list[tuple[str, str]]) -> None:
    """A version-1 cache whose keys came from the old normalization."""
    with ResultCache(path) as cache:
        run = cache.start_run("x", "text", {})
        for old_key, url in rows:
            bm = Bookmark(url=url, normalized=url, key=old_key, record={"url": url}, position=1)
            cache.put(bm, {"fetch": StageOutcome.ok({"http_status": 200})}, run)
        cache.flush()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()


def test_an_old_cache_is_rekeyed_once_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    urls = ["https://Example.com/a?utm_source=x#f", "https://example.com/page?kr1"]
    _old_cache(path, [("old-a", urls[0]), ("old-b", urls[1])])
    with ResultCache(path) as cache:
        new_keys = [bookmark_key(normalize_url(resolve_url(u))) for u in urls]
        found = cache.lookup(new_keys)
        assert set(found) == set(new_keys)  # nothing already enriched is fetched again
        assert cache.lookup(["old-a", "old-b"]) == {}
        assert cache.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        normalized = {r["normalized"] for r in cache.iter_rows("SELECT normalized FROM bookmarks")}
        assert normalized == {"https://example.com/a", "https://example.com/page?kr1"}
