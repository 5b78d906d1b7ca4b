"""`worker --metrics-port`: a queue worker's Prometheus metrics over HTTP (issue 18)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bookmark_enrich.errors import UsageError
from bookmark_enrich.models import StageOutcome
from tests.fixtures_redis import RedisQueue
from tests.helpers import cli, jsonl
from tests.servers.pages import PageServer

pytest.importorskip("bookmark_enrich.queue")
from bookmark_enrich.queue.connection import WorkerInfo
from bookmark_enrich.queue.metrics import WorkerMetrics
from tests.test_queue import (
    QENV,
    _env,
    live_workers,
    start_coordinator,
    start_worker,
    stop,
    terminate,
    wait_for,
    write_urls,
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus_client's own parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def info() -> WorkerInfo:
    return WorkerInfo(id="box-1-abc", host="box", pid=1, version="9.9", concurrency=4,
                      started=time.time() - 5)


def test_counts_bookmarks_stages_media_and_llm_tokens() -> None:
    m = WorkerMetrics(info(), busy=lambda: 3)
    m.bookmark({"fetch": StageOutcome.ok({"http_status": 200}),
                "summarize": StageOutcome.ok({"llm": {"calls": 2, "prompt_tokens": 900,
                                                      "completion_tokens": 80}}),
                "media": StageOutcome.ok({"media": [{"uri": "s3://b/x.mp4", "bytes": 1000},
                                                    {"uri": "file:///m/y.jpg", "bytes": 24}]})})
    m.bookmark({"fetch": StageOutcome.ok(), "extract": StageOutcome.failed("too_large", "big")})
    m.bookmark({"fetch": StageOutcome.failed("timeout", "slow"),
                "extract": StageOutcome("skipped")})
    m.batch("done")
    m.batch("refused")
    got = samples(m.text().decode())
    assert got[("bookmark_enrich_bookmarks_total", (("status", "ok"),))] == 1
    assert got[("bookmark_enrich_bookmarks_total", (("status", "partial"),))] == 1
    assert got[("bookmark_enrich_bookmarks_total", (("status", "failed"),))] == 1
    stage = "bookmark_enrich_stage_results_total"
    assert got[(stage, (("reason", ""), ("stage", "fetch"), ("status", "ok")))] == 2
    assert got[(stage, (("reason", "timeout"), ("stage", "fetch"), ("status", "failed")))] == 1
    assert got[(stage, (("reason", "too_large"), ("stage", "extract"),
                        ("status", "failed")))] == 1
    assert got[(stage, (("reason", ""), ("stage", "extract"), ("status", "skipped")))] == 1
    assert got[("bookmark_enrich_llm_calls_total", ())] == 2
    assert got[("bookmark_enrich_llm_tokens_total", (("kind", "prompt"),))] == 900
    assert got[("bookmark_enrich_llm_tokens_total", (("kind", "completion"),))] == 80
    assert got[("bookmark_enrich_media_stored_bytes_total", ())] == 1024
    assert got[("bookmark_enrich_media_stored_files_total", ())] == 2
    assert got[("bookmark_enrich_worker_batches_total", (("result", "done"),))] == 1
    assert got[("bookmark_enrich_worker_batches_total", (("result", "refused"),))] == 1
    assert got[("bookmark_enrich_worker_busy_bookmarks", ())] == 3
    assert got[("bookmark_enrich_worker_concurrency", ())] == 4
    assert got[("bookmark_enrich_worker_uptime_seconds", ())] >= 5
    assert got[("bookmark_enrich_worker_info", (("host", "box"), ("version", "9.9"),
                                                ("worker", "box-1-abc")))] == 1


def test_serves_on_loopback_and_a_taken_port_is_a_usage_error() -> None:
    m = WorkerMetrics(info())
    url = m.serve("127.0.0.1", 0)
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert "bookmark_enrich_bookmarks_total" in resp.read().decode()
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}"):
            WorkerMetrics(info()).serve("127.0.0.1", port)
    finally:
        m.close()


def test_worker_with_a_taken_metrics_port_says_one_line_and_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The port is checked before the queue: no Redis is needed to see the error.
        proc = cli("worker", "--queue", "redis://127.0.0.1:9/0", "--metrics-port", str(port),
                   env=QENV)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert proc.stdout == b""


def _metrics_url(worker: subprocess.Popen[bytes]) -> str:
    assert worker.stderr is not None
    for raw in worker.stderr:  # the worker's first lines: where its metrics are, then ready
        line = raw.decode()
        if "metrics on " in line:
            return line.split("metrics on ", 1)[1].strip()
    raise AssertionError("the worker never said where its metrics are")


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return samples(resp.read().decode())


@pytest.mark.redis
def test_worker_metrics_match_what_the_coordinator_got(
        redis_queue: RedisQueue, pages: PageServer, tmp_path: Path) -> None:
    urls = [pages.url(f"/article/m{i}") for i in range(8)] + [pages.url("/status/404")]
    source = write_urls(tmp_path / "urls.txt", urls)
    worker = subprocess.Popen(
        [sys.executable, "-m", "bookmark_enrich", "worker", *redis_queue.args(), "-c", "4",
         "--metrics-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    try:
        url = _metrics_url(worker)
        assert url.startswith("http://127.0.0.1:")
        wait_for(lambda: len(live_workers(redis_queue)) == 1, "the worker")
        before = _scrape(url)
        assert before[("bookmark_enrich_bookmarks_total", (("status", "ok"),))] == 0
        proc = start_coordinator(redis_queue, source, tmp_path / "c.sqlite", "--batch-size", "3")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err.decode()  # the 404
        got = _scrape(url)
    finally:
        terminate(worker)
        stop(worker)
    records = jsonl(out)
    for status in ("ok", "partial", "failed"):
        want = sum(r["status"] == status for r in records)
        assert got[("bookmark_enrich_bookmarks_total", (("status", status),))] == want, status
    fetched: dict[tuple[str, str], int] = {}
    for r in records:
        fetch = r["stages"]["fetch"]
        key = (str(fetch["status"]), str(fetch.get("reason") or ""))
        fetched[key] = fetched.get(key, 0) + 1
    for (status, reason), n in fetched.items():
        assert got[("bookmark_enrich_stage_results_total",
                    (("reason", reason), ("stage", "fetch"), ("status", status)))] == n
    assert got[("bookmark_enrich_worker_batches_total", (("result", "done"),))] == 3


@pytest.mark.redis
def test_a_queued_run_reports_the_same_figures_as_a_local_run(
        redis_queue: RedisQueue, pages: PageServer, llm: Any, tmp_path: Path) -> None:
    from bookmark_enrich.cache import ResultCache
    from bookmark_enrich.report.collect import (
        bookmark_counts,
        choose_scope,
        failure_reasons,
        stage_table,
    )
    from bookmark_enrich.report.collection import collection

    urls = [pages.url(f"/article/rq{i}") for i in range(6)] + [pages.url("/status/404")]
    source = write_urls(tmp_path / "urls.txt", urls)
    summaries = {"ENABLE_AI_SUMMARIZATION": "true"}  # the fake LLM server: tags, tokens
    worker = start_worker(redis_queue, "-c", "4", env=summaries)
    try:
        wait_for(lambda: len(live_workers(redis_queue)) == 1, "the worker")
        proc = start_coordinator(redis_queue, source, tmp_path / "q.sqlite", "-q",
                                 "--metrics-file", str(tmp_path / "q.prom"), env=summaries)
        _, err = proc.communicate(timeout=60)
    finally:
        terminate(worker)
    assert proc.returncode == 1, err.decode()
    local = cli("run", str(source), "-q", "--metrics-file", str(tmp_path / "l.prom"),
                env={**QENV, **summaries, "BOOKMARK_ENRICH_CACHE": str(tmp_path / "l.sqlite")})
    assert local.returncode == 1, local.stderr.decode()

    def figures(cache: Path) -> dict[str, Any]:
        with ResultCache(cache, readonly=True) as c:
            scope = choose_scope(c)
            assert scope is not None
            stages = [{k: v for k, v in s.items() if not k.endswith("_ms")}
                      for s in stage_table(c, scope)]
            return {"counts": bookmark_counts(c, scope), "stages": stages,
                    "reasons": failure_reasons(c, scope), "collection": collection(c, scope)}

    assert figures(tmp_path / "q.sqlite") == figures(tmp_path / "l.sqlite")
    # Timings differ, and so do prompt tokens: a prompt lists the tags seen so far, which
    # depends on the order pages were summarized in.
    differ = ("duration", "timestamp", "run_id", "llm_tokens")
    queued, alone = (
        {k: v for k, v in samples((tmp_path / f"{n}.prom").read_text()).items()
         if not any(t in k[0] for t in differ)} for n in ("q", "l"))
    assert queued == alone
    assert queued[("bookmark_enrich_llm_calls_total", ())] == len(urls) - 1
    tokens = samples((tmp_path / "q.prom").read_text())
    assert tokens[("bookmark_enrich_llm_tokens_total", (("kind", "prompt"),))] > 0
