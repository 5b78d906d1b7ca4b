"""Pure CPU extraction: bytes in, text and metadata out, run in the process pool.

Nothing here touches the network, the cache or the event loop, and module-level
imports stay light, because every pool worker imports this package at start.
"""

from __future__ import annotations

from .html import extract

__all__ = ["extract", "warm_up"]


def warm_up() -> None:
    """The slow imports and trafilatura's first-call set-up, once per pool worker."""
    extract(b"<html><body><p>warm up</p></body></html>", "utf-8", "http://localhost/")
