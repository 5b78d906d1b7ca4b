"""Retries with backoff: how a stage tries again after an error that can heal."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .errors import StageError

__all__ = ["retry_delay", "with_retries"]

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
) -> tuple[T, int]:
    """Run ``call``; retry StageErrors marked retryable. Returns (value, attempts)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call(), attempt
        except StageError as exc:
            if not exc.retryable or attempt > retries:
                exc.attempts = attempt
                raise
            if on_retry is not None:
                on_retry(exc, attempt)
            await asyncio.sleep(retry_delay(attempt - 1, backoff, exc.retry_after,
                                            max_retry_after))
