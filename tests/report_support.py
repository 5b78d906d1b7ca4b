"""One real run for the report tests: corpus pages, failures, a hostile title, the fake LLM."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass
from pathlib import Path

from bookmark_enrich import enrich, load_settings, open_source
from bookmark_enrich.events import RunStats
from tests.servers.llm import LLMServer
from tests.servers.pages import CORPUS_DIR, PageServer

HOSTILE_TITLE = "<script>window.__pwned = 1</script><img src=x onerror=alert(1)> Hostile"
SECRET_KEY = "sk-report-test-secret-0123456789"


@dataclass
class ReportRun:
    cache: Path
    stats: RunStats
    urls: list[str]


def corpus_names(limit: int) -> list[str]:
    folder = CORPUS_DIR / "html"
    if not folder.is_dir():
        return []
    return sorted(p.name.removesuffix(".html.gz") for p in folder.glob("*.html.gz"))[:limit]


def bookmark_lines(pages: PageServer, corpus: int = 30) -> list[str]:
    """About ``corpus`` corpus pages, a hostile page and a few kinds of failure."""
    hostile = pages.add("hostile.html",
                        f"<html><head><title>{HOSTILE_TITLE}</title></head><body><article><p>"
                        + "A page whose title tries to run a script in the report. " * 8
                        + "</p></article></body></html>")
    urls = [pages.url(f"/corpus/{name}") for name in corpus_names(corpus)]
    if len(urls) < corpus:  # no shared corpus beside the checkout: the built-in articles
        urls += [pages.url(f"/article/r{i}") for i in range(corpus - len(urls))]
    urls += [hostile, pages.url("/status/404"), pages.url("/status/500"),
             pages.url("/status/410"), "http://127.0.0.1:9/refused",
             "http://127.0.0.1:9/refused-too"]
    return urls


def real_run(cache: Path, pages: PageServer, llm: LLMServer, *, corpus: int = 30,
             media: Path | None = None) -> ReportRun:
    """Enrich the bookmarks of :func:`bookmark_lines` into ``cache`` (the whole pipeline)."""
    urls = bookmark_lines(pages, corpus)
    hostile_failure = json.dumps({"url": pages.url("/status/404?hostile=1"),
                                  "title": HOSTILE_TITLE})
    lines = [*urls, hostile_failure, '{"url": "javascript:alert(1)", "title": "<b>js</b>"}']
    settings = load_settings(
        cache=cache, enable_ai_summarization=True, enable_media_download=False,
        lm_studio_api_url=llm.base_url, lm_studio_api_key=SECRET_KEY, retries=0,
        backoff=0.01, allow_hosts=["127.0.0.0/8"], media_dir=media or cache.parent / "media")
    src = open_source("-", input_format="jsonl",
                      stdin=io.BytesIO("\n".join(_as_json(line) for line in lines).encode()))
    stats = asyncio.run(enrich(src, settings, sink=lambda record: None))
    return ReportRun(cache, stats, urls)


def _as_json(line: str) -> str:
    return line if line.startswith("{") else '{"url": "' + line + '"}'
