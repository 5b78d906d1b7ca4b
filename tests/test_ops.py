"""Operations as users meet them: status, show, runs, retry, cache upkeep, config, the lock."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bookmark_enrich.cli import app
from bookmark_enrich.settings import Settings, env_name
from tests.helpers import (
    CORE_ONLY,
    cli,
    invoke_cli,
    jsonl,
    release_until_committed,
    stop_releasing,
)
from tests.servers.pages import Gate, PageServer

runner = CliRunner()


@pytest.fixture(autouse=True)
def core_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CORE_ONLY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BOOKMARK_ENRICH_RETRIES", "0")


def invoke(*args: str, input: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=input)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mixed:
    """A bookmarks file of two good pages and three failures, run once."""

    def __init__(self, pages: PageServer, folder: Path) -> None:
        tag = uuid.uuid4().hex[:8]
        self.ok = [pages.url(f"/article/ops-{tag}-1"), pages.url(f"/article/ops-{tag}-2")]
        self.missing = pages.url(f"/status/404?t={tag}")
        self.flaky = pages.url(f"/flaky/ops-{tag}")  # 500 once, then a page
        self.down = f"http://127.0.0.1:{closed_port()}/gone-{tag}"
        self.file = folder / "bookmarks.txt"
        self.file.write_text("\n".join([*self.ok, self.missing, self.flaky, self.down]) + "\n")


@pytest.fixture
def mixed(pages: PageServer, isolated_env: Path) -> Mixed:
    m = Mixed(pages, isolated_env)
    result = invoke("run", str(m.file), "--quiet")
    assert result.exit_code == 1, result.output
    return m


# ------------------------------------------------------------------ status/show
def test_status_after_a_mixed_run(mixed: Mixed) -> None:
    result = invoke("status", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    run = doc["runs"][0]
    assert (run["total"], run["ok"], run["failed"], run["status"]) == (5, 2, 3, "finished")
    assert run["source"] == str(mixed.file) and run["duration_s"] > 0 and run["rate"] > 0
    fetch = next(s for s in doc["stages"] if s["stage"] == "fetch")
    assert (fetch["ok"], fetch["failed"], fetch["success_rate"]) == (2, 3, 0.4)
    reasons = {(r["stage"], r["reason"]): r["count"] for r in doc["reasons"]}
    assert reasons == {("fetch", "not_found"): 1, ("fetch", "server_error"): 1,
                       ("fetch", "connection_refused"): 1}
    table = invoke("status").stdout
    for text in ("runs", "finished", "fetch", "40.0%", "not_found", "connection_refused"):
        assert text in table


def test_show_prints_every_stage_and_the_enrichment(mixed: Mixed) -> None:
    # Another spelling of the same URL (host case, a fragment) finds the same bookmark.
    url = mixed.ok[0].replace("http://", "HTTP://") + "#top"
    doc = json.loads(invoke("show", url, "--json").stdout)
    assert [s["stage"] for s in doc["stages"]] == ["fetch", "extract"]
    assert all(s["status"] == "ok" for s in doc["stages"])
    assert doc["enrichment"]["title"].startswith("Tending a city garden")
    assert doc["bookmark"]["record"] == {"url": mixed.ok[0]}
    failed = json.loads(invoke("show", mixed.missing, "--json").stdout)
    assert failed["stages"][0]["reason"] == "not_found"
    assert failed["stages"][0]["error"] == "HTTP 404"
    assert failed["stages"][1]["reason"] == "upstream_failed"
    table = invoke("show", mixed.missing).stdout
    assert "not_found" in table and "HTTP 404" in table and "enrichment" in table
    unknown = invoke("show", "https://never.example/")
    assert unknown.exit_code == 1
    assert "not in the cache" in one_error_line(unknown.stderr)


def test_runs_failed_lists_reasons(mixed: Mixed) -> None:
    result = invoke("runs", "--failed", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(r["url"], r["reason"]) for r in rows} == {
        (mixed.missing, "not_found"), (mixed.flaky, "server_error"),
        (mixed.down, "connection_refused")}
    only = invoke("runs", "--failed", "--reason", "not_found", "--json").stdout.splitlines()
    assert [json.loads(line)["url"] for line in only] == [mixed.missing]
    assert "connection_refused" in invoke("runs", "--failed").stdout
    runs = [json.loads(line) for line in invoke("runs", "--json").stdout.splitlines()]
    assert runs[0]["source"] == str(mixed.file)
    assert "finished" in invoke("runs").stdout


# ------------------------------------------------------------------------ retry
def test_retry_reruns_only_the_failures_of_one_reason(mixed: Mixed, pages: PageServer) -> None:
    before = dict(pages.hits)
    result = invoke("retry", "--reason", "server_error")
    assert result.exit_code == 0, result.output
    records = jsonl(result.stdout.encode())
    assert [(r["url"], r["status"]) for r in records] == [(mixed.flaky, "ok")]
    assert records[0]["position"] == 4 and records[0]["record"] == {"url": mixed.flaky}
    assert "bookmark-enrich: done" in result.stderr
    # Only the flaky page was asked for again; the 404 and the good pages were not.
    hits = {p: n - before.get(p, 0) for p, n in pages.hits.items() if n != before.get(p, 0)}
    assert list(hits) == ["/flaky/" + mixed.flaky.rsplit("/", 1)[1]]
    doc = json.loads(invoke("status", "--json").stdout)
    assert doc["runs"][0]["source"] == f"retry: {mixed.file}"
    assert {r["reason"] for r in doc["reasons"]} == {"not_found", "connection_refused"}
    shown = json.loads(invoke("show", mixed.flaky, "--json").stdout)
    assert shown["enrichment"]["title"].startswith("Tending a city garden")
    assert shown["bookmark"]["source"] == str(mixed.file)  # still points at the file
    again = invoke("retry", "--reason", "server_error")
    assert again.exit_code == 0 and again.stdout == ""
    assert "nothing to retry" in again.stderr


def test_retry_all_and_stage_filter(mixed: Mixed) -> None:
    result = invoke("retry", "--stage", "fetch", "-q")
    assert result.exit_code == 1  # the 404 and the closed port still fail
    statuses = {r["url"]: r["status"] for r in jsonl(result.stdout.encode())}
    assert statuses == {mixed.missing: "failed", mixed.flaky: "ok", mixed.down: "failed"}


def test_retry_writeback_rewrites_the_recorded_file(pages: PageServer,
                                                   isolated_env: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    file = isolated_env / "b.jsonl"
    file.write_text(json.dumps({"url": pages.url(f"/flaky/wb-{tag}"), "note": "x"}) + "\n")
    assert invoke("run", str(file), "-q").exit_code == 1
    result = invoke("retry", "--writeback", "-q")
    assert result.exit_code == 0, result.output
    row = json.loads(file.read_text())
    assert row["note"] == "x" and row["enrichment"]["title"].startswith("Tending a city garden")


@pytest.mark.parametrize(("args", "message"), [
    (["--stage", "fetch,bogus"], "unknown stage 'bogus' (stages: fetch, archive, extract"),
    (["--reason", "timout"], "unknown reason 'timout'"),
    (["--since", "yesterday-ish"], "bad --since 'yesterday-ish'"),
    (["--stage", "summarize"], "stage 'summarize' is off in these settings"),
])
def test_retry_bad_names_are_one_line_exit_2(mixed: Mixed, args: list[str],
                                             message: str) -> None:
    result = invoke("retry", *args)
    assert result.exit_code == 2
    assert message in one_error_line(result.stderr)


# ------------------------------------------------------------ lock and backup
def url_file(folder: Path, urls: list[str]) -> Path:
    file = folder / f"urls-{uuid.uuid4().hex[:8]}.txt"
    file.write_text("".join(url + "\n" for url in urls))
    return file


def _committed(cache_path: Path) -> int:
    if not cache_path.exists():
        return 0
    with sqlite3.connect(cache_path) as probe:
        try:
            return int(probe.execute("SELECT count(*) FROM results").fetchone()[0])
        except sqlite3.OperationalError:  # no tables yet
            return 0


def test_backup_while_a_run_writes_and_a_second_run_exits_75(pages: PageServer, gate: Gate,
                                                            isolated_env: Path,
                                                            cache_path: Path) -> None:
    env = {**os.environ, **CORE_ONLY, "BOOKMARK_ENRICH_CONCURRENCY": "4"}
    # Its pages wait at the gate, so the run is still going whatever the checks below take;
    # stopped with SIGTERM.
    first = subprocess.Popen(
        [sys.executable, "-m", "bookmark_enrich", "run",
         str(url_file(isolated_env, [gate.url(i) for i in range(400)])), "-q",
         "-o", "out.jsonl"], env=env, stderr=subprocess.PIPE)
    waiter: subprocess.Popen[bytes] | None = None
    one_page = [pages.url(f"/article/{uuid.uuid4().hex[:8]}")]
    try:
        gate.wait_for(4)
        release_until_committed(gate, lambda: _committed(cache_path), 4)
        second = invoke_cli("run", str(url_file(isolated_env, one_page)), "-q", env=env)
        assert second.returncode == 75
        line = one_error_line(second.stderr.decode())
        assert "another run holds the cache lock (pid" in line and "--wait-lock" in line
        copy = isolated_env / "backup" / "copy.sqlite"
        backup = invoke("cache", "backup", str(copy))
        assert backup.exit_code == 0, backup.output
        assert first.poll() is None  # the copy was taken while the run was writing
        with sqlite3.connect(copy) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert db.execute("SELECT count(*) FROM results").fetchone()[0] >= 4
        waiter = subprocess.Popen(
            [sys.executable, "-m", "bookmark_enrich", "run",
             str(url_file(isolated_env, one_page)), "-q", "--wait-lock"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert waiter.stderr is not None
        assert b"waiting for the cache lock held by pid" in waiter.stderr.readline()
        # The first run stops cleanly (finishing its held pages) and lets go of the lock.
        stop_releasing(first, gate, signal.SIGTERM)
        assert first.returncode == 143  # SIGTERM
        assert waiter.wait(60) == 0
        assert len(jsonl(waiter.stdout.read() if waiter.stdout else b"")) == 1
    finally:
        for proc in (first, waiter):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


# ------------------------------------------------------------------------ cache
def test_cache_commands(mixed: Mixed, cache_path: Path, isolated_env: Path) -> None:
    assert invoke("cache", "path").stdout.strip() == str(cache_path)
    exported = jsonl(invoke("cache", "export").stdout.encode())
    assert len(exported) == 5
    assert {r["url"] for r in exported if r["status"] == "ok"} == set(mixed.ok)
    assert invoke("cache", "export", "-o", "all.jsonl").exit_code == 0
    assert len((isolated_env / "all.jsonl").read_text().splitlines()) == 5
    # Destructive commands need --yes when nobody can be asked.
    refused = invoke("cache", "prune", "--failed")
    assert refused.exit_code == 2 and "refusing without --yes" in one_error_line(refused.stderr)
    assert invoke("cache", "prune", "--older-than", "90d", "--yes").exit_code == 0
    pruned = invoke("cache", "prune", "--failed", "--reason", "not_found", "--yes")
    assert pruned.exit_code == 0 and "deleted 1 results" in pruned.stderr
    reasons = {r["reason"] for r in json.loads(invoke("status", "--json").stdout)["reasons"]}
    assert reasons == {"server_error", "connection_refused"}
    assert invoke("cache", "vacuum").exit_code == 0
    bad = invoke("cache", "prune", "--failed", "--older-than", "1d", "--yes")
    assert bad.exit_code == 2
    assert invoke("cache", "prune", "--older-than", "soon", "--yes").exit_code == 2
    time.sleep(0.01)
    old = invoke("cache", "prune", "--older-than", "0.001s", "--yes")
    assert old.exit_code == 0, old.output
    assert json.loads(invoke("status", "--json").stdout)["counts"]["results"] == 0


def test_backup_confirms_before_overwriting(mixed: Mixed, isolated_env: Path) -> None:
    target = isolated_env / "b.sqlite"
    target.write_text("keep me")
    refused = invoke("cache", "backup", str(target))
    assert refused.exit_code == 2 and target.read_text() == "keep me"
    assert invoke("cache", "backup", str(target), "--yes").exit_code == 0
    with sqlite3.connect(target) as db:
        assert db.execute("SELECT count(*) FROM bookmarks").fetchone()[0] == 5


# ----------------------------------------------------------------------- config
def test_config_show_says_where_each_value_comes_from(isolated_env: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated_env / ".env").write_text("BOOKMARK_ENRICH_CONCURRENCY=4\nS3_SECRET_KEY=topsecret\n")
    monkeypatch.setenv("LM_STUDIO_MODEL", "env-model")
    result = invoke("config", "show", "--json", "--cache", "/tmp/flag.sqlite")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["concurrency"] == {"env": "BOOKMARK_ENRICH_CONCURRENCY", "value": 4,
                                  "origin": ".env"}
    assert doc["lm_studio_model"]["origin"] == "environment"
    assert doc["cache"] == {"env": "BOOKMARK_ENRICH_CACHE", "value": "/tmp/flag.sqlite",
                            "origin": "flag"}
    assert doc["per_host"]["origin"] == "default"
    assert doc["s3_secret_key"]["value"] == "********"
    table = invoke("config", "show").stdout
    assert "topsecret" not in table + result.stdout
    assert "env-model" in table and ".env" in table and "environment" in table


def test_config_init_writes_every_setting_once(isolated_env: Path) -> None:
    result = invoke("config", "init")
    assert result.exit_code == 0, result.output
    text = (isolated_env / ".env").read_text()
    for field in Settings.model_fields:
        assert f"#{env_name(field)}=" in text
    assert Settings().concurrency == 16  # everything commented: defaults hold
    again = invoke("config", "init")
    assert again.exit_code == 2 and "--force" in one_error_line(again.stderr)
    assert invoke("config", "init", "--force").exit_code == 0


# -------------------------------------------------------------------- bad input
def test_a_file_that_is_not_sqlite_is_one_line_and_kept(cache_path: Path,
                                                        isolated_env: Path) -> None:
    cache_path.write_text("these are my notes, not a database\n" * 20)
    before = cache_path.read_bytes()
    for args in (["status"], ["show", "https://x.example/"], ["runs", "--failed"],
                 ["retry"], ["cache", "export"]):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "not a usable cache" in one_error_line(result.stderr)
    proc = cli("run", "-", "-q", input="https://x.example/\n")
    assert proc.returncode == 2
    assert "not a usable cache" in one_error_line(proc.stderr.decode())
    assert cache_path.read_bytes() == before


def test_a_corrupted_cache_is_one_line_exit_2_and_never_replaced(mixed: Mixed,
                                                                 cache_path: Path) -> None:
    db = sqlite3.connect(cache_path)  # enough rows to span many pages
    db.executemany("INSERT INTO results (key, stage, status, text) VALUES (?, 'x', 'ok', ?)",
                   [(f"k{i}", "t" * 300) for i in range(400)])
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(cache_path.read_bytes())
    page = 4096
    for i in range(page * 3, len(data) - page, page):  # scribble over every b-tree page
        data[i: i + 64] = b"\xff" * 64
    cache_path.write_bytes(bytes(data))
    before = cache_path.read_bytes()
    for args in (["status"], ["runs", "--failed"], ["cache", "export"]):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        line = one_error_line(result.stderr)
        assert str(cache_path) in line and ("damaged" in line or "not a usable" in line)
    proc = cli("run", str(mixed.file), "-q")
    assert proc.returncode == 2, proc.stderr
    one_error_line(proc.stderr.decode())
    after = cache_path.read_bytes()  # the header's change counter may move; no page does
    assert len(after) == len(before) and after[100:] == before[100:]
