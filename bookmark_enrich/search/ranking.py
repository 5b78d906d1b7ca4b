"""Queries against the index: bm25 text search, "more like this", fusion, snippets."""

from __future__ import annotations

import math
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .index import WEIGHTS
from .query import Query, Term, fold, word_tokens

__all__ = ["Hit", "filter_keys", "fuse", "more_like_this", "snippet", "text_search"]

_BM25 = f"bm25(search_fts, {', '.join(str(w) for w in WEIGHTS)})"
_RRF_K = 60
SNIPPET_WORDS = 30
_TOKEN = re.compile(r"[^\W_]+")


@dataclass(slots=True)
class Hit:
    key: str
    score: float


def text_search(conn: sqlite3.Connection, query: Query, limit: int) -> list[Hit]:
    """Best bm25 matches first (title and tags weigh most); filters applied in SQL."""
    where, params = query.where("d")
    if not query.has_text:
        return filter_keys(conn, query, limit)
    rows = conn.execute(
        f"SELECT d.key, {_BM25} AS score FROM search_fts JOIN search_docs d "
        f"ON d.doc_id = search_fts.rowid WHERE search_fts MATCH ? AND {where} "
        "ORDER BY score LIMIT ?", [query.fts(), *params, limit]).fetchall()
    return [Hit(key, -float(score)) for key, score in rows]


def filter_keys(conn: sqlite3.Connection, query: Query, limit: int) -> list[Hit]:
    """A query of filters only: the matching bookmarks, newest first."""
    where, params = query.where("d")
    if query.excluded:
        where += (" AND d.doc_id NOT IN (SELECT rowid FROM search_fts "
                  "WHERE search_fts MATCH ?)")
        params.append(query.fts_excluded())
    rows = conn.execute(f"SELECT d.key FROM search_docs d WHERE {where} "
                        "ORDER BY d.saved DESC, d.doc_id DESC LIMIT ?",
                        [*params, limit]).fetchall()
    return [Hit(key, 0.0) for (key,) in rows]


def more_like_this(conn: sqlite3.Connection, key: str, fields: dict[str, str],
                   limit: int, terms: int = 12) -> list[Hit]:
    """Bookmarks sharing the rarest frequent words of ``fields`` (one bookmark's columns)."""
    counts: Counter[str] = Counter()
    for name, text in fields.items():
        weight = 3 if name in ("title", "tags", "keywords") else 1
        for word in word_tokens(text[:20_000]):
            if len(word) > 2 and not word.isdigit():
                counts[word] += weight
    if not counts:
        return []
    total = int(conn.execute("SELECT count(*) FROM search_docs").fetchone()[0]) or 1
    candidates = [w for w, _ in counts.most_common(200)]
    marks = ",".join("?" * len(candidates))
    df = dict(conn.execute(f"SELECT term, doc FROM search_vocab WHERE term IN ({marks})",
                           candidates).fetchall())
    scored = sorted(candidates, key=lambda w: -counts[w] * math.log(1 + total / (1 + df.get(w, 0))))
    chosen = [w for w in scored if df.get(w, 0) > 1][:terms] or scored[:terms]
    expr = " OR ".join(Term((w,)).fts() for w in chosen)
    rows = conn.execute(
        f"SELECT d.key, {_BM25} AS score FROM search_fts JOIN search_docs d "
        "ON d.doc_id = search_fts.rowid WHERE search_fts MATCH ? AND d.key != ? "
        "ORDER BY score LIMIT ?", (expr, key, limit)).fetchall()
    return [Hit(k, -float(s)) for k, s in rows]


def fuse(rankings: Sequence[Sequence[Hit]], limit: int) -> list[Hit]:
    """Reciprocal rank fusion: each list adds 1 / (60 + rank) to a key's score."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.key] = scores.get(hit.key, 0.0) + 1.0 / (_RRF_K + rank)
    best = sorted(scores.items(), key=lambda kv: -kv[1])[:limit]
    return [Hit(k, s) for k, s in best]


def _matcher(terms: Iterable[Term]) -> tuple[set[str], tuple[str, ...]]:
    words: set[str] = set()
    prefixes: list[str] = []
    for term in terms:
        words.update(term.words)
        if term.prefix:
            prefixes.append(term.words[-1])
    return words, tuple(prefixes)


def snippet(texts: Sequence[str], terms: Sequence[Term], width: int = SNIPPET_WORDS
            ) -> tuple[str, list[tuple[int, int]]]:
    """The best window of ``width`` words and the spans of matched words in it.

    The first text holding a match wins (pass them best field first); without terms
    or matches, the start of the first non-empty text.
    """
    words, prefixes = _matcher(terms)
    fallback: tuple[str, list[tuple[int, int]]] = ("", [])
    for text in texts:
        if not text or not text.strip():
            continue
        tokens = [(m.start(), m.end(), fold(m.group())) for m in _TOKEN.finditer(text)]
        hits = [i for i, (_, _, w) in enumerate(tokens)
                if w in words or (prefixes and w.startswith(prefixes))]
        if not hits:
            if not fallback[0]:
                fallback = (_cut(text, tokens, 0, width), [])
            continue
        best, best_count = hits[0], 0
        for h in hits:  # the window starting a few words before h with most distinct hits
            start = max(0, h - 3)
            count = len({tokens[i][2] for i in hits if start <= i < start + width})
            if count > best_count:
                best, best_count = start, count
        return _window(text, tokens, best, width, hits)
    return fallback


def _cut(text: str, tokens: list[tuple[int, int, str]], start: int, width: int) -> str:
    if not tokens:
        return " ".join(text.split())[:200]
    return _window(text, tokens, start, width, [])[0]


def _window(text: str, tokens: list[tuple[int, int, str]], start: int, width: int,
            hits: list[int]) -> tuple[str, list[tuple[int, int]]]:
    end = min(len(tokens), start + width)
    lo, hi = tokens[start][0], tokens[end - 1][1]
    prefix = "…" if start > 0 else ""
    raw = text[lo:hi]
    clean = " ".join(raw.split())
    spans: list[tuple[int, int]] = []
    hit_set = set(hits)
    # Map spans on the whitespace-collapsed text by re-finding the matched words in order.
    pos = 0
    for i in range(start, end):
        word = text[tokens[i][0]:tokens[i][1]]
        at = clean.find(word, pos)
        if at < 0:
            continue
        pos = at + len(word)
        if i in hit_set:
            spans.append((len(prefix) + at, len(prefix) + pos))
    suffix = "…" if end < len(tokens) else ""
    return prefix + clean + suffix, spans
