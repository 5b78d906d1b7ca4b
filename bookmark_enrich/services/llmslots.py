"""How many LLM requests are in flight: a fixed number, the server's slots, or adapted.

A local server runs a few requests at once (llama.cpp ``--parallel``, LM Studio's
parallel predictions, Ollama's ``OLLAMA_NUM_PARALLEL``); one more request only waits
in the server's queue, where no stall limit can tell waiting from working. So:

- A fixed ``--llm-concurrency N`` is kept (a busy answer still pauses, for its
  ``Retry-After``).
- ``auto`` with a server that reports its slots (llama.cpp ``/props``) starts there,
  or lower when the slots share one KV cache that cannot hold that many prompts.
  When the server does not say whether they share one (llama.cpp's ``/props`` has
  no such key, and reports one slot's ``n_ctx`` either way), it starts at what a
  shared cache would hold and climbs towards the slots while throughput rises; a
  context overflow on the way caps it.
- ``auto`` elsewhere starts at 2 and climbs while throughput rises by 10 % or more
  per step; a step that only adds latency is taken back and becomes the ceiling.
- A busy answer (429, 503, "busy") lowers the limit at once below what was in
  flight, caps it there, and pauses new requests for ``Retry-After``. A context
  overflow on a shared KV cache lowers it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["SlotLimiter"]

AUTO_START = 2
AUTO_CEILING = 8
"""``auto`` never goes past this without the server saying it has more slots."""
_GAIN = 1.10
"""A step up is kept when throughput rises by at least this factor."""


@dataclass(slots=True)
class _Window:
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    latency: float = 0.0


class SlotLimiter:
    """An adjustable semaphore for LLM requests, with the reason for its size."""

    def __init__(self, setting: int | Literal["auto"]) -> None:
        self.auto = setting == "auto"
        self.limit = AUTO_START if setting == "auto" else int(setting)
        self.ceiling = AUTO_CEILING if self.auto else self.limit
        self.reason = ("auto: the server does not report its slots; adapting to throughput"
                       if self.auto else "--llm-concurrency")
        self.adapting = self.auto
        self.in_flight = 0
        self.peak = 0
        self.changes: list[tuple[int, str]] = []
        self._cond = asyncio.Condition()
        self._paused_until = 0.0
        self._window = _Window()
        self._previous: tuple[int, float, float] | None = None
        """(limit, throughput, mean latency) of the last finished window."""

    def describe(self) -> str:
        """``4 (auto: the server has 4 slots)``: for the run's first lines and doctor."""
        return f"{self.limit} ({self.reason})"

    def server_slots(self, slots: int | None, fit: int | None, why: str, *,
                     fit_known: bool = True) -> None:
        """What the server said (llama.cpp ``/props``); ``fit`` is how many prompts its
        context holds at once if the slots share one KV cache, and ``fit_known`` whether
        the server said they do."""
        if not self.auto or not slots:
            return
        limit = max(1, min(slots, fit or slots))
        self.limit = limit
        self.ceiling = limit if fit_known else slots
        self.adapting = limit < self.ceiling
        self._window, self._previous = _Window(), None
        self.reason = f"auto: {why}"
        if self.adapting:
            self.reason += (" if they share one KV cache (the server does not say); "
                            "raised while throughput rises")

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request slot; waits while the limit is reached or a pause runs."""
        async with self._cond:
            while True:
                wait = self._paused_until - time.monotonic()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._cond.wait(), wait)
                    continue
                if self.in_flight < self.limit:
                    break
                await self._cond.wait()
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            yield
        finally:
            async with self._cond:
                self.in_flight -= 1
                self._cond.notify_all()

    # ------------------------------------------------------------- feedback
    def _set(self, limit: int, why: str) -> None:
        limit = max(1, min(limit, self.ceiling))
        if limit != self.limit:
            self.limit = limit
            self.changes.append((limit, why))
        self._window = _Window()

    def done(self, latency: float) -> None:
        """One answer arrived after ``latency`` seconds of work."""
        w = self._window
        w.done += 1
        w.latency += latency
        if not self.adapting or w.done < max(4, 2 * self.limit):
            return
        throughput = w.done / max(time.monotonic() - w.started, 1e-6)
        mean = w.latency / w.done
        previous = self._previous
        self._previous = (self.limit, throughput, mean)
        if previous is None or self.limit > previous[0]:
            if previous is not None and throughput < previous[1] * _GAIN:
                # The step up bought latency, not throughput: take it back and stay.
                self.ceiling = previous[0]
                self.adapting = False
                self.reason = (f"auto: {self.limit} in flight gave no more throughput "
                               f"than {previous[0]}")
                self._set(previous[0], "no throughput gain")
                return
            if self.limit < self.ceiling:
                self.reason = "auto: raised while throughput rose"
                self._set(self.limit + 1, "throughput rose")
                return
        self._window = _Window()

    async def busy(self, retry_after: float | None, why: str) -> None:
        """The server said it is full: fewer in flight from now on, and a pause."""
        async with self._cond:
            below = max(1, min(self.limit, self.in_flight) - 1)
            if below < self.limit:
                self.ceiling = below
                self.adapting = False
                self.reason = f"{'auto' if self.auto else 'lowered'}: the server answered {why}"
                self._set(below, why)
            pause = retry_after if retry_after is not None else 1.0
            self._paused_until = max(self._paused_until, time.monotonic() + min(pause, 60.0))
            self._cond.notify_all()

    def overflow(self) -> None:
        """A prompt did not fit the shared context: one fewer in flight from now on."""
        if self.limit > 1:
            self.ceiling = self.limit - 1
            self.adapting = False
            self.reason = "lowered: the server's shared context overflowed"
            self._set(self.limit - 1, "context overflow")
