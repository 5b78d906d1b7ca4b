"""Caches filled with enriched bookmarks, as `run` leaves them, for the search tests."""

from __future__ import annotations

import gzip
import html
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from bookmark_enrich.cache import ResultCache
from bookmark_enrich.models import StageOutcome
from bookmark_enrich.urls import bookmark_key, normalize_url

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / \
    "article-extraction-benchmark"
if not CORPUS.is_dir():
    CORPUS = Path("/work/shared/corpus/article-extraction-benchmark")


def put(cache: ResultCache, doc: dict[str, Any], run_id: int = 1, position: int = 1,
        saved: float | None = None) -> None:
    """One bookmark with its fetch, extract and summarize results."""
    from bookmark_enrich.models import Bookmark

    url = doc["url"]
    normalized = normalize_url(url)
    bookmark = Bookmark(url, normalized, bookmark_key(normalized), doc.get("record", {"url": url}),
                        position)
    fetch = StageOutcome.ok({"final_url": url, "http_status": 200,
                             "content_type": doc.get("content_type", "text/html")})
    if doc.get("failed"):
        fetch = StageOutcome.failed("not_found", "HTTP 404")
    extract = StageOutcome.ok({k: doc[k] for k in ("title", "site_name", "language",
                                                   "description") if k in doc},
                              text=doc.get("text", ""))
    outcomes = {"fetch": fetch} if doc.get("failed") else {"fetch": fetch, "extract": extract}
    if "summary" in doc or "tags" in doc:
        outcomes["summarize"] = StageOutcome.ok({
            "summary": doc.get("summary", ""), "keywords": doc.get("keywords", []),
            "tags": doc.get("tags", []), "summarizer": "builtin"})
    cache.put(bookmark, outcomes, run_id, source="test")
    cache.flush()
    if saved is not None:
        cache.conn.execute("UPDATE bookmarks SET first_seen = ? WHERE key = ?",
                           (saved, bookmark.key))


def fill(path: Path, docs: list[dict[str, Any]], run_id: int = 1) -> None:
    with ResultCache(path) as cache:
        for i, doc in enumerate(docs, start=1):
            put(cache, doc, run_id, i, doc.get("saved"))


def snapshot(path: Path) -> list[Any]:
    """Every row of the cache's own tables (what search must never change)."""
    conn = sqlite3.connect(path)
    try:
        return [conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("results", "bookmarks", "runs")]
    finally:
        conn.close()


DOCS: list[dict[str, Any]] = [
    {"url": "https://bread.example/sourdough", "title": "Keeping a sourdough starter alive",
     "site_name": "Bread Blog", "language": "en",
     "text": "Feed the starter with flour and water every day. A healthy levain doubles in "
             "size. Crème fraîche is not needed for a sourdough loaf.",
     "summary": "How to feed and keep a sourdough starter.", "tags": ["baking", "sourdough"],
     "keywords": ["starter", "levain"], "saved": time.mktime((2024, 4, 10, 0, 0, 0, 0, 0, -1))},
    {"url": "https://www.python.org/asyncio", "title": "Asyncio tutorial",
     "site_name": "Python", "language": "en",
     "text": "Coroutines and tasks run on the event loop. Use asyncio.gather to run tasks "
             "concurrently.",
     "summary": "An introduction to asyncio coroutines.", "tags": ["python", "async"],
     "keywords": ["asyncio", "coroutines"], "saved": time.mktime((2025, 1, 5, 0, 0, 0, 0, 0, -1))},
    {"url": "https://docs.example/report.pdf", "title": "Annual report", "language": "fr",
     "content_type": "application/pdf",
     "text": "Le rapport annuel présente les résultats financiers de l'entreprise.",
     "summary": "Résultats financiers.", "tags": ["finance"], "keywords": ["rapport"]},
    {"url": "https://news.example/dead", "title": "Gone", "failed": True, "text": ""},
    {"url": "https://cook.example/pizza", "title": "Neapolitan pizza dough",
     "site_name": "Cook", "language": "en",
     "text": "Pizza dough with a long cold ferment. Bake in a very hot oven.",
     "summary": "Pizza dough recipe.", "tags": ["baking", "pizza"], "keywords": ["dough"]},
]


def corpus_pages() -> list[dict[str, Any]]:
    """The shared benchmark pages: their <title> and their ground-truth article text."""
    truth = json.loads((CORPUS / "ground-truth.json").read_text(encoding="utf-8"))
    docs = []
    for name, entry in sorted(truth.items()):
        raw = gzip.decompress((CORPUS / "html" / f"{name}.html.gz").read_bytes())
        page = raw.decode("utf-8", "replace")
        m = re.search(r"<title[^>]*>(.*?)</title>", page, re.DOTALL | re.IGNORECASE)
        title = " ".join(html.unescape(m.group(1)).split()) if m else ""
        docs.append({"url": entry["url"], "title": title, "text": entry["articleBody"],
                     "name": name})
    return docs
