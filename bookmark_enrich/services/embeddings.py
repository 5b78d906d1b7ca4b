"""The client of an OpenAI-compatible embeddings server (``POST /v1/embeddings``).

LM Studio, Ollama, llama.cpp's ``llama-server --embeddings``, vLLM and OpenAI all speak
it. :meth:`EmbeddingClient.embed_one` gathers the texts of concurrent callers into
batches of ``embedding_batch``: the embed stage asks once per bookmark and the server
sees a few large requests. :meth:`EmbeddingClient.health` is what ``doctor`` shows.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from ..errors import ServiceUnavailable, StageError
from ..reasons import Reason
from ..settings import Settings
from .health import Check
from .http import error_for_exception, error_for_status

__all__ = ["EmbeddingClient", "EmbeddingError", "embedding_checks", "embeddings_base"]

_CHECK = "embeddings"


class EmbeddingError(ServiceUnavailable):
    """The embeddings server cannot be used (exit 3)."""


def embeddings_base(url: str) -> str:
    """The ``/v1`` base of ``url`` (given as the server, its /v1 or its /v1/embeddings)."""
    base = url.strip().rstrip("/").removesuffix("/embeddings").rstrip("/")
    if "://" in base and base.split("://", 1)[1].count("/") == 0:
        base += "/v1"
    return base


class EmbeddingClient:
    """Embeddings from one server, batched across concurrent callers."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
                 ) -> None:
        if not settings.embedding_url:
            raise EmbeddingError("no embeddings server configured "
                                 "(BOOKMARK_ENRICH_EMBEDDING_URL or --embedding-url)")
        self.settings = settings
        self.base_url = embeddings_base(settings.embedding_url)
        key = settings.embedding_api_key
        headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.embedding_timeout,
                                  connect=min(settings.connect_timeout, 5.0)),
            headers=headers, trust_env=False, transport=transport)
        self.model: str | None = settings.embedding_model
        self.dimensions: int | None = None
        self.calls = 0
        self.texts = 0
        self._pending: list[tuple[str, asyncio.Future[list[float]]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def resolve_model(self) -> str:
        """The configured model, or the first one the server lists."""
        if self.model:
            return self.model
        try:
            resp = await self._http.get(self.base_url + "/models")
        except httpx.HTTPError as exc:
            raise EmbeddingError(f"{self.base_url}: {type(exc).__name__}: {exc}") from None
        try:
            listed = [m.get("id") for m in resp.json().get("data") or []]
        except (ValueError, AttributeError):
            listed = []
        names = [m for m in listed if isinstance(m, str) and m]
        if resp.status_code >= 400 or not names:
            raise EmbeddingError(f"{self.base_url}: lists no model (HTTP {resp.status_code}); "
                                 "set BOOKMARK_ENRICH_EMBEDDING_MODEL")
        embedding_like = [m for m in names if "embed" in m.lower()]
        self.model = (embedding_like or names)[0]
        return self.model

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One request: a vector per text, in order. Raises StageError on failure."""
        model = await self.resolve_model()
        try:
            resp = await self._http.post(self.base_url + "/embeddings",
                                         json={"model": model, "input": texts})
        except httpx.HTTPError as exc:
            raise error_for_exception(exc, what="embeddings") from None
        error = error_for_status(resp.status_code, resp.headers, what="embeddings")
        if error is not None:
            raise error
        self.calls += 1
        self.texts += len(texts)
        vectors = _parse(resp, len(texts))
        self.dimensions = len(vectors[0]) if vectors else self.dimensions
        return vectors

    async def embed_one(self, text: str) -> list[float]:
        """The vector of ``text``, sent in a batch with other callers' texts."""
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        self._pending.append((text, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_batches())
        return await future

    async def _send_batches(self) -> None:
        await asyncio.sleep(0)  # let the callers of this tick join the first batch
        while self._pending:
            batch = self._pending[: self.settings.embedding_batch]
            del self._pending[: len(batch)]
            try:
                vectors = await self.embed([t for t, _ in batch])
            except Exception as exc:  # every caller of the batch gets the failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), vector in zip(batch, vectors, strict=True):
                if not future.done():
                    future.set_result(vector)

    async def health(self, *, deep: bool = False) -> list[Check]:
        """Whether the server answers with vectors, their model and size."""
        start = time.perf_counter()
        try:
            model = await self.resolve_model()
            vectors = await self.embed(["bookmark-enrich health check"])
        except (StageError, ServiceUnavailable) as exc:
            return [Check(_CHECK, "fail", f"{self.base_url}: {exc}; semantic and hybrid "
                          "search unavailable (text search works)")]
        latency = (time.perf_counter() - start) * 1000
        dims = len(vectors[0])
        return [Check(_CHECK, "ok", f"{self.base_url}: model {model}, {dims} dimensions; "
                      "search modes: text, semantic, hybrid", latency_ms=latency,
                      data={"model": model, "dimensions": dims,
                            "modes": ["text", "semantic", "hybrid"]})]

    async def aclose(self) -> None:
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
        await self._http.aclose()


def _parse(resp: httpx.Response, count: int) -> list[list[float]]:
    try:
        data = resp.json()["data"]
        items = sorted(data, key=lambda d: d.get("index", 0))
        vectors = [[float(x) for x in item["embedding"]] for item in items]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise StageError(Reason.SERVER_ERROR, "embeddings: the answer is not an "
                         "OpenAI embeddings list") from None
    if len(vectors) != count or not vectors or any(len(v) != len(vectors[0]) or not v
                                                   for v in vectors):
        raise StageError(Reason.SERVER_ERROR, f"embeddings: asked for {count} vectors, got "
                         f"{len(vectors)} (or of different sizes)")
    return vectors


async def embedding_checks(settings: Settings, options: dict[str, Any]) -> list[Check]:
    """doctor's line: which search modes are available."""
    if not settings.embedding_url:
        return [Check(_CHECK, "skip", "no embeddings server (BOOKMARK_ENRICH_EMBEDDING_URL); "
                      "search modes: text", required=False, data={"modes": ["text"]})]
    client = EmbeddingClient(settings)
    try:
        return await client.health(deep=bool(options.get("deep")))
    finally:
        await client.aclose()
