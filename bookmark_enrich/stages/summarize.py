"""Summarize stage: summary, keywords, tags and language for each page's extracted text.

The back end (LLM or built-in) is chosen once per run in :meth:`preflight` by
:func:`summarizers.select.choose_summarizer`. The stage reads the extract stage's
cached text, so a change of model re-runs only this stage, without refetching.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from ..errors import BookmarkEnrichError, ServiceUnavailable, StageError
from ..models import StageOutcome, fingerprint_of
from ..reasons import Reason
from ..settings import Settings
from ..summarizers.base import Summarizer
from ..summarizers.select import choose_summarizer
from ..tags import TagVocabulary, normalize_tags
from .base import Stage, StageContext

__all__ = ["SummarizeStage", "record_tags"]

_RECORD_TAG_FIELDS = ("tags", "TAGS", "Tags", "tag", "labels")


def record_tags(record: dict[str, Any]) -> list[str]:
    """The user's own tags from an input record (a list, or a comma-separated string)."""
    for name in _RECORD_TAG_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return [t for t in value.split(",") if t.strip()]
        if isinstance(value, list):
            return [t for t in value if isinstance(t, str) and t.strip()]
    return []


class SummarizeStage(Stage):
    name: ClassVar[str] = "summarize"
    version: ClassVar[str] = "1"
    requires: ClassVar[tuple[str, ...]] = ("extract",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.summarizer: Summarizer | None = None
        self._unavailable: BookmarkEnrichError | None = None
        self._choosing = asyncio.Lock()
        # Used when the pipeline hands no vocabulary (a library caller's own Pipeline).
        self._vocabulary = TagVocabulary(lowercase=settings.lowercase_tags)

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return settings.enable_ai_summarization

    def fingerprint(self) -> str:
        inner = self.summarizer.fingerprint() if self.summarizer is not None else "unavailable"
        return fingerprint_of(self.name, self.version, inner)

    async def preflight(self) -> None:
        """Choose and check the back end; an unusable one raises ServiceUnavailable (exit 3).

        With --keep-going the run goes on and each bookmark records the reason.
        """
        await self._try_choose()
        if self._unavailable is not None:
            raise self._unavailable

    async def _try_choose(self) -> None:
        async with self._choosing:
            if self.summarizer is None and self._unavailable is None:
                try:
                    self.summarizer = await choose_summarizer(self.settings, self.notice)
                except ServiceUnavailable as exc:
                    self._unavailable = exc

    async def _choose(self) -> Summarizer:
        """The summarizer, or the preflight's problem as this bookmark's failure."""
        await self._try_choose()
        if self.summarizer is None:
            problem = self._unavailable
            raise StageError(getattr(problem, "reason", "llm_unreachable"), str(problem))
        return self.summarizer

    # -------------------------------------------------------------------- run
    async def run(self, ctx: StageContext) -> StageOutcome:
        extracted = ctx.outcomes.get("extract")
        text = extracted.text if extracted is not None and extracted.status == "ok" else None
        meta = ctx.output("extract")
        if not text or not text.strip():
            # The built-in summarizer can still use the page's own description.
            if not (getattr(self.summarizer, "reads_description", False)
                    and meta.get("description")):
                return StageOutcome.skipped("no_content", "no extracted text to summarize")
            text = ""
        summarizer = self.summarizer or await self._choose()
        provider = ctx.tag_hints or self._vocabulary
        own = record_tags(ctx.bookmark.record)
        provider.observe(own)
        if summarizer.name == "llm":  # the built-in one tags from the page's words alone
            await provider.prepare(ctx.bookmark, meta, text)
        hints = provider.hints(ctx.bookmark)
        if hints.suggestions:  # per bookmark: the prompt puts them after its stable part
            meta = {**meta, "suggested_tags": hints.suggestions}
        try:
            # All requests, retries and waits of one bookmark together (issue 14).
            async with asyncio.timeout(self.settings.llm_deadline):
                result = await summarizer.summarize(text, meta,
                                                    existing_tags=hints.vocabulary)
        except TimeoutError:
            raise StageError(Reason.DEADLINE, "no summary within "
                             f"{self.settings.llm_deadline:g} s (llm_deadline)") from None
        except StageError as exc:
            if exc.reason != "no_content":  # nothing to summarize is a skip, not a failure
                raise
            return StageOutcome.skipped("no_content", exc.message)
        provider.observe(result.tags, ctx.bookmark)
        merged = normalize_tags([*own, *result.tags], lowercase=self.settings.lowercase_tags)
        output: dict[str, Any] = {
            "summary": result.summary,
            "keywords": result.keywords,
            "tags": result.tags,
            "merged_tags": merged,
            "language": result.language,
            "summarizer": result.summarizer,
            "model": result.model,
        }
        if result.usage:  # the cache keeps it for `report`; the output record does not
            output["llm"] = result.usage
        return StageOutcome.ok(output)

    def contribute(self, outcome: StageOutcome, enrichment: dict[str, Any], *,
                   include_text: bool = False) -> None:
        if outcome.status != "ok":
            return
        out = outcome.output
        for key in ("summary", "keywords", "summarizer", "model"):
            if key in out:
                enrichment[key] = out[key]
        if out.get("language"):
            enrichment["language"] = out["language"]
        # The user's own tags stay in `record`; --merge-tags puts them first here too.
        key = "merged_tags" if self.settings.merge_tags and "merged_tags" in out else "tags"
        enrichment["tags"] = out.get(key)

    def metrics(self) -> dict[str, Any]:
        figures = getattr(self.summarizer, "metrics", None)
        return dict(figures()) if callable(figures) else {}

    async def aclose(self) -> None:
        if self.summarizer is not None:
            await self.summarizer.aclose()
