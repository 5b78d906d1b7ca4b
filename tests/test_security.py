"""Database sources are read-only for real; files holding user data are private."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bookmark_enrich.cli import app
from bookmark_enrich.dbapi import check_where
from bookmark_enrich.errors import UsageError
from tests.helpers import CORE_ONLY
from tests.servers.postgres import PostgresSchema

runner = CliRunner()

ATTACK = "1=1); COMMIT; BEGIN READ WRITE; DROP TABLE {other}; COMMIT; SELECT * FROM {t} WHERE (1=1"


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env=CORE_ONLY, catch_exceptions=False)


@pytest.mark.parametrize("where", [
    "id > 3", "title LIKE '%; drop table x; --%'", 'lower("select") = \'a\'',
    "(a = 1 OR (b = 2)) AND c IN (1, 2)", "note = 'it''s (fine)'",
    "CASE WHEN id > 2 THEN 1 ELSE 0 END = 1", "created_at > now() - interval '7 days'",
])
def test_filters_that_are_one_expression_pass(where: str) -> None:
    assert check_where(where) == where


@pytest.mark.parametrize(("where", "problem"), [
    ("1=1; DROP TABLE t", "';'"),
    ("1=1) OR (1=1", "closing more"),
    ("1=1) UNION SELECT * FROM secrets WHERE (1=1", "closing more"),
    ("id > 1 -- and the rest", "comment"),
    ("id > 1 /* hidden */", "comment"),
    ("$$; DROP TABLE t; $$ = ''", "'$'"),
    ("$a$ ' $a$; DROP TABLE t; '", "'$'"),
    ("'unterminated", "unbalanced ' quote"),
    ('"unterminated', "unbalanced \" quote"),
    ("(1=1", "unbalanced parentheses"),
    ("1=1 COMMIT", "COMMIT"),
    ("rollback", "ROLLBACK"),
    ("   ", "empty"),
])
def test_anything_else_is_refused_with_a_reason(where: str, problem: str) -> None:
    with pytest.raises(UsageError, match="--where") as info:
        check_where(where)
    assert problem in str(info.value)


def _sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, url TEXT)")
    conn.execute("CREATE TABLE t2 (id INTEGER PRIMARY KEY, secret TEXT)")
    conn.execute("INSERT INTO t (url) VALUES ('https://example.org/a')")
    conn.execute("INSERT INTO t2 (secret) VALUES ('keep me')")
    conn.commit()
    conn.close()


def test_the_injection_fails_cleanly_on_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    _sqlite(db)
    result = invoke("run", f"sqlite:///{db}", "--table", "t",
                    "--where", ATTACK.format(other="t2", t="t"))
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert "--where must be one filter expression" in result.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT secret FROM t2").fetchall() == [("keep me",)]


@pytest.mark.postgres
def test_the_injection_fails_cleanly_on_postgres_and_every_table_stays(
        pg_schema: PostgresSchema) -> None:
    t, t2 = pg_schema.table("t"), pg_schema.table("t2")
    pg_schema.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, url text)")
    pg_schema.execute(f"CREATE TABLE {t2} (id int PRIMARY KEY, secret text)")
    pg_schema.execute(f"INSERT INTO {t} VALUES (1, 'https://example.org/a')")
    pg_schema.execute(f"INSERT INTO {t2} VALUES (1, 'keep me')")
    result = invoke("run", pg_schema.url, "--table", t, "--where", ATTACK.format(other=t2, t=t))
    assert result.exit_code == 2
    assert "--where must be one filter expression" in result.stderr
    assert pg_schema.execute(f"SELECT secret FROM {t2}").fetchall() == [("keep me",)]


@pytest.mark.postgres
def test_the_read_connection_cannot_write_even_past_the_check(pg_schema: PostgresSchema,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """Defence in depth: with the check bypassed, PostgreSQL itself refuses the attack."""
    from bookmark_enrich.sources import db as dbmod

    monkeypatch.setattr(dbmod, "check_where", lambda where: where)
    t, t2 = pg_schema.table("t"), pg_schema.table("t2")
    pg_schema.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, url text)")
    pg_schema.execute(f"CREATE TABLE {t2} (id int PRIMARY KEY, secret text)")
    pg_schema.execute(f"INSERT INTO {t2} VALUES (1, 'keep me')")
    for where in (ATTACK.format(other=t2, t=t),
                  f"1=1) AND (SELECT count(*) FROM (DELETE FROM {t2} RETURNING 1) d) > (0"):
        result = invoke("run", pg_schema.url, "--table", t, "--where", where)
        assert result.exit_code == 2, result.stderr
        assert "Traceback" not in result.stderr
    assert pg_schema.execute(f"SELECT secret FROM {t2}").fetchall() == [("keep me",)]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_cache_backups_exports_and_media_are_private(tmp_path: Path) -> None:
    os.umask(0o022)
    cache = tmp_path / "deep" / "cache.sqlite"
    page = tmp_path / "p.html"
    page.write_text("<html><head><title>T</title></head><body><p>" + "w " * 80 + "</p>")
    listing = tmp_path / "b.txt"
    listing.write_text(page.as_uri() + "\n")
    assert invoke("run", str(listing), "--cache", str(cache), "-q").exit_code == 0
    assert _mode(cache) == 0o600
    assert _mode(cache.parent) == 0o700
    backup = tmp_path / "backup.sqlite"
    assert invoke("cache", "backup", str(backup), "--cache", str(cache)).exit_code == 0
    assert _mode(backup) == 0o600
    exported = tmp_path / "export.jsonl"
    assert invoke("cache", "export", "-o", str(exported), "--cache", str(cache)).exit_code == 0
    assert _mode(exported) == 0o600
    env = tmp_path / "work.env"
    assert invoke("config", "init", str(env)).exit_code == 0
    assert _mode(env) == 0o600


# ------------------------------------------------------------------- doctor
def _warnings(settings: Any, **options: Any) -> list[str]:
    from bookmark_enrich.doctor import run_doctor

    report = asyncio.run(run_doctor(settings, only=["settings"], **options))
    return [c.detail for c in report.checks if c.status == "warn"]


def test_doctor_warns_on_each_weak_setting(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from bookmark_enrich.settings import load_settings

    # No connection is made: the settings check only reads the settings and files.
    found = _warnings(load_settings(s3_endpoint="http://127.0.0.1:9", s3_access_key="minioadmin",
                                    s3_secret_key="minioadmin"))
    assert any("default credentials (minioadmin)" in w for w in found)
    found = _warnings(load_settings(s3_endpoint="http://127.0.0.1:9"))
    assert any("S3_SECRET_KEY is empty" in w for w in found)
    found = _warnings(load_settings(lm_studio_api_url="http://192.0.2.10:1234/v1",
                                    lm_studio_api_key="sk-test"))
    assert any("LM_STUDIO_API_KEY is sent over plain HTTP to 192.0.2.10" in w for w in found)
    assert not any("sk-test" in w for w in found)
    found = _warnings(load_settings(), queue="redis://192.0.2.10:6379/0")
    assert any("has no password" in w for w in found)
    assert not _warnings(load_settings(), queue="redis://127.0.0.1:6379/0")
    monkeypatch.setenv("BOOKMARK_ENRICH_ALLOW_PRIVATE_NETWORK", "true")
    assert any("ALLOW_PRIVATE_NETWORK" in w for w in _warnings(load_settings()))
    monkeypatch.delenv("BOOKMARK_ENRICH_ALLOW_PRIVATE_NETWORK")
    env = Path(".env")
    env.write_text("S3_SECRET_KEY=x\n")
    env.chmod(0o644)
    cache = tmp_path / "open.sqlite"
    cache.write_bytes(b"")
    cache.chmod(0o644)
    found = _warnings(load_settings(cache=cache))
    assert any(".env is readable by other users" in w for w in found)
    assert any("open.sqlite is readable by other users" in w for w in found)


def test_doctor_strict_fails_on_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKMARK_ENRICH_LLM_PROBE_URLS", "[]")
    monkeypatch.setenv("BOOKMARK_ENRICH_COBALT_PROBE_URL", "")
    env = Path(".env")
    env.write_text("LM_STUDIO_MODEL=x\n")
    env.chmod(0o644)
    assert invoke("doctor").exit_code == 0  # warnings alone keep exit 0 ...
    result = invoke("doctor", "--strict")
    assert result.exit_code == 1  # ... unless --strict
    assert "chmod 600" in result.stdout
