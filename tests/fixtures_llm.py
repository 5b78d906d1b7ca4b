"""Fixtures for the fake OpenAI-compatible LLM server (see tests/servers/llm.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.llm import LLMServer


@pytest.fixture(scope="session")
def _llm_session() -> Iterator[LLMServer]:
    server = LLMServer().start()
    yield server
    server.stop()


@pytest.fixture
def llm(_llm_session: LLMServer, monkeypatch: pytest.MonkeyPatch) -> LLMServer:
    """The LM Studio imitation, reset for each test, with LM_STUDIO_API_URL pointing at it.

    Change ``llm.modes`` / ``llm.flavor`` / ``llm.context_length`` in a test as needed.
    """
    _llm_session.reset(flavor="lmstudio", modes=set(), latency=0.0, slow_seconds=5.0,
                       context_length=8192, models=["test-model-7b"])
    monkeypatch.setenv("LM_STUDIO_API_URL", _llm_session.base_url)
    return _llm_session
