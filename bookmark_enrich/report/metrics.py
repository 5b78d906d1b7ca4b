"""A run's metrics in the Prometheus text format, for node_exporter's textfile collector.

The figures are read back from the cache, like the report's: the bookmark counts
are the run's row (what ``status`` and ``runs`` show), the stage outcomes and what
was stored or spent are the results the run wrote. prometheus-client writes the
format; the file is replaced atomically so the collector never reads half of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..cache import ResultCache
from ..errors import UsageError
from ..fileio import atomic_replace
from .collect import Scope

__all__ = ["metrics_text", "write_metrics"]

_PREFIX = "bookmark_enrich"


def _stage_results(cache: ResultCache, scope: Scope) -> list[dict[str, Any]]:
    assert scope.run is not None
    frm, params = scope.results()
    run_id = scope.run["id"]
    return list(cache.iter_rows(
        "SELECT r.stage, CASE WHEN r.run_id = ? THEN r.status ELSE 'cached' END AS status, "
        "CASE WHEN r.run_id = ? AND r.status = 'failed' THEN coalesce(r.reason, 'unknown') "
        f"ELSE '' END AS reason, count(*) AS n {frm} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        [run_id, run_id, *params]))


def _spent(cache: ResultCache, run_id: int) -> dict[str, int]:
    """Media stored and LLM use by this run's own results."""
    media = next(cache.iter_rows(
        "SELECT count(m.value) AS files, coalesce(sum(json_extract(m.value, '$.bytes')), 0) "
        "AS bytes FROM results r, json_each(CASE WHEN json_valid(r.output) THEN r.output END, "
        "'$.media') m WHERE r.run_id = ? AND r.stage = 'media' AND r.status = 'ok'",
        (run_id,)))
    llm = next(cache.iter_rows(
        "SELECT coalesce(sum(json_extract(r.output, '$.llm.calls')), 0) AS calls, "
        "coalesce(sum(json_extract(r.output, '$.llm.prompt_tokens')), 0) AS prompt, "
        "coalesce(sum(json_extract(r.output, '$.llm.completion_tokens')), 0) AS completion "
        "FROM results r WHERE r.run_id = ? AND r.stage = 'summarize' AND r.status = 'ok' "
        "AND json_valid(r.output)", (run_id,)))
    return {**media, **llm}


def metrics_text(cache: ResultCache, scope: Scope) -> bytes:
    """The run's metrics in the Prometheus text exposition format."""
    from prometheus_client import (
        CollectorRegistry,
        Counter,
        Gauge,
        disable_created_metrics,
        generate_latest,
    )

    # A _created series per counter says nothing for a batch run.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    run = scope.run
    if run is None:
        raise UsageError("metrics describe one run, not the whole cache")
    reg = CollectorRegistry(auto_describe=True)
    books = Counter(f"{_PREFIX}_bookmarks", "Bookmarks of the last run by status "
                    "(cached ones are counted under their status too).", ["status"],
                    registry=reg)
    for status in ("ok", "partial", "failed", "cached"):
        books.labels(status).inc(int(run.get(status) or 0))
    Counter(f"{_PREFIX}_input_issues", "Malformed input records the last run skipped.",
            registry=reg).inc(int(run.get("issues") or 0))
    stages = Counter(f"{_PREFIX}_stage_results", "Stage outcomes of the last run by stage, "
                     "status (ok, skipped, failed, cached) and failure reason.",
                     ["stage", "status", "reason"], registry=reg)
    for row in _stage_results(cache, scope):
        stages.labels(row["stage"], row["status"], row["reason"]).inc(row["n"])
    Gauge(f"{_PREFIX}_run_duration_seconds", "Wall time of the last run.",
          registry=reg).set(float(run.get("wall_seconds") or 0))
    Gauge(f"{_PREFIX}_run_id", "The last run's id in the cache.", registry=reg).set(run["id"])
    Gauge(f"{_PREFIX}_last_run_timestamp_seconds", "When the last run ended (Unix time).",
          registry=reg).set(float(run.get("finished_at") or run.get("started_at") or 0))
    Gauge(f"{_PREFIX}_run_success", "1 when the last run finished (not interrupted or "
          "failed), else 0.", registry=reg).set(1 if run.get("status") == "finished" else 0)
    last_ok = next(cache.iter_rows(
        "SELECT max(finished_at) AS t FROM runs WHERE status = 'finished' AND id <= ?",
        (run["id"],)))["t"]
    Gauge(f"{_PREFIX}_last_success_timestamp_seconds", "When a run last finished "
          "(Unix time; 0: never).", registry=reg).set(float(last_ok or 0))
    spent = _spent(cache, int(run["id"]))
    Counter(f"{_PREFIX}_media_stored_bytes", "Bytes of media the last run stored.",
            registry=reg).inc(int(spent["bytes"]))
    Counter(f"{_PREFIX}_media_stored_files", "Media files the last run stored.",
            registry=reg).inc(int(spent["files"]))
    Counter(f"{_PREFIX}_llm_calls", "LLM requests the last run made.",
            registry=reg).inc(int(spent["calls"]))
    tokens = Counter(f"{_PREFIX}_llm_tokens", "LLM tokens of the last run, as the server "
                     "reported them, by kind (prompt, completion).", ["kind"], registry=reg)
    tokens.labels("prompt").inc(int(spent["prompt"]))
    tokens.labels("completion").inc(int(spent["completion"]))
    return bytes(generate_latest(reg))


def write_metrics(cache: ResultCache, scope: Scope, target: Path) -> int:
    """Replace ``target`` with the run's metrics; returns the bytes written."""
    data = metrics_text(cache, scope)
    with atomic_replace(target, suffix=".prom.tmp", mode=0o644) as out:
        out.write(data)
    return len(data)
