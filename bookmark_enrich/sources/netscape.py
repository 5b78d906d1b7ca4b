"""Netscape bookmark HTML, the format every browser exports."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from html.parser import HTMLParser
from typing import IO, Any

from ..models import InputIssue
from .base import FileFormat, RawRecord, ReadOptions, text_stream

__all__ = ["TolerantHTMLParser", "read_netscape", "sniff_netscape"]

_CHUNK = 1 << 16


def sniff_netscape(head: bytes) -> bool:
    low = head[:4096].lower()
    return b"<!doctype netscape-bookmark-file" in low or (
        b"<dl" in low and b"<dt" in low and b"href=" in low
    )


class TolerantHTMLParser(HTMLParser):
    """HTMLParser that steps over what older Pythons assert on, instead of crashing."""

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:  # Python < 3.13 asserts on an odd <![...]> section
            end = self.rawdata.find(">", i)
            return -1 if end < 0 else end + 1


class _BookmarkParser(TolerantHTMLParser):
    """Streams <A> entries, keeping the <H3> folder path and the <DD> note."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.folders: list[str] = []
        self.pending_folder: str | None = None
        self.in_h3 = False
        self.h3_text: list[str] = []
        self.current: dict[str, Any] | None = None
        self.current_line = 0
        self.in_a = False
        self.a_text: list[str] = []
        self.in_dd = False
        self.dd_text: list[str] = []
        self.last: tuple[int, dict[str, Any]] | None = None
        self.ready: list[tuple[int, dict[str, Any]]] = []

    def _flush(self) -> None:
        if self.last is not None:
            line, rec = self.last
            if self.dd_text:
                rec["description"] = "".join(self.dd_text).strip()
            self.ready.append((line, rec))
            self.last = None
        self.in_dd = False
        self.dd_text = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._flush()
            rec: dict[str, Any] = {}
            for name, value in attrs:
                rec["url" if name == "href" else name] = value if value is not None else ""
            rec.setdefault("url", "")
            self.current = rec
            self.current_line = self.getpos()[0]
            self.in_a = True
            self.a_text = []
        elif tag == "h3":
            self._flush()
            self.in_h3 = True
            self.h3_text = []
        elif tag == "dl":
            self._flush()
            if self.pending_folder is not None:
                self.folders.append(self.pending_folder)
                self.pending_folder = None
        elif tag == "dd":
            self.in_dd = self.last is not None
            self.dd_text = []
        elif tag == "dt":
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.current is not None:
            self.current["title"] = "".join(self.a_text).strip()
            tags = self.current.get("tags")
            if isinstance(tags, str):  # TAGS="a,b": the common tags field is a list
                parts = tags.split(",")
                # Browsers write "a,b": kept as split (3× cheaper); spaces, empties cleaned.
                if " " in tags or "" in parts or not tags.isprintable():
                    parts = [t for t in map(str.strip, parts) if t]
                self.current["tags"] = parts
            if self.folders:
                self.current["folder"] = "/".join(self.folders)
            self.last = (self.current_line, self.current)
            self.current = None
            self.in_a = False
        elif tag == "h3":
            self.in_h3 = False
            self.pending_folder = "".join(self.h3_text).strip().replace("/", "∕")
        elif tag == "dl":
            self._flush()
            if self.folders:
                self.folders.pop()

    def handle_data(self, data: str) -> None:
        if self.in_a:
            self.a_text.append(data)
        elif self.in_h3:
            self.h3_text.append(data)
        elif self.in_dd:
            self.dd_text.append(data)


# A line of plain tags (double-quoted attributes only) and text, as browsers write them.
_TOKEN = re.compile(r'<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:[ \t\n\r\f]+[a-zA-Z_:][-a-zA-Z0-9_:.]*'
                    r'(?:="[^"<>]*")?)*)[ \t\n\r\f]*>|[^<]+')
_ANCHOR_LINE = re.compile(r'([ \t]*)<[dD][tT]><[aA]((?:[ \t\n\r\f]+[a-zA-Z_:][-a-zA-Z0-9_:.]*'
                          r'(?:="[^"<>]*")?)*)[ \t\n\r\f]*>([^<]*)</[aA]>([ \t\n\r\f]*)\Z')
_ATTR = re.compile(r'([a-zA-Z_:][-a-zA-Z0-9_:.]*)(="[^"<>]*")?')


def _attr_value(quoted: str) -> str | None:
    """``="v"`` → ``v`` unescaped; a bare attribute (empty match) has no value."""
    if not quoted:
        return None
    value = quoted[2:-1]
    return unescape(value) if "&" in value else value


def _fast_piece(parser: _BookmarkParser, piece: str) -> bool:
    """Hand ``piece`` to the parser's handlers without the tokenizer, if it is plain.

    HTMLParser's tokenizer is most of the reading time; for the tags-and-text
    lines browsers write, the same handler calls in the same order are made here
    (names lower-cased, attribute values and text unescaped). Anything else
    (comments, unquoted or odd attributes, a stray ``<``) returns False and goes
    to the tokenizer. Only called when the parser holds nothing unfinished.
    """
    line = _ANCHOR_LINE.match(piece)
    if line is not None:  # the usual entry line, in one match
        indent, attrs, title, tail = line.groups()
        if indent:
            parser.handle_data(indent)
        parser.handle_starttag("dt", [])
        parser.handle_starttag("a", [(key.lower(), _attr_value(value))
                                     for key, value in _ATTR.findall(attrs)] if attrs else [])
        if title:
            parser.handle_data(unescape(title) if "&" in title else title)
        parser.handle_endtag("a")
        if tail:
            parser.handle_data(tail)
        parser.lineno += piece.count("\n")
        return True
    tokens: list[tuple[str, str | None, str]] = []
    pos = 0
    size = len(piece)
    match_at = _TOKEN.match
    cdata = HTMLParser.CDATA_CONTENT_ELEMENTS
    while pos < size:
        match = match_at(piece, pos)
        if match is None:
            return False
        slash, name, attrs = match.groups()
        if name is not None:
            name = name.lower()
            if (slash and attrs) or name in cdata:
                return False
            tokens.append((slash, name, attrs))
        else:
            tokens.append(("", None, match.group(0)))
        pos = match.end()
    for slash, name, rest in tokens:
        if name is None:
            parser.handle_data(unescape(rest) if "&" in rest else rest)
        elif slash:
            parser.handle_endtag(name)
        else:
            parser.handle_starttag(name, [
                (key.lower(), _attr_value(value)) for key, value in _ATTR.findall(rest)]
                if rest else [])
    # Pieces are single lines: every tag above sat on the line the parser was at.
    parser.lineno += piece.count("\n")
    return True


def _clean(parser: _BookmarkParser) -> bool:
    """True when the tokenizer holds nothing unfinished (a fast piece may follow)."""
    return not parser.rawdata and parser.cdata_elem is None and parser.current is None \
        and not parser.in_h3


def read_netscape(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    """Stream the entries; the folder path of each is kept as ``folder``."""
    return read_netscape_lines(stream, fast=True, options=options)


def read_netscape_lines(stream: IO[bytes], *, fast: bool, options: ReadOptions | None = None
                        ) -> Iterator[RawRecord | InputIssue]:
    """The reader; ``fast=False`` sends every line through HTMLParser (the reference)."""
    text = text_stream(stream, options.encoding if options is not None else None)
    parser = _BookmarkParser()
    carry = ""

    def take(piece: str) -> None:
        if not (fast and _clean(parser) and _fast_piece(parser, piece)):
            parser.feed(piece)

    while chunk := text.read(_CHUNK):
        buffer = carry + chunk
        start = 0
        while (end := buffer.find("\n", start)) >= 0:
            take(buffer[start: end + 1])
            start = end + 1
        carry = buffer[start:]
        if len(carry) > _CHUNK:  # a very long line: the tokenizer takes it in parts
            parser.feed(carry)
            carry = ""
        if parser.ready:
            for line, rec in parser.ready:
                yield RawRecord(line, rec, "url")
            parser.ready.clear()
    if carry:
        take(carry)
    # A file cut inside a tag leaves it unparsed; close() would take it for text.
    cut_in_tag = parser.rawdata.lstrip().startswith("<")
    cut_line = parser.getpos()[0]
    parser.close()
    parser._flush()
    for line, rec in parser.ready:
        yield RawRecord(line, rec, "url")
    if parser.current is not None:  # file ends inside an <A>
        yield InputIssue(parser.current_line, "truncated bookmark entry at end of file",
                         fatal=True)
    elif cut_in_tag:
        yield InputIssue(cut_line, "file ends inside a tag (cut short?)", fatal=True)


NETSCAPE = FileFormat(
    "netscape", "Netscape bookmark HTML (every browser's export)",
    "<!DOCTYPE NETSCAPE-Bookmark-file-1> or <DL>/<DT>/<A HREF>",
    (".html", ".htm"), sniff_netscape, read_netscape, priority=50, container="netscape",
)
