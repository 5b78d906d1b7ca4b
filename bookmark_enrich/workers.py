"""The process pool for CPU work (extraction, built-in summaries), shared per process.

CPU-bound steps run here so the event loop never blocks and every core works.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import signal
import weakref
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

__all__ = ["BrokenProcessPool", "TimeLimitExceeded", "run_cpu", "run_cpu_limited",
           "shutdown_pool"]

T = TypeVar("T")
_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_size = 0
_killed: weakref.WeakSet[concurrent.futures.ProcessPoolExecutor] = weakref.WeakSet()
"""Pools killed on purpose (a task over its hard limit): their other tasks rerun."""
_GRACE = 5.0
"""Seconds past the limit before a worker stuck where signals cannot reach it is killed."""


class TimeLimitExceeded(Exception):
    """A task ran past its time limit and was stopped."""


def _warm_up() -> None:
    # The slow import and trafilatura's first-call set-up, once per worker.
    from .stages._extract_worker import extract

    extract(b"<html><body><p>warm up</p></body></html>", "utf-8", "http://localhost/")


def _get_pool(processes: int) -> concurrent.futures.ProcessPoolExecutor:
    global _pool, _pool_size
    if _pool is None or _pool_size != processes:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        methods = multiprocessing.get_all_start_methods()
        # forkserver: workers fork from a clean process, never from our threads.
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            ctx.set_forkserver_preload(["bookmark_enrich.stages._extract_worker", "pypdfium2"])
        _pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=processes, mp_context=ctx, initializer=_warm_up
        )
        _pool_size = processes
    return _pool


async def run_cpu(processes: int, func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` in the shared pool (``processes == 0``: in a thread)."""
    loop = asyncio.get_running_loop()
    if processes <= 0:
        return await asyncio.to_thread(func, *args)
    for _ in range(2):
        pool = _get_pool(processes)
        try:
            return await loop.run_in_executor(pool, func, *args)
        except BrokenProcessPool:
            if pool not in _killed:
                shutdown_pool()  # a worker died (OOM, signal): the next call starts afresh
                raise
            # Another task's worker was killed over its limit; this one was innocent.
    raise BrokenProcessPool("the pool was restarted twice under this task")


class _Deadline(BaseException):
    """Raised by the alarm; a BaseException so no ``except Exception`` swallows it."""


def _alarm(signum: int, frame: Any) -> None:
    raise _Deadline


def _within(limit: float, func: Callable[..., T], args: tuple[Any, ...]) -> T:
    """In a pool worker (its main thread): SIGALRM stops ``func`` once Python runs again."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        return func(*args)
    except _Deadline:
        raise TimeLimitExceeded(f"over {limit:g} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


async def run_cpu_limited(processes: int, limit: float, func: Callable[..., T],
                          *args: Any) -> T:
    """Like :func:`run_cpu`, stopped after ``limit`` seconds with TimeLimitExceeded.

    The worker stops itself with an alarm; a worker stuck inside C code past the
    grace period is killed, and the other tasks it shared the pool with run again.
    In a thread (``processes == 0``) the caller stops waiting, but the thread runs on.
    """
    if processes <= 0:
        try:
            return await asyncio.wait_for(asyncio.to_thread(func, *args), limit)
        except TimeoutError:
            raise TimeLimitExceeded(f"over {limit:g} s") from None
    pool = _get_pool(processes)
    future = asyncio.get_running_loop().run_in_executor(pool, _within, limit, func, args)
    try:
        return await asyncio.wait_for(asyncio.shield(future), limit + _GRACE)
    except TimeoutError:
        _kill(pool)
        raise TimeLimitExceeded(f"over {limit:g} s; its worker was killed") from None
    except BrokenProcessPool:
        if pool not in _killed:
            shutdown_pool()
            raise
        return await run_cpu_limited(processes, limit, func, *args)


def _kill(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    global _pool
    _killed.add(pool)
    # The executor has no public way to stop one task; its processes are all we can reach.
    for process in list(getattr(pool, "_processes", {}).values()):
        process.kill()
    if _pool is pool:
        _pool = None
    pool.shutdown(wait=False, cancel_futures=False)


def shutdown_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None
