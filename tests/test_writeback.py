"""Writing results back: database tables (SQLite, PostgreSQL) and every file container."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bookmark_enrich.cli import app
from bookmark_enrich.errors import BookmarkEnrichError
from bookmark_enrich.models import FileTarget
from bookmark_enrich.runner import SourceWriter, open_writer
from bookmark_enrich.settings import load_settings
from bookmark_enrich.sources import RawRecord, open_source
from bookmark_enrich.writeback import FileWriter, WritebackConflict, WritebackOptions
from tests.helpers import CORE_ONLY, jsonl
from tests.servers.pages import PageServer
from tests.servers.postgres import PostgresSchema

runner = CliRunner()


def invoke(*args: str, input: str | None = None) -> Any:
    return runner.invoke(app, list(args), env=CORE_ONLY, input=input, catch_exceptions=False)


def read_records(path: Path, fmt: str | None = None) -> list[dict[str, Any]]:
    src = open_source(str(path), input_format=fmt)
    try:
        return [item.record for item in src.read() if isinstance(item, RawRecord)]
    finally:
        src.close()


def sqlite_table(path: Path, urls: list[str]) -> str:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE bookmarks (id INTEGER PRIMARY KEY, url TEXT, title TEXT, "
                 "summary TEXT, keywords TEXT, tags TEXT, media TEXT, metadata TEXT, "
                 "enriched_at TEXT)")
    conn.executemany("INSERT INTO bookmarks (url, title) VALUES (?, ?)",
                     [(u, f"Mine {i} ✓") for i, u in enumerate(urls, 1)])
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# ------------------------------------------------------------------------ SQLite
def test_sqlite_writeback_updates_only_target_columns(tmp_path: Path,
                                                      pages: PageServer) -> None:
    urls = [pages.url("/article/wb1"), pages.url("/status/404"), pages.url("/article/wb3")]
    url = sqlite_table(tmp_path / "w.db", urls)
    result = invoke("run", url, "--table", "bookmarks", "--writeback", "--where", "id <> 3")
    assert result.exit_code == 1, result.stderr  # the 404 failed
    assert "wrote back 2 of 2 records" in result.stderr
    got = {r[0]: r for r in rows(tmp_path / "w.db", "SELECT id, url, title, metadata, "
                                 "enriched_at, summary FROM bookmarks")}
    meta = json.loads(got[1][3])
    assert meta["status"] == "ok" and meta["title"].startswith("Tending a city garden")
    assert got[1][2] == "Mine 1 ✓" and got[1][1] == urls[0]  # the user's columns untouched
    assert got[1][4].endswith("Z")
    assert json.loads(got[2][3])["errors"][0]["reason"] == "not_found"
    assert got[3][3] is None and got[3][4] is None  # outside --where: not touched


def test_missing_columns_are_listed_or_created(tmp_path: Path, pages: PageServer) -> None:
    conn = sqlite3.connect(tmp_path / "c.db")
    conn.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, url TEXT, summary TEXT)")
    conn.execute("INSERT INTO b (url) VALUES (?)", (pages.url("/article/cols"),))
    conn.commit()
    conn.close()
    before = sum(pages.hits.values())
    src = f"sqlite:///{tmp_path}/c.db?table=b"
    result = invoke("run", src, "--writeback")
    assert result.exit_code == 2
    assert "missing writeback column(s): keywords, tags, media, metadata, enriched_at" in \
        result.stderr
    assert sum(pages.hits.values()) == before  # refused before any enrichment
    result = invoke("run", src, "--writeback", "--create-columns", "--column-prefix", "x_",
                    "--columns", "metadata,enriched_at")
    assert result.exit_code == 0, result.stderr
    (meta,) = rows(tmp_path / "c.db", "SELECT x_metadata FROM b")[0]
    assert json.loads(meta)["status"] == "ok"
    cols = [r[1] for r in rows(tmp_path / "c.db", "PRAGMA table_info(b)")]
    assert cols == ["id", "url", "summary", "x_metadata", "x_enriched_at"]


def test_dry_run_prints_changes_and_writes_nothing(tmp_path: Path, pages: PageServer) -> None:
    url = sqlite_table(tmp_path / "d.db", [pages.url("/article/dry")])
    before = rows(tmp_path / "d.db", "SELECT * FROM bookmarks")
    result = invoke("run", url, "--table", "bookmarks", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "id=1: add metadata" in result.stderr
    assert "dry run: 1 of 1 records would change; nothing written" in result.stderr
    assert rows(tmp_path / "d.db", "SELECT * FROM bookmarks") == before


def test_writeback_command_applies_the_cache_without_fetching(tmp_path: Path,
                                                              pages: PageServer) -> None:
    url = sqlite_table(tmp_path / "l.db", [pages.url("/article/later")])
    assert invoke("run", url, "--table", "bookmarks", "-q").exit_code == 0
    hits = sum(pages.hits.values())
    result = invoke("writeback", url, "--table", "bookmarks", "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.startswith("id=1: add metadata")
    result = invoke("writeback", url, "--table", "bookmarks")
    assert result.exit_code == 0, result.stderr
    assert "wrote back 1 of 1 records" in result.stderr
    assert sum(pages.hits.values()) == hits  # nothing fetched again
    (meta,) = rows(tmp_path / "l.db", "SELECT metadata FROM bookmarks")[0]
    assert json.loads(meta)["status"] == "ok"
    assert invoke("writeback", "-").exit_code == 2


def test_locked_or_read_only_database_refused_before_enrichment(tmp_path: Path) -> None:
    url = sqlite_table(tmp_path / "k.db", ["https://example.invalid/"])
    holder = sqlite3.connect(tmp_path / "k.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer: reads work, writes must wait
    try:
        result = invoke("run", url, "--table", "bookmarks", "--writeback")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 2
    assert "database is locked" in result.stderr and "Traceback" not in result.stderr
    os.chmod(tmp_path / "k.db", 0o444)
    try:
        if os.access(tmp_path / "k.db", os.W_OK):
            pytest.skip("running as a user that ignores file permissions")
        result = invoke("run", url, "--table", "bookmarks", "--writeback")
        assert result.exit_code == 2
        assert "read-only" in result.stderr
    finally:
        os.chmod(tmp_path / "k.db", 0o644)


# -------------------------------------------------------------------- PostgreSQL
@pytest.mark.postgres
def test_postgres_writeback_follows_column_types(pg_schema: PostgresSchema,
                                                 pages: PageServer) -> None:
    table = pg_schema.table("bookmarks")
    pg_schema.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, url text, own text, "
                      "summary text, keywords text[], tags jsonb, media jsonb, metadata jsonb, "
                      "enriched_at timestamptz)")
    pg_schema.execute(f"INSERT INTO {table} VALUES (1, %s, 'keep ✓'), (2, %s, 'also')",
                      (pages.url("/article/pg1"), pages.url("/article/pg2")))
    result = invoke("run", f"{pg_schema.url}?table={table}", "--writeback")
    assert result.exit_code == 0, result.stderr
    got = pg_schema.execute(f"SELECT id, own, metadata, enriched_at FROM {table} ORDER BY id"
                            ).fetchall()
    assert got[0][1] == "keep ✓"
    assert got[0][2]["status"] == "ok"  # jsonb comes back as a dict
    assert got[0][3] is not None and got[0][3].tzinfo is not None


@pytest.mark.postgres
def test_postgres_create_columns_and_injection(pg_schema: PostgresSchema,
                                               pages: PageServer) -> None:
    table = pg_schema.table("b")
    pg_schema.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, url text)")
    pg_schema.execute(f"INSERT INTO {table} VALUES (1, %s)", (pages.url("/article/pgc"),))
    result = invoke("run", pg_schema.url, "--table", table, "--writeback",
                    "--column-prefix", "e; DROP TABLE x --")
    assert result.exit_code == 2 and "invalid column name" in result.stderr
    result = invoke("run", pg_schema.url, "--table", table, "--writeback")
    assert result.exit_code == 2 and "missing writeback column(s)" in result.stderr
    result = invoke("run", pg_schema.url, "--table", table, "--writeback", "--create-columns")
    assert result.exit_code == 0, result.stderr
    types = dict(pg_schema.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'b'", (pg_schema.name,)).fetchall())
    assert types["tags"] == "ARRAY" and types["metadata"] == "jsonb"
    (meta,) = pg_schema.execute(f"SELECT metadata FROM {table}").fetchone()
    assert meta["status"] == "ok"


# ------------------------------------------------------------------------- files
def _file(tmp_path: Path, kind: str, urls: list[str]) -> Path:
    names = ["Ünïcødé ☕", "東京の庭", "plain"]
    if kind == "json":
        path = tmp_path / "b.json"
        items: list[Any] = [{"url": u, "title": n, "n": i} for i, (u, n) in
                            enumerate(zip(urls, names, strict=True))]
        items.insert(1, {"title": "no url here"})
        path.write_text(json.dumps(items, ensure_ascii=False, indent=2), encoding="utf-8")
    elif kind == "jsonl":
        path = tmp_path / "b.jsonl"
        lines = [json.dumps({"url": u, "title": n, "n": i}, ensure_ascii=False)
                 for i, (u, n) in enumerate(zip(urls, names, strict=True))]
        lines.insert(1, "")
        lines.insert(2, "{broken")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif kind == "csv":
        path = tmp_path / "b.csv"
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["Title", "URL", "note"])
        for u, n in zip(urls, names, strict=True):
            w.writerow([n, u, "a, b \"quoted\""])
        path.write_text(buf.getvalue(), encoding="utf-8")
    else:
        path = tmp_path / "b.html"
        entries = "\n".join(
            f'        <DT><A HREF="{u}" ADD_DATE="1" TAGS="mine">{n}</A>' for u, n in
            zip(urls, names, strict=True))
        path.write_text(
            "<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<META HTTP-EQUIV=\"Content-Type\" "
            "CONTENT=\"text/html; charset=UTF-8\">\n<TITLE>Bookmarks</TITLE>\n<H1>Bookmarks</H1>\n"
            "<DL><p>\n    <DT><H3>Gärten</H3>\n    <DL><p>\n" + entries +
            "\n        <DD>my own note\n    </DL><p>\n</DL><p>\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["json", "jsonl", "csv", "netscape"])
def test_file_round_trip(tmp_path: Path, pages: PageServer, kind: str) -> None:
    urls = [pages.url(f"/article/rt-{kind}-{i}") for i in range(3)]
    path = _file(tmp_path, kind, urls)
    original = path.read_bytes()
    before = read_records(path)
    result = invoke("run", str(path), "--writeback", "-q")
    assert result.exit_code in (0, 1), result.stderr
    assert len(jsonl(result.stdout.encode())) == 3  # stdout still carries the records
    assert (path.with_name(path.name + ".bak")).read_bytes() == original
    after = read_records(path)
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):  # order kept, nothing lost
        if kind == "csv":
            assert {k: new[k] for k in old} == old
            if old.get("URL"):
                assert new["enrich_status"] == "ok"
                assert new["enrich_title"].startswith("Tending a city garden")
        elif kind == "netscape":
            assert new["title"] == old["title"] and new["url"] == old["url"]
            assert new["folder"] == "Gärten"
            assert new["tags"][0] == "mine"  # TAGS read as a list (issue 16)
        else:
            assert {k: v for k, v in new.items() if k != "enrichment"} == old
            if "url" in old:
                assert new["enrichment"]["title"].startswith("Tending a city garden")
    text = path.read_text(encoding="utf-8")
    assert "Ünïcødé ☕" in text and "東京の庭" in text
    if kind == "csv":
        assert after[0]["note"] == 'a, b "quoted"'  # quotes inside cells survive
    # A second writeback changes nothing more (idempotent).
    again = invoke("writeback", str(path), "--dry-run")
    assert again.exit_code == 0
    assert again.stdout == ""
    assert "0 of 3 records would change" in again.stderr


def test_netscape_summary_becomes_dd_and_structure_stays(tmp_path: Path,
                                                         pages: PageServer) -> None:
    from bookmark_enrich.writeback import files

    urls = [pages.url(f"/article/ns{i}") for i in range(3)]
    path = _file(tmp_path, "netscape", urls)
    original = path.read_text(encoding="utf-8").splitlines()
    assert invoke("run", str(path), "-q").exit_code == 0
    # Pretend a summarizer ran: put summaries and tags into the cached enrichment.
    from bookmark_enrich.cache import ResultCache

    settings = load_settings()
    with ResultCache(settings.cache) as cache:
        cache.conn.execute("UPDATE results SET output = json_set(output, '$.summary', "
                           "'A garden <summary> & more', '$.tags', json('[\"garden\",\"Mine\"]'))"
                           " WHERE stage = 'extract'")
    assert files.CSV_PREFIX == "enrich_"
    result = invoke("writeback", str(path), "--no-backup")
    assert result.exit_code == 0, result.stderr
    assert not path.with_name(path.name + ".bak").exists()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:7] == original[:7]  # header and folders untouched
    assert 'TAGS="mine,garden"' in lines[7]  # merged, the user's own first, no duplicate
    assert lines[8].strip() == "<DD>A garden &lt;summary&gt; &amp; more"
    assert lines[-3].strip() == "<DD>my own note"  # a user's note is kept
    assert lines[-2:] == original[-2:]


def test_changed_file_is_not_overwritten(tmp_path: Path, pages: PageServer) -> None:
    path = _file(tmp_path, "jsonl", [pages.url(f"/article/ch{i}") for i in range(3)])
    assert invoke("run", str(path), "-q").exit_code == 1  # its broken line is skipped
    src = open_source(str(path))
    writer = open_writer(src, WritebackOptions(), lambda m: None)
    assert writer is not None
    src.close()
    path.write_text(path.read_text() + '{"url": "https://example.org/new"}\n')
    changed = path.read_bytes()
    with pytest.raises(WritebackConflict, match="changed on disk"):
        writer.apply_cached(load_settings())
    assert path.read_bytes() == changed
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".b")) == []


def test_failure_before_rename_leaves_the_file_untouched(tmp_path: Path,
                                                         pages: PageServer) -> None:
    path = _file(tmp_path, "json", [pages.url(f"/article/fail{i}") for i in range(3)])
    original = path.read_bytes()
    assert invoke("run", str(path), "-q").exit_code == 1  # its record without a URL is skipped

    def boom() -> None:
        raise OSError("disk full (injected)")

    src = open_source(str(path))
    target = src.writeback_target()
    assert isinstance(target, FileTarget)
    writer = SourceWriter(FileWriter(target, WritebackOptions(), lambda m: None,
                                     fail_before_rename=boom), src)
    src.close()
    with pytest.raises(OSError, match="injected"):
        writer.apply_cached(load_settings())
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir() if "writeback" in p.name] == []


def test_killed_writeback_leaves_old_or_new_never_half(tmp_path: Path) -> None:
    """SIGKILL at some point of a long rewrite: the file is the old one or the whole new one."""
    from bookmark_enrich.cache import ResultCache
    from bookmark_enrich.models import StageOutcome
    from bookmark_enrich.sources import to_bookmark

    n = 30000
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"url": f"https://example.org/{i}", "t": "é"}) + "\n"
                            for i in range(n)))
    original = path.read_bytes()
    settings = load_settings()
    with ResultCache(settings.cache) as cache:
        for i in range(n):
            made = to_bookmark(RawRecord(i + 1, {"url": f"https://example.org/{i}"}), None)
            assert not isinstance(made, BookmarkEnrichError)
            cache.put(made, {"fetch": StageOutcome.ok({"final_url": f"https://e.org/{i}",  # type: ignore[arg-type]
                                                       "http_status": 200})}, 1)
    env = {**os.environ, **CORE_ONLY}
    proc = subprocess.Popen([sys.executable, "-m", "bookmark_enrich", "writeback", str(path),
                             "--no-backup"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if any("writeback" in p.name for p in tmp_path.iterdir()):
            time.sleep(0.05)
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    data = path.read_bytes()
    if data != original:
        lines = data.decode().splitlines()
        assert len(lines) == n
        assert all(json.loads(line)["enrichment"]["http_status"] == 200 for line in lines)


def test_read_only_file_and_unwritable_formats_refused(tmp_path: Path,
                                                       pages: PageServer) -> None:
    path = _file(tmp_path, "csv", [pages.url("/article/ro1"), pages.url("/article/ro2"),
                                   pages.url("/article/ro3")])
    before = sum(pages.hits.values())
    path.chmod(0o444)
    try:
        if not os.access(path, os.W_OK):
            result = invoke("run", str(path), "--writeback")
            assert result.exit_code == 2
            assert "read-only" in result.stderr and "Traceback" not in result.stderr
    finally:
        path.chmod(0o644)
    text = tmp_path / "urls.txt"
    text.write_text(pages.url("/article/txt") + "\n")
    result = invoke("run", str(text), "--writeback")
    assert result.exit_code == 2
    assert "cannot be written back" in result.stderr
    assert sum(pages.hits.values()) == before


def test_stdin_has_nothing_to_write_back(pages: PageServer) -> None:
    result = invoke("run", "-", "--writeback", input=pages.url("/article/stdin") + "\n")
    assert result.exit_code == 0, result.stderr
    assert "stdin has no source to write back to" in result.stderr
    assert len(jsonl(result.stdout.encode())) == 1


def test_file_dry_run_lists_fields(tmp_path: Path, pages: PageServer) -> None:
    path = _file(tmp_path, "jsonl", [pages.url(f"/article/dr{i}") for i in range(3)])
    original = path.read_bytes()
    result = invoke("run", str(path), "--dry-run")
    assert result.exit_code == 1, result.stderr  # its broken line is skipped
    assert "line 1: add enrichment.final_url" in result.stderr
    assert "dry run: 3 of 3 records would change" in result.stderr
    assert path.read_bytes() == original
    assert not path.with_name(path.name + ".bak").exists()


def test_run_reports_a_file_changed_during_the_run(tmp_path: Path, pages: PageServer) -> None:
    import threading

    path = _file(tmp_path, "jsonl", [pages.url("/slow?seconds=1.5&n=1"),
                                     pages.url("/article/chg2"), pages.url("/article/chg3")])

    def edit() -> None:
        time.sleep(0.4)
        with open(path, "a", encoding="utf-8") as f:
            f.write('{"url": "https://example.org/added-meanwhile"}\n')

    editor = threading.Thread(target=edit)
    editor.start()
    result = invoke("run", str(path), "--writeback")
    editor.join()
    assert result.exit_code == 1
    assert "changed on disk since it was read; not overwritten" in result.stderr
    assert "bookmark-enrich: done" in result.stderr  # the summary still comes first
    assert path.read_text().endswith('added-meanwhile"}\n')
    assert not path.with_name(path.name + ".bak").exists()
    # Later, `writeback` applies the cached results to the file as it is now.
    result = invoke("writeback", str(path))
    assert result.exit_code == 0, result.stderr
    assert "wrote back 3 of 3 records" in result.stderr


def test_interrupted_db_run_keeps_what_it_finished(tmp_path: Path, pages: PageServer) -> None:
    urls = [pages.url(f"/article/int{i}") for i in range(3)] + \
        [pages.url(f"/slow?seconds=8&n={i}") for i in range(2)]
    url = sqlite_table(tmp_path / "i.db", urls)
    proc = subprocess.Popen([sys.executable, "-m", "bookmark_enrich", "run", url, "--table",
                             "bookmarks", "--writeback", "-q"],
                            env={**os.environ, **CORE_ONLY}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    for _ in range(3):  # the three fast ones are done
        assert proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)  # twice: abandon the slow ones
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    done = rows(tmp_path / "i.db", "SELECT id FROM bookmarks WHERE metadata IS NOT NULL")
    assert sorted(r[0] for r in done) == [1, 2, 3]
