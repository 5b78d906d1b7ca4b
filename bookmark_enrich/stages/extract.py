"""Extract stage: trafilatura in a process pool, so both cores work and the loop never blocks.

Documents (PDF, plain text, Markdown, reST) take their own path through the same
pool, each under the ``document_timeout`` limit.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, ClassVar

from .. import language
from ..errors import StageError
from ..extraction import extract, extract_document
from ..extraction.documents import DocumentError, document_kind
from ..models import StageOutcome, fingerprint_of
from ..workers import BrokenProcessPool, TimeLimitExceeded, run_cpu, run_cpu_limited
from .base import Stage, StageContext
from .fetch import Page, is_textual

__all__ = ["ExtractStage"]


class ExtractStage(Stage):
    name: ClassVar[str] = "extract"
    # 2: documents are read (1 skipped them as not_html); the language comes from the text.
    version: ClassVar[str] = "2"
    requires: ClassVar[tuple[str, ...]] = ("fetch",)
    needs_payload: ClassVar[tuple[str, ...]] = ("fetch",)
    # The archive stage's payload stands in for fetch's (Pipeline: Stage.rescues).

    def fingerprint(self) -> str:
        return fingerprint_of(self.name, self.version, version("trafilatura"),
                              language.fingerprint(), self.settings.extract_fallbacks,
                              version("pypdfium2"), self.settings.max_document_pages)

    async def run(self, ctx: StageContext) -> StageOutcome:
        # A dead page rescued from the web archive is read from its snapshot.
        source = "archive" if ctx.output("archive") else "fetch"
        fetched = ctx.output(source)
        content_type = fetched.get("content_type")
        page = ctx.payload(source)
        url = fetched.get("final_url") or ctx.bookmark.url
        kind = document_kind(content_type, url, page.body[:1024]) \
            if isinstance(page, Page) else None
        if kind is None and not is_textual(content_type):
            return StageOutcome.skipped("not_html", f"content type {content_type}")
        if not isinstance(page, Page):
            raise StageError("no_body", "the page body is not available")
        if kind is not None:
            return await self._document(page, kind, url)
        try:
            result = await run_cpu(self.settings.extract_processes, extract,
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

    async def _document(self, page: Page, kind: str, url: str) -> StageOutcome:
        s = self.settings
        try:
            meta, text = await run_cpu_limited(
                s.extract_processes, s.document_timeout, extract_document,
                page.body, kind, url, page.charset, s.max_document_pages,
                language.choose_language)
        except DocumentError as exc:
            raise StageError(exc.reason, exc.message) from None
        except TimeLimitExceeded:
            raise StageError("timeout", f"reading the document took over "
                             f"{s.document_timeout:g} s (document_timeout)") from None
        except BrokenProcessPool:
            raise StageError("extract_error", "the extraction worker died") from None
        except Exception as exc:  # PDFium and the decoders raise many kinds on hostile input
            raise StageError("extract_error", f"{type(exc).__name__}: {exc}") from None
        if not text:
            return StageOutcome.skipped(
                "no_text", "the document has no text layer (a scan?); OCR is out of scope",
                output=meta)
        return StageOutcome.ok(meta, text=text)

    def contribute(self, outcome: StageOutcome, enrichment: dict[str, Any], *,
                   include_text: bool = False) -> None:
        if outcome.status in ("ok", "skipped") and outcome.output:
            enrichment.update(outcome.output)
        if include_text and outcome.text is not None:
            enrichment["text"] = outcome.text

