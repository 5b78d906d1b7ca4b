"""Tag normalization shared by every summarizer, so tags stay tidy across back ends."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["normalize_tag", "normalize_tags", "tag_identity"]

_SPACES = re.compile(r"\s+")
_SEPARATORS = re.compile(r"[\s\-_]+")


def normalize_tag(tag: str, *, lowercase: bool = True) -> str:
    """Trim, strip ``#``, collapse whitespace, lower-case (unless told not to)."""
    tag = _SPACES.sub(" ", str(tag).strip().lstrip("#").strip())
    return tag.lower() if lowercase else tag


def tag_identity(tag: str) -> str:
    """Two tags are the same when they differ only by case, spaces, hyphens, underscores."""
    return _SEPARATORS.sub("", tag.casefold())


def normalize_tags(tags: Iterable[object], *, limit: int | None = None, lowercase: bool = True,
                   max_words: int = 4) -> list[str]:
    """Normalized, deduplicated tags, first spelling kept, at most ``limit``."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in tags:
        if not isinstance(raw, str):
            continue
        tag = normalize_tag(raw, lowercase=lowercase)
        if not tag or len(tag.split(" ")) > max_words or len(tag) > 64:
            continue
        ident = tag_identity(tag)
        if not ident or ident in seen:
            continue
        seen.add(ident)
        out.append(tag)
        if limit is not None and len(out) >= limit:
            break
    return out
