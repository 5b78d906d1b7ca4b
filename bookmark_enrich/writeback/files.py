"""Rewrite a bookmarks file with its enrichment, atomically, by container shape.

The file is re-read in order after the run and each record's results come from
the cache, so nothing is held in memory. JSON and JSON Lines records gain one
``enrichment`` key; CSV rows gain ``enrich_*`` columns; Netscape HTML gains
``TAGS`` and a ``<DD>`` summary. Everything else stays as it was. The new file
is written beside the old one, fsynced and renamed over it; the old one is kept
as ``FILE.bak`` unless ``--no-backup``. A file that changed since it was read is
left alone.
"""

from __future__ import annotations

import contextlib
import glob
import html
import json
import os
import re
from collections.abc import Callable, Iterator
from typing import IO, Any

import ijson

from ..errors import InputError, UsageError
from ..fileio import atomic_replace
from ..models import FileTarget, RawRecord
from ..records import COLUMN_PREFIX, dumps
from .base import (
    Report,
    Results,
    WritebackConflict,
    WritebackOptions,
    Writer,
    archive_url,
    change_line,
    describe_changes,
)
from .csvfile import CSV_FIELDS, check_round_trip, rewrite_csv

__all__ = ["CSV_FIELDS", "CSV_PREFIX", "FileWriter"]

CSV_PREFIX = COLUMN_PREFIX

_ANCHOR = re.compile(rb"<a(?=[\s>])", re.IGNORECASE)
_TAG_END = re.compile(rb">")
_TAGS_ATTR = re.compile(rb"""\sTAGS\s*=\s*("[^"]*"|'[^']*'|[^\s>]*)""", re.IGNORECASE)
_A_CLOSE = re.compile(rb"</a\s*>", re.IGNORECASE)


class _ByPosition:
    """Output records looked up by source position, walking forward only."""

    def __init__(self, results: Results) -> None:
        self._results = iter(results)
        self._next: tuple[RawRecord, dict[str, Any] | None] | None = None

    def take(self, position: int) -> list[tuple[RawRecord, dict[str, Any] | None]]:
        """Every (raw, record) at ``position``, skipping earlier ones not asked for."""
        found: list[tuple[RawRecord, dict[str, Any] | None]] = []
        while True:
            if self._next is None:
                self._next = next(self._results, None)
                if self._next is None:
                    return found
            if self._next[0].position > position:
                return found
            if self._next[0].position == position:
                found.append(self._next)
            self._next = None


class FileWriter(Writer):
    """Rewrites a JSON, JSON Lines, CSV or Netscape HTML file with its enrichment."""

    rewrites_after_run = True

    def __init__(self, target: FileTarget, options: WritebackOptions, report: Report,
                 *, fail_before_rename: Callable[[], None] | None = None) -> None:
        super().__init__(options, report)
        self.target = target
        self.path = target.path
        self.display = target.display
        if target.refusal:
            raise UsageError(target.refusal)
        if target.container not in ("json", "jsonl", "csv", "netscape"):
            raise UsageError(f"{self.display}: {target.format_name} files cannot be written "
                             "back; write the results elsewhere with -o FILE")
        self.container = target.container
        if self.container == "json" and not self._top_level_array():
            raise UsageError(f"{self.display}: only a top-level JSON array of records can be "
                             "written back; write the results elsewhere with -o FILE")
        self.baseline = target.baseline
        self._before_rename = fail_before_rename
        wide = target.codec.startswith(("utf-16", "utf-32"))
        if (self.container == "json" and (target.codec, target.bom) != ("utf-8", b"")) or (
                self.container in ("jsonl", "netscape") and wide):
            raise UsageError(f"{self.display}: a {self.container} file in {target.codec} cannot be "
                             "written back; write the results elsewhere with -o FILE")
        if not options.dry_run:
            self._check_writable()

    def _top_level_array(self) -> bool:
        with open(self.path, "rb") as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf").lstrip()
        return head.startswith(b"[")

    def _check_writable(self) -> None:
        folder = self.path.resolve().parent
        if not os.access(self.path, os.W_OK):
            raise InputError(f"{self.display}: file is read-only; cannot write back "
                             "(write the results elsewhere with -o FILE)")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f"{self.display}: folder {folder} is not writable; "
                             "cannot write back (use -o FILE)")

    def _current_stat(self) -> tuple[int, int]:
        st = os.stat(self.path)
        return (st.st_size, st.st_mtime_ns)

    def _check_unchanged(self) -> None:
        if self._current_stat() != self.baseline:
            raise WritebackConflict(
                f"{self.display} changed on disk since it was read; not overwritten. "
                f"The results are in the cache: run `bookmark-enrich writeback "
                f"{self.display}` to apply them")

    # ------------------------------------------------------------ lifecycle
    def interrupted(self) -> None:
        self.report(f"interrupted: {self.display} was not rewritten; "
                    f"`bookmark-enrich writeback {self.display}` applies the finished results")

    def write(self, results: Results) -> None:
        """Rewrite the file from ``results`` (or, dry run, print the changes)."""
        self._check_unchanged()
        if self.container != "json":
            check_round_trip(self.path, self.display, self.target.codec, self.target.bom)
        rewrite = {"json": self._json, "jsonl": self._jsonl, "csv": self._csv,
                   "netscape": self._netscape}[self.container]
        with open(self.path, "rb") as raw:
            found = _ByPosition(results)
            if self.options.dry_run:
                for _ in rewrite(raw, found):
                    pass
                return
            self._remove_leftovers()
            with atomic_replace(self.path, suffix=".writeback",
                                before_replace=self._last_checks) as out:
                out.writelines(rewrite(raw, found))

    def _remove_leftovers(self) -> None:
        """Temp files of a writeback that was killed (we hold the cache lock: no other
        writer of this file is running)."""
        pattern = f".{glob.escape(self.path.name)}.*.writeback"
        for leftover in self.path.parent.glob(pattern):
            with contextlib.suppress(OSError):
                leftover.unlink()

    def _last_checks(self) -> None:
        if self._before_rename is not None:
            self._before_rename()
        self._check_unchanged()
        if self.options.backup:
            self._backup()

    def _backup(self) -> None:
        """FILE.bak becomes the current file (a hard link: no copy, swapped atomically)."""
        bak = self.path.with_name(self.path.name + ".bak")
        tmp = self.path.with_name(f".{self.path.name}.bak.tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(self.path, tmp)
        except OSError:
            import shutil

            shutil.copy2(self.path, tmp)
        os.replace(tmp, bak)

    def _note(self, label: str, added: list[str], changed: list[str]) -> None:
        self.seen += 1
        if added or changed:
            self.changed += 1
            if self.options.dry_run:
                self.report(change_line(label, added, changed))

    # ---------------------------------------------------------- containers
    def _enrich_object(self, value: Any, record: dict[str, Any], label: str) -> Any:
        enrichment = record.get("enrichment") or {}
        if not enrichment:
            self._note(label, [], [])
            return value
        obj = value if isinstance(value, dict) else {"url": value}
        previous = obj.get("enrichment")
        old: dict[str, Any] = previous if isinstance(previous, dict) else {}
        added, changed = describe_changes(old, enrichment)
        removed = [k for k in old if k not in enrichment]
        added = [f"enrichment.{k}" for k in added]
        changed = [f"enrichment.{k}" for k in changed + removed]
        new = {**obj, "enrichment": enrichment}
        field, snapshot = self.options.archive_field, archive_url(record)
        if field is not None and snapshot is not None:
            # The user's field, beside the record's own: only ever a snapshot goes in it.
            more, other = describe_changes({field: obj.get(field)}, {field: snapshot})
            added += more
            changed += other
            new[field] = snapshot
        self._note(label, added, changed)
        return new

    def _json(self, raw: IO[bytes], found: _ByPosition) -> Iterator[bytes]:
        """A JSON array: one item per line, items in their order, objects gain enrichment."""
        index = 0
        yield b"["
        try:
            for value in ijson.items(raw, "item", use_float=True):
                index += 1
                yield self._json_item(index, value, found)
        except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
            raise WritebackConflict(f"{self.display}: JSON broken after record {index} "
                                    f"({exc}); not rewritten") from None
        yield b"\n]\n" if index else b"]\n"

    def _json_item(self, index: int, value: Any, found: _ByPosition) -> bytes:
        hits = found.take(index)
        record = hits[0][1] if hits else None
        if record is not None:
            value = self._enrich_object(value, record, f"record {index}")
        return (b"\n" if index == 1 else b",\n") + dumps(value, readable=True).encode()

    def _jsonl(self, raw: IO[bytes], found: _ByPosition) -> Iterator[bytes]:
        """JSON Lines: lines without results are copied byte for byte."""
        codec, bom = self.target.codec, self.target.bom
        for lineno, line in enumerate(raw, start=1):
            hits = found.take(lineno)
            record = hits[0][1] if hits else None
            if record is None:
                yield line
                continue
            text = line.decode(codec, "surrogateescape").removeprefix("\ufeff")
            value = json.loads(text)
            end = b"\r\n" if line.endswith(b"\r\n") else b"\n" if line.endswith(b"\n") else b""
            new = self._enrich_object(value, record, f"line {lineno}")
            if new is value:
                yield line
            else:
                out = dumps(new, readable=True)
                _check_encodable(out, codec, f"{self.display}: line {lineno}")
                start = bom if lineno == 1 else b""
                yield start + out.encode(codec, "surrogateescape") + end

    def _csv(self, raw: IO[bytes], found: _ByPosition) -> Iterator[bytes]:
        """CSV: the header gains enrich_* columns (reused when present), rows their values;
        every other byte stays as it was (see :mod:`.csvfile`)."""
        return rewrite_csv(raw, found.take, self._note, display=self.display,
                           codec=self.target.codec, bom=self.target.bom,
                           archive_field=self.options.archive_field)

    def _netscape(self, raw: IO[bytes], found: _ByPosition) -> Iterator[bytes]:
        """Netscape HTML, line by line: anchors gain TAGS, entries without a note gain <DD>."""
        for lineno, line in enumerate(raw, start=1):
            hits = found.take(lineno)
            if all(rec is None for _, rec in hits):
                yield line
                continue
            yield self._netscape_line(line, lineno, hits)

    def _netscape_line(self, line: bytes, lineno: int,
                       hits: list[tuple[RawRecord, dict[str, Any] | None]]) -> bytes:
        anchors = list(_ANCHOR.finditer(line))
        # The reader and this scan agree on anchors per line in all but odd markup;
        # when they do not, the line is kept rather than guessed at.
        if len(anchors) != len(hits):
            return line
        pieces: list[bytes] = []
        cursor = 0
        indent = line[: len(line) - len(line.lstrip())]
        for (raw_rec, record), match in zip(hits, anchors, strict=True):
            if record is None:
                continue
            enrichment = record.get("enrichment") or {}
            tags = [t for t in enrichment.get("tags") or [] if isinstance(t, str)]
            summary = enrichment.get("summary")
            end = _TAG_END.search(line, match.end())
            if end is None:
                continue
            pieces.append(line[cursor: match.start()])
            tag = line[match.start(): end.end()]
            added: list[str] = []
            changed: list[str] = []
            if tags:
                tag, what = _with_tags(tag, tags, self.target.codec)
                (added if what == "add" else changed if what == "change" else []).append("TAGS")
            field, snapshot = self.options.archive_field, archive_url(record)
            if field is not None and snapshot is not None:
                tag, what = _with_attribute(tag, field, snapshot, self.target.codec)
                (added if what == "add" else changed if what == "change" else []).append(
                    field.upper())
            pieces.append(tag)
            cursor = end.end()
            if isinstance(summary, str) and summary.strip() and \
                    "description" not in raw_rec.record:
                close = _A_CLOSE.search(line, cursor)
                if close is not None:
                    pieces.append(line[cursor: close.end()])
                    cursor = close.end()
                    dd = b"<DD>" + html.escape(" ".join(summary.split()), quote=False).encode(
                        self.target.codec, "xmlcharrefreplace")
                    rest = line[cursor:]
                    if rest.strip():
                        pieces.append(dd)
                    else:
                        newline = b"\r\n" if rest.endswith(b"\r\n") else b"\n"
                        pieces.append(newline + indent.strip(b"\r\n") + dd)
                    added.append("DD")
            self._note(f"line {lineno}", added, changed)
        pieces.append(line[cursor:])
        return b"".join(pieces)


def _check_encodable(text: str, codec: str, where: str) -> None:
    try:
        text.encode(codec)
    except UnicodeEncodeError as exc:
        raise WritebackConflict(
            f"{where}: the enrichment holds {text[exc.start:exc.end]!r}, which the file's "
            f"encoding ({codec}) cannot hold; nothing was changed; write the results "
            "elsewhere with -o FILE") from None


def _with_attribute(tag: bytes, name: str, value: str, codec: str) -> tuple[bytes, str]:
    """The <A ...> tag with attribute ``name`` set to ``value`` (added or replaced)."""
    encoded = html.escape(value, quote=True).encode(codec, "xmlcharrefreplace")
    pattern = re.compile(rb"\s" + re.escape(name.encode(codec)) +
                         rb"""\s*=\s*("[^"]*"|'[^']*'|[^\s>]*)""", re.IGNORECASE)
    match = pattern.search(tag)
    if match is None:
        return tag[:-1] + b" " + name.upper().encode(codec) + b'="' + encoded + b'"' + \
            tag[-1:], "add"
    if html.unescape(match.group(1).decode(codec, "surrogateescape").strip("\"'")) == value:
        return tag, "same"
    return tag[: match.start(1)] + b'"' + encoded + b'"' + tag[match.end(1):], "change"


def _with_tags(tag: bytes, tags: list[str], codec: str = "utf-8") -> tuple[bytes, str]:
    """The <A ...> tag with ``tags`` merged into TAGS (existing ones first)."""
    match = _TAGS_ATTR.search(tag)
    if match is None:
        value = html.escape(",".join(tags), quote=True).encode(codec, "xmlcharrefreplace")
        return tag[:-1] + b' TAGS="' + value + b'"' + tag[-1:], "add"
    raw = match.group(1).decode(codec, "surrogateescape").strip("\"'")
    have = [t.strip() for t in html.unescape(raw).split(",") if t.strip()]
    lower = {t.lower() for t in have}
    merged = have + [t for t in tags if t.lower() not in lower]
    if merged == have:
        return tag, "same"
    value = html.escape(",".join(merged), quote=True).encode(codec, "xmlcharrefreplace")
    new = tag[: match.start(1)] + b'"' + value + b'"' + tag[match.end(1):]
    return new, "change" if have else "add"
