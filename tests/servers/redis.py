"""The machine's Redis server (127.0.0.1:6379) and helpers to use it without collisions.

Plain module (no pytest) so benchmarks can use it too. Nothing is started here:
Redis runs as a service (CI starts it); each user takes a fresh key prefix and
removes its keys afterwards, so tests and benchmarks can share one server.
"""

from __future__ import annotations

import socket
import uuid

__all__ = ["REDIS_URL", "RedisServer"]

REDIS_URL = "redis://127.0.0.1:6379/0"


class RedisServer:
    """The Redis at ``url``; :meth:`fresh_name` gives a queue name (key prefix) of one's own."""

    def __init__(self, url: str = REDIS_URL, host: str = "127.0.0.1", port: int = 6379) -> None:
        self.url = url
        self.host = host
        self.port = port

    def available(self) -> bool:
        """True when the server answers PING."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @staticmethod
    def fresh_name(label: str = "test") -> str:
        return f"be-{label}-{uuid.uuid4().hex[:10]}"

    def keys(self, name: str) -> list[str]:
        import redis

        with redis.Redis.from_url(self.url) as client:
            return sorted(k.decode() for k in client.scan_iter(match=f"{name}:*", count=500))

    def client(self) -> object:
        """A synchronous redis-py client (the caller closes it)."""
        import redis

        return redis.Redis.from_url(self.url)

    def cleanup(self, name: str) -> None:
        """Delete every key under ``name:``."""
        import redis

        with redis.Redis.from_url(self.url) as client:
            keys = list(client.scan_iter(match=f"{name}:*", count=500))
            if keys:
                client.delete(*keys)
