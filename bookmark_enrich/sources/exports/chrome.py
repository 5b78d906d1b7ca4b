"""Chrome, Edge, Brave, Vivaldi and Opera ``Bookmarks`` JSON (the browser's own file)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

import ijson

from ...models import InputIssue
from ..base import FileFormat, RawRecord, ReadOptions
from ._common import (
    CountingStream,
    common_record,
    epoch_iso,
    folder_path,
    json_damage,
    seekable_copy,
)
from ._tree import Node, leaves_with_folders

__all__ = ["CHROME", "read_chrome", "sniff_chrome"]

_ROOT_NAMES = {"bookmark_bar": "Bookmarks bar", "other": "Other bookmarks",
               "synced": "Mobile bookmarks"}
_ROOTS = re.compile(rb'^\s*\{.*?"roots"\s*:\s*\{', re.DOTALL)
_ERRORS = (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError)


def sniff_chrome(head: bytes) -> bool:
    return _ROOTS.match(head[:16384]) is not None and (
        b'"bookmark_bar"' in head or b'"children"' in head)


def _is_folder(node: Node) -> bool:
    return node.has_children or node.fields.get("type") == "folder"


def _name(node: Node) -> str:
    name = node.fields.get("name")
    if isinstance(name, str) and name.strip():
        return name
    key = node.fields.get("_root_key")
    return _ROOT_NAMES.get(key, key) if isinstance(key, str) else ""


def read_chrome(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    """Stream the url entries; two passes, since a folder's name follows its children."""
    with seekable_copy(stream, options) as path, open(path, "rb") as first, \
            open(path, "rb") as raw:
        counted = CountingStream(raw)
        position = 0
        try:
            for node, folders in leaves_with_folders(first, counted, roots_key="roots",
                                                     is_folder=_is_folder, name_of=_name):
                position += 1
                yield _entry(node, position, folders)
        except _ERRORS as exc:
            yield json_damage(position, counted, exc, "Chrome Bookmarks JSON")


def _entry(node: Node, position: int, folders: tuple[str, ...]) -> RawRecord | InputIssue:
    fields = node.fields
    fields.pop("_root_key", None)
    kind = fields.get("type")
    if "url" not in fields:
        return InputIssue(position, f"entry {position}: no url (type {kind!r})")
    if kind not in (None, "url"):
        return InputIssue(position, f"entry {position}: unknown type {kind!r}")
    folder = folder_path(folders)
    name = fields.get("name")
    record = common_record(fields, url=fields.get("url"),
                           title=name if isinstance(name, str) else None,
                           folder=folder,
                           created=epoch_iso(fields.get("date_added"), "us", windows=True))
    return RawRecord(position, record, "url")


CHROME = FileFormat(
    "chrome", "Chrome / Edge / Brave / Vivaldi / Opera `Bookmarks` JSON",
    'JSON object with "roots" (bookmark_bar, other, synced)', (),
    sniff_chrome, read_chrome, priority=20,
    writeback_refusal="Chrome-style Bookmarks files are owned by the browser; "
    "write the results with -o FILE instead",
)
