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


# ----------------------------------------------------------------- readers
def _records(path: Path, **kw: object) -> list[dict[str, object]]:
    from bookmark_enrich.sources import iter_bookmarks, open_source

    src = open_source(str(path), **kw)  # type: ignore[arg-type]
    try:
        return [b.record for b in iter_bookmarks(src) if isinstance(b, Bookmark)]
    finally:
        src.close()


def test_netscape_tags_are_a_list(tmp_path: Path) -> None:
    path = tmp_path / "bookmarks.html"
    path.write_text('<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p>\n'
                    '<DT><A HREF="https://www.imdb.com/title/tt0111161/" '
                    'TAGS="imdb,movie, towatch">The Shawshank Redemption</A>\n</DL><p>\n')
    [record] = _records(path)
    assert record["tags"] == ["imdb", "movie", "towatch"]


def test_a_url_broken_over_lines_is_read_as_a_browser_reads_it(tmp_path: Path) -> None:
    from bookmark_enrich.sources import iter_bookmarks, open_source

    path = tmp_path / "pocket.csv"
    path.write_bytes(b'title,url,time_added,tags,status\r\n'
                     b'Long,"https://example.com/a/very/long/\r\npath?x=1",1700000000,,unread\r\n')
    src = open_source(str(path))
    try:
        [bookmark] = list(iter_bookmarks(src))
    finally:
        src.close()
    assert isinstance(bookmark, Bookmark)
    assert bookmark.url == "https://example.com/a/very/long/path?x=1"
