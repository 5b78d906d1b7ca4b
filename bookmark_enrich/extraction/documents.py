"""Documents (PDF, plain text, Markdown, reStructuredText): which bodies are documents,
and their text and metadata. Pure functions; the PDF work runs in pool workers.

The kind comes from the content type the server sent, then the URL's extension, and
for the generic types servers send for downloads (``application/octet-stream``) from
the first bytes: a PDF starts with ``%PDF-``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = [
    "DOCUMENT_TYPES",
    "DocumentError",
    "document_kind",
    "extract_text",
    "file_name",
    "may_be_document",
    "prose_words",
]

DOCUMENT_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "text": "text/plain",
    "markdown": "text/markdown",
    "rst": "text/x-rst",
}
"""Each document kind and the content type the output names it by."""

_TYPES = {
    "application/pdf": "pdf", "application/x-pdf": "pdf", "application/acrobat": "pdf",
    "text/pdf": "pdf", "text/x-pdf": "pdf",
    "text/plain": "text", "text/markdown": "markdown", "text/x-markdown": "markdown",
    "text/x-rst": "rst", "text/prs.fallenstein.rst": "rst",
}
_GENERIC = {"", "application/octet-stream", "binary/octet-stream", "application/download",
            "application/force-download", "application/x-download", "application/unknown"}
_EXTENSIONS = {".pdf": "pdf", ".txt": "text", ".text": "text", ".md": "markdown",
               ".markdown": "markdown", ".rst": "rst"}
_TEXT_KINDS = ("text", "markdown", "rst")
_SNIFF = 1024
_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+_:.])\1{2,}\s*$")
_SETEXT = re.compile(r"^(=+|-+)\s*$")
_ATX = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_MAX_TITLE = 300


class DocumentError(Exception):
    """A document that cannot be read; ``reason`` is a reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _extension(url: str) -> str:
    path = unquote(urlsplit(url).path).lower()
    name = path.rsplit("/", 1)[-1]
    return name[name.rfind("."):] if "." in name else ""


def may_be_document(content_type: str | None) -> bool:
    """Whether a body of this type must be read to see if it is a document."""
    media = _media_type(content_type)
    return media in _TYPES or media in _GENERIC


def document_kind(content_type: str | None, url: str, head: bytes = b"") -> str | None:
    """``pdf``, ``text``, ``markdown``, ``rst``, or None for HTML and everything else."""
    if head.lstrip(b"\x00\t\n\r\x0c ")[:5] == b"%PDF-":
        return "pdf"  # whatever the server said: no HTML page starts like that
    media = _media_type(content_type)
    kind = _TYPES.get(media)
    ext = _EXTENSIONS.get(_extension(url))
    if kind == "text":
        return ext if ext in _TEXT_KINDS else "text"
    if kind is not None:
        return kind
    if media in _GENERIC and ext in _TEXT_KINDS and b"\x00" not in head[:_SNIFF]:
        return ext
    return None


def file_name(url: str) -> str | None:
    """The last path segment of ``url``, decoded (the title of last resort)."""
    name = unquote(urlsplit(url).path).rstrip("/").rsplit("/", 1)[-1].strip()
    return name or None


def prose_words(text: str) -> int:
    """Words made of letters in ``text`` (a title needs at least one)."""
    return sum(1 for w in text.split() if sum(c.isalpha() for c in w) >= 2)


# ---------------------------------------------------------------------- text
def _decode(body: bytes, charset: str | None) -> str:
    for encoding in (charset, "utf-8"):
        if encoding:
            try:
                return body.decode(encoding).lstrip("\ufeff")
            except (LookupError, UnicodeDecodeError):
                pass
    from charset_normalizer import from_bytes

    best = from_bytes(body[:200_000]).best()
    encoding = best.encoding if best is not None else "latin-1"
    return body.decode(encoding, errors="replace")


def _front_matter(lines: list[str]) -> tuple[str | None, int]:
    """A YAML front matter block's ``title:`` and the first line after the block."""
    if not lines or lines[0].strip() != "---":
        return None, 0
    title = None
    for i, line in enumerate(lines[1:60], 1):
        if line.strip() in ("---", "..."):
            return title, i + 1
        m = re.match(r"^title:\s*(.+?)\s*$", line)
        if m and title is None:
            title = m.group(1).strip("\"' ") or None
    return None, 0


def _heading(lines: list[str], kind: str) -> str | None:
    """The first Markdown/reST heading, else the first line of text."""
    first: str | None = None
    for i, raw in enumerate(lines[:400]):
        line = raw.strip()
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if kind != "text":
            atx = _ATX.match(raw) if kind == "markdown" else None
            if atx:
                return atx.group(1)
            if line and not _RST_ADORNMENT.match(line) and (
                    (kind == "markdown" and _SETEXT.match(nxt)) or
                    (kind == "rst" and _RST_ADORNMENT.match(nxt) and len(nxt) >= len(line))):
                return line
        if first is None and line and not _RST_ADORNMENT.match(line):
            first = line
            if kind == "text":
                break
    return first


def extract_text(body: bytes, kind: str, url: str, charset: str | None = None,
                 detect: Callable[[str], str | None] | None = None,
                 ) -> tuple[dict[str, Any], str]:
    """A plain-text, Markdown or reST document as it is; the title from its first heading."""
    if b"\x00" in body[:_SNIFF] and not body.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DocumentError("damaged_document", "binary data where text was expected")
    text = _decode(body, charset).replace("\r\n", "\n").replace("\r", "\n").strip()
    lines = text.split("\n")
    title, start = _front_matter(lines) if kind == "markdown" else (None, 0)
    title = title or _heading(lines[start:], kind) or file_name(url)
    if title and len(title) > _MAX_TITLE:
        title = title[:_MAX_TITLE].rsplit(" ", 1)[0] + "…"
    meta = {"title": title, "content_type": DOCUMENT_TYPES[kind],
            "language": detect(text[:3000]) if detect and text else None,
            "word_count": len(text.split())}
    return meta, text
