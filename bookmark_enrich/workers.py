"""The process pool for CPU work (extraction, built-in summaries), shared per process.

CPU-bound steps run here so the event loop never blocks and every core works.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from .extraction import warm_up

__all__ = ["BrokenProcessPool", "run_cpu", "shutdown_pool"]

T = TypeVar("T")
_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_size = 0


def _get_pool(processes: int) -> concurrent.futures.ProcessPoolExecutor:
    global _pool, _pool_size
    if _pool is None or _pool_size != processes:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        methods = multiprocessing.get_all_start_methods()
        # forkserver: workers fork from a clean process, never from our threads.
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            ctx.set_forkserver_preload(["bookmark_enrich.extraction"])
        _pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=processes, mp_context=ctx, initializer=warm_up
        )
        _pool_size = processes
    return _pool


async def run_cpu(processes: int, func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` in the shared pool (``processes == 0``: in a thread)."""
    loop = asyncio.get_running_loop()
    if processes <= 0:
        return await asyncio.to_thread(func, *args)
    try:
        return await loop.run_in_executor(_get_pool(processes), func, *args)
    except BrokenProcessPool:
        shutdown_pool()  # a worker died (OOM, signal): the next call starts a fresh pool
        raise


def shutdown_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None
