"""Unattended runs: bounded time per bookmark, dead hosts, clean stops, no orphans,
cron-friendly output, a true run history, and file: bookmarks read safely."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def slow_pages() -> Iterator[PageServer]:
    server = PageServer(latency=0.2).start()
    yield server
    server.stop()


def start(source: Path, cache: Path, *extra: str,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, **CORE_ONLY, "BOOKMARK_ENRICH_CACHE": str(cache), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "bookmark_enrich", "run", str(source), "--concurrency", "4",
         *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def wait_for_rows(cache: Path, n: int, timeout: float = 60) -> None:
    """Until the run has extracted ``n`` bookmarks (so its process pool is up)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cache.exists():
            try:
                with sqlite3.connect(cache) as db:
                    if db.execute("SELECT count(*) FROM results WHERE stage='extract'"
                                  ).fetchone()[0] >= n:
                        return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError("the run made no progress")


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    parents[int(entry)] = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    still = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                    still.add(pid)
        except OSError:
            continue
    return still


def reasons(records: list[dict[str, Any]], stage: str = "fetch") -> dict[str, str | None]:
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


# ---------------------------------------------------------------------- stops
def test_sigterm_stops_within_the_grace_and_the_next_run_finishes_the_rest(
        silent: StallServer, pages: PageServer, tmp_path: Path) -> None:
    good = [pages.url(f"/article/term{i}") for i in range(6)]
    stuck = [silent.url(f"/hang/{i}") for i in range(4)]
    source = tmp_path / "urls.txt"
    source.write_text("\n".join([*good, *stuck]) + "\n")
    cache = tmp_path / "term.sqlite"
    proc = start(source, cache, "--grace", "1", "--fetch-deadline", "600",
                 "--timeout", "600")
    wait_for_rows(cache, 6)  # the good ones are done; the stuck ones hang
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    stopped_after = time.monotonic() - sent
    assert proc.returncode == 143, err
    assert b"stopping: " in err and b"in flight" in err and b"Traceback" not in err
    assert stopped_after < 3 * (1 + 2)
    first = jsonl(out)
    assert {r["url"] for r in first} == set(good)
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # Cancelled bookmarks are not cached as failures: the next run does them.
        assert db.execute("SELECT count(*) FROM results WHERE stage='fetch' "
                          "AND status='failed'").fetchone()[0] == 0
    hits = {u: pages.hits[u.removeprefix(pages.base)] for u in good}
    proc = start(source, cache, "-q", "--fetch-deadline", "1", "--timeout", "0.5")
    out, err = proc.communicate(timeout=120)
    second = by_url(jsonl(out))
    assert set(second) == {*good, *stuck}
    assert all(second[u]["cached"] for u in good)
    assert hits == {u: pages.hits[u.removeprefix(pages.base)] for u in good}
    assert {second[u]["stages"]["fetch"]["reason"] for u in stuck} <= {
        "timeout", "deadline", "host_unreachable"}


def test_a_second_signal_abandons_at_once(silent: StallServer, tmp_path: Path) -> None:
    source = tmp_path / "urls.txt"
    source.write_text("".join(silent.url(f"/hang/{i}") + "\n" for i in range(3)))
    cache = tmp_path / "twice.sqlite"
    proc = start(source, cache, "--grace", "600", "--fetch-deadline", "600",
                 "--timeout", "600", "--log-interval", "0.2")
    assert proc.stderr is not None
    for line in proc.stderr:  # the heartbeat shows the run is in flight
        if b"in flight" in line:
            break
    proc.send_signal(signal.SIGINT)
    for line in proc.stderr:
        if line.startswith(b"stopping: "):
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)  # far sooner than the 600 s grace
    assert proc.returncode == 130


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts processes in /proc")
def test_kill_9_of_a_run_leaves_no_process_behind(slow_pages: PageServer,
                                                  tmp_path: Path) -> None:
    source = tmp_path / "urls.txt"
    source.write_text("".join(slow_pages.url(f"/article/o{i}") + "\n" for i in range(200)))
    cache = tmp_path / "orphans.sqlite"
    proc = start(source, cache, env={"BOOKMARK_ENRICH_EXTRACT_PROCESSES": "2"})
    wait_for_rows(cache, 3)
    ours = descendants(proc.pid)
    assert ours  # the forkserver, its workers, the resource tracker
    proc.kill()
    proc.communicate()
    end = time.monotonic() + 3 * 2
    while alive(ours) and time.monotonic() < end:
        time.sleep(0.05)
    assert not alive(ours)


# ----------------------------------------------------------------- output
def test_quiet_prints_nothing_on_success(pages: PageServer, tmp_path: Path) -> None:
    source = tmp_path / "urls.txt"
    source.write_text(f"# my links\n\n{pages.url('/article/q1')}\n")
    result = cli("run", str(source), "--quiet", env={
        "ENABLE_AI_SUMMARIZATION": "true", "BOOKMARK_ENRICH_SUMMARIZER": "builtin"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert len(jsonl(result.stdout)) == 1


def test_quiet_prints_the_summary_when_something_failed(pages: PageServer,
                                                        tmp_path: Path) -> None:
    source = tmp_path / "urls.txt"
    source.write_text(pages.url("/status/404") + "\n")
    result = cli("run", str(source), "-q")
    assert result.returncode == 1
    assert b"not_found" in result.stderr


def test_log_lines_count_bookmarks_not_lines_and_can_be_json(pages: PageServer,
                                                              tmp_path: Path) -> None:
    source = tmp_path / "urls.txt"
    source.write_text("# comment\n\n" + "".join(pages.url(f"/article/j{i}") + "\n"
                                                for i in range(3)) + "\n# end\n")
    result = cli("run", str(source), "--log-format", "json", "--log-interval", "0.01")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.decode().splitlines()
             if line.startswith("{")]
    assert lines[0]["event"] == "started" and lines[0]["total"] == 3


def test_a_heartbeat_is_printed_while_nothing_finishes(silent: StallServer,
                                                       tmp_path: Path) -> None:
    source = tmp_path / "urls.txt"
    source.write_text(silent.url("/hang/beat") + "\n")
    proc = start(source, tmp_path / "beat.sqlite", "--log-interval", "0.2",
                 "--fetch-deadline", "600", "--timeout", "600")
    assert proc.stderr is not None
    beats = []
    for line in proc.stderr:
        if b"progress: 0/1 bookmarks" in line:
            beats.append(line)
            if len(beats) == 2:
                break
    proc.kill()
    proc.communicate()
    assert b"1 in flight, oldest " + silent.url("/hang/beat").encode() in beats[-1]


# ---------------------------------------------------------------- history
def test_runs_shows_a_killed_run_and_show_follows_last_seen(
        slow_pages: PageServer, tmp_path: Path) -> None:
    source = tmp_path / "urls.txt"
    source.write_text("".join(slow_pages.url(f"/article/h{i}") + "\n" for i in range(100)))
    cache = tmp_path / "history.sqlite"
    proc = start(source, cache)
    wait_for_rows(cache, 3)
    proc.kill()
    proc.communicate()
    env = {"BOOKMARK_ENRICH_CACHE": str(cache)}
    runs = jsonl(cli("runs", "--json", env=env).stdout)
    assert runs[0]["status"] == "killed" and runs[0]["total"] >= 3

    one = tmp_path / "one.txt"
    one.write_text(slow_pages.url("/article/h0") + "\n")
    first = json.loads(cli("show", slow_pages.url("/article/h0"), "--json", env=env).stdout)
    assert cli("run", str(one), "-q", env=env).returncode == 0
    again = json.loads(cli("show", slow_pages.url("/article/h0"), "--json", env=env).stdout)
    assert again["bookmark"]["last_seen"] > first["bookmark"]["last_seen"]


# ------------------------------------------------------------ output paths
def test_output_into_a_device_a_fifo_and_through_a_symlink(
        pages: PageServer, tmp_path: Path) -> None:
    source = tmp_path / "urls.txt"
    source.write_text(pages.url("/article/out") + "\n")
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert cli("run", str(source), "-q", "-o", str(link)).returncode == 0
    assert link.is_symlink() and len(jsonl(target.read_bytes())) == 1
    assert target.stat().st_mode & 0o777 == 0o640

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert cli("run", str(source), "-q", "-o", str(fifo)).returncode == 0
    reader.join(60)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and len(jsonl(got[0])) == 1

    assert cli("run", str(source), "-q", "-o", "/dev/null").returncode == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    if os.geteuid() == 0:
        device = tmp_path / "null"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        assert cli("run", str(source), "-q", "-o", str(device)).returncode == 0
        assert stat.S_ISCHR(device.stat().st_mode)

    folder = tmp_path / "folder"
    folder.mkdir()
    refused = cli("run", str(source), "-q", "-o", str(folder))
    assert refused.returncode == 2 and b"is a folder" in refused.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_exit_74_with_what_to_do(pages: PageServer, tmp_path: Path) -> None:
    source = tmp_path / "urls.txt"
    source.write_text(pages.url("/article/full") + "\n")
    result = cli("run", str(source), "-q", "-o", "/dev/full")
    assert result.returncode == 74
    assert b"disk full" in result.stderr and b"Traceback" not in result.stderr


def test_a_full_cache_disk_says_the_cache_is_intact(tmp_path: Path) -> None:
    from bookmark_enrich.cache import damage_is_cache_error
    from bookmark_enrich.errors import DiskFull

    with pytest.raises(DiskFull, match=r"cache disk full: .* the cache is intact"), \
            damage_is_cache_error(tmp_path / "c.sqlite"):
        raise sqlite3.OperationalError("database or disk is full")


# ---------------------------------------------------------------- writeback
def test_writeback_waits_for_the_cache_lock_and_cleans_leftovers(
        pages: PageServer, tmp_path: Path) -> None:
    from bookmark_enrich.lock import cache_lock

    source = tmp_path / "links.jsonl"
    source.write_text(json.dumps({"url": pages.url("/article/wb")}) + "\n")
    cache = tmp_path / "wb.sqlite"
    env = {"BOOKMARK_ENRICH_CACHE": str(cache)}
    assert cli("run", str(source), "-q", env=env).returncode == 0
    leftover = tmp_path / ".links.jsonl.abc123.writeback"
    leftover.write_bytes(b"half")
    with cache_lock(cache):
        held = cli("writeback", str(source), "-q", env=env)
    assert held.returncode == 75 and b"--wait-lock" in held.stderr
    assert cli("writeback", str(source), "-q", env=env).returncode == 0
    assert not leftover.exists()
    assert "enrichment" in source.read_text() or "title" in source.read_text()


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts processes in /proc")
def test_kill_9_of_a_worker_leaves_no_process_behind(redis_queue: Any) -> None:
    from tests.test_queue import live_workers, start_worker, stop, wait_for

    worker = start_worker(redis_queue, env={"BOOKMARK_ENRICH_EXTRACT_PROCESSES": "2"})
    try:
        # A worker warms its extraction pool up before it listens.
        wait_for(lambda: live_workers(redis_queue), "the worker to listen", timeout=120)
        ours = descendants(worker.pid)
        assert ours
    finally:
        worker.kill()
        stop(worker)
    end = time.monotonic() + 3 * 2
    while alive(ours) and time.monotonic() < end:
        time.sleep(0.05)
    assert not alive(ours)


def test_a_bookmark_waiting_on_a_busy_host_gives_its_slot_up() -> None:
    import asyncio

    from bookmark_enrich.slots import Slots

    async def main() -> list[str]:
        slots = Slots(1)
        host_free = asyncio.Event()
        order: list[str] = []

        async def queued_behind_a_host() -> None:
            async with slots.hold():
                async with slots.parked():
                    await host_free.wait()
                order.append("parked one done")

        async def healthy() -> None:
            async with slots.hold():
                order.append("healthy one done")
                host_free.set()

        await asyncio.wait_for(asyncio.gather(queued_behind_a_host(), healthy()), 30)
        return order

    assert asyncio.run(main()) == ["healthy one done", "parked one done"]
