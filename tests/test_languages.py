"""Issue 21 on real pages: the language comes from the text, tags and keywords carry
meaning, summaries are prose said once. Pages: tests/fixtures/pages/README.md."""

from __future__ import annotations

import gzip
import re
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bookmark_enrich.extraction import extract
from bookmark_enrich.language import (
    choose_language,
    function_words,
    is_function_phrase,
    is_prose,
    primary_code,
)
from bookmark_enrich.summarizers.builtin import split_sentences, summarize_page
from bookmark_enrich.tags import normalize_tags, tag_identity

with warnings.catch_warnings():  # urllib3 warns about SOCKS when trafilatura imports it
    warnings.simplefilter("ignore")
    import trafilatura  # noqa: F401

PAGES = Path(__file__).resolve().parent / "fixtures" / "pages"


@cache
def page(name: str) -> tuple[dict[str, Any], str]:
    html = gzip.decompress((PAGES / f"{name}.html.gz").read_bytes())
    found = extract(html, None, f"https://example.org/{name}")
    assert found is not None
    return found


@cache
def summary(name: str) -> dict[str, Any] | None:
    meta, text = page(name)
    return summarize_page(text, meta, 5, True)


def declared(name: str) -> str | None:
    html = gzip.decompress((PAGES / f"{name}.html.gz").read_bytes()).decode("utf-8", "replace")
    found = re.search(r"<html[^>]*\slang=[\"']?([\w-]+)", html, re.IGNORECASE)
    return primary_code(found.group(1)) if found else None


# ------------------------------------------------------------------- language
@pytest.mark.parametrize(("name", "said", "language"), [
    ("trafilatura-befifty.montauk", "en", "de"),  # German text, lang="en"
    ("trafilatura-denkanstoos.com.2012", "de", "en"),  # English text, lang="de"
    ("trafilatura-sibenlab.blogspot.com.privacy", "fr", "en"),
    ("trafilatura-chineselyrics4u.com.zhineng", None, "zh"),  # hanzi and pinyin lines
    ("readability-hukumusume", None, "ja"),
    ("trafilatura-critical.com.pa-amador", "es", "es"),
])
def test_the_text_decides_the_language(name: str, said: str | None, language: str) -> None:
    assert declared(name) == said
    meta, _ = page(name)
    assert meta["language"] == language
    result = summary(name)
    assert result is not None and result["language"] == language


def test_the_declared_language_stands_when_the_text_is_short_or_unsure() -> None:
    assert choose_language("Kurzer Text", "de") == "de"
    assert choose_language("", "fr-FR", title="Accueil") == "fr"
    assert choose_language("12 34 56", None) is None
    # A long text in another language overrides the declaration...
    _, text = page("trafilatura-befifty.montauk")
    assert choose_language(text, "en") == "de"
    # ...but a page mixing its own language with a long quote keeps what it declares.
    meta, text = page("trafilatura-pointofsail-kiel.de.wilson")
    assert meta["language"] == "de"


@pytest.mark.parametrize(("value", "code"), [
    ("en-US", "en"), ("de_DE", "de"), ("de, at, ", "de"), ("spanish", "es"),
    ("zh-Hans", "zh"), ("nb", "no"), ("lang=", None), ("", None), (None, None),
])
def test_declared_codes_are_read_leniently(value: str | None, code: str | None) -> None:
    assert primary_code(value) == code


# ----------------------------------------------------------- tags and keywords
@pytest.mark.parametrize(("name", "gone"), [
    ("trafilatura-befifty.montauk", {"ein", "und", "ist", "der", "ist ein"}),
    ("trafilatura-simplyscience.ch.erdoel", {"wie"}),
    ("trafilatura-reuters.com.parasite", {"us"}),
])
def test_no_tag_or_keyword_is_only_function_words(name: str, gone: set[str]) -> None:
    result = summary(name)
    assert result is not None
    stop = function_words(result["language"])
    words = [*result["tags"], *result["keywords"]]
    assert words and not any(is_function_phrase(w, stop) for w in words)
    assert not gone & {w.casefold() for w in words}
    # No lower-case tag of one or two characters.
    assert all(len(t) > 2 or t.isupper() for t in result["tags"])


def test_an_upper_case_acronym_the_page_uses_stays_a_tag() -> None:
    result = summary("trafilatura-eurostat-polska")
    assert result is not None and "UE" in result["tags"]  # lowercase tags, but not "ue"
    assert normalize_tags(["us", "EU", "AI"], lowercase=True) == ["us", "EU", "AI"]


def test_tags_that_differ_in_case_accents_or_punctuation_are_one() -> None:
    assert normalize_tags(["Kräuter", "krauter", "KRÄUTER!", "E-Mail", "email", "e mail",
                           "C#", "C", "C++"]) == ["kräuter", "e-mail", "C#", "C", "C++"]
    assert tag_identity("Éducation") == tag_identity("education")
    assert tag_identity("ガス") != tag_identity("カス")  # a mark on kana is not an accent


# -------------------------------------------------------------------- summaries
def _sentences(text: str) -> list[str]:
    return split_sentences(text)


def test_a_description_repeating_the_first_paragraph_is_said_once() -> None:
    meta, text = page("trafilatura-critical.com.pa-amador")
    lead = meta["description"].split(". ")[0]
    assert text.count(lead) >= 2  # the page has its lead twice
    result = summary("trafilatura-critical.com.pa-amador")
    assert result is not None
    keys = [re.sub(r"\W+", "", s.casefold()) for s in _sentences(result["summary"])]
    assert len(keys) == len(set(keys))


def test_a_paragraph_repeated_with_other_punctuation_is_said_once() -> None:
    _, text = page("trafilatura-gruen-digital.de.jahrestagung")
    assert text.count("Unter dem Titel") >= 2  # once with "…", once with „…“
    result = summary("trafilatura-gruen-digital.de.jahrestagung")
    assert result is not None and result["summary"].count("Unter dem Titel") == 1


def test_the_javascript_template_line_is_never_a_summary() -> None:
    meta, text = page("trafilatura-lanouvellerepublique.fr.martin")
    assert "nrco.contentDetailController" in text and meta["language"] == "fr"
    line = next(s for s in text.splitlines() if "===" in s)
    assert not is_prose(line)
    # The page has nothing else to say: no summary rather than code.
    assert summary("trafilatura-lanouvellerepublique.fr.martin") is None


def test_the_summary_is_in_the_page_language() -> None:
    _, text = page("trafilatura-pointofsail-kiel.de.wilson")
    assert "BWSurf is the only surf specific kite company" in text
    result = summary("trafilatura-pointofsail-kiel.de.wilson")
    assert result is not None
    assert "BWSurf" not in result["summary"] and "Waverider" in result["summary"]
    assert "the" not in {k.casefold() for k in result["keywords"]}


def test_consent_notices_menus_and_link_lists_are_not_prose() -> None:
    _, text = page("trafilatura-sibenlab.blogspot.com.privacy")
    notice = next(s for s in _sentences(text) if "uses cookies to serve ads on our site" in s)
    assert not is_prose(notice)
    # An article about cookies is still prose.
    _, text = page("readability-aclu")
    about = next(s for s in _sentences(text) if "third-party cookies" in s)
    assert is_prose(about, function_words("en"))
    _, text = page("readability-hukumusume")
    crumbs = next(s for s in text.splitlines() if "福娘童話集 >" in s)
    assert not is_prose(crumbs)
    result = summary("readability-hukumusume")
    assert result is not None and ">" not in result["summary"]
    assert "肉をくわえたイヌ" in result["summary"]
    _, text = page("postlight-www.publickey1.jp")
    links = next(s for s in text.splitlines() if s.startswith("関連タグ"))
    assert not is_prose(links)
    result = summary("postlight-www.publickey1.jp")
    assert result is not None and "関連タグ" not in result["summary"]
