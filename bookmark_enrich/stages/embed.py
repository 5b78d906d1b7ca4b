"""Embed stage: one vector per bookmark, for semantic search and `similar`.

The vector is made from the title, summary, tags and the lead of the text, and kept
in the cache as base64 float32 in the result's text column (so it travels through
queue workers like extracted text); the search index copies it as a blob. On only
when an embeddings server is configured; its fingerprint is the model, so a model
change re-embeds and redoes nothing else.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import StageError
from ..models import StageOutcome, fingerprint_of
from ..search.vectors import encode_vector
from ..services.embeddings import EmbeddingClient
from ..settings import Settings
from .base import Stage, StageContext

__all__ = ["EmbedStage", "embedding_text"]

LEAD_CHARS = 1500


def embedding_text(meta: dict[str, Any], summary: dict[str, Any], text: str | None) -> str:
    """What a bookmark's vector is made of: title, summary, tags, then the text's lead."""
    parts = [meta.get("title"), summary.get("summary"),
             ", ".join(t for t in summary.get("tags") or [] if isinstance(t, str)),
             meta.get("description") if not summary.get("summary") else None,
             (text or "")[:LEAD_CHARS]]
    return "\n".join(p.strip() for p in parts if isinstance(p, str) and p.strip())


class EmbedStage(Stage):
    name: ClassVar[str] = "embed"
    version: ClassVar[str] = "1"
    requires: ClassVar[tuple[str, ...]] = ("extract",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.client = EmbeddingClient(settings)

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return bool(settings.embedding_url)

    def fingerprint(self) -> str:
        return fingerprint_of(self.name, self.version, self.client.model or "")

    async def preflight(self) -> None:
        """Resolve the model and check the server answers (exit 3 when it does not)."""
        from ..services.embeddings import EmbeddingError

        checks = await self.client.health()
        if checks[0].status == "fail":
            raise EmbeddingError(checks[0].detail)

    async def run(self, ctx: StageContext) -> StageOutcome:
        extracted = ctx.outcomes.get("extract")
        text = extracted.text if extracted is not None and extracted.status == "ok" else None
        source = embedding_text(ctx.output("extract"), ctx.output("summarize"), text)
        if not source:
            return StageOutcome.skipped("no_content", "nothing to embed")
        vector = await self.client.embed_one(source)
        if not vector:
            raise StageError("server_error", "embeddings: an empty vector")
        return StageOutcome.ok({"model": self.client.model, "dimensions": len(vector)},
                               text=encode_vector(vector))

    def contribute(self, outcome: StageOutcome, enrichment: dict[str, Any], *,
                   include_text: bool = False) -> None:
        """Vectors stay in the cache; the output record does not carry them."""

    def metrics(self) -> dict[str, Any]:
        if not self.client.calls:
            return {}
        return {"requests": self.client.calls, "texts": self.client.texts,
                "model": self.client.model, "dimensions": self.client.dimensions}

    async def aclose(self) -> None:
        await self.client.aclose()
