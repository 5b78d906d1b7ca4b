"""Safari ``Bookmarks.plist`` (binary or XML), the Reading List included."""

from __future__ import annotations

import base64
import plistlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any
from xml.parsers import expat

from ...models import InputIssue
from ..base import FileFormat, RawRecord, ReadOptions
from ._common import common_record, folder_path, one_line, to_iso

__all__ = ["SAFARI", "read_safari", "sniff_safari"]

_MAX_PLIST = 1 << 30
_FOLDER_NAMES = {"BookmarksBar": "Favorites", "BookmarksMenu": "Bookmarks Menu",
                 "com.apple.ReadingList": "Reading List"}


def sniff_safari(head: bytes) -> bool:
    if head.startswith(b"bplist00"):
        return b"WebBookmark" in head
    start = head[:8192]
    return b"<plist" in start and b"WebBookmarkType" in head


class _XmlPlist:
    """An XML plist read with expat that keeps what it built when the file breaks off."""

    def __init__(self) -> None:
        self.root: Any = None
        self.stack: list[tuple[Any, list[str | None]]] = []
        self.complete: set[int] = set()
        self.text: list[str] = []
        self.error: str | None = None

    def parse(self, data: bytes) -> None:
        parser = expat.ParserCreate()
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self.text.append
        parser.EntityDeclHandler = self._entity  # no entity tricks (as plistlib)
        try:
            parser.Parse(data, True)
        except expat.ExpatError as exc:
            self.error = (f"XML plist damaged at line {exc.lineno}, column {exc.offset + 1}: "
                          f"{expat.errors.messages.get(exc.code, str(exc))}")
        except (ValueError, LookupError) as exc:  # entity declarations, unknown encodings
            self.error = f"XML plist rejected: {one_line(exc)}"

    @staticmethod
    def _entity(*_: Any) -> None:
        raise ValueError("entity declarations are not allowed in a plist")

    def _attach(self, value: Any) -> None:
        if not self.stack:
            if self.root is None:
                self.root = value
            return
        container, key = self.stack[-1]
        if isinstance(container, dict):
            if key[0] is not None:
                container[key[0]] = value
                key[0] = None
        else:
            container.append(value)

    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        self.text.clear()
        if tag in ("dict", "array"):
            value: Any = {} if tag == "dict" else []
            self._attach(value)
            self.stack.append((value, [None]))

    def _end(self, tag: str) -> None:
        text = "".join(self.text)
        self.text.clear()
        if tag in ("dict", "array"):
            if self.stack:
                container, _ = self.stack.pop()
                self.complete.add(id(container))
            return
        if tag == "key":
            if self.stack and isinstance(self.stack[-1][0], dict):
                self.stack[-1][1][0] = text
            return
        value: Any
        if tag == "string":
            value = text
        elif tag == "integer":
            value = int(text.strip()) if text.strip().lstrip("-").isdigit() else text
        elif tag == "real":
            try:
                value = float(text)
            except ValueError:
                value = text
        elif tag in ("true", "false"):
            value = tag == "true"
        elif tag == "date":
            value = text.strip()
        elif tag == "data":
            value = "".join(text.split())
        else:
            return
        self._attach(value)


def _jsonable(value: Any, depth: int = 0) -> Any:
    if depth > 50:
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, datetime):
        # As Apple writes them in XML plists (binary ones hold naive UTC datetimes).
        return (value.astimezone(UTC) if value.tzinfo else value).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def read_safari(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    """Every bookmark leaf in tree order; Reading List items carry their date and preview.

    A plist cannot be streamed: the file is read whole (Safari's are small). An
    XML plist that breaks off still gives the entries completed before the damage.
    """
    data = stream.read(_MAX_PLIST)
    complete: set[int] | None = None
    error: str | None = None
    if data.startswith(b"bplist"):
        try:
            root = plistlib.loads(data, fmt=plistlib.FMT_BINARY)
        except Exception as exc:  # plistlib raises many kinds on damaged binary data
            yield InputIssue(1, f"binary plist damaged: {type(exc).__name__}: "
                             f"{one_line(exc)}", fatal=True)
            return
    else:
        xml = _XmlPlist()
        xml.parse(data)
        root, complete, error = xml.root, xml.complete, xml.error
    position = 0
    for leaf, folders in _leaves(root):
        position += 1
        if complete is not None and id(leaf) not in complete:
            break  # cut in the middle of this entry
        yield _entry(leaf, position, folders)
    if error is not None:
        yield InputIssue(position + 1, f"after entry {position}: {error}", fatal=True)


def _leaves(root: Any) -> Iterator[tuple[dict[str, Any], list[str]]]:
    todo: list[tuple[Any, list[str]]] = [(root, [])]
    while todo:
        node, folders = todo.pop()
        if not isinstance(node, dict):
            continue
        kind = node.get("WebBookmarkType")
        if kind == "WebBookmarkTypeLeaf" or (kind is None and "URLString" in node):
            yield node, folders
            continue
        children = node.get("Children")
        if not isinstance(children, list):
            continue
        title = node.get("Title")
        here = folders
        if node is not root and isinstance(title, str):
            here = [*folders, _FOLDER_NAMES.get(title, title)]
        todo.extend((child, here) for child in reversed(children))


def _entry(leaf: dict[str, Any], position: int, folders: list[str]) -> RawRecord | InputIssue:
    record = _jsonable(leaf)
    url = record.get("URLString")
    if not isinstance(url, str):
        return InputIssue(position, f"entry {position}: no URLString")
    uri = record.get("URIDictionary")
    title = uri.get("title") if isinstance(uri, dict) else None
    reading = record.get("ReadingList")
    reading = reading if isinstance(reading, dict) else {}
    return RawRecord(position, common_record(
        record, url=url, title=title if isinstance(title, str) else None,
        folder=folder_path(tuple(folders)), created=to_iso(reading.get("DateAdded")),
        excerpt=reading.get("PreviewText") if isinstance(reading.get("PreviewText"), str)
        else None), "url")


SAFARI = FileFormat(
    "safari", "Safari Bookmarks.plist (binary or XML; Reading List included)",
    "bplist00 or <plist> with WebBookmarkType", (".plist",), sniff_safari, read_safari,
    priority=12, binary=True,
    writeback_refusal="Safari's Bookmarks.plist is owned by the browser; "
    "write the results with -o FILE instead",
)
