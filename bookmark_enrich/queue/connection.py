"""One named queue on one Redis: the broker, the result backend, heartbeats, run liveness.

Keys (``NAME`` is ``--queue-name``): ``NAME:v<version>:tasks`` the stream (named
after the tool version, so a worker of another version never sees this work),
``NAME:results:<task id>`` results, ``NAME:workers:<id>`` heartbeats and
``NAME:runs:<token>`` the coordinators alive. :func:`queue_checks` is what
``doctor --queue`` shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from taskiq import (
    AsyncBroker,
    AsyncTaskiqDecoratedTask,
    InMemoryBroker,
    TaskiqDepends,
    TaskiqState,
)
from taskiq.serializers import JSONSerializer
from taskiq_redis import RedisAsyncResultBackend

from .._version import __version__
from ..errors import BookmarkEnrichError, ServiceUnavailable, UsageError
from ..redaction import redact_url
from ..services.health import Check, timed
from ..settings import Settings
from .broker import Capacity, StreamBroker, StreamLease, stream_broker
from .wire import dumps

__all__ = [
    "DEFAULT_QUEUE_NAME",
    "QueueConnection",
    "QueueUnavailable",
    "TaskBody",
    "WorkerInfo",
    "connection_error",
    "first_line",
    "list_workers",
    "queue_checks",
]

DEFAULT_QUEUE_NAME = "bookmark-enrich"
TASK_NAME = "bookmark_enrich.enrich_batch"
HEARTBEAT_TTL = 15
RUN_TTL = 30
"""A coordinator refreshes its run key this often (x3); workers drop work of dead runs."""
RESULT_TTL = 3600
"""Seconds an unread result stays in Redis (a coordinator that died before reading it)."""

TaskBody = Callable[[str], Awaitable[str]]
"""A worker's task body: a batch payload in, the reply out (see :mod:`.wire`)."""


_HANDLER_KEY = "bookmark_enrich.batch_handler"


async def _run_batch(payload: str, state: TaskiqState = TaskiqDepends()) -> str:
    """The task body taskiq calls.

    The handler comes from the receiving broker's state (taskiq injects it), not
    from a module global: each broker runs the handler its worker installed.
    """
    handler: TaskBody | None = state.get(_HANDLER_KEY)
    if handler is None:
        raise RuntimeError("this process is not a worker")
    return await handler(payload)


class QueueUnavailable(ServiceUnavailable):
    """The Redis behind ``--queue`` cannot be reached (exit 3)."""


def check_url(url: str) -> str:
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise UsageError(f"--queue must be a redis:// URL, not {redact_url(url)!r}")
    return url


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def connection_error(exc: BaseException) -> BaseException | None:
    """The Redis or socket error in ``exc``, if any.

    Looks inside exception groups (anyio's) and causes (taskiq's SendTaskError).
    """
    if isinstance(exc, OSError | redis_errors.RedisError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = connection_error(inner)
            if found is not None:
                return found
    return None if exc.__cause__ is None else connection_error(exc.__cause__)


def _quiet_taskiq() -> None:
    # taskiq logs tracebacks of task errors; ours are turned into outcomes or one line.
    for name in ("taskiq", "taskiq.receiver", "taskiq.redis_broker"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


@dataclass(slots=True)
class WorkerInfo:
    """One live worker, from its heartbeat."""

    id: str
    host: str
    pid: int
    version: str
    concurrency: int
    busy: int = 0
    done: int = 0
    started: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.host}:{self.pid}"

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in WorkerInfo.__slots__}


class QueueConnection:
    """One named queue on one Redis (or taskiq's in-memory broker, for tests)."""

    def __init__(self, broker: AsyncBroker, *, redis: Redis | None, name: str,
                 display: str) -> None:
        self.broker = broker
        self.redis = redis
        self.name = name
        self.display = display
        self.task: AsyncTaskiqDecoratedTask[..., Coroutine[Any, Any, str]] = \
            broker.register_task(_run_batch, task_name=TASK_NAME)

    @classmethod
    def redis_url(cls, url: str, *, name: str = DEFAULT_QUEUE_NAME, idle_timeout: float = 30.0,
                  consumer: str | None = None,
                  capacity: Capacity | None = None) -> QueueConnection:
        """A connection to the Redis stream at ``url`` (nothing is sent yet)."""
        check_url(url)
        _quiet_taskiq()
        options: dict[str, Any] = {"socket_connect_timeout": 5, "health_check_interval": 30}
        try:
            broker = stream_broker(url, stream=f"{name}:v{__version__}:tasks",
                                   idle_timeout=idle_timeout, consumer=consumer,
                                   capacity=capacity, options=options)
            backend: RedisAsyncResultBackend[Any] = RedisAsyncResultBackend(
                url, keep_results=False, result_ex_time=RESULT_TTL,
                serializer=JSONSerializer(), prefix_str=f"{name}:results", **options)
            redis = Redis.from_url(url, **options)
        except (ValueError, redis_errors.RedisError) as exc:
            raise UsageError(f"bad --queue URL {redact_url(url)!r}: {exc}") from None
        return cls(broker.with_result_backend(backend), redis=redis, name=name,
                   display=redact_url(url))

    @classmethod
    def in_memory(cls) -> QueueConnection:
        """Everything in this process (unit tests): taskiq's in-memory broker."""
        _quiet_taskiq()
        return cls(InMemoryBroker(cast_types=False), redis=None, name="memory",
                   display="memory://")

    def serve(self, handler: TaskBody | None) -> None:
        """Run ``handler`` for the batches this connection's broker receives (a worker)."""
        if handler is None:
            self.broker.state.pop(_HANDLER_KEY, None)
        else:
            self.broker.state[_HANDLER_KEY] = handler

    def lease(self) -> StreamLease:
        """The worker's side work on the stream (renew, requeue, hand back, trim)."""
        if self.redis is None or not isinstance(self.broker, StreamBroker):
            raise RuntimeError("only a Redis queue has a stream to lease")
        return StreamLease(self.redis, self.broker)

    async def ping(self) -> None:
        """Raise QueueUnavailable when Redis does not answer (in-memory: nothing to do)."""
        if self.redis is None:
            return
        try:
            await self.redis.ping()
        except (OSError, redis_errors.RedisError) as exc:
            raise QueueUnavailable(
                f"cannot reach the queue at {self.display}: {first_line(exc)}") from None

    async def connect(self) -> None:
        """Check Redis answers, then start the broker (declares the consumer group)."""
        await self.ping()
        try:
            await self.broker.startup()
        except (OSError, redis_errors.RedisError) as exc:
            raise QueueUnavailable(f"queue {self.display}: {first_line(exc)}") from None

    async def ready(self, task_ids: list[str]) -> list[bool]:
        """Which of these tasks have a result (one round trip on Redis)."""
        if self.redis is None:
            backend = self.broker.result_backend
            return list(await asyncio.gather(*(backend.is_result_ready(t) for t in task_ids)))
        pipe = self.redis.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.exists(f"{self.name}:results:{task_id}")
        return [bool(n) for n in await pipe.execute()]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.broker.shutdown()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()

    # ------------------------------------------------------------ heartbeats
    def _worker_key(self, worker_id: str) -> str:
        return f"{self.name}:workers:{worker_id}"

    async def beat(self, info: WorkerInfo) -> None:
        if self.redis is not None:
            await self.redis.set(self._worker_key(info.id), dumps(info.as_dict()),
                                 ex=HEARTBEAT_TTL)

    async def forget(self, worker_id: str) -> None:
        if self.redis is not None:
            await self.redis.delete(self._worker_key(worker_id))

    async def workers(self) -> list[WorkerInfo]:
        """The live workers (heartbeat younger than its TTL), any version."""
        if self.redis is None:
            return []
        keys = [k async for k in self.redis.scan_iter(match=self._worker_key("*"), count=200)]
        if not keys:
            return []
        found: list[WorkerInfo] = []
        for raw in await self.redis.mget(keys):
            if raw is None:
                continue
            with contextlib.suppress(ValueError, TypeError, KeyError):
                data = json.loads(raw)
                found.append(WorkerInfo(**{k: data[k] for k in WorkerInfo.__slots__
                                           if k in data}))
        return sorted(found, key=lambda w: (w.host, w.pid))

    # ------------------------------------------------------------ coordinators alive
    def _run_key(self, token: str) -> str:
        return f"{self.name}:runs:{token}"

    async def run_alive(self, token: str) -> bool:
        if self.redis is None or not token:
            return True
        return bool(await self.redis.exists(self._run_key(token)))

    async def mark_run(self, token: str, *, alive: bool = True) -> None:
        if self.redis is None:
            return
        if alive:
            await self.redis.set(self._run_key(token), __version__, ex=RUN_TTL)
        else:
            await self.redis.delete(self._run_key(token))


async def list_workers(url: str, *, name: str = DEFAULT_QUEUE_NAME) -> list[WorkerInfo]:
    """Connect, read the heartbeats, disconnect (``doctor --queue``)."""
    conn = QueueConnection.redis_url(url, name=name)
    try:
        await conn.ping()
        return await conn.workers()
    finally:
        await conn.close()


async def queue_checks(settings: Settings, options: dict[str, Any]) -> list[Check]:
    """``doctor --queue``: one line for the broker, one per live worker; none without a URL."""
    url = options.get("queue")
    if not url:
        return []
    name = options.get("queue_name") or DEFAULT_QUEUE_NAME
    try:
        workers, ms = await timed(list_workers(url, name=name))
    except BookmarkEnrichError as exc:
        return [Check("queue", "fail", str(exc))]
    usable = [w for w in workers if w.version == __version__]
    data = {"url": redact_url(url), "name": name,
            "workers": [{"host": w.host, "pid": w.pid, "version": w.version,
                         "concurrency": w.concurrency, "busy": w.busy, "done": w.done}
                        for w in workers]}
    if usable:
        detail = (f"{redact_url(url)} queue {name!r}: {len(usable)} live worker(s), "
                  f"{sum(w.concurrency for w in usable)} bookmarks at once")
    else:
        detail = (f"{redact_url(url)} queue {name!r}: answers, but no live worker of version "
                  f"{__version__} (start `bookmark-enrich worker --queue URL`)")
    checks = [Check("queue", "ok" if usable else "warn", detail, latency_ms=ms, data=data)]
    for w in workers:
        same = w.version == __version__
        checks.append(Check(
            f"worker {w.label}", "ok" if same else "warn",
            f"bookmark-enrich {w.version}, concurrency {w.concurrency}, busy {w.busy}, "
            f"done {w.done}" + ("" if same else f" (not {__version__}: gets no work)"),
            required=False))
    return checks
