"""Retries with backoff, within a deadline: how a stage tries again after an error that
can heal, and when it stops trying a host that is as good as dead."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .errors import StageError

__all__ = ["HostBreaker", "retry_delay", "with_retries"]

T = TypeVar("T")


def retry_delay(attempt: int, base: float, retry_after: float | None, cap: float) -> float:
    """Exponential backoff with jitter; a server's Retry-After wins (capped)."""
    if retry_after is not None:
        return max(0.0, min(retry_after, cap))
    return float(min(cap, base * (2**attempt) * (0.5 + random.random())))


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    retries: int,
    backoff: float,
    max_retry_after: float,
    on_retry: Callable[[StageError, int], None] | None = None,
    deadline: Callable[[], float | None] | None = None,
) -> tuple[T, int]:
    """Run ``call``; retry StageErrors marked retryable. Returns (value, attempts).

    ``deadline`` gives the loop time by which everything must be over (None: not
    started yet): a wait that would end past it is not made, the error stands.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call(), attempt
        except StageError as exc:
            if not exc.retryable or attempt > retries:
                exc.attempts = attempt
                raise
            delay = retry_delay(attempt - 1, backoff, exc.retry_after, max_retry_after)
            end = deadline() if deadline is not None else None
            if end is not None and asyncio.get_running_loop().time() + delay >= end:
                exc.attempts = attempt
                raise
            if on_retry is not None:
                on_retry(exc, attempt)
            await asyncio.sleep(delay)


class HostBreaker:
    """Counts consecutive failures per host (scheme, name, port) in one run.

    After ``limit`` connect failures, timeouts or deadline hits in a row, the host
    is taken for dead and its bookmarks are not tried again in this run. Once a host
    has failed, a new attempt starts only while the failures so far plus the
    attempts still running stay under ``limit``: those running may well fail too,
    and a bookmark started now would cost a whole deadline for nothing. Any answer
    from the host resets its count.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._failures: dict[str, int] = {}
        self._running: dict[str, int] = {}
        self._change: asyncio.Event | None = None

    def dead(self, host: str) -> int:
        """The failures in a row of ``host`` when it counts as dead, else 0."""
        n = self._failures.get(host, 0)
        return n if self.limit and n >= self.limit else 0

    async def admit(self, host: str) -> int:
        """Wait until an attempt on ``host`` may start (then it counts as running and
        must be ended with :meth:`finished`); returns the failures if the host is dead."""
        while True:
            failures = self._failures.get(host, 0)
            if self.dead(host):
                return failures
            running = self._running.get(host, 0)
            if not self.limit or failures == 0 or failures + running < self.limit:
                self._running[host] = running + 1
                return 0
            if self._change is None:
                self._change = asyncio.Event()
            await self._change.wait()

    def finished(self, host: str, *, failed: bool | None) -> None:
        """An admitted attempt ended: ``failed`` to reach the host, or it answered
        (None: it was cancelled, which says nothing about the host)."""
        left = self._running.get(host, 1) - 1
        if left:
            self._running[host] = left
        else:
            self._running.pop(host, None)
        if failed:
            self._failures[host] = self._failures.get(host, 0) + 1
        elif failed is False:
            self._failures.pop(host, None)
        if self._change is not None:
            self._change.set()
            self._change = None
