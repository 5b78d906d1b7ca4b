"""JSON exports of self-hosted and hosted read-it-later services.

Omnivore and Wallabag write a JSON array of entries (written back like any JSON
array); Linkwarden (``collections[].links[]``) and Karakeep/Hoarder
(``bookmarks[]`` with ``content.url``) nest theirs in an object.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import ijson
from ijson.common import ObjectBuilder

from ...models import InputIssue
from ..base import FileFormat, RawRecord, ReadOptions
from ._common import (
    CountingStream,
    common_record,
    first_json_object_keys,
    folder_path,
    json_array_reader,
    json_damage,
    seekable_copy,
    split_tags,
    str_or_none,
    to_iso,
)

__all__ = ["KARAKEEP", "LINKWARDEN", "OMNIVORE", "WALLABAG"]

_ERRORS = (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError)


def _object_head(head: bytes) -> bytes:
    return head[:16384].lstrip(b"\xef\xbb\xbf").lstrip()


# ---------------------------------------------------------------------- Omnivore
def sniff_omnivore(head: bytes) -> bool:
    keys = first_json_object_keys(head)
    return "url" in keys and ({"slug", "savedAt"} <= keys or
                              {"readingProgress", "state"} <= keys)


def _omnivore(entry: dict[str, Any]) -> dict[str, Any]:
    return common_record(entry, url=entry.get("url"), title=str_or_none(entry.get("title")),
                         tags=split_tags(entry.get("labels")),
                         created=to_iso(entry.get("savedAt")),
                         excerpt=str_or_none(entry.get("description")))


# ---------------------------------------------------------------------- Wallabag
def sniff_wallabag(head: bytes) -> bool:
    keys = first_json_object_keys(head)
    return "url" in keys and {"is_archived", "is_starred"} <= keys


def _wallabag(entry: dict[str, Any]) -> dict[str, Any]:
    notes: list[str] = [a["text"] for a in entry.get("annotations") or []
             if isinstance(a, dict) and isinstance(a.get("text"), str) and a["text"].strip()]
    return common_record(entry, url=entry.get("url"), title=str_or_none(entry.get("title")),
                         tags=split_tags(entry.get("tags")),
                         created=to_iso(entry.get("created_at")),
                         notes="\n".join(notes) or None)


# -------------------------------------------------------------------- Linkwarden
def sniff_linkwarden(head: bytes) -> bool:
    start = _object_head(head)
    return start.startswith(b"{") and b'"collections"' in start and (
        b'"links"' in start or b'"collectionId"' in start)


def read_linkwarden(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    """Stream ``collections[].links[]``; the folder is the collection's path (by parentId)."""
    counted = CountingStream(stream)
    collections: dict[Any, tuple[str, Any]] = {}
    current: dict[str, Any] = {}
    builder: ObjectBuilder | None = None
    depth = 0
    position = 0
    link_prefix = "collections.item.links.item"
    try:
        for prefix, event, value in ijson.parse(counted, use_float=True):
            if builder is not None:
                builder.event(event, value)
                if event in ("start_map", "start_array"):
                    depth += 1
                elif event in ("end_map", "end_array"):
                    depth -= 1
                    if depth == 0:
                        position += 1
                        yield _linkwarden(builder.value, position, collections, current)
                        builder = None
                continue
            if prefix == link_prefix and event == "start_map":
                builder = ObjectBuilder()
                builder.event(event, value)
                depth = 1
            elif prefix == "collections.item" and event == "start_map":
                current = {}
            elif prefix.startswith("collections.item.") and prefix.count(".") == 2 and \
                    event not in ("start_map", "start_array", "end_map", "end_array", "map_key"):
                current[prefix.rsplit(".", 1)[1]] = value
                if "id" in current and isinstance(current.get("name"), str):
                    collections[current["id"]] = (current["name"], current.get("parentId"))
    except _ERRORS as exc:
        yield json_damage(position, counted, exc, "Linkwarden JSON")


def _linkwarden(link: Any, position: int, collections: dict[Any, tuple[str, Any]],
                current: dict[str, Any]) -> RawRecord | InputIssue:
    if not isinstance(link, dict):
        return InputIssue(position, f"entry {position}: not an object")
    names: list[str] = []
    seen: set[Any] = set()
    at = link.get("collectionId", current.get("id"))
    while at is not None and at in collections and at not in seen and len(seen) < 100:
        seen.add(at)
        name, at = collections[at]
        names.append(name)
    if not names and isinstance(current.get("name"), str):
        names = [current["name"]]
    return RawRecord(position, common_record(
        link, url=link.get("url"), title=str_or_none(link.get("name")),
        tags=split_tags(link.get("tags")), folder=folder_path(tuple(names[::-1])),
        created=to_iso(link.get("createdAt") or link.get("importDate")),
        notes=str_or_none(link.get("description"))), "url")


# ---------------------------------------------------------------------- Karakeep
def sniff_karakeep(head: bytes) -> bool:
    start = _object_head(head)
    return start.startswith(b"{") and b'"bookmarks"' in start[:4096] and b'"content"' in start


def read_karakeep(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    """Stream ``bookmarks[]``; links carry ``content.url``, text notes are reported.

    Newer exports name the lists each bookmark is in (``lists``: ids), and the lists
    after the bookmarks (``lists[]``: id, name, parentId): a first read learns them,
    and a bookmark's first list becomes its ``folder``."""
    with seekable_copy(stream, options) as path, open(path, "rb") as first, \
            open(path, "rb") as second:
        folders = _karakeep_lists(first)
        counted = CountingStream(second)
        position = 0
        try:
            for entry in ijson.items(counted, "bookmarks.item", use_float=True):
                position += 1
                yield _karakeep(entry, position, folders)
        except _ERRORS as exc:
            yield json_damage(position, counted, exc, "Karakeep JSON")


def _karakeep_lists(stream: IO[bytes]) -> dict[str, str]:
    """List id → its path (``Projects/Inbox``); smart lists (saved searches) left out."""
    lists: dict[str, tuple[str, Any]] = {}
    try:
        for item in ijson.items(stream, "lists.item", use_float=True):
            if isinstance(item, dict) and isinstance(item.get("id"), str) and \
                    item.get("type") != "smart":
                lists[item["id"]] = (str_or_none(item.get("name")) or "", item.get("parentId"))
    except _ERRORS:
        pass  # the second read reports the damage
    paths: dict[str, str] = {}
    for list_id in lists:
        names: list[str] = []
        at: Any = list_id
        while at in lists and len(names) <= len(lists):  # a parent loop ends here
            name, at = lists[at]
            names.append(name)
        if (folder := folder_path(tuple(names[::-1]))) is not None:
            paths[list_id] = folder
    return paths


def _karakeep(entry: Any, position: int, folders: dict[str, str]) -> RawRecord | InputIssue:
    if not isinstance(entry, dict):
        return InputIssue(position, f"entry {position}: not an object")
    content = entry.get("content")
    content = content if isinstance(content, dict) else {}
    url = content.get("url")
    if not isinstance(url, str):
        kind = content.get("type")
        return InputIssue(position, f"entry {position}: a {kind or 'content-less'} entry, "
                          "not a link")
    return RawRecord(position, common_record(
        entry, url=url, title=str_or_none(entry.get("title")) or
        str_or_none(content.get("title")), tags=split_tags(entry.get("tags")),
        created=to_iso(entry.get("createdAt")), notes=str_or_none(entry.get("note")),
        excerpt=str_or_none(content.get("description")),
        folder=next((folders[i] for i in entry.get("lists") or () if i in folders), None)
        if isinstance(entry.get("lists"), list) else None), "url")


OMNIVORE = FileFormat(
    "omnivore", "Omnivore JSON export (metadata_*.json)",
    "JSON array whose objects have url, slug, savedAt", (".json",), sniff_omnivore,
    json_array_reader(_omnivore), priority=37, container="json",
)
WALLABAG = FileFormat(
    "wallabag", "Wallabag JSON export", "JSON array whose objects have url, is_archived, "
    "is_starred", (".json",), sniff_wallabag, json_array_reader(_wallabag), priority=38,
    container="json",
)
LINKWARDEN = FileFormat(
    "linkwarden", "Linkwarden JSON backup (collections[].links[])",
    'JSON object with "collections" holding "links"', (".json",), sniff_linkwarden,
    read_linkwarden, priority=39,
)
KARAKEEP = FileFormat(
    "karakeep", "Karakeep / Hoarder JSON export (bookmarks[] with content.url)",
    'JSON object with "bookmarks" whose entries have "content"', (".json",), sniff_karakeep,
    read_karakeep, priority=40,
)
