"""The coordinator's side: the pipeline's executor for a queued run.

The coordinator runs the ordinary pipeline with a :class:`RemoteExecutor`:
bookmarks that need work are grouped into batches (``batch_size`` bookmarks or
``linger`` seconds), one taskiq message per batch. It stays the only writer of
the cache and the writeback, keeps the first result per bookmark key (a
redelivered batch may come back twice), and stamps what comes back with its own
stage fingerprints, so a re-run with the same settings finds the workers'
results valid whatever the workers' own settings were.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as redis_errors

from .._version import __version__
from ..errors import ServiceUnavailable
from ..models import Bookmark, StageOutcome
from ..reasons import Reason
from ..stages import Stage
from .connection import (
    DEFAULT_QUEUE_NAME,
    RUN_TTL,
    QueueConnection,
    QueueUnavailable,
    WorkerInfo,
    connection_error,
    first_line,
)
from .wire import batch_payload, outcome_from_json, version_mismatch

__all__ = ["NoWorkers", "RemoteExecutor", "remote_executor"]


_CLOSE_SECONDS = 5.0
"""The longest the coordinator waits for each step of closing its queue connection."""

class NoWorkers(ServiceUnavailable):
    """No worker took the work within ``--no-worker-timeout`` (exit 3)."""


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
        policy: dict[str, Any] | None = None,
    ) -> None:
        self.conn = conn
        self.policy = policy
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
        # Every wait is bounded: a Redis call or a broker shutdown that never returns must
        # not hold a finished run open (seen: the run hung after --no-worker-timeout).
        with contextlib.suppress(BaseException):
            async with asyncio.timeout(_CLOSE_SECONDS):
                await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_SECONDS):
                await self.conn.mark_run(self.run_token, alive=False)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_SECONDS):
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
                outcome = StageOutcome.failed(Reason.WORKER_ERROR,
                                              f"no {name} result from the worker")
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
        payload = batch_payload(self.run_token, ((i.bookmark, i.cached, i.to_run) for i in items),
                                self.policy)
        try:
            task = await self.conn.task.kiq(payload)
        except Exception as exc:  # taskiq wraps the Redis error in a SendTaskError
            lost = connection_error(exc)
            if lost is None:
                raise
            raise QueueUnavailable(f"queue {self.conn.display}: {first_line(lost)}") from None
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
            self._fail(QueueUnavailable(f"queue {self.conn.display}: {first_line(exc)}"))
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
            self._fail(version_mismatch(reply))
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
                Reason.WORKER_ERROR, error or "the worker sent no result for this bookmark")
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
                    self._say_no_worker()
                if self.no_worker_timeout is not None and waited >= self.no_worker_timeout:
                    raise NoWorkers(f"no worker took the work within {self.no_worker_timeout:g}s "
                                    "(--no-worker-timeout)")
        except asyncio.CancelledError:
            raise
        except (OSError, redis_errors.RedisError) as exc:
            self._fail(QueueUnavailable(f"queue {self.conn.display}: {first_line(exc)}"))
        except BaseException as exc:
            self._fail(exc)

    def _say_no_worker(self) -> None:
        named = "" if self.conn.name == DEFAULT_QUEUE_NAME else f" --queue-name {self.conn.name}"
        self.notify(
            f"no worker is listening on {self.conn.display} (queue {self.conn.name!r}, "
            f"version {__version__}); start one with "
            f"`bookmark-enrich worker --queue {self.conn.display}{named}`"
            + ("" if self.no_worker_timeout else "; waiting"))

    def _fail(self, exc: BaseException) -> None:
        """Fail every waiting bookmark with ``exc``; the pipeline stops the run on it."""
        if self._failure is None:
            self._failure = exc
        for item in list(self._by_key.values()):
            if not item.future.done():
                item.future.set_exception(self._failure)
        self._waiting.clear()


@contextlib.asynccontextmanager
async def remote_executor(url: str, stages: Sequence[Stage], *, notify: Callable[[str], None],
                          name: str | None = None, batch_size: int = 8,
                          no_worker_timeout: float | None = None, quiet: bool = False,
                          policy: dict[str, Any] | None = None
                          ) -> AsyncIterator[RemoteExecutor]:
    """Connect to the queue at ``url``; yield the executor a queued run gives its pipeline.

    ``stages`` are the coordinator's: they plan the work and their fingerprints
    stamp what comes back.
    """
    conn = QueueConnection.redis_url(url, name=name or DEFAULT_QUEUE_NAME)
    for stage in stages:
        # The figures (bytes, tokens) are the workers'; these idle stages would say zero.
        setattr(stage, "metrics", dict)  # noqa: B010 - shadow the method on this instance
    executor = RemoteExecutor(conn, {s.name: s.fingerprint() for s in stages}, notify=notify,
                              batch_size=batch_size, no_worker_timeout=no_worker_timeout,
                              quiet=quiet, policy=policy)
    try:
        async with executor:
            yield executor
    finally:
        await conn.close()
