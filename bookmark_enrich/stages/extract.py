"""Extract stage: trafilatura in a process pool, so both cores work and the loop never blocks."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, ClassVar

from .. import language
from ..errors import StageError
from ..models import StageOutcome
from ..workers import BrokenProcessPool, run_cpu
from . import _extract_worker
from .base import Stage, StageContext, fingerprint_of, register_stage
from .fetch import Page, is_textual

__all__ = ["ExtractStage"]


@register_stage
class ExtractStage(Stage):
    name: ClassVar[str] = "extract"
    version: ClassVar[str] = "2"
    requires: ClassVar[tuple[str, ...]] = ("fetch",)
    needs_payload: ClassVar[tuple[str, ...]] = ("fetch",)

    def fingerprint(self) -> str:
        return fingerprint_of(self.name, self.version, version("trafilatura"),
                              language.fingerprint(), self.settings.extract_fallbacks)

    async def run(self, ctx: StageContext) -> StageOutcome:
        fetched = ctx.output("fetch")
        content_type = fetched.get("content_type")
        if not is_textual(content_type):
            return StageOutcome.skipped("not_html", f"content type {content_type}")
        page = ctx.payload("fetch")
        if not isinstance(page, Page):
            raise StageError("no_body", "the page body is not available")
        url = fetched.get("final_url") or ctx.bookmark.url
        try:
            result = await run_cpu(self.settings.extract_processes, _extract_worker.extract,
                                   page.body, page.charset, url,
                                   self.settings.extract_fallbacks)
        except BrokenProcessPool:
            raise StageError("extract_error", "the extraction worker died") from None
        except Exception as exc:  # lxml/trafilatura raise many kinds on hostile HTML
            raise StageError("extract_error", f"{type(exc).__name__}: {exc}") from None
        if result is None:
            return StageOutcome.skipped("no_content", "no readable content on the page")
        meta, text = result
        if not text and not meta.get("title"):
            return StageOutcome.skipped("no_content", "no readable content on the page",
                                        output=meta)
        return StageOutcome.ok(meta, text=text)

    def contribute(self, outcome: StageOutcome, enrichment: dict[str, Any], *,
                   include_text: bool = False) -> None:
        if outcome.status in ("ok", "skipped") and outcome.output:
            enrichment.update(outcome.output)
        if include_text and outcome.text is not None:
            enrichment["text"] = outcome.text

