"""Shared fixtures: one per real server, plus an isolated environment for every test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.offline import sitecustomize as _offline  # noqa: F401 - patches this process
from tests.servers.pages import Gate, PageServer

# The CLI sizes its report console when first imported; pytest-xdist workers start with
# COLUMNS=80 where a plain run has none. Import it the same way in both.
os.environ.pop("COLUMNS", None)

# Subprocesses (the CLI, queue workers) resolve offline too.
_OFFLINE = str(Path(__file__).resolve().parent / "offline")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_OFFLINE, os.environ.get("PYTHONPATH", "")) if p)

# Fixture modules for the other servers (LLM, Cobalt, S3, Postgres, Redis) register here.
pytest_plugins: list[str] = []
pytest_plugins.append("tests.fixtures_llm")
pytest_plugins.append("tests.fixtures_redis")
pytest_plugins.append("tests.fixtures_postgres")
pytest_plugins.append("tests.fixtures_s3")
pytest_plugins.append("tests.fixtures_archive")
pytest_plugins.append("tests.fixtures_embeddings")

# Where the summarizer looks for a local LLM server unless a test says otherwise: an address
# where nothing listens (the discard port, outside the range test servers get), so no test
# finds a server another test (on another xdist worker) started on a default LLM port.
NO_LLM_PROBES = '["http://127.0.0.1:9/v1"]'
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LOOPBACK = "127.0.0.0/8,::1"

# Module- and session-scoped fixtures run outside `isolated_env`: they too must never
# ask a real web archive or find an LLM on a default port.
os.environ["BOOKMARK_ENRICH_ARCHIVE"] = "false"
os.environ["BOOKMARK_ENRICH_ARCHIVE_URL"] = "http://127.0.0.1:9"
os.environ["BOOKMARK_ENRICH_LLM_PROBE_URLS"] = NO_LLM_PROBES


def skip_or_fail(reason: str) -> None:
    """On a laptop a missing service skips the test; under CI=true it is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No test reads the developer's settings or writes their cache."""
    for name in list(os.environ):
        if name.startswith(("BOOKMARK_ENRICH_", "LM_STUDIO_", "COBALT_", "S3_", "OPENAI_")) or \
                name in ("ENABLE_MEDIA_DOWNLOAD", "ENABLE_AI_SUMMARIZATION", "MAX_MEDIA_SIZE_MB"):
            monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # no stray .env is read
    monkeypatch.setenv("BOOKMARK_ENRICH_CACHE", str(tmp_path / "cache.sqlite"))
    monkeypatch.setenv("BOOKMARK_ENRICH_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("BOOKMARK_ENRICH_BACKOFF", "0.01")
    monkeypatch.setenv("BOOKMARK_ENRICH_LLM_PROBE_URLS", NO_LLM_PROBES)
    monkeypatch.setenv("COLUMNS", "120")
    # Test servers live on loopback, test pages in temp folders: allowed here, and only
    # here (the network policy's own tests clear these).
    monkeypatch.setenv("BOOKMARK_ENRICH_ALLOW_HOSTS", LOOPBACK)
    monkeypatch.setenv("BOOKMARK_ENRICH_ALLOW_FILE_ROOTS", str(tmp_path))
    # No test asks a real web archive: the archive stage is off unless a test turns it on
    # (the `archive` fixture), and its address is a loopback port nothing listens on.
    monkeypatch.setenv("BOOKMARK_ENRICH_ARCHIVE", "false")
    monkeypatch.setenv("BOOKMARK_ENRICH_ARCHIVE_URL", "http://127.0.0.1:9")
    yield work


# Fixtures that start something heavy: under xdist (--dist loadgroup) the tests using one
# share a worker, so it starts once (one `weed`, one browser) rather than once per worker.
_HEAVY_FIXTURES = {"s3_server": "s3", "browser": "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        group = next((g for f, g in _HEAVY_FIXTURES.items() if f in names), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def pages() -> Iterator[PageServer]:
    """The page server (real sockets on 127.0.0.1)."""
    server = PageServer().start()
    yield server
    server.stop()


@pytest.fixture
def gate(pages: PageServer) -> Iterator[Gate]:
    """A gate of this test's own on the page server; opened at the end so nothing stays held."""
    held = pages.gate(f"g{uuid.uuid4().hex[:10]}")
    yield held
    held.open()


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / "cache.sqlite"
