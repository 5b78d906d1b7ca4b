"""Tag normalization shared by every summarizer, so tags stay tidy across back ends."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["TagHints", "TagVocabulary", "is_acronym", "is_short_word", "normalize_tag",
           "normalize_tags", "tag_identity"]

_SPACES = re.compile(r"\s+")
_KEEP = frozenset("#+")
"""Symbols that name things (C#, C++) and so tell tags apart."""


def is_acronym(tag: str) -> bool:
    """An upper-case tag of one or two letters or digits (``AI``, ``EU``, ``5G``)."""
    core = [c for c in tag if c.isalnum()]
    return 1 <= len(core) <= 2 and any(c.isalpha() for c in core) and \
        "".join(core).isupper()


def is_short_word(tag: str) -> bool:
    """A tag of one or two letters or digits that is not an acronym: ``us``, ``de``, ``x``."""
    return len([c for c in tag if c.isalnum()]) <= 2 and not is_acronym(tag)


def normalize_tag(tag: str, *, lowercase: bool = True) -> str:
    """Trim, strip ``#``, collapse whitespace, lower-case (unless told not to). An
    acronym of one or two letters keeps its case: ``AI`` stays ``AI``, not ``ai``."""
    tag = _SPACES.sub(" ", str(tag).strip().lstrip("#").strip())
    return tag.lower() if lowercase and not is_acronym(tag) else tag


def _fold(char: str) -> str:
    # Accents go (é → e, ß → ss); a mark on a non-Latin letter stays (ガ is not カ).
    return "".join(c for c in unicodedata.normalize("NFKD", char)
                   if unicodedata.category(c) != "Mn")


def tag_identity(tag: str) -> str:
    """Two tags are the same when they differ only by case, accents, spaces or
    punctuation: ``E-Mail`` = ``email``, ``Kräuter`` = ``krauter``; ``C#`` ≠ ``C``."""
    out: list[str] = []
    for char in tag.casefold():
        if char.isalnum():
            latin = ord(char) < 0x0370 or 0x1E00 <= ord(char) < 0x1F00
            out.append(_fold(char) if latin else char)
        elif char in _KEEP:
            out.append(char)
    return "".join(out)


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

    async def prepare(self, bookmark: object, meta: object, text: str) -> None:
        """Nothing to work out: the vocabulary is the same for every bookmark."""

    def observe(self, tags: Iterable[str], bookmark: object = None) -> None:
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
