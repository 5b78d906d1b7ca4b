"""The machine's Redis server (127.0.0.1:6379) and helpers to use it without collisions.

Plain module (no pytest) so benchmarks can use it too. Nothing is started here:
Redis runs as a service (CI starts it); each user takes a fresh key prefix and
removes its keys afterwards, so tests and benchmarks can share one server.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid

__all__ = ["REDIS_URL", "RedisServer", "start_private"]

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


def start_private() -> tuple[subprocess.Popen[bytes], RedisServer] | None:
    """A throw-away redis-server on a free port (a test may kill it); None without the binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    server = RedisServer(f"redis://127.0.0.1:{port}/0", port=port)
    deadline = time.monotonic() + 10
    while not server.available():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            return None
        time.sleep(0.05)
    return proc, server
