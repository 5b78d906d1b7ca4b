"""RSS 2.0 and Atom feeds: each item (entry) is a bookmark."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import IO, Any, cast
from xml.etree import ElementTree

from ...models import InputIssue
from ..base import FileFormat, RawRecord, ReadOptions
from ._common import common_record, head_text, one_line, split_tags, to_iso

__all__ = ["ATOM", "RSS"]

_ATOM_NS = "http://www.w3.org/2005/Atom"
_PREFIXES = {
    _ATOM_NS: "atom",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://search.yahoo.com/mrss/": "media",
}
_CHUNK = 1 << 16
_EXCERPT = 1000
_TAGS = re.compile(r"<[^>]*>")


def sniff_rss(head: bytes) -> bool:
    return re.search(r"<rss[\s>]", _prologue_stripped(head)) is not None


def sniff_atom(head: bytes) -> bool:
    text = _prologue_stripped(head)
    return re.match(r"<feed[\s>]", text) is not None and _ATOM_NS in text[:4096]


def _prologue_stripped(head: bytes) -> str:
    """The text from the first element on (XML declaration, comments, doctype skipped)."""
    text = head_text(head, 4096).lstrip()
    text = re.sub(r"^(<\?.*?\?>\s*|<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*", "", text, flags=re.S)
    return text


def _name(tag: str, default_ns: str) -> str:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        if ns == default_ns:
            return local
        prefix = _PREFIXES.get(ns)
        return f"{prefix}:{local}" if prefix else local
    return tag


def _value(elem: ElementTree.Element, default_ns: str) -> Any:
    text = (elem.text or "").strip()
    if len(elem):  # nested elements (Atom author): a dict of them
        inner: dict[str, Any] = {}
        for child in elem:
            _put(inner, _name(child.tag, default_ns), _value(child, default_ns))
        return {**elem.attrib, **inner} if elem.attrib else inner
    if elem.attrib:
        return {**elem.attrib, **({"text": text} if text else {})}
    return text


def _put(fields: dict[str, Any], name: str, value: Any) -> None:
    if name in fields:
        old = fields[name]
        fields[name] = [*old, value] if isinstance(old, list) else [old, value]
    else:
        fields[name] = value


def _plain(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("text")
    if not isinstance(value, str):
        return None
    text = " ".join(html.unescape(_TAGS.sub(" ", value)).split())
    return text[:_EXCERPT] or None


def _all(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _rss_entry(fields: dict[str, Any], folder: str | None) -> dict[str, Any]:
    url = fields.get("link")
    if not isinstance(url, str) or not url:
        guid = fields.get("guid")
        if isinstance(guid, dict) and guid.get("isPermaLink", "true") != "false":
            url = guid.get("text")
        elif isinstance(guid, str):
            url = guid
    tags = [c.get("text") if isinstance(c, dict) else c for c in _all(fields.get("category"))]
    return common_record(fields, url=url if isinstance(url, str) else None,
                         title=_plain(fields.get("title")), tags=split_tags(tags),
                         folder=folder,
                         created=to_iso(fields.get("pubDate") or fields.get("dc:date")),
                         excerpt=_plain(fields.get("description")))


def _atom_entry(fields: dict[str, Any], folder: str | None) -> dict[str, Any]:
    url = None
    for link in _all(fields.get("link")):
        if isinstance(link, dict) and link.get("rel", "alternate") == "alternate":
            url = link.get("href")
            break
    if url is None:
        url = next((link.get("href") for link in _all(fields.get("link"))
                    if isinstance(link, dict) and link.get("href")), None)
    tags = [c.get("term") or c.get("label") if isinstance(c, dict) else c
            for c in _all(fields.get("category"))]
    return common_record(fields, url=url if isinstance(url, str) else None,
                         title=_plain(fields.get("title")), tags=split_tags(tags),
                         folder=folder,
                         created=to_iso(fields.get("published") or fields.get("updated")),
                         excerpt=_plain(fields.get("summary") or fields.get("content")))


def _reader(item_tag: str, default_ns: str, container: str, mapper: Any, what: str) -> Any:
    item = f"{{{default_ns}}}{item_tag}" if default_ns else item_tag
    title = f"{{{default_ns}}}title" if default_ns else "title"

    def read(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
        parser: ElementTree.XMLPullParser[ElementTree.Element] = ElementTree.XMLPullParser(
            events=("start", "end"))
        depth = 0
        folder: str | None = None
        position = 0
        in_item = 0
        try:
            while chunk := stream.read(_CHUNK):
                parser.feed(chunk)
                for event, elem in cast(Iterator[tuple[str, Any]], parser.read_events()):
                    if event == "start":
                        depth += 1
                        in_item += elem.tag == item
                        continue
                    depth -= 1
                    if elem.tag == item:
                        in_item -= 1
                        position += 1
                        fields: dict[str, Any] = {}
                        for child in elem:
                            _put(fields, _name(child.tag, default_ns), _value(child, default_ns))
                        elem.clear()
                        record = mapper(fields, folder)
                        if not isinstance(record.get("url"), str):
                            yield InputIssue(position, f"{item_tag} {position}: no link")
                        else:
                            yield RawRecord(position, record, "url")
                    elif elem.tag == title and not in_item and \
                            depth == container.count("/") + 1:
                        folder = _plain(elem.text)
            parser.close()
        except ElementTree.ParseError as exc:
            line, column = exc.position
            yield InputIssue(position + 1, f"{what} broken after {item_tag} {position} at line "
                             f"{line}, column {column + 1}: {str(exc).split(':')[0]}",
                             fatal=True)
        except (LookupError, ValueError) as exc:  # an unknown encoding in the declaration
            yield InputIssue(position + 1, f"{what} rejected after {item_tag} {position}: "
                             f"{one_line(exc)}", fatal=True)

    return read


RSS = FileFormat(
    "rss", "RSS 2.0 feed (each <item> a bookmark)", "<rss> root element", (".rss", ".xml"),
    sniff_rss, _reader("item", "", "rss/channel", _rss_entry, "RSS feed"), priority=42,
)
ATOM = FileFormat(
    "atom", "Atom feed (each <entry> a bookmark)", "<feed xmlns=\"http://www.w3.org/2005/Atom\">",
    (".atom",), sniff_atom, _reader("entry", _ATOM_NS, "feed", _atom_entry, "Atom feed"),
    priority=43,
)
