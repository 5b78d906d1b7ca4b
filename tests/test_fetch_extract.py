"""Fetch and extract against a real HTTP server: the cases the web throws at us."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import by_url, run_library
from tests.servers.pages import CORPUS_DIR, PageServer


def test_article_is_fetched_and_extracted(pages: PageServer) -> None:
    url = pages.url("/article/1")
    records, stats = run_library([url])
    (rec,) = records
    assert rec["status"] == "ok"
    e = rec["enrichment"]
    assert e["http_status"] == 200
    assert e["title"].startswith("Tending a city garden")
    assert e["author"] == "Ada Gardener"
    assert e["language"] == "en"
    assert e["word_count"] > 50
    assert "text" not in e  # only with --include-text
    assert stats.ok == 1 and stats.failed == 0


def test_include_text_puts_main_text_in_output(pages: PageServer) -> None:
    records, _ = run_library([pages.url("/article/text")], include_text=True)
    assert "Urban gardens turn empty lots" in records[0]["enrichment"]["text"]
    assert "Copyright" not in records[0]["enrichment"]["text"]  # boilerplate is dropped


def test_not_found_fails_without_retry(pages: PageServer) -> None:
    records, stats = run_library([pages.url("/status/404")])
    (rec,) = records
    assert rec["status"] == "failed"
    assert rec["errors"] == [{"stage": "fetch", "reason": "not_found", "message": "HTTP 404"}]
    assert rec["stages"]["fetch"]["attempts"] == 1
    assert rec["stages"]["extract"]["status"] == "skipped"
    assert stats.failed == 1


def test_429_honours_retry_after_then_gives_up(pages: PageServer) -> None:
    path = "/status/429"
    before = pages.hits[path]
    records, _ = run_library([pages.url(path + "?retry_after=0.2")], retries=2)
    assert records[0]["errors"][0]["reason"] == "rate_limited"
    assert records[0]["stages"]["fetch"]["attempts"] == 3
    assert pages.hits[path] - before == 3
    # Three tries separated by two 0.2 s waits from Retry-After.
    assert records[0]["stages"]["fetch"]["duration_ms"] >= 400


def test_500_then_200_is_retried(pages: PageServer) -> None:
    records, _ = run_library([pages.url("/flaky/retry-me")])
    rec = records[0]
    assert rec["status"] == "ok"
    assert rec["stages"]["fetch"]["attempts"] == 2


def test_slow_page_times_out(pages: PageServer) -> None:
    records, _ = run_library([pages.url("/slow?seconds=3")], read_timeout=0.3, retries=0)
    assert records[0]["errors"][0]["reason"] == "timeout"


def test_redirect_chain_records_final_url(pages: PageServer) -> None:
    records, _ = run_library([pages.url("/redirect/3")])
    e = records[0]["enrichment"]
    assert records[0]["status"] == "ok"
    assert e["final_url"] == pages.url("/article/redirected")


def test_redirect_loop_fails(pages: PageServer) -> None:
    records, _ = run_library([pages.url("/loop")])
    assert records[0]["errors"][0]["reason"] == "too_many_redirects"


def test_huge_body_is_aborted_early(pages: PageServer) -> None:
    declared = pages.url("/big?mb=50")
    streamed = pages.url("/big?mb=50&length=0")  # no Content-Length: the cap bites mid-stream
    records, _ = run_library([declared, streamed])
    for rec in records:
        assert rec["errors"][0]["reason"] == "too_large", rec
    assert by_url(records)[streamed]["stages"]["fetch"]["duration_ms"] < 10_000


def test_binary_content_is_recorded_not_extracted(pages: PageServer) -> None:
    records, _ = run_library([pages.url("/binary")])
    rec = records[0]
    assert rec["status"] == "ok"
    assert rec["enrichment"]["content_type"] == "image/png"
    assert rec["stages"]["extract"] == {**rec["stages"]["extract"], "status": "skipped",
                                        "reason": "not_html"}


def test_non_utf8_page_is_decoded(pages: PageServer) -> None:
    records, _ = run_library([pages.url("/latin1")], include_text=True)
    e = records[0]["enrichment"]
    assert "Déjà vu à Noël" in e["text"]
    assert e["language"] == "fr"


def test_file_urls_read_saved_pages(tmp_path: Path) -> None:
    page = tmp_path / "saved.html"
    page.write_text("<html><head><title>Saved</title></head><body><article><p>"
                    + "A saved page with enough words to count as content. " * 5
                    + "</p></article></body></html>")
    records, _ = run_library([page.as_uri(), (tmp_path / "gone.html").as_uri()])
    recs = by_url(records)
    assert recs[page.as_uri()]["status"] == "ok"
    assert recs[(tmp_path / "gone.html").as_uri()]["errors"][0]["reason"] == "not_found"


def test_duplicates_are_enriched_once_but_each_gets_a_record(pages: PageServer) -> None:
    path = "/article/dupe"
    before = pages.hits[path]
    url = pages.url(path)
    variants = [url, url + "#section", url + "?utm_source=news", url.replace("127.0.0.1",
                                                                              "127.0.0.1")]
    records, stats = run_library(variants)
    assert len(records) == 4
    assert pages.hits[path] - before == 1
    assert {r["enrichment"]["title"] for r in records} == {"Tending a city garden #dupe"}
    assert stats.total == 4


def test_connection_refused_is_a_reason_not_a_crash() -> None:
    records, _ = run_library(["http://127.0.0.1:9/nothing"], retries=0)
    assert records[0]["errors"][0]["reason"] == "connection_refused"


def test_corpus_page_extracts(pages: PageServer) -> None:
    name = "042bb7b5fedab6eac7db576522b89b93904c237d344bcbe14a6a5ab7f7335856"
    if not (CORPUS_DIR / "html" / f"{name}.html.gz").exists():
        pytest.skip(f"the shared corpus is not beside this checkout ({CORPUS_DIR})")
    records, _ = run_library([pages.url(f"/corpus/{name}")], include_text=True)
    e = records[0]["enrichment"]
    assert e["title"].startswith("Google Stadia")
    assert "Gaming used to be so simple" in e["text"]
