"""The search query language, parsed into safe pieces before anything touches SQL.

Plain words are ANDed; ``"exact phrase"``, ``-word`` (or ``NOT word``), ``a OR b`` and
``prefix*`` work as on the web; ``tag:``, ``site:``, ``lang:``, ``status:``, ``type:``,
``since:``, ``until:`` and ``run:`` filter. The user's text never reaches FTS5 syntax
or SQL as written: every term is re-quoted (:meth:`Query.fts`) and every filter value
becomes a bound parameter (:meth:`Query.where`). A malformed query raises
:class:`QueryError` naming the problem.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError

__all__ = ["FILTERS", "Query", "QueryError", "Term", "fold", "parse_query", "word_tokens"]

FILTERS = ("tag", "site", "lang", "status", "type", "since", "until", "run")
STATUSES = ("ok", "partial", "failed")
TYPES = ("page", "pdf", "video")
MAX_TERMS = 64
MAX_QUERY_CHARS = 4000

_WORD = re.compile(r"[^\W_]+")  # letters and digits, as unicode61 splits
_AGE = re.compile(r"^(\d+)([hdwmy])$")
_AGE_SECONDS = {"h": 3600, "d": 86400, "w": 7 * 86400, "m": 30 * 86400, "y": 365 * 86400}
_FILTER = re.compile(r"^(-?)([A-Za-z_]+):(.*)$", re.DOTALL)


class QueryError(UsageError):
    """A query that cannot be understood; the message names the problem (exit 2)."""


def fold(text: str) -> str:
    """Case and accents folded the way the index's tokenizer folds them."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower())
                   if unicodedata.category(c) != "Mn")


def word_tokens(text: str) -> list[str]:
    """The folded words of ``text``, as the index sees them."""
    return _WORD.findall(fold(text))


@dataclass(frozen=True, slots=True)
class Term:
    """A word (``prefix`` when it ended in ``*``) or a phrase of several words."""

    words: tuple[str, ...]
    prefix: bool = False

    def fts(self) -> str:
        # Every term is a quoted FTS5 string: its words can be no operator or column name.
        return '"' + " ".join(self.words) + '"' + (" *" if self.prefix else "")


@dataclass(slots=True)
class Query:
    """A parsed query: groups of alternatives (ANDed), exclusions and filters."""

    groups: list[list[Term]] = field(default_factory=list)
    excluded: list[Term] = field(default_factory=list)
    filters: list[tuple[str, str, bool]] = field(default_factory=list)
    """(name, value, negated)."""

    @property
    def terms(self) -> list[Term]:
        """Every positive term (for snippets and highlighting)."""
        return [t for group in self.groups for t in group]

    @property
    def has_text(self) -> bool:
        return bool(self.groups)

    def fts(self) -> str:
        """The FTS5 MATCH expression (only when :attr:`has_text`)."""
        parts = [t.fts() if len(g) == 1 and (t := g[0]) else
                 "(" + " OR ".join(x.fts() for x in g) + ")" for g in self.groups]
        expr = " AND ".join(parts)
        for term in self.excluded:
            expr += " NOT " + term.fts()
        return expr

    def fts_excluded(self) -> str:
        """The excluded terms ORed (for a filter-only query: rows to leave out)."""
        return " OR ".join(t.fts() for t in self.excluded)

    def text(self) -> str:
        """The words to embed for a semantic search."""
        return " ".join(" ".join(t.words) for t in self.terms)

    def where(self, alias: str = "d", now: float | None = None) -> tuple[str, list[Any]]:
        """The filters as an SQL condition on ``search_docs`` and its bound parameters."""
        conds: list[str] = []
        params: list[Any] = []
        for name, value, negated in self.filters:
            cond, values = _filter_sql(alias, name, value, now)
            conds.append(f"NOT ({cond})" if negated else cond)
            params += values
        return (" AND ".join(conds) or "1"), params


def _filter_sql(a: str, name: str, value: str, now: float | None) -> tuple[str, list[Any]]:
    v = value.strip()
    low = v.lower()
    if name == "tag":
        return f"instr({a}.tags, ?) > 0", ["\x1f" + fold(v) + "\x1f"]
    if name == "site":
        host = low.removeprefix("www.")
        return (f"({a}.host = ? OR {a}.host LIKE ? ESCAPE '\\' OR lower({a}.site) = ?)",
                [host, "%." + _like_escape(host), low])
    if name == "lang":
        return f"({a}.lang = ? OR {a}.lang LIKE ? ESCAPE '\\')", [low, _like_escape(low) + "-%"]
    if name == "status":
        return f"{a}.status = ?", [low]
    if name == "type":
        return f"{a}.type = ?", [low]
    if name == "run":
        return f"instr({a}.runs, ?) > 0", [f" {int(v)} "]
    when = parse_when(v, name, now)
    return (f"{a}.saved >= ?", [when]) if name == "since" else (f"{a}.saved < ?", [when])


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_when(value: str, name: str, now: float | None = None) -> float:
    """``2024``, ``2024-05``, ``2024-05-17`` (local time) or an age (``30d``, ``6m``, ``1y``).

    ``until:`` a date means the end of that year, month or day.
    """
    now = time.time() if now is None else now
    if m := _AGE.match(value.lower()):
        return now - int(m.group(1)) * _AGE_SECONDS[m.group(2)]
    parts = value.split("-")
    try:
        if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
            raise ValueError
        nums = [int(p) for p in parts] + [1] * (3 - len(parts))
        start = dt.datetime(nums[0], nums[1], nums[2])
    except ValueError:
        raise QueryError(f"{name}:{value}: use a date (2024, 2024-05, 2024-05-17) or an age "
                         "(30d, 6m, 1y)") from None
    if name == "until":
        if len(parts) == 1:
            start = start.replace(year=start.year + 1)
        elif len(parts) == 2:
            start = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        else:
            start += dt.timedelta(days=1)
    return start.timestamp()


def _tokens(text: str) -> list[tuple[str, bool]]:
    """Split into (token, was_quoted); a quote left open is an error."""
    out: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        start = i
        while i < n and not text[i].isspace() and text[i] != '"':
            i += 1
        prefix = text[start:i]
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QueryError('unbalanced quote: close the phrase with another "')
            # -"a phrase" and tag:"two words" keep their prefix.
            out.append((prefix + "\x00" + text[i + 1:end], True))
            i = end + 1
        else:
            out.append((prefix, False))
    return out


def _check_filter(name: str, value: str) -> None:
    if not value.strip():
        raise QueryError(f"{name}: needs a value, like {name}:{_EXAMPLE[name]}")
    low = value.strip().lower()
    if name == "status" and low not in STATUSES:
        raise QueryError(f"status:{value}: use one of {', '.join(STATUSES)}")
    if name == "type" and low not in TYPES:
        raise QueryError(f"type:{value}: use one of {', '.join(TYPES)}")
    if name == "run" and not low.isdigit():
        raise QueryError(f"run:{value}: use a run number (see `bookmark-enrich history`)")
    if name in ("since", "until"):
        parse_when(value.strip(), name)


_EXAMPLE = {"tag": "python", "site": "example.com", "lang": "en", "status": "ok",
            "type": "pdf", "since": "2024-05", "until": "30d", "run": "3"}


def _term(token: str, quoted: bool) -> Term | None:
    if quoted:
        words = tuple(word_tokens(token))
        return Term(words) if words else None
    prefix = token.endswith("*")
    words = tuple(word_tokens(token.rstrip("*")))
    if not words:
        return None
    # "e-mail" is two words to the index: a phrase of them matches it.
    return Term(words, prefix)


def parse_query(text: str) -> Query:
    """Parse ``text``; raise :class:`QueryError` with a one-line reason when it is malformed."""
    clean = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    if len(clean) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is too long ({len(clean)} characters; at most "
                         f"{MAX_QUERY_CHARS})")
    if not clean.strip():
        raise QueryError("empty query: give words to look for, or a filter like tag:python")
    query = Query()
    pending_or = False
    negate_next = False
    for raw, quoted in _tokens(clean):
        head, _, phrase = raw.partition("\x00") if quoted else (raw, "", "")
        if not quoted and raw in ("OR", "AND", "NOT"):
            if raw == "OR":
                if not query.groups or pending_or or negate_next:
                    raise QueryError("OR needs a word on each side (a OR b)")
                pending_or = True
            elif raw == "NOT":
                negate_next = True
            continue
        negated = negate_next
        negate_next = False
        body = phrase if quoted else raw
        if head.startswith("-") and (quoted or len(head) > 1):
            negated, head = True, head[1:]
            body = phrase if quoted else head
        m = _FILTER.match(head) if ":" in head else None
        if m is not None and not m.group(1):
            name, value = m.group(2).lower(), phrase if quoted else m.group(3)
            if name in FILTERS:
                if pending_or:
                    raise QueryError("OR joins words, not filters")
                _check_filter(name, value)
                query.filters.append((name, value.strip(), negated))
                continue
            if quoted or not value.startswith("//"):  # a URL's words are searched
                raise QueryError(f"unknown filter {name}: (known: "
                                 f"{', '.join(f + ':' for f in FILTERS)})")
        if quoted and head:
            body = head + " " + phrase
        term = _term(body, quoted)
        if term is None:
            if pending_or:
                raise QueryError("OR needs a word on each side (a OR b)")
            continue  # punctuation only: nothing the index could hold
        if negated:
            if pending_or:
                raise QueryError("OR cannot join an excluded word")
            query.excluded.append(term)
        elif pending_or:
            query.groups[-1].append(term)
            pending_or = False
        else:
            query.groups.append([term])
    if pending_or:
        raise QueryError("OR needs a word on each side (a OR b)")
    if negate_next:
        raise QueryError("NOT needs a word after it")
    count = len(query.terms) + len(query.excluded)
    if count > MAX_TERMS:
        raise QueryError(f"too many words ({count}; at most {MAX_TERMS}): "
                         "quote a phrase or shorten the query")
    if not query.groups and not query.filters:
        raise QueryError("nothing to look for: give at least one word (not only -words) "
                         "or a filter like tag:python")
    return query
