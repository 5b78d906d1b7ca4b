"""`search`, `similar` and `cache reindex`: full text on a real SQLite cache."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bookmark_enrich.cache import ResultCache
from bookmark_enrich.cli import app
from tests.search_support import DOCS, fill, put, snapshot

runner = CliRunner()


def search(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = runner.invoke(app, ["search", *args])
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    return result.exit_code, lines, result.stderr


def urls(*args: str) -> list[str]:
    return [r["url"] for r in search(*args)[1]]


@pytest.fixture
def filled(cache_path: Path) -> Path:
    fill(cache_path, DOCS)
    return cache_path


def test_words_are_anded_and_ranked_by_title_first(filled: Path) -> None:
    code, records, _ = search("sourdough starter", "--jsonl")
    assert code == 0
    assert [r["url"] for r in records] == ["https://bread.example/sourdough"]
    record = records[0]
    assert set(record) >= {"url", "status", "enrichment", "stages", "record", "score",
                           "snippet"}
    assert record["enrichment"]["title"] == "Keeping a sourdough starter alive"
    assert "**" not in record["snippet"] and "starter" in record["snippet"]
    assert urls("baking") == ["https://bread.example/sourdough", "https://cook.example/pizza"] \
        or set(urls("baking")) == {"https://bread.example/sourdough", "https://cook.example/pizza"}


@pytest.mark.parametrize(("query", "expected"), [
    ('"cold ferment"', {"https://cook.example/pizza"}),
    ('"ferment cold"', set()),
    ("baking -pizza", {"https://bread.example/sourdough"}),
    ("pizza OR asyncio", {"https://cook.example/pizza", "https://www.python.org/asyncio"}),
    ("corout*", {"https://www.python.org/asyncio"}),
    ("creme fraiche", {"https://bread.example/sourdough"}),  # diacritics folded
    ("RÉSULTATS", {"https://docs.example/report.pdf"}),
    ("tag:baking", {"https://bread.example/sourdough", "https://cook.example/pizza"}),
    ("tag:baking -tag:pizza", {"https://bread.example/sourdough"}),
    ("tag:baking -pizza", {"https://bread.example/sourdough"}),
    ("site:python.org", {"https://www.python.org/asyncio"}),
    ("lang:fr", {"https://docs.example/report.pdf"}),
    ("type:pdf", {"https://docs.example/report.pdf"}),
    ("status:failed", {"https://news.example/dead"}),
    ("dough since:2025-01", {"https://cook.example/pizza"}),
    ("tag:baking until:2024-04", {"https://bread.example/sourdough"}),
    ("run:1 tag:finance", {"https://docs.example/report.pdf"}),
    ("run:2", set()),
])
def test_query_language(filled: Path, query: str, expected: set[str]) -> None:
    code, records, err = search(query, "--jsonl")
    assert {r["url"] for r in records} == expected, err
    assert code == (0 if expected else 1)  # nothing found exits 1, as grep does


def test_nothing_found_exits_1_with_empty_stdout(filled: Path) -> None:
    result = runner.invoke(app, ["search", "zebra", "--jsonl"])
    assert result.exit_code == 1 and result.stdout == ""


def test_formats(filled: Path) -> None:
    result = runner.invoke(app, ["search", "baking", "--json"])
    assert result.exit_code == 0
    assert {r["url"] for r in json.loads(result.stdout)} == {
        "https://bread.example/sourdough", "https://cook.example/pizza"}
    result = runner.invoke(app, ["search", "baking", "--format", "csv", "--limit", "1"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 1 and rows[0]["tags"] in ("baking|sourdough", "baking|pizza")
    result = runner.invoke(app, ["search", "baking", "--format", "table"])
    assert "Keeping a sourdough starter" in result.stdout


HOSTILE = [
    ('"unbalanced', 2, "unbalanced quote"),
    ("OR", 2, "OR needs"),
    ("pizza OR", 2, "OR needs"),
    ("OR OR pizza", 2, "OR needs"),
    ("NOT", 2, "NOT needs"),
    ("", 2, "empty query"),
    ("   \t ", 2, "empty query"),
    ("-pizza", 2, "nothing to look for"),
    ("title:pizza", 2, "unknown filter title:"),
    ("bogus:x", 2, "unknown filter"),
    ("status:maybe", 2, "status:maybe"),
    ("type:gif", 2, "type:gif"),
    ("since:yesterday", 2, "since:yesterday"),
    ("run:abc", 2, "run:abc"),
    ("tag:", 2, "needs a value"),
    ("NEAR(pizza dough)", 1, None),  # the words near, pizza, dough: no page has "near"
    ("pizza AND AND dough", 0, None),
    ("pizza*dough", 0, None),  # split as the index splits it: the phrase "pizza dough"
    ("^pizza", 0, None),
    ("{title tags}: pizza", 1, None),
    ("pizza'; DROP TABLE results; --", 1, None),
    ("\" OR 1=1 --\"", 1, None),
    ("pizza) OR (1", 0, None),
    ("*", 2, "nothing to look for"),
    ("\x00\x01pizza\x1b[31m", 1, None),
    ("pizza " * 2000, 2, "too long"),
    (" ".join(f"w{i}" for i in range(100)), 2, "too many words"),
    ("tag:\"x\" \"", 2, "unbalanced quote"),
]


@pytest.mark.parametrize(("query", "code", "message"), HOSTILE)
def test_hostile_queries_get_a_clear_error_or_a_result(
        filled: Path, query: str, code: int, message: str | None) -> None:
    runner.invoke(app, ["search", "pizza", "--jsonl"])  # build the index first
    before = snapshot(filled)
    result = runner.invoke(app, ["search", "--jsonl", "--", query])
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert "sqlite" not in result.stderr.lower() and "fts5" not in result.stderr.lower()
    if message is not None:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
        assert result.stdout == ""
    assert snapshot(filled) == before


def test_the_index_follows_every_write(filled: Path) -> None:
    assert urls("ferment") == ["https://cook.example/pizza"]
    with ResultCache(filled) as cache:  # a later run adds one and rewrites another
        put(cache, {"url": "https://new.example/kombucha", "title": "Kombucha ferment",
                    "text": "A second ferment in bottles."}, run_id=2)
        put(cache, {"url": "https://cook.example/pizza", "title": "Focaccia",
                    "text": "Olive oil and salt.", "summary": "Flat bread."}, run_id=2)
    assert urls("ferment") == ["https://new.example/kombucha"]
    assert urls("focaccia") == ["https://cook.example/pizza"]
    assert set(urls("run:2")) == {"https://new.example/kombucha", "https://cook.example/pizza"}
    conn = sqlite3.connect(filled)  # prune removes one
    with conn:
        conn.execute("DELETE FROM results WHERE key IN (SELECT key FROM bookmarks "
                     "WHERE url LIKE '%kombucha')")
        conn.execute("DELETE FROM bookmarks WHERE url LIKE '%kombucha'")
    conn.close()
    assert urls("ferment") == []


def test_old_cache_is_indexed_on_first_use_and_reindex_rebuilds(filled: Path) -> None:
    conn = sqlite3.connect(filled)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'search%'"
                        ).fetchone()[0] == 0
    conn.close()
    assert urls("pizza") == ["https://cook.example/pizza"]
    result = runner.invoke(app, ["cache", "reindex"])
    assert result.exit_code == 0 and "5 bookmarks" in result.stderr
    assert urls("pizza") == ["https://cook.example/pizza"]


def test_missing_or_foreign_cache_is_refused(tmp_path: Path, cache_path: Path) -> None:
    result = runner.invoke(app, ["search", "pizza"])
    assert result.exit_code == 2 and "no cache here yet" in result.stderr
    assert not cache_path.exists()
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    result = runner.invoke(app, ["search", "pizza", "--cache", str(other)])
    assert result.exit_code == 2 and "not a bookmark-enrich cache" in result.stderr


def test_similar_without_vectors_uses_shared_words(filled: Path) -> None:
    result = runner.invoke(app, ["similar", "https://bread.example/sourdough", "--jsonl"])
    found = [json.loads(x)["url"] for x in result.stdout.splitlines()]
    assert result.exit_code == 0 and found[0] == "https://cook.example/pizza"
    assert "https://bread.example/sourdough" not in found
    result = runner.invoke(app, ["similar", "https://nowhere.example/"])
    assert result.exit_code == 2 and "not in the cache" in result.stderr


def test_semantic_needs_a_server(filled: Path) -> None:
    result = runner.invoke(app, ["search", "pizza", "--mode", "semantic"])
    assert result.exit_code == 2 and "embeddings server" in result.stderr
