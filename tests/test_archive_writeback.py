"""What is gone, written down (issue 19): the dead-link history, a record's `dead`,
and writeback of the snapshot URL into a field the user names (`--archive-field`).

The archive is the stand-in of tests/servers/archive.py; names that must not
resolve fail in the offline resolver. No test asks a real archive or resolver.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bookmark_enrich.cache import ResultCache
from bookmark_enrich.cli import app
from bookmark_enrich.models import Bookmark, StageOutcome
from bookmark_enrich.reports import dead_bookmarks
from tests.helpers import CORE_ONLY, by_url, run_library
from tests.servers.archive import ArchiveServer
from tests.servers.pages import PageServer, article_html
from tests.servers.postgres import PostgresSchema

runner = CliRunner()
LOST = "http://no-such-host.example.test/gone-for-good"


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env=CORE_ONLY)


def mix(pages: PageServer, archive: ArchiveServer, tag: str) -> dict[str, str]:
    """A live page, a 410 the archive has a snapshot of, and a name that never resolves."""
    urls = {"live": pages.url(f"/article/{tag}-alive"), "rescued": pages.url(f"/status/410/{tag}"),
            "lost": f"{LOST}-{tag}"}
    archive.add(urls["rescued"], article_html(f"{tag} archived"))
    return urls


def snapshot_of(archive: ArchiveServer, url: str) -> str:
    return f"{archive.base}/web/20150321120000/{url}"


def dead_urls() -> dict[str, bool]:
    out = invoke("dead", "--json").stdout
    return {r["url"]: r["rescued"] for r in map(json.loads, out.splitlines())}


# ------------------------------------------------------------ the record
def test_a_dead_page_record_says_dead_and_keeps_its_enrichment(
        pages: PageServer, archive: ArchiveServer) -> None:
    urls = mix(pages, archive, "says")
    records, stats = run_library(list(urls.values()), retries=0)
    got = by_url(records)
    assert got[urls["live"]]["dead"] is False
    rescued, lost = got[urls["rescued"]], got[urls["lost"]]
    assert rescued["dead"] is True and rescued["status"] == "partial"
    assert rescued["enrichment"]["title"] and rescued["enrichment"]["archived"]
    assert lost["dead"] is True and lost["status"] == "failed"
    # Counts keep their meaning: a rescued dead page is partial, a lost one failed.
    assert (stats.ok, stats.partial, stats.failed) == (1, 1, 1)


# ---------------------------------------------------- first and last seen dead
def _bookmark(url: str) -> Bookmark:
    return Bookmark(url=url, normalized=url, key="k-" + url, record={"url": url}, position=1)


def _fetch(cache: ResultCache, bookmark: Bookmark, outcome: StageOutcome, run: int) -> None:
    cache.put(bookmark, {"fetch": outcome}, run)
    cache.flush()


def test_first_and_last_seen_dead_are_kept_until_the_page_comes_back(tmp_path: Path) -> None:
    page = _bookmark("http://example.test/a")
    with ResultCache(tmp_path / "c.sqlite") as cache:
        _fetch(cache, page, StageOutcome.failed("not_found", "404", finished_at=1_000.0), 1)
        _fetch(cache, page, StageOutcome.failed("gone", "410", finished_at=2_000.0), 2)
        (row,) = dead_bookmarks(cache)
        assert row["reason"] == "gone"
        first, last = row["first_seen_dead"], row["last_seen_dead"]
        assert first < last
        # A timeout says nothing about death, yet the page was not seen dead: not listed,
        # and the streak ends; the next death starts a new one.
        _fetch(cache, page, StageOutcome.failed("timeout", "slow", finished_at=3_000.0), 3)
        assert list(dead_bookmarks(cache)) == []
        _fetch(cache, page, StageOutcome.failed("not_found", "404", finished_at=4_000.0), 4)
        (row,) = dead_bookmarks(cache)
        assert row["first_seen_dead"] == row["last_seen_dead"] > last
        _fetch(cache, page, StageOutcome.ok({"http_status": 200}, finished_at=5_000.0), 5)
        assert list(dead_bookmarks(cache)) == []
        assert cache.conn.execute("SELECT count(*) FROM dead_links").fetchone() == (0,)


def test_an_old_cache_gains_the_history_from_its_fetch_results(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    dead, alive = _bookmark("http://example.test/dead"), _bookmark("http://example.test/ok")
    with ResultCache(path) as cache:
        _fetch(cache, dead, StageOutcome.failed("dns_error", "no such name",
                                                finished_at=1_000.0), 1)
        _fetch(cache, alive, StageOutcome.ok({}, finished_at=1_000.0), 1)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE dead_links")  # as a cache from before the table was
    conn.commit()
    conn.close()
    with ResultCache(path, readonly=True) as cache:  # reports read an old cache as it is
        (row,) = dead_bookmarks(cache)
        assert row["first_seen_dead"] == row["last_seen_dead"]
    with ResultCache(path) as cache:  # opened for writing: the table appears, filled
        assert cache.conn.execute("SELECT key, first_dead, last_dead FROM dead_links"
                                  ).fetchall() == [(dead.key, 1_000.0, 1_000.0)]


def test_dead_lists_first_and_last_seen_across_runs(pages: PageServer, archive: ArchiveServer,
                                                    tmp_path: Path) -> None:
    urls = mix(pages, archive, "runs")
    source = tmp_path / "urls.txt"
    source.write_text("\n".join(urls.values()) + "\n")
    assert invoke("run", str(source), "-q", "--retries", "0").exit_code == 1
    first = {r["url"]: r for r in map(json.loads, invoke("dead", "--json").stdout.splitlines())}
    assert set(first) == {urls["rescued"], urls["lost"]}
    assert all(r["first_seen_dead"] == r["last_seen_dead"] for r in first.values())
    with ResultCache(tmp_path / "cache.sqlite") as cache:  # the first run, a while ago
        cache.conn.execute("UPDATE dead_links SET first_dead = first_dead - 86400, "
                           "last_dead = last_dead - 86400")
    assert invoke("run", str(source), "-q", "--retries", "0", "--retry-failed").exit_code == 1
    again = {r["url"]: r for r in map(json.loads, invoke("dead", "--json").stdout.splitlines())}
    for url, row in again.items():
        assert row["first_seen_dead"] < first[url]["first_seen_dead"]
        assert row["last_seen_dead"] >= first[url]["last_seen_dead"]


# ------------------------------------------------------------- writeback
def _jsonl(tmp_path: Path, urls: dict[str, str]) -> Path:
    path = tmp_path / "b.jsonl"
    path.write_text("".join(json.dumps({"url": u, "title": f"mine {k}"}) + "\n"
                            for k, u in urls.items()))
    return path


def test_jsonl_writeback_fills_the_archive_field_only(pages: PageServer, archive: ArchiveServer,
                                                      tmp_path: Path) -> None:
    urls = mix(pages, archive, "jsonl")
    path = _jsonl(tmp_path, urls)
    result = invoke("run", str(path), "-q", "--retries", "0", "--writeback",
                    "--archive-field", "archive_url")
    assert result.exit_code == 1, result.stderr
    assert dead_urls() == {urls["rescued"]: True, urls["lost"]: False}
    got = {r["url"]: r for r in map(json.loads, path.read_text().splitlines())}
    assert set(got) == set(urls.values())  # every URL is the user's, unchanged
    assert got[urls["rescued"]]["archive_url"] == snapshot_of(archive, urls["rescued"])
    assert "archive_url" not in got[urls["live"]] and "archive_url" not in got[urls["lost"]]
    assert all(r["title"].startswith("mine") for r in got.values())


def test_csv_writeback_fills_the_archive_column_only(pages: PageServer, archive: ArchiveServer,
                                                     tmp_path: Path) -> None:
    urls = mix(pages, archive, "csv")
    path = tmp_path / "b.csv"
    path.write_text("url,title,archived\n" + "".join(f"{u},mine {k},\n"
                                                      for k, u in urls.items()))
    assert invoke("run", str(path), "-q", "--retries", "0").exit_code == 1
    before = path.read_text()
    dry = invoke("writeback", str(path), "--dry-run", "--archive-field", "archived")
    assert dry.exit_code == 0 and path.read_text() == before
    (line,) = [line for line in dry.stdout.splitlines() if line.endswith(", archived")]
    assert line.startswith("line 3: add enrich_status")  # the rescued one's row
    # The writeback command applies the cache; the column exists and is reused.
    result = invoke("writeback", str(path), "--archive-field", "archived")
    assert result.exit_code == 0, result.stderr
    rows = {r["url"]: r for r in csv.DictReader(io.StringIO(path.read_text()))}
    assert set(rows) == set(urls.values())
    assert rows[urls["rescued"]]["archived"] == snapshot_of(archive, urls["rescued"])
    assert rows[urls["live"]]["archived"] == rows[urls["lost"]]["archived"] == ""
    assert list(rows[urls["live"]]).count("archived") == 1


def test_netscape_writeback_sets_an_attribute(pages: PageServer, archive: ArchiveServer,
                                              tmp_path: Path) -> None:
    urls = mix(pages, archive, "html")
    path = tmp_path / "b.html"
    path.write_text("<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p>\n" + "".join(
        f'<DT><A HREF="{u}">mine {k}</A>\n' for k, u in urls.items()) + "</DL><p>\n")
    result = invoke("run", str(path), "-q", "--retries", "0", "--writeback",
                    "--archive-field", "archive")
    assert result.exit_code == 1, result.stderr
    lines = {k: next(line for line in path.read_text().splitlines() if u in line)
             for k, u in urls.items()}
    assert f'ARCHIVE="{snapshot_of(archive, urls["rescued"])}"' in lines["rescued"]
    assert "ARCHIVE=" not in lines["live"] and "ARCHIVE=" not in lines["lost"]


def _table(path: Path, urls: dict[str, str], *, url_column: str = "url") -> str:
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE b (id INTEGER PRIMARY KEY, {url_column} TEXT, note TEXT)")
    conn.executemany(f"INSERT INTO b ({url_column}, note) VALUES (?, ?)",
                     [(u, k) for k, u in urls.items()])
    conn.commit()
    conn.close()
    return f"sqlite:///{path}?table=b"


def test_sqlite_writeback_fills_the_archive_column_only(pages: PageServer,
                                                        archive: ArchiveServer,
                                                        tmp_path: Path) -> None:
    urls = mix(pages, archive, "sqlite")
    db = _table(tmp_path / "b.db", urls)
    result = invoke("run", db, "-q", "--retries", "0", "--writeback", "--columns", "summary",
                    "--archive-field", "wayback", "--create-columns")
    assert result.exit_code == 1, result.stderr
    conn = sqlite3.connect(tmp_path / "b.db")
    got = {note: (url, wayback) for url, note, wayback in
           conn.execute("SELECT url, note, wayback FROM b")}
    conn.close()
    assert got == {"live": (urls["live"], None),
                   "rescued": (urls["rescued"], snapshot_of(archive, urls["rescued"])),
                   "lost": (urls["lost"], None)}


@pytest.mark.postgres
def test_postgres_writeback_fills_the_archive_column(pg_schema: PostgresSchema,
                                                     pages: PageServer,
                                                     archive: ArchiveServer) -> None:
    urls = mix(pages, archive, "pg")
    table = pg_schema.table("b")
    pg_schema.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, url text, summary text)")
    for i, (_, u) in enumerate(urls.items(), 1):
        pg_schema.execute(f"INSERT INTO {table} VALUES (%s, %s)", (i, u))
    result = invoke("run", f"{pg_schema.url}?table={table}", "-q", "--retries", "0",
                    "--writeback", "--columns", "summary", "--archive-field", "archive_url",
                    "--create-columns")
    assert result.exit_code == 1, result.stderr
    got = dict(pg_schema.execute(f"SELECT url, archive_url FROM {table}").fetchall())
    assert got == {urls["live"]: None, urls["lost"]: None,
                   urls["rescued"]: snapshot_of(archive, urls["rescued"])}


@pytest.mark.parametrize("command", ["run", "writeback"])
def test_the_url_field_is_never_the_archive_field(tmp_path: Path, command: str) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"url": "http://127.0.0.1:9/x"}\n')
    args = [command, str(path), "--archive-field", "URL"]
    result = invoke(*([*args, "--writeback"] if command == "run" else args))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: --archive-field URL: that is the bookmarks' URL field; name another field "
        "(e.g. archive_url)"]
    assert path.read_text() == '{"url": "http://127.0.0.1:9/x"}\n'


def test_a_table_url_column_is_never_the_archive_column(tmp_path: Path) -> None:
    db = _table(tmp_path / "b.db", {"a": "http://127.0.0.1:9/x"}, url_column="address")
    result = invoke("run", db, "--url-column", "address", "--writeback",
                    "--archive-field", "address")
    assert result.exit_code == 2 and "URL field" in result.stderr
    result = invoke("run", db, "--url-column", "address", "--writeback",
                    "--archive-field", "id")
    assert result.exit_code == 2 and "id column" in result.stderr
    result = invoke("run", db, "--url-column", "address", "--writeback",
                    "--archive-field", 'x" onclick="y')
    assert result.exit_code == 2 and "use letters, digits" in result.stderr
    result = invoke("retry", "--writeback", "--archive-field", " ")
    assert result.exit_code == 2 and "needs a field name" in result.stderr


# ---------------------------------------------------------------- report
def test_the_report_shows_dead_links_and_whether_each_was_rescued(
        pages: PageServer, archive: ArchiveServer, tmp_path: Path) -> None:
    urls = mix(pages, archive, "report")
    source = tmp_path / "urls.txt"
    source.write_text("\n".join(urls.values()) + "\n")
    assert invoke("run", str(source), "-q", "--retries", "0").exit_code == 1
    target = tmp_path / "report.html"
    assert invoke("report", "-o", str(target)).exit_code == 0
    html = target.read_text()
    section = html.split('<section id="dead">')[1].split("</section>")[0]
    assert "<b>2</b><span>dead</span>" in section
    assert "<b>1</b><span>rescued from an archive</span>" in section
    rows = {url: row for row in section.split("<tr>")[2:]
            for url in urls.values() if url in row}
    assert set(rows) == {urls["rescued"], urls["lost"]}
    snapshot = snapshot_of(archive, urls["rescued"])
    assert f'<a href="{snapshot}" rel="noopener noreferrer nofollow">' in rows[urls["rescued"]]
    assert "gone" in rows[urls["rescued"]] and "dns_error" in rows[urls["lost"]]
    assert '<span class="dead">no</span>' in rows[urls["lost"]]
    # A host whose name no longer resolves is a dead host in the failures' host table.
    failures = html.split('<section id="failures">')[1].split("</section>")[0]
    host = next(r for r in failures.split("<tr>") if "no-such-host.example.test" in r)
    assert '<span class="dead">dead</span>' in host
