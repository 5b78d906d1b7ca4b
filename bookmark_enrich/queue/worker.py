"""A worker: take batches from the stream, run the asked stages with its own settings.

The worker runs a taskiq :class:`Receiver` on the queue's stream and executes the
same stages as a local run with its own services (LLM, Cobalt, S3) and its own
concurrency. It returns outcomes through the result backend and never touches a
cache: the coordinator is the only writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from redis import exceptions as redis_errors
from taskiq.receiver import Receiver

from .._version import __version__
from ..cache import ResultCache
from ..events import Notice
from ..extraction import warm_up
from ..models import StageOutcome
from ..pipeline import Pipeline, preflight
from ..reasons import Reason
from ..settings import Settings
from ..stages import Stage, build_stages
from ..stages.neighbours import neighbour_tags
from ..tags import TagVocabulary
from ..workers import run_cpu, shutdown_pool
from .broker import Capacity
from .connection import (
    DEFAULT_QUEUE_NAME,
    QueueConnection,
    QueueUnavailable,
    WorkerInfo,
    connection_error,
    first_line,
)
from .metrics import DEFAULT_METRICS_HOST, WorkerMetrics
from .wire import (
    abandoned_reply,
    bookmark_from_json,
    outcome_from_json,
    outcome_to_json,
    refusal,
    results_reply,
)

__all__ = ["BatchHandler", "run_worker"]

HEARTBEAT_SECONDS = 5.0
_BEATS_STOP_SECONDS = 5.0
"""How long a stopping worker waits for its lease loop's round in flight (Redis may be
gone), before cancelling it."""


class _NoCache:
    """Stands in for the cache in a worker's pipeline, which only runs execute_local."""


class BatchHandler:
    """The worker's task body: run the asked stages for each bookmark of a batch.

    ``settings`` are the worker's own: its services and its concurrency (one
    semaphore over bookmarks, shared by all the batches it holds).
    """

    def __init__(self, settings: Settings, *, worker: WorkerInfo,
                 conn: QueueConnection | None = None, capacity: Capacity | None = None,
                 stages: list[Stage] | None = None,
                 metrics: WorkerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.stages = stages if stages is not None else build_stages(settings)
        self.pipeline = self._pipeline(settings, self.stages)
        self.names = {s.name for s in self.stages}
        # The coordinator's network policy, not the worker's, says what its bookmarks may
        # reach: one set of connecting stages per policy seen (usually one).
        self._by_policy: dict[str, tuple[list[Stage], Pipeline]] = {}
        self._building = asyncio.Lock()
        self.worker = worker
        self.conn = conn
        self.capacity = capacity
        self.limit = asyncio.Semaphore(settings.concurrency)

    async def __call__(self, payload: str) -> str:
        batch = json.loads(payload)
        items = batch.get("items") or []
        if self.capacity is not None:
            self.capacity.update(bookmarks=len(items), unparsed=-1)
        try:
            if batch.get("version") != __version__:
                self._count_batch("refused")
                return refusal(self.worker.label)
            if self.conn is not None and not await self.conn.run_alive(batch.get("run", "")):
                self._count_batch("abandoned")
                return abandoned_reply()  # its coordinator is gone
            pipeline = await self.pipeline_for(batch.get("policy"))
            results = await asyncio.gather(*(self._one(item, pipeline) for item in items))
            self.worker.done += len(items)
            self._count_batch("done")
            return results_reply(self.worker.label, list(results))
        finally:
            if self.capacity is not None:
                self.capacity.update(bookmarks=-len(items))

    @staticmethod
    def _pipeline(settings: Settings, stages: list[Stage]) -> Pipeline:
        # No cache here: neighbour tag suggestions come from what this worker tagged.
        hints = neighbour_tags(settings, stages, TagVocabulary(lowercase=settings.lowercase_tags))
        return Pipeline(settings, cast(ResultCache, _NoCache()), stages, run_id=0,
                        sink=lambda _r: None, tag_hints=hints)

    async def pipeline_for(self, policy: dict[str, Any] | None) -> Pipeline:
        """The pipeline whose connecting stages follow ``policy`` (None: the worker's)."""
        if not policy:
            return self.pipeline
        key = json.dumps(policy, sort_keys=True)
        async with self._building:
            if key not in self._by_policy:
                settings = self.settings.model_copy(update={
                    "allow_private_network": bool(policy.get("allow_private_network")),
                    "allow_hosts": [str(h) for h in policy.get("allow_hosts") or []],
                    "allow_file_roots": [Path(p) for p in policy.get("allow_file_roots") or []],
                })
                stages = [type(s)(settings) if s.follows_network_policy else s
                          for s in self.stages]
                await preflight([s for s in stages if s not in self.stages])
                self._by_policy[key] = (stages, self._pipeline(settings, stages))
        return self._by_policy[key][1]

    async def _one(self, item: dict[str, Any], pipeline: Pipeline) -> dict[str, Any]:
        bookmark = bookmark_from_json(item["bookmark"])
        cached = {n: outcome_from_json(o, cached=True) for n, o in item["cached"].items()}
        to_run = set(item["run"])
        async with self.limit:
            outcomes = await pipeline.execute_local(bookmark, cached, to_run & self.names)
        ran = {n: outcomes[n] for n in to_run if n in outcomes}
        for missing in sorted(to_run - self.names):
            ran[missing] = StageOutcome.failed(
                Reason.STAGE_UNAVAILABLE,
                f"worker {self.worker.label} has no {missing} stage enabled")
        if self.metrics is not None:
            self.metrics.bookmark(ran)
        return {"key": bookmark.key, "outcomes": {n: outcome_to_json(o) for n, o in ran.items()}}

    def _count_batch(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.batch(result)

    async def aclose(self) -> None:
        extra = [s for stages, _ in self._by_policy.values() for s in stages
                 if s not in self.stages]
        for stage in [*self.stages, *extra]:
            with contextlib.suppress(Exception):
                await stage.aclose()


async def run_worker(settings: Settings, url: str, *, name: str = DEFAULT_QUEUE_NAME,
                     idle_timeout: float = 30.0, notify: Callable[[str], None],
                     stop_event: asyncio.Event | None = None,
                     metrics_port: int | None = None,
                     metrics_host: str = DEFAULT_METRICS_HOST) -> int:
    """Run a worker until SIGTERM/SIGINT (or ``stop_event``); returns bookmarks done.

    First signal: stop taking messages, finish the ones running, hand back the
    rest. Second signal: cancel what runs and hand it back at once. With
    ``metrics_port`` (0: any free port), its Prometheus metrics are served on
    ``http://metrics_host:port/metrics`` while it runs.
    """
    worker = _Worker(settings, url, name=name, idle_timeout=idle_timeout, notify=notify)
    if metrics_port is not None:
        worker.metrics = WorkerMetrics(worker.info, busy=lambda: worker.capacity.bookmarks)
        notify(f"worker: metrics on {worker.metrics.serve(metrics_host, metrics_port)}")
    try:
        return await worker.run(stop_event or asyncio.Event())
    finally:
        if worker.metrics is not None:
            worker.metrics.close()


class _Worker:
    """One worker process's run: its connection, lease, heartbeat and signals."""

    def __init__(self, settings: Settings, url: str, *, name: str, idle_timeout: float,
                 notify: Callable[[str], None]) -> None:
        host = socket.gethostname()
        self.info = WorkerInfo(id=f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}", host=host,
                               pid=os.getpid(), version=__version__,
                               concurrency=settings.concurrency, started=time.time())
        self.capacity = Capacity(settings.concurrency)
        self.conn = QueueConnection.redis_url(url, name=name, idle_timeout=idle_timeout,
                                              consumer=self.info.id, capacity=self.capacity)
        self.lease = self.conn.lease()
        self.settings = settings
        self.name = name
        self.idle_timeout = idle_timeout
        self.notify = notify
        self.metrics: WorkerMetrics | None = None

    async def run(self, finish: asyncio.Event) -> int:
        stages = build_stages(self.settings)
        await preflight(stages, notify=self._notice)
        handler = BatchHandler(self.settings, worker=self.info, conn=self.conn,
                               capacity=self.capacity, stages=stages, metrics=self.metrics)
        try:
            # A worker lives long: pay the extractor's first-call cost before taking work.
            with contextlib.suppress(Exception):
                await run_cpu(self.settings.extract_processes, warm_up)
            self.conn.serve(handler)
            await self.conn.connect()
            lost = await self._listen(finish)
        finally:
            self.conn.serve(None)
            await handler.aclose()
            await self.conn.close()
            shutdown_pool(kill=True)  # extraction of handed-back bookmarks, if any
        if lost is not None:
            raise QueueUnavailable(f"lost the queue at {self.conn.display}: {first_line(lost)}")
        return self.info.done

    def _notice(self, event: object) -> None:
        self.notify(event.message if isinstance(event, Notice) else str(event))

    async def _listen(self, finish: asyncio.Event) -> BaseException | None:
        """Receive until ``finish`` (or a second signal); the Redis error that ended it."""
        self.conn.broker.is_worker_process = True
        receiver = Receiver(self.conn.broker, run_startup=False, validate_params=False,
                            max_async_tasks=self.settings.concurrency, max_prefetch=0,
                            propagate_exceptions=False)
        listen = asyncio.create_task(receiver.listen(finish))
        signals = self._on_signals(finish, listen)
        done_beating = asyncio.Event()
        beats = asyncio.create_task(self._keep_lease(done_beating))
        self.notify(f"worker {self.info.label} (bookmark-enrich {__version__}) listening on "
                    f"{self.conn.display} queue {self.name!r}, "
                    f"concurrency {self.settings.concurrency}")
        lost: BaseException | None = None
        try:
            await listen
        except asyncio.CancelledError:
            if not finish.is_set():
                raise
        except Exception as exc:  # anyio wraps the broker's errors in exception groups
            lost = connection_error(exc)
            if lost is None:
                raise
        finally:
            # Let a beat in flight land before the heartbeat is dropped: a cancelled one
            # may still reach Redis after the drop, on another connection, and linger.
            done_beating.set()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(beats, _BEATS_STOP_SECONDS)
            loop = asyncio.get_running_loop()
            for number in signals:
                loop.remove_signal_handler(number)
            await self._leave()
        return lost

    def _on_signals(self, finish: asyncio.Event, listen: asyncio.Task[None]) -> list[int]:
        def on_signal() -> None:
            if finish.is_set():
                self.notify("worker: stopping now; handing back what it holds")
                listen.cancel()
            else:
                grace = self.settings.grace
                self.notify(f"worker: stopping; finishing {self.capacity.bookmarks} "
                            f"bookmark(s) for up to {grace:g} s (again to hand them back)")
                finish.set()
                # Past the grace, what still runs goes back to the queue.
                asyncio.get_running_loop().call_later(grace, listen.cancel)

        installed: list[int] = []
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, on_signal)
                    installed.append(sig)
        return installed

    async def _keep_lease(self, done: asyncio.Event) -> None:
        """Renew what this worker holds, requeue dead workers' messages, beat, trim;
        until ``done``."""
        every = min(max(0.2, self.idle_timeout / 3), HEARTBEAT_SECONDS)
        next_beat = 0.0
        while not done.is_set():
            self.info.busy = self.capacity.bookmarks
            with contextlib.suppress(OSError, redis_errors.RedisError):
                await self.lease.renew()
                await self.lease.requeue_idle()
                if time.monotonic() >= next_beat:
                    await self.conn.beat(self.info)
                    await self.lease.trim()
                    next_beat = time.monotonic() + HEARTBEAT_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), every)

    async def _leave(self) -> None:
        """Hand back what is held, drop acknowledged entries and the heartbeat."""
        with contextlib.suppress(OSError, redis_errors.RedisError):
            handed = await self.lease.hand_back()
            if handed:
                self.notify(f"worker: handed back {handed} message(s)")
        with contextlib.suppress(OSError, redis_errors.RedisError):
            await self.lease.trim()
        with contextlib.suppress(OSError, redis_errors.RedisError):
            await self.conn.forget(self.info.id)
