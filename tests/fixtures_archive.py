"""The stand-in web archive: one server per session, fresh answers per test.

Every test that wants the archive stage takes ``archive``: it turns the stage on
and points ``BOOKMARK_ENRICH_ARCHIVE_URL`` at this loopback server. Without it
the stage is off (conftest) and its address is a closed loopback port.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.archive import ArchiveServer


@pytest.fixture(scope="session")
def archive_server() -> Iterator[ArchiveServer]:
    server = ArchiveServer().start()
    yield server
    server.stop()


@pytest.fixture
def archive(archive_server: ArchiveServer, monkeypatch: pytest.MonkeyPatch,
            ) -> Iterator[ArchiveServer]:
    """The stand-in archive, emptied, with the archive stage on and pointed at it."""
    archive_server.reset()
    archive_server.hold = 0.0
    monkeypatch.setenv("BOOKMARK_ENRICH_ARCHIVE", "true")
    monkeypatch.setenv("BOOKMARK_ENRICH_ARCHIVE_URL", archive_server.base)
    monkeypatch.setenv("BOOKMARK_ENRICH_ARCHIVE_RATE", "0")
    yield archive_server
    archive_server.reset()
