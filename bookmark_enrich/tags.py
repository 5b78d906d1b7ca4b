"""Tag normalization shared by every summarizer, so tags stay tidy across back ends."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["TagHints", "TagVocabulary", "normalize_tag", "normalize_tags", "tag_identity"]

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


@dataclass(slots=True)
class TagHints:
    """Tags a summarizer may reuse for one bookmark, so the collection's tags stay few."""

    vocabulary: list[str] = field(default_factory=list)
    """The collection's most used tags: the same for every bookmark of a stretch."""
    suggestions: list[str] = field(default_factory=list)
    """Tags picked for this bookmark alone (say, those of similar bookmarks)."""


class TagVocabulary:
    """The tags in use, counted: seeded from earlier runs, grown as bookmarks are tagged.

    It is the default tag-hint provider the pipeline hands the summarize stage.
    """

    def __init__(self, seed: Iterable[str] = (), *, lowercase: bool = True,
                 offered: int = 30) -> None:
        self.lowercase = lowercase
        self.offered = offered
        self._counts: Counter[str] = Counter()
        self._spelling: dict[str, str] = {}
        self.observe(seed)

    def observe(self, tags: Iterable[str]) -> None:
        """Count tags just given to a bookmark (the user's own or suggested)."""
        for tag in tags:
            clean = normalize_tag(tag, lowercase=self.lowercase)
            ident = tag_identity(clean)
            if ident:
                self._counts[ident] += 1
                self._spelling.setdefault(ident, clean)

    def spelling(self, tag: str) -> str | None:
        """The collection's spelling of ``tag``, if it is in use."""
        return self._spelling.get(tag_identity(tag))

    def hints(self, bookmark: object = None) -> TagHints:
        """The most used tags, capped, for a prompt."""
        return TagHints([self._spelling[i] for i, _ in self._counts.most_common(self.offered)])
