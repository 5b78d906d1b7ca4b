"""Documents: which bodies are documents, and what is read from real PDFs and text files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bookmark_enrich.extraction import extract_document
from bookmark_enrich.extraction.documents import DocumentError, document_kind, extract_text
from bookmark_enrich.extraction.pdf import pdf_date
from bookmark_enrich.language import choose_language as detect_language
from tests.pdfgen import text_page, write_pdf

DOCS = Path(__file__).parent / "fixtures" / "documents"
TRUTH = json.loads((DOCS / "ground-truth.json").read_text())
CHROMIUM = sorted(TRUTH)
# What Chromium prints around every page: "12/2/26, 6:49 AM <title>" and "<URL> 1/4".
CHROMIUM_FURNITURE = re.compile(r"(?m)\d{1,2}/\d{1,2}/\d{2}, \d{1,2}:\d{2}\s?[AP]M|file:///|"
                                r"^\s*\d+/\d+\s*$")


def read(name: str, url: str | None = None) -> tuple[dict[str, object], str]:
    return extract_document((DOCS / name).read_bytes(), "pdf", url or f"https://x.test/{name}",
                            detect=detect_language)


def shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + 4]) for i in range(len(words) - 3)}


# ------------------------------------------------------------------ the kind
@pytest.mark.parametrize(("content_type", "url", "head", "kind"), [
    ("application/pdf", "https://x.test/a", b"%PDF-1.7", "pdf"),
    ("application/x-pdf; charset=binary", "https://x.test/a", b"", "pdf"),
    ("application/octet-stream", "https://x.test/download?id=3", b"%PDF-1.4\n", "pdf"),
    (None, "https://x.test/a", b"\n%PDF-1.5", "pdf"),
    ("text/html", "https://x.test/paper", b"%PDF-1.5", "pdf"),  # a mislabelled PDF
    ("application/octet-stream", "https://x.test/a.bin", b"\x89PNG\r\n", None),
    ("text/html; charset=utf-8", "https://x.test/a.pdf", b"<!doctype html>", None),
    ("text/plain; charset=utf-8", "https://x.test/rfc9110.txt", b"Internet", "text"),
    ("text/plain", "https://raw.x.test/README.md", b"# Title", "markdown"),
    ("text/plain", "https://x.test/docs/index.rst", b"Title\n=====", "rst"),
    ("text/markdown", "https://x.test/notes", b"# Notes", "markdown"),
    ("text/x-rst", "https://x.test/notes", b"Notes", "rst"),
    ("application/octet-stream", "https://x.test/CHANGES.md", b"# Changes", "markdown"),
    ("application/octet-stream", "https://x.test/data.md", b"\x00\x01", None),
    ("image/png", "https://x.test/a.png", b"\x89PNG", None),
])
def test_document_kind(content_type: str | None, url: str, head: bytes,
                       kind: str | None) -> None:
    assert document_kind(content_type, url, head) == kind


# ----------------------------------------------------------- Chromium PDFs
@pytest.mark.parametrize("name", CHROMIUM)
def test_chromium_pdf_holds_the_article_without_running_header_or_footer(name: str) -> None:
    meta, text = read(name)
    truth = TRUTH[name]["articleBody"]
    want = shingles(truth)
    assert len(want & shingles(text)) / len(want) >= 0.95
    assert not CHROMIUM_FURNITURE.search(text), CHROMIUM_FURNITURE.search(text)
    assert meta["content_type"] == "application/pdf"
    assert isinstance(meta["page_count"], int) and meta["page_count"] >= 1
    assert meta["word_count"] == len(text.split())
    assert meta["title"]


def test_chromium_metadata() -> None:
    meta, _ = read("chromium-ko.pdf")
    assert meta["title"] == "엘제이-류화영 진흙탕 싸움, 공적인 사안으로 봐야하는 이유 - Entermedia"
    assert meta["language"] == "ko"  # not a language the stop words know: the PDF's /Lang
    assert meta["page_count"] == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", str(meta["date"]))
    meta, _ = read("chromium-1page.pdf")
    assert meta["title"] == "House Hitler was born in will become a police station, Austria says"
    assert meta["language"] == "en" and meta["page_count"] == 1


# ------------------------------------------------------------ other makers
def test_latex_paper_title_hyphenation_and_running_heads() -> None:
    meta, text = read("latex-paper.pdf")
    assert meta["title"] == "Soil Moisture Sensing for Community Gardens"  # largest font
    assert meta["page_count"] == 4 and meta["language"] == "en"
    # Words LaTeX broke at line ends come back whole.
    assert "moisture" in text and "measurements" in text and "Microcontrollers" in text
    assert not re.search(r"\w[-\ufffe\u00ad]\s", text)
    # Running heads ("2 INSTRUMENTATION 2") and page numbers are gone; headings stay.
    assert "INSTRUMENTATION" not in text and "DISCUSSION" not in text
    assert "Instrumentation" in text and "Discussion" in text
    assert not re.search(r"(?m)^\s*\d+\s*$", text)


def test_libreoffice_export_language_detected_from_the_text() -> None:
    meta, text = read("libreoffice-de.pdf")
    assert meta["title"] == "Jahresbericht des Gartenvereins 2023"
    assert meta["language"] == "de"  # LibreOffice's /Lang says en-US: the text wins
    assert "Regenwasserzisterne" in text


def test_debian_manual_junk_info_title_falls_back_to_the_largest_line() -> None:
    meta, text = read("debian-makeindex.pdf")
    assert meta["title"] == "MakeIndex : An Index Processor For LaTEX"  # info: makeindex.dvi
    assert meta["date"] == "2006-04-18T14:22:31+01:00"
    assert meta["page_count"] == 8
    assert "MakeIndex is a C program written by Pehong Chen" in text


def test_title_of_last_resort_is_the_file_name() -> None:
    body = write_pdf([text_page(["12"]), text_page(["13"])])  # nothing but page numbers
    meta, text = extract_document(body, "pdf", "https://x.test/files/annual%20report.pdf")
    assert meta["title"] == "annual report.pdf" and text == ""


def test_repeated_header_and_footer_on_a_generated_document() -> None:
    pages = [text_page([f"Paragraph {i} tells the story of the harbour in spring."] * 3,
                       header="Harbour Annual Review", footer=f"Page {i} of 5")
             for i in range(1, 6)]
    meta, text = extract_document(write_pdf(pages, info={"Title": "Review"}), "pdf", "x")
    assert "Harbour Annual Review" not in text and "Page" not in text
    assert text.count("tells the story") == 15 and meta["page_count"] == 5


# ------------------------------------------------------------ refusals
def test_encrypted_pdf() -> None:
    with pytest.raises(DocumentError) as info:
        read("encrypted.pdf")
    assert info.value.reason == "encrypted"


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_pdf_cut_short_is_damaged(cut: float) -> None:
    body = (DOCS / "chromium-4pages.pdf").read_bytes()
    with pytest.raises(DocumentError) as info:
        extract_document(body[:int(len(body) * cut)], "pdf", "x")
    assert info.value.reason == "damaged_document"


def test_garbage_after_a_pdf_header_is_damaged() -> None:
    with pytest.raises(DocumentError) as info:
        extract_document(b"%PDF-1.7\n" + b"\x00garbage" * 500 + b"\n%%EOF\n", "pdf", "x")
    assert info.value.reason == "damaged_document"


def test_scanned_pdf_keeps_metadata_and_has_no_text() -> None:
    meta, text = read("scanned.pdf")
    assert text == "" and meta["word_count"] == 0
    assert meta["title"] == "Soil Moisture Sensing (scan)" and meta["author"] == "Ada Gardener"


# ------------------------------------------------------------------ text
def test_markdown_front_matter_heading_and_text_as_is() -> None:
    body = b"---\ntitle: \"Release notes\"\n---\n\nIntro line.\n\n# Version 2\n\nMore.\n"
    meta, text = extract_text(body, "markdown", "https://x.test/NOTES.md")
    assert meta["title"] == "Release notes" and meta["content_type"] == "text/markdown"
    assert "# Version 2" in text and meta["word_count"] == len(text.split())
    meta, _ = extract_text(b"Some intro\n\n## Install it\n", "markdown", "u")
    assert meta["title"] == "Install it"
    meta, _ = extract_text(b"\nProject Name\n============\n\nText.\n", "markdown", "u")
    assert meta["title"] == "Project Name"


def test_rst_title_and_plain_text_first_line() -> None:
    meta, _ = extract_text(b"=========\nUser Guide\n=========\n\nWelcome.\n", "rst", "u")
    assert meta["title"] == "User Guide" and meta["content_type"] == "text/x-rst"
    meta, text = extract_text(b"\n  Network Working Group   \nRFC 2616\n", "text",
                              "https://x.test/rfc2616.txt")
    assert meta["title"] == "Network Working Group" and text.startswith("Network")
    assert meta["content_type"] == "text/plain"


def test_text_encodings() -> None:
    _meta, text = extract_text("Gemüse für alle\n".encode("latin-1"), "text", "u")
    assert text == "Gemüse für alle"
    _, text = extract_text("Grüße".encode("utf-16"), "text", "u")
    assert text == "Grüße"
    with pytest.raises(DocumentError) as info:
        extract_text(b"\x00\x01\x02binary", "text", "u")
    assert info.value.reason == "damaged_document"


@pytest.mark.parametrize(("value", "iso"), [
    ("D:20240131235959+01'00'", "2024-01-31T23:59:59+01:00"),
    ("D:20210105001243Z00'00'", "2021-01-05T00:12:43Z"),
    ("D:20200701202700Z", "2020-07-01T20:27:00Z"),
    ("D:199912", "1999-12"),
    ("D:2019", "2019"),
    ("20240131", "2024-01-31"),
    ("yesterday", None),
    ("", None),
])
def test_pdf_dates(value: str, iso: str | None) -> None:
    assert pdf_date(value) == iso
