"""The process pool for CPU work (extraction, built-in summaries), shared per process.

CPU-bound steps run here so the event loop never blocks and every core works.
Pool processes never outlive the run: on Linux the kernel kills them when their
parent dies (``PR_SET_PDEATHSIG``), elsewhere a thread watches the parent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from .extraction import warm_up
from .lifeline import die_with_parent

__all__ = ["BrokenProcessPool", "TimeLimitExceeded", "run_cpu", "run_cpu_limited",
           "shutdown_pool"]

T = TypeVar("T")
_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_size = 0
_marks: dict[int, str] = {}
"""Per pool (by id): a folder where a task's worker notes its pid when it starts
(``<task>.run``) and where a worker killed over its time limit leaves a mark
(``<task>.killed``), so the tasks that shared its pool know to run again."""
_GRACE = 5.0
"""Seconds past the limit before a worker stuck where signals cannot reach it is killed."""
_POLL = 0.05
"""Seconds between the parent's looks at a limited task that has run past its limit."""


class TimeLimitExceeded(Exception):
    """A task ran past its time limit and was stopped."""


def _die_with(parent: int) -> None:
    """Pool initializer: exit when the run's process is gone, then warm up.

    On Linux the kernel kills us when the forkserver (our parent) dies, which it
    does with the run (see :mod:`lifeline`), even when stuck in C code holding the
    GIL; everywhere a thread also watches the run's process.
    """
    die_with_parent()
    if os.getppid() == 1 or not _alive(parent):
        os._exit(1)  # the run died before we got here
    threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()
    warm_up()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(parent: int) -> None:
    while _alive(parent):
        time.sleep(0.5)
    os._exit(1)


def _get_pool(processes: int) -> concurrent.futures.ProcessPoolExecutor:
    global _pool, _pool_size
    if _pool is None or _pool_size != processes:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        methods = multiprocessing.get_all_start_methods()
        # forkserver: workers fork from a clean process, never from our threads.
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            ctx.set_forkserver_preload(["bookmark_enrich.lifeline", "bookmark_enrich.extraction",
                                        "pypdfium2"])
        _pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=processes, mp_context=ctx, initializer=_die_with,
            initargs=(os.getpid(),),
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
    with contextlib.suppress(OSError):
        return bool(marks) and any(n.endswith(".killed") for n in os.listdir(str(marks)))
    return False


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


def _within(limit: float, running: str, func: Callable[..., T], args: tuple[Any, ...]) -> T:
    """In a pool worker's main thread: note our pid and start for the parent (which kills
    us if we are stuck in C code past the grace), and let SIGALRM stop ``func`` once
    Python code runs again."""
    with open(running, "w") as f:
        f.write(f"{os.getpid()} {time.time()}")
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        return func(*args)
    except _Deadline:
        raise TimeLimitExceeded(f"over {limit:g} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        with contextlib.suppress(OSError):
            os.unlink(running)


def _started(running: str) -> tuple[int, float] | None:
    """The pid and start time a limited task's worker noted, if it runs now."""
    try:
        with open(running) as f:
            pid, start = f.read().split()
        return int(pid), float(start)
    except (OSError, ValueError):
        return None


async def _watch_task(pool: concurrent.futures.ProcessPoolExecutor,
                      future: asyncio.Future[T], limit: float, running: str,
                      killed: str) -> T:
    """Wait for ``future``; kill its worker once it has run ``limit`` + grace seconds.

    The kill comes from here, the parent, so a worker stuck in C code with the GIL
    held (where no thread of its own can run) is stopped all the same.
    """
    done, _ = await asyncio.wait({future}, timeout=limit)
    while not done:
        if _kill_overdue(running, killed, limit):
            _wake(pool)
        done, _ = await asyncio.wait({future}, timeout=_POLL)
    return future.result()


def _kill_overdue(running: str, killed: str, limit: float) -> bool:
    """Kill the worker of a task running past ``limit`` + grace; whether it did."""
    noted = _started(running)
    if noted is None or time.time() - noted[1] <= limit + _GRACE:
        return False
    with open(killed, "w"):
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(noted[0], signal.SIGKILL)
    return True


def _was_killed(mark: str) -> bool:
    return os.path.exists(mark)


def _wake(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Make the pool look at its workers again after a kill.

    Its manager thread waits on the workers it knew of when it last woke; a worker
    started on demand after that is not watched, so its death would go unseen and
    every task of the pool would wait forever (the intermittent hang). A submit
    wakes the manager, which then sees the dead worker and breaks the pool.
    """
    with contextlib.suppress(BrokenProcessPool, RuntimeError):
        pool.submit(os.getpid)


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
        task = os.path.join(_marks[id(pool)], uuid.uuid4().hex)
        future = loop.run_in_executor(pool, _within, limit, task + ".run", func, args)
        try:
            return await _watch_task(pool, future, limit, task + ".run", task + ".killed")
        except BrokenProcessPool:
            _reset(pool)
            if _was_killed(task + ".killed"):
                raise TimeLimitExceeded(f"over {limit:g} s; its worker was killed") from None
            if not _killed_on_purpose(pool):
                raise
    raise BrokenProcessPool("the pool was restarted three times under this task")


def shutdown_pool(*, kill: bool = False) -> None:
    """Stop the shared pool; with ``kill``, end its busy workers now (a stopping run)."""
    global _pool
    if _pool is not None:
        pool, _pool = _pool, None
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        if kill:
            for proc in processes:
                with contextlib.suppress(Exception):
                    proc.kill()
