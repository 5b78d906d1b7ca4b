"""The built-in offline summarizer: no server, no model download.

- **Summary**: the 2–3 most central sentences of the extracted text (TextRank over
  sentences, in the order the page has them), or the page's own description when the
  text has fewer than two real sentences and the description is a good one.
- **Keywords**: YAKE over the title, the description and the most central sentences,
  with the stop words of the page's language (detected from stop words when the page
  does not say).
- **Tags**: the page's own metadata (categories, article tags, keywords meta) first,
  then the top short keywords, normalized with :func:`tags.normalize_tags` like the
  LLM's.

The CPU part runs in the shared process pool (:func:`workers.run_cpu`), so the event
loop never blocks. YAKE costs more than the rest together, so it reads at most
:data:`KEYWORD_CHARS` characters of the text (bench/bench_builtin.py).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from ..errors import StageError
from ..models import fingerprint_of
from ..settings import Settings
from ..tags import normalize_tags, tag_identity
from ..workers import BrokenProcessPool, run_cpu
from .base import Summary

__all__ = [
    "BUILTIN_VERSION",
    "BuiltinSummarizer",
    "detect_language",
    "split_sentences",
    "summarize_page",
]

BUILTIN_VERSION = "1"
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
    if cjk >= _MIN_CJK_CHARS:
        return True
    words = len(sentence.split())
    if words < _MIN_WORDS or words > _MAX_WORDS or not _WORD.search(sentence):
        return False
    # Headings and captions rarely end with a stop; a long run-on paragraph still counts.
    return bool(_END.search(sentence)) or words >= 4 * _MIN_WORDS


# ------------------------------------------------------------------- language
_STOPWORD_DIR = "core/StopwordsList"
_YAKE_CODES = {"cs": "cz"}
"""ISO 639-1 codes YAKE spells its own way."""
_DETECTABLE = ("en", "de", "fr", "es", "it", "pt", "nl", "sv", "da", "no", "pl", "fi", "ru")


@lru_cache(maxsize=64)
def _stopwords(language: str) -> frozenset[str]:
    """YAKE's stop word list for ``language`` (empty when it has none)."""
    import yake

    code = _YAKE_CODES.get(language, language)
    path = Path(yake.__file__).parent / _STOPWORD_DIR / f"stopwords_{code}.txt"
    try:
        words = path.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return frozenset()
    return frozenset(w.lower() for w in words)


def _primary(language: object) -> str | None:
    if not isinstance(language, str) or not language.strip():
        return None
    code = language.strip().lower().replace("_", "-").split("-")[0]
    return code if re.fullmatch(r"[a-z]{2,3}", code) else None


def detect_language(text: str) -> str | None:
    """The language whose stop words cover most of the text's words, if clear enough."""
    words = [w.lower() for w in _WORD.findall(text[:3000])]
    if len(words) < 8:
        return None
    best, best_hits = None, 0
    for code in _DETECTABLE:
        stop = _stopwords(code)
        hits = sum(1 for w in words if w in stop)
        if hits > best_hits:
            best, best_hits = code, hits
    return best if best_hits >= 0.15 * len(words) else None


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


def _central(sentences: list[str], stop: frozenset[str]) -> tuple[str, str]:
    """The summary (the most central sentences within MAX_SUMMARY_CHARS) and the text
    YAKE reads (central sentences up to KEYWORD_CHARS), both in page order."""
    pool = sentences[:MAX_RANKED_SENTENCES]
    scores = _rank(pool, stop)
    want = SUMMARY_SENTENCES if len(pool) >= 6 else 2
    order = sorted(range(len(pool)), key=lambda i: (-scores[i], i))
    chosen: list[int] = []
    size = 0
    for i in order:
        if len(chosen) >= want:
            break
        if chosen and size + len(pool[i]) > MAX_SUMMARY_CHARS:
            continue
        chosen.append(i)
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


def _good_description(description: object, title: object) -> str | None:
    """The page's description when it reads like a summary, not a teaser or a slogan."""
    if not isinstance(description, str):
        return None
    text = " ".join(description.split())
    if isinstance(title, str) and tag_identity(text) == tag_identity(title):
        return None
    if text.endswith(("...", "…")) and len(text.split()) < 12:
        return None
    cjk = len(_CJK.findall(text))
    if cjk >= 20 or len(text.split()) >= 8:
        return text[:MAX_SUMMARY_CHARS]
    return None


# ------------------------------------------------------------------- keywords
@lru_cache(maxsize=16)
def _extractor(language: str) -> Any:
    import yake

    stop = _stopwords(language) or _stopwords("en")
    # n and the dedup limit go by position: newer yake renamed dedupLim to dedup_lim.
    return yake.KeywordExtractor(_YAKE_CODES.get(language, language), 2, 0.7, top=20,
                                 stopwords=set(stop))


def _keywords(text: str, language: str) -> list[str]:
    """YAKE's best phrases; those the text repeats come first (a phrase seen once is
    more often an accident of wording than a topic)."""
    if not text.strip():
        return []
    try:
        found = _extractor(language).extract_keywords(text)
    except Exception:  # YAKE on odd input (all digits, one token) is not worth a failure
        return []
    lowered = text.lower()
    repeated: list[str] = []
    once: list[str] = []
    seen: set[str] = set()
    for phrase, _score in found:
        phrase = " ".join(str(phrase).split()).strip("#,;:.!?\"'()[]")
        ident = tag_identity(phrase)
        # "d'un", "l'on": an elided stop word is still a stop word.
        bare = re.split(r"['’]", phrase.lower())[-1]
        if len(phrase) < 3 or not _WORD.search(phrase) or ident in seen or \
                len(bare) < 2 or bare in _stopwords(language):
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


# --------------------------------------------------------------- the worker
def summarize_page(text: str, meta: dict[str, Any], max_tags: int,
                   lowercase: bool) -> dict[str, Any] | None:
    """Summary, keywords, tags and language of one page; None when there is nothing to say.

    Pure and picklable: runs in the process pool.
    """
    title = meta.get("title")
    description = _good_description(meta.get("description"), title)
    language = _primary(meta.get("language")) or detect_language(
        " ".join(filter(None, [text, description])))
    stop = _stopwords(language) if language else frozenset()
    title_id = tag_identity(title) if isinstance(title, str) else None
    sentences = [s for s in split_sentences(text)
                 if _is_sentence(s) and tag_identity(s) != title_id]
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
    keywords = _keywords(f"{head}\n{body}", language or "en")
    short = [k for k in keywords if len(k.split()) <= 2]
    tags = normalize_tags([*_meta_tags(meta), *short], limit=max_tags, lowercase=lowercase)
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
        return fingerprint_of("builtin", BUILTIN_VERSION, version("yake"), s.max_tags,
                              s.lowercase_tags)

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
