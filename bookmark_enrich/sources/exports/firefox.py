"""Firefox: the bookmarks backup JSON (plain or ``.jsonlz4``) and ``places.sqlite``."""

from __future__ import annotations

import io
import sqlite3
import struct
import urllib.parse
from collections.abc import Iterator
from typing import IO, Any

import ijson
import lz4.block

from ...errors import InputError
from ...models import InputIssue
from ..base import FileFormat, RawRecord, ReadOptions
from ._common import (
    CountingStream,
    common_record,
    epoch_iso,
    folder_path,
    json_damage,
    one_line,
    seekable_copy,
    split_tags,
)
from ._tree import Node, leaves_with_folders

__all__ = ["FIREFOX_JSON", "FIREFOX_JSONLZ4", "FIREFOX_PLACES", "read_jsonlz4", "read_places"]

MOZLZ4_MAGIC = b"mozLz40\0"
SQLITE_MAGIC = b"SQLite format 3\0"
_MAX_BACKUP = 1 << 30
"""Largest decompressed backup accepted (the header's size is trusted only up to this)."""

_ROOTS = {"placesRoot": "", "bookmarksMenuFolder": "Bookmarks Menu",
          "toolbarFolder": "Bookmarks Toolbar", "unfiledBookmarksFolder": "Other Bookmarks",
          "mobileFolder": "Mobile Bookmarks"}
_ROOT_GUIDS = {"root________": "", "menu________": "Bookmarks Menu",
               "toolbar_____": "Bookmarks Toolbar", "unfiled_____": "Other Bookmarks",
               "mobile______": "Mobile Bookmarks"}
_CONTAINER = "text/x-moz-place-container"
_SEPARATOR = "text/x-moz-place-separator"
_ERRORS = (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError)


# ------------------------------------------------------------------ backup JSON
def sniff_firefox_json(head: bytes) -> bool:
    start = head[:16384]
    return start.lstrip(b"\xef\xbb\xbf").lstrip().startswith(b"{") and (
        b'"text/x-moz-place' in start or b'"placesRoot"' in start)


def _is_folder(node: Node) -> bool:
    return node.has_children or node.fields.get("type") == _CONTAINER or \
        node.fields.get("typeCode") == 2


def _name(node: Node) -> str | None:
    root = node.fields.get("root")
    if root == "tagsFolder":
        return None  # tags are on the entries themselves
    if isinstance(root, str) and root in _ROOTS:
        return _ROOTS[root]
    title = node.fields.get("title")
    return title if isinstance(title, str) else ""


class _TagFolders:
    """uri → tags, from the tags folder's own tree: a folder per tag, holding its pages.

    Firefox 3.0 wrote backups with tags only there (no ``tags`` on the entries); later
    versions write both. Seen in the first read, where nodes close children first: the
    pages two levels under a top-level folder are held until that folder closes, and
    kept only if it is the tags folder.
    """

    def __init__(self) -> None:
        self.tags: dict[str, list[str]] = {}
        self._pages: list[tuple[int, str]] = []
        self._titles: dict[int, str] = {}

    def __call__(self, node: Node) -> None:
        depth = len(node.path)
        if depth == 3:
            uri = node.fields.get("uri")
            if isinstance(uri, str):
                self._pages.append((node.path[1], uri))
        elif depth == 2:
            title = node.fields.get("title")
            if isinstance(title, str) and title.strip():
                self._titles[node.path[1]] = title.strip()
        elif depth == 1:
            if node.fields.get("root") == "tagsFolder":
                for folder, uri in self._pages:
                    tag = self._titles.get(folder)
                    if tag is not None and tag not in (known := self.tags.setdefault(uri, [])):
                        known.append(tag)
            self._pages.clear()
            self._titles.clear()


def _entry(node: Node, position: int, folders: tuple[str, ...],
           folder_tags: dict[str, list[str]]) -> RawRecord | InputIssue:
    fields = node.fields
    uri = fields.get("uri")
    if not isinstance(uri, str):
        return InputIssue(position, f"entry {position}: no uri (type {fields.get('type')!r})")
    # ``tags`` is a comma string in Firefox's backups ("a,b"; "a, b" in 3.x), a list in
    # some tools' rewrites of them; the tags folder adds what the entry does not say.
    tags = split_tags(fields.get("tags"), ",")
    tags += [t for t in folder_tags.get(uri, ()) if t not in tags]
    record = common_record(
        fields, url=uri, title=fields.get("title") if isinstance(fields.get("title"), str)
        else None, tags=tags, folder=folder_path(folders),
        created=epoch_iso(fields.get("dateAdded"), "us"))
    return RawRecord(position, record, "url")


def _is_separator(node: Node) -> bool:
    """Separators, and ``place:`` queries (Most Visited, Recent Tags): not web pages."""
    uri = node.fields.get("uri")
    return node.fields.get("type") == _SEPARATOR or node.fields.get("typeCode") == 3 or (
        isinstance(uri, str) and uri.startswith("place:"))


def _read_tree(first: IO[bytes], second: IO[bytes],
               what: str) -> Iterator[RawRecord | InputIssue]:
    counted = CountingStream(second)
    position = 0
    tag_folders = _TagFolders()
    try:
        for node, folders in leaves_with_folders(first, counted, roots_key=None,
                                                 is_folder=_is_folder, name_of=_name,
                                                 observe=tag_folders):
            if _is_separator(node):
                continue
            position += 1
            yield _entry(node, position, folders, tag_folders.tags)
    except _ERRORS as exc:
        yield json_damage(position, counted, exc, what)


def read_firefox_json(stream: IO[bytes],
                      options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    """The bookmarks of a Firefox backup JSON, streamed (two reads of the file)."""
    with seekable_copy(stream, options) as path, open(path, "rb") as first, \
            open(path, "rb") as second:
        yield from _read_tree(first, second, "Firefox bookmarks JSON")


# ----------------------------------------------------------------------- jsonlz4
def sniff_jsonlz4(head: bytes) -> bool:
    return head.startswith(MOZLZ4_MAGIC)


def read_jsonlz4(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    """A ``.jsonlz4`` backup: Mozilla's header, then one LZ4 block of the backup JSON."""
    header = stream.read(len(MOZLZ4_MAGIC) + 4)
    if not header.startswith(MOZLZ4_MAGIC) or len(header) < 12:
        raise InputError("not a mozLz40 file (Firefox .jsonlz4 backup)")
    (size,) = struct.unpack("<I", header[8:12])
    if size > _MAX_BACKUP:
        raise InputError(f"the .jsonlz4 backup says it holds {size} bytes; refusing over "
                         f"{_MAX_BACKUP >> 20} MiB")
    block = stream.read(_MAX_BACKUP)
    damage: str | None = None
    try:
        data = lz4.block.decompress(block, uncompressed_size=size)
    except lz4.block.LZ4BlockError as exc:
        # A cut file: decode what is there and read the entries before the damage.
        data, where = salvage_lz4(block, size)
        damage = f"LZ4 data damaged at compressed byte {12 + where} ({one_line(exc)})"
    entries = 0
    for item in _read_tree(io.BytesIO(data), io.BytesIO(data), "Firefox bookmarks JSON"):
        if damage is not None and isinstance(item, InputIssue) and item.fatal:
            break  # the JSON ends where the decoding stopped: one report, below
        entries = item.position
        yield item
    if damage is not None:
        yield InputIssue(entries + 1, f"after entry {entries}: {damage}", fatal=True)


def salvage_lz4(block: bytes, limit: int) -> tuple[bytes, int]:
    """Decode an LZ4 block as far as it is intact; returns (bytes, offset of the damage)."""
    out = bytearray()
    i = 0
    n = len(block)
    while i < n and len(out) < limit:
        start = i
        token = block[i]
        i += 1
        literals = token >> 4
        if literals == 15:
            while i < n:
                literals += block[i]
                i += 1
                if block[i - 1] != 255:
                    break
        if i + literals > n:
            return bytes(out), start
        out += block[i: i + literals]
        i += literals
        if i >= n:
            break
        if i + 2 > n:
            return bytes(out), start
        offset = block[i] | block[i + 1] << 8
        i += 2
        length = (token & 15) + 4
        if (token & 15) == 15:
            while i < n:
                length += block[i]
                i += 1
                if block[i - 1] != 255:
                    break
        if offset == 0 or offset > len(out):
            return bytes(out), start
        for _ in range(length):
            out.append(out[-offset])
    return bytes(out[:limit]), i


# ------------------------------------------------------------------ places.sqlite
def sniff_places(head: bytes) -> bool:
    return head.startswith(SQLITE_MAGIC) and b"moz_bookmarks" in head


def read_places(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    """Bookmarks of a Firefox profile's ``places.sqlite``, opened read-only and immutable.

    ``immutable=1`` takes no lock, so a running Firefox is neither blocked nor
    changed; the price is that bookmarks still in its write-ahead log (the last
    minutes) are not seen.
    """
    with seekable_copy(stream, options) as path:
        uri = "file:" + urllib.parse.quote(str(path)) + "?mode=ro&immutable=1"
        try:
            db = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise InputError(f"cannot open the places database: {exc}") from None
        try:
            yield from _places_rows(db)
        finally:
            db.close()


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


# Firefox before 4 had no guid columns, and before 36 no fixed root guids: the roots
# were named in moz_bookmarks_roots.
_ROOT_NAMES = {"places": "root________", "menu": "menu________", "toolbar": "toolbar_____",
               "tags": "tags________", "unfiled": "unfiled_____", "mobile": "mobile______"}


def _folders(db: sqlite3.Connection, mark: list[str]) -> dict[int, tuple[int, str | None, str]]:
    """id → (parent, title, root guid or own guid) for every folder, in any schema version."""
    guid = "guid" if "guid" in mark else "''"
    folders = {row[0]: (row[1], row[2], row[3] or "") for row in db.execute(
        f"SELECT id, parent, title, {guid} FROM moz_bookmarks WHERE type = 2")}
    # From Firefox 4 the guid columns exist, but the roots' guids were random ones until
    # fixed root guids came: while the roots table exists, it is the one that names them.
    if _columns(db, "moz_bookmarks_roots"):
        for name, folder_id in db.execute("SELECT root_name, folder_id FROM moz_bookmarks_roots"):
            if folder_id in folders and name in _ROOT_NAMES:
                parent, title, _ = folders[folder_id]
                folders[folder_id] = (parent, title, _ROOT_NAMES[name])
    return folders


def _keyword_sql(db: sqlite3.Connection, mark: list[str]) -> str:
    keywords = _columns(db, "moz_keywords")
    if "place_id" in keywords:  # Firefox 40 and later
        return "(SELECT k.keyword FROM moz_keywords k WHERE k.place_id = b.fk LIMIT 1)"
    if "keyword_id" in mark and "keyword" in keywords:  # before: bookmarks point at keywords
        return "(SELECT k.keyword FROM moz_keywords k WHERE k.id = b.keyword_id)"
    return "NULL"


def _places_rows(db: sqlite3.Connection) -> Iterator[RawRecord | InputIssue]:
    """Every bookmark, with the columns this database's schema version has."""
    try:
        mark = _columns(db, "moz_bookmarks")
        place = _columns(db, "moz_places")
        if not mark or "url" not in place or not {"fk", "parent", "type"} <= set(mark):
            raise InputError("not a Firefox places database (no moz_bookmarks/moz_places)")
        folders = _folders(db, mark)
        keyword = _keyword_sql(db, mark)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"places database unreadable: {exc}") from None
    tags_root = next((fid for fid, (_, _, guid) in folders.items()
                      if guid == "tags________"), -1)
    select = ", ".join([*(f'b."{c}"' for c in mark),
                        *(f'p."{c}"' for c in place),
                        keyword,
                        "(SELECT group_concat(t.title, char(31)) FROM moz_bookmarks tb "
                        "JOIN moz_bookmarks t ON t.id = tb.parent "
                        "WHERE tb.fk = b.fk AND tb.type = 1 AND t.parent = :tags)"])
    sql = (f"SELECT {select} FROM moz_bookmarks b JOIN moz_places p ON p.id = b.fk "
           "WHERE b.type = 1 AND p.url NOT LIKE 'place:%' AND b.parent != :tags "
           "AND b.parent NOT IN "
           "(SELECT id FROM moz_bookmarks WHERE parent = :tags AND type = 2) ORDER BY b.id")
    names = [*mark, *(c if c == "url" else f"place_{c}" for c in place), "keyword", "tags"]
    position = 0
    try:
        for row in db.execute(sql, {"tags": tags_root}):
            position += 1
            original = dict(zip(names, row, strict=True))
            tag_list = [t for t in (original.pop("tags") or "").split("\x1f") if t]
            if original.get("keyword") is None:
                original.pop("keyword")
            record = common_record(
                original, url=original.get("url"),
                title=original.get("title") or original.get("place_title"),
                tags=tag_list, folder=_places_folder(folders, original.get("parent")),
                created=epoch_iso(original.get("dateAdded"), "us"))
            yield RawRecord(position, record, "url", source_id=original.get("id"))
    except sqlite3.DatabaseError as exc:
        yield InputIssue(position + 1, f"places database damaged after entry {position}: "
                         f"{exc}", fatal=True)


def _places_folder(folders: dict[int, tuple[int, str | None, str]], parent: Any) -> str | None:
    names: list[str] = []
    seen: set[int] = set()
    while isinstance(parent, int) and parent in folders and parent not in seen:
        seen.add(parent)
        grand, title, guid = folders[parent]
        names.append(_ROOT_GUIDS.get(guid, title or ""))
        parent = grand
    return folder_path(tuple(names[::-1]))


FIREFOX_JSON = FileFormat(
    "firefox-json", "Firefox bookmarks backup JSON (Bookmarks > Backup…)",
    'JSON object with "type": "text/x-moz-place-container" / "placesRoot"', (".json",),
    sniff_firefox_json, read_firefox_json, priority=21,
)
FIREFOX_JSONLZ4 = FileFormat(
    "firefox-jsonlz4", "Firefox automatic bookmark backup (bookmarkbackups/*.jsonlz4)",
    "starts with mozLz40\\0", (".jsonlz4", ".baklz4"), sniff_jsonlz4, read_jsonlz4,
    priority=10, binary=True,
    writeback_refusal="Firefox .jsonlz4 backups are owned by the browser; "
    "write the results with -o FILE instead",
)
FIREFOX_PLACES = FileFormat(
    "firefox-places", "Firefox profile database places.sqlite (read-only, never locked)",
    "SQLite file with a moz_bookmarks table", (".sqlite",), sniff_places, read_places,
    priority=11, binary=True,
    writeback_refusal="places.sqlite is owned by the browser; "
    "write the results with -o FILE instead",
)
