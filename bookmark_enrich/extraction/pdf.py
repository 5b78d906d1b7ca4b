"""Text and metadata of a PDF through PDFium (pypdfium2); runs inside pool workers.

Only the page content and the metadata are read: no form environment is set up
(so no JavaScript runs), embedded files and attachments are never opened, and no
link, launch action or external stream is followed. PDFium parses untrusted
input in C, so callers run this in a worker process under a time limit.
"""

from __future__ import annotations

import ctypes
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .documents import DocumentError, file_name, prose_words

__all__ = ["Line", "extract_pdf", "pdf_date"]

_BAND = 0.1
"""Running headers and footers live in the outer tenth of the page height."""
_EOF_WINDOW = 1024
"""Readers look for %%EOF in the last 1024 bytes (PDF 1.7, implementation note 18)."""
_MIN_TEXT_CHARS = 20
_PAGE_NUMBER = re.compile(
    r"^(?:page\s+)?[-–—(\[]?\s*(?:\d{1,4}|[ivxlcdm]{1,7})\s*[-–—)\]]?"
    r"(?:\s*(?:/|of|von|de|sur)\s*\d{1,4})?$", re.IGNORECASE)
_PAGE_COUNTER = re.compile(r"(?:^|\s)(\d{1,4})\s*/\s*(\d{1,4})$")
_STAMP = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4},?\s+\d{1,2}:\d{2}(?:\s*[AP]M)?\s*",
                    re.IGNORECASE)
_HYPHENS = ("-", "\u00ad", "\x02", "\u2010")
_LETTER = re.compile(r"[^\W\d_]")
_SOFT_HYPHEN = re.compile("[\ufffe\u00ad\x02](?=\\w)")
"""PDFium marks a hyphen that breaks a word at a line end with U+FFFE and joins the line."""
_JUNK_TITLE = re.compile(
    r"^(?:untitled(?:[-\s]?\d+)?|title|document\d*|slide \d+|presentation\d*|"
    r"microsoft word - .*|.*\.(?:docx?|pdf|dvi|tex|indd|ps|qxd|odt|rtf|pptx?|xlsx?))$",
    re.IGNORECASE)
_NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
}
_MAX_XMP = 1 << 20


@dataclass(slots=True)
class Line:
    """One text line of a page, with where it sits (PDF units, y grows upwards)."""

    text: str
    top: float
    bottom: float
    size: float
    """The font size as set on the page (see :func:`_font_size`)."""
    upright: bool


# ------------------------------------------------------------------ metadata
def pdf_date(value: str | None) -> str | None:
    """``D:YYYYMMDDHHmmSS+HH'mm'`` as ISO 8601 (as much of it as is given)."""
    if not value:
        return None
    m = re.match(r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?"
                 r"(?:([Zz+-])(\d{2})?'?(\d{2})?'?)?", value.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, sign, tzh, tzm = m.groups()
    if month is None or not 1 <= int(month) <= 12:
        return year
    if day is None or not 1 <= int(day) <= 31:
        return f"{year}-{month}"
    date = f"{year}-{month}-{day}"
    if hour is None or int(hour) > 23 or (minute and int(minute) > 59):
        return date
    stamp = f"{date}T{hour}:{minute or '00'}:{second or '00'}"
    if sign in ("Z", "z"):
        return stamp + "Z"
    if sign in ("+", "-") and tzh:
        return f"{stamp}{sign}{tzh}:{tzm or '00'}"
    return stamp


def _xmp_packet(body: bytes) -> ET.Element | None:
    """The document's XMP packet when it is stored uncompressed (as the spec advises)."""
    best: ET.Element | None = None
    start = body.find(b"<x:xmpmeta")
    while start != -1:
        end = body.find(b"</x:xmpmeta>", start, start + _MAX_XMP)
        if end == -1:
            return best
        packet = body[start:end + len(b"</x:xmpmeta>")]
        if b"<!DOCTYPE" not in packet and b"<!ENTITY" not in packet:  # no entity tricks
            try:
                root = ET.fromstring(packet)
            except ET.ParseError:
                root = None
            # Images carry XMP too; the document's own packet names the PDF producer.
            if root is not None and (best is None or b"pdf:Producer" in packet):
                best = root
                if b"pdf:Producer" in packet:
                    return best
        start = body.find(b"<x:xmpmeta", end)
    return best


def _xmp_value(root: ET.Element, ns: str, name: str) -> str | None:
    prefix = _NS[ns]
    for desc in root.iter(f"{{{_NS['rdf']}}}Description"):
        attr = desc.get(f"{{{prefix}}}{name}")
        if attr and attr.strip():
            return attr.strip()
        node = desc.find(f"{{{prefix}}}{name}")
        if node is None:
            continue
        items = [li.text.strip() for li in node.iter(f"{{{_NS['rdf']}}}li")
                 if li.text and li.text.strip()]
        if items:
            return ", ".join(items) if name == "creator" else items[0]
        if node.text and node.text.strip():
            return node.text.strip()
    return None


def _info(pdf: Any, key: str) -> str | None:
    value = str(pdf.get_metadata_value(key) or "").replace("\x00", "").strip()
    return " ".join(value.split()) or None


def _catalog_language(pdf: Any) -> str | None:
    import pypdfium2.raw as raw

    size = raw.FPDFCatalog_GetLanguage(pdf, None, 0)
    if size <= 2 or size > 256:
        return None
    buffer = (ctypes.c_ushort * (size // 2))()
    raw.FPDFCatalog_GetLanguage(pdf, buffer, size)
    return bytes(buffer)[:size - 2].decode("utf-16-le", errors="ignore") or None


def _language_code(value: str | None) -> str | None:
    if not value:
        return None
    code = value.strip().replace("_", "-").split("-")[0].lower()
    return code if re.fullmatch(r"[a-z]{2,3}", code) and code != "x" else None


def _usable_title(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if len(value) < 2 or _JUNK_TITLE.match(value) or not any(c.isalpha() for c in value):
        return None
    return value


def _metadata(pdf: Any, body: bytes) -> dict[str, Any]:
    xmp = _xmp_packet(body)

    def pick(info_key: str, ns: str, name: str) -> str | None:
        value = _info(pdf, info_key)
        if not value and xmp is not None:
            value = _xmp_value(xmp, ns, name)
        return value

    keywords = _info(pdf, "Keywords")
    tags = [k.strip() for k in re.split(r"[,;]", keywords or "") if k.strip()]
    language = _xmp_value(xmp, "dc", "language") if xmp is not None else None
    return {
        "title": _usable_title(_info(pdf, "Title")) or
        _usable_title(_xmp_value(xmp, "dc", "title") if xmp is not None else None),
        "author": pick("Author", "dc", "creator"),
        "date": pdf_date(_info(pdf, "CreationDate")) or
        (_xmp_value(xmp, "xmp", "CreateDate") if xmp is not None else None),
        "description": pick("Subject", "dc", "description"),
        "language": _language_code(language),
        "page_tags": tags[:20] or None,
    }


# --------------------------------------------------------------------- lines
def _page_lines(textpage: Any) -> list[Line]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    count = textpage.count_chars()
    text = textpage.get_text_range()
    if len(text) != count:
        # GetText drops characters without Unicode (icon glyphs): rebuild it one
        # character at a time so string positions are PDFium's character indices.
        text = "".join(chr(code) if code else " " for code in
                       (raw.FPDFText_GetUnicode(textpage, i) for i in range(count)))
    lines: list[Line] = []
    for m in re.finditer(r"[^\S\r\n]*(\S[^\r\n]*)", text):
        # Measured on the first letter: bullets and symbols come from other fonts.
        letter = _LETTER.search(m.group(1))
        index = min(m.start(1) + (letter.start() if letter else 0), count - 1)
        try:
            _, bottom, _, top = textpage.get_charbox(index, loose=True)
        except pdfium.PdfiumError:  # PDFium has no box for a generated character
            continue
        angle = float(raw.FPDFText_GetCharAngle(textpage, index))
        upright = angle < 0.01 or angle > 6.27
        clean = _SOFT_HYPHEN.sub("", " ".join(m.group(1).split()))
        lines.append(Line(clean, top, bottom, _font_size(textpage, index, top - bottom),
                          upright))
    return lines


def _font_size(textpage: Any, index: int, fallback: float) -> float:
    """The size as set on the page: the nominal size times the text matrix's scale
    (some producers set every font at size 1 and scale it with the matrix)."""
    import pypdfium2.raw as raw

    size = float(raw.FPDFText_GetFontSize(textpage, index))
    matrix = raw.FS_MATRIX()
    if size > 0 and raw.FPDFText_GetMatrix(textpage, index, matrix):
        scaled = size * math.sqrt(abs(matrix.a * matrix.d - matrix.b * matrix.c))
        if scaled > 0:
            return scaled
    return fallback


def _band_key(line: Line, height: float, outermost: bool) -> str | None:
    """Digits-blind key of a line in the top or bottom band (or the outermost), else None.

    Running heads sit in the outer tenth of a page, or above or below all else where
    margins are wide (LaTeX).
    """
    if outermost or line.bottom > height * (1 - _BAND) or line.top < height * _BAND:
        return re.sub(r"\d+", "#", line.text.lower())
    return None


def _extremes(lines: list[Line]) -> tuple[float, float]:
    """The top of the highest line and the bottom of the lowest (with 2 units of slack)."""
    top = max((ln.top for ln in lines), default=0.0)
    bottom = min((ln.bottom for ln in lines), default=0.0)
    return top - 2, bottom + 2


def _is_page_furniture(line: Line, number: int, pages: int, title: str | None,
                       outermost: bool) -> bool:
    """Page numbers, running heads that carry them ("4 DISCUSSION 4", the outermost line
    only), browser print footers ("URL 2/5") and headers ("date time title")."""
    text = line.text
    if _PAGE_NUMBER.match(text):
        return True
    if outermost and len(text) <= 120:
        words = text.split()
        if words[-1] == str(number) or (number > 1 and words[0] == str(number)):
            return True
    counter = _PAGE_COUNTER.search(text)
    if counter and int(counter.group(1)) == number and int(counter.group(2)) == pages:
        return True
    stamp = _STAMP.match(text)
    return bool(stamp and title and text[stamp.end():].strip()[:40] == title[:40])


def strip_furniture(pages: list[tuple[float, list[Line]]], total: int,
                    title: str | None) -> list[list[Line]]:
    """Drop running headers/footers (repeated in the bands) and page numbers."""
    seen: Counter[str] = Counter()
    for height, lines in pages:
        top, bottom = _extremes(lines)
        seen.update({key for ln in lines
                     if (key := _band_key(ln, height, ln.top >= top or ln.bottom <= bottom))})
    repeats = 2 if len(pages) <= 3 else 3
    kept: list[list[Line]] = []
    for number, (height, lines) in enumerate(pages, 1):
        keep = []
        top, bottom = _extremes(lines)
        for line in lines:
            outermost = line.top >= top or line.bottom <= bottom
            key = _band_key(line, height, outermost)
            if key is not None and (seen[key] >= repeats or _is_page_furniture(
                    line, number, total, title, outermost)):
                continue
            keep.append(line)
        kept.append(keep)
    return kept


def join_lines(lines: list[Line]) -> str:
    """Lines to paragraphs: a wide gap or a jump up starts one; hyphens at line ends go."""
    out: list[str] = []
    previous: Line | None = None
    for line in lines:
        text = line.text
        if previous is None:
            out.append(text)
        else:
            gap = previous.bottom - line.top
            height = max(previous.top - previous.bottom, 1.0)
            if gap > 0.6 * height or line.top > previous.top + 0.5 * height:
                out.append("\n\n" + text)
            elif (out[-1].endswith(_HYPHENS) and len(out[-1]) > 1 and out[-1][-2].isalpha()
                  and text[:1].islower()):
                out[-1] = out[-1][:-1] + text
            else:
                out.append(" " + text)
        previous = line
    return "".join(out)


def largest_line(lines: list[Line]) -> str | None:
    """The line set in the largest font (joined with the next lines of that size)."""
    candidates = [ln for ln in lines if ln.upright and prose_words(ln.text) >= 1
                  and not _PAGE_NUMBER.match(ln.text) and len(ln.text) <= 200]
    if not candidates:
        return None
    biggest = max(ln.size for ln in candidates)
    start = next(i for i, ln in enumerate(candidates) if ln.size >= biggest - 0.1)
    parts = [candidates[start].text]
    for ln in candidates[start + 1:start + 3]:
        if abs(ln.size - biggest) > 0.1:
            break
        parts.append(ln.text)
    title = " ".join(parts)
    return title if len(title) <= 300 else title[:300].rsplit(" ", 1)[0]


# ---------------------------------------------------------------------- main
def _open(body: bytes) -> Any:
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    if b"%%EOF" not in body[-_EOF_WINDOW:]:
        raise DocumentError("damaged_document",
                            f"the PDF ends early (no %%EOF; cut off at {len(body)} bytes?)")
    try:
        return pdfium.PdfDocument(body)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code in (raw.FPDF_ERR_PASSWORD, raw.FPDF_ERR_SECURITY):
            raise DocumentError("encrypted", "the PDF is encrypted (it needs a password)") \
                from None
        raise DocumentError("damaged_document", f"PDFium cannot read it: {exc}") from None


def extract_pdf(body: bytes, url: str, max_pages: int,
                detect: Callable[[str], str | None] | None = None,
                ) -> tuple[dict[str, Any], str]:
    """Metadata and reading-order text of a PDF.

    The language is XMP's ``dc:language``, else ``detect(text)``, else the catalog's
    ``/Lang`` (producers fill that with their own default, so it comes last).

    Raises :class:`DocumentError` (``encrypted``, ``damaged_document``). A PDF with no
    text layer returns its metadata and an empty text (the caller says ``no_text``).
    """
    pdf = _open(body)
    try:
        meta = _metadata(pdf, body)
        declared = _language_code(_catalog_language(pdf))
        total = len(pdf)
        pages: list[tuple[float, list[Line]]] = []
        for index in range(min(total, max_pages)):
            page = pdf[index]
            try:
                textpage = page.get_textpage()
                try:
                    pages.append((page.get_height(), _page_lines(textpage)))
                finally:
                    textpage.close()
            finally:
                page.close()
    finally:
        pdf.close()
    kept = strip_furniture(pages, total, meta["title"])
    text = "\n\n".join(t for t in (join_lines(lines) for lines in kept) if t).strip()
    if sum(not c.isspace() for c in text) < _MIN_TEXT_CHARS:
        text = ""
    # Page 1 before cleaning: the title is often the running head of the other pages too.
    meta["title"] = meta["title"] or (largest_line(pages[0][1]) if pages else None) or \
        file_name(url)
    if not meta["language"]:
        meta["language"] = (detect(text[:3000]) if detect and text else None) or declared
    meta.update(content_type="application/pdf", page_count=total,
                word_count=len(text.split()))
    return meta, text
