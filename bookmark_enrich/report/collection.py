"""What the collection is about (tags, languages, sites, sizes, media) and what the LLM cost.

Figures are SQLite aggregates over the stages' JSON output (``json_extract``,
``json_each``, ``GROUP BY``), and the summaries' figures come from the one pass of
:mod:`.summaries`, so memory stays flat whatever the size of the cache.
"""

from __future__ import annotations

import heapq
from collections import Counter
from typing import Any

from ..cache import ResultCache
from .collect import Scope
from .summaries import summary_figures

__all__ = ["WORD_BUCKETS", "collection", "llm_figures", "media_figures", "summarizers"]

WORD_BUCKETS = ((0, 99), (100, 299), (300, 999), (1000, 2999), (3000, 9999), (10000, None))
_VALID = "CASE WHEN json_valid(r.output) THEN r.output END"


def _grouped(cache: ResultCache, scope: Scope, stage: str, expr: str,
             limit: int = 20) -> list[dict[str, Any]]:
    frm, params = scope.results()
    return list(cache.iter_rows(
        f"SELECT coalesce({expr}, '(unknown)') AS name, count(*) AS count {frm} "
        "AND r.stage = ? AND r.status = 'ok' AND json_valid(r.output) "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?", [*params, stage, limit]))


def _top(counter: Counter[Any], limit: int) -> list[tuple[Any, int]]:
    """The ``limit`` most frequent values, ties by value (stable across runs)."""
    return heapq.nsmallest(limit, counter.items(), key=lambda kv: (-kv[1], kv[0]))


def cooccurrence(cache: ResultCache, scope: Scope, limit: int = 20) -> list[dict[str, Any]]:
    """The pairs of (top) tags seen together most often."""
    pairs = summary_figures(cache, scope).pairs
    return [{"first": a, "second": b, "count": n} for (a, b), n in _top(pairs, limit)]


def summarizers(cache: ResultCache, scope: Scope) -> list[dict[str, Any]]:
    """Summarizer and model of the summaries, most used first."""
    models = summary_figures(cache, scope).models
    return [{"summarizer": s, "model": m, "count": n} for (s, m), n in models.most_common(10)]


def languages_and_words(cache: ResultCache, scope: Scope, limit: int = 20
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pages per language and per word-count bucket, in one pass over the extracted pages.

    SQLite groups by (language, bucket): a few dozen rows, summed both ways here.
    """
    frm, params = scope.results()
    cases = " ".join(
        f"WHEN w IS NULL THEN NULL WHEN w <= {hi} THEN {i}" if i == 0 else
        f"WHEN w <= {hi} THEN {i}" if hi is not None else f"ELSE {i}"
        for i, (_, hi) in enumerate(WORD_BUCKETS))
    languages: Counter[str] = Counter()
    buckets: Counter[int] = Counter()
    for row in cache.iter_rows(
            f"SELECT lang, CASE {cases} END AS bucket, count(*) AS n FROM (SELECT "
            "coalesce(json_extract(r.output, '$.language'), '(unknown)') AS lang, "
            f"CAST(json_extract(r.output, '$.word_count') AS INTEGER) AS w {frm} "
            "AND r.stage = 'extract' AND r.status = 'ok' AND json_valid(r.output)) "
            "GROUP BY 1, 2", params):
        languages[str(row["lang"])] += row["n"]
        if row["bucket"] is not None:
            buckets[row["bucket"]] += row["n"]
    return (
        [{"name": k, "count": n} for k, n in _top(languages, limit)],
        [{"name": f"{lo:,}+" if hi is None else f"{lo:,}–{hi:,}", "count": buckets.get(i, 0)}
         for i, (lo, hi) in enumerate(WORD_BUCKETS)])


def media_figures(cache: ResultCache, scope: Scope) -> list[dict[str, Any]]:
    """Media files stored, per back end: count and bytes."""
    frm, params = scope.results(f"json_each({_VALID}, '$.media') m")
    return list(cache.iter_rows(
        "SELECT CASE WHEN json_extract(m.value, '$.uri') LIKE 's3://%' THEN 's3' "
        "ELSE 'local' END AS backend, count(*) AS files, "
        f"coalesce(sum(json_extract(m.value, '$.bytes')), 0) AS bytes {frm} "
        "AND r.stage = 'media' AND r.status = 'ok' AND m.type = 'object' "
        "GROUP BY 1 ORDER BY 1", params))


def collection(cache: ResultCache, scope: Scope) -> dict[str, Any]:
    """Tags, keywords, co-occurring tags, languages, content types, word counts, media."""
    figures = summary_figures(cache, scope)
    languages, words = languages_and_words(cache, scope)
    content_type = ("nullif(trim(substr(json_extract(r.output, '$.content_type'), 1, "
                    "instr(json_extract(r.output, '$.content_type') || ';', ';') - 1)), '')")
    return {
        "tags": [{"name": k, "count": n} for k, n in _top(figures.tags, 30)],
        "keywords": [{"name": k, "count": n} for k, n in _top(figures.keywords, 20)],
        "pairs": cooccurrence(cache, scope),
        "languages": languages,
        "content_types": _grouped(cache, scope, "fetch", f"lower({content_type})"),
        "words": words,
        "media": media_figures(cache, scope),
    }


def llm_figures(cache: ResultCache, scope: Scope) -> dict[str, Any]:
    """Calls, tokens, latency median and p95, JSON-in-prompt fallbacks, chunked pages."""
    figures = summary_figures(cache, scope)
    sums = figures.llm
    row: dict[str, Any] = {
        "pages": sums["pages"], "calls": sums["calls"], "tokens_in": sums["prompt_tokens"],
        "tokens_out": sums["completion_tokens"], "prompt_json": sums["prompt_json"],
        "repairs": sums["repairs"], "chunked": sums["chunked"]}
    # Latencies are counted by value: one sort of a small set, then counted up.
    counts = sorted(figures.latencies.items())
    n = sum(c for _, c in counts)
    for name, q in (("latency_median_ms", 0.5), ("latency_p95_ms", 0.95)):
        row[name], seen, index = None, 0, min(n - 1, int(q * (n - 1) + 0.5))
        for ms, c in counts:
            seen += c
            if n and seen > index:
                row[name] = ms
                break
    return row
