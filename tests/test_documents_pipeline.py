"""Document bookmarks through the whole system: fetch, extract, summaries, cache, retry,
writeback and queue workers, against real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bookmark_enrich import workers
from bookmark_enrich.cli import app
from tests.helpers import CORE_ONLY, by_url, jsonl, run_library
from tests.pdfgen import text_page, write_pdf
from tests.servers.pages import PageServer

DOCS = Path(__file__).parent / "fixtures" / "documents"
runner = CliRunner()


def serve(pages: PageServer, name: str, body: bytes | str, content_type: str) -> str:
    """Serve ``body`` under a unique path ending in ``name``."""
    return pages.add(f"{uuid.uuid4().hex[:8]}/{name}", body, content_type=content_type)


def doc(name: str) -> bytes:
    return (DOCS / name).read_bytes()


def test_documents_are_enriched_like_pages(pages: PageServer) -> None:
    pdf = serve(pages, "report.pdf", doc("chromium-1page.pdf"), "application/pdf")
    sniffed = serve(pages, "download", doc("latex-paper.pdf"), "application/octet-stream")
    readme = serve(pages, "README.md", "# Harbour tools\n\nA kit for harbour masters.\n",
                   "text/plain; charset=utf-8")
    article = pages.url("/article/doc-neighbour")
    records, stats = run_library([pdf, sniffed, readme, article], include_text=True,
                                 max_page_mb=0.01)  # pages are capped, documents are not
    got = by_url(records)
    assert stats.ok == 4
    e = got[pdf]["enrichment"]
    assert e["content_type"] == "application/pdf" and e["page_count"] == 1
    assert e["title"] == "House Hitler was born in will become a police station, Austria says"
    assert "Braunau" in e["text"] and e["word_count"] == len(e["text"].split())
    assert e["language"] == "en"
    e = got[sniffed]["enrichment"]
    assert e["content_type"] == "application/pdf"  # named by what it is, not what was sent
    assert e["title"] == "Soil Moisture Sensing for Community Gardens"
    assert e["page_count"] == 4
    e = got[readme]["enrichment"]
    assert e["content_type"] == "text/markdown" and e["title"] == "Harbour tools"
    assert e["text"].startswith("# Harbour tools") and "page_count" not in e
    assert got[article]["enrichment"]["title"].startswith("Tending a city garden")
    # Without --include-text there is no text, as for pages.
    records, _ = run_library([pdf])
    assert "text" not in records[0]["enrichment"]


def test_bad_documents_get_their_reason_and_the_run_goes_on(pages: PageServer) -> None:
    good = doc("chromium-4pages.pdf")
    urls = {
        "encrypted": serve(pages, "e.pdf", doc("encrypted.pdf"), "application/pdf"),
        "damaged_document": serve(pages, "d.pdf", good[:len(good) // 2], "application/pdf"),
        "no_text": serve(pages, "s.pdf", doc("scanned.pdf"), "application/pdf"),
    }
    fine = serve(pages, "ok.pdf", good, "application/pdf")
    records, stats = run_library([*urls.values(), fine])
    got = by_url(records)
    for reason in ("encrypted", "damaged_document"):
        rec = got[urls[reason]]
        assert rec["status"] == "partial"
        assert rec["errors"] == [{"stage": "extract", "reason": reason,
                                  "message": rec["errors"][0]["message"]}]
    scan = got[urls["no_text"]]
    assert scan["status"] == "ok"
    assert scan["stages"]["extract"] == {**scan["stages"]["extract"], "status": "skipped",
                                         "reason": "no_text"}
    assert scan["enrichment"]["title"] == "Soil Moisture Sensing (scan)"
    assert scan["enrichment"]["author"] == "Ada Gardener"
    assert got[fine]["status"] == "ok" and got[fine]["enrichment"]["page_count"] == 4
    assert stats.ok == 2


def test_document_size_cap_is_its_own_setting(pages: PageServer) -> None:
    body = doc("chromium-4pages.pdf")  # 114 KB
    declared = serve(pages, "big.pdf", body, "application/pdf")
    streamed = pages.url("/binary")  # not a document: still not read
    records, _ = run_library([declared, streamed], max_document_mb=0.05)
    got = by_url(records)
    assert got[declared]["errors"][0]["reason"] == "too_large"
    assert got[streamed]["stages"]["extract"]["reason"] == "not_html"


def test_file_urls_read_documents(tmp_path: Path) -> None:
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(doc("latex-paper.pdf"))
    notes = tmp_path / "guide.rst"
    notes.write_text("Field Guide\n===========\n\nBirds of the harbour.\n")
    records, _ = run_library([pdf.as_uri(), notes.as_uri()])
    got = by_url(records)
    assert got[pdf.as_uri()]["enrichment"]["title"] == \
        "Soil Moisture Sensing for Community Gardens"
    assert got[notes.as_uri()]["enrichment"]["content_type"] == "text/x-rst"
    assert got[notes.as_uri()]["enrichment"]["title"] == "Field Guide"


# ------------------------------------------------------------------- time limit
def slow_pdf(pages: int) -> bytes:
    """Every character on one spot: PDFium's text layout turns slow (about 1 ms a page)."""
    page = b"BT /F1 10 Tf 72 700 Td " + b"(ab) Tj 0.001 0 Td " * 2000 + b"ET"
    return write_pdf([page] * pages)


def test_pathological_pdf_hits_the_time_limit_and_the_run_goes_on(pages: PageServer) -> None:
    slow = serve(pages, "slow.pdf", slow_pdf(400), "application/pdf")
    page = pages.url("/article/beside-a-slow-pdf")
    # 400 such pages take 0.3 s or more (far longer under load); the limit is a sixth of it.
    records, _ = run_library([slow, page], document_timeout=0.05, extract_processes=1)
    got = by_url(records)
    assert got[slow]["errors"][0]["reason"] == "timeout"
    assert "document_timeout" in got[slow]["errors"][0]["message"]
    assert got[page]["status"] == "ok", got[page]["errors"]
    # The same worker reads the next document (a loaded machine gets the default limit).
    fine = serve(pages, "fine.pdf", doc("chromium-1page.pdf"), "application/pdf")
    records, _ = run_library([fine], extract_processes=1)
    assert records[0]["status"] == "ok", records[0]["errors"]


def wait_for_file(path: str) -> str:
    """Work that ends when ``path`` appears (polled: it runs in a pool worker)."""
    import os
    import time

    while not os.path.exists(path):
        time.sleep(0.01)
    return "done"


def stuck_in_c() -> str:
    """Like PDFium stuck inside one call: a read that never returns, the alarm blocked."""
    import os

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    read_end, _ = os.pipe()
    return os.read(read_end, 1).decode()


def test_a_worker_stuck_past_the_limit_is_killed_and_its_neighbours_rerun(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "_GRACE", 0.3)
    flag = tmp_path / "flag"

    async def main() -> tuple[BaseException | str, str, str]:
        innocent = asyncio.create_task(workers.run_cpu(2, wait_for_file, str(flag)))
        try:
            await workers.run_cpu_limited(2, 0.2, stuck_in_c)
            stuck: BaseException | str = "finished"
        except workers.TimeLimitExceeded as exc:
            stuck = exc
        flag.touch()
        after = await workers.run_cpu_limited(2, 5, wait_for_file, str(flag))
        return stuck, await innocent, after

    try:
        stuck, innocent, after = asyncio.run(main())
    finally:
        workers.shutdown_pool()
    assert isinstance(stuck, workers.TimeLimitExceeded) and "killed" in str(stuck)
    assert innocent == "done" and after == "done"


# ------------------------------------------------------------------ summaries
def test_builtin_summarizer_reads_documents(pages: PageServer) -> None:
    paper = serve(pages, "paper.pdf", doc("latex-paper.pdf"), "application/pdf")
    scan = serve(pages, "scan.pdf", doc("scanned.pdf"), "application/pdf")
    records, _ = run_library([paper, scan], enable_ai_summarization=True,
                             summarizer="builtin")
    got = by_url(records)
    e = got[paper]["enrichment"]
    assert e["summarizer"] == "builtin" and len(e["summary"]) > 40
    assert e["keywords"] and e["tags"]
    assert got[scan]["stages"]["summarize"]["reason"] == "no_text"


def long_report(pages: int) -> bytes:
    topics = ["harbour cranes", "tidal energy", "fishing quotas", "ferry timetables",
              "sea walls", "container traffic"]
    contents = []
    for n in range(1, pages + 1):
        topic = topics[n % len(topics)]
        lines = [f"Section {n} reviews {topic} in the port during the year {2000 + n % 20}."
                 f" The board measured {topic} against the plan and found it sound."] * 30
        contents.append(text_page(lines, size=9, footer=f"Harbour report - page {n}"))
    return write_pdf(contents, info={"Title": "Harbour Authority Annual Report"})


def test_300_page_pdf_is_summarized_within_a_4096_token_context(
        pages: PageServer, llm: Any) -> None:
    llm.context_length = 4096
    url = serve(pages, "annual.pdf", long_report(300), "application/pdf")
    records, _ = run_library([url], enable_ai_summarization=True, summarizer="llm")
    rec = records[0]
    assert rec["enrichment"]["page_count"] == 300
    assert rec["stages"]["summarize"]["status"] == "ok", rec["errors"]
    assert rec["enrichment"]["summary"] and rec["enrichment"]["summarizer"] == "llm"
    assert llm.chat_requests  # the document text went through the LLM summarizer


# --------------------------------------------------- cache, retry, writeback, queue
def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env=CORE_ONLY, catch_exceptions=False)


def test_cache_retry_and_writeback_handle_documents(pages: PageServer,
                                                    isolated_env: Path) -> None:
    good = doc("chromium-4pages.pdf")
    name = f"{uuid.uuid4().hex[:8]}/report.pdf"
    url = pages.add(name, good[:len(good) // 2], content_type="application/pdf")
    file = isolated_env / "b.jsonl"
    file.write_text(json.dumps({"url": url, "note": "mine"}) + "\n")
    first = invoke("run", str(file), "-q")
    assert first.exit_code == 1
    assert jsonl(first.stdout.encode())[0]["errors"][0]["reason"] == "damaged_document"
    pages.add(name, good, content_type="application/pdf")  # the server fixed its file
    result = invoke("retry", "--reason", "damaged_document", "--writeback", "-q")
    assert result.exit_code == 0, result.output
    row = json.loads(file.read_text())
    assert row["note"] == "mine" and row["enrichment"]["page_count"] == 4
    assert row["enrichment"]["content_type"] == "application/pdf"
    again = invoke("run", str(file), "-q")
    rec = jsonl(again.stdout.encode())[0]
    assert rec["cached"] is True and rec["enrichment"]["page_count"] == 4


def test_queue_workers_read_documents(pages: PageServer,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("taskiq")
    from tests.test_queue import _in_memory_run, comparable

    urls = [serve(pages, "q.pdf", doc("chromium-1page.pdf"), "application/pdf"),
            serve(pages, "e.pdf", doc("encrypted.pdf"), "application/pdf")]
    queued, _ = _in_memory_run(urls, monkeypatch)
    got = by_url(queued)
    assert got[urls[0]]["enrichment"]["page_count"] == 1
    assert got[urls[1]]["errors"][0]["reason"] == "encrypted"
    local, stats = run_library(urls)
    assert stats.cached == 2 and comparable(queued) == comparable(local)
