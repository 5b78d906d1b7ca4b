"""The run's concurrency slots, which a bookmark gives up while it waits on a busy host.

Without this, bookmarks queued behind a host that answers slowly (or not at all) hold
every slot, and bookmarks of healthy hosts wait too: a run's time then grows with its
worst host, not with its own work.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator

__all__ = ["Slots"]

_held: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("slot", default=None)


class Slots:
    """``size`` slots: :meth:`hold` one for a bookmark's work, :meth:`parked` inside it
    while waiting on something that is not this bookmark's own work."""

    def __init__(self, size: int) -> None:
        self._free = asyncio.Semaphore(size)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        await self._free.acquire()
        state = [True]
        token = _held.set(state)
        try:
            yield
        finally:
            _held.reset(token)
            if state[0]:
                self._free.release()

    @contextlib.asynccontextmanager
    async def parked(self) -> AsyncIterator[None]:
        """Give the slot up for the block (a no-op where none is held: a queue worker)."""
        state = _held.get()
        if state is None or not state[0]:
            yield
            return
        self._free.release()
        state[0] = False
        try:
            yield
        finally:
            await self._free.acquire()
            state[0] = True
