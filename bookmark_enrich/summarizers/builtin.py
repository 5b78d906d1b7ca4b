"""The built-in offline summarizer: no server, no model download.

- **Language**: the extract stage's ``language`` (:func:`language.choose_language`:
  the text's when the detector is confident, else the declared one); chosen here the
  same way when the page came without one.
- **Summary**: the 2–3 most central sentences of the extracted text (TextRank over
  sentences, in the order the page has them), or the page's own description when the
  text has fewer than two real sentences and the description is a good one. Only prose
  in the page's language takes part (:func:`language.is_prose`: no code, template
  expressions, consent notices, menus or link lists), and a sentence that repeats
  another one, word for word or nearly, counts once.
- **Keywords**: YAKE over the title, the description and the most central sentences,
  with the function words of the page's language (its stop list, or the page's own
  frequent short words when the language has none); a phrase made only of function
  words is dropped.
- **Tags**: the page's own metadata (categories, article tags, keywords meta) first,
  then the top short keywords, normalized with :func:`tags.normalize_tags` like the
  LLM's; never only function words, never a lower-case word of one or two characters
  (an upper-case acronym the page uses, such as ``AI``, stays).

The CPU part runs in the shared process pool (:func:`workers.run_cpu`), so the event
loop never blocks. YAKE costs more than the rest together, so it reads at most
:data:`KEYWORD_CHARS` characters of the text (bench/bench_builtin.py).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.metadata import version
from typing import Any

from ..errors import StageError
from ..language import (
    choose_language,
    fingerprint,
    frequent_words,
    function_words,
    is_function_phrase,
    is_prose,
    primary_code,
)
from ..models import fingerprint_of
from ..settings import Settings
from ..tags import is_acronym, is_short_word, normalize_tags, tag_identity
from ..workers import BrokenProcessPool, run_cpu
from .base import Summary

__all__ = [
    "BUILTIN_VERSION",
    "BuiltinSummarizer",
    "rank_sentences",
    "split_sentences",
    "summarize_page",
]

BUILTIN_VERSION = "2"
SUMMARY_SENTENCES = 3
MAX_KEYWORDS = 10
MAX_RANKED_SENTENCES = 300
"""TextRank is quadratic in sentences: a book-length page is ranked on its first 300."""
KEYWORD_CHARS = 800
"""YAKE reads the title, the description and the most central sentences up to this
many characters: they carry the page's topics, and YAKE costs about 60 µs a word."""
MAX_SUMMARY_CHARS = 900
_MIN_WORDS = 5
_MAX_WORDS = 80
_MIN_CJK_CHARS = 12
_MAX_CJK_TAG = 8
"""Longer runs of CJK characters are clauses, not tags."""

# ------------------------------------------------------------------ sentences
_BOUNDARY = re.compile(
    r"(?:(?<=[.!?…])|(?<=[.!?…][\"'»”’)\]]))\s+(?=[\"'«„“‘(\[¿¡]?[^\W_a-z])"
    r"|(?<=[。！？])"
)
_ABBREV = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "eg", "ie", "no", "nr", "fig", "vol",
    "ca", "approx", "bzw", "usw", "vgl", "ggf", "inkl", "zb", "mme", "mlle", "cf", "env", "sr",
    "sra", "dra", "jr", "sen", "gen",
})
_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_YAKE_CODES = {"cs": "cz"}
"""ISO 639-1 codes YAKE spells its own way."""
_NON_WORD = re.compile(r"[\W_]+")
_END = re.compile(r"[.!?…。！？][\"'»”’)\]]*$")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: paragraphs split at ``. ! ? …`` (and CJK stops).

    A stop after a known abbreviation or a single letter (``z. B.``, ``Dr.``) does not
    end a sentence.
    """
    out: list[str] = []
    for para in text.splitlines():
        para = " ".join(para.split())
        if not para:
            continue
        start = 0
        for match in _BOUNDARY.finditer(para):
            before = para[start:match.start()].rstrip()
            last = before.rsplit(" ", 1)[-1].rstrip(".").lower()
            if before.endswith(".") and (len(last) <= 1 or last in _ABBREV):
                continue
            if before:
                out.append(before)
            start = match.end()
        tail = para[start:].strip()
        if tail:
            out.append(tail)
    return out


def _is_sentence(sentence: str) -> bool:
    """A real sentence, not a heading, a caption or a menu item."""
    cjk = len(_CJK.findall(sentence))
    if cjk >= _MIN_CJK_CHARS:  # a heading or a menu row has no stop unless it is long
        return bool(_END.search(sentence)) or cjk >= 4 * _MIN_CJK_CHARS
    words = len(sentence.split())
    if words < _MIN_WORDS or words > _MAX_WORDS or not _WORD.search(sentence):
        return False
    # Headings and captions rarely end with a stop; a long run-on paragraph still counts.
    return bool(_END.search(sentence)) or words >= 4 * _MIN_WORDS


# ------------------------------------------------------------------- TextRank
def _stem(word: str) -> str:
    # A crude prefix stem: enough for "starter"/"starters", "Kräuter"/"Kräutern".
    return word[:6]


def _rank(sentences: list[str], stop: frozenset[str]) -> list[float]:
    """TextRank scores: PageRank over the sentence-similarity graph."""
    import numpy as np

    bags: list[set[str]] = []
    for sentence in sentences:
        words = [w.lower() for w in _WORD.findall(sentence)]
        bag = {_stem(w) for w in words if w not in stop and len(w) > 1}
        if not bag:  # CJK: no spaces between words, compare characters
            bag = set(_CJK.findall(sentence))
        bags.append(bag)
    vocab: dict[str, int] = {}
    for bag in bags:
        for term in bag:
            vocab.setdefault(term, len(vocab))
    n = len(sentences)
    if not vocab or n < 2:
        return [1.0] * n
    matrix = np.zeros((n, len(vocab)), dtype=np.float32)
    for i, bag in enumerate(bags):
        matrix[i, [vocab[t] for t in bag]] = 1.0
    overlap = matrix @ matrix.T
    sizes = np.log(np.maximum(matrix.sum(axis=1), 2.0))
    weights = overlap / (sizes[:, None] + sizes[None, :])
    np.fill_diagonal(weights, 0.0)
    totals = weights.sum(axis=1, keepdims=True)
    # A sentence sharing no word with any other spreads its vote evenly.
    transition = np.where(totals > 0, weights / np.where(totals > 0, totals, 1.0), 1.0 / n)
    scores = np.full(n, 1.0 / n)
    for _ in range(50):
        updated = 0.15 / n + 0.85 * (transition.T @ scores)
        if float(np.abs(updated - scores).sum()) < 1e-6:
            scores = updated
            break
        scores = updated
    return [float(s) for s in scores]


def rank_sentences(sentences: list[str], language: str | None) -> list[float]:
    """How central each sentence is (TextRank, as the summary picks them)."""
    stop = function_words(language) or frequent_words(sentences)
    return _rank(sentences, stop)


def _units(sentence: str) -> frozenset[str]:
    """What two sentences are compared by: their words, or their characters for CJK."""
    lowered = sentence.casefold()
    if _CJK.search(lowered):
        return frozenset(_CJK.findall(lowered))
    return frozenset(_WORD.findall(lowered))


def _near(a: frozenset[str], b: frozenset[str]) -> bool:
    """Near-identical: the same words but for a few (Jaccard ≥ 0.8), or the shorter one
    all but contained in the longer (a teaser that repeats the first paragraph)."""
    if not a or not b:
        return False
    shared = len(a & b)
    return shared >= 0.8 * len(a | b) or (min(len(a), len(b)) >= 5 and
                                          shared >= 0.9 * min(len(a), len(b)))


def _key(sentence: str) -> str:
    """A sentence without case, spaces and punctuation: how repeats are found."""
    return _NON_WORD.sub("", sentence.casefold())


def _unique(sentences: list[str], title: object) -> list[str]:
    """Sentences in page order, each said once and none repeating the title: a repeat
    (same words, any case or punctuation) is dropped; nearly-identical ones are kept
    apart when choosing."""
    seen = {_key(title)} if isinstance(title, str) else set()
    out: list[str] = []
    for sentence in sentences:
        key = _key(sentence)
        if key and key not in seen:
            seen.add(key)
            out.append(sentence)
    return out


def _central(sentences: list[str], stop: frozenset[str]) -> tuple[str, str]:
    """The summary (the most central sentences within MAX_SUMMARY_CHARS, none repeating
    another) and the text YAKE reads (central sentences up to KEYWORD_CHARS), both in
    page order."""
    pool = sentences[:MAX_RANKED_SENTENCES]
    scores = _rank(pool, stop)
    want = SUMMARY_SENTENCES if len(pool) >= 6 else 2
    order = sorted(range(len(pool)), key=lambda i: (-scores[i], i))
    chosen: list[int] = []
    units: list[frozenset[str]] = []
    size = 0
    for i in order:
        if len(chosen) >= want:
            break
        if chosen and size + len(pool[i]) > MAX_SUMMARY_CHARS:
            continue
        mine = _units(pool[i])
        if any(_near(mine, other) for other in units):
            continue
        chosen.append(i)
        units.append(mine)
        size += len(pool[i]) + 1
    central: list[int] = []
    size = 0
    for i in order:
        if size + len(pool[i]) > KEYWORD_CHARS and central:
            break
        central.append(i)
        size += len(pool[i]) + 1
    return (" ".join(pool[i] for i in sorted(chosen)),
            "\n".join(pool[i] for i in sorted(central)))


def _good_description(description: object, title: object, function: frozenset[str],
                      foreign: frozenset[str]) -> str | None:
    """The page's description when it reads like a summary, not a teaser, a slogan or
    a consent notice."""
    if not isinstance(description, str):
        return None
    text = " ".join(description.split())
    if isinstance(title, str) and tag_identity(text) == tag_identity(title):
        return None
    if text.endswith(("...", "…")) and len(text.split()) < 12:
        return None
    if not is_prose(text, function, foreign):
        return None
    cjk = len(_CJK.findall(text))
    if cjk >= 20 or len(text.split()) >= 8:
        return text[:MAX_SUMMARY_CHARS]
    return None


# ------------------------------------------------------------------- keywords
@lru_cache(maxsize=16)
def _extractor(language: str, stop: frozenset[str]) -> Any:
    import yake

    # n and the dedup limit go by position: newer yake renamed dedupLim to dedup_lim.
    return yake.KeywordExtractor(_YAKE_CODES.get(language, language), 2, 0.7, top=20,
                                 stopwords=set(stop))


def _keywords(text: str, language: str, stop: frozenset[str]) -> list[str]:
    """YAKE's best phrases, none made only of function words; those the text repeats
    come first (a phrase seen once is more often an accident of wording than a topic)."""
    if not text.strip():
        return []
    try:
        found = _extractor(language, stop).extract_keywords(text)
    except Exception:  # YAKE on odd input (all digits, one token) is not worth a failure
        return []
    lowered = text.lower()
    repeated: list[str] = []
    once: list[str] = []
    seen: set[str] = set()
    for phrase, _score in found:
        phrase = " ".join(str(phrase).split()).strip("#,;:.!?\"'()[]")
        ident = tag_identity(phrase)
        if len(phrase) < 3 or not _WORD.search(phrase) or ident in seen or \
                is_function_phrase(phrase, stop) or len(_CJK.findall(phrase)) > 2 * _MAX_CJK_TAG:
            continue
        seen.add(ident)
        (repeated if lowered.count(phrase.lower()) >= 2 else once).append(phrase)
    return (repeated + once)[:MAX_KEYWORDS]


def _meta_tags(meta: dict[str, Any]) -> list[str]:
    tags: list[str] = []
    for key in ("categories", "page_tags", "keywords"):
        value = meta.get(key)
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            # A keywords meta arrives as one "a, b, c" string inside the list.
            tags.extend(part for v in value if isinstance(v, str) for part in v.split(","))
    return tags


def _meaningful(tag: str, stop: frozenset[str], text: str) -> bool:
    """A tag that says something: not only function words, not a lower-case word of one
    or two characters; a short acronym only when the page writes it so (``AI``)."""
    if not tag or is_short_word(tag) or len(_CJK.findall(tag)) > _MAX_CJK_TAG:
        return False
    if is_acronym(tag):
        return re.search(rf"(?<!\w){re.escape(tag)}(?!\w)", text) is not None
    return not is_function_phrase(tag, stop)


# --------------------------------------------------------------- the worker
def summarize_page(text: str, meta: dict[str, Any], max_tags: int,
                   lowercase: bool) -> dict[str, Any] | None:
    """Summary, keywords, tags and language of one page; None when there is nothing to say.

    Pure and picklable: runs in the process pool.
    """
    title = meta.get("title")
    language = primary_code(meta.get("language")) or choose_language(
        text, None, title=title, description=meta.get("description"))
    # A table cell's borders are not part of its sentence.
    candidates = [c for c in (s.strip("| ") for s in split_sentences(text)) if _is_sentence(c)]
    stop = function_words(language) or frequent_words(candidates)
    # English is what other-language pages quote or leave untranslated most.
    foreign = function_words("en") if language != "en" else frozenset()
    description = _good_description(meta.get("description"), title, stop, foreign)
    sentences = _unique([s for s in candidates if is_prose(s, stop, foreign)], title)
    # Without sentences the text is form labels and captions: keywords from the head only.
    body = ""
    if len(sentences) >= 2:
        summary, body = _central(sentences, stop)
    elif description:
        summary = description
        body = sentences[0] if sentences else ""
    elif sentences:
        summary = body = sentences[0][:MAX_SUMMARY_CHARS]
    else:
        return None
    head = "\n".join(s for s in (title, description) if isinstance(s, str))
    keywords = _keywords(f"{head}\n{body}", language or "en", stop)
    short = [k for k in keywords if len(k.split()) <= 2]
    page = f"{head}\n{text}"
    # Breadcrumb marks around a category ("› Gebäck") are not part of it.
    cleaned = [" ".join(t.split()).strip("#›>»|/·•- ") for t in [*_meta_tags(meta), *short]]
    tags = normalize_tags([t for t in cleaned if _meaningful(t, stop, page)],
                          limit=max_tags, lowercase=lowercase)
    return {"summary": summary, "keywords": keywords, "tags": tags, "language": language}


class BuiltinSummarizer:
    """The Summarizer protocol, offline: TextRank summary, YAKE keywords, metadata tags."""

    name = "builtin"
    reads_description = True
    """Pages without text still get a summary from their description (see the stage)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pages = 0

    def fingerprint(self) -> str:
        s = self.settings
        return fingerprint_of("builtin", BUILTIN_VERSION, version("yake"), fingerprint(),
                              s.max_tags, s.lowercase_tags)

    async def preflight(self) -> None:
        """Nothing to check: no server, no model."""

    async def summarize(self, text: str, meta: dict[str, Any], *,
                        existing_tags: list[str]) -> Summary:
        """Summarize one page in the process pool; StageError ``no_content`` when it has
        neither sentences nor a usable description."""
        try:
            result = await run_cpu(self.settings.extract_processes, summarize_page,
                                   text, meta, self.settings.max_tags,
                                   self.settings.lowercase_tags)
        except BrokenProcessPool:
            raise StageError("summarize_error", "the summarizer worker died") from None
        except Exception as exc:  # a bug on one hostile page costs that page only
            raise StageError("summarize_error", f"{type(exc).__name__}: {exc}") from None
        if result is None:
            raise StageError("no_content", "no sentences and no description to summarize")
        self.pages += 1
        # A tag the collection already has keeps the spelling it has there.
        known = {tag_identity(t): t for t in existing_tags}
        tags = normalize_tags([known.get(tag_identity(t), t) for t in result["tags"]],
                              limit=self.settings.max_tags,
                              lowercase=self.settings.lowercase_tags)
        return Summary(summary=result["summary"], keywords=result["keywords"], tags=tags,
                       language=result["language"], summarizer="builtin", model=None)

    def metrics(self) -> dict[str, Any]:
        """Pages summarized offline (for the end-of-run summary)."""
        return {"built-in summaries": self.pages} if self.pages else {}

    async def aclose(self) -> None:
        """Nothing to release: the process pool is shared."""
