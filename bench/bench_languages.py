"""The built-in summarizer on the hand-checked multilingual pages (issue 21). Prints figures.

    python bench/bench_languages.py [--show tags,repeats,code,language] [--limit N]

Needs the pages (``bench/languages/fetch_pages.py``) and two judges the summarizer does
not use: ``py3langid`` (the language a summary is written in) and ``stop-words``
(function words), ``pip install py3langid stop-words``. Each page is extracted with the
extract stage's worker function and summarized with ``summarize_page``, as a run does.

- **language**: declared only (``<html lang>``, ``og:locale``, ``Content-Language``
  meta) and as chosen (the summary's ``language``), against the hand-checked language;
- **function-word tags/keywords per 1,000**: tags (keywords) whose every word is in the
  stop-words package's or YAKE's list for the page's hand-checked language, less the
  content words those lists carry (:data:`CONTENT`, read by hand); a language with no
  list is not judged, so read ``--show alltags`` too;
- **repeated sentence**: a summary with two sentences whose words are the same or
  nearly (Jaccard >= 0.8 over words, over characters for CJK);
- **code**: a summary with a code token (``===``, ``=>``, ``{{``, ``&&``, ``;`` at a
  sentence end, ``a.b.c`` chains, ``function(``) or more than 15 % symbols;
- **summary language**: py3langid's reading of the summary against the page's language;
- **CPU**: ``summarize_page`` CPU time per page (``time.process_time``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.languages.corpus import extract_all, load_pages
from bookmark_enrich.summarizers.builtin import summarize_page

_CODE = re.compile(r"===|!==|=>|\{\{|\}\}|&&|\|\||\bfunction\s*\(|[;{}]\s*$"
                   r"|\b[a-z_]\w*\.[a-z_]\w*\.[a-z_]\w*", re.MULTILINE)
_SENTENCES = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_LANG_META = ("content-language", "og:locale", "language", "dc.language")


def declared(html: bytes) -> str | None:
    """The page's declared language, read independently of the code under test."""
    from lxml import html as lxml_html

    try:
        tree = lxml_html.fromstring(html)
    except Exception:
        return None
    value = tree.get("lang") or tree.get("xml:lang")
    if not value:
        for meta in tree.iter("meta"):
            key = (meta.get("http-equiv") or meta.get("property") or meta.get("name") or "")
            if key.lower() in _LANG_META and meta.get("content"):
                value = meta.get("content")
                break
    code = re.split(r"[-_,; ]", (value or "").strip().lower())[0]
    return code if re.fullmatch(r"[a-z]{2,3}", code) else None


CONTENT = frozenset({
    "added", "billion", "computer", "empleo", "estado", "estados", "information",
    "microsoft", "parole", "part", "run", "test", "trabajo", "web", "words", "work",
    "world", "great", "half", "year", "past", "ten", "men", "pro", "haut", "faire",
    "roku", "lat", "page", "states", "front", "years", "fire", "cc",
})
"""Words in the judge's stop lists that carry meaning as a tag (read on this corpus)."""


def judge_stop(language: str) -> frozenset[str]:
    """The judge's function words, read here so that old and new code are judged alike."""
    import yake
    from stop_words import LANGUAGE_MAPPING, get_stop_words

    code = {"no": "nb"}.get(language, language)
    words = set(get_stop_words(code)) if code in LANGUAGE_MAPPING else set()
    lists = Path(yake.__file__).parent / "core" / "StopwordsList"
    path = lists / f"stopwords_{ {'cs': 'cz'}.get(language, language)}.txt"
    if path.exists():
        words.update(path.read_text(encoding="utf-8", errors="replace").split())
    return frozenset(w.casefold() for w in words) - CONTENT


def function_only(phrase: str, stop: frozenset[str]) -> bool:
    words = [w for w in re.split(r"[\s'’-]+", phrase.casefold()) if w]
    return bool(stop) and bool(words) and all(w in stop for w in words)


def near(a: str, b: str) -> bool:
    def units(s: str) -> set[str]:
        s = s.casefold()
        return set(_CJK.findall(s)) if _CJK.search(s) else set(re.findall(r"\w+", s))

    x, y = units(a), units(b)
    return bool(x and y) and len(x & y) / len(x | y) >= 0.8


_CODE_SYMBOLS = frozenset("=<>{}[]|$#*+^~\\`@")


def has_code(summary: str) -> bool:
    visible = summary.replace(" ", "")
    symbols = sum(1 for c in visible if c in _CODE_SYMBOLS)
    return bool(_CODE.search(summary)) or symbols > 0.08 * max(1, len(visible))


def summarize_all(docs: list[Any]) -> tuple[list[dict[str, Any] | None], float]:
    results: list[dict[str, Any] | None] = []
    cpu = 0.0
    for _page, meta, text in docs:
        start = time.process_time()
        results.append(summarize_page(text, meta, 5, True))
        cpu += time.process_time() - start
    return results, cpu


def judge_page(page: Any, result: dict[str, Any], judge: Any, figures: Counter[str],
               show: set[str]) -> None:
    """Count one summary's function-word tags, repeats, code and language."""
    stop = judge_stop(page.language)
    for kind, items in (("tags", result["tags"]), ("keywords", result["keywords"])):
        flagged = [t for t in items if function_only(t, stop)]
        figures[kind] += len(items)
        figures[f"function {kind}"] += len(flagged)
        if flagged and "tags" in show:
            print(f"  function-word {kind} {page.id} ({page.language}): {flagged}")
        if "alltags" in show:
            print(f"  {kind} {page.language} {page.id}: {items}")
    summary = result["summary"]
    parts = [s for s in _SENTENCES.split(summary) if s.strip()]
    checks = {
        "repeats": any(near(a, b) for i, a in enumerate(parts) for b in parts[i + 1:]),
        "code": has_code(summary),
        "summary": judge.classify(summary)[0] != page.language,
    }
    for name, hit in checks.items():
        figures[name] += hit
        if hit and name in show:
            print(f"  {name} {page.id} ({page.language}): {summary[:300]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show", default="", help="print the pages behind: tags,repeats,"
                                                   "code,language,summary")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    show = set(filter(None, args.show.split(",")))
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    judge = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    pages = load_pages(args.limit)
    docs = extract_all(pages)
    summarize_page("Warm up the summarizer. It reads stop words first.", {}, 5, True)
    results, cpu = summarize_all(docs)
    n = len(pages)
    print(f"{n} pages in {len(Counter(p.language for p in pages))} languages; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    figures: Counter[str] = Counter()
    for (page, meta, _text), result in zip(docs, results, strict=True):
        said = declared(page.html)
        chosen = result["language"] if result else meta.get("language")
        figures["declared right"] += said == page.language
        figures["chosen right"] += chosen == page.language
        if "language" in show and chosen != page.language:
            print(f"  language {page.id}: declared {said}, chosen {chosen}, is {page.language}")
        if result is not None:
            figures["summaries"] += 1
            judge_page(page, result, judge, figures, show)
    f = figures
    print(f"language right, declared only: {f['declared right']}/{n} = "
          f"{100 * f['declared right'] / n:.1f} %")
    print(f"language right, chosen:        {f['chosen right']}/{n} = "
          f"{100 * f['chosen right'] / n:.1f} %")
    for kind in ("tags", "keywords"):
        print(f"function-word {kind}: {f['function ' + kind]}/{f[kind]} = "
              f"{1000 * f['function ' + kind] / max(1, f[kind]):.1f} per 1,000")
    print(f"summaries: {f['summaries']}; with a repeated sentence {f['repeats']}; with code "
          f"{f['code']}; not in the page's language (py3langid) {f['summary']}")
    print(f"summarizer CPU: {1000 * cpu / n:.1f} ms/page")


if __name__ == "__main__":
    main()
