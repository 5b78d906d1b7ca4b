"""One pass over the summaries: tags, keywords, summarizers, LLM use; then tag pairs.

The report used to read the summarize results five times (tags, keywords, tag
pairs, models, LLM figures), each a ``json_each`` and a sort-based ``GROUP BY``
in SQLite. Here SQLite pulls only the few fields needed out of each output, in
one ``json_extract`` (one parse per row), and Python counts them in hash tables;
a second, lighter pass counts pairs among the top tags only (pairs of rare tags
never reach the top of the list, and counting every pair grows with the square
of the tags per bookmark).

Memory stays bounded: a counter that outgrows :data:`MAX_DISTINCT` values (a
cache with hundreds of thousands of distinct keywords) drops its rarest values,
which cannot be among the top ones shown.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..cache import ResultCache, damage_is_cache_error
from .collect import Scope

__all__ = ["MAX_DISTINCT", "TOP_TAGS_FOR_PAIRS", "SummaryFigures", "summary_figures"]

MAX_DISTINCT = 200_000
TOP_TAGS_FOR_PAIRS = 50
_LLM_SUMS = ("calls", "prompt_tokens", "completion_tokens", "prompt_json", "repairs")


@dataclass(slots=True)
class SummaryFigures:
    """What the summarize results of a scope say (LLM use: this run's own results)."""

    tags: Counter[str] = field(default_factory=Counter)
    keywords: Counter[str] = field(default_factory=Counter)
    models: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)
    llm: dict[str, int] = field(default_factory=dict)
    latencies: Counter[float] = field(default_factory=Counter)
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)


def _number(value: Any) -> float:
    return value if type(value) is int or type(value) is float else 0


def _count_texts(counter: Counter[str], value: Any) -> None:
    """Count the strings of a JSON array (numbers, objects and arrays in it are not tags)."""
    if type(value) is list:
        counter.update(value if all(type(v) is str for v in value)
                       else [v for v in value if type(v) is str])


def _bounded(counter: Counter[Any]) -> None:
    """Drop the rarest values of a counter that grew past MAX_DISTINCT (lossy counting)."""
    if len(counter) > MAX_DISTINCT:
        keep = counter.most_common(MAX_DISTINCT // 2)
        counter.clear()
        counter.update(dict(keep))


def _source(scope: Scope, fields: str) -> tuple[str, list[Any]]:
    frm, params = scope.results()
    fresh = "1" if scope.run is None else "r.run_id = ?"
    fresh_params = [] if scope.run is None else [scope.run["id"]]
    return (f"SELECT ({fresh}) AS fresh, json_extract(r.output, {fields}) AS f {frm} "
            "AND r.stage = 'summarize' AND r.status = 'ok' AND json_valid(r.output)",
            [*fresh_params, *params])


def _count_llm(figures: SummaryFigures, llm: dict[str, Any]) -> None:
    sums = figures.llm
    sums["pages"] += 1
    for name in _LLM_SUMS:
        value = llm.get(name)
        if type(value) is int:
            sums[name] += value
    sums["chunked"] += _number(llm.get("parts")) > 1
    latencies = llm.get("latency_ms")
    if type(latencies) is list:
        figures.latencies.update(v for v in latencies if type(v) is int or type(v) is float)


def _rows(cache: ResultCache, sql: str, params: list[Any]) -> Iterator[tuple[Any, ...]]:
    """Plain tuples (not dicts): this pass reads every summary of the cache."""
    with damage_is_cache_error(cache.path):
        yield from cache.conn.execute(sql, params)


def _pairs(cache: ResultCache, scope: Scope, figures: SummaryFigures) -> None:
    top = {name for name, _ in figures.tags.most_common(TOP_TAGS_FOR_PAIRS)}
    if len(top) < 2:
        return
    sql, params = _source(scope, "'$.tags'")
    for _fresh, text in _rows(cache, sql, params):
        try:
            tags = json.loads(text or "null")
        except ValueError:
            continue
        if type(tags) is list:
            found = sorted({t for t in tags if type(t) is str and t in top})
            if len(found) > 1:
                figures.pairs.update(itertools.combinations(found, 2))


def summary_figures(cache: ResultCache, scope: Scope) -> SummaryFigures:
    """The figures of ``scope``'s summaries; read once per scope, then kept on it."""
    memo = scope.memo.get("summaries")
    if isinstance(memo, SummaryFigures):
        return memo
    figures = SummaryFigures(llm=dict.fromkeys(("pages", *_LLM_SUMS, "chunked"), 0))
    sql, params = _source(scope, "'$.tags', '$.keywords', '$.summarizer', '$.model', '$.llm'")
    loads, models = json.loads, figures.models
    for n, (fresh, text) in enumerate(_rows(cache, sql, params), 1):
        try:
            tags, keywords, summarizer, model, llm = loads(text)
        except (TypeError, ValueError):
            continue
        _count_texts(figures.tags, tags)
        _count_texts(figures.keywords, keywords)
        models[(summarizer if type(summarizer) is str else None,
                model if type(model) is str else None)] += 1
        if fresh and type(llm) is dict:
            _count_llm(figures, llm)
        if n % 10_000 == 0:
            _bounded(figures.tags)
            _bounded(figures.keywords)
    _pairs(cache, scope, figures)
    scope.memo["summaries"] = figures
    return figures
