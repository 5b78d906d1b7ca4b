"""Scale-out: `run --queue` coordinates `worker` processes over Redis (taskiq)."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from bookmark_enrich import __version__, enrich, load_settings, open_source
from bookmark_enrich.cli import app
from bookmark_enrich.errors import UsageError
from bookmark_enrich.models import Bookmark, StageOutcome
from bookmark_enrich.stages import build_stages
from tests.conftest import skip_or_fail
from tests.fixtures_redis import RedisQueue
from tests.helpers import CORE_ONLY, cli, invoke_cli, jsonl, run_library
from tests.servers.embeddings import EmbeddingServer
from tests.servers.pages import PageServer
from tests.servers.redis import start_private

queue = pytest.importorskip("bookmark_enrich.queue")
coordinator = importlib.import_module("bookmark_enrich.queue.coordinator")

# Extraction in a thread: no process pool per worker subprocess (2 cores for everyone).
QENV = {**CORE_ONLY, "BOOKMARK_ENRICH_EXTRACT_PROCESSES": "0"}


@pytest.fixture
def slow_pages() -> Iterator[PageServer]:
    server = PageServer(latency=0.25).start()
    yield server
    server.stop()


# ---------------------------------------------------------------------- helpers
def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, **QENV, **(extra or {})}


def start_worker(q: RedisQueue, *extra: str, env: dict[str, str] | None = None
                 ) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bookmark_enrich", "worker", *q.args(), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(env))


def start_coordinator(q: RedisQueue, source: Path, cache: Path, *extra: str,
                      env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bookmark_enrich", "run", str(source), *q.args(), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=_env({"BOOKMARK_ENRICH_CACHE": str(cache), **(env or {})}))


def live_workers(q: RedisQueue) -> list[dict[str, Any]]:
    client: Any = q.server.client()
    with client:
        keys = list(client.scan_iter(match=f"{q.name}:workers:*"))
        return [json.loads(v) for v in client.mget(keys) if v] if keys else []


def wait_for(predicate: Any, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def terminate(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a service manager stops a worker; kill what is still there after 15 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def comparable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records without what differs between any two runs (timings, cache flags)."""
    out = []
    for r in sorted(records, key=lambda r: r["position"]):
        r = {k: v for k, v in r.items() if k != "cached"}
        r["stages"] = {n: {k: v for k, v in s.items() if k not in ("duration_ms", "cached")}
                       for n, s in r["stages"].items()}
        out.append(r)
    return out


def write_urls(path: Path, urls: list[str]) -> Path:
    path.write_text("\n".join(urls) + "\n")
    return path


# ---------------------------------------------------------------------- unit level
def test_outcomes_and_bookmarks_survive_json() -> None:
    outcome = StageOutcome.ok({"title": "T", "tags": ["a"]}, text="body", attempts=2,
                              duration=0.5, fingerprint="abc")
    outcome.payload = object()  # in-memory only: never sent
    data = json.loads(json.dumps(queue.outcome_to_json(outcome)))
    back = queue.outcome_from_json(data)
    assert (back.status, back.output, back.text, back.attempts, back.fingerprint) == \
        ("ok", {"title": "T", "tags": ["a"]}, "body", 2, "abc")
    assert back.payload is None and back.cached is False
    failed = queue.outcome_from_json(queue.outcome_to_json(StageOutcome.failed("timeout", "slow")))
    assert (failed.status, failed.reason, failed.message) == ("failed", "timeout", "slow")
    with pytest.raises(ValueError):
        queue.outcome_from_json({"status": "weird"})
    bm = Bookmark("http://x/a", "http://x/a", "k1", {"url": "http://x/a", "n": 1}, 3, source_id=9)
    again = queue.bookmark_from_json(json.loads(json.dumps(queue.bookmark_to_json(bm))))
    assert (again.url, again.key, again.record, again.position, again.source_id) == \
        (bm.url, bm.key, bm.record, 3, None)


def _in_memory_run(lines: list[str], monkeypatch: pytest.MonkeyPatch, *, batch_size: int = 3
                   ) -> tuple[list[dict[str, Any]], list[str]]:
    """A queued run in this process: taskiq's in-memory broker instead of Redis."""
    settings = load_settings(enable_ai_summarization=False, enable_media_download=False,
                             extract_processes=0)
    records: list[dict[str, Any]] = []
    notes: list[str] = []

    async def go() -> None:
        conn = queue.QueueConnection.in_memory()
        info = queue.WorkerInfo(id="t", host="test", pid=1, version=__version__, concurrency=4)
        handler = queue.BatchHandler(settings, worker=info)
        conn.serve(handler)
        stages = build_stages(settings)
        executor = queue.RemoteExecutor(conn, {s.name: s.fingerprint() for s in stages},
                                        notify=notes.append, batch_size=batch_size, capacity=4)
        src = open_source("-", stdin=io.BytesIO(("\n".join(lines) + "\n").encode()))
        try:
            async with executor:
                await enrich(src, settings, sink=records.append, stages=stages,
                             executor=executor)
        finally:
            await handler.aclose()

    asyncio.run(go())
    return records, notes


def test_in_memory_queue_matches_a_local_run(pages: PageServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    urls = [pages.url(f"/article/m{i}") for i in range(7)] + [pages.url("/status/404")]
    queued, _ = _in_memory_run(urls, monkeypatch)
    assert len(queued) == len(urls)
    # A second, local run finds everything the "workers" did in the cache.
    local, stats = run_library(urls)
    assert stats.cached == len(urls)
    assert comparable(queued) == comparable(local)
    assert next(r for r in queued if r["url"].endswith("/status/404"))["status"] == "failed"


def test_worker_refuses_a_message_of_another_version() -> None:
    settings = load_settings(enable_ai_summarization=False, enable_media_download=False)
    info = queue.WorkerInfo(id="t", host="h", pid=7, version=__version__, concurrency=2)
    handler = queue.BatchHandler(settings, worker=info)

    async def go() -> dict[str, Any]:
        try:
            reply = await handler(json.dumps({"version": "0.0.1", "items": []}))
        finally:
            await handler.aclose()
        return dict(json.loads(reply))

    reply = asyncio.run(go())
    assert reply == {"refused": "version", "version": __version__, "worker": "h:7"}


def test_coordinator_keeps_the_first_result_per_bookmark() -> None:
    async def go() -> tuple[dict[str, StageOutcome], list[str]]:
        conn = queue.QueueConnection.in_memory()
        notes: list[str] = []
        ex = queue.RemoteExecutor(conn, {"fetch": "coordinator-fp"}, notify=notes.append)
        bm = Bookmark("http://x/a", "http://x/a", "k1", {}, 1)
        future = asyncio.get_running_loop().create_future()
        item = coordinator._Item(bm, {}, {"fetch"}, future)
        ex._sent = {"t1": coordinator._Sent([item]), "t2": coordinator._Sent([item])}
        ex._inflight = 2

        def reply(title: str) -> SimpleNamespace:
            out = queue.outcome_to_json(StageOutcome.ok({"title": title}, fingerprint="w"))
            return SimpleNamespace(is_err=False, return_value=json.dumps(
                {"items": [{"key": "k1", "outcomes": {"fetch": out}}]}))

        ex._settle("t1", reply("first"))
        ex._settle("t2", reply("second"))  # a redelivered copy: dropped
        ex._settle("t3", reply("unknown"))  # not ours: ignored
        return future.result(), notes

    outcomes, _ = asyncio.run(go())
    assert outcomes["fetch"].output == {"title": "first"}


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "bookmark_enrich.queue")
    monkeypatch.setitem(sys.modules, "taskiq", None)
    with pytest.raises(UsageError) as info:
        importlib.import_module("bookmark_enrich.queue")
    assert "pip install 'bookmark-enrich[queue]'" in str(info.value)
    assert info.value.exit_code == 2


# ---------------------------------------------------------------------- bad input
def test_unreachable_redis_is_one_line_and_exit_3(tmp_path: Path) -> None:
    source = write_urls(tmp_path / "u.txt", ["http://127.0.0.1:9/a"])
    for args in (["run", str(source), "--queue", "redis://127.0.0.1:9/0"],
                 ["worker", "--queue", "redis://127.0.0.1:9/0"]):
        proc = invoke_cli(*args, env=QENV)
        err = proc.stderr.decode()
        assert proc.returncode == 3, err
        assert "cannot reach the queue at redis://127.0.0.1:9/0" in err
        assert "Traceback" not in err and proc.stdout == b""


def test_queue_url_must_be_redis_and_password_stays_hidden(tmp_path: Path) -> None:
    source = write_urls(tmp_path / "u.txt", ["http://127.0.0.1:9/a"])
    proc = invoke_cli("run", str(source), "--queue", "http://user:secret@host/", env=QENV)
    assert proc.returncode == 2
    assert "--queue must be a redis:// URL" in proc.stderr.decode()
    # A real process: whatever it logs reaches the stream checked here.
    proc = cli("worker", "--queue", "redis://:hunter2@127.0.0.1:9/0", env=QENV)
    assert proc.returncode == 3
    assert "hunter2" not in proc.stderr.decode() and "***" in proc.stderr.decode()


@pytest.mark.redis
def test_no_workers_said_after_grace_then_no_worker_timeout(
        redis_queue: RedisQueue, tmp_path: Path) -> None:
    client: Any = redis_queue.server.client()
    with client:  # a worker of another version is alive: it must not get the work
        client.set(f"{redis_queue.name}:workers:old", json.dumps(
            {"id": "old", "host": "oldbox", "pid": 1, "version": "0.0.1", "concurrency": 8}),
            ex=30)
    source = write_urls(tmp_path / "u.txt", ["http://127.0.0.1:9/a"])
    proc = cli("run", str(source), *redis_queue.args(), "--no-worker-timeout", "1", env=QENV)
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    assert "worker oldbox:1 runs bookmark-enrich 0.0.1, this coordinator " \
        f"{__version__}: it gets no work (versions must match)" in err
    assert "no worker is listening on redis://127.0.0.1:6379/0" in err
    assert "error: no worker took the work within 1s (--no-worker-timeout)" in err
    assert "Traceback" not in err and proc.stdout == b""


# ---------------------------------------------------------------------- with Redis
@pytest.mark.redis
def test_two_workers_match_a_local_run_and_rerun_is_cached(
        redis_queue: RedisQueue, pages: PageServer, tmp_path: Path) -> None:
    urls = [pages.url(f"/article/q{i}") for i in range(30)] + \
        [pages.url("/status/404"), pages.url(f"/article/q{3}")]  # a duplicate too
    source = write_urls(tmp_path / "urls.txt", urls)
    workers = [start_worker(redis_queue, "-c", "4") for _ in range(2)]
    try:
        wait_for(lambda: len(live_workers(redis_queue)) == 2, "two workers")
        assert {w["version"] for w in live_workers(redis_queue)} == {__version__}
        cache = tmp_path / "coord.sqlite"
        proc = start_coordinator(redis_queue, source, cache, "--batch-size", "3")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err.decode()  # the 404 bookmark failed
        queued = jsonl(out)
        hits = pages.hits.copy()
        again = start_coordinator(redis_queue, source, cache, "-q")
        out2, err2 = again.communicate(timeout=60)
        assert again.returncode == 1, err2.decode()
        rerun_hits = pages.hits.copy()
    finally:
        terminate(*workers)
    assert len(queued) == len(urls)
    assert b"2 worker(s)" in err and b"Traceback" not in err
    local, _ = run_library(urls, cache=tmp_path / "local.sqlite")
    assert comparable(queued) == comparable(local)
    # Workers' results are valid for the coordinator's next run: nothing is redone.
    assert rerun_hits == hits
    assert all(r["cached"] for r in jsonl(out2))
    # Gracefully stopped workers leave nothing behind but the (empty) stream itself.
    assert redis_queue.server.keys(redis_queue.name) == [f"{redis_queue.name}:v{__version__}:tasks"]
    client: Any = redis_queue.server.client()
    with client:
        assert client.xlen(f"{redis_queue.name}:v{__version__}:tasks") == 0


@pytest.mark.redis
def test_default_stages_through_the_queue_match_a_local_run(
        redis_queue: RedisQueue, pages: PageServer, llm: Any, tmp_path: Path) -> None:
    # Every stage enabled by default, the summarizer talking to the fake LLM server.
    defaults = {"ENABLE_AI_SUMMARIZATION": "true", "ENABLE_MEDIA_DOWNLOAD": "true"}
    urls = [pages.url(f"/article/d{i}") for i in range(6)]
    source = write_urls(tmp_path / "urls.txt", urls)
    worker = start_worker(redis_queue, env=defaults)
    try:
        wait_for(lambda: len(live_workers(redis_queue)) == 1, "a worker")
        proc = start_coordinator(redis_queue, source, tmp_path / "c.sqlite", "-q", env=defaults)
        out, err = proc.communicate(timeout=60)
    finally:
        stop(worker)
    local, stats = run_library(urls, enable_ai_summarization=True, enable_media_download=True,
                               cache=tmp_path / "l.sqlite")
    assert proc.returncode == (1 if stats.failed or stats.partial else 0), err.decode()
    queued = jsonl(out)
    assert comparable(queued) == comparable(local)
    assert all(r["enrichment"]["summary"] for r in queued)



@pytest.mark.redis
def test_workers_embed_and_search_works_on_the_queue_filled_cache(
        redis_queue: RedisQueue, pages: PageServer, embeddings: EmbeddingServer, llm: Any,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The servers' addresses reach the worker and the coordinator by the environment
    # (the fixtures set BOOKMARK_ENRICH_EMBEDDING_URL and LM_STUDIO_API_URL).
    summaries = {"ENABLE_AI_SUMMARIZATION": "true"}
    page = "<html><head><title>{}</title></head><body><article><p>{}</p></article></body></html>"
    bread = pages.add("q-bread", page.format(
        "Sourdough starter care", "Feed the sourdough starter flour and water daily. " * 20))
    pizza = pages.add("q-pizza", page.format(
        "Pizza dough", "Pizza dough ferments cold for two days before baking. " * 20))
    rye = pages.add("q-rye", page.format(
        "Rye sourdough", "Feed the rye sourdough starter flour and water daily. " * 20))
    cache = tmp_path / "c.sqlite"
    worker = start_worker(redis_queue, env=summaries)
    try:
        wait_for(lambda: len(live_workers(redis_queue)) == 1, "a worker")
        proc = start_coordinator(redis_queue, write_urls(tmp_path / "a.txt", [bread, pizza]),
                                 cache, "-q", env=summaries)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        # The worker's next bookmark gets the tags of those it tagged (it has no cache).
        llm.requests.clear()
        proc = start_coordinator(redis_queue, write_urls(tmp_path / "b.txt", [rye]),
                                 cache, "-q", env=summaries)
        proc.communicate(timeout=60)
    finally:
        stop(worker)
    assert all(r["stages"]["embed"]["status"] == "ok" for r in jsonl(out))
    prompt = str(llm.chat_requests[0]["messages"][-1]["content"])
    assert "Title: Rye sourdough" in prompt and "Tags of similar bookmarks" in prompt
    monkeypatch.setenv("BOOKMARK_ENRICH_CACHE", str(cache))
    runner = CliRunner()
    result = runner.invoke(app, ["search", "flour water", "--mode", "semantic", "--jsonl"])
    found = [json.loads(x)["url"] for x in result.stdout.splitlines()]
    assert result.exit_code == 0 and found[0] in (bread, rye), result.stderr
    result = runner.invoke(app, ["similar", bread, "--jsonl"])
    similar = [json.loads(x)["url"] for x in result.stdout.splitlines()]
    assert result.exit_code == 0 and similar[0] == rye


@pytest.mark.redis
def test_sigkilled_worker_loses_no_bookmark_and_duplicates_none(
        redis_queue: RedisQueue, slow_pages: PageServer, tmp_path: Path) -> None:
    urls = [slow_pages.url(f"/article/k{i}") for i in range(24)]
    source = write_urls(tmp_path / "urls.txt", urls)
    doomed = start_worker(redis_queue, "-c", "4", "--idle-timeout", "1")
    wait_for(lambda: len(live_workers(redis_queue)) == 1, "a worker")
    proc = start_coordinator(redis_queue, source, tmp_path / "c.sqlite", "--batch-size", "2")
    try:
        wait_for(lambda: sum(slow_pages.hits.values()) >= 4, "the worker to start fetching")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        survivor = start_worker(redis_queue, "-c", "8", "--idle-timeout", "1")
        out, err = proc.communicate(timeout=60)
    finally:
        stop(doomed, proc)
    stop(survivor)
    assert proc.returncode == 0, err.decode()
    records = jsonl(out)
    assert sorted(r["url"] for r in records) == sorted(urls)  # each once
    assert all(r["status"] == "ok" for r in records)


@pytest.mark.redis
def test_sigterm_worker_finishes_what_it_runs_and_hands_back_the_rest(
        redis_queue: RedisQueue, slow_pages: PageServer, tmp_path: Path) -> None:
    urls = [slow_pages.url(f"/article/t{i}") for i in range(16)]
    source = write_urls(tmp_path / "urls.txt", urls)
    # An idle timeout far past the limits below: only a hand-back can finish the run in time.
    first = start_worker(redis_queue, "-c", "4", "--idle-timeout", "600")
    wait_for(lambda: len(live_workers(redis_queue)) == 1, "a worker")
    proc = start_coordinator(redis_queue, source, tmp_path / "c.sqlite", "--batch-size", "2")
    try:
        wait_for(lambda: sum(slow_pages.hits.values()) >= 2, "the worker to start fetching")
        first.send_signal(signal.SIGTERM)
        _, first_err = first.communicate(timeout=60)
        assert first.returncode == 0, first_err.decode()
        second = start_worker(redis_queue, "-c", "8", "--idle-timeout", "600")
        started = time.monotonic()
        out, err = proc.communicate(timeout=120)
        # Handed back at once: nobody waited for the 600 s idle timeout.
        assert time.monotonic() - started < 300
    finally:
        stop(first, proc)
    stop(second)
    assert b"worker: stopping; finishing" in first_err and b"Traceback" not in first_err
    assert proc.returncode == 0, err.decode()
    assert sorted(r["url"] for r in jsonl(out)) == sorted(urls)


@pytest.mark.redis
def test_restarted_coordinator_does_not_redo_what_is_cached(
        redis_queue: RedisQueue, slow_pages: PageServer, tmp_path: Path) -> None:
    urls = [slow_pages.url(f"/article/r{i}") for i in range(40)]
    source = write_urls(tmp_path / "urls.txt", urls)
    cache = tmp_path / "c.sqlite"
    workers = [start_worker(redis_queue, "-c", "4")]  # 40 x 0.25 s / 4: about 2.5 s of work
    try:
        wait_for(lambda: len(live_workers(redis_queue)) == 1, "a worker")
        proc = start_coordinator(redis_queue, source, cache, "--batch-size", "2")
        wait_for(lambda: len(_finished_urls(cache)) >= 8, "cached results", timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        finished = _finished_urls(cache)
        assert 0 < len(finished) < len(urls)
        hits_after_kill = slow_pages.hits.copy()
        again = start_coordinator(redis_queue, source, cache, "-q")
        out, err = again.communicate(timeout=60)
    finally:
        stop(*workers)
    assert again.returncode == 0, err.decode()
    records = jsonl(out)
    assert sorted(r["url"] for r in records) == sorted(urls)
    for url in finished:
        path = url.removeprefix(slow_pages.base)
        assert slow_pages.hits[path] == hits_after_kill[path]
        assert next(r for r in records if r["url"] == url)["cached"] is True


def _finished_urls(cache: Path) -> set[str]:
    import sqlite3

    if not cache.exists():
        return set()
    try:
        with sqlite3.connect(cache) as db:
            return {row[0] for row in db.execute(
                "SELECT b.url FROM bookmarks b JOIN results r ON r.key = b.key "
                "WHERE r.stage = 'extract' AND r.status = 'ok'")}
    except sqlite3.OperationalError:
        return set()


@pytest.mark.redis
def test_lease_requeues_a_dead_workers_messages_hands_back_and_trims(
        redis_queue: RedisQueue) -> None:
    stream = f"{redis_queue.name}:v{__version__}:tasks"

    async def go() -> None:
        # idle_timeout 0: what a dead consumer holds is claimable at once, no waiting.
        conn = queue.QueueConnection.redis_url(redis_queue.url, name=redis_queue.name,
                                               consumer="alive", idle_timeout=0)
        try:
            await conn.connect()
            r: Any = conn.redis
            for n in range(3):
                await r.xadd(stream, {b"data": f"m{n}".encode()})
            await r.xreadgroup("workers", "dead", {stream: ">"}, count=2)  # never acked
            lease = conn.lease()
            # Nothing new arrives, yet the dead consumer's two come back as new entries.
            assert await lease.requeue_idle() == 2
            assert [f[b"data"] for _, f in await r.xrange(stream)] == [b"m2", b"m0", b"m1"]
            assert (await r.xpending(stream, "workers"))["pending"] == 0
            got = await r.xreadgroup("workers", "alive", {stream: ">"}, count=3)
            ids = [msg_id for msg_id, _ in got[0][1]]
            await r.xack(stream, "workers", ids[0])
            await lease.renew()
            await lease.trim()  # only the acknowledged head goes
            assert [i for i, _ in await r.xrange(stream)] == ids[1:]
            assert await lease.hand_back() == 2  # a stopping worker: back to the stream
            assert (await r.xpending(stream, "workers"))["pending"] == 0
            assert [f[b"data"] for _, f in await r.xrange(stream)] == [b"m0", b"m1"]
            got = await r.xreadgroup("workers", "alive", {stream: ">"}, count=3)
            await r.xack(stream, "workers", *[msg_id for msg_id, _ in got[0][1]])
            await lease.trim()
            assert await r.xlen(stream) == 0
        finally:
            await conn.close()

    asyncio.run(go())


@pytest.mark.redis
def test_queue_health_lists_live_workers(redis_queue: RedisQueue) -> None:
    from bookmark_enrich.queue import queue_checks

    settings = load_settings()
    assert asyncio.run(queue_checks(settings, {})) == []  # no --queue: nothing to say
    options = {"queue": redis_queue.url, "queue_name": redis_queue.name}
    checks = asyncio.run(queue_checks(settings, options))
    assert [(c.name, c.status) for c in checks] == [("queue", "warn")]
    assert "no live worker" in checks[0].detail
    client: Any = redis_queue.server.client()
    with client:
        for wid, host, version in (("a", "gpu-box", __version__), ("b", "old-box", "0.0.1")):
            client.set(f"{redis_queue.name}:workers:{wid}", json.dumps(
                {"id": wid, "host": host, "pid": 7, "version": version, "concurrency": 16,
                 "busy": 3, "done": 40}), ex=30)
    checks = asyncio.run(queue_checks(settings, options))
    assert [(c.name, c.status) for c in checks] == [
        ("queue", "ok"), ("worker gpu-box:7", "ok"), ("worker old-box:7", "warn")]
    assert "1 live worker(s), 16 bookmarks at once" in checks[0].detail
    assert "0.0.1" in checks[2].detail and "gets no work" in checks[2].detail
    down = asyncio.run(queue_checks(settings, {"queue": "redis://127.0.0.1:9/0"}))
    assert down[0].status == "fail" and "cannot reach the queue" in down[0].detail


@pytest.mark.redis
def test_doctor_queue_lists_live_workers(redis_queue: RedisQueue) -> None:
    client: Any = redis_queue.server.client()
    with client:  # a worker's heartbeat, as `worker -c 3` writes it
        client.set(f"{redis_queue.name}:workers:w1", json.dumps(
            {"id": "w1", "host": "box", "pid": 42, "version": __version__, "concurrency": 3,
             "busy": 0, "done": 0}), ex=30)
    proc = cli("doctor", *redis_queue.args(), "--json", "--no-summary", env=QENV)
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["queue"]["status"] == "ok"
    assert "1 live worker(s), 3 bookmarks at once" in checks["queue"]["detail"]
    assert checks["worker box:42"]["status"] == "ok"
    assert f"bookmark-enrich {__version__}, concurrency 3" in checks["worker box:42"]["detail"]
    assert checks["queue"]["data"]["workers"][0]["concurrency"] == 3


@pytest.mark.redis
def test_redis_lost_mid_run_is_one_line_and_exit_3(
        slow_pages: PageServer, tmp_path: Path) -> None:
    started = start_private()
    if started is None:
        skip_or_fail("no redis-server binary to start a private Redis")
        return
    redis_proc, server = started
    q = RedisQueue(server, server.url, server.fresh_name())
    urls = [slow_pages.url(f"/article/l{i}") for i in range(40)]
    source = write_urls(tmp_path / "urls.txt", urls)
    worker = start_worker(q, "-c", "2")
    try:
        wait_for(lambda: len(live_workers(q)) == 1, "a worker")
        proc = start_coordinator(q, source, tmp_path / "c.sqlite", "--batch-size", "1")
        wait_for(lambda: sum(slow_pages.hits.values()) >= 2, "the worker to start fetching")
        redis_proc.kill()
        redis_proc.wait()
        _, err = proc.communicate(timeout=90)
        _, worker_err = worker.communicate(timeout=90)
    finally:
        stop(worker)
        if redis_proc.poll() is None:
            redis_proc.kill()
    assert proc.returncode == 3, err.decode()
    assert f"error: queue {server.url}:" in err.decode() and b"Traceback" not in err
    assert worker.returncode == 3, worker_err.decode()
    assert f"error: lost the queue at {server.url}" in worker_err.decode()
    assert b"Traceback" not in worker_err
