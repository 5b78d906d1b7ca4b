"""Tag suggestions from neighbours: the tags of the bookmarks most like this one.

With an embeddings server, the summarize stage asks :class:`NeighbourTags` (a
:class:`~.base.TagHintProvider`) before it writes a bookmark's tags. The bookmark's
title and lead are embedded (one more text in the embed stage's batches: the stored
vector, made after the summary, cannot exist yet), and the tags of the
``tag_neighbours`` nearest tagged bookmarks become the prompt's suggestions, so the
model reuses the collection's tags rather than coin synonyms (bench/README.md,
"Search (issue 22)"). The neighbours are the cache's :data:`RECENT` most recent
bookmarks with tags and a vector of the same model, then those tagged in this run,
kept in a ring of that size so memory stays flat whatever the run's length.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..cache import ResultCache
from ..errors import CacheError, ServiceUnavailable, StageError
from ..models import Bookmark
from ..services.embeddings import EmbeddingClient
from ..settings import Settings
from ..tags import TagHints, TagVocabulary, normalize_tags, tag_identity
from .base import Stage
from .embed import EmbedStage, embedding_text

if TYPE_CHECKING:
    import numpy as np

__all__ = ["RECENT", "NeighbourTags", "neighbour_tags"]

RECENT = 10_000
"""Tagged bookmarks searched for neighbours (30 MB of vectors at 768 dimensions)."""
OFFERED = 10
"""Suggested tags at most, the closest neighbours' first."""
_WAITING = 4096
"""Bookmarks between their suggestions and their tags, at most (more than in flight):
one whose summary failed never comes back for its vector."""


def neighbour_tags(settings: Settings, stages: list[Stage], vocabulary: TagVocabulary,
                   cache: ResultCache | None = None) -> NeighbourTags | None:
    """Suggestions for these stages, when they embed and suggestions are on (else None).

    Without ``cache`` (a queue worker) the neighbours are the bookmarks it tagged itself.
    """
    embed = next((s for s in stages if isinstance(s, EmbedStage)), None)
    if embed is None or not settings.tag_neighbours:
        return None
    return NeighbourTags(vocabulary, embed.client, cache, neighbours=settings.tag_neighbours)


class _Ring:
    """Unit vectors and their tags; past ``capacity`` rows the oldest is overwritten."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.matrix: np.ndarray[Any, Any] | None = None
        self.tags: list[list[str]] = []
        self._next = 0

    def add(self, vector: np.ndarray[Any, Any], tags: list[str]) -> None:
        import numpy as np

        if self.matrix is None:
            self.matrix = np.zeros((min(64, self.capacity), len(vector)), dtype="<f4")
        if vector.shape[0] != self.matrix.shape[1]:
            return
        rows = len(self.tags)
        if rows < self.capacity:
            if rows == len(self.matrix):
                grown = np.zeros((min(2 * rows, self.capacity), self.matrix.shape[1]),
                                 dtype="<f4")
                grown[:rows] = self.matrix
                self.matrix = grown
            self.tags.append(tags)
            row = rows
        else:
            row, self._next = self._next, (self._next + 1) % self.capacity
            self.tags[row] = tags
        self.matrix[row] = vector

    def nearest(self, query: np.ndarray[Any, Any], k: int) -> list[list[str]]:
        """The tags of the ``k`` rows most similar to ``query``, closest first."""
        import numpy as np

        rows = len(self.tags)
        if self.matrix is None or not rows or query.shape[0] != self.matrix.shape[1]:
            return []
        scores = self.matrix[:rows] @ query
        k = min(k, rows)
        top = np.argpartition(-scores, k - 1)[:k]
        return [self.tags[i] for i in top[np.argsort(-scores[top])]]


class NeighbourTags:
    """The run's tag vocabulary, plus per-bookmark suggestions from similar bookmarks."""

    def __init__(self, vocabulary: TagVocabulary, client: EmbeddingClient,
                 cache: ResultCache | None, *, neighbours: int = 5, capacity: int = RECENT) -> None:
        self.vocabulary = vocabulary
        self.client = client
        self.neighbours = neighbours
        self._cache: ResultCache | None = cache
        self._ring = _Ring(capacity)
        self._queries: dict[str, np.ndarray[Any, Any]] = {}
        self._suggested: dict[str, list[str]] = {}
        self.asked = 0
        """Bookmarks that got suggestions (for tests and the bench)."""

    async def prepare(self, bookmark: Bookmark, meta: dict[str, Any], text: str) -> None:
        """Embed the bookmark's title and lead; find its neighbours' tags."""
        import numpy as np

        source = embedding_text(meta, {}, text)
        if not source:
            return
        try:
            vector = await self.client.embed_one(source)
        except (StageError, ServiceUnavailable):
            return  # suggestions are a nicety: a failing server costs them, not the summary
        query = np.asarray(vector, dtype="<f4")
        query = query / (float(np.linalg.norm(query)) or 1.0)
        self._load()
        self._queries[bookmark.key] = query
        if len(self._queries) > _WAITING:
            del self._queries[next(iter(self._queries))]
        suggested = _closest_tags(self._ring.nearest(query, self.neighbours), OFFERED)
        if suggested:
            self._suggested[bookmark.key] = suggested
            self.asked += 1

    def hints(self, bookmark: Bookmark) -> TagHints:
        hints = self.vocabulary.hints(bookmark)
        hints.suggestions = self._suggested.pop(bookmark.key, [])
        return hints

    def observe(self, tags: Iterable[str], bookmark: Bookmark | None = None) -> None:
        tags = list(tags)
        self.vocabulary.observe(tags)
        query = self._queries.pop(bookmark.key, None) if bookmark is not None else None
        clean = normalize_tags(tags, lowercase=self.vocabulary.lowercase)
        if query is not None and clean:
            self._ring.add(query, clean)

    def _load(self) -> None:
        """Once, with the model known: the cache's recent tagged bookmarks' vectors."""
        import numpy as np

        cache, self._cache = self._cache, None
        if cache is None or not self.client.model:
            return
        try:
            rows = list(cache.iter_rows(
                "SELECT e.text AS vector, s.output AS summary FROM results e "
                "JOIN results s ON s.key = e.key AND s.stage = 'summarize' "
                "AND s.status = 'ok' WHERE e.stage = 'embed' AND e.status = 'ok' "
                "AND json_extract(e.output, '$.model') = ? "
                "ORDER BY e.finished_at DESC LIMIT ?", (self.client.model, self._ring.capacity)))
        except (sqlite3.Error, CacheError):  # an old or damaged cache only costs suggestions
            return
        for row in reversed(rows):  # oldest first: the ring keeps the newest
            tags = _summary_tags(row["summary"])
            try:
                raw = base64.b64decode(row["vector"] or "", validate=True)
            except ValueError:
                continue
            if tags and raw and len(raw) % 4 == 0:
                self._ring.add(np.frombuffer(raw, dtype="<f4"), tags)


def _summary_tags(output: str | None) -> list[str]:
    try:
        found = json.loads(output or "{}").get("tags") or []
    except (ValueError, AttributeError):
        return []
    return [t for t in found if isinstance(t, str)]


def _closest_tags(groups: list[list[str]], limit: int) -> list[str]:
    """Tags of the neighbours, nearest first, each once, at most ``limit``."""
    seen: set[str] = set()
    out: list[str] = []
    for tags in groups:
        for tag in tags:
            ident = tag_identity(tag)
            if ident and ident not in seen:
                seen.add(ident)
                out.append(tag)
    return out[:limit]
