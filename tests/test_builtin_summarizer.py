"""The built-in offline summarizer: real pages in three languages, and pages with nothing to say."""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookmark_enrich import load_settings
from bookmark_enrich.errors import StageError
from bookmark_enrich.extraction import extract
from bookmark_enrich.language import choose_language
from bookmark_enrich.summarizers.builtin import (
    BuiltinSummarizer,
    split_sentences,
    summarize_page,
)
from bookmark_enrich.workers import shutdown_pool
from tests.helpers import invoke_cli, jsonl

with warnings.catch_warnings():  # urllib3 warns about SOCKS when trafilatura imports it
    warnings.simplefilter("ignore")
    import trafilatura  # noqa: F401

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ON = {"ENABLE_AI_SUMMARIZATION": "true", "BOOKMARK_ENRICH_SUMMARIZER": "builtin"}


def page(name: str) -> tuple[dict[str, Any], str]:
    html = (EXAMPLES / "pages" / name).read_bytes()
    found = extract(html, "utf-8", f"file:///{name}")
    assert found is not None
    return found


def normalized(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(("name", "language", "expected_tag"), [
    ("sourdough-starter.html", "en", "sourdough"),
    ("balkon-kraeuter.html", "de", "kräuter"),
    ("compost-appartement.html", "fr", "compost"),
])
def test_summary_keywords_and_tags_in_the_page_language(name: str, language: str,
                                                        expected_tag: str) -> None:
    meta, text = page(name)
    result = summarize_page(text, meta, 5, True)
    assert result is not None
    assert result["language"] == language
    summary = result["summary"]
    sentences = split_sentences(summary)
    assert 2 <= len(sentences) <= 3
    flat = normalized(text)
    for sentence in sentences:  # extractive: every sentence is the page's own
        assert sentence in flat
    assert summary != meta["description"]
    assert 3 <= len(result["keywords"]) <= 10
    assert all(k.strip() for k in result["keywords"])
    tags = result["tags"]
    assert 1 <= len(tags) <= 5 and expected_tag in tags
    assert all(t == t.lower().strip() and "," not in t for t in tags)
    # The page's own metadata comes first: section, then the keywords meta.
    assert tags[0] == meta["categories"][0].lower()


def test_language_is_detected_when_the_page_does_not_say() -> None:
    meta, text = page("balkon-kraeuter.html")
    result = summarize_page(text, {**meta, "language": None}, 5, True)
    assert result is not None and result["language"] == "de"
    assert choose_language("Le chat dort sur le canapé et il ne veut pas sortir de la maison.") \
        == "fr"
    assert choose_language("12 34 56") is None


def test_sentence_split_keeps_abbreviations_together() -> None:
    text = "Das gilt z. B. für Minze. Dr. Weber gießt morgens!\nEine neue Zeile? Ja."
    assert split_sentences(text) == ["Das gilt z. B. für Minze.", "Dr. Weber gießt morgens!",
                                     "Eine neue Zeile?", "Ja."]
    assert split_sentences("第一句话在这里。第二句话也在这里！") == [
        "第一句话在这里。", "第二句话也在这里！"]


@pytest.mark.parametrize("text", ["", "   \n ", "Photo 1\nPhoto 2\nPhoto 3", "Sign in\nPassword",
                                  "42 17 99"])
def test_no_sentences_and_no_description_is_none(text: str) -> None:
    assert summarize_page(text, {"title": "Gallery"}, 5, True) is None


def test_no_sentences_falls_back_to_a_good_description() -> None:
    meta = {"title": "Holiday photos", "language": "en",
            "description": "Forty photographs of the coast of Brittany taken during a rainy "
                           "week in October.", "page_tags": ["travel, photography"]}
    result = summarize_page("Photo 1\nPhoto 2", meta, 5, True)
    assert result is not None
    assert result["summary"] == meta["description"]
    assert result["tags"][:2] == ["travel", "photography"]
    # A teaser or a description that repeats the title is not a summary.
    assert summarize_page("Photo 1", {**meta, "description": "Read more…"}, 5, True) is None
    assert summarize_page("Photo 1", {**meta, "description": "Holiday photos"}, 5, True) is None


def test_one_sentence_page() -> None:
    text = "The museum is closed on Mondays and on public holidays."
    result = summarize_page(text, {"title": "Opening hours"}, 5, True)
    assert result is not None and result["summary"] == text
    assert result["language"] is None or result["language"] == "en"


def test_book_length_page_is_fast() -> None:
    _, text = page("sourdough-starter.html")
    book = "\n".join([text] * 150)  # ~50,000 words
    start = time.process_time()  # this process's CPU time: other load on the machine aside
    result = summarize_page(book, {"title": "A long book"}, 5, True)
    assert result is not None and result["summary"]
    assert time.process_time() - start < 5


def test_summarizer_runs_in_the_process_pool_and_reports_no_content() -> None:
    async def go() -> None:
        settings = load_settings(extract_processes=1, max_tags=3, lowercase_tags=False)
        summarizer = BuiltinSummarizer(settings)
        meta, text = page("compost-appartement.html")
        try:
            result = await summarizer.summarize(text, meta, existing_tags=[])
            assert (result.summarizer, result.model, result.language) == ("builtin", None, "fr")
            assert len(result.tags) == 3 and result.tags[0] == "Écologie"
            again = await summarizer.summarize(text, meta, existing_tags=["ÉCOLOGIE"])
            assert again.tags[0] == "ÉCOLOGIE"  # the collection's spelling wins
            with pytest.raises(StageError) as err:
                await summarizer.summarize("", {"title": "x"}, existing_tags=[])
            assert err.value.reason == "no_content"
            assert summarizer.metrics() == {"built-in summaries": 2}
        finally:
            await summarizer.aclose()
            shutdown_pool()

    asyncio.run(go())


def test_fingerprint_follows_the_settings_that_change_the_answer() -> None:
    base = BuiltinSummarizer(load_settings()).fingerprint()
    assert BuiltinSummarizer(load_settings()).fingerprint() == base
    assert BuiltinSummarizer(load_settings(max_tags=2)).fingerprint() != base


def test_cli_run_gallery_login_wall_and_description_only_pages(tmp_path: Path) -> None:
    (tmp_path / "gallery.html").write_text(
        "<html lang='en'><head><title>Gallery</title></head><body><main>"
        + "".join(f"<figure><img src='{i}.jpg'><figcaption>Photo {i}</figcaption></figure>"
                  for i in range(12)) + "</main></body></html>", encoding="utf-8")
    (tmp_path / "login.html").write_text(
        "<html lang='en'><head><title>Sign in</title>"
        "<meta name='description' content='Members can read the full report on river water "
        "quality after signing in with their account.'></head><body><form><label>Email"
        "</label><input name=e><label>Password</label><input name=p type=password>"
        "<button>Sign in</button></form></body></html>", encoding="utf-8")
    (tmp_path / "empty.html").write_text("<html><body></body></html>", encoding="utf-8")
    (tmp_path / "list.txt").write_text("file:gallery.html\nfile:login.html\nfile:empty.html\n",
                                       encoding="utf-8")
    proc = invoke_cli("run", str(tmp_path / "list.txt"), "--quiet", env=ON)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
    records = {Path(r["url"]).name: r for r in jsonl(proc.stdout)}
    assert set(records) == {"gallery.html", "login.html", "empty.html"}
    for name in ("gallery.html", "empty.html"):
        stage = records[name]["stages"]["summarize"]
        assert (stage["status"], stage["reason"]) == ("skipped", "no_content"), name
        assert "summary" not in records[name]["enrichment"]
    # The login wall has no sentences: its description is the summary.
    login = records["login.html"]["enrichment"]
    assert login["summary"].startswith("Members can read the full report")
    assert login["summarizer"] == "builtin"
    assert "password" not in " ".join(login["keywords"]).lower()
    assert json.dumps(records)  # plain JSON all the way


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=600), description=st.none() | st.text(max_size=200),
       language=st.none() | st.sampled_from(["en", "de", "xx", "zh-CN", "", "fr_FR"]))
def test_any_text_gives_a_summary_or_none_never_an_exception(
        text: str, description: str | None, language: str | None) -> None:
    meta = {"title": "T", "description": description, "language": language,
            "page_tags": [text[:30]], "categories": None}
    result = summarize_page(text, meta, 5, True)
    if result is not None:
        assert isinstance(result["summary"], str) and result["summary"].strip()
        assert len(result["tags"]) <= 5 and len(result["keywords"]) <= 10
