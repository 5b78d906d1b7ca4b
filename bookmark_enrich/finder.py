"""`search` and `similar`: find enriched bookmarks in the cache.

:class:`Finder` brings the index up to date (built on first use, then incremental),
runs a text, semantic or hybrid query and returns output records (the shape `run`
prints) with a ``score`` and a ``snippet``. See :mod:`.search.index` for the index.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .cache import ResultCache
from .errors import CacheError, UsageError
from .models import Bookmark
from .pipeline import build_record
from .search.index import SearchIndex, document_fields
from .search.query import Query, parse_query
from .search.ranking import Hit, fuse, more_like_this, snippet, text_search
from .search.vectors import VectorSet, models_in
from .settings import Settings
from .stages import Stage, build_stages
from .urls import InvalidURL, bookmark_key, normalize_url, resolve_url

__all__ = ["Finder", "Found", "SearchMode"]

SearchMode = Literal["text", "semantic", "hybrid"]
SEARCH_MODES: tuple[str, ...] = ("text", "semantic", "hybrid")
_CANDIDATES = 100
"""How deep each ranking goes before fusion or filtering."""


@dataclass(slots=True)
class Found:
    """One result: its output record (with ``score`` and ``snippet``) and highlight spans."""

    record: dict[str, Any]
    spans: list[tuple[int, int]] = field(default_factory=list)


class Finder:
    """Searches one cache. Open it, :meth:`prepare`, query, :meth:`close`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        path = Path(settings.cache)
        _check_cache(path)
        self.cache = ResultCache(path)
        self.conn: sqlite3.Connection = self.cache.conn
        self.index = SearchIndex(self.conn)
        self.notes: list[str] = []
        self._stages: list[Stage] | None = None
        self._vectors: dict[str, VectorSet] = {}

    # ----------------------------------------------------------- the index
    def prepare(self, progress: Callable[[int, int], None] | None = None,
                on_build: Callable[[int], None] | None = None) -> int:
        """Create the index if missing and index what changed; returns how many were."""
        self.index.ensure()
        pending = self.index.pending()
        if pending and on_build is not None:
            on_build(pending)
        return self.index.sync(progress if pending else None)

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        self.index.ensure()
        return self.index.rebuild(progress)

    def modes(self) -> list[str]:
        """The search modes this cache and these settings allow."""
        if self.settings.embedding_url and models_in(self.conn):
            return list(SEARCH_MODES)
        return ["text"]

    # ------------------------------------------------------------- queries
    def search(self, text: str, *, mode: SearchMode | None = None, limit: int = 20
               ) -> list[Found]:
        """Bookmarks matching ``text`` (the query language of :mod:`.search.query`)."""
        query = parse_query(text)
        chosen = mode or ("hybrid" if "hybrid" in self.modes() and query.has_text else "text")
        if chosen != "text" and not query.has_text:
            raise UsageError(f"--mode {chosen} needs words to look for, not only filters")
        rankings: list[list[Hit]] = []
        if chosen in ("text", "hybrid"):
            rankings.append(text_search(self.conn, query,
                                        limit if chosen == "text" else _CANDIDATES))
        if chosen in ("semantic", "hybrid"):
            rankings.append(self._semantic(query))
        hits = rankings[0][:limit] if len(rankings) == 1 else fuse(rankings, limit)
        return self._found(hits, query)

    def similar(self, url: str, *, limit: int = 10) -> list[Found]:
        """The bookmarks nearest to the one at ``url``: by vector, else by shared words."""
        key = self._key_of(url)
        vectors = self._vector_set(self._model()) if self._model() else None
        mine = vectors.vector_of(key) if vectors is not None else None
        if vectors is not None and mine is not None:
            hits = [Hit(k, s) for k, s in vectors.nearest(mine, limit, exclude=key)]
        else:
            found = self._records([key], with_text=True)
            if not found:
                raise UsageError(f"{url}: not in the cache")
            bookmark_row, outcomes = found[key]
            outputs = {n: o.output for n, o in outcomes.items() if o.status == "ok"}
            extract = outcomes.get("extract")
            fields = document_fields(bookmark_row.url, bookmark_row.record, outputs,
                                     extract.text if extract is not None else None)
            hits = more_like_this(self.conn, key, fields, limit)
        return self._found(hits, None)

    def _key_of(self, url: str) -> str:
        try:
            key = bookmark_key(normalize_url(resolve_url(url)))
        except InvalidURL as exc:
            raise UsageError(f"{url}: not a URL ({exc})") from None
        row = self.conn.execute("SELECT 1 FROM search_docs WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise UsageError(f"{url}: not in the cache (enrich it first: bookmark-enrich run)")
        return key

    # ------------------------------------------------------------ semantic
    def _model(self) -> str | None:
        if not self.settings.embedding_url:
            return None
        models = models_in(self.conn)
        wanted = self.settings.embedding_model
        if wanted:
            return wanted if wanted in models else None
        return max(models, key=lambda m: models[m]) if models else None

    def _vector_set(self, model: str | None) -> VectorSet | None:
        if model is None:
            return None
        if model not in self._vectors:
            self._vectors[model] = VectorSet.load(self.conn, model)
        return self._vectors[model]

    def _semantic(self, query: Query) -> list[Hit]:
        from .services.embeddings import EmbeddingClient

        if not self.settings.embedding_url:
            raise UsageError("semantic search needs an embeddings server: set "
                             "BOOKMARK_ENRICH_EMBEDDING_URL or pass --embedding-url")
        model = self._model()
        vectors = self._vector_set(model)
        if model is None or vectors is None or not len(vectors):
            raise UsageError("no bookmark has a vector yet: run `bookmark-enrich run` with "
                             "the embeddings server configured to embed them")

        async def embed() -> list[float]:
            client = EmbeddingClient(self.settings.model_copy(update={"embedding_model": model}))
            try:
                return (await client.embed([query.text()]))[0]
            finally:
                await client.aclose()

        from .errors import StageError
        from .services.embeddings import EmbeddingError

        try:
            vector = asyncio.run(embed())
        except StageError as exc:
            raise EmbeddingError(f"the embeddings server failed: {exc.message}") from None
        depth = _CANDIDATES * (10 if query.filters or query.excluded else 1)
        hits = [Hit(k, s) for k, s in vectors.nearest(vector, depth)]
        return _keep(self.conn, hits, query)[:_CANDIDATES]

    # ------------------------------------------------------------- records
    def _records(self, keys: Sequence[str], *, with_text: bool
                 ) -> dict[str, tuple[Bookmark, dict[str, Any]]]:
        marks = ",".join("?" * len(keys))
        rows = self.conn.execute(
            "SELECT key, url, normalized, record, position FROM bookmarks "
            f"WHERE key IN ({marks})", list(keys)).fetchall()
        outcomes = self.cache.lookup([r[0] for r in rows], with_text=with_text)
        out = {}
        for key, url, normalized, raw, position in rows:
            try:
                record = json.loads(raw) if raw else {}
            except ValueError:
                record = {}
            out[key] = (Bookmark(url, normalized, key, record if isinstance(record, dict)
                                 else {}, position or 0), outcomes.get(key, {}))
        return out

    def _found(self, hits: Sequence[Hit], query: Query | None) -> list[Found]:
        if not hits:
            return []
        if self._stages is None:
            self._stages = build_stages(self.settings)
        found = self._records([h.key for h in hits], with_text=True)
        results: list[Found] = []
        for hit in hits:
            if hit.key not in found:
                continue
            bookmark, outcomes = found[hit.key]
            record = build_record(bookmark, outcomes, self._stages,
                                  include_text=self.settings.include_text, force_cached=True)
            extract = outcomes.get("extract")
            enrichment = record["enrichment"]
            texts = [extract.text if extract is not None and extract.text else "",
                     enrichment.get("summary") or "", enrichment.get("description") or "",
                     enrichment.get("title") or ""]
            if query is None or not query.terms:
                texts = [texts[1], texts[2], texts[0]]
            text, spans = snippet(texts, query.terms if query is not None else [])
            record["score"] = round(hit.score, 6)
            record["snippet"] = text
            results.append(Found(record, spans))
        return results

    def close(self) -> None:
        try:
            if self._stages:
                stages = self._stages

                async def close() -> None:
                    for stage in stages:
                        await stage.aclose()

                asyncio.run(close())
        finally:
            self.cache.close()

    def __enter__(self) -> Finder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_cache(path: Path) -> None:
    """A missing file or one that is not our cache is refused before anything is written."""
    if not path.exists():
        raise CacheError(f"{path}: no cache here yet (run something first)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {n for (n,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise CacheError(f"{path}: not a usable cache ({exc})") from None
    if not {"results", "bookmarks"} <= tables:
        raise CacheError(f"{path}: not a bookmark-enrich cache (no results table)")


def _keep(conn: sqlite3.Connection, hits: list[Hit], query: Query) -> list[Hit]:
    """``hits`` that pass the query's filters and exclusions, in order."""
    if not hits or not (query.filters or query.excluded):
        return hits
    where, params = query.where("d")
    if query.excluded:
        where += (" AND d.doc_id NOT IN (SELECT rowid FROM search_fts "
                  "WHERE search_fts MATCH ?)")
        params.append(query.fts_excluded())
    marks = ",".join("?" * len(hits))
    allowed = {k for (k,) in conn.execute(
        f"SELECT d.key FROM search_docs d WHERE d.key IN ({marks}) AND {where}",
        [*(h.key for h in hits), *params])}
    return [h for h in hits if h.key in allowed]
