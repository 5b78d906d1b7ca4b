"""The cache: re-runs skip finished work, --force/--retry-failed, and crashes resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bookmark_enrich.stages.extract import ExtractStage
from tests.helpers import (
    CORE_ONLY,
    jsonl,
    release_until_committed,
    run_library,
    stop_releasing,
)
from tests.servers.pages import Gate, PageServer


def test_rerun_is_served_from_cache(pages: PageServer) -> None:
    urls = [pages.url("/article/c1"), pages.url("/article/c2")]
    first, stats1 = run_library(urls)
    hits = pages.hits.copy()
    second, stats2 = run_library(urls)
    assert pages.hits == hits  # nothing fetched again
    assert stats1.cached == 0 and stats2.cached == 2
    assert all(r["cached"] for r in second)
    strip = lambda r: {k: v for k, v in r.items() if k not in ("cached", "stages")}  # noqa: E731
    assert sorted(map(str, map(strip, first))) == sorted(map(str, map(strip, second)))


def test_force_ignores_the_cache(pages: PageServer) -> None:
    url = pages.url("/article/force")
    run_library([url])
    before = pages.hits["/article/force"]
    _, stats = run_library([url, url], force=True)
    assert pages.hits["/article/force"] - before == 1  # the duplicate shares the fresh result
    assert stats.cached == 1


def test_failures_are_kept_until_retry_failed(pages: PageServer) -> None:
    url = pages.url("/flaky/later")
    # First attempt (no retries): the 500 is recorded as a failure.
    records, _ = run_library([url], retries=0)
    assert records[0]["errors"][0]["reason"] == "server_error"
    records, stats = run_library([url], retries=0)
    assert stats.cached == 1 and records[0]["status"] == "failed"
    records, _ = run_library([url], retries=0, retry_failed=True)
    assert records[0]["status"] == "ok"


def test_a_changed_stage_fingerprint_reruns_only_that_stage(
    pages: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pages.url("/article/fp")
    run_library([url])
    monkeypatch.setattr(ExtractStage, "version", "test-bump")
    hits = pages.hits["/article/fp"]
    records, _ = run_library([url])
    stages = records[0]["stages"]
    assert stages["extract"]["cached"] is False
    # Page bodies are not cached (they are large), so extract needs the page once more.
    assert stages["fetch"]["cached"] is False
    assert pages.hits["/article/fp"] == hits + 1
    records, _ = run_library([url])
    assert records[0]["cached"] is True  # and the new results are cached again


def _start(source: Path, cache: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **CORE_ONLY, "BOOKMARK_ENRICH_CACHE": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "bookmark_enrich", "run", str(source), "--concurrency", "4",
         *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _committed(cache: Path) -> int:
    """Extract results the run has committed to its cache so far."""
    if not cache.exists():
        return 0
    try:
        with sqlite3.connect(cache) as db:
            return int(db.execute(
                "SELECT count(*) FROM results WHERE stage='extract'").fetchone()[0])
    except sqlite3.OperationalError:  # the run has not made its tables yet
        return 0


def _finished_urls(cache: Path) -> set[str]:
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {row[0] for row in db.execute(
            "SELECT b.url FROM bookmarks b JOIN results r ON r.key = b.key "
            "WHERE r.stage = 'extract' AND r.status = 'ok'")}


def test_sigkill_mid_run_then_resume_enriches_each_once(
    pages: PageServer, gate: Gate, tmp_path: Path
) -> None:
    # Eight pages answer; the rest are held at the gate and let through a few at a time
    # until the run has committed eight results, then it is killed mid-way.
    urls = [pages.url(f"/article/k{i}") for i in range(8)] + [gate.url(f"k{i}")
                                                              for i in range(8, 60)]
    source = tmp_path / "urls.txt"
    source.write_text("\n".join(urls) + "\n")
    cache = tmp_path / "kill.sqlite"
    proc = _start(source, cache)
    gate.wait_for(4)  # the eight are done, four held pages in flight
    release_until_committed(gate, lambda: _committed(cache), 8)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = _finished_urls(cache)
    assert set(urls[:8]) <= finished and len(finished) < len(urls)
    hits_after_kill = pages.hits.copy()

    gate.open()
    proc = _start(source, cache, "-q")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    records = jsonl(out)
    assert sorted(r["url"] for r in records) == sorted(urls)  # each exactly once
    for url in finished:  # what finished before the kill is not fetched again
        path = url.removeprefix(pages.base)
        assert pages.hits[path] == hits_after_kill[path]
        assert next(r for r in records if r["url"] == url)["cached"] is True


def test_ctrl_c_finishes_in_flight_work_exits_130_and_resumes(
    pages: PageServer, gate: Gate, tmp_path: Path
) -> None:
    urls = [pages.url(f"/article/i{i}") for i in range(4)] + [gate.url(f"i{i}")
                                                              for i in range(4, 80)]
    source = tmp_path / "urls.txt"
    source.write_text("\n".join(urls) + "\n")
    cache = tmp_path / "int.sqlite"
    proc = _start(source, cache)
    gate.wait_for(4)  # the four are done, four held pages in flight when Ctrl-C comes
    out, err = stop_releasing(proc, gate)
    assert proc.returncode == 130, err
    first = jsonl(out)  # every line is whole JSON
    assert 4 + 4 <= len(first) < len(urls)  # the four in flight were finished
    assert b"interrupted" in err and b"Traceback" not in err
    # Everything printed was committed to the cache.
    assert {r["url"] for r in first} <= _finished_urls(cache)

    gate.open()
    proc = _start(source, cache, "-q")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    second = jsonl(out)
    assert sorted(r["url"] for r in second) == sorted(urls)
    assert sum(r["cached"] for r in second) >= len(first)
