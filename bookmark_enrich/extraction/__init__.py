"""Pure CPU extraction: bytes in, text and metadata out, run in the process pool.

Nothing here touches the network, the cache or the event loop, and module-level
imports stay light, because every pool worker imports this package at start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .documents import extract_text
from .html import extract

__all__ = ["extract", "extract_document", "warm_up"]


def warm_up() -> None:
    """The slow imports and trafilatura's first-call set-up, once per pool worker."""
    extract(b"<html><body><p>warm up</p></body></html>", "utf-8", "http://localhost/")


def extract_document(body: bytes, kind: str, url: str, charset: str | None = None,
                     max_pages: int = 2000, detect: Callable[[str], str | None] | None = None,
                     ) -> tuple[dict[str, Any], str]:
    """Metadata and text of one document of ``kind`` (see :func:`documents.document_kind`).

    ``detect`` guesses a language from text (passed in, so this layer imports none).
    Raises :class:`documents.DocumentError` with ``encrypted`` or ``damaged_document``; a
    document with no text returns an empty text (the caller reports ``no_text``).
    """
    if kind == "pdf":
        from .pdf import extract_pdf  # PDFium loads in the pool workers (preloaded)

        return extract_pdf(body, url, max_pages, detect)
    return extract_text(body, kind, url, charset, detect)
