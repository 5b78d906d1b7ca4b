"""Unattended runs: bounded time per bookmark, dead hosts, clean stops, no orphans,
cron-friendly output, a true run history, and file: bookmarks read safely."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CORE_ONLY, by_url, cli, jsonl, run_library
from tests.servers.pages import PageServer
from tests.servers.stall import StallServer


@pytest.fixture
def silent() -> Iterator[StallServer]:
    server = StallServer("silent").start()
    yield server
    server.stop()


@pytest.fixture
def trickle() -> Iterator[StallServer]:
    server = StallServer("trickle", interval=0.2).start()
    yield server
    server.stop()


def reasons(records: list[dict], stage: str = "fetch") -> dict[str, str | None]:
    return {r["url"]: r["stages"][stage]["reason"] for r in records}


# ------------------------------------------------------------------ deadlines
def test_trickling_and_silent_hosts_are_cut_and_a_dead_host_fails_fast(
        pages: PageServer, silent: StallServer, trickle: StallServer) -> None:
    dead = [silent.url(f"/never/{i}") for i in range(10)]
    slow = [trickle.url(f"/drip/{i}") for i in range(2)]
    good = pages.url("/article/deadline")
    records, stats = run_library([*dead, *slow, good], fetch_deadline=1.5, read_timeout=0.5,
                                 connect_timeout=0.5, per_host=4, host_failures=3)
    got = reasons(records)
    assert len(records) == 13
    assert by_url(records)[good]["status"] == "ok"
    assert {got[u] for u in slow} == {"deadline"}
    assert {got[u] for u in dead} <= {"timeout", "deadline", "host_unreachable"}
    unreachable = [u for u in dead if got[u] == "host_unreachable"]
    assert len(unreachable) >= 10 - 4 - 3  # at most a first batch and a straggler tried
    # Those were never sent: each tried bookmark made at most 1 + retries requests.
    assert silent.requests <= (10 - len(unreachable)) * 4
    assert stats.wall_seconds < 1.5 * 20  # generous: bounded, not measured here


def test_backoff_never_waits_past_the_deadline(pages: PageServer) -> None:
    url = pages.url("/status/503?retry_after=30")
    records, _ = run_library([url], fetch_deadline=1.0, retries=5, max_retry_after=30)
    fetch = records[0]["stages"]["fetch"]
    # Retry-After asks for 30 s: past the deadline, so no wait and no second try.
    assert fetch["reason"] == "server_error" and fetch["attempts"] == 1
    assert fetch["duration_ms"] < 30_000


# --------------------------------------------------------------- file: safety
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_file_bookmarks_read_only_regular_files(tmp_path: Path, pages: PageServer) -> None:
    fifo = tmp_path / "pipe.html"
    os.mkfifo(fifo)
    sparse = tmp_path / "huge.html"
    with open(sparse, "wb") as f:
        f.truncate(2 * 1024**3)
    page = tmp_path / "page.html"
    page.write_text("<html><head><title>Local</title></head><body><p>Local words "
                    "here.</p></body></html>")
    folder = tmp_path / "folder"
    folder.mkdir()
    lines = [fifo.as_uri(), sparse.as_uri(), page.as_uri(), folder.as_uri(),
             pages.url("/article/beside-files")]
    records, _ = run_library(lines, allow_file_roots=[str(tmp_path)])
    got = reasons(records)
    assert got[fifo.as_uri()] == "not_a_file"
    assert got[folder.as_uri()] == "not_a_file"
    assert got[sparse.as_uri()] == "too_large"
    assert by_url(records)[page.as_uri()]["status"] == "ok"
    assert by_url(records)[pages.url("/article/beside-files")]["status"] == "ok"


def test_a_device_is_not_read(tmp_path: Path) -> None:
    records, _ = run_library(["file:///dev/zero"], allow_file_roots=["/dev"])
    assert reasons(records)["file:///dev/zero"] == "not_a_file"
