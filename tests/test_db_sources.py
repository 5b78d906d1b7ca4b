"""Database tables as SOURCE: SQLite and a real PostgreSQL, keyset pages, bad input."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bookmark_enrich.cli import app
from bookmark_enrich.sources import RawRecord, open_source
from bookmark_enrich.sources import db as dbmod
from tests.helpers import CORE_ONLY, jsonl
from tests.servers.pages import PageServer
from tests.servers.postgres import PostgresSchema

runner = CliRunner()


def make_sqlite(path: Path, urls: list[str], *, table: str = "bookmarks") -> Path:
    conn = sqlite3.connect(path)
    conn.execute(f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY, url TEXT, title TEXT)')
    conn.executemany(f'INSERT INTO "{table}" (url, title) VALUES (?, ?)',
                     [(u, f"Ünïcødé {i} 東京") for i, u in enumerate(urls, 1)])
    conn.commit()
    conn.close()
    return path


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args), env=CORE_ONLY, catch_exceptions=False)
    return result


def one_line_error(result: Any) -> str:
    err = result.stderr
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_sqlite_table_streams_rows_in_id_order(tmp_path: Path, pages: PageServer) -> None:
    urls = [pages.url(f"/article/db{i}") for i in range(3)]
    make_sqlite(tmp_path / "bm.db", urls)
    result = invoke("run", f"sqlite:///{tmp_path}/bm.db", "--table", "bookmarks", "-q")
    assert result.exit_code == 0, result.stderr
    records = sorted(jsonl(result.stdout.encode()), key=lambda r: r["position"])
    assert [r["url"] for r in records] == urls
    assert records[0]["record"] == {"id": 1, "url": urls[0], "title": "Ünïcødé 1 東京"}
    assert records[0]["enrichment"]["title"].startswith("Tending a city garden")


def test_options_as_query_parameters_and_relative_path(tmp_path: Path, pages: PageServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    conn = sqlite3.connect(tmp_path / "rel.db")
    conn.execute("CREATE TABLE links (key TEXT PRIMARY KEY, link TEXT, n INT)")
    conn.executemany("INSERT INTO links VALUES (?, ?, ?)",
                     [("b", pages.url("/article/q2"), 2), ("a", pages.url("/article/q1"), 1)])
    conn.commit()
    conn.close()
    result = invoke("run", "sqlite:///rel.db?table=links&url_column=link&where=n%20%3E%200",
                    "-q")
    assert result.exit_code == 0, result.stderr
    records = sorted(jsonl(result.stdout.encode()), key=lambda r: r["position"])
    assert [r["record"]["key"] for r in records] == ["a", "b"]  # ordered by the primary key


def test_keyset_pages_cover_every_row_once(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dbmod, "PAGE_ROWS", 7)
    urls = [f"https://example.org/{i}" for i in range(50)]
    make_sqlite(tmp_path / "k.db", urls)
    conn = sqlite3.connect(tmp_path / "k.db")
    conn.execute("DELETE FROM bookmarks WHERE id IN (3, 14, 15)")  # gaps in the keys
    conn.commit()
    conn.close()
    src = open_source(f"sqlite:///{tmp_path}/k.db", table="bookmarks")
    assert src.estimate_total() == 47
    got = [item for item in src.read() if isinstance(item, RawRecord)]
    src.close()
    assert [r.source_id for r in got] == [i for i in range(1, 51) if i not in (3, 14, 15)]


def test_table_without_primary_key_uses_rowid(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "r.db")
    conn.execute("CREATE TABLE t (href TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("https://a.example/",), ("https://b.example/",)])
    conn.commit()
    conn.close()
    src = open_source(f"sqlite:///{tmp_path}/r.db", table="t")
    got = [item for item in src.read() if isinstance(item, RawRecord)]
    src.close()
    assert [r.source_id for r in got] == [1, 2]
    assert got[0].record["href"] == "https://a.example/"


@pytest.mark.parametrize("flag", ["--table", "--id-column", "--url-column"])
@pytest.mark.parametrize("value", ["x; DROP TABLE victims", 'bookmarks" --', "a.b.c", ""])
def test_identifier_injection_is_refused(tmp_path: Path, flag: str, value: str) -> None:
    make_sqlite(tmp_path / "i.db", ["https://example.org/"])
    conn = sqlite3.connect(tmp_path / "i.db")
    conn.execute("CREATE TABLE victims (x)")
    conn.commit()
    conn.close()
    args = ["run", f"sqlite:///{tmp_path}/i.db", flag, value]
    if flag != "--table":
        args += ["--table", "bookmarks"]
    result = invoke(*args)
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "invalid" in line or "name the table" in line
    conn = sqlite3.connect(tmp_path / "i.db")
    assert conn.execute("SELECT count(*) FROM victims").fetchone() == (0,)
    conn.close()


def test_where_cannot_write(tmp_path: Path) -> None:
    make_sqlite(tmp_path / "w.db", ["https://example.org/"])
    result = invoke("run", f"sqlite:///{tmp_path}/w.db", "--table", "bookmarks",
                    "--where", "1=1; DELETE FROM bookmarks")
    assert result.exit_code == 2
    assert "--where must be one filter expression; it has a statement separator" in \
        one_line_error(result)
    conn = sqlite3.connect(tmp_path / "w.db")
    assert conn.execute("SELECT count(*) FROM bookmarks").fetchone() == (1,)
    conn.close()


def test_bad_sqlite_sources_fail_in_one_line(tmp_path: Path, pages: PageServer) -> None:
    make_sqlite(tmp_path / "b.db", [pages.url("/article/never")])
    before = sum(pages.hits.values())
    cases = {
        ("run", f"sqlite:///{tmp_path}/nope.db", "--table", "t"): "no such database file",
        ("run", f"sqlite:///{tmp_path}/b.db", "--table", "missing"): "no table 'missing'",
        ("run", f"sqlite:///{tmp_path}/b.db", "--table", "bookmarks",
         "--url-column", "link"): "no URL column 'link'",
        ("run", f"sqlite:///{tmp_path}/b.db"): "name the table",
        ("run", f"sqlite:///{tmp_path}/b.db?table=bookmarks&bogus=1"): "unknown query",
    }
    for args, expected in cases.items():
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert expected in one_line_error(result), result.stderr
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite at all" * 100)
    result = invoke("run", f"sqlite:///{tmp_path}/junk.db", "--table", "t")
    assert result.exit_code == 2
    assert "not a usable SQLite database" in one_line_error(result)
    assert sum(pages.hits.values()) == before  # nothing was enriched


def test_locked_sqlite_is_reported_not_waited_on(tmp_path: Path) -> None:
    make_sqlite(tmp_path / "l.db", ["https://example.org/"])
    holder = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = invoke("run", f"sqlite:///{tmp_path}/l.db", "--table", "bookmarks")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 2
    assert "locked" in one_line_error(result)


# ------------------------------------------------------------------- PostgreSQL
@pytest.mark.postgres
def test_postgres_table_streams_in_keyset_pages(pg_schema: PostgresSchema, pages: PageServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dbmod, "PAGE_ROWS", 2)
    table = pg_schema.table("bookmarks")
    pg_schema.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, url text, note text)")
    urls = [pages.url(f"/article/pg{i}") for i in range(5)]
    with pg_schema.conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s)",
                        [(i * 10, u, "naïve ☕") for i, u in enumerate(urls, 1)])
    result = invoke("run", f"{pg_schema.url}?table={table}", "--where", "id <> 30", "-q")
    assert result.exit_code == 0, result.stderr
    records = sorted(jsonl(result.stdout.encode()), key=lambda r: r["position"])
    assert [r["record"]["id"] for r in records] == [10, 20, 40, 50]
    assert records[0]["record"]["note"] == "naïve ☕"


@pytest.mark.postgres
def test_postgres_bad_input(pg_schema: PostgresSchema) -> None:
    table = pg_schema.table("bookmarks")
    pg_schema.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, address text)")
    result = invoke("run", "postgresql://postgres:s3cr3t@127.0.0.1:1/test", "--table", "t")
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "cannot connect" in line and "s3cr3t" not in line and "********" in line
    result = invoke("run", pg_schema.url, "--table", pg_schema.table("missing"))
    assert result.exit_code == 2
    assert "no table" in one_line_error(result)
    result = invoke("run", pg_schema.url, "--table", table)
    assert result.exit_code == 2
    assert "no URL column found" in one_line_error(result)
    result = invoke("run", pg_schema.url, "--table", table, "--url-column", "address",
                    "--where", "1=1; DROP TABLE " + table)
    assert result.exit_code == 2
    assert pg_schema.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    nokey = pg_schema.table("nokey")
    pg_schema.execute(f"CREATE TABLE {nokey} (url text)")
    result = invoke("run", pg_schema.url, "--table", nokey)
    assert result.exit_code == 2
    assert "--id-column" in one_line_error(result)


@pytest.mark.postgres
def test_postgres_password_is_masked_in_display_and_cache(pg_schema: PostgresSchema) -> None:
    table = pg_schema.table("b")
    pg_schema.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, url text)")
    src = open_source("postgresql://postgres:hunter2@127.0.0.1:5432/test",
                      table=table)
    try:
        assert "hunter2" not in src.display and "hunter2" not in src.location
        assert "********" in src.display
    finally:
        src.close()
