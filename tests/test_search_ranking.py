"""Ranking on the shared benchmark pages, and semantic search with a fake embeddings server."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bookmark_enrich import load_settings
from bookmark_enrich.cli import app
from bookmark_enrich.finder import Finder
from bookmark_enrich.search.query import word_tokens
from tests.helpers import run_library
from tests.search_support import CORPUS, DOCS, fill
from tests.servers.embeddings import EmbeddingServer
from tests.servers.llm import LLMServer
from tests.servers.pages import PageServer

runner = CliRunner()


def _distinctive(words: list[str], df: dict[str, int], n: int) -> list[str]:
    """The ``n`` rarest words (ties: longest), for a query a user would remember."""
    unique = list(dict.fromkeys(w for w in words if len(w) > 2 and not w.isdigit()))
    return sorted(unique, key=lambda w: (df.get(w, 0), -len(w)))[:n]


@pytest.fixture(scope="module")
def corpus_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    if not (CORPUS / "ground-truth.json").exists():
        pytest.skip(f"the shared corpus is not beside this checkout ({CORPUS})")
    from tests.search_support import corpus_pages

    docs = [d for d in corpus_pages() if d["title"] and len(d["text"].split()) > 60]
    path = tmp_path_factory.mktemp("corpus") / "cache.sqlite"
    fill(path, docs)
    return path, docs


def test_ranking_on_the_benchmark_pages(corpus_cache: tuple[Path, list[dict[str, Any]]]
                                        ) -> None:
    path, docs = corpus_cache
    df: dict[str, int] = {}
    for d in docs:
        for w in set(word_tokens(d["title"] + " " + d["text"])):
            df[w] = df.get(w, 0) + 1
    rng = random.Random(22)
    title_top3 = phrase_first = 0
    with Finder(load_settings(cache=path)) as finder:
        finder.prepare()
        for d in docs:
            words = _distinctive(word_tokens(d["title"]), df, 3)
            found = [f.record["url"] for f in finder.search(" ".join(words), limit=3)]
            title_top3 += d["url"] in found
            tokens = d["text"].split()
            start = rng.randrange(len(tokens) // 3, 2 * len(tokens) // 3)
            phrase = " ".join(word_tokens(" ".join(tokens[start:start + 6])))
            first = finder.search(f'"{phrase}"', limit=1)
            phrase_first += bool(first) and first[0].record["url"] == d["url"]
    n = len(docs)
    print(f"\n{n} pages: title words top-3 {title_top3 / n:.1%}, "
          f"middle phrase first {phrase_first / n:.1%}")
    assert title_top3 / n >= 0.90
    assert phrase_first / n >= 0.95


def test_semantic_and_hybrid_with_an_embeddings_server(
        pages: PageServer, embeddings: EmbeddingServer, cache_path: Path) -> None:
    page = "<html><head><title>{}</title></head><body><article><p>{}</p></article></body></html>"
    bread = pages.add("search-bread", page.format(
        "Sourdough starter care", "Feed the sourdough starter flour and water daily. " * 20))
    pizza = pages.add("search-pizza", page.format(
        "Pizza dough", "Pizza dough ferments cold for two days before baking. " * 20))
    records, _ = run_library([bread, pizza],
                             embedding_url=embeddings.base_url, cache=cache_path)
    assert all(r["stages"]["embed"]["status"] == "ok" for r in records), records
    assert "embedding" not in json.dumps(records[0]["enrichment"])
    # Words of the page, but none of the title: only the vectors can match them.
    result = runner.invoke(app, ["search", "flour water", "--mode", "semantic", "--jsonl"])
    found = [json.loads(x)["url"] for x in result.stdout.splitlines()]
    assert result.exit_code == 0 and found[0] == bread, result.stderr
    result = runner.invoke(app, ["search", "pizza", "--jsonl"])  # hybrid by default
    found = [json.loads(x)["url"] for x in result.stdout.splitlines()]
    assert found[0] == pizza
    result = runner.invoke(app, ["similar", bread, "--jsonl"])
    assert [json.loads(x)["url"] for x in result.stdout.splitlines()] == [pizza]
    embeddings.fail = True
    result = runner.invoke(app, ["search", "flour", "--mode", "semantic"])
    assert result.exit_code == 3 and "embeddings server failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_embed_stage_batches_and_model_change_re_embeds(
        pages: PageServer, embeddings: EmbeddingServer, cache_path: Path) -> None:
    urls = [pages.url(f"/article/{i}") for i in range(12)]
    records, _ = run_library(urls, embedding_url=embeddings.base_url, cache=cache_path,
                             embedding_batch=8)
    assert sum(embeddings.batches[1:]) == 12  # the first request is the health check
    assert len(embeddings.batches) - 1 < 12 and max(embeddings.batches) <= 8
    embeddings.batches.clear()
    records, _ = run_library(urls, embedding_url=embeddings.base_url, cache=cache_path)
    assert embeddings.batches == [1]  # all cached: only the preflight's check
    embeddings.batches.clear()
    embeddings.model = "other-embed"
    try:
        records, _ = run_library(urls, embedding_url=embeddings.base_url, cache=cache_path)
    finally:
        embeddings.model = "test-embed"
    assert sum(embeddings.batches[1:]) == 12
    assert all(r["stages"]["embed"]["cached"] is False and r["stages"]["fetch"]["cached"]
               for r in records)


def test_doctor_reports_the_search_modes(embeddings: EmbeddingServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["doctor", "--json"])
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "embeddings")
    assert check["status"] == "ok" and check["data"]["modes"] == ["text", "semantic", "hybrid"]
    monkeypatch.delenv("BOOKMARK_ENRICH_EMBEDDING_URL")
    result = runner.invoke(app, ["doctor", "--json"])
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "embeddings")
    assert check["status"] == "skip" and check["data"]["modes"] == ["text"]


def test_text_search_works_without_a_server(cache_path: Path) -> None:
    fill(cache_path, DOCS)
    result = runner.invoke(app, ["search", "pizza", "--jsonl"])
    assert result.exit_code == 0 and "pizza" in result.stdout


def _user_prompt_of(llm: LLMServer, title: str) -> str:
    return next(str(r["messages"][-1]["content"]) for r in llm.chat_requests
                if f"Title: {title}" in str(r["messages"][-1]["content"]))


def test_the_summarizer_gets_the_tags_of_similar_bookmarks(
        pages: PageServer, embeddings: EmbeddingServer, llm: LLMServer,
        cache_path: Path) -> None:
    page = "<html><head><title>{}</title></head><body><article><p>{}</p></article></body></html>"
    bread = "Feed the sourdough starter flour and water daily, then bake the loaf. "
    pizza = "Pizza dough ferments cold for two days, then bakes hot on a stone. "
    first = [pages.add("nb-bread", page.format("Sourdough starter care", bread * 20)),
             pages.add("nb-pizza", page.format("Neapolitan pizza", pizza * 20))]
    settings: dict[str, Any] = {"embedding_url": embeddings.base_url, "cache": cache_path,
                "enable_ai_summarization": True, "summarizer": "llm", "tag_neighbours": 1}
    run_library(first, **settings)
    # The collection's tags as a user would have them (the fake model tags alike).
    with sqlite3.connect(cache_path) as conn:
        for url, tags in ((first[0], ["baking", "sourdough"]), (first[1], ["italian food"])):
            conn.execute("UPDATE results SET output = json_set(output, '$.tags', json(?)) "
                         "WHERE stage = 'summarize' AND key = (SELECT key FROM bookmarks "
                         "WHERE url = ?)", (json.dumps(tags), url))
    llm.requests.clear()
    embeddings.batches.clear()
    second = [pages.add("nb-rye", page.format("Rye sourdough", bread * 19 + "Rye flour. ")),
              pages.add("nb-calzone", page.format("Calzone", pizza * 19 + "Fold it. "))]
    records, _ = run_library(second, **settings)
    assert all(r["stages"]["summarize"]["status"] == "ok" for r in records), records
    rye, calzone = _user_prompt_of(llm, "Rye sourdough"), _user_prompt_of(llm, "Calzone")
    assert "Tags of similar bookmarks (reuse those that fit, spelled exactly so): " \
        "baking, sourdough." in rye and "italian food" not in rye
    assert "similar bookmarks (reuse those that fit, spelled exactly so): italian food." \
        in calzone and "sourdough" not in calzone.split("<page>")[0]
    # Per bookmark one more text: its title and lead (batched with the others' texts).
    assert sum(embeddings.batches[1:]) == 4
    llm.requests.clear()
    run_library([pages.add("nb-loaf", page.format("Loaf", bread * 18))],
                **{**settings, "tag_neighbours": 0})
    assert "similar bookmarks" not in _user_prompt_of(llm, "Loaf")
    embeddings.batches.clear()  # the built-in summarizer reads no suggestions: none asked
    run_library([pages.add("nb-bun", page.format("Bun", bread * 17))],
                **{**settings, "summarizer": "builtin"})
    assert sum(embeddings.batches[1:]) == 1


def test_a_run_indexes_what_it_changed_once_the_cache_has_an_index(
        pages: PageServer, cache_path: Path) -> None:
    def tables_and_pending() -> tuple[int, int | None]:
        with sqlite3.connect(cache_path) as conn:
            tables = conn.execute("SELECT count(*) FROM sqlite_master "
                                  "WHERE name = 'search_dirty'").fetchone()[0]
            pending = conn.execute("SELECT count(*) FROM search_dirty").fetchone()[0] \
                if tables else None
        return tables, pending

    run_library([pages.url("/article/ix1")], cache=cache_path)
    assert tables_and_pending() == (0, None)  # never searched: the first search indexes
    assert runner.invoke(app, ["cache", "reindex"]).exit_code == 0
    run_library([pages.url("/article/ix2"), pages.url("/article/ix3")], cache=cache_path)
    assert tables_and_pending() == (1, 0)
    with sqlite3.connect(cache_path) as conn:
        assert conn.execute("SELECT count(*) FROM search_docs").fetchone()[0] == 3


def test_neighbours_keep_the_newest_tagged_bookmarks() -> None:
    import numpy as np

    from bookmark_enrich.stages.neighbours import _closest_tags, _Ring

    ring = _Ring(2)
    for i, tags in enumerate((["old"], ["mid"], ["new"])):
        ring.add(np.eye(3, dtype="<f4")[i], tags)
    # "old" made way: only the two newest are left, whatever the query.
    assert {t[0] for t in ring.nearest(np.eye(3, dtype="<f4")[0], 5)} == {"mid", "new"}
    assert ring.nearest(np.eye(3, dtype="<f4")[2], 1) == [["new"]]
    assert ring.nearest(np.ones(4, dtype="<f4"), 1) == []  # another model's size
    assert _closest_tags([["Baking", "bread"], ["baking", "pizza"]], 2) == ["Baking", "bread"]
