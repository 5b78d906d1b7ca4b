"""The process pool for CPU work (extraction, built-in summaries), shared per process.

CPU-bound steps run here so the event loop never blocks and every core works.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from .extraction import warm_up

__all__ = ["BrokenProcessPool", "TimeLimitExceeded", "run_cpu", "run_cpu_limited",
           "shutdown_pool"]

T = TypeVar("T")
_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_size = 0
_marks: dict[int, str] = {}
"""Per pool (by id): a folder where a worker killed over its time limit leaves a mark,
so the tasks that shared its pool know to run again."""
_GRACE = 5.0
"""Seconds past the limit before a worker stuck where signals cannot reach it is killed."""


class TimeLimitExceeded(Exception):
    """A task ran past its time limit and was stopped."""


def _get_pool(processes: int) -> concurrent.futures.ProcessPoolExecutor:
    global _pool, _pool_size
    if _pool is None or _pool_size != processes:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        methods = multiprocessing.get_all_start_methods()
        # forkserver: workers fork from a clean process, never from our threads.
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            ctx.set_forkserver_preload(["bookmark_enrich.extraction", "pypdfium2"])
        _pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=processes, mp_context=ctx, initializer=warm_up
        )
        _pool_size = processes
        marks = tempfile.mkdtemp(prefix="bookmark-enrich-pool-")
        _marks[id(_pool)] = marks
        weakref.finalize(_pool, _forget, id(_pool), marks)
    return _pool


def _forget(key: int, marks: str) -> None:
    _marks.pop(key, None)
    shutil.rmtree(marks, ignore_errors=True)


def _killed_on_purpose(pool: concurrent.futures.ProcessPoolExecutor) -> bool:
    marks = _marks.get(id(pool))
    return bool(marks and os.path.isdir(marks) and os.listdir(marks))


def _was_killed(mark: str) -> bool:
    return os.path.exists(mark)


def _reset(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Drop a broken pool (once; another task may have replaced it already)."""
    global _pool
    if _pool is pool:
        _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


async def run_cpu(processes: int, func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` in the shared pool (``processes == 0``: in a thread)."""
    loop = asyncio.get_running_loop()
    if processes <= 0:
        return await asyncio.to_thread(func, *args)
    for _ in range(3):
        pool = _get_pool(processes)
        try:
            return await loop.run_in_executor(pool, func, *args)
        except BrokenProcessPool:
            _reset(pool)  # a worker died: the next call starts a fresh pool
            if not _killed_on_purpose(pool):
                raise  # OOM, a signal: this task may be the cause
            # Another task's worker was killed over its time limit; this one was innocent.
    raise BrokenProcessPool("the pool was restarted three times under this task")


def _alarm(signum: int, frame: Any) -> None:
    raise _Deadline


class _Deadline(BaseException):
    """Raised by the alarm; a BaseException so no ``except Exception`` swallows it."""


def _kill_self(mark: str) -> None:
    with open(mark, "w"):
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def _within(limit: float, grace: float, mark: str, func: Callable[..., T],
            args: tuple[Any, ...]) -> T:
    """In a pool worker's main thread: SIGALRM stops ``func`` once Python code runs
    again; a watchdog thread kills the worker if it is stuck in C code past the grace."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    watchdog = threading.Timer(limit + grace, _kill_self, (mark,))
    watchdog.daemon = True
    watchdog.start()
    try:
        return func(*args)
    except _Deadline:
        raise TimeLimitExceeded(f"over {limit:g} s") from None
    finally:
        watchdog.cancel()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


async def run_cpu_limited(processes: int, limit: float, func: Callable[..., T],
                          *args: Any) -> T:
    """Like :func:`run_cpu`, stopped after ``limit`` seconds of running with
    TimeLimitExceeded (time queued behind other tasks does not count).

    In a thread (``processes == 0``) the caller stops waiting, but the thread runs on.
    """
    if processes <= 0:
        try:
            return await asyncio.wait_for(asyncio.to_thread(func, *args), limit)
        except TimeoutError:
            raise TimeLimitExceeded(f"over {limit:g} s") from None
    loop = asyncio.get_running_loop()
    for _ in range(3):
        pool = _get_pool(processes)
        mark = os.path.join(_marks[id(pool)], uuid.uuid4().hex)
        try:
            return await loop.run_in_executor(pool, _within, limit, _GRACE, mark, func, args)
        except BrokenProcessPool:
            _reset(pool)
            if _was_killed(mark):
                raise TimeLimitExceeded(f"over {limit:g} s; its worker was killed") from None
            if not _killed_on_purpose(pool):
                raise
    raise BrokenProcessPool("the pool was restarted three times under this task")


def shutdown_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None
