"""The asyncio pipeline: stream bookmarks through the enabled stages, with the cache.

A producer thread reads the source in chunks (so a slow stdin never blocks the
loop); the loop looks each chunk up in the cache in one query, answers fully
cached bookmarks at once, and hands the rest to ``concurrency`` workers through
a bounded queue. Memory is bounded by the concurrency, not the input size.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from .cache import ResultCache
from .errors import BookmarkEnrichError, InputError, StageError
from .events import (
    BookmarkDone,
    InputProblem,
    Notice,
    RunFinished,
    RunStarted,
    RunStats,
    StageDone,
    Subscriber,
    Tick,
)
from .models import Bookmark, InputIssue, StageOutcome
from .reasons import RECHECKED_EVERY_RUN
from .settings import Settings
from .slots import Slots
from .stages.base import Stage, StageContext, TagHintProvider
from .stages.record import build_record, record_status
from .workers import shutdown_pool

__all__ = ["Pipeline", "build_record", "preflight", "record_status"]

_CHUNK = 256
_DONE = object()
_TICK = 1.0
_PARKING = 4  # workers per slot: those beyond the slots wait parked behind a busy host

Sink = Callable[[dict[str, Any]], None]
Executor = Callable[[Bookmark, dict[str, StageOutcome], set[str]],
                    Awaitable[dict[str, StageOutcome]]]
"""Runs the stages ``to_run`` for one bookmark, given its usable cached outcomes, and
returns all outcomes. The default runs them here; a queue sends them to workers."""


async def preflight(stages: Iterable[Stage], *, keep_going: bool = False,
                    notify: Subscriber | None = None) -> None:
    """Check every stage's service concurrently before any bookmark is touched.

    Raises the first ServiceUnavailable; with ``keep_going`` the problems become
    notices and the run records per-bookmark failures instead.
    """
    stages = list(stages)
    # Checks run concurrently, but their lines come out in pipeline order, so the
    # run's first line is always the summarizer choice, then media, and so on.
    held: dict[int, list[str]] = {i: [] for i in range(len(stages))}
    for i, stage in enumerate(stages):
        stage.notice = held[i].append
    results = await asyncio.gather(*(s.preflight() for s in stages), return_exceptions=True)
    for i, stage in enumerate(stages):
        if notify is not None:
            for message in held[i]:
                notify(Notice(message))
            stage.notice = lambda message: notify(Notice(message))
        else:
            stage.notice = None
    for result in results:
        if isinstance(result, BaseException):
            if keep_going and notify is not None:
                notify(Notice(f"warning: {result} (continuing: --keep-going)", "warning"))
                continue
            raise result


class Pipeline:
    """Runs stages over a stream of bookmarks; one output record per input record."""

    def __init__(
        self,
        settings: Settings,
        cache: ResultCache,
        stages: list[Stage],
        *,
        run_id: int,
        sink: Sink,
        subscribers: Iterable[Subscriber] = (),
        source_location: str = "",
        executor: Executor | None = None,
        tag_hints: TagHintProvider | None = None,
    ) -> None:
        self.settings = settings
        self.tag_hints = tag_hints
        self.execute: Executor = executor or self.execute_local
        self.cache = cache
        self.slots = Slots(settings.concurrency)
        self.stages = stages
        self.run_id = run_id
        self.sink = sink
        self.stats = RunStats()
        self.subscribers: list[Subscriber] = [self.stats.observe, *subscribers]
        self.source_location = source_location
        self.fingerprints = {s.name: s.fingerprint() for s in stages}
        self._by_name = {s.name: s for s in stages}
        self._rescuers: dict[str, list[str]] = {}
        for s in stages:
            if s.rescues is not None:
                self._rescuers.setdefault(s.rescues, []).append(s.name)
        self._depends = {s.name: (*s.requires, *s.after,
                                  *(r for req in s.requires for r in self._rescuers.get(req, ())))
                         for s in stages}
        self._inflight: dict[str, asyncio.Future[dict[str, StageOutcome]]] = {}
        self._stopping = False
        self._abandon = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._grace_timer: asyncio.TimerHandle | None = None
        self._running: dict[str, tuple[str, float]] = {}  # key → (url, monotonic start)
        self._stop_reading = threading.Event()
        self._fatal: BaseException | None = None

    # ---------------------------------------------------------------- events
    def emit(self, event: Any) -> None:
        for subscriber in self.subscribers:
            subscriber(event)

    # ------------------------------------------------------------- planning
    def _valid(self, outcome: StageOutcome | None, stage: str) -> bool:
        if outcome is None or outcome.fingerprint != self.fingerprints[stage]:
            return False
        if outcome.status == "failed" and outcome.reason in RECHECKED_EVERY_RUN:
            return False
        if not self._by_name[stage].still_valid(outcome):
            return False
        if self.settings.force and outcome.run_id != self.run_id:
            return False
        return not (self.settings.retry_failed and outcome.status == "failed")

    def plan(self, cached: dict[str, StageOutcome]) -> set[str]:
        """Names of the stages that must run for a bookmark with these cached results."""
        invalid: set[str] = set()
        for stage in self.stages:
            if not self._valid(cached.get(stage.name), stage.name) or any(
                r in invalid and self._may_change(r, cached, invalid)
                for r in self._depends[stage.name]
            ):
                invalid.add(stage.name)
        to_run = set(invalid)
        # A stage reading an uncached payload (the page body) needs its producer again,
        # and whichever stage may stand in for that producer.
        for stage in self.stages:
            if stage.name in invalid:
                for producer in stage.needs_payload:
                    if producer in self._by_name:
                        to_run.add(producer)
                        to_run.update(self._rescuers.get(producer, ()))
        return to_run

    def _may_change(self, name: str, cached: dict[str, StageOutcome],
                    invalid: set[str]) -> bool:
        """Whether re-running ``name`` can change what its dependents read. A rescuer
        (archive) of a producer that is cached and ok only says "not needed": a stage
        added to a cache that predates it must not make every page be fetched again."""
        rescued = self._by_name[name].rescues
        if rescued is None or rescued in invalid:
            return True
        producer = cached.get(rescued)
        return producer is None or producer.status != "ok"

    # ------------------------------------------------------------ execution
    async def _run_stage(self, stage: Stage, ctx: StageContext) -> StageOutcome:
        start = time.monotonic()
        outcome = self._upstream_skip(stage, ctx) or await self._call_stage(stage, ctx)
        outcome.duration = time.monotonic() - start
        outcome.fingerprint = self.fingerprints[stage.name]
        outcome.finished_at = time.time()
        return outcome

    def _upstream_skip(self, stage: Stage, ctx: StageContext) -> StageOutcome | None:
        for required in stage.requires:
            up = ctx.outcomes.get(required)
            if up is None:
                continue  # that stage is disabled in this run
            if up.status != "ok" and any(
                    (o := ctx.outcomes.get(r)) is not None and o.status == "ok"
                    for r in self._rescuers.get(required, ())):
                continue  # another stage made good its failure (an archived copy)
            if up.status == "failed":
                return StageOutcome.skipped("upstream_failed", f"{required} failed")
            if up.status == "skipped":
                return StageOutcome.skipped(up.reason or "upstream_skipped", up.message)
        return None

    async def _call_stage(self, stage: Stage, ctx: StageContext) -> StageOutcome:
        try:
            outcome = await stage.run(ctx)
        except StageError as exc:
            outcome = StageOutcome.failed(
                exc.reason, exc.message, attempts=exc.attempts
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a stage bug must cost one bookmark, not the run
            outcome = StageOutcome.failed("internal_error", f"{type(exc).__name__}: {exc}")
        return outcome

    async def _process(self, bookmark: Bookmark, cached: dict[str, StageOutcome]) -> None:
        to_run = self.plan(cached)
        if to_run and any(o.text is None and o.status == "ok" for o in cached.values()):
            # Downstream stages read cached text (extract's); the fast lookup skipped it.
            cached = self.cache.lookup([bookmark.key], with_text=True).get(bookmark.key, {})
        usable = {n: o for n, o in cached.items() if n in self._by_name and n not in to_run}
        future = self._inflight.get(bookmark.key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._inflight[bookmark.key] = future
        self._running[bookmark.key] = (bookmark.url, time.monotonic())
        try:
            outcomes = await self.execute(bookmark, usable, to_run)
            for outcome in outcomes.values():
                outcome.payload = None  # page bodies go no further than this bookmark
            self.cache.put(bookmark, outcomes, self.run_id, self.source_location)
            future.set_result(outcomes)
        except BaseException as exc:
            future.cancel()
            if isinstance(exc, asyncio.CancelledError):
                self.stats.unfinished += 1  # not cached: the next run does it
            raise
        finally:
            del self._inflight[bookmark.key]
            self._running.pop(bookmark.key, None)
        self._finish(bookmark, outcomes)

    async def execute_local(self, bookmark: Bookmark, cached: dict[str, StageOutcome],
                            to_run: set[str]) -> dict[str, StageOutcome]:
        """Run the planned stages in this process, in pipeline order."""
        ctx = StageContext(bookmark, dict(cached), self.tag_hints, self.slots.parked)
        for stage in self.stages:
            if stage.name in to_run:
                ctx.outcomes[stage.name] = await self._run_stage(stage, ctx)
        return ctx.outcomes

    def _finish(self, bookmark: Bookmark, outcomes: dict[str, StageOutcome],
                *, shared: bool = False) -> None:
        record = build_record(bookmark, outcomes, self.stages,
                              include_text=self.settings.include_text, force_cached=shared)
        for name, rep in record["stages"].items():
            self.emit(StageDone(name, rep["status"], rep["reason"], rep["cached"]))
        self.sink(record)
        self.emit(BookmarkDone(bookmark.url, record["status"], record["cached"]))

    async def _follow(self, bookmark: Bookmark, future: asyncio.Future[Any]) -> None:
        """A duplicate of an in-flight URL shares its result instead of refetching."""
        try:
            outcomes = await asyncio.shield(future)
        except asyncio.CancelledError:
            if self._abandon:
                raise
            return  # the original was abandoned; nothing to share
        self.cache.put(bookmark, {}, self.run_id, self.source_location)
        self._finish(bookmark, outcomes, shared=True)

    async def _worker(self, queue: asyncio.Queue[Any]) -> None:
        while True:
            item = await queue.get()
            try:
                if item is _DONE:
                    return
                bookmark, cached, future = item
                if self._stopping:
                    # Not started: leave it for the next run; release its followers.
                    if future is None:
                        placeholder = self._inflight.pop(bookmark.key, None)
                        if placeholder is not None:
                            placeholder.cancel()
                    continue
                try:
                    if future is not None:
                        await self._follow(bookmark, future)
                    else:
                        async with self.slots.hold():
                            await self._process(bookmark, cached)
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except BaseException as exc:  # output or cache broke: stop the run
                    if self._fatal is None:
                        self._fatal = exc
                    self.request_stop()
            finally:
                queue.task_done()

    # ------------------------------------------------------------- producer
    def _read_chunks(
        self,
        items: Iterator[Bookmark | InputIssue],
        loop: asyncio.AbstractEventLoop,
        chunks: asyncio.Queue[Any],
    ) -> None:
        """Thread: read the source in chunks and pass them to the loop."""

        def put(value: Any) -> bool:
            pending = chunks.put(value)
            try:
                fut = asyncio.run_coroutine_threadsafe(pending, loop)
            except RuntimeError:  # the run ended (its loop closed) while this thread read on
                pending.close()
                return False
            while not self._stop_reading.is_set():
                try:
                    fut.result(timeout=0.2)
                    return True
                except TimeoutError:
                    continue
            fut.cancel()
            return False

        chunk: list[Bookmark | InputIssue] = []
        try:
            for item in items:
                chunk.append(item)
                if len(chunk) >= _CHUNK:
                    if not put(chunk):
                        return
                    chunk = []
                if self._stop_reading.is_set():
                    return
            if chunk:
                put(chunk)
        except BaseException as exc:  # surfaced on the loop side
            put(exc)
        finally:
            put(_DONE)

    async def _dispatch(self, chunk: list[Bookmark | InputIssue], work: asyncio.Queue[Any]) -> None:
        bookmarks: list[Bookmark] = []
        for item in chunk:
            if isinstance(item, InputIssue):
                if self.settings.strict:  # fatal: reported once, as the error, not "skipped"
                    raise InputError(f"line {item.position}: {item.message} (--strict)")
                self.emit(InputProblem(item.position, item.message, item.fatal))
            else:
                bookmarks.append(item)
        if not bookmarks:
            return
        found = self.cache.lookup([b.key for b in bookmarks],
                                  with_text=self.settings.include_text)
        seen: list[str] = []
        for bookmark in bookmarks:
            if self._stopping:
                break
            future = self._inflight.get(bookmark.key)
            if future is not None:
                await work.put((bookmark, None, future))
                continue
            cached = found.get(bookmark.key, {})
            if cached and not self.plan(cached):
                # Its record is in the cache since it was first processed: only when seen.
                seen.append(bookmark.key)
                self._finish(bookmark, cached)
                continue
            # Register before queueing so a duplicate later in this chunk follows it.
            placeholder: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._inflight[bookmark.key] = placeholder
            await work.put((bookmark, cached, None))
        self.cache.seen(seen)

    async def run(
        self,
        items: Iterator[Bookmark | InputIssue],
        *,
        source: str = "",
        fmt: str = "",
        total: int | None = None,
    ) -> RunStats:
        """Process every item; returns the run's stats (also sent as RunFinished)."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        self.emit(RunStarted(source, fmt, [s.name for s in self.stages], total))
        chunks: asyncio.Queue[Any] = asyncio.Queue(maxsize=4)
        work: asyncio.Queue[Any] = asyncio.Queue(maxsize=self.settings.concurrency * 2)
        parking = _PARKING if self.execute == self.execute_local else 1  # a queue: no hosts
        workers = [asyncio.create_task(self._worker(work))
                   for _ in range(self.settings.concurrency * parking)]
        reader = threading.Thread(target=self._read_chunks, args=(items, loop, chunks),
                                  name="bookmark-reader", daemon=True)
        body = asyncio.create_task(self._drive(chunks, work, workers))
        self._tasks = [body, *workers, asyncio.create_task(self._tick())]
        self._install_signals(loop)
        reader.start()
        try:
            await body
        except asyncio.CancelledError:
            if not self._abandon:
                raise
        finally:
            self._stop_reading.set()
            if self._grace_timer is not None:
                self._grace_timer.cancel()
            for task in self._tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*self._tasks, return_exceptions=True)
            for sig in self._signals:
                loop.remove_signal_handler(sig)
            if self._stopping:
                shutdown_pool(kill=True)  # extraction still running for cancelled bookmarks
            self.cache.flush()
            self.stats.wall_seconds = time.monotonic() - started
            self.stats.interrupted = self._stopping and self._fatal is None
            self.stats.metrics.update({s.name: f for s in self.stages if (f := s.metrics())})
        if self._fatal is not None:
            raise self._fatal
        self.emit(RunFinished(self.stats))
        return self.stats

    async def _tick(self) -> None:
        """Every second, what is in flight (log lines use it when nothing finishes)."""
        while True:
            await asyncio.sleep(_TICK)
            self.cache.maybe_flush()  # what finished is committed even when nothing else does
            url, start = min(self._running.values(), key=lambda v: v[1], default=(None, 0.0))
            self.emit(Tick(len(self._running), url, time.monotonic() - start if url else 0.0))

    async def _drive(self, chunks: asyncio.Queue[Any], work: asyncio.Queue[Any],
                     workers: list[asyncio.Task[None]]) -> None:
        await self._consume(chunks, work)
        for _ in workers:
            await work.put(_DONE)
        await asyncio.gather(*workers, return_exceptions=True)

    async def _consume(self, chunks: asyncio.Queue[Any], work: asyncio.Queue[Any]) -> None:
        while True:
            chunk = await chunks.get()
            if chunk is _DONE:
                return
            if isinstance(chunk, BookmarkEnrichError):
                raise chunk
            if isinstance(chunk, BaseException):
                raise InputError(f"reading the source failed: {type(chunk).__name__}: "
                                 f"{chunk}") from chunk
            if self._stopping:
                continue
            await self._dispatch(chunk, work)

    # -------------------------------------------------------------- signals
    def request_stop(self, signum: int | None = None) -> None:
        """First signal: take no new work, give in-flight bookmarks the grace period,
        then cancel them. Second: abandon what is in flight now."""
        if self._stopping:
            self.abandon()
            return
        self._stopping = True
        self._stop_reading.set()
        if signum is not None:
            self.stats.stop_signal = signum
            grace = self.settings.grace
            self.emit(Notice(f"stopping: {len(self._running)} in flight, finishing "
                             f"for up to {grace:g} s; Ctrl-C again to abandon", "warning"))
            loop = asyncio.get_running_loop()
            self._grace_timer = loop.call_later(grace, self.abandon)

    def abandon(self) -> None:
        """Cancel the bookmarks in flight (they are left for the next run) and end the run."""
        self._stopping = self._abandon = True
        self._stop_reading.set()
        for task in self._tasks:
            task.cancel()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        self._signals: list[int] = []
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.request_stop, sig)
                self._signals.append(sig)
            except (NotImplementedError, RuntimeError):
                pass
