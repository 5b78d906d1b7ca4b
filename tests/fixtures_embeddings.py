"""Fixtures for the fake embeddings server (see tests/servers/embeddings.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.embeddings import EmbeddingServer


@pytest.fixture(scope="session")
def _embeddings_session() -> Iterator[EmbeddingServer]:
    server = EmbeddingServer().start()
    yield server
    server.stop()


@pytest.fixture
def embeddings(_embeddings_session: EmbeddingServer,
               monkeypatch: pytest.MonkeyPatch) -> EmbeddingServer:
    """The embeddings server, reset, with BOOKMARK_ENRICH_EMBEDDING_URL pointing at it."""
    _embeddings_session.reset()
    monkeypatch.setenv("BOOKMARK_ENRICH_EMBEDDING_URL", _embeddings_session.base_url)
    return _embeddings_session
