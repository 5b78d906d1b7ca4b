"""Fixtures for the Redis server: a fresh queue name (key prefix) per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import skip_or_fail
from tests.servers.redis import RedisServer


@dataclass
class RedisQueue:
    """Where a test's queue lives: ``--queue URL --queue-name NAME``."""

    server: RedisServer
    url: str
    name: str

    def args(self) -> list[str]:
        return ["--queue", self.url, "--queue-name", self.name]


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    server = RedisServer()
    if not server.available():
        skip_or_fail("no Redis at 127.0.0.1:6379")
    return server


@pytest.fixture
def redis_queue(redis_server: RedisServer) -> Iterator[RedisQueue]:
    """A queue of this test's own on the machine's Redis; its keys are removed after."""
    name = redis_server.fresh_name()
    yield RedisQueue(redis_server, redis_server.url, name)
    redis_server.cleanup(name)
