"""The Redis stream under the queue: taskiq-redis' stream broker and a worker's lease.

taskiq-redis' :class:`RedisStreamBroker` (>= 1.2.3) gives the consumer group, the
acknowledgement once a result is saved, and redelivery of unacknowledged
messages: after each read that returned a message it XAUTOCLAIMs what has been
idle for ``idle_timeout``. We use all of that as it is. What a queue of long
batches needs beyond it, and which that public API cannot give, is here, beside
it rather than inside it:

- read only with room for more bookmarks (:meth:`StreamBroker.listen`, the one
  override);
- redeliver a dead worker's messages also when nothing new arrives
  (:meth:`StreamLease.requeue_idle`): upstream claims only after a read that
  returned something, so the last batches of a run would wait forever;
- keep the lease on batches that run longer than ``idle_timeout``
  (:meth:`StreamLease.renew`), so nobody runs them twice;
- hand back what a stopping worker holds, at once rather than after the idle
  timeout (:meth:`StreamLease.hand_back`);
- drop acknowledged entries (:meth:`StreamLease.trim`): upstream's ack keeps
  them, so the stream would grow with every batch ever sent.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

__all__ = ["Capacity", "StreamBroker", "StreamLease", "stream_broker"]

CONSUMER_GROUP = "workers"
_REQUEUE_BATCH = 16
"""Idle messages one worker moves back per tick (the rest on the next ones)."""


class Capacity:
    """How many bookmarks a worker holds against its concurrency (read by its stream)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bookmarks = 0
        self.unparsed = 0
        self.changed = asyncio.Event()

    def has_room(self) -> bool:
        return self.unparsed == 0 and self.bookmarks < self.limit

    def update(self, *, bookmarks: int = 0, unparsed: int = 0) -> None:
        self.bookmarks += bookmarks
        self.unparsed += unparsed
        self.changed.set()

    async def wait_for_room(self) -> None:
        while not self.has_room():
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 1.0)
            except TimeoutError:
                # A message taskiq dropped unparsed (acked, never run) would block us.
                if self.unparsed:
                    self.unparsed = 0


class StreamBroker(RedisStreamBroker):
    """taskiq-redis' stream broker that reads a message only when the worker has room."""

    def __init__(self, url: str, *, capacity: Capacity | None = None, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.capacity = capacity

    # The one override, of the public listen(), delegating to it. taskiq's Receiver
    # caps messages in flight, not the bookmarks in them (the batch size is the
    # coordinator's), so without this a busy worker would take batches it cannot
    # start while other workers idle. Upstream reads one message per step
    # (xread_count=1) and only when asked for the next, so waiting before asking is
    # enough.
    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        messages = super().listen()
        try:
            async for message in messages:
                if self.capacity is not None:
                    self.capacity.update(unparsed=1)
                yield AckableMessage(data=message.data, ack=_quiet(message.ack))
                if self.capacity is not None:
                    await self.capacity.wait_for_room()
        finally:
            await messages.aclose()


def _quiet(ack: Callable[[], Awaitable[None] | None]) -> Callable[[], Awaitable[None]]:
    async def ack_quietly() -> None:
        # A lost Redis must not end a task with a traceback: the message stays
        # pending, comes back after the idle timeout, and the next read reports the loss.
        try:
            result = ack()
            if inspect.isawaitable(result):
                await result
        except (OSError, redis_errors.RedisError):
            pass

    return ack_quietly


def stream_broker(url: str, *, stream: str, idle_timeout: float, consumer: str | None,
                  capacity: Capacity | None, options: dict[str, Any]) -> StreamBroker:
    """The broker of one queue's stream; ``idle_timeout`` in seconds."""
    return StreamBroker(
        url, capacity=capacity, queue_name=stream, consumer_group_name=CONSUMER_GROUP,
        consumer_name=consumer,
        consumer_id="0",  # the group reads the stream from its start: sent before any worker
        idle_timeout=int(idle_timeout * 1000),
        unacknowledged_batch_size=1,  # claim one at a time, as reads go: no hoarding
        xread_block=1000, xread_count=1, **options)


class StreamLease:
    """A worker's side work on the stream its broker reads (see the module docstring)."""

    def __init__(self, redis: Redis, broker: RedisStreamBroker) -> None:
        self.redis = redis
        self.stream = broker.queue_name
        self.group = broker.consumer_group_name
        self.consumer = broker.consumer_name
        self.idle_ms = broker.idle_timeout

    async def _held(self) -> list[Any]:
        pending = await self.redis.xpending_range(
            self.stream, self.group, min="-", max="+", count=10_000,
            consumername=self.consumer)
        return [entry["message_id"] for entry in pending]

    async def renew(self) -> None:
        """Reset the idle time of what this worker holds, so nobody claims it."""
        held = await self._held()
        if held:
            await self.redis.xclaim(self.stream, self.group, self.consumer, min_idle_time=0,
                                    message_ids=held, justid=True)

    async def requeue_idle(self) -> int:
        """Move messages idle past the timeout (their worker died) back into the stream."""
        reply: Any = await self.redis.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_time=self.idle_ms,
            start_id="0-0", count=_REQUEUE_BATCH)
        return await self._requeue(reply[1])

    async def hand_back(self) -> int:
        """Move every message this worker holds back into the stream (a stopping worker)."""
        held = await self._held()
        if not held:
            return 0
        entries: Any = await self.redis.xclaim(self.stream, self.group, self.consumer,
                                               min_idle_time=0, message_ids=held)
        # Deleted entries come back without fields: still acknowledge them.
        found = {entry[0] for entry in entries if entry and entry[0]}
        return await self._requeue([*entries, *((i, None) for i in held if i not in found)])

    async def _requeue(self, entries: list[Any]) -> int:
        # A copy goes to the end of the stream, where any worker reads it as new;
        # the original is acknowledged and deleted in the same transaction.
        count = 0
        pipe = self.redis.pipeline(transaction=True)
        for entry in entries:
            if not entry or entry[0] is None:
                continue
            msg_id, fields = entry[0], entry[1]
            if fields:
                pipe.xadd(self.stream, fields)
                count += 1
            pipe.xack(self.stream, self.group, msg_id)
            pipe.xdel(self.stream, msg_id)
        if len(pipe):
            await pipe.execute()
        return count

    async def trim(self) -> None:
        """Delete the acknowledged head of the stream.

        Every entry below the group's oldest pending one and at or below its last
        delivered one was acknowledged; nothing can make it pending again.
        """
        pipe = self.redis.pipeline(transaction=True)
        pipe.xinfo_groups(self.stream)
        pipe.xpending(self.stream, self.group)
        groups, pending = await pipe.execute()
        group = next((g for g in groups if _text(g.get("name")) == self.group), None)
        if group is None:
            return
        if pending.get("pending"):
            first_kept = _text(pending["min"])
        else:
            millis, _, seq = _text(group["last-delivered-id"]).partition("-")
            first_kept = f"{millis}-{int(seq or 0) + 1}"
        await self.redis.xtrim(self.stream, minid=first_kept, approximate=False)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
