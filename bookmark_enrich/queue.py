"""Scale out with taskiq: a coordinator sends batches of bookmarks to worker processes.

Every taskiq (and redis) import of the package lives in this module, so the
``[queue]`` extra stays optional: importing it without the extra raises a
:class:`UsageError` that tells the user what to install.

How a queued run works:

- The coordinator runs the ordinary :class:`~bookmark_enrich.pipeline.Pipeline`
  with a :class:`RemoteExecutor`: bookmarks that need work are grouped into
  batches (``batch_size`` bookmarks or ``linger`` seconds), one taskiq message
  per batch, carrying the bookmark, the cached outcomes later stages read
  (extract's text for summarize) and the names of the stages to run. The
  coordinator stays the only writer of the SQLite cache and the writeback.
- A worker (:func:`run_worker`) runs a taskiq :class:`Receiver` on a Redis
  stream and executes the same stages with its own settings (LLM, Cobalt, S3)
  and its own concurrency. It returns outcomes through the Redis result backend.
- Delivery: the stream's consumer group holds each message until the worker
  acknowledges it after the result is saved. Workers renew the lease on what
  they hold; a message whose holder stopped renewing (a dead worker) for
  ``idle_timeout`` is claimed by another worker. The coordinator keeps the first
  result per bookmark key and drops any later duplicate.
- Versions: the stream is named after the tool version, so a worker of another
  version never sees this coordinator's work; each message carries the version
  too and a worker refuses a mismatch. Heartbeats show every live worker with
  host, version and concurrency (``doctor --queue``); the coordinator names the
  ones it cannot use.
- Fingerprints: the coordinator's own stages decide what runs, and what comes
  back is stamped with the coordinator's stage fingerprints. So a re-run of the
  same coordinator settings finds the workers' results valid, whatever the
  workers' own settings were. To redo work after changing a worker's services
  (another model), run with ``--force`` (or ``--retry-failed`` for failures).
- Exit codes: an unreachable or lost Redis and "no worker within
  ``--no-worker-timeout``" are service problems (3); a version mismatch, a bad
  ``--queue`` URL and the missing extra are usage problems (2).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ._version import __version__
from .errors import ServiceUnavailable, UsageError
from .models import Bookmark, StageOutcome

try:
    from redis import exceptions as redis_errors
    from redis.asyncio import Redis
    from taskiq import AckableMessage, AsyncBroker, InMemoryBroker
    from taskiq.receiver import Receiver
    from taskiq.serializers import JSONSerializer
    from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker
except ImportError:  # pragma: no cover - exercised by the missing-extra test
    raise UsageError(
        "the queue needs taskiq and taskiq-redis: pip install 'bookmark-enrich[queue]'"
    ) from None

__all__ = [
    "DEFAULT_QUEUE_NAME",
    "NoWorkers",
    "QueueConnection",
    "QueueUnavailable",
    "RemoteExecutor",
    "VersionMismatch",
    "WorkerInfo",
    "batch_handler",
    "bookmark_from_json",
    "bookmark_to_json",
    "enrich_queued",
    "list_workers",
    "outcome_from_json",
    "outcome_to_json",
    "redact",
    "run_worker",
]

DEFAULT_QUEUE_NAME = "bookmark-enrich"
TASK_NAME = "bookmark_enrich.enrich_batch"
HEARTBEAT_SECONDS = 5.0
HEARTBEAT_TTL = 15
RUN_TTL = 30
"""A coordinator refreshes its run key this often (x3); workers drop work of dead runs."""
RESULT_TTL = 3600
"""Seconds an unread result stays in Redis (a coordinator that died before reading it)."""

_taskiq_loggers_quiet = False


class QueueUnavailable(ServiceUnavailable):
    """The Redis behind ``--queue`` cannot be reached (exit 3)."""


class VersionMismatch(UsageError):
    """A worker and a coordinator of different tool versions met (exit 2)."""


class NoWorkers(ServiceUnavailable):
    """No worker took the work within ``--no-worker-timeout`` (exit 3)."""


def _quiet_taskiq() -> None:
    # taskiq logs tracebacks of task errors; ours are turned into outcomes or one line.
    global _taskiq_loggers_quiet
    if not _taskiq_loggers_quiet:
        for name in ("taskiq", "taskiq.receiver", "taskiq.redis_broker"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        _taskiq_loggers_quiet = True


# ------------------------------------------------------------------ serialization
_OUTCOME_FIELDS = ("status", "output", "reason", "message", "attempts", "duration",
                   "fingerprint", "finished_at", "text")


def outcome_to_json(outcome: StageOutcome) -> dict[str, Any]:
    """The cacheable part of an outcome (never its in-memory payload)."""
    return {name: getattr(outcome, name) for name in _OUTCOME_FIELDS}


def outcome_from_json(data: dict[str, Any], *, cached: bool = False) -> StageOutcome:
    values = {name: data[name] for name in _OUTCOME_FIELDS if name in data}
    if values.get("status") not in ("ok", "failed", "skipped"):
        raise ValueError(f"bad outcome status {values.get('status')!r}")
    return StageOutcome(**values, cached=cached)


def bookmark_to_json(bookmark: Bookmark) -> dict[str, Any]:
    """The bookmark without its source identity (a database key stays with the coordinator)."""
    return {"url": bookmark.url, "normalized": bookmark.normalized, "key": bookmark.key,
            "record": bookmark.record, "position": bookmark.position}


def bookmark_from_json(data: dict[str, Any]) -> Bookmark:
    return Bookmark(url=data["url"], normalized=data["normalized"], key=data["key"],
                    record=dict(data.get("record") or {}), position=int(data["position"]))


def _dumps(value: Any) -> str:
    # Records from databases may hold dates or decimals: stages only read them as text.
    return json.dumps(value, default=str, separators=(",", ":"))


# ------------------------------------------------------------------ connection
def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def check_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise UsageError(f"--queue must be a redis:// URL, not {redact(url)!r}")
    return url


class _Capacity:
    """How many bookmarks a worker holds against its concurrency (read by its stream)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bookmarks = 0
        self.unparsed = 0
        self.changed = asyncio.Event()

    def has_room(self) -> bool:
        return self.unparsed == 0 and self.bookmarks < self.limit

    def update(self, *, bookmarks: int = 0, unparsed: int = 0) -> None:
        self.bookmarks += bookmarks
        self.unparsed += unparsed
        self.changed.set()

    async def wait_for_room(self) -> None:
        while not self.has_room():
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 1.0)
            except TimeoutError:
                # A message taskiq dropped unparsed (acked, never run) would block us.
                if self.unparsed:
                    self.unparsed = 0


class _StreamBroker(RedisStreamBroker):
    """taskiq-redis' stream broker with what a long-running batch queue needs.

    - Pending messages of a dead consumer are claimed on a timer, also when no
      new message arrives (upstream claims only after a read that returned some).
    - A worker reads one message at a time and only when it has room, so one
      worker never hoards the queue while others idle.
    - The ack also deletes the entry: the stream stays as long as the work in flight.
    - Held message ids are tracked, so the worker renews its lease on them and
      hands them back (re-adds them) when it stops.
    """

    capacity: _Capacity | None = None

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.held: dict[str, str] = {}

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            try:
                async with Redis(connection_pool=self.connection_pool) as conn:
                    pipe = conn.pipeline(transaction=True)
                    pipe.xack(queue_name, self.consumer_group_name, id)
                    pipe.xdel(queue_name, id)
                    await pipe.execute()
            except (OSError, redis_errors.RedisError):
                return  # still pending: it is delivered again; the next read reports the loss
            self.held.pop(id, None)

        return ack

    def _message(self, msg_id: Any, fields: Any) -> AckableMessage:
        ident = msg_id.decode() if isinstance(msg_id, bytes) else str(msg_id)
        self.held[ident] = self.queue_name
        if self.capacity is not None:
            self.capacity.update(unparsed=1)
        return AckableMessage(data=fields[b"data"],
                              ack=self._ack_generator(id=ident, queue_name=self.queue_name))

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        reclaim_every = max(0.2, self.idle_timeout / 1000 / 3)
        next_reclaim = 0.0
        async with Redis(connection_pool=self.connection_pool) as conn:
            while True:
                if self.capacity is not None:
                    await self.capacity.wait_for_room()
                if time.monotonic() >= next_reclaim:
                    reply = await conn.xautoclaim(
                        self.queue_name, self.consumer_group_name, self.consumer_name,
                        min_idle_time=self.idle_timeout, start_id="0-0", count=1)
                    claimed = [m for m in reply[1] if m and m[1]]
                    if claimed:
                        yield self._message(*claimed[0])
                        continue  # there may be more
                    next_reclaim = time.monotonic() + reclaim_every
                block = int(min(self.block, max(100.0, (next_reclaim - time.monotonic()) * 1000)))
                fetched: Any = await conn.xreadgroup(
                    self.consumer_group_name, self.consumer_name, {self.queue_name: ">"},
                    block=block, count=1)
                for _stream, entries in fetched or ():
                    for msg_id, fields in entries:
                        yield self._message(msg_id, fields)

    async def renew(self) -> None:
        """Reset the idle time of what this worker holds, so nobody claims it."""
        ids: list[Any] = list(self.held)
        if not ids:
            return
        async with Redis(connection_pool=self.connection_pool) as conn:
            await conn.xclaim(self.queue_name, self.consumer_group_name, self.consumer_name,
                              min_idle_time=0, message_ids=ids, justid=True)

    async def hand_back(self) -> int:
        """Re-add every message pending on this consumer and drop the original."""
        count = 0
        async with Redis(connection_pool=self.connection_pool) as conn:
            pending = await conn.xpending_range(
                self.queue_name, self.consumer_group_name, min="-", max="+", count=10_000,
                consumername=self.consumer_name)
            for entry in pending:
                msg_id = entry["message_id"]
                rows: Any = await conn.xrange(self.queue_name, min=msg_id, max=msg_id)
                pipe = conn.pipeline(transaction=True)
                if rows:
                    pipe.xadd(self.queue_name, rows[0][1])
                    count += 1
                pipe.xack(self.queue_name, self.consumer_group_name, msg_id)
                pipe.xdel(self.queue_name, msg_id)
                await pipe.execute()
        self.held.clear()
        return count


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


class QueueConnection:
    """One named queue on one Redis: the taskiq broker, its result backend, heartbeat keys.

    Keys (``NAME`` is ``--queue-name``): ``NAME:v<version>:tasks`` the stream,
    ``NAME:results:<task id>`` results, ``NAME:workers:<id>`` heartbeats and
    ``NAME:runs:<token>`` the coordinators alive.
    """

    def __init__(self, broker: AsyncBroker, *, redis: Redis | None, name: str,
                 display: str) -> None:
        self.broker = broker
        self.redis = redis
        self.name = name
        self.display = display
        self.task = broker.register_task(_run_batch, task_name=TASK_NAME)

    @classmethod
    def redis_url(cls, url: str, *, name: str = DEFAULT_QUEUE_NAME, idle_timeout: float = 30.0,
                  consumer: str | None = None) -> QueueConnection:
        """A connection to the Redis stream at ``url`` (nothing is sent yet)."""
        check_url(url)
        _quiet_taskiq()
        options: dict[str, Any] = {"socket_connect_timeout": 5, "health_check_interval": 30}
        try:
            broker = _StreamBroker(
                url, queue_name=f"{name}:v{__version__}:tasks", consumer_group_name="workers",
                consumer_name=consumer, consumer_id="0", idle_timeout=int(idle_timeout * 1000),
                xread_block=1000, xread_count=1, **options)
            backend: RedisAsyncResultBackend[Any] = RedisAsyncResultBackend(
                url, keep_results=False, result_ex_time=RESULT_TTL,
                serializer=JSONSerializer(), prefix_str=f"{name}:results", **options)
            redis = Redis.from_url(url, **options)
        except (ValueError, redis_errors.RedisError) as exc:
            raise UsageError(f"bad --queue URL {redact(url)!r}: {exc}") from None
        return cls(broker.with_result_backend(backend), redis=redis, name=name,
                   display=redact(url))

    @classmethod
    def in_memory(cls) -> QueueConnection:
        """Everything in this process (unit tests): taskiq's in-memory broker."""
        _quiet_taskiq()
        return cls(InMemoryBroker(cast_types=False), redis=None, name="memory",
                   display="memory://")

    async def ping(self) -> None:
        """Raise QueueUnavailable when Redis does not answer (in-memory: nothing to do)."""
        if self.redis is None:
            return
        try:
            await self.redis.ping()
        except (OSError, redis_errors.RedisError) as exc:
            raise QueueUnavailable(
                f"cannot reach the queue at {self.display}: {_why(exc)}") from None

    async def connect(self) -> None:
        """Check Redis answers, then start the broker (declares the consumer group)."""
        await self.ping()
        try:
            await self.broker.startup()
        except (OSError, redis_errors.RedisError) as exc:
            raise QueueUnavailable(f"queue {self.display}: {_why(exc)}") from None

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
            await self.redis.set(self._worker_key(info.id), _dumps(_worker_dict(info)),
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


def _worker_dict(info: WorkerInfo) -> dict[str, Any]:
    return {k: getattr(info, k) for k in WorkerInfo.__slots__}


def _connection_error(exc: BaseException) -> BaseException | None:
    """The Redis or socket error in ``exc`` (maybe inside exception groups), if any."""
    if isinstance(exc, OSError | redis_errors.RedisError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _connection_error(inner)
            if found is not None:
                return found
    return None


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


async def list_workers(url: str, *, name: str = DEFAULT_QUEUE_NAME) -> list[WorkerInfo]:
    """Connect, read the heartbeats, disconnect (``doctor --queue``)."""
    conn = QueueConnection.redis_url(url, name=name)
    try:
        await conn.ping()
        return await conn.workers()
    finally:
        await conn.close()


# ------------------------------------------------------------------ worker side
# The task body taskiq calls; the worker installs its handler here at start.
_HANDLER: BatchHandler | None = None


async def _run_batch(payload: str) -> str:
    if _HANDLER is None:
        raise RuntimeError("this process is not a worker")
    return await _HANDLER(payload)


BatchHandler = Callable[[str], Awaitable[str]]


def batch_handler(settings: Any, *, worker: WorkerInfo, conn: QueueConnection | None = None,
                  capacity: _Capacity | None = None,
                  stages: list[Any] | None = None) -> tuple[BatchHandler, Callable[[], Any]]:
    """Build the worker's task body: run the asked stages for each bookmark of a batch.

    Returns (handler, aclose). ``settings`` are the worker's own: its services and
    its concurrency (a semaphore over bookmarks, shared by all messages).
    """
    from .pipeline import Pipeline
    from .stages import build_stages

    stage_list = stages if stages is not None else build_stages(settings)
    # execute_local never touches the cache: only the coordinator writes it.
    local = Pipeline(settings, _NO_CACHE, stage_list, run_id=0, sink=lambda _r: None)
    names = {s.name for s in stage_list}
    limit = asyncio.Semaphore(settings.concurrency)

    async def one(item: dict[str, Any]) -> dict[str, Any]:
        bookmark = bookmark_from_json(item["bookmark"])
        cached = {n: outcome_from_json(o, cached=True) for n, o in item["cached"].items()}
        to_run = set(item["run"])
        async with limit:
            outcomes = await local.execute_local(bookmark, cached, to_run & names)
        fresh = {n: outcome_to_json(outcomes[n]) for n in to_run if n in outcomes}
        for missing in sorted(to_run - names):
            fresh[missing] = outcome_to_json(StageOutcome.failed(
                "stage_unavailable", f"worker {worker.label} has no {missing} stage enabled"))
        return {"key": bookmark.key, "outcomes": fresh}

    async def handle(payload: str) -> str:
        batch = json.loads(payload)
        items = batch.get("items") or []
        if capacity is not None:
            capacity.update(bookmarks=len(items), unparsed=-1)
        try:
            if batch.get("version") != __version__:
                return _dumps({"refused": "version", "version": __version__,
                               "worker": worker.label})
            if conn is not None and not await conn.run_alive(batch.get("run", "")):
                return _dumps({"abandoned": True})  # its coordinator is gone
            results = await asyncio.gather(*(one(item) for item in items))
            worker.done += len(items)
            return _dumps({"version": __version__, "worker": worker.label,
                           "items": list(results)})
        finally:
            if capacity is not None:
                capacity.update(bookmarks=-len(items))

    async def aclose() -> None:
        for stage in stage_list:
            with contextlib.suppress(Exception):
                await stage.aclose()

    return handle, aclose


class _NoCache:
    """Stands in for the cache in a worker's pipeline, which never uses it."""


_NO_CACHE: Any = _NoCache()


async def _warm_up(settings: Any) -> None:
    """A worker lives long: pay the extractor's first-call cost before taking work."""
    from .extraction import warm_up
    from .workers import run_cpu

    with contextlib.suppress(Exception):
        await run_cpu(settings.extract_processes, warm_up)


async def run_worker(settings: Any, url: str, *, name: str = DEFAULT_QUEUE_NAME,
                     idle_timeout: float = 30.0, notify: Callable[[str], None],
                     stop_event: asyncio.Event | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT (or ``stop_event``); returns bookmarks done.

    First signal: stop taking messages, finish the ones running, hand back the
    rest. Second signal: cancel what runs and hand it back at once.
    """
    from .runner import preflight
    from .stages import build_stages

    global _HANDLER
    host = socket.gethostname()
    worker_id = f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    info = WorkerInfo(id=worker_id, host=host, pid=os.getpid(), version=__version__,
                      concurrency=settings.concurrency, started=time.time())
    conn = QueueConnection.redis_url(url, name=name, idle_timeout=idle_timeout,
                                     consumer=worker_id)
    broker = conn.broker
    assert isinstance(broker, _StreamBroker)
    capacity = _Capacity(settings.concurrency)
    broker.capacity = capacity
    stages = build_stages(settings)
    await preflight(stages, notify=lambda e: notify(getattr(e, "message", str(e))))
    handler, aclose = batch_handler(settings, worker=info, conn=conn, capacity=capacity,
                                    stages=stages)
    await _warm_up(settings)
    _HANDLER = handler
    await conn.connect()
    broker.is_worker_process = True

    finish = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    receiver = Receiver(broker, run_startup=False, validate_params=False,
                        max_async_tasks=settings.concurrency, max_prefetch=0,
                        propagate_exceptions=False)
    listen = asyncio.create_task(receiver.listen(finish))
    signals: list[int] = []

    def on_signal() -> None:
        if finish.is_set():
            notify("worker: stopping now; handing back what it holds")
            listen.cancel()
        else:
            notify(f"worker: stopping; finishing {capacity.bookmarks} bookmark(s) "
                   "(again to hand them back)")
            finish.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal)
                signals.append(sig)

    async def heartbeat() -> None:
        renew_every = max(0.2, idle_timeout / 3)
        next_beat = 0.0
        while True:
            info.busy = capacity.bookmarks
            with contextlib.suppress(OSError, redis_errors.RedisError):
                await broker.renew()
                if time.monotonic() >= next_beat:
                    await conn.beat(info)
                    next_beat = time.monotonic() + HEARTBEAT_SECONDS
            await asyncio.sleep(min(renew_every, HEARTBEAT_SECONDS))

    beats = asyncio.create_task(heartbeat())
    notify(f"worker {info.label} (bookmark-enrich {__version__}) listening on "
           f"{conn.display} queue {name!r}, concurrency {settings.concurrency}")
    lost: BaseException | None = None
    try:
        try:
            await listen
        except asyncio.CancelledError:
            if not finish.is_set():
                raise
        except Exception as exc:  # anyio wraps the broker's errors in exception groups
            lost = _connection_error(exc)
            if lost is None:
                raise
    finally:
        beats.cancel()
        with contextlib.suppress(BaseException):
            await beats
        for number in signals:
            loop.remove_signal_handler(number)
        with contextlib.suppress(OSError, redis_errors.RedisError):
            handed = await broker.hand_back()
            if handed:
                notify(f"worker: handed back {handed} message(s)")
        with contextlib.suppress(OSError, redis_errors.RedisError):
            await conn.forget(worker_id)
        _HANDLER = None
        await aclose()
        await conn.close()
    if lost is not None:
        raise QueueUnavailable(f"lost the queue at {conn.display}: {_why(lost)}")
    return info.done


# ------------------------------------------------------------------ coordinator side
@dataclass(slots=True)
class _Item:
    bookmark: Bookmark
    cached: dict[str, StageOutcome]
    to_run: set[str]
    future: asyncio.Future[dict[str, StageOutcome]]


@dataclass(slots=True)
class _Sent:
    items: list[_Item]


class RemoteExecutor:
    """The pipeline's executor for a queued run (see the module docstring).

    Use as ``async with RemoteExecutor(...) as execute:`` and pass it as the
    pipeline's ``executor``.
    """

    def __init__(
        self,
        conn: QueueConnection,
        fingerprints: dict[str, str],
        *,
        notify: Callable[[str], None],
        batch_size: int = 8,
        linger: float = 0.01,
        poll: float = 0.02,
        grace: float = 10.0,
        no_worker_timeout: float | None = None,
        capacity: int | None = None,
        quiet: bool = False,
    ) -> None:
        self.conn = conn
        self.quiet = quiet
        self.fingerprints = fingerprints
        self.notify = notify
        self.batch_size = max(1, batch_size)
        self.linger = linger
        self.poll = poll
        self.grace = grace
        self.no_worker_timeout = no_worker_timeout
        self.fixed_capacity = capacity
        self.run_token = uuid.uuid4().hex
        self.live_capacity = 0
        self._waiting: list[_Item] = []
        self._wake = asyncio.Event()
        self._sent: dict[str, _Sent] = {}
        self._by_key: dict[str, _Item] = {}
        self._inflight = 0
        self._room = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._warned: set[str] = set()
        self._failure: BaseException | None = None
        self._remark: asyncio.Future[None] | None = None

    async def __aenter__(self) -> RemoteExecutor:
        await self.conn.connect()
        await self.conn.mark_run(self.run_token)
        await self._refresh_workers(first=True)
        self._tasks = [asyncio.create_task(self._sender()), asyncio.create_task(self._collector()),
                       asyncio.create_task(self._monitor())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await self.conn.mark_run(self.run_token, alive=False)
        await self.conn.close()

    # ----------------------------------------------------------- the executor
    async def __call__(self, bookmark: Bookmark, cached: dict[str, StageOutcome],
                       to_run: set[str]) -> dict[str, StageOutcome]:
        if self._failure is not None:
            raise self._failure
        future: asyncio.Future[dict[str, StageOutcome]] = \
            asyncio.get_running_loop().create_future()
        item = _Item(bookmark, cached, to_run, future)
        self._by_key[bookmark.key] = item
        self._waiting.append(item)
        self._wake.set()
        try:
            remote = await future
        finally:
            if self._by_key.get(bookmark.key) is item:
                del self._by_key[bookmark.key]
        outcomes = dict(cached)
        for name in to_run:
            outcome = remote.get(name)
            if outcome is None:
                outcome = StageOutcome.failed("worker_error", f"no {name} result from the worker")
            # The coordinator's fingerprint: its settings decide what is valid next run.
            outcome.fingerprint = self.fingerprints.get(name, outcome.fingerprint)
            outcomes[name] = outcome
        return outcomes

    # ----------------------------------------------------------- sending
    def _limit(self) -> int:
        """Bookmarks in flight at once: twice what the live workers can run (a queue each)."""
        capacity = self.fixed_capacity if self.fixed_capacity is not None else self.live_capacity
        return max(2 * self.batch_size, 2 * capacity)

    async def _sender(self) -> None:
        try:
            while True:
                while not self._waiting:
                    self._wake.clear()
                    await self._wake.wait()
                if len(self._waiting) < self.batch_size:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.linger):
                            while len(self._waiting) < self.batch_size:
                                self._wake.clear()
                                await self._wake.wait()
                while self._inflight and self._inflight + min(
                        len(self._waiting), self.batch_size) > self._limit():
                    self._room.clear()
                    await self._room.wait()
                batch = [i for i in self._waiting[:self.batch_size] if not i.future.done()]
                del self._waiting[:self.batch_size]
                if batch:
                    await self._send(batch)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._fail(exc)

    async def _send(self, items: list[_Item]) -> None:
        payload = _dumps({
            "version": __version__,
            "run": self.run_token,
            "items": [{"bookmark": bookmark_to_json(i.bookmark),
                       "cached": {n: outcome_to_json(o) for n, o in i.cached.items()},
                       "run": sorted(i.to_run)} for i in items],
        })
        try:
            task = await self.conn.task.kiq(payload)
        except (OSError, redis_errors.RedisError) as exc:
            raise QueueUnavailable(f"queue {self.conn.display}: {_why(exc)}") from None
        self._sent[task.task_id] = _Sent(items)
        self._inflight += len(items)

    # ----------------------------------------------------------- collecting
    async def _collector(self) -> None:
        backend = self.conn.broker.result_backend
        try:
            while True:
                await asyncio.sleep(self.poll)
                ids = list(self._sent)
                if not ids:
                    continue
                ready = await self.conn.ready(ids)
                for task_id, is_ready in zip(ids, ready, strict=True):
                    if is_ready:
                        result = await backend.get_result(task_id)
                        self._settle(task_id, result)
        except asyncio.CancelledError:
            raise
        except (OSError, redis_errors.RedisError) as exc:
            self._fail(QueueUnavailable(f"queue {self.conn.display}: {_why(exc)}"))
        except BaseException as exc:
            self._fail(exc)

    def _settle(self, task_id: str, result: Any) -> None:
        sent = self._sent.pop(task_id, None)
        if sent is None:
            return
        self._inflight -= len(sent.items)
        self._room.set()
        reply: dict[str, Any] = {}
        error: str | None = None
        if result.is_err:
            error = f"worker error: {result.error}"
        else:
            try:
                reply = json.loads(result.return_value)
            except (TypeError, ValueError):
                error = "unreadable reply from a worker"
        if reply.get("refused") == "version":
            self._fail(VersionMismatch(
                f"worker {reply.get('worker')} runs bookmark-enrich {reply.get('version')}, "
                f"this coordinator {__version__}: versions must match (results would differ)"))
            return
        if reply.get("abandoned"):
            # A worker thought this run was gone (its key lapsed): mark it, send again.
            self._remark = asyncio.ensure_future(self.conn.mark_run(self.run_token))
            self._waiting.extend(i for i in sent.items if not i.future.done())
            self._wake.set()
            return
        results = {r.get("key"): r.get("outcomes") for r in reply.get("items") or ()}
        for item in sent.items:
            if item.future.done():
                continue  # a duplicate delivery: the first result won
            outcomes = results.get(item.bookmark.key)
            if error is None and isinstance(outcomes, dict):
                try:
                    item.future.set_result(
                        {n: outcome_from_json(o) for n, o in outcomes.items()})
                    continue
                except (TypeError, ValueError, KeyError) as exc:
                    error = f"unreadable outcome from a worker: {exc}"
            item.future.set_result({n: StageOutcome.failed(
                "worker_error", error or "the worker sent no result for this bookmark")
                for n in item.to_run})

    # ----------------------------------------------------------- watching workers
    async def _refresh_workers(self, *, first: bool = False) -> list[WorkerInfo]:
        workers = await self.conn.workers()
        usable = [w for w in workers if w.version == __version__]
        for w in workers:
            if w.version != __version__ and w.id not in self._warned:
                self._warned.add(w.id)
                self.notify(f"warning: worker {w.label} runs bookmark-enrich {w.version}, "
                            f"this coordinator {__version__}: it gets no work "
                            "(versions must match)")
        self.live_capacity = sum(max(1, w.concurrency) for w in usable)
        self._room.set()
        if first and usable and not self.quiet:
            self.notify(f"queue {self.conn.display}: {len(usable)} worker(s), "
                        f"{self.live_capacity} bookmarks at once")
        return usable

    async def _monitor(self) -> None:
        idle_since: float | None = None
        told = False
        last_run_mark = time.monotonic()
        try:
            while True:
                await asyncio.sleep(1.0)
                if time.monotonic() - last_run_mark >= RUN_TTL / 3:
                    await self.conn.mark_run(self.run_token)
                    last_run_mark = time.monotonic()
                if self.fixed_capacity is not None:
                    continue
                usable = await self._refresh_workers()
                if usable or not (self._sent or self._waiting):
                    if told and usable and not self.quiet:
                        self.notify(f"queue: {len(usable)} worker(s) now listening")
                    idle_since, told = None, False
                    continue
                idle_since = idle_since or time.monotonic()
                waited = time.monotonic() - idle_since
                if not told and waited >= min(self.grace, self.no_worker_timeout or self.grace):
                    told = True
                    named = "" if self.conn.name == DEFAULT_QUEUE_NAME else \
                        f" --queue-name {self.conn.name}"
                    self.notify(
                        f"no worker is listening on {self.conn.display} (queue "
                        f"{self.conn.name!r}, version {__version__}); start one with "
                        f"`bookmark-enrich worker --queue {self.conn.display}{named}`"
                        + ("" if self.no_worker_timeout else "; waiting"))
                if self.no_worker_timeout is not None and waited >= self.no_worker_timeout:
                    raise NoWorkers(f"no worker took the work within {self.no_worker_timeout:g}s "
                                    "(--no-worker-timeout)")
        except asyncio.CancelledError:
            raise
        except (OSError, redis_errors.RedisError) as exc:
            self._fail(QueueUnavailable(f"queue {self.conn.display}: {_why(exc)}"))
        except BaseException as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """Fail every waiting bookmark with ``exc``; the pipeline stops the run on it."""
        if self._failure is None:
            self._failure = exc
        for item in list(self._by_key.values()):
            if not item.future.done():
                item.future.set_exception(self._failure)
        self._waiting.clear()


async def enrich_queued(source: Any, settings: Any, *, url: str, notify: Callable[[str], None],
                        name: str = DEFAULT_QUEUE_NAME, batch_size: int = 8,
                        no_worker_timeout: float | None = None,
                        max_inflight: int | None = None, quiet: bool = False,
                        **kw: Any) -> Any:
    """:func:`runner.enrich` with the stages run by the queue's workers.

    ``max_inflight`` (the coordinator's ``--concurrency``) caps the bookmarks in
    flight; by default it follows the live workers' total concurrency.
    """
    from .runner import enrich
    from .stages import build_stages

    conn = QueueConnection.redis_url(url, name=name)
    # Here the stages only plan and shape records (built with the settings as given:
    # their clients stay small); the pipeline's concurrency is just a ceiling, as the
    # executor paces the sending by the live workers' capacity.
    stages = build_stages(settings)
    for stage in stages:
        # The figures (bytes, tokens) are the workers'; these idle stages would say zero.
        setattr(stage, "metrics", dict)  # noqa: B010 - shadow the method on this instance
    settings = settings.model_copy(update={"concurrency": max_inflight or 1024})
    executor = RemoteExecutor(conn, {s.name: s.fingerprint() for s in stages}, notify=notify,
                              batch_size=batch_size, no_worker_timeout=no_worker_timeout,
                              quiet=quiet)
    try:
        async with executor:
            return await enrich(source, settings, stages=stages, executor=executor, **kw)
    finally:
        await conn.close()
