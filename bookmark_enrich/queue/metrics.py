"""A worker's Prometheus metrics over HTTP (``worker --metrics-port``).

The same families as ``run --metrics-file`` (bookmarks by status, stage results
by stage, status and reason, media stored, LLM calls and tokens), counted since
the worker started, plus what only a long-lived worker has: batches, bookmarks
in hand, uptime. prometheus-client keeps the counters and serves them from a
daemon thread; the worker's event loop only increments them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..models import StageOutcome
from ..pipeline import record_status

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from .connection import WorkerInfo

__all__ = ["DEFAULT_METRICS_HOST", "WorkerMetrics"]

DEFAULT_METRICS_HOST = "127.0.0.1"
_PREFIX = "bookmark_enrich"


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class WorkerMetrics:
    """Counters of one worker process and the HTTP server that exposes them."""

    def __init__(self, info: WorkerInfo, busy: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Info

        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self._bookmarks = Counter(
            f"{_PREFIX}_bookmarks", "Bookmarks this worker processed, by status (ok, "
            "partial, failed) over the stages it ran.", ["status"], registry=reg)
        self._stages = Counter(
            f"{_PREFIX}_stage_results", "Stage outcomes of this worker by stage, status "
            "(ok, skipped, failed) and failure reason.", ["stage", "status", "reason"],
            registry=reg)
        self._batches = Counter(
            f"{_PREFIX}_worker_batches", "Batches this worker took, by how they ended "
            "(done, refused: another version, abandoned: coordinator gone).", ["result"],
            registry=reg)
        self._media_bytes = Counter(f"{_PREFIX}_media_stored_bytes",
                                    "Bytes of media this worker stored.", registry=reg)
        self._media_files = Counter(f"{_PREFIX}_media_stored_files",
                                    "Media files this worker stored.", registry=reg)
        self._llm_calls = Counter(f"{_PREFIX}_llm_calls", "LLM requests this worker made.",
                                  registry=reg)
        self._tokens = Counter(
            f"{_PREFIX}_llm_tokens", "LLM tokens of this worker, as the server reported "
            "them, by kind (prompt, completion).", ["kind"], registry=reg)
        for status in ("ok", "partial", "failed"):
            self._bookmarks.labels(status)
        for result in ("done", "refused", "abandoned"):
            self._batches.labels(result)
        for kind in ("prompt", "completion"):
            self._tokens.labels(kind)
        started = info.started
        Gauge(f"{_PREFIX}_worker_start_time_seconds", "When this worker started "
              "(Unix time).", registry=reg).set(started)
        Gauge(f"{_PREFIX}_worker_uptime_seconds", "Seconds since this worker started.",
              registry=reg).set_function(lambda: time.time() - started)
        Gauge(f"{_PREFIX}_worker_concurrency", "Bookmarks this worker runs at once at most.",
              registry=reg).set(info.concurrency)
        if busy is not None:
            Gauge(f"{_PREFIX}_worker_busy_bookmarks", "Bookmarks this worker holds now.",
                  registry=reg).set_function(lambda: float(busy()))
        Info(f"{_PREFIX}_worker", "This worker: id, host and version.", registry=reg).info(
            {"worker": info.id, "host": info.host, "version": info.version})
        self._server: WSGIServer | None = None

    # ------------------------------------------------------------------ counting
    def batch(self, result: str) -> None:
        self._batches.labels(result).inc()

    def bookmark(self, outcomes: dict[str, StageOutcome]) -> None:
        """Count one bookmark's fresh outcomes (the stages this worker ran for it)."""
        if not outcomes:
            return
        self._bookmarks.labels(record_status(outcomes)).inc()
        for stage, o in outcomes.items():
            reason = str(o.reason or "unknown") if o.status == "failed" else ""
            self._stages.labels(stage, o.status, reason).inc()
            if o.status == "ok" and isinstance(o.output, dict):
                self._spent(o.output)

    def _spent(self, output: dict[str, Any]) -> None:
        media = output.get("media")
        if isinstance(media, list):
            items = [m for m in media if isinstance(m, dict)]
            self._media_files.inc(len(items))
            self._media_bytes.inc(sum(_number(m.get("bytes")) for m in items))
        llm = output.get("llm")
        if isinstance(llm, dict):
            self._llm_calls.inc(_number(llm.get("calls")))
            self._tokens.labels("prompt").inc(_number(llm.get("prompt_tokens")))
            self._tokens.labels("completion").inc(_number(llm.get("completion_tokens")))

    def text(self) -> bytes:
        """The exposition, as the HTTP endpoint serves it."""
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))

    # ------------------------------------------------------------------- serving
    def serve(self, host: str, port: int) -> str:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; returns its URL.

        A port in use or an address that cannot be bound is a usage error (one line).
        """
        from prometheus_client import start_http_server

        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except (OSError, OverflowError) as exc:  # in use, no such address, port > 65535
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise UsageError(f"--metrics-port: cannot listen on {host}:{port}: "
                             f"{reason}") from None
        self._server = server
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{server.server_port}/metrics"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
